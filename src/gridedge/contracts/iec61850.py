"""REST bodies of the IEC 61850 gateway's meter API, compatible with seed 004 (§3.3, §4.4, Table
3.1, appendix A): field names and casing are the thesis' (camelCase, ``id`` = the meter's token),
so its Python meter client works unchanged."""

from __future__ import annotations

import math
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from gridedge.contracts.common import Contract, UtcDatetime


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class SmartMeterCreate(Contract):
    """POST /SmartMeter. The thesis client sends ``name`` and ``location``; §3.3/§4.4 also name an
    address/zip code, an IP address and an owner."""

    name: str = Field(min_length=1, max_length=256)
    location: str = Field(min_length=1, max_length=256)
    zipCode: str | None = Field(default=None, max_length=64)
    ipAddress: str | None = Field(default=None, max_length=64)
    owner: str | None = Field(default=None, max_length=256)
    phases: int = Field(default=1, description="1 (PZEM-004T, MMXN) or 3 (MMXU)")

    @field_validator("phases")
    @classmethod
    def _phases(cls, v: int) -> int:
        if v not in (1, 3):
            raise ValueError("must be 1 or 3")
        return v


class SmartMeterCreated(Contract):
    """200 answer: ``id`` is the meter's token (the thesis client reads ``response.json()['id']``)."""

    id: str
    deviceId: str
    iedName: str
    name: str
    location: str
    zipCode: str | None = None
    created: UtcDatetime


class SmartMeterInfo(Contract):
    """A meter as listed (never shows the token)."""

    deviceId: str
    iedName: str
    name: str
    location: str
    zipCode: str | None = None
    phases: int
    source: str = Field(description="'rest' (registered here) or 'catalog'")
    created: UtcDatetime
    mms: str | None = Field(default=None, description="host:port of the MMS server")
    online: bool = True


class ReadingIn(Contract):
    """POST /Readings/{id}: what the thesis meter sends (voltage, current, power, powerFactor;
    frequency when the sensor has it). Missing optional values are stored as null."""

    model_config = ConfigDict(extra="forbid")

    voltage: float = Field(ge=0, le=1_000_000, description="V (RMS)")
    current: float = Field(ge=0, le=100_000, description="A (RMS)")
    power: float | None = Field(default=None, ge=-10_000_000, le=10_000_000, description="W")
    powerFactor: float | None = Field(default=None, ge=-1, le=1)
    frequency: float | None = Field(default=None, gt=0, le=1000, description="Hz")
    smartMeterId: str | None = Field(
        default=None, description="token in the body (thesis Fig. 3.19, POST /Readings)"
    )

    _f = field_validator("voltage", "current", "power", "powerFactor", "frequency")(_finite)


class ReadingOut(Contract):
    """A stored reading (JSON or XML by the Accept header)."""

    deviceId: str
    created: UtcDatetime
    voltage: float | None = None
    current: float | None = None
    power: float | None = None
    powerFactor: float | None = None
    frequency: float | None = None
    source: str = "rest"
    phases: dict[str, Any] | None = None
