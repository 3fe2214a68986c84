"""Shared helpers of the client tests: run a coroutine with a Client against a real sandbox,
and check that nothing is left running afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from krakenws.client import Client, ClientEvent, Stream
from krakenws.testing import RunningSandbox, run_sandbox

_T = TypeVar("_T")


def sandbox_fixture(**options: Any) -> Any:
    """A module-scoped fixture running one sandbox (``run_sandbox`` options) for the module."""

    @pytest.fixture(scope="module")
    def sandbox() -> Iterator[RunningSandbox]:
        with run_sandbox(**options) as running:
            yield running

    return sandbox


def client_for(sandbox: RunningSandbox, **options: Any) -> Client:
    """A client of ``sandbox`` with its test key (options override the defaults)."""
    settings: dict[str, Any] = {
        "sandbox": sandbox.rest_url,
        "api_key": sandbox.api_key,
        "api_secret": sandbox.api_secret,
        "request_timeout": 10.0,
    }
    settings.update(options)
    return Client(**settings)


def run(body: Callable[[], Awaitable[_T]], *, timeout: float = 120.0) -> _T:
    """Run ``body`` in a fresh event loop; fail if it leaves tasks behind."""

    async def main() -> _T:
        async with asyncio.timeout(timeout):
            result = await body()
        await asyncio.sleep(0)
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        assert not leftovers, f"tasks left running: {leftovers}"
        return result

    return asyncio.run(main())


def drain(events: Stream[ClientEvent]) -> list[ClientEvent]:
    """Every event already queued on ``events`` (without waiting)."""
    found = []
    while events.pending():
        found.append(events._items.popleft())
    return found


async def admin(sandbox: RunningSandbox, path: str, body: dict[str, object] | None = None) -> Any:
    """An admin call made off the event loop (the sandbox lives in its own thread)."""
    return await asyncio.to_thread(sandbox.admin, path, body)


async def wait_until(
    predicate: Callable[[], bool], *, timeout: float = 10.0, step: float = 0.02
) -> None:
    """Poll ``predicate`` until it holds (fails the test after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)
