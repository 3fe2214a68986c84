"""Trading through the client against a real sandbox: every call succeeding, order handles
following the private feeds, every documented failure raising the mapped error, and the
WebSocket token's lifecycle."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec
import pytest
from msgspec import UNSET

from krakenws.client import Client, TokenRefreshed
from krakenws.errors import (
    CostMinimumNotMetError,
    DeadlineElapsedError,
    ExchangeError,
    InsufficientFundsError,
    InvalidArgumentsError,
    InvalidSessionError,
    KrakenTimeoutError,
    MarketStateError,
    OrderError,
    OrderMinimumNotMetError,
    OrdersLimitExceededError,
    PermissionDeniedError,
    TickSizeError,
    UnknownOrderError,
    UnknownPairError,
    UsageError,
)
from krakenws.protocol.messages import OpenOrders, OwnTrades
from krakenws.ratelimit import RATE_TIERS
from krakenws.testing import RunningSandbox, run_sandbox
from tests.client.support import client_for, drain, run, sandbox_fixture, wait_until

sandbox = sandbox_fixture(main_levels=50)


async def far_bid(client: Client, pair: str = "XBT/USD") -> Decimal:
    """A buy price well below the market (rests on the book, never fills)."""
    book = await client.book(pair, depth=10)
    best = book.best_bid()
    assert best is not None
    price = (best.price * Decimal("0.8")).quantize(Decimal("0.1"))
    book.close()
    return price


def test_a_limit_order_is_followed_from_pending_to_canceled(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            price = await far_bid(client)
            order = await client.add_order(
                "XBT/USD", "buy", "limit", volume=Decimal("0.01"), price=price, userref=42
            )
            assert order.txid and order.descr and "limit" in order.descr
            state = await order.wait_status("open", timeout=10)
            assert state.pair == "XBT/USD" and state.side == "buy"
            assert state.volume == Decimal("0.01") and state.price == price
            assert state.userref == 42
            assert order.txid in client.orders.open_orders
            await order.cancel()
            state = await order.wait_done(timeout=10)
            assert state.status == "canceled" and state.vol_exec == 0
            assert order.txid not in client.orders.open_orders

    run(body)


def test_a_market_order_fills_with_exact_amounts_and_its_fills(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            trades = await client.own_trades(snapshot=False)
            order = await client.add_order("ETH/USD", "buy", "market", volume="0.5")
            state = await order.wait_done(timeout=10)
            assert state.status == "closed" and state.is_filled
            assert state.vol_exec == Decimal("0.5")
            await order.wait_for(lambda s: s.filled_volume == s.vol_exec, timeout=10)
            assert sum(fill.cost for fill in state.fills) == state.cost
            assert sum(fill.fee for fill in state.fills) == state.fee
            assert all(isinstance(fill.price, Decimal) for fill in state.fills)
            frame = await trades.get(timeout=10)
            assert isinstance(frame, OwnTrades)
            assert {trade.ordertxid for _, trade in frame.trades} == {order.txid}

    run(body)


def test_amend_edit_and_cancel_many(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            price = await far_bid(client)
            first = await client.add_order("XBT/USD", "buy", "limit", "0.01", price=price)
            second = await client.add_order("XBT/USD", "buy", "limit", "0.02", price=price)
            await first.wait_status("open", timeout=10)
            amend_id = await first.amend(limit_price=price - 1)
            assert amend_id
            await first.wait_for(lambda s: s.price == price - 1, timeout=10)
            assert first.txid in client.orders.open_orders  # amended in place: same txid
            replaced = await second.edit(volume="0.03", price=price - 2)
            assert replaced.txid != second.txid
            state = await replaced.wait_status("open", timeout=10)
            assert state.volume == Decimal("0.03")
            await second.wait_done(timeout=10)
            assert await client.cancel_order(first.txid, replaced.txid) == 2
            for order in (first, replaced):
                assert (await order.wait_done(timeout=10)).status == "canceled"

    run(body)


def test_cancel_all_and_the_dead_mans_switch(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            price = await far_bid(client)
            orders = [
                await client.add_order("XBT/USD", "buy", "limit", "0.01", price=price)
                for _ in range(3)
            ]
            for order in orders:
                await order.wait_status("open", timeout=10)
            assert (await client.cancel_all()).count >= 3
            for order in orders:
                assert (await order.wait_done(timeout=10)).status == "canceled"
            armed = await client.cancel_all_orders_after(60)
            assert armed.trigger_time not in ("", "0")
            disarmed = await client.cancel_all_orders_after(0)
            assert disarmed.trigger_time == "0"
            # Armed for real: it fires and cancels what rests.
            resting = await client.add_order("XBT/USD", "buy", "limit", "0.01", price=price)
            await resting.wait_status("open", timeout=10)
            await client.cancel_all_orders_after(1)
            assert (await resting.wait_done(timeout=15)).status == "canceled"

    run(body)


def test_validate_checks_without_placing(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            before = len(client.orders)
            descr = await client.validate_order("XBT/USD", "buy", "limit", "0.01", price="1000")
            assert "buy" in descr
            assert len(client.orders) == before

    run(body)


@pytest.mark.parametrize(
    ("order", "error", "text"),
    [
        (
            {"volume": "1000", "ordertype": "limit", "price": "100000"},
            InsufficientFundsError,
            "EOrder:Insufficient funds",
        ),
        (
            {"volume": "0.00000001", "ordertype": "limit", "price": "1000"},
            OrderMinimumNotMetError,
            "EOrder:Order minimum not met",
        ),
        ({"volume": "0.01", "ordertype": "bogus"}, InvalidArgumentsError, "EGeneral:Invalid"),
        (
            {"volume": "0.01", "ordertype": "limit", "price": "1000", "leverage": "5"},
            ExchangeError,
            "EOrder:Cannot open position",
        ),
        (
            {"volume": "0.01", "ordertype": "limit", "price": "1000.55"},
            TickSizeError,
            "EOrder:Tick size check failed",
        ),
        (
            {"volume": "0.0001", "ordertype": "limit", "price": "1"},
            CostMinimumNotMetError,
            "EOrder:Cost minimum not met",
        ),
        (
            {
                "volume": "0.01",
                "ordertype": "limit",
                "price": "1000",
                "deadline": "2020-01-01T00:00:00Z",
            },
            DeadlineElapsedError,
            "EService:Deadline elapsed",
        ),
        (
            {"volume": "0.01", "ordertype": "limit", "price": "1000", "reduce_only": True},
            OrderError,
            "EOrder:Reduce only:No position exists",
        ),
        (
            {"volume": "0.01", "ordertype": "settle-position", "price": "1000"},
            OrderError,
            "EOrder:Unknown position",
        ),
    ],
)
def test_refused_orders_raise_the_mapped_error(
    sandbox: RunningSandbox, order: dict[str, Any], error: type[Exception], text: str
) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            with pytest.raises(error) as caught:
                await client.add_order(
                    "XBT/USD",
                    "buy",
                    order["ordertype"],
                    order["volume"],
                    price=order.get("price"),
                    leverage=order.get("leverage"),
                    reduce_only=order.get("reduce_only"),
                    deadline=order.get("deadline"),
                    track=False,
                )
            assert isinstance(caught.value, ExchangeError)
            assert caught.value.kraken_error.startswith(text)

    run(body)


def test_other_refusals(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            with pytest.raises(UnknownOrderError) as caught:
                await client.cancel_order("OAAAAA-BBBBB-CCCCCC")
            assert caught.value.kraken_error == "EOrder:Unknown order"
            with pytest.raises(UnknownOrderError):
                await client.amend_order(txid="OAAAAA-BBBBB-CCCCCC", limit_price="100")
            with pytest.raises(UnknownPairError):
                await client.add_order("NOPE/USD", "buy", "market", "1")
            with pytest.raises(UsageError):
                await client.add_order("XBT/USD", "buy", "limit", "0.01", price=1000.5)  # type: ignore[arg-type]
            with pytest.raises(UsageError):
                await client.cancel_order()
            with pytest.raises(UsageError):
                await client.amend_order(limit_price="1")

    run(body)


def test_private_streams_start_with_snapshots() -> None:
    # Its own sandbox: the fill it needs would spend the shared account's trading counter.
    with run_sandbox(main_levels=50) as sandbox:
        run(partial(streams_start_with_snapshots, sandbox))


async def streams_start_with_snapshots(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox) as client:
        price = await far_bid(client)
        order = await client.add_order("XBT/USD", "buy", "limit", "0.01", price=price)
        await order.wait_status("open", timeout=10)
        filled = await client.add_order("XBT/USD", "buy", "market", "0.001")
        await filled.wait_done(timeout=10)
    async with client_for(sandbox) as client:
        orders = await client.open_orders(ratecounter=True)
        snapshot = await orders.get(timeout=10)
        assert isinstance(snapshot, OpenOrders) and snapshot.sequence == 1
        assert order.txid in {txid for txid, _ in snapshot.orders}
        trades = await client.own_trades()
        first = await trades.get(timeout=10)
        assert first.sequence == 1
        assert filled.txid in {trade.ordertxid for _, trade in first.trades}
        await client.cancel_order(order.txid)


def test_a_stream_opened_on_a_running_feed_starts_with_a_rebuilt_snapshot() -> None:
    """Order handles subscribe the private feeds; a stream opened later still starts with a
    snapshot, rebuilt from what the feeds sent, equal to the one a fresh subscription gets.
    (Its own sandbox: its cancels of brand-new orders would spend the shared account's
    trading counter.)"""
    with run_sandbox(main_levels=50) as sandbox:
        run(partial(rebuilt_snapshots, sandbox))


async def rebuilt_snapshots(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox) as client:
        price = await far_bid(client)
        resting = await client.add_order("XBT/USD", "buy", "limit", "0.01", price=price, userref=7)
        await resting.wait_status("open", timeout=10)
        filled = await client.add_order("XBT/USD", "buy", "market", "0.001")
        await filled.wait_done(timeout=10)
        await wait_until(lambda: bool(client.orders[filled.txid].fills))  # its ownTrades frame
        orders = await client.open_orders()
        rebuilt = await orders.get(timeout=1)
        assert isinstance(rebuilt, OpenOrders) and rebuilt.sequence > 1
        trades = await client.own_trades()
        recent = await trades.get(timeout=1)
        assert isinstance(recent, OwnTrades) and recent.sequence >= 1
        assert filled.txid in {trade.ordertxid for _, trade in recent.trades}
        # The next update continues the feed's sequence after the rebuilt snapshot.
        await resting.cancel()
        update = await orders.get(timeout=10)
        assert update.sequence == rebuilt.sequence + 1
        assert dict(update.orders)[resting.txid].status == "canceled"
        async with client_for(sandbox) as fresh:
            resting_again = await client.add_order(
                "XBT/USD", "buy", "limit", "0.01", price=price, userref=8
            )
            await resting_again.wait_status("open", timeout=10)
            late = await client.open_orders()
            rebuilt = await late.get(timeout=1)
            snapshot = await (await fresh.open_orders()).get(timeout=10)
            assert snapshot.sequence == 1
            # Entry for entry what a fresh subscription lists, in the same order (but for
            # ``ratecount``: the handles' subscription asked for it, the fresh one did not).
            mine = [(t, i) for t, i in snapshot.orders if t in dict(rebuilt.orders)]
            without_ratecount = [
                (t, msgspec.structs.replace(i, ratecount=UNSET)) for t, i in rebuilt.orders
            ]
            assert without_ratecount == mine and resting_again.txid in dict(mine)
            listed = await (await fresh.own_trades()).get(timeout=10)
            assert recent.trades[0] in listed.trades
            await resting_again.cancel()


def test_a_stream_never_silently_gets_other_private_feed_options(
    sandbox: RunningSandbox,
) -> None:
    """Kraken keeps one subscription per private channel and connection: a stream asking for
    options the running feed lacks is refused with a clear UsageError."""

    async def body() -> None:
        async with client_for(sandbox) as client:
            price = await far_bid(client)
            order = await client.add_order("XBT/USD", "buy", "limit", "0.01", price=price)
            await order.wait_status("open", timeout=10)  # tracking subscribed both feeds
            with pytest.raises(UsageError, match="consolidate_taker=True"):
                await client.own_trades(consolidate_taker=False)
            fills = await client.own_trades(snapshot=False)  # the feed's own value: fine
            orders = await client.open_orders(ratecounter=True)  # tracking asked for it too
            await order.cancel()
            update = await orders.get(timeout=10)
            assert update.sequence >= 1
            fills.close()
        async with client_for(sandbox) as client:
            first = await client.open_orders()  # without ratecounter
            with pytest.raises(UsageError, match="without ratecounter"):
                await client.open_orders(ratecounter=True)
            second = await client.open_orders()  # the same options: shared
            assert not first.closed and not second.closed
            unconsolidated = await client.own_trades(consolidate_taker=False)
            with pytest.raises(UsageError, match="consolidate_taker=False"):
                await client.own_trades()
            assert not unconsolidated.closed

    run(body)


def test_tokens_are_fetched_once_for_concurrent_callers(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            events = client.events()
            price = await far_bid(client)
            orders = await asyncio.gather(
                *(
                    client.add_order("XBT/USD", "buy", "limit", "0.01", price=price, track=False)
                    for _ in range(5)
                )
            )
            refreshed = [e for e in drain(events) if isinstance(e, TokenRefreshed)]
            assert len(refreshed) == 1
            assert len({order.txid for order in orders}) == 5
            await client.cancel_all()

    run(body)


def test_a_rejected_token_is_replaced_and_the_request_retried(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox, token="not-a-token") as client:
            events = client.events()
            state = await client.cancel_all_orders_after(0)
            assert state.trigger_time == "0"
            causes = [e.cause for e in drain(events) if isinstance(e, TokenRefreshed)]
            assert "trading request refused" in causes or any("rejected" in c for c in causes)

    run(body)


def test_a_ready_token_without_a_key_is_used_as_is(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as keyed:
            token = (await keyed.rest.get_websockets_token()).token
        async with Client(sandbox=sandbox.rest_url, token=token, request_timeout=5) as client:
            assert (await client.cancel_all_orders_after(0)).trigger_time == "0"
        async with Client(sandbox=sandbox.rest_url, token="bogus", request_timeout=5) as client:
            with pytest.raises(InvalidSessionError):
                await client.cancel_all_orders_after(0)

    run(body)


def test_private_calls_without_credentials_are_usage_errors(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KRAKEN_API_KEY", raising=False)
    monkeypatch.delenv("KRAKEN_API_SECRET", raising=False)

    async def body() -> None:
        async with Client(sandbox=sandbox.rest_url) as client:
            with pytest.raises(UsageError, match="API key"):
                await client.add_order("XBT/USD", "buy", "market", "0.01")
            with pytest.raises(UsageError):
                await client.open_orders()

    run(body)


def test_credentials_come_from_the_environment(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRAKEN_API_KEY", sandbox.api_key)
    monkeypatch.setenv("KRAKEN_API_SECRET", sandbox.api_secret)

    async def body() -> None:
        async with Client(sandbox=sandbox.rest_url) as client:
            assert (await client.cancel_all_orders_after(0)).trigger_time == "0"

    run(body)


def test_every_call_has_a_deadline(sandbox: RunningSandbox) -> None:
    async def body() -> None:
        async with client_for(sandbox) as client:
            await client.track_orders()
            await asyncio.to_thread(sandbox.admin, "faults/delay", {"seconds": 2})
            try:
                with pytest.raises(KrakenTimeoutError):
                    await client.cancel_all_orders_after(0, timeout=0.5)
            finally:
                await asyncio.to_thread(sandbox.admin, "faults/delay", {"seconds": 0})

    run(body)


@pytest.mark.parametrize(
    ("mode", "pair"), [("cancel_only", None), ("post_only", None), ("limit_only", "XBT/USD")]
)
def test_market_modes_refuse_new_orders(
    sandbox: RunningSandbox, mode: str, pair: str | None
) -> None:
    where = {} if pair is None else {"pair": pair}  # the whole exchange, or one pair's market

    async def body() -> None:
        async with client_for(sandbox) as client:
            await client.track_orders()
            await asyncio.to_thread(sandbox.admin, "status", {"status": mode, **where})
            try:
                with pytest.raises(MarketStateError) as caught:
                    await client.add_order("XBT/USD", "buy", "market", "0.001")
                assert caught.value.kraken_error == f"EService:Market in {mode} mode"
            finally:
                await asyncio.to_thread(sandbox.admin, "status", {"status": "online", **where})

    run(body)


def test_scheduled_and_open_order_limits_raise_orders_limit_exceeded() -> None:
    """Starter tier, per pair (spec 7.6): 25 scheduled orders on ETH/USD, 60 open orders on
    XBT/USD. Its own sandbox: these orders would crowd the shared account's rate counters (and
    cancelling them, at +8 each while young, would cost minutes of counter decay)."""
    tier = RATE_TIERS["starter"]

    async def fill_up(client: Client, pair: str, count: int, **options: Any) -> ExchangeError:
        price = await far_bid(client, pair)
        for _ in range(count):
            await client.add_order(
                pair, "buy", "limit", "0.01", price=price, track=False, **options
            )
        with pytest.raises(OrdersLimitExceededError) as caught:
            await client.add_order(
                pair, "buy", "limit", "0.01", price=price, track=False, **options
            )
        return caught.value

    async def body(sandbox: RunningSandbox) -> None:
        async with client_for(sandbox) as client:
            scheduled = await fill_up(client, "ETH/USD", tier.max_scheduled_orders, starttm="+3600")
            assert scheduled.kraken_error == "EOrder:Scheduled orders limit exceeded"
            opened = await fill_up(client, "XBT/USD", tier.max_open_orders)
            assert opened.kraken_error == "EOrder:Orders limit exceeded"
            listed = await client.rest.open_orders()
            assert len(listed) == tier.max_scheduled_orders + tier.max_open_orders

    with run_sandbox(main_levels=50) as sandbox:
        run(partial(body, sandbox))


def test_an_order_with_a_conditional_close_cannot_be_edited() -> None:
    """Spec 6.2. Its own sandbox: a young order's edit costs the shared rate counter dearly."""

    async def body(sandbox: RunningSandbox) -> None:
        async with client_for(sandbox) as client:
            price = await far_bid(client)
            closing = await client.add_order(
                "XBT/USD", "buy", "limit", "0.01", price=price, close_ordertype="limit",
                close_price=price * 2, track=False,
            )  # fmt: skip
            with pytest.raises(OrderError) as refused:
                await client.edit_order(closing.txid, "XBT/USD", price=price - 1)
            assert refused.value.kraken_error == "EOrder:Invalid order"
            assert list(await client.rest.open_orders()) == [closing.txid]

    with run_sandbox(main_levels=50) as sandbox:
        run(partial(body, sandbox))


def test_a_key_without_trading_permission_is_refused(sandbox: RunningSandbox) -> None:
    key = sandbox.admin(
        "keys", {"account": sandbox.account, "permissions": ["query_funds", "websocket"]}
    )

    async def body() -> None:
        async with Client(
            sandbox=sandbox.rest_url, api_key=str(key["key"]), api_secret=str(key["secret"])
        ) as client:
            with pytest.raises(PermissionDeniedError) as caught:
                await client.add_order("XBT/USD", "buy", "market", "0.001", track=False)
            assert caught.value.kraken_error == "EGeneral:Permission denied"

    run(body)
