"""Turns the catalog's app list into running apps: diff, install, hot swap, re-parameterise.

Seed 001 §III-B: apps are "added, updated, or removed on the fly without affecting the rest of
the system". Each app is its own supervised task, so a change to one never touches another. An
update is a hot swap: the new version is downloaded, verified and imported (under its own module
name, so both versions coexist) *before* the old one is stopped; if anything about the new
version is wrong, the old one keeps running and the refusal is reported with its reason.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gridedge.contracts.catalog import AppAssignment, AppUpdateState
from gridedge.node import packages
from gridedge.node.context import AppHost
from gridedge.node.packages import PackageError
from gridedge.node.supervisor import AppRunner, AppSpec

log = logging.getLogger(__name__)

Reporter = Callable[[str, str, AppUpdateState, str], Awaitable[None] | None]
Downloader = Callable[[AppAssignment], Awaitable[bytes]]
EventSink = Callable[[str, dict[str, Any]], None]

ENTRY_POINT_GROUP = "gridedge.apps"


@functools.cache
def _entry_points() -> dict[str, str]:
    """Scanning installed distributions costs ~70 ms: once per process, not once per meter."""
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def builtin_entry(name: str, extra: dict[str, str] | None = None) -> str | None:
    """``module:factory`` of a built-in app: explicit registry, then the ``gridedge.apps``
    entry-point group, then the module ``gridedge.apps.<name>`` (dashes become underscores)."""
    if extra and name in extra:
        return extra[name]
    registered = _entry_points()
    if name in registered:
        return registered[name]
    return _module_entry(name)


@functools.cache
def _module_entry(name: str) -> str | None:
    module = f"gridedge.apps.{name.replace('-', '_')}"
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    return f"{module}:factory" if spec is not None else None


def load_builtin(name: str, version: str, entry: str) -> AppSpec:
    module_name, _, attr = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise PackageError(
            f"built-in app {name}: importing {module_name} failed: {exc}", "failed"
        ) from exc
    factory = getattr(module, attr or "factory", None)
    if not callable(factory):
        raise PackageError(f"built-in app {name}: {entry} is not callable", "failed")
    meta: dict[str, Any] = dict(getattr(module, "MANIFEST", {}) or {})
    return AppSpec(
        name=name,
        version=version,
        factory=factory,
        watchdog_s=float(meta.get("watchdog_s", 30.0)),
        blocking=bool(meta.get("blocking", False)),
        params_schema=meta.get("params_schema", {"type": "object"}),
        source="builtin",
    )


class AppManager:
    def __init__(
        self,
        host: AppHost,
        state_dir: Path,
        *,
        trusted_keys: list[Ed25519PublicKey],
        report: Reporter,
        download: Downloader,
        event: EventSink,
        builtin_apps: dict[str, str] | None = None,
        backoff_base_s: float = 0.5,
    ) -> None:
        self.host = host
        self.state_dir = Path(state_dir)
        self.trusted_keys = trusted_keys
        self._report = report
        self._download = download
        self._event = event
        self.builtin_apps = builtin_apps or {}
        self.backoff_base_s = backoff_base_s
        self.runners: dict[str, AppRunner] = {}
        self.assignments: dict[str, AppAssignment] = {}
        self.app_state: dict[str, dict[str, Any]] = {}  # ctx.state, kept across restarts/updates
        self._refused: dict[tuple[str, str, str | None, str | None], str] = {}
        self._lock = asyncio.Lock()
        self._ledger_path = self.state_dir / "installed.json"
        self.ledger: dict[str, dict[str, Any]] = self._load_ledger()
        self.swap_times_s: list[float] = []
        self.incomplete = False  # an app could not be fetched (catalog away): re-apply later

    # -- ledger (anti-rollback survives restarts) ---------------------------------------------
    def _load_ledger(self) -> dict[str, dict[str, Any]]:
        try:
            return dict(json.loads(self._ledger_path.read_text()))
        except (OSError, ValueError):
            return {}

    def _save_ledger(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._ledger_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.ledger, indent=1, sort_keys=True))
        tmp.replace(self._ledger_path)

    async def _emit(self, name: str, version: str, state: AppUpdateState, reason: str = "") -> None:
        result = self._report(name, version, state, reason)
        if inspect.isawaitable(result):
            await result

    # -- resolving ----------------------------------------------------------------------------
    async def resolve(self, a: AppAssignment) -> AppSpec:
        """Built-in module or downloaded package → a verified, imported AppSpec."""
        if not a.package_url:
            entry = builtin_entry(a.name, self.builtin_apps)
            if entry is None:
                raise PackageError(
                    f"no built-in app {a.name!r} and no package registered in the catalog for "
                    f"{a.name} {a.version}",
                    "failed",
                )
            spec = load_builtin(a.name, a.version, entry)
        else:
            await self._emit(a.name, a.version, AppUpdateState.DOWNLOADING)
            data = await self._download(a)  # CatalogUnavailable propagates: retried later
            floor = None
            if a.name in self.ledger:
                entry_l = self.ledger[a.name]
                floor = packages.rollback_floor(entry_l["version"], entry_l.get("min_version"))
            info = packages.verify(
                data,
                a.signature,
                self.trusted_keys,
                expect_name=a.name,
                expect_version=a.version,
                expect_sha256=a.sha256,
                floor=floor,
            )
            m = info.manifest
            target = a.target.value if hasattr(a.target, "value") else str(a.target)
            if target not in m.targets:
                raise PackageError(f"app targets {m.targets}, the assignment runs it on {target}")
            root = packages.extract(data, self.state_dir / "apps" / a.name / a.version)
            factory = await asyncio.to_thread(packages.load_factory, root, m)
            spec = AppSpec(
                name=m.name,
                version=m.version,
                factory=factory,
                watchdog_s=m.watchdog_s,
                blocking=m.blocking,
                params_schema=m.params_schema,
                min_version=m.min_version,
                source="package",
                root=root,
            )
            await self._emit(
                a.name, a.version, AppUpdateState.VERIFIED, f"sha256 {info.sha256[:12]}"
            )
        packages.validate_params(spec.params_schema, a.params, a.name)
        return spec

    # -- applying a settings change ----------------------------------------------------------
    async def apply(self, desired: list[AppAssignment]) -> None:
        async with self._lock:
            self.incomplete = False
            want = {a.name: a for a in desired}
            for name in [n for n in self.runners if n not in want]:
                await self._remove(name)
            for a in desired:
                try:
                    await self._apply_one(a)
                except (ConnectionError, OSError) as exc:
                    self.incomplete = True
                    log.warning(
                        "app %s %s: package unavailable (%s); retrying later",
                        a.name,
                        a.version,
                        exc,
                    )

    async def _apply_one(self, a: AppAssignment) -> None:
        current = self.assignments.get(a.name)
        runner = self.runners.get(a.name)
        if (
            current is not None
            and runner is not None
            and current.version == a.version
            and (current.sha256 == a.sha256)
        ):
            if current.params != a.params:
                await self._reparameterise(runner, a)
            self.assignments[a.name] = a
            return
        key = (a.name, a.version, a.sha256, a.signature)
        if key in self._refused:
            return  # already refused and reported; wait for a different assignment
        t0 = time.perf_counter()
        try:
            spec = await self.resolve(a)
            new = AppRunner(
                self.host,
                spec,
                a.params,
                self.app_state.setdefault(a.name, {}),
                report=self._report,
                event=self._event,
                backoff_base_s=self.backoff_base_s,
            )
            # hot swap: the new version is verified and imported; now stop the old, start the new
            if runner is not None:
                await runner.stop()
            await new.start()
        except PackageError as exc:
            self._refused[key] = exc.reason
            state = AppUpdateState(exc.state)
            log.warning("app %s %s %s: %s", a.name, a.version, state.value, exc.reason)
            await self._emit(a.name, a.version, state, exc.reason)
            if runner is not None and not runner.running.is_set() and runner.instance is None:
                self.runners.pop(a.name, None)
            return
        except (ConnectionError, OSError):
            raise  # the catalog went away mid-download: the node retries on the next check-in
        except Exception as exc:
            reason = f"could not start: {type(exc).__name__}: {exc}"
            self._refused[key] = reason
            await self._emit(a.name, a.version, AppUpdateState.FAILED, reason)
            if runner is not None and runner._stopping:
                # the old one was already stopped: bring it back rather than run nothing
                old = AppRunner(
                    self.host,
                    runner.spec,
                    runner.params,
                    runner.state,
                    report=self._report,
                    event=self._event,
                    backoff_base_s=self.backoff_base_s,
                )
                await old.start()
                self.runners[a.name] = old
            return
        if runner is not None:
            self.swap_times_s.append(time.perf_counter() - t0)
            if runner.spec.source == "package" and runner.version != spec.version:
                packages.unload(runner.name, runner.version)
        self.runners[a.name] = new
        self.assignments[a.name] = a
        if spec.source == "package":
            self.ledger[a.name] = {"version": spec.version, "min_version": spec.min_version}
            self._save_ledger()

    async def _reparameterise(self, runner: AppRunner, a: AppAssignment) -> None:
        try:
            packages.validate_params(runner.spec.params_schema, a.params, a.name)
        except PackageError as exc:
            await self._emit(a.name, a.version, AppUpdateState.FAILED, exc.reason)
            return
        try:
            if runner.set_params(a.params):
                await self._emit(a.name, a.version, AppUpdateState.RUNNING, "parameters changed")
                return
        except Exception as exc:
            await self._emit(
                a.name,
                a.version,
                AppUpdateState.FAILED,
                f"on_params raised {type(exc).__name__}: {exc}; restarting with the new parameters",
            )
        # no on_params (or it failed): restart this app only, with the new parameters
        await runner.stop()
        new = AppRunner(
            self.host,
            runner.spec,
            a.params,
            runner.state,
            report=self._report,
            event=self._event,
            backoff_base_s=self.backoff_base_s,
        )
        await new.start()
        self.runners[a.name] = new

    async def _remove(self, name: str) -> None:
        runner = self.runners.pop(name)
        self.assignments.pop(name, None)
        await runner.stop()
        await self._emit(name, runner.version, AppUpdateState.STOPPED, "removed from the settings")
        if runner.spec.source == "package":
            packages.unload(runner.name, runner.version)

    async def stop_all(self) -> None:
        for name in list(self.runners):
            runner = self.runners.pop(name)
            await runner.stop()
