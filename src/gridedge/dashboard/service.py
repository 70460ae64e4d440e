"""Running the dashboard: the historian (which also feeds the live view), the grid poller, and
uvicorn serving the app — all on one event loop. :class:`DashboardThread` runs the same thing in a
background thread for the demo and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from gridedge.dashboard.app import Dashboard, create_app
from gridedge.dashboard.grid import GridUnavailable, GridView
from gridedge.dashboard.live import LiveState
from gridedge.historian.ingest import Historian
from gridedge.historian.store import HistorianStore

log = logging.getLogger(__name__)


@dataclass
class DashboardOptions:
    data_broker: str
    mgmt_broker: str | None
    db_url: str
    admin_token: str
    host: str = "127.0.0.1"
    port: int = 8080
    twin_url: str | None = None
    catalog_url: str | None = None
    grid: str | None = None
    poll_s: float = 0.3
    batch_size: int = 5000
    flush_interval_s: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)


class DashboardService:
    def __init__(self, options: DashboardOptions, grid: GridView | None = None) -> None:
        self.o = options
        self.grid = grid
        self.live = LiveState()
        self.store: HistorianStore | None = None
        self.historian: Historian | None = None
        self.dashboard: Dashboard | None = None
        self._server: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._devices_cache: tuple[float, list[dict[str, Any]]] = (0.0, [])

    @property
    def url(self) -> str:
        return f"http://{self.o.host}:{self.o.port}"

    async def _devices(self) -> list[dict[str, Any]]:
        if not self.o.catalog_url:
            return []
        at, cached = self._devices_cache
        if time.monotonic() - at < 1.0:
            return [dict(d) for d in cached]
        from gridedge.catalog.client import CatalogAdmin

        async with CatalogAdmin(self.o.catalog_url, self.o.admin_token, timeout_s=5) as cat:
            devices = (await cat.list_devices()).devices
        out = [
            d.model_dump(mode="json", include={"id", "kind", "status", "location", "capabilities"})
            for d in devices
        ]
        self._devices_cache = (time.monotonic(), out)
        return [dict(d) for d in out]

    async def start(self) -> DashboardService:
        o = self.o
        if self.grid is None and o.twin_url and o.grid:
            from gridedge.dashboard.twin_view import TwinGridView

            self.grid = TwinGridView(
                o.twin_url, grid=o.grid, catalog_url=o.catalog_url, admin_token=o.admin_token
            )
        self.store = await asyncio.to_thread(HistorianStore, o.db_url)
        self.historian = Historian(
            self.store,
            o.data_broker,
            o.mgmt_broker,
            batch_size=o.batch_size,
            flush_interval_s=o.flush_interval_s,
            client_id=f"gridedge-dashboard-{o.port}",
        )
        self.historian.add_listener(self.live.on_message)
        await self.historian.start()
        self.dashboard = Dashboard(
            self.live,
            self.store,
            self.grid,
            o.admin_token,
            historian_stats=self.historian.stats.as_dict,
            devices=self._devices,
            info=o.info,
        )
        if self.grid is not None:
            with contextlib.suppress(GridUnavailable, OSError):
                await self.dashboard.load_topology()
            self._tasks.append(asyncio.create_task(self._poll_grid(), name="dashboard-grid-poll"))
            if hasattr(self.grid, "twin"):
                self._tasks.append(
                    asyncio.create_task(self._twin_events(), name="dashboard-twin-events")
                )
        config = uvicorn.Config(
            create_app(self.dashboard),
            host=o.host,
            port=o.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._tasks.append(asyncio.create_task(self._server.serve(), name="dashboard-http"))
        deadline = time.monotonic() + 20
        while not self._server.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()  # raises the start-up error (e.g. port in use)
                raise RuntimeError(f"dashboard HTTP server exited at start (port {o.port} in use?)")
            if time.monotonic() > deadline:
                raise RuntimeError("dashboard HTTP server did not start within 20 s")
            await asyncio.sleep(0.02)
        return self

    async def _poll_grid(self) -> None:
        assert self.grid is not None and self.dashboard is not None
        failed = False
        while True:
            try:
                await self.dashboard.poll_grid()
                if self.dashboard.topology is None:
                    await self.dashboard.load_topology()
                if failed:
                    log.info("dashboard: grid interface reachable again")
                failed = False
            except (GridUnavailable, OSError) as exc:
                if not failed:
                    log.warning("dashboard: grid interface unavailable: %s", exc)
                failed = True
            await asyncio.sleep(self.o.poll_s)

    async def _twin_events(self) -> None:
        """The twin's own events (fault inception, trips, switch changes) in the event list, and an
        immediate refresh of the grid picture when one arrives."""
        twin = self.grid.twin  # type: ignore[union-attr]
        while True:
            try:
                async for ev in twin.events():
                    if ev.kind.value == "profile-step":
                        continue
                    text = ", ".join(
                        f"{k}={v}" for k, v in ev.detail.items() if not isinstance(v, (dict, list))
                    )
                    self.live.events.appendleft(
                        {
                            "ts_ns": ev.time_ns,
                            "device_id": "twin",
                            "stream": "twin",
                            "kind": ev.kind.value,
                            "payload": {"text": text},
                        }
                    )
                    self.live.bus.send("event", self.live.events[0])
                    with contextlib.suppress(GridUnavailable, OSError):
                        await self.dashboard.poll_grid()  # type: ignore[union-attr]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the twin restarted or is not up yet
                log.debug("twin event stream: %s", exc)
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        for t in reversed(self._tasks):
            if t.get_name() == "dashboard-http":
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(t, 5)
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self.historian is not None:
            await self.historian.stop()
        if self.grid is not None and hasattr(self.grid, "aclose"):
            await self.grid.aclose()  # type: ignore[union-attr]
        if self.store is not None:
            self.store.close()


class DashboardThread:
    """The service on its own event loop in a daemon thread (demo, tests)."""

    def __init__(self, options: DashboardOptions, grid: GridView | None = None) -> None:
        self.service = DashboardService(options, grid)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return self.service.url

    def start(self, timeout_s: float = 30.0) -> DashboardThread:
        def run() -> None:
            async def main() -> None:
                self._stop = asyncio.Event()
                try:
                    await self.service.start()
                except BaseException as exc:
                    self._error = exc
                    self._ready.set()
                    await self.service.stop()
                    return
                self._ready.set()
                await self._stop.wait()
                await self.service.stop()

            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(main())
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="dashboard", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"dashboard did not start within {timeout_s} s")
        if self._error is not None:
            raise RuntimeError(f"dashboard failed to start: {self._error}") from self._error
        return self

    def call(self, coro: Any, timeout_s: float = 10.0) -> Any:
        """Run a coroutine on the dashboard's loop (e.g. a historian flush) and wait for it."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        if (
            self._loop is not None
            and self._stop is not None
            and self._thread
            and self._thread.is_alive()
        ):
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._thread = None

    def __enter__(self) -> DashboardThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
