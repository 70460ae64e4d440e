"""Base classes and small types every contract shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gridedge.contracts.topics import DEVICE_ID_PATTERN


def utcnow() -> datetime:
    return datetime.now(UTC)


def _require_utc(value: datetime) -> datetime:
    # Local time in a grid record is a bug waiting for the next DST change.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a UTC offset (ISO 8601 with 'Z' or '+00:00')")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN, examples=["M1", "SM-3f2a9c"])]


class Contract(BaseModel):
    """A versioned wire contract. ``schema_id`` names the payload and its major version so a
    receiver can refuse what it does not understand instead of misreading it."""

    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)
    SCHEMA: ClassVar[str] = ""

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Any:
        return cls.model_validate_json(data)


class Message(Contract):
    """An MQTT payload: carries its schema id and the time it was produced."""

    schema_id: str = Field(default="", alias="schema")
    ts: UtcDatetime = Field(default_factory=utcnow)

    def model_post_init(self, __context: Any) -> None:
        if not self.schema_id:
            self.schema_id = type(self).SCHEMA

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class Problem(Contract):
    """Error body of every REST answer >= 400 (RFC 9457 shape)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldError] = Field(default_factory=list)


class FieldError(Contract):
    """One input problem: where it is (dotted path) and why it was refused."""

    field: str
    reason: str


Problem.model_rebuild()
