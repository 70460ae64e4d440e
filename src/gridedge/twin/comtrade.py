"""COMTRADE (IEEE C37.111 / IEC 60255-24) export of a sampled window: the format protection
engineers open in their fault-record viewers.

No maintained Python package writes COMTRADE (PyPI ``comtrade`` reads only; it is the
independent reader our tests use), and the format is small and fully specified, so it is written
here. What is written, per the standard:

- ``<name>.cfg`` — station, device, revision; channel counts; one line per analog channel
  (index, id, phase, circuit, unit, a, b, skew, min, max, primary, secondary, P/S) with
  ``value = a·code + b``; line frequency; one sampling rate; first-sample and trigger time stamps
  (``dd/mm/yyyy,hh:mm:ss.ffffff``, UTC); data file type; time multiplier; for 2013 also the time
  code / local code and time-quality / leap-second lines.
- ``<name>.dat`` — one record per sample: sample number (1-based), time stamp, the ADC codes.
  The time stamp counts samples and ``timemult`` is the sample period in µs, so it is exact at
  3.2 kHz (312.5 µs) without fractional microseconds.

The codes are the DAQ's own (12-bit by default), so ``a`` is the window's scale and nothing is
re-quantised: the record is bit-exact with what the meter captured.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from gridedge.contracts.waveform import WaveformWindow

DatFormat = Literal["ASCII", "BINARY", "BINARY32"]
Revision = Literal[1999, 2013]

_PHASE = {"va": "A", "vb": "B", "vc": "C", "ia": "A", "ib": "B", "ic": "C"}


def _stamp(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    micro = (ns % 1_000_000_000) // 1000
    return f"{dt:%d/%m/%Y},{dt:%H:%M:%S}.{micro:06d}"


def _field(text: str) -> str:
    # Commas separate fields; the standard allows no escaping.
    return text.replace(",", " ").strip()


def write_comtrade(
    window: WaveformWindow,
    directory: str | Path,
    name: str | None = None,
    *,
    station: str = "gridedge-twin",
    device: str | None = None,
    revision: Revision = 2013,
    fmt: DatFormat = "BINARY",
) -> tuple[Path, Path]:
    """Write ``<name>.cfg`` and ``<name>.dat`` into ``directory``; returns their paths. The
    trigger time stamp is the fault inception (first sample after it), or the first sample."""
    if revision not in (1999, 2013):
        raise ValueError(f"revision must be 1999 or 2013, got {revision}")
    if fmt not in ("ASCII", "BINARY", "BINARY32"):
        raise ValueError(f"fmt must be ASCII, BINARY or BINARY32, got {fmt}")
    if fmt == "BINARY32" and revision != 2013:
        raise ValueError("fmt BINARY32 needs revision 2013")
    codes = window.codes()
    half = 2 ** (window.adc_bits - 1)
    if fmt == "BINARY" and window.adc_bits > 16:
        raise ValueError(
            f"a {window.adc_bits}-bit window does not fit BINARY (16-bit): use BINARY32"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = name or f"{window.point_id}_{window.start_ns}"
    cfg_path, dat_path = directory / f"{name}.cfg", directory / f"{name}.dat"
    n_ch = len(window.channels)
    n = window.n_samples
    period_us = 1e6 / window.sampling_rate_hz
    lo, hi = -half, half - 1
    if fmt == "BINARY" and window.adc_bits == 16:
        lo = -half + 1  # -32768 marks a missing sample in 16-bit BINARY
        codes = np.maximum(codes, lo)
    ratios = window.primary_ratio or [1.0] * n_ch
    ps = "S" if window.primary_ratio else "P"

    lines = [
        f"{_field(station)},{_field(device or window.point_id)},{revision}",
        f"{n_ch},{n_ch}A,0D",
    ]
    for k, (ch, unit, a) in enumerate(
        zip(window.channels, window.units, window.scale, strict=True)
    ):
        lines.append(
            f"{k + 1},{_field(ch.upper())},{_PHASE.get(ch, '')},{_field(window.point_id)},{unit},"
            f"{a!r},0,0,{lo},{hi},{ratios[k]!r},1,{ps}"
        )
    trigger_ns = window.start_ns
    if window.inception_index is not None:
        trigger_ns += round(window.inception_index * 1e9 / window.sampling_rate_hz)
    lines += [
        f"{window.nominal_frequency_hz:g}",
        "1",
        f"{window.sampling_rate_hz:g},{n}",
        _stamp(window.start_ns),
        _stamp(trigger_ns),
        fmt,
        f"{period_us!r}",
    ]
    if revision == 2013:
        lines += ["+0h00,+0h00", "0,0"]  # UTC; clock locked, no leap second pending
    cfg_path.write_text("\r\n".join(lines) + "\r\n", encoding="ascii")

    sample_no = np.arange(1, n + 1, dtype=np.int64)
    if fmt == "ASCII":
        table = np.column_stack([sample_no, sample_no - 1, codes.T.astype(np.int64)])
        text = "\r\n".join(",".join(map(str, row)) for row in table.tolist())
        dat_path.write_text(text + "\r\n", encoding="ascii")
    else:
        ctype = "<i2" if fmt == "BINARY" else "<i4"
        rec = np.dtype([("n", "<u4"), ("t", "<u4"), ("v", ctype, (n_ch,))])
        arr = np.empty(n, dtype=rec)
        arr["n"] = sample_no
        arr["t"] = sample_no - 1
        arr["v"] = codes.T
        dat_path.write_bytes(arr.tobytes())
    return cfg_path, dat_path


def binary_record_size(n_channels: int, fmt: DatFormat = "BINARY") -> int:
    """Bytes per sample in a binary .dat (4-byte sample number, 4-byte time stamp, codes)."""
    return struct.calcsize("<II") + n_channels * (2 if fmt == "BINARY" else 4)
