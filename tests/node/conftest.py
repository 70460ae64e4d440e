"""Fixtures of the node tests: a signing key the nodes trust, and a node factory on the real
catalog (``catalog_server``) and Mosquitto (``brokers``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gridedge.node import packages
from gridedge.node.runtime import Node, NodeOptions

TEST_APPS = {
    "counter": "tests.node.sample_apps:counter",
    "ticker": "tests.node.sample_apps:counter",
    "crasher": "tests.node.sample_apps:crasher",
    "staller": "tests.node.sample_apps:staller",
    "tickcrasher": "tests.node.sample_apps:tick_crasher",
}


@pytest.fixture
def signing_key(tmp_path: Path) -> Path:
    return packages.generate_key(tmp_path / "keys" / "signer.pem")[0]


@pytest.fixture
async def make_node(
    catalog_server: Any, tmp_path: Path, signing_key: Path
) -> AsyncIterator[Callable[..., Any]]:
    nodes: list[Node] = []
    pub = packages.load_public_key(signing_key.with_name(signing_key.name + ".pub"))

    async def make(device_id: str, secret: str | None, *, start: bool = True, **kw: Any) -> Node:
        opts = NodeOptions(
            device_id=device_id,
            catalog_url=kw.pop("catalog_url", catalog_server.url),
            state_dir=kw.pop("state_dir", tmp_path / "nodes" / device_id),
            secret=secret,
            trusted_keys=kw.pop("trusted_keys", [pub]),
            builtin_apps=TEST_APPS,
            backoff_base_s=0.1,
            backoff_max_s=1.0,
            app_backoff_base_s=0.1,
            **kw,
        )
        node = Node(opts)
        nodes.append(node)
        if start:
            await node.start()
        return node

    yield make
    for n in nodes:
        with contextlib.suppress(Exception):
            await n.stop()
