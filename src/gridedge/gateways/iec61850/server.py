"""Run the gateway (its REST app under uvicorn + the MMS shards) in its own thread and event loop,
for the CLI, the benchmark and tests alike."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import uvicorn

from gridedge.broker.mosquitto import free_port
from gridedge.gateways.iec61850.gateway import Gateway, GatewayOptions
from gridedge.gateways.iec61850.rest import create_app


class GatewayRunner:
    def __init__(
        self, opts: GatewayOptions, host: str = "127.0.0.1", port: int | None = None
    ) -> None:
        self.opts = opts
        self.host = host
        self.port = port or free_port(host)
        self.gateway: Gateway | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> GatewayRunner:
        self._thread = threading.Thread(target=self._run, name="iec61850-gateway", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError("gateway did not start in time")
        if self._error is not None:
            raise RuntimeError(f"gateway failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.gateway = await Gateway(self.opts).start()
        config = uvicorn.Config(
            create_app(self.gateway),
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        serve = asyncio.create_task(self._server.serve())
        while not self._server.started and not serve.done():
            await asyncio.sleep(0.01)
        if serve.done():
            serve.result()
        self._ready.set()
        try:
            await serve
        finally:
            await self.gateway.stop()

    def call(self, coro: Any, timeout_s: float = 30.0) -> Any:
        """Run a coroutine on the gateway's loop from another thread."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        with contextlib.suppress(Exception):
            self._thread = None

    def __enter__(self) -> GatewayRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
