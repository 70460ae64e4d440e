"""A uvicorn server in a background thread with its own event loop.

Tests, benchmarks and the demo run several HTTP roles (catalog, twin interface) inside one
process; each needs the same start-up wait (fail fast when the thread dies, e.g. port in use) and
the same clean stop."""

from __future__ import annotations

import threading
import time

import uvicorn


class UvicornThread:
    def __init__(self, config: uvicorn.Config, name: str) -> None:
        self.name = name
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)

    def start(self, timeout_s: float = 30.0) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"{self.name} exited during start-up (see the log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start within {timeout_s} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout_s)
