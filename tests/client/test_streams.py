"""Stream, without a server: several tasks reading one stream, and readers that give up."""

from __future__ import annotations

import asyncio

import pytest

from krakenws.errors import KrakenTimeoutError, SlowConsumerError
from krakenws.streams import Stream


def test_readers_that_time_out_leave_the_others_waiting_and_woken() -> None:
    async def main() -> None:
        stream: Stream[str] = Stream("t", maxsize=10)
        patient = asyncio.ensure_future(stream.get())
        await asyncio.sleep(0)
        with pytest.raises(KrakenTimeoutError):
            await stream.get(timeout=0.05)  # waits beside it, then gives up
        cancelled = asyncio.ensure_future(stream.get())
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        stream._push("one")
        assert await asyncio.wait_for(patient, 1) == "one"

    asyncio.run(main())


def test_two_readers_share_the_messages_and_both_see_the_end() -> None:
    async def main() -> None:
        stream: Stream[int] = Stream("t", maxsize=10)
        readers = [asyncio.ensure_future(stream.__anext__()) for _ in range(2)]
        await asyncio.sleep(0)
        stream._push(1)
        stream._push(2)
        assert sorted(await asyncio.wait_for(asyncio.gather(*readers), 1)) == [1, 2]
        waiting = [asyncio.ensure_future(stream.__anext__()) for _ in range(2)]
        await asyncio.sleep(0)
        stream._fail(SlowConsumerError("t: behind"))
        ends = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 1)
        assert sorted(type(end).__name__ for end in ends) == [
            "SlowConsumerError",  # one reader gets the error
            "StopAsyncIteration",  # the other finds the stream over
        ]

    asyncio.run(main())
