"""Sampled waveform windows: what a meter's DAQ delivers (from the twin's simulated DAQ, a replay
file or real hardware) and what fault capture stores as COMTRADE.

Samples travel as ADC codes (int16, base64) plus a per-channel scale, as a real 12-bit DAQ would
deliver them; ``values()`` turns them into volts/amperes."""

from __future__ import annotations

import base64

import numpy as np
from pydantic import Field, model_validator

from gridedge.contracts.common import Contract

CHANNELS = ("va", "vb", "vc", "ia", "ib", "ic")


class WaveformWindow(Contract):
    point_id: str = Field(description="measurement point (meter id or twin point)")
    sampling_rate_hz: float = Field(gt=0)
    start_ns: int = Field(description="UTC ns of the first sample")
    nominal_frequency_hz: float = Field(default=50.0, gt=0)
    channels: list[str] = Field(default_factory=lambda: list(CHANNELS))
    units: list[str] = Field(default_factory=lambda: ["V", "V", "V", "A", "A", "A"])
    scale: list[float] = Field(description="physical value per ADC code, per channel")
    adc_bits: int = Field(default=12, ge=8, le=24)
    n_samples: int = Field(gt=0)
    codes_b64: str = Field(description="int32 little-endian codes, channel-major, base64")
    inception_index: int | None = Field(
        default=None, description="first sample after fault inception"
    )
    primary_ratio: list[float] | None = Field(
        default=None,
        description="instrument transformer ratio per channel, if values are secondary",
    )

    @model_validator(mode="after")
    def _shapes_agree(self) -> WaveformWindow:
        n = len(self.channels)
        if len(self.units) != n or len(self.scale) != n:
            raise ValueError("channels, units and scale must have the same length")
        if len(base64.b64decode(self.codes_b64)) != 4 * n * self.n_samples:
            raise ValueError("codes_b64 does not hold channels x n_samples int32 codes")
        return self

    @classmethod
    def from_codes(cls, codes: np.ndarray, scale: list[float], **kw: object) -> WaveformWindow:
        """codes: int array shaped (channels, samples)."""
        arr = np.ascontiguousarray(codes, dtype="<i4")
        return cls(
            n_samples=arr.shape[1],
            scale=list(scale),
            codes_b64=base64.b64encode(arr.tobytes()).decode(),
            **kw,  # type: ignore[arg-type]
        )

    def codes(self) -> np.ndarray:
        raw = np.frombuffer(base64.b64decode(self.codes_b64), dtype="<i4")
        return raw.reshape(len(self.channels), self.n_samples)

    def values(self) -> np.ndarray:
        """Physical values (channels x samples), float64."""
        return self.codes().astype(np.float64) * np.asarray(self.scale)[:, None]

    def times_s(self) -> np.ndarray:
        return np.arange(self.n_samples) / self.sampling_rate_hz
