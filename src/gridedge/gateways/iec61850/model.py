"""The IEC 61850 model of one virtual meter IED — the single description both the SCD generator
and the MMS server build from, so what SCADA reads in the SCL is what the server answers.

One logical device ``MTR`` per meter (seed 004 §3.4: a residential meter dressed as a substation
IED): LLN0 (data set ``Meas`` + report control blocks), LPHD1, MMXU1 (three-phase) or MMXN1
(single-phase), MMTR1 (energy register), CSWI1 (the operator's switch controller) and XSWI1 (the
meter's relay). The DOType layouts below mirror exactly what libiec61850's ``CDC_*_create``
helpers instantiate (checked by a test that browses the live server and compares it with the
SCD), and carry every data object IEC 61850-7-4 makes mandatory for those LN classes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

LD_INST = "MTR"
DATASET = "Meas"
URCB_NAME = "urcbMeas"  # SCL name; instances urcbMeas01.. as libiec61850 names them
BRCB_NAME = "brcbMeas"
URCB_INSTANCES = 2
BRCB_INSTANCES = 1
RCB_INTG_PD_MS = 5000
RCB_BUF_TM_MS = 100
CONF_REV = 1


class CtlModel(StrEnum):
    """IEC 61850-7-3 CtlModelKind (SCL enumeration literal)."""

    STATUS_ONLY = "status-only"
    DIRECT_NORMAL = "direct-with-normal-security"
    SBO_NORMAL = "sbo-with-normal-security"
    DIRECT_ENHANCED = "direct-with-enhanced-security"
    SBO_ENHANCED = "sbo-with-enhanced-security"


CTL_MODEL_ORD = {m: i for i, m in enumerate(CtlModel)}

ENUMS: dict[str, list[tuple[int, str]]] = {
    "BehaviourModeKind": [
        (1, "on"),
        (2, "on-blocked"),
        (3, "test"),
        (4, "test/blocked"),
        (5, "off"),
    ],
    "HealthKind": [(1, "Ok"), (2, "Warning"), (3, "Alarm")],
    "CtlModelKind": [(i, m.value) for i, m in enumerate(CtlModel)],
    "SwitchFunctionKind": [
        (1, "Load Break"),
        (2, "Disconnector"),
        (3, "Earthing Switch"),
        (4, "High Speed Earthing Switch"),
    ],
    "OriginatorCategoryKind": [
        (0, "not-supported"),
        (1, "bay-control"),
        (2, "station-control"),
        (3, "remote-control"),
        (4, "automatic-bay"),
        (5, "automatic-station"),
        (6, "automatic-remote"),
        (7, "maintenance"),
        (8, "process"),
    ],
}


@dataclass(frozen=True, slots=True)
class DA:
    """A data attribute of a DOType (or a BDA of a DAType when ``fc`` is empty)."""

    name: str
    btype: str
    fc: str = ""
    type: str = ""  # DAType id for Struct, EnumType id for Enum
    dchg: bool = False
    qchg: bool = False
    dupd: bool = False
    val: str | None = None


@dataclass(frozen=True, slots=True)
class SDO:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class DOType:
    id: str
    cdc: str
    children: tuple[DA | SDO, ...]


def _stq(fc: str, stval: DA) -> tuple[DA, ...]:
    return (
        stval,
        DA("q", "Quality", fc, qchg=True),
        DA("t", "Timestamp", fc),
    )


def _ens(enum: str) -> tuple[DA, ...]:
    return _stq("ST", DA("stVal", "Enum", "ST", type=enum, dchg=True, dupd=True))


def _dpc(ctl: CtlModel) -> tuple[DA, ...]:
    base = (
        *_stq("ST", DA("stVal", "Dbpos", "ST", dchg=True)),
        DA("ctlModel", "Enum", "CF", type="CtlModelKind", dchg=True, val=ctl.value),
    )
    if ctl is CtlModel.STATUS_ONLY:
        return base
    extra: list[DA] = [DA("Oper", "Struct", "CO", type="DPCOperate")]
    if ctl is CtlModel.SBO_NORMAL:
        extra.insert(0, DA("SBO", "VisString129", "CO"))
    if ctl is CtlModel.SBO_ENHANCED:
        extra.insert(0, DA("SBOw", "Struct", "CO", type="DPCOperate"))
    if ctl in (CtlModel.SBO_NORMAL, CtlModel.SBO_ENHANCED):
        extra.append(DA("Cancel", "Struct", "CO", type="DPCCancel"))
    return (*base, *extra)


def do_types(cswi_ctl: CtlModel) -> list[DOType]:
    """Every DOType of the meter IED. ``cswi_ctl`` sets CSWI1.Pos's control model."""
    mv = (
        DA("mag", "Struct", "MX", type="AnalogueValue", dchg=True, dupd=True),
        DA("q", "Quality", "MX", qchg=True),
        DA("t", "Timestamp", "MX"),
    )
    cmv = (
        DA("cVal", "Struct", "MX", type="Vector", dchg=True, dupd=True),
        DA("q", "Quality", "MX", qchg=True),
        DA("t", "Timestamp", "MX"),
    )
    return [
        DOType("GE_ENS_Beh", "ENS", _ens("BehaviourModeKind")),
        DOType("GE_ENS_Health", "ENS", _ens("HealthKind")),
        DOType("GE_ENS_SwTyp", "ENS", _ens("SwitchFunctionKind")),
        DOType(
            "GE_ENC_Mod",
            "ENC",
            (
                *_ens("BehaviourModeKind"),
                DA("ctlModel", "Enum", "CF", type="CtlModelKind", val="status-only"),
            ),
        ),
        DOType(
            "GE_LPL",
            "LPL",
            (
                DA("vendor", "VisString255", "DC", val="gridedge"),
                DA("swRev", "VisString255", "DC"),
            ),
        ),
        DOType("GE_DPL", "DPL", (DA("vendor", "VisString255", "DC", val="gridedge"),)),
        DOType("GE_SPS", "SPS", _stq("ST", DA("stVal", "BOOLEAN", "ST", dchg=True))),
        DOType("GE_INS", "INS", _stq("ST", DA("stVal", "INT32", "ST", dchg=True))),
        DOType(
            "GE_SPC_status",
            "SPC",
            (
                *_stq("ST", DA("stVal", "BOOLEAN", "ST", dchg=True)),
                DA("ctlModel", "Enum", "CF", type="CtlModelKind", val="status-only"),
            ),
        ),
        DOType("GE_MV", "MV", mv),
        DOType("GE_CMV", "CMV", cmv),
        DOType(
            "GE_WYE",
            "WYE",
            tuple(SDO(n, "GE_CMV") for n in ("phsA", "phsB", "phsC", "neut", "net", "res")),
        ),
        DOType(
            "GE_BCR",
            "BCR",
            (
                *_stq("ST", DA("actVal", "INT64", "ST", dchg=True)),
                DA("pulsQty", "FLOAT32", "CF", val="1"),
            ),
        ),
        DOType("GE_DPC_CSWI", "DPC", _dpc(cswi_ctl)),
        DOType("GE_DPC_XSWI", "DPC", _dpc(CtlModel.STATUS_ONLY)),
    ]


DA_TYPES: dict[str, tuple[DA, ...]] = {
    "AnalogueValue": (DA("f", "FLOAT32"),),
    "Vector": (DA("mag", "Struct", type="AnalogueValue"),),
    "Originator": (
        DA("orCat", "Enum", type="OriginatorCategoryKind"),
        DA("orIdent", "Octet64"),
    ),
    "DPCOperate": (
        DA("ctlVal", "BOOLEAN"),
        DA("origin", "Struct", type="Originator"),
        DA("ctlNum", "INT8U"),
        DA("T", "Timestamp"),
        DA("Test", "BOOLEAN"),
        DA("Check", "Check"),
    ),
    "DPCCancel": (
        DA("ctlVal", "BOOLEAN"),
        DA("origin", "Struct", type="Originator"),
        DA("ctlNum", "INT8U"),
        DA("T", "Timestamp"),
        DA("Test", "BOOLEAN"),
    ),
}


@dataclass(frozen=True, slots=True)
class LNodeType:
    id: str
    ln_class: str
    dos: tuple[tuple[str, str], ...]  # (DO name, DOType id)


# IEC 61850-7-4 mandatory data objects per LN class (REFERENCE §5.7); checked in scl.check_semantics.
MANDATORY_DOS: dict[str, tuple[str, ...]] = {
    "LLN0": ("Beh",),
    "LPHD": ("PhyNam", "PhyHealth", "Proxy"),
    "MMXU": ("Beh",),
    "MMXN": ("Beh",),
    "MMTR": ("Beh",),
    "CSWI": ("Beh", "Pos"),
    "XSWI": ("Beh", "Loc", "OpCnt", "Pos", "BlkOpn", "BlkCls", "SwTyp"),
}

MMXU_MV = ("TotW", "TotVAr", "TotPF", "Hz")
MMXU_WYE = ("PhV", "A", "W", "PF")
MMXN_MV = ("Amp", "Vol", "Watt", "PwrFact", "Hz")

LN_TYPES: list[LNodeType] = [
    LNodeType(
        "GE_LLN0",
        "LLN0",
        (
            ("Beh", "GE_ENS_Beh"),
            ("Mod", "GE_ENC_Mod"),
            ("Health", "GE_ENS_Health"),
            ("NamPlt", "GE_LPL"),
        ),
    ),
    LNodeType(
        "GE_LPHD",
        "LPHD",
        (("PhyNam", "GE_DPL"), ("PhyHealth", "GE_ENS_Health"), ("Proxy", "GE_SPS")),
    ),
    LNodeType(
        "GE_MMXU",
        "MMXU",
        (
            ("Beh", "GE_ENS_Beh"),
            *tuple((n, "GE_MV") for n in MMXU_MV),
            *tuple((n, "GE_WYE") for n in MMXU_WYE),
        ),
    ),
    LNodeType("GE_MMXN", "MMXN", (("Beh", "GE_ENS_Beh"), *tuple((n, "GE_MV") for n in MMXN_MV))),
    LNodeType("GE_MMTR", "MMTR", (("Beh", "GE_ENS_Beh"), ("TotWh", "GE_BCR"))),
    LNodeType("GE_CSWI", "CSWI", (("Beh", "GE_ENS_Beh"), ("Pos", "GE_DPC_CSWI"))),
    LNodeType(
        "GE_XSWI",
        "XSWI",
        (
            ("Beh", "GE_ENS_Beh"),
            ("Loc", "GE_SPS"),
            ("OpCnt", "GE_INS"),
            ("Pos", "GE_DPC_XSWI"),
            ("BlkOpn", "GE_SPC_status"),
            ("BlkCls", "GE_SPC_status"),
            ("SwTyp", "GE_ENS_SwTyp"),
        ),
    ),
]


@dataclass(frozen=True, slots=True)
class LnInst:
    ln_class: str
    inst: str
    ln_type: str

    @property
    def name(self) -> str:
        return f"{self.ln_class}{self.inst}"


def meter_lns(phases: int) -> list[LnInst]:
    meas = LnInst("MMXU", "1", "GE_MMXU") if phases == 3 else LnInst("MMXN", "1", "GE_MMXN")
    return [
        LnInst("LPHD", "1", "GE_LPHD"),
        meas,
        LnInst("MMTR", "1", "GE_MMTR"),
        LnInst("CSWI", "1", "GE_CSWI"),
        LnInst("XSWI", "1", "GE_XSWI"),
    ]


@dataclass(frozen=True, slots=True)
class Fcda:
    ln: str  # e.g. "MMXU1"
    fc: str
    do: str

    @property
    def mms(self) -> str:
        """libiec61850 data-set member syntax ``LN$FC$DO``."""
        return f"{self.ln}${self.fc}${self.do}"


def dataset_members(phases: int) -> list[Fcda]:
    """One small data set per LD (REFERENCE §5.4 pitfall 8: big data sets overflow the PDU)."""
    if phases == 3:
        meas = [Fcda("MMXU1", "MX", d) for d in ("TotW", "TotPF", "Hz", "PhV", "A")]
    else:
        meas = [Fcda("MMXN1", "MX", d) for d in ("Watt", "PwrFact", "Hz", "Vol", "Amp")]
    return [*meas, Fcda("MMTR1", "ST", "TotWh"), Fcda("XSWI1", "ST", "Pos")]


def rcb_instances(buffered: bool) -> list[tuple[str, bool]]:
    """(instance name, buffered) as the server creates them and clients address them. BRCBs are
    optional: libiec61850 checks every BRCB of a server on every attribute update, enabled or
    not (REFERENCE §5.4 pitfall 5) — with 100 meters per server one BRCB per meter makes an
    update ~15x dearer (measured in docs/iec61850.md)."""
    urcb = [(f"{URCB_NAME}{i:02d}", False) for i in range(1, URCB_INSTANCES + 1)]
    brcb = [(f"{BRCB_NAME}{i:02d}", True) for i in range(1, BRCB_INSTANCES + 1)]
    return urcb + (brcb if buffered else [])


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------

_IED_BAD = re.compile(r"[^A-Za-z0-9_]")


def ied_name(device_id: str) -> str:
    """SCL tIEDName (``[A-Za-z][0-9A-Za-z_]*``) from a platform device id: ``SM-3f2a`` -> ``SM_3f2a``.
    MMS domain = IED name + LD inst must stay within 64 characters."""
    name = _IED_BAD.sub("_", device_id)
    if not name[:1].isalpha():
        name = "D" + name
    return name[: 64 - len(LD_INST)]


def domain(device_id: str) -> str:
    return ied_name(device_id) + LD_INST


@dataclass(slots=True)
class MeterSpec:
    """What the gateway knows of a meter when it builds the model."""

    device_id: str
    phases: int = 3
    name: str = ""
    node_id: str | None = None
    grid: str | None = None
    voltage_kv: float | None = None
    buffered_reports: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ied(self) -> str:
        return ied_name(self.device_id)

    @property
    def domain(self) -> str:
        return domain(self.device_id)

    @property
    def meas_ln(self) -> str:
        return "MMXU1" if self.phases == 3 else "MMXN1"
