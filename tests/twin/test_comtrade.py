"""COMTRADE export read back by an independent implementation (PyPI ``comtrade``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import comtrade
import numpy as np
import pytest

from gridedge.twin.comtrade import binary_record_size, write_comtrade
from gridedge.twin.waveforms import DaqSpec, synthesize_window
from tests.twin.test_waveforms import POINT, T0, fault_state, pre_state


def fault_window(**daq: object):  # type: ignore[no-untyped-def]
    return synthesize_window(
        POINT, pre_state(), fault_state(), pre_s=0.1, post_s=0.2,
        daq=DaqSpec(noise_lsb_rms=1.0, **daq), rng=np.random.default_rng(5),  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("revision", "fmt"),
    [(2013, "BINARY"), (2013, "ASCII"), (2013, "BINARY32"), (1999, "BINARY"), (1999, "ASCII")],
)
def test_round_trip_through_independent_reader(tmp_path: Path, revision: int, fmt: str) -> None:
    w = fault_window()
    cfg, dat = write_comtrade(w, tmp_path, "rec", revision=revision, fmt=fmt)  # type: ignore[arg-type]
    rec = comtrade.load(str(cfg), str(dat), use_double_precision=True)
    assert rec.rev_year == str(revision)
    assert rec.station_name == "gridedge-twin"
    assert rec.analog_count == 6 and rec.status_count == 0
    assert rec.analog_channel_ids == ["VA", "VB", "VC", "IA", "IB", "IC"]
    assert rec.frequency == 50.0
    assert rec.total_samples == w.n_samples
    np.testing.assert_allclose(np.array(rec.analog), w.values(), rtol=1e-12, atol=1e-9)
    t = np.array(rec.time)
    np.testing.assert_allclose(t, np.arange(w.n_samples) / w.sampling_rate_hz, atol=1e-9)
    # time stamps: first sample and trigger (fault inception), UTC, microsecond resolution
    start = datetime.fromtimestamp(w.start_ns // 1000 / 1e6, tz=UTC).replace(tzinfo=None)
    assert rec.start_timestamp == start
    assert rec.trigger_time == pytest.approx(w.inception_index / w.sampling_rate_hz, abs=1e-6)
    assert [c.uu for c in rec.cfg.analog_channels] == ["V", "V", "V", "A", "A", "A"]
    assert [c.ph for c in rec.cfg.analog_channels] == ["A", "B", "C"] * 2
    if fmt != "ASCII":
        assert dat.stat().st_size == w.n_samples * binary_record_size(6, fmt)  # type: ignore[arg-type]


def test_secondary_values_carry_their_ratio(tmp_path: Path) -> None:
    from gridedge.twin.state import MeasurementPoint

    point = MeasurementPoint("M1", "N1", "L1", vt_ratio=200.0, ct_ratio=80.0)
    w = synthesize_window(point, pre_state(), None, pre_s=0.05, post_s=0.05,
                          daq=DaqSpec(secondary=True))  # fmt: skip
    cfg, dat = write_comtrade(w, tmp_path)
    rec = comtrade.load(str(cfg), str(dat), use_double_precision=True)
    chans = rec.cfg.analog_channels
    assert [c.pors for c in chans] == ["S"] * 6
    assert [c.primary for c in chans] == [200.0] * 3 + [80.0] * 3
    np.testing.assert_allclose(np.array(rec.analog), w.values(), rtol=1e-12)
    assert cfg.name == f"M1_{w.start_ns}.cfg"
    assert w.start_ns < T0


def test_bad_arguments(tmp_path: Path) -> None:
    w = fault_window()
    with pytest.raises(ValueError, match="revision"):
        write_comtrade(w, tmp_path, revision=2001)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fmt"):
        write_comtrade(w, tmp_path, fmt="FLOAT64")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="BINARY32 needs revision 2013"):
        write_comtrade(w, tmp_path, fmt="BINARY32", revision=1999)
    w20 = fault_window(adc_bits=20)
    with pytest.raises(ValueError, match="BINARY32"):
        write_comtrade(w20, tmp_path, fmt="BINARY")
    cfg, dat = write_comtrade(w20, tmp_path, "r20", fmt="BINARY32")
    rec = comtrade.load(str(cfg), str(dat), use_double_precision=True)
    np.testing.assert_allclose(np.array(rec.analog), w20.values(), rtol=1e-12)
