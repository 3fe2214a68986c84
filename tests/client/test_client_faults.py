"""The client under faults injected by the sandbox: connections dropped every few seconds for
a minute, heartbeats stopped, a corrupted checksum, maintenance then online, refused
connections. After each, the client recovers by itself, books verify again, private streams
resume without an unhealed gap, and the events say what happened.

``KRAKENWS_FAULT_SECONDS`` shortens (or lengthens) the drop storm (default 60 s).
"""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal

import pytest

from krakenws.client import (
    Backoff,
    BookResync,
    BookSynced,
    Client,
    Connected,
    ConnectFailed,
    Disconnected,
    FeedResynced,
    GaveUp,
    LiveBook,
    OrdersReconciled,
    ProtocolProblem,
    Reconnecting,
    Resubscribed,
    SequenceGap,
    StatusChanged,
)
from krakenws.errors import ConnectionClosedError, KrakenError, ServiceUnavailableError
from krakenws.protocol.book import checksum_reference
from krakenws.testing import RunningSandbox
from tests.client.support import admin, client_for, drain, run, sandbox_fixture, wait_until

sandbox = sandbox_fixture(main_levels=200)

STORM_SECONDS = float(os.environ.get("KRAKENWS_FAULT_SECONDS", "60"))


def resilient(sandbox: RunningSandbox, **options: object) -> Client:
    settings: dict[str, object] = {
        "heartbeat_timeout": 3.0,
        "ping_interval": 1.0,
        "backoff": Backoff(initial=0.1, maximum=1.0),
        "seed": 7,
    }
    settings.update(options)
    return client_for(sandbox, **settings)


async def verified(book: LiveBook, updates: int = 3) -> None:
    """The book is synced and keeps verifying: a few more updates pass the checksum."""
    await book.wait_synced(timeout=20)
    target = book.update_count + updates
    while book.update_count < target:
        await book.wait_update(timeout=20)
        assert book.synced
    wire = checksum_reference(list(book.book.iter_wire_asks()), list(book.book.iter_wire_bids()))
    assert book.checksum() == wire


def test_connections_dropped_every_few_seconds_for_a_minute(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with resilient(sandbox) as client:
            events = client.events()
            books = [await client.book("XBT/USD", 10), await client.book("ETH/USD", 100)]
            tickers = await client.ticker("XBT/USD", "ETH/USD")
            trades = await client.own_trades(snapshot=False)
            await client.track_orders()
            placed, unknown = [], 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STORM_SECONDS
            drops = 0
            while loop.time() < deadline:
                code = 1006 if drops % 2 == 0 else 1001
                await admin(sandbox, "faults/drop", {"code": code})
                drops += 1
                try:
                    placed.append(await client.add_order("XBT/USD", "buy", "market", "0.001"))
                except ConnectionClosedError:
                    unknown += 1  # dropped between request and reply: outcome unknown
                await asyncio.sleep(2.5)
            # Recovered: books verify, tickers flow, every order is known to have ended.
            for book in books:
                await verified(book)
            await tickers.get(timeout=10)
            for order in placed:
                state = await order.wait_done(timeout=20)
                assert state.status == "closed" and state.vol_exec == Decimal("0.001")
                await order.wait_for(lambda s: s.filled_volume == s.vol_exec, timeout=20)
            # The trade stream carried each fill exactly once, none missing (no unhealed gap).
            streamed: list[str] = []
            streamed_volume: dict[str, Decimal] = {}
            while trades.pending():
                frame = await trades.get()
                for trade_id, trade in frame.trades:
                    streamed.append(trade_id)
                    streamed_volume[trade.ordertxid] = (
                        streamed_volume.get(trade.ordertxid, Decimal(0)) + trade.vol_decimal
                    )
            assert len(streamed) == len(set(streamed))
            fills = {fill.trade_id for order in placed for fill in order.state.fills}
            assert fills <= set(streamed)
            # Kraken's feed consolidates a taker's fills (consolidate_taker), so compare the
            # volume per order with the exchange's own trade history.
            history = await client.rest.trades_history()
            exchange_volume: dict[str, Decimal] = {}
            for trade in history.trades.values():
                exchange_volume[trade.ordertxid] = (
                    exchange_volume.get(trade.ordertxid, Decimal(0)) + trade.vol
                )
            assert streamed_volume == exchange_volume
            # The events tell the story.
            seen = drain(events)
            disconnects = [e for e in seen if isinstance(e, Disconnected)]
            assert len(disconnects) >= drops  # both connections dropped each time
            assert any(isinstance(e, Reconnecting) for e in seen)
            assert sum(isinstance(e, Resubscribed) for e in seen) >= drops
            assert any(isinstance(e, BookResync) and e.cause == "reconnect" for e in seen)
            assert sum(isinstance(e, BookSynced) for e in seen) > drops
            assert all(book.resync_count >= drops - 1 for book in books)
            assert unknown <= drops

    run(body, timeout=STORM_SECONDS + 120)


def test_stopped_heartbeats_are_noticed_and_the_connection_replaced(
    sandbox: RunningSandbox,
) -> None:
    async def body() -> None:
        await admin(sandbox, "simulator", {"paused": True})
        try:
            async with resilient(sandbox, heartbeat_timeout=2.0) as client:
                events = client.events()
                quiet = await client.trades("XDG/USD")
                await asyncio.sleep(1.5)  # heartbeats flow on the quiet subscription
                assert not any(isinstance(e, Disconnected) for e in drain(events))
                await admin(sandbox, "faults/heartbeats", {"enabled": False})
                await wait_until(
                    lambda: any(isinstance(e, Resubscribed) for e in events._items), timeout=15
                )
                seen = drain(events)
                [lost] = [e for e in seen if isinstance(e, Disconnected)]
                assert lost.cause.startswith("heartbeats stopped")
                assert any(isinstance(e, Connected) for e in seen)
                await admin(sandbox, "simulator", {"paused": False})
                await client.ping()
                assert not quiet.closed
        finally:
            await admin(sandbox, "simulator", {"paused": False})

    run(body)


def test_a_corrupted_checksum_resyncs_only_that_book(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with resilient(sandbox) as client:
            events = client.events()
            bad = await client.book("XBT/USD", 10)
            good = await client.book("ETH/USD", 10)
            await verified(bad, 1)
            await admin(sandbox, "faults/corrupt-checksum", {"pair": "XBT/USD"})
            await wait_until(lambda: bad.resync_count == 1, timeout=20)
            await verified(bad)
            await verified(good)
            assert good.resync_count == 0
            seen = drain(events)
            [resync] = [e for e in seen if isinstance(e, BookResync)]
            assert (resync.pair, resync.cause) == ("XBT/USD", "checksum mismatch")
            assert any(isinstance(e, BookSynced) and e.pair == "XBT/USD" for e in seen)
            assert not any(isinstance(e, Disconnected) for e in seen)

    run(body)


def test_maintenance_then_online_is_surfaced_and_trading_resumes(
    sandbox: RunningSandbox,
) -> None:
    async def body() -> None:
        async with resilient(sandbox) as client:
            events = client.events()
            book = await client.book("XBT/USD", 10)
            await client.track_orders()
            try:
                await admin(sandbox, "status", {"status": "maintenance"})
                await wait_until(lambda: client.system_status == "maintenance")
                with pytest.raises(ServiceUnavailableError) as caught:
                    await client.add_order("XBT/USD", "buy", "market", "0.001")
                assert caught.value.kraken_error == "EService:Unavailable"
            finally:
                await admin(sandbox, "status", {"status": "online"})
            await wait_until(lambda: client.system_status == "online")
            order = await client.add_order("XBT/USD", "buy", "market", "0.001")
            assert (await order.wait_done(timeout=10)).status == "closed"
            await verified(book)
            statuses = [
                (e.endpoint, e.status) for e in drain(events) if isinstance(e, StatusChanged)
            ]
            for endpoint in ("public", "private"):
                mine = [status for where, status in statuses if where == endpoint]
                assert "maintenance" in mine and mine[-1] == "online", statuses

    run(body)


def test_refused_connections_are_retried_with_backoff(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        await admin(sandbox, "faults/refuse", {"count": 2})
        async with resilient(sandbox) as client:
            events = client.events()
            book = await client.book("XBT/USD", 10)
            await verified(book, 1)
            seen = drain(events)
            assert [e.attempt for e in seen if isinstance(e, ConnectFailed)] == [1, 2]
            delays = [e.delay for e in seen if isinstance(e, Reconnecting)]
            assert len(delays) == 2 and all(0.0 < delay <= 1.0 for delay in delays)

    run(body)


def test_a_bounded_reconnect_budget_gives_up_with_an_error(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        await admin(sandbox, "faults/refuse", {"count": 10})
        try:
            bounded = Backoff(initial=0.05, maximum=0.1, max_attempts=3)
            async with resilient(sandbox, backoff=bounded) as client:
                events = client.events()
                with pytest.raises(KrakenError):
                    await client.book("XBT/USD", 10, timeout=10)
                seen = drain(events)
                [gave_up] = [e for e in seen if isinstance(e, GaveUp)]
                assert gave_up.attempts == 3
        finally:
            await admin(sandbox, "faults/refuse", {"count": 0})

    run(body)


def test_a_private_sequence_gap_is_reported_and_healed(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with resilient(sandbox) as client:
            events = client.events()
            trades = await client.own_trades(snapshot=False)
            await client.track_orders()
            book = await client.book("XBT/USD", 10)
            best = book.best_bid()
            assert best is not None
            resting = await client.add_order(
                "XBT/USD", "buy", "limit", "0.01", price=(best.price * Decimal("0.8")).quantize(1)
            )
            await resting.wait_status("open", timeout=10)
            # The next openOrders message (the cancel) is lost: the order ends unseen.
            await admin(sandbox, "faults/skip-sequence", {"channel": "openOrders"})
            await resting.cancel()
            assert (await resting.wait_done(timeout=15)).status == "canceled"
            # The next ownTrades message (the fill) is lost: the fresh snapshot brings it.
            await admin(sandbox, "faults/skip-sequence", {"channel": "ownTrades"})
            market = await client.add_order("XBT/USD", "sell", "market", "0.002")
            state = await market.wait_for(
                lambda s: s.is_done and s.filled_volume == s.vol_exec, timeout=15
            )
            assert state.vol_exec == Decimal("0.002")
            seen = drain(events)
            gaps = {e.channel for e in seen if isinstance(e, SequenceGap)}
            healed = {e.channel for e in seen if isinstance(e, FeedResynced)}
            assert gaps == healed == {"openOrders", "ownTrades"}
            reconciled = [e for e in seen if isinstance(e, OrdersReconciled)]
            assert [resting.txid] in [list(e.txids) for e in reconciled]
            streamed = []
            while trades.pending():
                streamed.extend(tid for tid, _ in (await trades.get()).trades)
            assert len(streamed) == len(set(streamed))
            assert {fill.trade_id for fill in state.fills} <= set(streamed)
            assert not any(isinstance(e, Disconnected) for e in seen)

    run(body)


def test_frames_the_client_cannot_use_are_reported_and_skipped(sandbox: RunningSandbox) -> None:
    """Garbage on both connections (not JSON, unknown shapes, an unsolicited error, a private
    frame with a bad sequence, numbers that are not numbers): each is a ProtocolProblem event,
    nothing reaches a stream; the connections stay up, books keep verifying, feeds and
    requests keep working."""

    async def body() -> None:
        async with resilient(sandbox) as client:
            events = client.events()
            book = await client.book("XBT/USD", 10)
            tape = await client.trades("XBT/USD")
            trades = await client.own_trades(snapshot=False)
            await verified(book, 1)
            ids = {e.endpoint: e.connection_id for e in drain(events) if isinstance(e, Connected)}
            public = [
                "not json",
                '{"event":"mystery"}',
                "[1,2]",
                "{}",
                "[[],[]]",
                '[1,[["abc","0.1","1700000000.1","b","l",""]],"trade","XBT/USD"]',
            ]
            unsolicited = '{"errorMessage":"EGeneral:Internal error","event":"error"}'
            await admin(
                sandbox,
                "faults/inject",
                {"frames": [*public, unsolicited], "connections": [ids["public"]]},
            )
            bad_sequence = '[[{"OX":{"status":"open"}}],"openOrders",{"sequence":"x"}]'
            bad_volume = '[[{"OX":{"vol_exec":"1e3"}}],"openOrders",{"sequence":99}]'
            await admin(
                sandbox,
                "faults/inject",
                {
                    "frames": ["not json", bad_sequence, bad_volume],
                    "connections": [ids["private"]],
                },
            )
            seen: list[object] = []

            def reported() -> bool:
                seen.extend(drain(events))
                return sum(isinstance(e, ProtocolProblem) for e in seen) >= 10

            await wait_until(reported, timeout=10)
            problems = [e for e in seen if isinstance(e, ProtocolProblem)]
            assert sum(e.endpoint == "public" for e in problems) == 7
            assert sum(e.endpoint == "private" for e in problems) == 3
            assert 'trade entry 0: "abc" is not a decimal number' in {e.error for e in problems}
            assert "openOrders order 'OX': vol_exec \"1e3\" is not a decimal number" in {
                e.error for e in problems
            }
            assert any(e.error == "EGeneral:Internal error" for e in problems)
            await verified(book)
            assert book.resync_count == 0
            order = await client.add_order("XBT/USD", "buy", "market", "0.001")
            await order.wait_done(timeout=10)
            fill = await trades.get(timeout=10)
            assert order.txid in {trade.ordertxid for _, trade in fill.trades}
            assert await client.ping() > 0
            while tape.pending():  # only real trades reached the tape
                for entry in (await tape.get()).trades:
                    assert entry.price_decimal > 0
            seen.extend(drain(events))
            assert not any(isinstance(e, Disconnected) for e in seen)

    run(body)
