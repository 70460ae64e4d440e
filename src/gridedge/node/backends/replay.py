"""Replay DAQ: plays a recorded (or synthesized) set of samples back on the node's clock.

Lab use: feed a meter app a COMTRADE record from a real disturbance recorder, or a CSV exported
from a scope, and watch it behave as it would in the field. Test use: the same backend fed with
synthesized samples gives app tests a DAQ whose ground truth is known exactly.

Playback time: sample ``k`` of the record "happens" at ``origin_ns + k / rate`` on the node's
:class:`~gridedge.clock.Clock` (``origin_ns`` defaults to the clock's time when the backend is
built). ``read_rms`` measures the cycles that have just been played; ``read_window`` waits (on
the clock) until the samples after the requested instant have been played, as a real DAQ's
post-trigger buffer fills, then returns them.

Sources:
- :meth:`ReplayDaq.from_samples` — an array (channels × samples) in volts/amperes;
- :meth:`ReplayDaq.from_comtrade` — IEEE C37.111 ``.cfg``/``.dat`` read with the independent
  ``comtrade`` package (ASCII or binary);
- :meth:`ReplayDaq.from_csv` — a waveform CSV (``t_s`` and channel columns ``va vb vc ia ib ic``,
  or a subset), or an RMS CSV (``t_s`` and Telemetry-like columns ``voltage_v_a`` …), which only
  supports ``read_rms``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gridedge.clock import Clock
from gridedge.contracts.telemetry import Telemetry
from gridedge.contracts.waveform import WaveformWindow
from gridedge.dsp import samples_per_cycle
from gridedge.node.backends.measure import measure_cycles

PHASES = ("a", "b", "c")
VOLTAGE_CHANNELS = ("va", "vb", "vc")
CURRENT_CHANNELS = ("ia", "ib", "ic")


class ReplayError(ValueError):
    """A replay source is unusable; the message names the file, column or field."""


class ReplayEnded(EOFError):
    """Playback has run past the end of a non-looping record."""


def _phase_list(phase: str | None, n: int) -> tuple[str, ...]:
    if n == 3:
        return PHASES
    if phase not in PHASES:
        raise ReplayError(f"phase: a {n}-phase record needs phase= one of a, b, c (got {phase!r})")
    return (phase,)


class ReplayDaq:
    """A :class:`~gridedge.node.appapi.DaqBackend` over a sampled record."""

    def __init__(
        self,
        voltages: np.ndarray,
        currents: np.ndarray,
        rate_hz: float,
        clock: Clock,
        *,
        nominal_frequency_hz: float = 50.0,
        device_id: str = "replay",
        point_id: str | None = None,
        phase: str | None = None,
        origin_ns: int | None = None,
        loop: bool = False,
        rms_cycles: int = 1,
        inception_index: int | None = None,
        adc_bits: int = 16,
        source: str = "samples",
    ) -> None:
        v = np.atleast_2d(np.asarray(voltages, dtype=np.float64))
        i = np.atleast_2d(np.asarray(currents, dtype=np.float64))
        if v.shape != i.shape:
            raise ReplayError(f"voltages {v.shape} and currents {i.shape} must have the same shape")
        if v.shape[0] not in (1, 3):
            raise ReplayError(f"need 1 or 3 phases, got {v.shape[0]}")
        if not rate_hz > 0:
            raise ReplayError(f"rate_hz must be > 0, got {rate_hz}")
        if rms_cycles < 1:
            raise ReplayError(f"rms_cycles must be >= 1, got {rms_cycles}")
        self.n_cycle = samples_per_cycle(rate_hz, nominal_frequency_hz)
        if v.shape[1] < self.n_cycle:
            raise ReplayError(
                f"{source}: the record holds {v.shape[1]} samples, less than one cycle"
            )
        self.v, self.i = v, i
        self.rate_hz = float(rate_hz)
        self.nominal_hz = float(nominal_frequency_hz)
        self.clock = clock
        self.device_id = device_id
        self.point_id = point_id or device_id
        self.phases = _phase_list(phase, v.shape[0])
        self.origin_ns = clock.now_ns() if origin_ns is None else int(origin_ns)
        self.loop = loop
        self.rms_cycles = rms_cycles
        self.inception_index = inception_index
        self.adc_bits = adc_bits
        self.source = source
        # a fixed ADC range for the whole record, as a recorder would set it
        half = 2 ** (adc_bits - 1) - 1
        self._scale = np.concatenate(
            [
                np.maximum(np.max(np.abs(v), axis=1), 1e-6) / half,
                np.maximum(np.max(np.abs(i), axis=1), 1e-6) / half,
            ]
        )

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_samples(cls, values: np.ndarray, rate_hz: float, clock: Clock, **kw: Any) -> ReplayDaq:
        """``values``: (6, n) in order va vb vc ia ib ic, or (2, n) v, i for one phase."""
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] not in (2, 6):
            raise ReplayError(f"values must be shaped (6, n) or (2, n), got {x.shape}")
        k = x.shape[0] // 2
        return cls(x[:k], x[k:], rate_hz, clock, **kw)

    @classmethod
    def from_window(cls, window: WaveformWindow, clock: Clock, **kw: Any) -> ReplayDaq:
        """Replay a captured :class:`WaveformWindow` (e.g. a fault record)."""
        values = window.values()
        if window.primary_ratio:
            values = values * np.asarray(window.primary_ratio)[:, None]
        idx = {c.lower(): n for n, c in enumerate(window.channels)}
        v, i = _pick_channels(idx, values, f"window {window.point_id}")
        kw.setdefault("nominal_frequency_hz", window.nominal_frequency_hz)
        kw.setdefault("inception_index", window.inception_index)
        kw.setdefault("point_id", window.point_id)
        return cls(v, i, window.sampling_rate_hz, clock, source="window", **kw)

    @classmethod
    def from_comtrade(cls, cfg_path: str | Path, clock: Clock, **kw: Any) -> ReplayDaq:
        """Read a COMTRADE record. Channels are matched by unit (V/kV → voltage, A/kA →
        current) and phase (the ``ph`` field, else the channel name's last letter); values on the
        secondary side (``S``) are scaled to primary with the channel's primary/secondary ratio."""
        try:
            import comtrade  # the independent PyPI reader
        except ImportError as exc:  # pragma: no cover - dependency missing
            raise ReplayError("reading COMTRADE needs the 'comtrade' package") from exc
        path = Path(cfg_path)
        if not path.exists():
            raise ReplayError(f"COMTRADE file {path} does not exist")
        rec = comtrade.Comtrade(ignore_warnings=True)
        try:
            rec.load(str(path))
        except Exception as exc:  # the reader raises many kinds on a bad file
            raise ReplayError(f"{path}: not a readable COMTRADE record ({exc})") from exc
        rates = [r for r, _ in rec.cfg.sample_rates if r and r > 0]
        if rates:
            rate = float(rates[0])
        else:
            t = np.asarray(rec.time, dtype=np.float64)
            if t.size < 2:
                raise ReplayError(f"{path}: no sampling rate and fewer than 2 samples")
            rate = 1.0 / float(np.median(np.diff(t)))
        chans: dict[str, np.ndarray] = {}
        for ch, data in zip(rec.cfg.analog_channels, rec.analog, strict=False):
            unit = (ch.uu or "").strip()
            kind = {"v": "v", "kv": "v", "a": "i", "ka": "i"}.get(unit.lower())
            if kind is None:
                continue
            ph = (ch.ph or "").strip().lower()[-1:] or (ch.name or "").strip().lower()[-1:]
            if ph not in PHASES:
                continue
            arr = np.asarray(data, dtype=np.float64)
            if unit.lower().startswith("k"):
                arr = arr * 1000.0
            if (ch.pors or "P").upper().startswith("S") and ch.secondary:
                arr = arr * float(ch.primary) / float(ch.secondary)
            chans.setdefault(kind + ph, arr)
        v, i = _pick_channels(
            {c: n for n, c in enumerate(chans)}, np.array(list(chans.values())), str(path)
        )
        kw.setdefault("nominal_frequency_hz", float(rec.frequency or 50.0))
        trig = rec.trigger_time  # seconds from the first sample
        if trig and trig > 0 and "inception_index" not in kw:
            kw["inception_index"] = round(trig * rate)
        return cls(v, i, rate, clock, source=str(path), **kw)

    @classmethod
    def from_csv(cls, path: str | Path, clock: Clock, **kw: Any) -> ReplayDaq | RmsReplayDaq:
        """A waveform CSV (``t_s`` + ``va…ic``) or an RMS CSV (``t_s`` + ``voltage_v_a…``)."""
        path = Path(path)
        if not path.exists():
            raise ReplayError(f"CSV file {path} does not exist")
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        if len(rows) < 2:
            raise ReplayError(f"{path}: needs a header line and at least one data line")
        header = [h.strip().lower() for h in rows[0]]
        if "t_s" not in header:
            raise ReplayError(f"{path}: column 't_s' (seconds from the start) is missing")
        try:
            data = np.array([[float(c) for c in r] for r in rows[1:] if r], dtype=np.float64)
        except ValueError as exc:
            raise ReplayError(f"{path}: every value must be a number ({exc})") from exc
        if data.shape[1] != len(header):
            raise ReplayError(f"{path}: data lines must have {len(header)} columns")
        cols = {h: data[:, n] for n, h in enumerate(header)}
        if any(h.startswith("voltage_v") for h in header):
            return RmsReplayDaq(cols, clock, source=str(path), **kw)
        t = cols["t_s"]
        if t.size < 2:
            raise ReplayError(f"{path}: a waveform needs at least 2 samples")
        dt = np.diff(t)
        rate = 1.0 / float(np.median(dt))
        if np.any(np.abs(dt * rate - 1.0) > 0.01):
            raise ReplayError(f"{path}: column t_s must be uniformly spaced (one sampling rate)")
        names = [h for h in header if h != "t_s"]
        v, i = _pick_channels(
            {c: n for n, c in enumerate(names)}, np.array([cols[c] for c in names]), str(path)
        )
        return cls(v, i, rate, clock, source=str(path), **kw)

    # -- playback -----------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return self.v.shape[1]

    def sample_time_ns(self, index: int) -> int:
        return self.origin_ns + round(index * 1e9 / self.rate_hz)

    def _played(self, now_ns: int) -> int:
        """Number of samples played by ``now_ns`` (may exceed the record when looping)."""
        return math.floor((now_ns - self.origin_ns) * self.rate_hz / 1e9) + 1

    def _slice(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(start, stop)
        if self.loop:
            return np.take(self.v, idx, axis=1, mode="wrap"), np.take(
                self.i, idx, axis=1, mode="wrap"
            )
        return self.v[:, idx], self.i[:, idx]

    async def read_rms(self) -> Telemetry:
        now = self.clock.now_ns()
        played = self._played(now)
        if played < self.n_cycle:
            raise ReplayEnded(f"replay {self.source}: playback has not reached one full cycle yet")
        if not self.loop and played > self.n_samples:
            raise ReplayEnded(
                f"replay {self.source} ended at sample {self.n_samples} "
                f"({self.n_samples / self.rate_hz:.3f} s); use loop=true to repeat it"
            )
        width = min(played, self.n_cycle * max(self.rms_cycles, 2))
        start = played - width
        v, i = self._slice(start, played)
        m = measure_cycles(
            v,
            i,
            self.rate_hz,
            self.nominal_hz,
            end=width,
            cycles=self.rms_cycles,
            first_sample_ns=self.sample_time_ns(start),
        )
        return Telemetry(
            device_id=self.device_id,
            ts=self.clock.utcnow(),
            voltage_v=_r(m.voltage_rms),
            current_a=_r(m.current_rms),
            active_power_w=_r(m.active_power_w),
            reactive_power_var=_r(m.reactive_power_var),
            power_factor=_r(m.power_factor, 4),
            voltage_angle_deg=_r(np.degrees(np.angle(m.voltage_phasor)), 3),
            current_angle_deg=_r(np.degrees(np.angle(m.current_phasor)), 3),
            frequency_hz=round(m.frequency_hz, 4) if m.frequency_hz else self.nominal_hz,
            phase=self.phases[0] if len(self.phases) == 1 else None,  # type: ignore[arg-type]
        )

    async def read_window(
        self, pre_s: float, post_s: float, around_ns: int | None = None
    ) -> WaveformWindow:
        if pre_s < 0 or post_s < 0 or pre_s + post_s <= 0:
            raise ValueError("pre_s and post_s must be >= 0 and not both 0")
        now = self.clock.now_ns()
        if around_ns is None:
            inc = self.inception_index
            if inc is not None and self._played(now) > inc:
                around_ns = self.sample_time_ns(inc)
            else:
                around_ns = now - int(post_s * 1e9)
        center = math.floor((around_ns - self.origin_ns) * self.rate_hz / 1e9)
        start = center - round(pre_s * self.rate_hz)
        stop = center + round(post_s * self.rate_hz)
        if not self.loop:
            start, stop = max(start, 0), min(stop, self.n_samples)
        if stop - start < 1:
            raise ValueError(
                f"around_ns={around_ns}: the requested window lies outside the record "
                f"({self.source}, {self.n_samples} samples from {self.origin_ns})"
            )
        # a DAQ cannot return samples that have not happened yet: wait for the post-trigger part
        ready_ns = self.sample_time_ns(stop)
        while self.clock.now_ns() < ready_ns:
            await self.clock.sleep((ready_ns - self.clock.now_ns()) / 1e9)
        v, i = self._slice(start, stop)
        values = np.concatenate([v, i])
        codes = np.rint(values / self._pick_scale()[:, None]).astype(np.int64)
        inc = self.inception_index
        inc_rel = None
        if inc is not None and start <= inc < stop and (not self.loop or inc < self.n_samples):
            inc_rel = inc - start
        channels = [f"v{p}" for p in self.phases] + [f"i{p}" for p in self.phases]
        return WaveformWindow.from_codes(
            codes,
            list(map(float, self._pick_scale())),
            point_id=self.point_id,
            sampling_rate_hz=self.rate_hz,
            start_ns=self.sample_time_ns(start),
            nominal_frequency_hz=self.nominal_hz,
            channels=channels,
            units=["V"] * len(self.phases) + ["A"] * len(self.phases),
            adc_bits=self.adc_bits,
            inception_index=inc_rel,
        )

    def _pick_scale(self) -> np.ndarray:
        return self._scale


class RmsReplayDaq:
    """Replays a CSV of RMS readings: the row at or before the playback time. No waveforms."""

    FIELDS = ("voltage_v", "current_a", "active_power_w", "reactive_power_var", "power_factor")

    def __init__(
        self,
        cols: dict[str, np.ndarray],
        clock: Clock,
        *,
        device_id: str = "replay",
        phase: str | None = None,
        origin_ns: int | None = None,
        loop: bool = False,
        source: str = "csv",
        **_: Any,
    ) -> None:
        self.t = cols["t_s"]
        if np.any(np.diff(self.t) <= 0):
            raise ReplayError(f"{source}: column t_s must increase")
        self.cols = cols
        self.clock = clock
        self.device_id = device_id
        self.origin_ns = clock.now_ns() if origin_ns is None else int(origin_ns)
        self.loop = loop
        self.source = source
        suffixes = [p for p in PHASES if f"voltage_v_{p}" in cols]
        if "voltage_v" in cols:
            if phase not in PHASES:
                raise ReplayError(f"{source}: a single-phase CSV needs phase= one of a, b, c")
            self.phases: tuple[str, ...] = (phase,)
            self._key = lambda f, p: f
        elif len(suffixes) == 3:
            self.phases = PHASES
            self._key = lambda f, p: f"{f}_{p}"
        else:
            raise ReplayError(
                f"{source}: needs voltage_v (single phase) or voltage_v_a/_b/_c columns"
            )
        for need in ("current_a",):
            for p in self.phases:
                if self._key(need, p) not in cols:
                    raise ReplayError(f"{source}: column {self._key(need, p)} is missing")

    def _row(self) -> int:
        elapsed = (self.clock.now_ns() - self.origin_ns) / 1e9
        if self.loop and self.t[-1] > 0:
            span = self.t[-1] + (self.t[-1] - self.t[-2] if self.t.size > 1 else 1.0)
            elapsed = elapsed % span
        k = int(np.searchsorted(self.t, elapsed, side="right")) - 1
        if k < 0:
            raise ReplayEnded(f"replay {self.source}: playback is before the first row")
        return k

    async def read_rms(self) -> Telemetry:
        k = self._row()
        fields: dict[str, Any] = {}
        for f in self.FIELDS:
            keys = [self._key(f, p) for p in self.phases]
            if all(key in self.cols for key in keys):
                fields[f] = [float(self.cols[key][k]) for key in keys]
        for f in ("frequency_hz", "energy_wh"):
            if f in self.cols:
                fields[f] = float(self.cols[f][k])
        return Telemetry(
            device_id=self.device_id,
            ts=self.clock.utcnow(),
            phase=self.phases[0] if len(self.phases) == 1 else None,  # type: ignore[arg-type]
            **fields,
        )

    async def read_window(
        self, pre_s: float, post_s: float, around_ns: int | None = None
    ) -> WaveformWindow:
        raise NotImplementedError(
            f"replay {self.source} holds RMS readings only; waveforms need a waveform CSV "
            "or a COMTRADE record"
        )


def _pick_channels(
    idx: dict[str, int], values: np.ndarray, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Voltage and current rows, three-phase (va…ic) or single-phase (v/i, or one va+ia pair)."""
    if all(c in idx for c in VOLTAGE_CHANNELS + CURRENT_CHANNELS):
        return (
            values[[idx[c] for c in VOLTAGE_CHANNELS]],
            values[[idx[c] for c in CURRENT_CHANNELS]],
        )
    for vname, iname in [("v", "i"), *zip(VOLTAGE_CHANNELS, CURRENT_CHANNELS, strict=True)]:
        if vname in idx and iname in idx:
            return values[[idx[vname]]], values[[idx[iname]]]
    raise ReplayError(
        f"{source}: needs channels va vb vc ia ib ic (or one voltage/current pair), "
        f"found {sorted(idx)}"
    )


def _r(values: Sequence[float] | np.ndarray, digits: int = 6) -> list[float]:
    return [round(float(x), digits) for x in values]
