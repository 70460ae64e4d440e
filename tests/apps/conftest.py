from __future__ import annotations

import asyncio
import contextlib

import pytest


@pytest.fixture
async def start_app():
    """Start ``app.run(ctx)`` as a task; cancelled (as the runtime would) at teardown."""
    tasks: list[asyncio.Task] = []

    def _start(app, ctx) -> asyncio.Task:
        task = asyncio.ensure_future(app.run(ctx))
        tasks.append(task)
        return task

    yield _start
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task
