"""A real third-party client, ccxt 4.4.82 pro (its Kraken WebSocket code speaks v1), unmodified.

Only its base URLs are pointed at the sandbox on loopback: REST (markets, the WebSocket token)
at ``rest_url``, the public WebSocket at ``/ws`` and the private one at ``/ws-auth``. ccxt
verifies every book update's CRC32 checksum itself (its ``watchOrderBook.checksum`` option, on
by default) and raises ``ChecksumError`` on a mismatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from krakenws.testing import RunningSandbox, run_sandbox

# Third-party code: ccxt's own sockets may be closed by the garbage collector, which Python
# reports as a ResourceWarning. That is ccxt's business, not the sandbox's.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

ccxt = pytest.importorskip("ccxt", reason="ccxt is in the dev extras")
ccxt_pro = pytest.importorskip("ccxt.pro", reason="ccxt is in the dev extras")

T = TypeVar("T")
SYMBOL = "BTC/USD"
STEP = 10.0  # the bound on any single await


@pytest.fixture(scope="module", params=["ws", "wss"])
def sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSandbox]:
    """The same flows over ws:// and over wss:// (ccxt trusting the exported ca.pem)."""
    # The default main_levels (1000+ a side on XBT/USD) makes a depth-1000 book real.
    tls = request.param == "wss"
    folder = str(tmp_path_factory.mktemp("tls")) if tls else None
    with run_sandbox(seed=21, sim_rate=30, tls=tls, tls_dir=folder) as running:
        yield running


def run(sandbox: RunningSandbox, body: Callable[[Any], Awaitable[T]], *, private: bool) -> T:
    """Run ``body(exchange)`` with a fresh ccxt.pro kraken on the sandbox, then close it."""

    async def main() -> T:
        options: dict[str, Any] = {"enableRateLimit": False}
        if private:
            options.update(apiKey=sandbox.api_key, secret=sandbox.api_secret)
        rest_url = sandbox.rest_url
        if sandbox.rest_url_tls is not None:
            rest_url = sandbox.rest_url_tls
            options["cafile"] = sandbox.ca_pem  # ccxt's own strict verification, our CA
        exchange = ccxt_pro.kraken(options)
        ws_url = rest_url.replace("http://", "ws://").replace("https://", "wss://")
        exchange.urls["api"]["public"] = rest_url
        exchange.urls["api"]["private"] = rest_url
        exchange.urls["api"]["ws"]["public"] = f"{ws_url}/ws"
        exchange.urls["api"]["ws"]["private"] = f"{ws_url}/ws-auth"
        try:
            await asyncio.wait_for(exchange.load_markets(), STEP)
            return await asyncio.wait_for(body(exchange), 45)
        finally:
            await exchange.close()

    try:
        return asyncio.run(main())
    finally:
        # ccxt can leave a transport for the garbage collector; collect it here, inside this
        # module's warning filter, rather than in whichever test happens to run next.
        gc.collect()


async def bounded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, STEP)


# --- public -------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [10, 1000])
def test_order_book_with_checksums(sandbox: RunningSandbox, depth: int) -> None:
    async def body(exchange: Any) -> tuple[int, Any, Any]:
        assert exchange.options["watchOrderBook"]["checksum"] is True
        frames = 0
        handle = exchange.handle_order_book

        def counting(client: Any, message: Any, subscription: Any) -> Any:
            nonlocal frames
            frames += 1
            return handle(client, message, subscription)

        exchange.handle_order_book = counting  # counts the frames ccxt checks; changes nothing
        book = await bounded(exchange.watch_order_book(SYMBOL, depth))
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            # A checksum mismatch would raise ccxt.ChecksumError here.
            book = await bounded(exchange.watch_order_book(SYMBOL, depth))
            assert book["bids"][0][0] < book["asks"][0][0]
        # Beyond the checksummed top ten: with the market paused, every level ccxt holds must
        # be the exchange's (REST gives at most 500 a side).
        await asyncio.to_thread(sandbox.admin, "simulator", {"paused": True})
        try:
            with contextlib.suppress(TimeoutError):
                while True:  # drain the updates still in flight
                    book = await asyncio.wait_for(exchange.watch_order_book(SYMBOL, depth), 2)
            rest = await bounded(exchange.fetch_order_book(SYMBOL, min(depth, 500)))
        finally:
            await asyncio.to_thread(sandbox.admin, "simulator", {"paused": False})
        return frames - 1, book, rest  # the first frame is the snapshot

    updates, book, rest = run(sandbox, body, private=False)
    print(f"depth {depth}: {updates} checksummed updates")
    assert updates >= 10
    assert len(book["bids"]) == depth and len(book["asks"]) == depth
    for side in ("asks", "bids"):
        levels = [level[:2] for level in book[side]]
        assert levels[: len(rest[side])] == [level[:2] for level in rest[side]]
        prices = [price for price, _ in levels]
        assert prices == sorted(prices, reverse=side == "bids")


def test_corrupted_checksum_is_caught(sandbox: RunningSandbox) -> None:
    """The control: a wrong checksum does make ccxt raise ChecksumError."""

    async def body(exchange: Any) -> None:
        await bounded(exchange.watch_order_book(SYMBOL, 10))
        await asyncio.to_thread(sandbox.admin, "faults/corrupt-checksum", {"pair": "XBT/USD"})
        with pytest.raises(ccxt.ChecksumError):
            for _ in range(1000):
                await bounded(exchange.watch_order_book(SYMBOL, 10))

    run(sandbox, body, private=False)


def test_ticker_trades_and_ohlcv(sandbox: RunningSandbox) -> None:
    async def body(exchange: Any) -> tuple[Any, list[Any], list[Any]]:
        ticker = await bounded(exchange.watch_ticker(SYMBOL))
        trades = await bounded(exchange.watch_trades(SYMBOL))
        candles = await bounded(exchange.watch_ohlcv(SYMBOL, "1m"))
        return ticker, trades, candles

    ticker, trades, candles = run(sandbox, body, private=False)
    assert ticker["symbol"] == SYMBOL and 0 < ticker["bid"] < ticker["ask"]
    assert ticker["last"] > 0 and ticker["high"] >= ticker["low"] > 0
    assert trades and all(t["symbol"] == SYMBOL for t in trades)
    assert all(t["price"] > 0 and t["amount"] > 0 and t["side"] in ("buy", "sell") for t in trades)
    assert candles
    stamp, open_, high, low, close, volume = candles[-1]
    assert stamp % 60_000 == 0 and high >= max(open_, close) and low <= min(open_, close)
    assert volume >= 0


# --- private ------------------------------------------------------------------------------------


async def order_update(exchange: Any, order_id: str, status: str) -> Any:
    """The order as watch_orders shows it once openOrders has told its ``status``."""
    while True:
        # Look at ccxt's cache first: the update may already be in (no await in between, so
        # nothing can slip past before the next watch_orders is registered).
        for order in exchange.orders or []:
            if order["id"] == order_id and order["status"] == status:
                return order
        await bounded(exchange.watch_orders())


async def subscribed(watching: asyncio.Future[Any]) -> asyncio.Future[Any]:
    """Give a first watch_* call time to subscribe (its snapshot may be empty: no resolve)."""
    await asyncio.sleep(0.5)
    return watching


def test_limit_order_create_and_cancel(sandbox: RunningSandbox) -> None:
    async def body(exchange: Any) -> tuple[Any, Any, Any, Any, float]:
        book = await bounded(exchange.watch_order_book(SYMBOL, 10))
        price = round(book["bids"][0][0] * 0.8, 1)
        watching = await subscribed(asyncio.ensure_future(exchange.watch_orders()))
        created = await bounded(exchange.create_order_ws(SYMBOL, "limit", "buy", 0.01, price))
        await bounded(watching)
        opened = await order_update(exchange, created["id"], "open")
        status = await bounded(exchange.cancel_order_ws(created["id"]))
        canceled = await order_update(exchange, created["id"], "canceled")
        return created, opened, status, canceled, price

    created, opened, status, canceled, price = run(sandbox, body, private=True)
    assert created["id"] and created["info"]["event"] == "addOrderStatus"
    assert opened["symbol"] == SYMBOL and opened["side"] == "buy" and opened["type"] == "limit"
    assert opened["price"] == price and opened["amount"] == 0.01 and opened["filled"] == 0
    assert status["status"] == "ok" and status["event"] == "cancelOrderStatus"
    assert canceled["status"] == "canceled" and canceled["filled"] == 0
    assert canceled["amount"] == 0.01 and canceled["price"] == price


def test_market_order_fills(sandbox: RunningSandbox) -> None:
    async def body(exchange: Any) -> tuple[Any, list[Any], Any]:
        book = await bounded(exchange.watch_order_book(SYMBOL, 10))
        watching = await subscribed(asyncio.ensure_future(exchange.watch_my_trades(SYMBOL)))
        watching_orders = await subscribed(asyncio.ensure_future(exchange.watch_orders()))
        created = await bounded(exchange.create_order_ws(SYMBOL, "market", "buy", 0.05))
        await bounded(watching)
        await bounded(watching_orders)
        while True:
            fills = [t for t in exchange.myTrades or [] if t["order"] == created["id"]]
            if sum(t["amount"] for t in fills) >= 0.05 - 1e-9:
                break
            await bounded(exchange.watch_my_trades(SYMBOL))
        closed = await order_update(exchange, created["id"], "closed")
        assert book["asks"][0][0] * 0.9 < fills[0]["price"] < book["asks"][0][0] * 1.1
        return created, fills, closed

    created, fills, closed = run(sandbox, body, private=True)
    assert created["id"]
    assert sum(t["amount"] for t in fills) == pytest.approx(0.05)
    for fill in fills:
        assert fill["symbol"] == SYMBOL and fill["side"] == "buy" and fill["type"] == "market"
        # ccxt computes cost as price * amount; the wire cost sums the fills' costs, each
        # rounded down to the quote's decimals, so the two differ by fractions of a cent.
        wire_cost = float(fill["info"]["cost"])
        assert wire_cost == pytest.approx(fill["price"] * fill["amount"], abs=0.01)
        assert fill["fee"]["currency"] == "USD" and fill["fee"]["cost"] > 0
    assert closed["filled"] == pytest.approx(0.05) and closed["amount"] == pytest.approx(0.05)
    average = sum(t["price"] * t["amount"] for t in fills) / 0.05
    assert closed["average"] == pytest.approx(average, rel=1e-4)


def test_cancel_all_orders(sandbox: RunningSandbox) -> None:
    async def body(exchange: Any) -> tuple[list[str], Any, list[Any]]:
        book = await bounded(exchange.watch_order_book(SYMBOL, 10))
        low = round(book["bids"][0][0] * 0.7, 1)
        high = round(book["asks"][0][0] * 1.3, 1)
        watching = await subscribed(asyncio.ensure_future(exchange.watch_orders()))
        first = await bounded(exchange.create_order_ws(SYMBOL, "limit", "buy", 0.01, low))
        second = await bounded(exchange.create_order_ws(SYMBOL, "limit", "sell", 0.01, high))
        await bounded(watching)
        ids = [first["id"], second["id"]]
        for order_id in ids:
            await order_update(exchange, order_id, "open")
        status = await bounded(exchange.cancel_all_orders_ws())
        canceled = [await order_update(exchange, order_id, "canceled") for order_id in ids]
        return ids, status, canceled

    ids, status, canceled = run(sandbox, body, private=True)
    assert status["status"] == "ok" and status["count"] == 2
    assert [order["id"] for order in canceled] == ids
    assert {order["side"] for order in canceled} == {"buy", "sell"}
