"""Helpers for the node tests: versioned app packages built on the fly, MQTT collectors."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from pathlib import Path
from typing import Any

from gridedge.broker.client import MqttClient
from gridedge.node import packages

APP_CODE = """
import json, time

VERSION = "{version}"


class App:
    def __init__(self):
        self.interval_s = 0.05

    def on_params(self, params):
        self.interval_s = params.get("interval_s", self.interval_s)

    async def run(self, ctx):
        self.on_params(ctx.params)
        n = 0
        while True:
            n += 1
            ctx.publish("{stream}", json.dumps({{"version": VERSION, "n": n, "t": time.time()}}).encode())
            await ctx.sleep(self.interval_s)


def factory():
    return App()
"""


def make_app_dir(
    root: Path,
    name: str,
    version: str,
    *,
    stream: str = "versioned",
    min_version: str | None = None,
    code: str | None = None,
    schema: dict[str, Any] | None = None,
    **manifest: Any,
) -> Path:
    d = root / f"{name}-{version}-src"
    (d / "vapp").mkdir(parents=True, exist_ok=True)
    (d / "vapp" / "__init__.py").write_text(
        textwrap.dedent(code or APP_CODE.format(version=version, stream=stream))
    )
    m: dict[str, Any] = {
        "name": name,
        "version": version,
        "entry_point": "vapp:factory",
        "targets": ["edge"],
        "params_schema": schema
        or {
            "type": "object",
            "properties": {"interval_s": {"type": "number", "exclusiveMinimum": 0}},
            "additionalProperties": False,
        },
        "watchdog_s": 2.0,
        **manifest,
    }
    if min_version:
        m["min_version"] = min_version
    (d / "manifest.json").write_text(json.dumps(m))
    return d


def build_signed(root: Path, key: Path, name: str, version: str, **kw: Any) -> tuple[bytes, str]:
    src = make_app_dir(root, name, version, **kw)
    out = root / f"{name}-{version}.zip"
    packages.pack(src, out)
    data = out.read_bytes()
    return data, packages.sign_bytes(data, packages.load_private_key(key))


class Collector:
    """Subscribes to a pattern and keeps (receive time, topic, parsed JSON) in order."""

    def __init__(self, url: str, pattern: str) -> None:
        self.url = url
        self.pattern = pattern
        self.items: list[tuple[float, str, Any]] = []
        self.client = MqttClient(url)

    async def __aenter__(self) -> Collector:
        await self.client.connect()
        self.client.subscribe(self.pattern, self._on, qos=1)
        await asyncio.sleep(0.2)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.disconnect()

    def _on(self, t: str, payload: bytes) -> None:
        try:
            body = json.loads(payload) if payload else None
        except ValueError:
            body = payload
        self.items.append((time.monotonic(), t, body))

    def on(self, stream: str) -> list[tuple[float, Any]]:
        return [(ts, b) for ts, t, b in self.items if t.endswith("/" + stream)]

    async def wait_for(self, pred: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"condition not met within {timeout} s; {len(self.items)} messages seen"
        )
