"""The life of a subscription through the client: a use that fails is given back, a stream
closed and reopened at once keeps its feed, a subscription the server ends ends its streams
(and can be taken again), a refused token is renewed for a private subscribe, two spellings of
one pair are one subscription, a connection that gave up fails the waits started after it, and
a checksum resync is not reported as a lost subscription.

Each test is a regression test for one bug the client had; each checks what a user can see
(streams, books, events, what the server holds) rather than the client's internals.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from krakenws.client import (
    Backoff,
    BookResync,
    BookSynced,
    ClientEvent,
    Connected,
    GaveUp,
    LiveBook,
    Stream,
    SubscriptionLost,
    TokenRefreshed,
)
from krakenws.errors import ConnectionClosedError, KrakenTimeoutError, SubscriptionError
from krakenws.protocol.book import checksum_reference
from krakenws.protocol.messages import OpenOrders, Ticker, Trade
from krakenws.testing import RunningSandbox, run_sandbox, write_capture
from tests.client.support import admin, client_for, drain, run, sandbox_fixture, wait_until

sandbox = sandbox_fixture()

_T = TypeVar("_T")


# --- helpers -----------------------------------------------------------------------------------


async def attempt(awaitable: Awaitable[_T]) -> tuple[_T | None, BaseException | None]:
    """``(result, None)`` or ``(None, the error)``: lets a test assert on a failure."""
    try:
        return await awaitable, None
    except Exception as error:  # the test asserts on it
        return None, error


async def take(stream: Stream[_T], count: int, *, timeout: float) -> list[_T]:
    """Up to ``count`` messages of ``stream``, whatever arrived within ``timeout`` seconds."""
    found: list[_T] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(found) < count:
        left = deadline - loop.time()
        if left <= 0:
            break
        try:
            found.append(await stream.get(timeout=left))
        except KrakenTimeoutError:
            break
    return found


async def ending(stream: Stream[Any], *, timeout: float) -> BaseException | None:
    """Read ``stream`` to its end: the error its iteration raised, or None if it just
    finished. AssertionError if it is still open after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            async for _ in stream:
                pass
    except TimeoutError:
        raise AssertionError(f"{stream!r} is still open after {timeout} s") from None
    except Exception as error:  # the test asserts on it
        return error
    return None


async def public_subscriptions(sandbox: RunningSandbox) -> list[str]:
    """What the server holds on every public connection (``"book-10 XBT/USD"``...)."""
    found: list[str] = []
    for connection in await admin(sandbox, "connections"):
        if not connection["private"]:
            found.extend(connection["subscriptions"])
    return found


async def dropped_by_server(sandbox: RunningSandbox, name: str, *, timeout: float = 5.0) -> bool:
    """Whether the server stops holding subscription ``name`` within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while name in await public_subscriptions(sandbox):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def verified(book: LiveBook, updates: int = 3) -> None:
    """The book is synced and a few more updates pass the checksum."""
    await book.wait_synced(timeout=10)
    target = book.update_count + updates
    while book.update_count < target:
        await book.wait_update(timeout=10)
        assert book.synced
    wire = checksum_reference(list(book.book.iter_wire_asks()), list(book.book.iter_wire_bids()))
    assert book.checksum() == wire


def lost_events(events: list[ClientEvent]) -> list[SubscriptionLost]:
    return [event for event in events if isinstance(event, SubscriptionLost)]


# --- a capture whose book snapshot comes late ------------------------------------------------

_START = 1_700_000_000  # the capture's clock (seconds); the replay paces by it


def _stamp(offset: float) -> str:
    return f"{_START + offset:.6f}"


def late_book_frames(
    *, snapshot_at: float = 1.5, updates_every: float = 0.1, until: float = 15.0
) -> list[str]:
    """An XBT/USD book-10 session whose snapshot comes ``snapshot_at`` seconds after its first
    frame (a trade), then updates whose checksums verify until ``until``: replayed, a
    subscriber acked before ``snapshot_at`` gets no snapshot until then."""
    frames = [
        json.dumps(
            [1, [["50000.0", "0.01000000", _stamp(0), "b", "l", ""]], "trade", "XBT/USD"],
            separators=(",", ":"),
        )
    ]
    asks = {f"{50001 + i}.0": "1.00000000" for i in range(10)}
    bids = {f"{49999 - i}.0": "1.00000000" for i in range(10)}
    when = _stamp(snapshot_at)
    snapshot = {
        "as": [[price, volume, when] for price, volume in asks.items()],
        "bs": [[price, volume, when] for price, volume in bids.items()],
    }
    frames.append(json.dumps([2, snapshot, "book-10", "XBT/USD"], separators=(",", ":")))
    step = 0
    offset = snapshot_at + updates_every
    while offset < until:
        step += 1
        side, levels = ("a", asks) if step % 2 else ("b", bids)
        price = next(iter(levels))  # the best level of that side
        levels[price] = f"{1 + (step % 97) / 100:.8f}"
        checksum = checksum_reference(
            [[p, v] for p, v in asks.items()], [[p, v] for p, v in bids.items()]
        )
        update = {side: [[price, levels[price], _stamp(offset)]], "c": str(checksum)}
        frames.append(json.dumps([2, update, "book-10", "XBT/USD"], separators=(",", ":")))
        offset += updates_every
    return frames


# --- 1. a book() that fails after the server confirmed it ---------------------------------------


def test_a_book_whose_snapshot_is_late_gives_its_use_back_and_a_later_book_syncs(
    tmp_path: Path,
) -> None:
    """book() fails (no snapshot in time) after the subscription was confirmed: the failed call
    no longer uses the subscription, so a later book() of that pair and depth subscribes
    afresh, gets its snapshot and verifies, and closing it drops the subscription (the client
    counts one user, not one per failed call)."""
    capture = tmp_path / "late-book.jsonl"
    write_capture(capture, late_book_frames(snapshot_at=1.5))

    with run_sandbox(replay=capture) as running:

        async def body() -> None:
            async with client_for(running) as client:
                loop = asyncio.get_running_loop()
                started = loop.time()  # the replay's clock starts with this subscription
                _, error = await attempt(client.book("XBT/USD", 10, timeout=1.0))
                assert isinstance(error, KrakenTimeoutError), error  # acked, no snapshot yet
                # Past the capture's snapshot: only a fresh subscription brings one now.
                await asyncio.sleep(max(0.0, started + 3.0 - loop.time()))
                book, error = await attempt(client.book("XBT/USD", 10, timeout=4.0))
                assert error is None, (
                    f"book() after a book() that timed out waiting for its snapshot: {error!r} "
                    "(the failed call kept its use of the subscription, so none was sent)"
                )
                assert isinstance(book, LiveBook)
                await verified(book)
                assert book.resync_count == 0
                book.close()
                assert await dropped_by_server(running, "book-10 XBT/USD"), (
                    "closing the only book left the subscription on the server: "
                    "the failed book() still counts as a user"
                )

        run(body, timeout=60)


# --- 2. close a stream and open the same one at once ------------------------------------------


def test_a_stream_closed_and_reopened_at_once_keeps_receiving(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            events = client.events()
            async with client.ticker("XBT/USD") as first:
                assert isinstance(await first.get(timeout=10), Ticker)
            async with client.ticker("XBT/USD") as second:  # opened right after the close
                received = await take(second, 3, timeout=10)
                assert len(received) == 3, (
                    f"the reopened ticker stream got {len(received)} of 3 tickers in 10 s "
                    "(the first stream's unsubscribe ended the new subscription)"
                )
            await asyncio.sleep(0.3)  # the second close's unsubscribe is acked
            lost = lost_events(drain(events))
            assert not lost, f"closing and reopening a stream reported {lost}"

    run(body)


# --- 3. a subscription the server ends on its own ---------------------------------------------


def test_a_subscription_the_server_ends_fails_its_streams_and_can_be_taken_again(
    sandbox: RunningSandbox,
) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            events = client.events()
            frames = client.frames()
            stream = await client.ticker("XBT/USD")
            await stream.get(timeout=10)
            seen = drain(events)
            [connection_id] = [
                e.connection_id for e in seen if isinstance(e, Connected) and e.endpoint == "public"
            ]
            channel_id = None
            while frames.pending():
                frame = json.loads(await frames.get())
                if isinstance(frame, dict) and frame.get("status") == "subscribed":
                    channel_id = frame.get("channelID")
            frames.close()
            ended = {
                "channelID": channel_id,
                "channelName": "ticker",
                "event": "subscriptionStatus",
                "pair": "XBT/USD",
                "status": "unsubscribed",
                "subscription": {"name": "ticker"},
            }
            await admin(
                sandbox,
                "faults/inject",
                {"frames": [json.dumps(ended)], "connections": [connection_id]},
            )
            error = await ending(stream, timeout=5)
            assert isinstance(error, SubscriptionError), (
                f"a stream whose subscription the server ended finished with {error!r}, "
                "not a SubscriptionError"
            )
            seen = drain(events)
            lost = lost_events(seen)
            assert [(e.channel, e.pair) for e in lost] == [("ticker", "XBT/USD")], seen
            # Taken again: the new stream subscribes and data flows.
            async with client.ticker("XBT/USD") as again:
                received = await take(again, 2, timeout=10)
                assert len(received) == 2, (
                    f"a new ticker stream after the server ended the subscription got "
                    f"{len(received)} of 2 tickers in 10 s"
                )

    run(body)


# --- 4. a private subscribe refused for a stale token -----------------------------------------


def test_a_private_subscribe_refused_for_a_stale_token_renews_it_and_starts(
    sandbox: RunningSandbox,
) -> None:
    async def body() -> None:
        async with client_for(sandbox, token="stale-token") as client:
            events = client.events()
            stream, error = await attempt(client.open_orders(timeout=5))
            assert error is None, (
                f"open_orders() answered ESession:Invalid session: {error!r} "
                "(the token was not renewed and the subscribe not resent)"
            )
            assert stream is not None
            first = await stream.get(timeout=5)
            assert isinstance(first, OpenOrders) and first.sequence == 1  # the snapshot
            assert any(isinstance(e, TokenRefreshed) for e in drain(events))
            stream.close()

    run(body)


# --- 5. two spellings of one pair --------------------------------------------------------------


def test_two_spellings_of_one_pair_deliver_each_trade_once(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            frames = client.frames()
            stream = await client.trades("BTC/USD", "XBT/USD")
            await wait_until(lambda: stream.pending() >= 4, timeout=30)
            # Both are fed in the same step of the reader: counted together, they agree.
            messages, texts = stream.pending(), frames.pending()
            received = [await stream.get() for _ in range(messages)]
            wire = 0
            for _ in range(texts):
                frame = json.loads(await frames.get())
                if isinstance(frame, list) and frame[-2:] == ["trade", "XBT/USD"]:
                    wire += 1
            assert all(isinstance(m, Trade) and m.pair == "XBT/USD" for m in received)
            assert len(received) == wire, (
                f"{wire} trade frames reached the stream as {len(received)} messages"
            )
            frames.close()
            stream.close()
            assert await dropped_by_server(sandbox, "trade XBT/USD"), (
                "closing the stream left the trade subscription on the server"
            )

    run(body)


# --- 6. waiting on an order after the private connection gave up -------------------------------


def test_a_wait_started_after_the_private_connection_gave_up_fails_at_once() -> None:
    with run_sandbox(simulator=False) as running:

        async def body() -> None:
            bounded = Backoff(initial=0.05, maximum=0.1, max_attempts=2)
            async with client_for(running, backoff=bounded) as client:
                order = await client.add_order(
                    "XBT/USD", "buy", "limit", "0.01", price="1000", timeout=10
                )
                await order.wait_status("open", timeout=10)
                events = client.events()
                await admin(running, "faults/refuse", {"count": 50})
                await admin(running, "faults/drop", {})
                seen: list[ClientEvent] = []

                def gave_up() -> bool:
                    seen.extend(drain(events))
                    return any(isinstance(e, GaveUp) and e.endpoint == "private" for e in seen)

                await wait_until(gave_up, timeout=15)
                outcome: object
                try:
                    async with asyncio.timeout(3):
                        outcome = await order.wait_done()  # no timeout of its own
                except TimeoutError:
                    outcome = "still waiting after 3 s"
                except ConnectionClosedError as error:
                    outcome = error
                assert isinstance(outcome, ConnectionClosedError), (
                    f"wait_done() after the private connection gave up: {outcome!r}"
                )

        run(body, timeout=60)


# --- 7. a checksum resync --------------------------------------------------------------------


def test_a_checksum_resync_is_not_reported_as_a_lost_subscription() -> None:
    with run_sandbox() as running:

        async def body() -> None:
            async with client_for(running) as client:
                events = client.events()
                book = await client.book("XBT/USD", 10)
                await verified(book, 1)
                await admin(running, "faults/corrupt-checksum", {"pair": "XBT/USD"})
                await wait_until(lambda: book.resync_count == 1, timeout=20)
                await verified(book)
                seen = drain(events)
                resyncs = [e for e in seen if isinstance(e, BookResync)]
                assert [(e.pair, e.cause) for e in resyncs] == [("XBT/USD", "checksum mismatch")]
                after = seen[seen.index(resyncs[0]) :]
                assert any(isinstance(e, BookSynced) and e.pair == "XBT/USD" for e in after)
                lost = lost_events(seen)
                assert not lost, f"a checksum resync reported {lost}"

        run(body, timeout=60)
