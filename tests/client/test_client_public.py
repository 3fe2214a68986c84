"""The client's public data against a real sandbox: every channel and option, maintained
books at every depth, shared subscriptions, unsubscribe on close, and the failures."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from krakenws.client import BookSynced, Client, Connected, StatusChanged
from krakenws.errors import (
    ConnectionClosedError,
    KrakenTimeoutError,
    SlowConsumerError,
    SubscriptionError,
    UnknownPairError,
    UsageError,
)
from krakenws.pairs import Pair, PairRegistry
from krakenws.protocol.book import checksum_reference
from krakenws.protocol.messages import Ohlc, Spread, Ticker, Trade
from krakenws.streams import Stream
from krakenws.testing import RunningSandbox, run_sandbox
from tests.client.support import admin, client_for, drain, run, sandbox_fixture, wait_until

sandbox = sandbox_fixture()


def subscriptions_of(connections: list[dict[str, object]]) -> list[str]:
    found: list[str] = []
    for connection in connections:
        if not connection["private"]:
            found.extend(connection["subscriptions"])  # type: ignore[arg-type]
    return sorted(found)


@pytest.mark.parametrize("depth", [10, 25, 100, 500, 1000])
def test_a_maintained_book_verifies_every_update_at_every_depth(
    sandbox: RunningSandbox, depth: int
) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            book = await client.book("XBT/USD", depth=depth)
            assert book.synced and book.depth == depth
            while book.update_count < 20:
                await book.wait_update(timeout=10)
            assert book.resync_count == 0 and book.last_error is None
            asks, bids = book.asks(), book.bids()
            assert 0 < len(asks) <= depth and 0 < len(bids) <= depth
            best_bid, best_ask = book.best_bid(), book.best_ask()
            assert best_bid is not None and best_ask is not None
            assert best_bid.price < best_ask.price
            assert isinstance(book.spread(), Decimal)
            # The checksum the client keeps is the one Kraken's algorithm gives for its levels.
            wire_asks = list(book.book.iter_wire_asks())
            wire_bids = list(book.book.iter_wire_bids())
            assert book.checksum() == checksum_reference(wire_asks, wire_bids)

    run(body)


def test_every_public_channel_for_many_pairs_shares_one_connection(
    sandbox: RunningSandbox,
) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            pairs = ("XBT/USD", "ETH/USD", "XBT/EUR")
            tickers = await client.ticker(*pairs)
            trades = await client.trades(*pairs)
            spreads = await client.spreads(*pairs)
            candles = await client.ohlc(*pairs, interval=5)
            book = await client.book("ETH/USD", depth=25)
            seen: dict[str, set[str]] = {}
            for stream, kind in (
                (tickers, Ticker),
                (trades, Trade),
                (spreads, Spread),
                (candles, Ohlc),
            ):
                names: set[str] = set()
                while names != set(pairs):
                    message = await stream.get(timeout=15)
                    assert isinstance(message, kind)
                    names.add(message.pair)
                seen[kind.__name__] = names
            assert candles_interval(await candles.get(timeout=15)) == 5
            connections = await admin(sandbox, "connections")
            public = [c for c in connections if not c["private"]]
            assert len(public) == 1
            assert subscriptions_of(connections) == sorted(
                [
                    f"{name} {pair}"
                    for name in ("ticker", "trade", "spread", "ohlc-5")
                    for pair in pairs
                ]
                + ["book-25 ETH/USD"]
            )
            for stream in (tickers, trades, spreads, candles):
                stream.close()
            book.close()

    run(body)


def candles_interval(candle: Ohlc) -> int:
    return candle.interval


def test_ticker_values_are_exact_decimals(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client, client.ticker("XBT/USD") as stream:
            ticker = await stream.get(timeout=10)
            assert ticker.pair == "XBT/USD"
            assert isinstance(ticker.ask_price_decimal, Decimal)
            assert ticker.ask_price_decimal > ticker.bid_price_decimal
            assert Decimal(ticker.a[0]) == ticker.ask_price_decimal

    run(body)


def test_closing_the_last_user_unsubscribes_and_shared_streams_stay(
    sandbox: RunningSandbox,
) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            first = await client.ticker("LTC/USD")
            second = await client.ticker("LTC/USD")
            connections = await admin(sandbox, "connections")
            assert subscriptions_of(connections).count("ticker LTC/USD") == 1
            first.close()
            await second.get(timeout=10)  # still flowing
            second.close()

            async def gone() -> bool:
                return "ticker LTC/USD" not in subscriptions_of(await admin(sandbox, "connections"))

            for _ in range(100):
                if await gone():
                    break
                await asyncio.sleep(0.05)
            assert await gone()

    run(body)


def test_pairs_are_normalised_and_unknown_pairs_refused(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            assert await client.resolve_pairs(["BTC/USD", "xbtusd", "XXBTZUSD"]) == [
                "XBT/USD",
                "XBT/USD",
                "XBT/USD",
            ]
            with pytest.raises(UnknownPairError):
                await client.ticker("NOPE/USD")
            async with client.ticker("btc/usd") as stream:
                assert (await stream.get(timeout=10)).pair == "XBT/USD"

    run(body)


def test_a_pair_the_server_does_not_list_gets_krakens_error(sandbox: RunningSandbox) -> None:
    fake = Pair(
        key="XFOOZBAR",
        altname="FOOBAR",
        wsname="FOO/BAR",
        base="XFOO",
        quote="ZBAR",
        pair_decimals=1,
        lot_decimals=8,
        cost_decimals=5,
        ordermin=Decimal(1),
        tick_size=Decimal("0.1"),
    )

    async def body() -> None:
        async with client_for(sandbox, pairs=PairRegistry([fake])) as client:
            with pytest.raises(SubscriptionError) as caught:
                await client.ticker("FOO/BAR")
            assert "FOO/BAR" in caught.value.kraken_error

    run(body)


def test_bad_options_are_usage_errors() -> None:
    client = Client(sandbox="http://127.0.0.1:9")
    with pytest.raises(UsageError):
        client.ohlc("XBT/USD", interval=7)
    with pytest.raises(UsageError):
        client.book("XBT/USD", depth=11)
    with pytest.raises(UsageError):
        Client(api_key="only-a-key")
    with pytest.raises(UsageError):
        client.frames("elsewhere")


def test_raw_frames_and_events_are_observable(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            events = client.events()
            frames = client.frames()
            async with client.trades("XBT/USD") as trades:
                await trades.get(timeout=10)
            first = json.loads(await frames.get(timeout=5))
            assert first["event"] == "systemStatus"
            kinds = [type(event) for event in drain(events)]
            assert StatusChanged in kinds and Connected in kinds

    run(body)


def test_ping_round_trip(sandbox: RunningSandbox) -> None:
    async def body() -> float:
        async with client_for(sandbox) as client:
            return await client.ping()

    assert 0 < run(body) < 5


def test_a_reader_that_falls_behind_gets_an_error_not_silent_loss(
    sandbox: RunningSandbox,
) -> None:
    async def body() -> None:
        async with client_for(sandbox, stream_maxsize=3) as client:
            stream = await client.trades("XBT/USD", "ETH/USD", "XBT/EUR", "ETH/EUR")
            await wait_until(lambda: stream.closed, timeout=20)
            with pytest.raises(SlowConsumerError):
                while True:
                    await stream.get(timeout=1)

    run(body)


def test_book_events_and_sharing(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            events = client.events()
            book = await client.book("XBT/EUR", depth=10)
            again = await client.book("XBTEUR", depth=10)
            assert again is book
            synced = [e for e in drain(events) if isinstance(e, BookSynced)]
            assert [(e.pair, e.depth) for e in synced] == [("XBT/EUR", 10)]
            book.close()
            assert not book._closed  # one holder left
            await again.wait_update(timeout=10)
            again.close()
            with pytest.raises(Exception):  # noqa: B017 -- closed books refuse to wait
                await again.wait_update(timeout=1)

    run(body)


def test_a_server_that_is_not_there_times_out_cleanly() -> None:
    async def body() -> None:
        async with Client(sandbox="http://127.0.0.1:9", request_timeout=1.0) as client:
            with pytest.raises(KrakenTimeoutError):
                await client.ping(timeout=1.0)

    run(body)


def test_the_client_over_tls_with_the_sandbox_ca(tmp_path: Any) -> None:
    from krakenws.sandbox.tls import client_ssl_context

    with run_sandbox(main_levels=30, tls=True, tls_dir=str(tmp_path)) as running:
        assert running.rest_url_tls is not None and running.ca_pem is not None
        context = client_ssl_context(running.ca_pem)

        async def body() -> None:
            async with Client(
                sandbox=running.rest_url_tls,
                api_key=running.api_key,
                api_secret=running.api_secret,
                ssl=context,
            ) as client:
                assert client.ws_url.startswith("wss://") and client.ws_auth_url.startswith("wss")
                book = await client.book("XBT/USD", 10)
                await book.wait_update(timeout=10)
                assert book.synced and book.resync_count == 0
                order = await client.add_order("XBT/USD", "buy", "market", "0.001")
                assert (await order.wait_done(timeout=10)).status == "closed"

        run(body)


def test_closing_the_client_ends_every_stream_quietly(sandbox: RunningSandbox) -> None:
    """Public and private streams alike: an ``async for`` over one just finishes. Waits on a
    book raise ConnectionClosedError (a wait that cannot be met)."""

    async def body() -> None:
        client = client_for(sandbox)
        streams: list[Stream[Any]] = [
            await client.ticker("XBT/USD"),
            await client.trades("XBT/USD", "ETH/USD"),
            await client.open_orders(),
            await client.own_trades(snapshot=False),
            client.events(),
            client.frames(),
        ]
        book = await client.book("XBT/USD", depth=10)

        async def read_all(stream: Stream[Any]) -> int:
            count = 0
            async for _ in stream:
                count += 1
            return count

        readers = [asyncio.create_task(read_all(stream)) for stream in streams]
        try:
            await asyncio.sleep(0.5)  # let the readers take what comes
        finally:
            await client.close()
        counts = await asyncio.wait_for(asyncio.gather(*readers), timeout=5)
        assert counts[-1] > 0  # frames were read: the readers were live before the close
        assert all(stream.closed for stream in streams)
        with pytest.raises(ConnectionClosedError):
            await book.wait_update(timeout=5)

    run(body)
