"""``gridedge twin serve`` (the network interface) and ``gridedge twin window`` (one fault record:
table of DFT phasors against the twin's truth, a plot, COMTRADE files)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from gridedge.dsp import samples_per_cycle

console = Console()


def _fault_spec(spec: str):  # type: ignore[no-untyped-def]
    """``branch:fraction:kind:r_f_ohm[:phases]`` → Fault."""
    from gridedge.twin.errors import TwinError
    from gridedge.twin.faults import Fault

    parts = spec.split(":")
    if len(parts) < 1 or not parts[0]:
        raise typer.BadParameter(
            "expected BRANCH[:FRACTION[:KIND[:R_F_OHM[:PHASES]]]]", param_hint="--fault"
        )
    try:
        fraction = float(parts[1]) if len(parts) > 1 else 0.5
        r_f = float(parts[3]) if len(parts) > 3 else 0.0
    except ValueError as exc:
        raise typer.BadParameter(f"{spec!r}: {exc}", param_hint="--fault") from None
    try:
        return Fault(
            branch_id=parts[0],
            fraction=fraction,
            kind=parts[2] if len(parts) > 2 else "1ph",  # type: ignore[arg-type]
            r_f_ohm=r_f,
            phases=parts[4] if len(parts) > 4 else None,
        )
    except TwinError as exc:
        raise typer.BadParameter(f"{exc.field}: {exc.reason}", param_hint="--fault") from None


def _daq(rate: float, adc_bits: int, noise_lsb: float, hold_us: float | None):  # type: ignore[no-untyped-def]
    from gridedge.twin.waveforms import DaqSpec

    try:
        return DaqSpec(
            rate_hz=rate,
            adc_bits=adc_bits,
            noise_lsb_rms=noise_lsb,
            hold_step_s=hold_us * 1e-6 if hold_us else None,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def plot_window(window, path: Path, *, title: str, trip_ns: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """Voltages and currents of a window: the whole record (left) and ±3 cycles around fault
    inception (right), inception and trip marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = window.values()
    if window.primary_ratio:
        v = v * np.asarray(window.primary_ratio)[:, None]
    k0 = window.inception_index if window.inception_index is not None else 0
    t_ms = (np.arange(window.n_samples) - k0) / window.sampling_rate_hz * 1e3
    trip_ms = None
    if trip_ns is not None:
        t_inc_ns = window.start_ns + round(k0 * 1e9 / window.sampling_rate_hz)
        trip_ms = (trip_ns - t_inc_ns) / 1e6
    n = samples_per_cycle(window.sampling_rate_hz, window.nominal_frequency_hz)
    z = slice(max(0, k0 - 3 * n), min(window.n_samples, k0 + 4 * n))
    colours = ("#d62728", "#2ca02c", "#1f77b4")
    fig, axes = plt.subplots(2, 2, figsize=(13, 7.5), sharex="col",
                             gridspec_kw={"width_ratios": [1.6, 1]})  # fmt: skip
    for col, sl in enumerate((slice(None), z)):
        for row, (chs, scale, unit) in enumerate((((0, 1, 2), 1e-3, "kV"), ((3, 4, 5), 1.0, "A"))):
            ax = axes[row, col]
            for c, colour in zip(chs, colours, strict=True):
                ax.plot(t_ms[sl], v[c, sl] * scale, color=colour, lw=0.9,
                        label=f"{window.channels[c][0]}{window.channels[c][1]}")  # fmt: skip
            if window.inception_index is not None:
                ax.axvline(0.0, color="k", ls="--", lw=1.0, label="fault inception")
            if trip_ms is not None and t_ms[sl][0] <= trip_ms <= t_ms[sl][-1]:
                ax.axvline(trip_ms, color="#9467bd", ls=":", lw=1.4, label="breaker trip")
            ax.set_ylabel(f"{'voltage' if row == 0 else 'current'} ({unit})")
            ax.grid(alpha=0.3)
            if col == 0:
                lo, hi = ax.get_ylim()
                ax.set_ylim(lo, hi + 0.3 * (hi - lo))  # room for the legend above the traces
                ax.legend(loc="upper left", fontsize=8, ncol=5)
        axes[1, col].set_xlabel("time from fault inception (ms)")
    axes[0, 0].set_title("whole record")
    axes[0, 1].set_title("±3 cycles around inception")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        grid: Annotated[
            str, typer.Option(help="grid name (gridedge twin grids)")
        ] = "turin-2feeder",
        host: Annotated[
            str, typer.Option(help="bind address (loopback unless you mean it)")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535)] = 8300,
        clock: Annotated[str, typer.Option(help="wall | accelerated | stepped")] = "wall",
        speed: Annotated[
            float, typer.Option(help="accelerated clock: sim seconds per second")
        ] = 1.0,
        trip_delay: Annotated[float, typer.Option(help="feeder protection delay (s)")] = 0.3,
        rate: Annotated[float, typer.Option(help="meter sampling rate (Hz)")] = 3200.0,
        adc_bits: Annotated[int, typer.Option(help="DAQ resolution")] = 12,
        noise_lsb: Annotated[float, typer.Option(help="DAQ input noise, LSB rms")] = 0.5,
        accuracy_class: Annotated[float, typer.Option(help="telemetry accuracy class (%)")] = 0.5,
        profiles: Annotated[
            str, typer.Option(help="load profile for every load (none = static)")
        ] = "none",
        seed: Annotated[int, typer.Option(help="seed of noise and meter errors")] = 0,
    ) -> None:
        """Serve a twin to meter nodes over HTTP (points, windows, switches, relays, events)."""
        from gridedge.twin.errors import TwinError
        from gridedge.twin.model import Twin
        from gridedge.twin.profiles import ProfileDriver
        from gridedge.twin.server import TwinServiceOptions, make_clock
        from gridedge.twin.server import serve as run_server
        from gridedge.twin.telemetry import MeterAccuracy

        if clock not in ("wall", "accelerated", "stepped"):
            raise typer.BadParameter("must be wall, accelerated or stepped", param_hint="--clock")
        try:
            clk = make_clock(clock, speed)
            twin = Twin.from_name(grid, clock=clk, trip_delay_s=trip_delay)
        except (TwinError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--grid/--speed/--trip-delay") from None
        drv = None
        if profiles != "none":
            try:
                drv = ProfileDriver.uniform(list(twin.load_ids), load_profile=profiles)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--profiles") from None
        opts = TwinServiceOptions(
            daq=_daq(rate, adc_bits, noise_lsb, None),
            accuracy=MeterAccuracy(accuracy_class),
            seed=seed,
            profiles=drv,
        )
        console.print(f"twin [bold]{grid}[/] on http://{host}:{port} (clock {clock}); "
                      f"points: {', '.join(p.id for p in twin.measurement_points)}")  # fmt: skip
        run_server(twin, host=host, port=port, options=opts)

    @app.command()
    def window(
        fault: Annotated[
            str,
            typer.Option(help="BRANCH:FRACTION:KIND:R_F_OHM[:PHASES], e.g. L-A2-A3:0.5:1ph:0.001"),
        ],
        grid: Annotated[str, typer.Option(help="grid name")] = "turin-2feeder",
        point: Annotated[str, typer.Option(help="measurement point")] = "M1",
        pre: Annotated[float, typer.Option(help="seconds before inception")] = 0.5,
        post: Annotated[float, typer.Option(help="seconds after inception")] = 0.5,
        trip_delay: Annotated[float, typer.Option(help="feeder protection delay (s)")] = 0.3,
        angle: Annotated[
            float | None, typer.Option(help="inception point on wave of Va (deg, 0 = rising zero)")
        ] = None,
        rate: Annotated[float, typer.Option(help="sampling rate (Hz)")] = 3200.0,
        adc_bits: Annotated[int, typer.Option(help="ADC resolution")] = 12,
        noise_lsb: Annotated[float, typer.Option(help="DAQ noise, LSB rms")] = 0.5,
        hold_us: Annotated[
            float | None, typer.Option(help="simulator zero-order hold step (µs), e.g. 250")
        ] = None,
        seed: Annotated[int, typer.Option()] = 0,
        plot: Annotated[Path | None, typer.Option(help="write a PNG of the record")] = None,
        comtrade: Annotated[
            Path | None, typer.Option(help="write COMTRADE .cfg/.dat into this folder")
        ] = None,
        json_out: Annotated[
            Path | None, typer.Option("--json", help="write the WaveformWindow JSON")
        ] = None,
    ) -> None:
        """Record one fault at a measurement point as its meter's DAQ would, and compare the
        meter's one-cycle DFT phasors with the twin's phasors."""
        from gridedge.clock import Clock
        from gridedge.twin.comtrade import write_comtrade
        from gridedge.twin.errors import TwinError
        from gridedge.twin.model import Twin
        from gridedge.twin.server import TwinService, TwinServiceOptions
        from gridedge.twin.waveforms import inception_at_angle, point_phasors, window_phasors

        f = _fault_spec(fault)
        daq = _daq(rate, adc_bits, noise_lsb, hold_us)
        if not 0 < pre + post <= 10:
            raise typer.BadParameter("pre + post must be in (0, 10] s", param_hint="--post")
        t0 = time.time_ns() // 1_000_000_000 * 1_000_000_000
        try:
            twin = Twin.from_name(
                grid, clock=Clock("stepped", start_ns=t0), trip_delay_s=trip_delay
            )
        except TwinError as exc:
            raise typer.BadParameter(f"{exc.field}: {exc.reason}", param_hint="--grid") from None
        svc = TwinService(twin, TwinServiceOptions(daq=daq, seed=seed))
        if point not in svc.points:
            raise typer.BadParameter(
                f"{point!r} is not a point of {grid} (known: {', '.join(svc.points)})",
                param_hint="--point",
            )
        p = svc.points[point]
        twin.advance(pre + 0.1)
        pre_state = twin.state
        if angle is not None:
            now = twin.clock.now_ns()
            twin.advance((inception_at_angle(p, pre_state, now, angle) - now) / 1e9)
        try:
            during = twin.apply_fault(f)
        except TwinError as exc:
            raise typer.BadParameter(f"{exc.field}: {exc.reason}", param_hint="--fault") from None
        t_inc = svc.latest_inception_ns()
        assert t_inc is not None
        twin.advance(post + 0.01)
        syn = asyncio.run(svc.window(point, pre, post, "fault", None, None))
        w = syn.window
        trips = [ev for ev in twin.events if ev.kind == "trip"]
        trip_ns = int(trips[0].time_ns) if trips else None

        n = samples_per_cycle(w.sampling_rate_hz, w.nominal_frequency_hz)
        k = w.inception_index or 0
        pre_ph = window_phasors(w, max(0, k - n))
        # the "during" cycle: the last whole cycle before the breaker trips (or the record
        # ends), where the DC offset has decayed most — the seed's "after fault, before
        # protection" cycle
        end = w.n_samples
        if trip_ns is not None:
            end = min(end, math.floor((trip_ns - w.start_ns) * w.sampling_rate_hz / 1e9))
        dur_start = max(k, end - n)
        dur_ph = window_phasors(w, dur_start)
        truth_pre, truth_dur = point_phasors(p, pre_state), point_phasors(p, during)
        table = Table(title=f"{grid} {point}: fault {f.kind} on {f.branch_id} at {f.fraction:g}, "
                            f"Rf {f.r_f_ohm:g} Ω — one-cycle DFT vs twin")  # fmt: skip
        for col in ("channel", "pre |X| twin", "pre |X| DFT", "err %", "fault |X| twin",
                    "fault |X| DFT", "err %", "Δangle °", "clipped"):  # fmt: skip
            table.add_column(col, justify="right")
        rows = []
        for c, name in enumerate(w.channels):
            e1 = (
                100 * (abs(pre_ph[c]) / abs(truth_pre[c]) - 1)
                if abs(truth_pre[c]) > 0
                else math.nan
            )
            e2 = (
                100 * (abs(dur_ph[c]) / abs(truth_dur[c]) - 1)
                if abs(truth_dur[c]) > 0
                else math.nan
            )
            da = (
                math.degrees(np.angle(dur_ph[c] / truth_dur[c]))
                if abs(truth_dur[c]) > 0
                else math.nan
            )
            unit = w.units[c]
            rows.append({"channel": name, "pre_twin": abs(truth_pre[c]), "pre_dft": abs(pre_ph[c]),
                         "fault_twin": abs(truth_dur[c]), "fault_dft": abs(dur_ph[c]),
                         "fault_angle_err_deg": da, "clipped": int(syn.clipped[c])})  # fmt: skip
            table.add_row(name, f"{abs(truth_pre[c]):.1f} {unit}", f"{abs(pre_ph[c]):.1f}", f"{e1:+.2f}",
                          f"{abs(truth_dur[c]):.1f} {unit}", f"{abs(dur_ph[c]):.1f}", f"{e2:+.2f}",
                          f"{da:+.2f}", str(int(syn.clipped[c])))  # fmt: skip
        console.print(table)
        console.print(f"{w.n_samples} samples at {w.sampling_rate_hz:g} Hz, {w.adc_bits}-bit; inception "
                      f"at sample {w.inception_index}; DC-offset τ = "
                      f"{(syn.tau_s or 0) * 1e3:.1f} ms; trip "
                      f"{'%.0f ms after inception' % ((trip_ns - t_inc) / 1e6) if trip_ns else 'none in window'}")  # fmt: skip
        if plot is not None:
            plot.parent.mkdir(parents=True, exist_ok=True)
            plot_window(w, plot, trip_ns=trip_ns,
                        title=f"{grid}, meter {point}: {f.kind} fault on {f.branch_id} at "
                              f"{f.fraction:g} (Rf = {f.r_f_ohm:g} Ω), {w.sampling_rate_hz:g} Hz, "
                              f"{w.adc_bits}-bit, breaker trip after {trip_delay:g} s")  # fmt: skip
            console.print(f"plot: {plot}")
        if comtrade is not None:
            cfg, dat = write_comtrade(w, comtrade, f"{grid}_{point}_{f.branch_id}", station=grid)
            console.print(f"COMTRADE: {cfg} {dat}")
        if json_out is not None:
            json_out.write_text(json.dumps({"window": json.loads(w.to_json()), "channels": rows,
                                            "trip_ns": trip_ns, "inception_ns": t_inc}, indent=1))  # fmt: skip
            console.print(f"json: {json_out}")
