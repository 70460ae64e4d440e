"""Cable and transformer types used by the synthetic grids.

Values are representative of Italian urban MV practice (12/20 kV single-core XLPE aluminium
cables, laid in trefoil, copper screens earthed at both ends; 22 kV operation) and of LV
distribution cables. They are engineering estimates in the range of manufacturers' data sheets,
not copied from one data sheet. Zero-sequence values follow the usual screened-cable pattern
(screen return raises R0 to about 4 x R1 and X0 to about 3 x X1; C0 = C1 because each core has
its own earthed screen)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CableType:
    name: str
    r1_ohm_per_km: float
    x1_ohm_per_km: float
    c1_nf_per_km: float
    r0_ohm_per_km: float
    x0_ohm_per_km: float
    c0_nf_per_km: float
    max_i_ka: float
    description: str = ""


MV_CABLES: dict[str, CableType] = {
    c.name: c
    for c in (
        CableType(
            "ARE4H5E-3x1x185-Al",
            0.211,
            0.112,
            310.0,
            0.85,
            0.34,
            310.0,
            0.36,
            "12/20 kV XLPE, Al 185 mm2, trefoil (main feeder sections)",
        ),
        CableType(
            "ARE4H5E-3x1x240-Al",
            0.161,
            0.108,
            350.0,
            0.76,
            0.32,
            350.0,
            0.42,
            "12/20 kV XLPE, Al 240 mm2, trefoil (feeder heads)",
        ),
        CableType(
            "ARE4H5E-3x1x95-Al",
            0.411,
            0.123,
            230.0,
            1.25,
            0.37,
            230.0,
            0.25,
            "12/20 kV XLPE, Al 95 mm2, trefoil (laterals)",
        ),
        CableType(
            "PILC-3x70-Cu",
            0.342,
            0.128,
            260.0,
            1.30,
            0.40,
            260.0,
            0.22,
            "older paper-insulated belted Cu 70 mm2 (legacy laterals)",
        ),
    )
}

LV_CABLES: dict[str, CableType] = {
    c.name: c
    for c in (
        CableType(
            "RG7R-4x150-Al",
            0.206,
            0.080,
            0.0,
            0.824,
            0.32,
            0.0,
            0.27,
            "0.6/1 kV Al 150 mm2, 4-core (LV trunk)",
        ),
        CableType(
            "RG7R-4x95-Al",
            0.320,
            0.082,
            0.0,
            1.28,
            0.33,
            0.0,
            0.21,
            "0.6/1 kV Al 95 mm2, 4-core (LV branch)",
        ),
        CableType(
            "RG7R-4x35-Al",
            0.868,
            0.086,
            0.0,
            3.47,
            0.34,
            0.0,
            0.11,
            "0.6/1 kV Al 35 mm2 (service drop)",
        ),
    )
}


@dataclass(frozen=True)
class TransformerType:
    name: str
    sn_mva: float
    vn_hv_kv: float
    vn_lv_kv: float
    vk_percent: float
    vkr_percent: float
    pfe_kw: float
    i0_percent: float
    vector_group: str
    shift_degree: float


PRIMARY_220_22 = TransformerType(
    "TR-220/22kV-40MVA", 40.0, 220.0, 22.0, 12.7, 0.35, 22.0, 0.05, "Dyn11", 330.0
)
SECONDARY_400KVA = TransformerType(
    "TR-22/0.4kV-400kVA", 0.4, 22.0, 0.4, 4.0, 1.15, 0.61, 0.4, "Dyn11", 330.0
)
SECONDARY_630KVA = TransformerType(
    "TR-22/0.4kV-630kVA", 0.63, 22.0, 0.4, 6.0, 1.03, 0.86, 0.3, "Dyn11", 330.0
)
SECONDARY_250KVA = TransformerType(
    "TR-22/0.4kV-250kVA", 0.25, 22.0, 0.4, 4.0, 1.3, 0.42, 0.5, "Dyn11", 330.0
)
