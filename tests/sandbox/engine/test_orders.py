"""Placing and matching orders: every validation rule and error string, fees, flags, TIF, STP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from krakenws.errors import (
    CostMinimumNotMetError,
    ExchangeError,
    InsufficientFundsError,
    InvalidArgumentsError,
    OrderMinimumNotMetError,
    OrdersLimitExceededError,
    TickSizeError,
    UnknownAssetPairError,
)
from krakenws.sandbox.engine import (
    BookLevelChanged,
    Engine,
    OrderCanceled,
    OrderClosed,
    OrderOpened,
    OrderPlaced,
    PublicTrade,
    SeededIds,
    TradeExecuted,
)

from .helpers import SECOND, T0, check_invariants, kinds, make_engine, req

D = Decimal
BAD = "EGeneral:Invalid arguments:"


def error_of(engine: Engine, account: str = "alice", **fields: Any) -> str:
    with pytest.raises(ExchangeError) as caught:
        engine.add_order(account, req(**fields), T0 + SECOND)
    return caught.value.kraken_error


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"type": "hold"}, "EGeneral:Invalid arguments:type"),
        ({"ordertype": "iceberg"}, "EGeneral:Invalid arguments:ordertype"),
        ({"ordertype": "settle-position", "price": "1"}, "EOrder:Unknown position"),
        ({"volume": None}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "-1"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "0"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "NaN"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": D("NaN")}, "EGeneral:Invalid arguments:volume"),
        ({"volume": D("Infinity")}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "1e3"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "99999999999999999999"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "0.123456789"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": 1.5}, "EGeneral:Invalid arguments:volume"),
        ({"volume": True}, "EGeneral:Invalid arguments:volume"),
        ({"price": "abc"}, "EGeneral:Invalid arguments:price"),
        ({"price": "-5"}, "EGeneral:Invalid arguments:price"),
        ({"ordertype": "stop-loss", "price": None}, "EGeneral:Invalid arguments:price"),
        ({"ordertype": "stop-loss-limit", "price": "90.0"}, "EGeneral:Invalid arguments:price2"),
        ({"price": "+5"}, "EGeneral:Invalid arguments:price"),  # relative, no last trade
        ({"oflags": "post,bogus"}, "EGeneral:Invalid arguments:oflags"),
        ({"oflags": "fcib,fciq"}, "EGeneral:Invalid arguments:oflags"),
        ({"ordertype": "market", "oflags": "post"}, "EGeneral:Invalid arguments:oflags"),
        ({"oflags": "viqc"}, "EGeneral:Invalid arguments:oflags"),
        ({"timeinforce": "FOK"}, "EGeneral:Invalid arguments:timeinforce"),
        ({"timeinforce": "IOC", "oflags": "post"}, "EGeneral:Invalid arguments:timeinforce"),
        ({"timeinforce": "GTD"}, "EGeneral:Invalid arguments:expiretm"),
        ({"expiretm": str(T0 // SECOND - 10)}, "EGeneral:Invalid arguments:expiretm"),
        ({"expiretm": "+99999999"}, "EGeneral:Invalid arguments:expiretm"),
        ({"expiretm": "soon"}, "EGeneral:Invalid arguments:expiretm"),
        ({"starttm": "tomorrow"}, "EGeneral:Invalid arguments:starttm"),
        ({"userref": "12x"}, "EGeneral:Invalid arguments:userref"),
        ({"userref": str(2**31)}, "EGeneral:Invalid arguments:userref"),
        ({"userref": "1", "cl_ord_id": "abc"}, "EGeneral:Invalid arguments:cl_ord_id"),
        ({"cl_ord_id": "x" * 19}, "EGeneral:Invalid arguments:cl_ord_id"),
        ({"stp_type": "cancel_all"}, "EGeneral:Invalid arguments:stp_type"),
        ({"validate": "maybe"}, "EGeneral:Invalid arguments:validate"),
        ({"leverage": "7"}, "EGeneral:Invalid arguments:leverage"),
        ({"leverage": "2"}, "EOrder:Cannot open position"),
        ({"margin": True}, "EOrder:Cannot open position"),
        ({"reduce_only": "true"}, "EOrder:Reduce only:No position exists"),
        ({"close_ordertype": "market", "close_price": "1"}, f"{BAD}close[ordertype]"),
        ({"close_ordertype": "limit"}, "EGeneral:Invalid arguments:close[price]"),
        ({"close_ordertype": "stop-loss-limit", "close_price": "1"}, f"{BAD}close[price2]"),
        ({"close_price": "1"}, "EGeneral:Invalid arguments:close[ordertype]"),
        ({"volume": "0.00009"}, "EOrder:Order minimum not met"),
        ({"volume": "0.0001", "price": "1000.0"}, "EOrder:Cost minimum not met"),
        ({"price": "100.05"}, "EOrder:Tick size check failed"),
        ({"price": "0.050005", "pair": "ETH/XBT"}, "EOrder:Tick size check failed"),
        ({"volume": "20000"}, "EOrder:Insufficient funds"),
        ({"type": "sell", "volume": "101"}, "EOrder:Insufficient funds"),
        ({"pair": "FOO/BAR"}, "EQuery:Unknown asset pair"),
    ],
)  # fmt: skip
def test_bad_requests_get_krakens_exact_error(fields: dict[str, Any], error: str) -> None:
    engine = make_engine()
    assert error_of(engine, **fields) == error
    assert engine.open_orders("alice") == []
    check_invariants(engine)


def test_error_classes() -> None:
    engine = make_engine()
    cases = [
        ({"volume": "x"}, InvalidArgumentsError),
        ({"volume": "0.00001"}, OrderMinimumNotMetError),
        ({"volume": "0.001", "price": "100.0"}, CostMinimumNotMetError),
        ({"price": "100.04"}, TickSizeError),
        ({"volume": "50000"}, InsufficientFundsError),
        ({"pair": "XBT/GBP"}, UnknownAssetPairError),
    ]
    for fields, cls in cases:
        with pytest.raises(cls):
            engine.add_order("alice", req(**fields), T0)


def test_trailing_zeros_are_on_tick() -> None:
    engine = make_engine()
    engine.add_order("alice", req(price="100.10"), T0)
    assert engine.open_orders("alice")[0].price == D("100.1")


def test_limit_order_rests_and_holds_funds() -> None:
    engine = make_engine()
    result = engine.add_order("alice", req(volume="2", price="100.0", userref="7"), T0 + 1)
    assert result.descr == "buy 2.00000000 XBTUSD @ limit 100.0"
    assert kinds(result.events) == ["OrderPlaced", "OrderOpened", "BookLevelChanged"]
    placed = result.events[0]
    assert isinstance(placed, OrderPlaced) and placed.order.status == "pending"
    assert placed.order.userref == 7 and placed.order.opentm == T0 + 1
    assert isinstance(result.events[1], OrderOpened) and result.events[1].order.status == "open"
    level = result.events[2]
    assert isinstance(level, BookLevelChanged)
    assert (level.side, level.price, level.volume, level.wsname) == (
        "bid",
        D("100.0"),
        D("2"),
        "XBT/USD",
    )
    assert engine.held("alice", "ZUSD") == D("200.8000")  # 200 + 0.4% taker fee
    assert engine.book("XBT/USD").best_bid() == D("100.0")


def test_validate_places_nothing() -> None:
    engine = make_engine()
    result = engine.add_order("alice", req(validate="true"), T0)
    assert result.txid is None and result.events == ()
    assert engine.open_orders("alice") == [] and engine.held("alice", "USD") == 0
    assert engine.rate_count("alice", "XBT/USD", T0) == 0


def test_price_time_priority_partial_fills_and_fees() -> None:
    engine = make_engine()
    first = engine.add_order("bob", req("sell", volume="1", price="101.0"), T0).txid
    second = engine.add_order("carol", req("sell", volume="1", price="101.0"), T0 + 1).txid
    better = engine.add_order("carol", req("sell", volume="0.5", price="100.5"), T0 + 2).txid
    result = engine.add_order("alice", req("buy", volume="2", price="101.0"), T0 + 3)
    fills = [e.trade for e in result.events if isinstance(e, TradeExecuted)]
    taker = [t for t in fills if not t.maker]
    makers = [t.ordertxid for t in fills if t.maker]
    assert makers == [better, first, second]
    assert [t.vol for t in taker] == [D("0.5"), D("1"), D("0.5")]
    assert [t.price for t in taker] == [D("100.5"), D("101.0"), D("101.0")]
    bought = engine.order(result.txid or "")
    assert bought.status == "closed" and bought.vol_exec == D("2")
    assert bought.cost == D("201.7500")
    assert bought.fee == D("0.2010") + D("0.4040") + D("0.2020")  # 0.4% taker per fill
    assert bought.avg_price == D("100.87500")
    maker = engine.order(second)
    assert maker.status == "open" and maker.vol_exec == D("0.5") and maker.fee == D("0.1262")
    publics = [e for e in result.events if isinstance(e, PublicTrade)]
    assert [(p.side, p.ordertype) for p in publics] == [("b", "l")] * 3
    assert len({p.match_id for p in publics}) == 3
    assert engine.balance("house", "ZUSD") == sum((t.fee for t in fills), D(0))
    check_invariants(engine)


def test_fee_in_base_and_in_quote() -> None:
    engine = make_engine()
    engine.add_order("bob", req("sell", volume="1", price="100.0", oflags="fcib"), T0)
    result = engine.add_order("alice", req("buy", volume="1", price="100.0", oflags="fcib"), T0 + 1)
    taker = next(
        e.trade for e in result.events if isinstance(e, TradeExecuted) and not e.trade.maker
    )
    assert (taker.fee, taker.fee_asset) == (D("0.004"), "XXBT")
    assert engine.balance("alice", "XBT") == D("100.996")
    assert engine.balance("bob", "XBT") == D("98.9975")
    assert engine.balance("house", "XBT") == D("0.0065")
    check_invariants(engine)


def test_post_only_that_would_take_is_canceled() -> None:
    engine = make_engine()
    engine.add_order("bob", req("sell", volume="1", price="100.0"), T0)
    result = engine.add_order("alice", req("buy", price="100.0", oflags="post"), T0 + 1)
    last = result.events[-1]
    assert isinstance(last, OrderCanceled) and last.order.cancel_reason == "Post only order"
    rests = engine.add_order("alice", req("buy", price="99.9", oflags="post"), T0 + 2)
    assert engine.order(rests.txid or "").status == "open"
    check_invariants(engine)


def test_market_order_sweeps_then_cancels_the_rest() -> None:
    engine = make_engine()
    engine.add_order("bob", req("sell", volume="1", price="100.0"), T0)
    result = engine.add_order("alice", req("buy", "market", volume="3"), T0 + 1)
    order = engine.order(result.txid or "")
    assert (order.status, order.vol_exec, order.cancel_reason) == ("canceled", D(1), "No liquidity")
    assert result.descr == "buy 3.00000000 XBTUSD @ market"
    assert [e.order.status for e in result.events if isinstance(e, OrderCanceled)] == ["canceled"]
    check_invariants(engine)


def test_market_buy_checks_the_sweep_cost() -> None:
    engine = Engine(ids=SeededIds(seed=1), now=T0)
    engine.deposit("alice", "ZUSD", D("100"), now=T0)
    engine.deposit("bob", "XXBT", D("5"), now=T0)
    engine.add_order("bob", req("sell", volume="2", price="100.0"), T0)
    with pytest.raises(InsufficientFundsError):
        engine.add_order("alice", req("buy", "market", volume="1"), T0)
    engine.add_order("alice", req("buy", "market", volume="0.99"), T0)
    assert engine.balance("alice", "XBT") == D("0.99")
    assert engine.balance("alice", "USD") == D("0.6040")
    check_invariants(engine)


def test_viqc_spends_quote() -> None:
    engine = make_engine()
    engine.add_order("bob", req("sell", volume="5", price="100.0"), T0)
    result = engine.add_order("alice", req("buy", "market", volume="250", oflags="viqc"), T0 + 1)
    order = engine.order(result.txid or "")
    assert order.status == "closed"
    assert order.vol_exec == D("250.0000") and order.cost == D("2.5")  # quote / base for viqc
    assert order.avg_price == D("100.00000")
    check_invariants(engine)


def test_ioc_cancels_the_rest() -> None:
    engine = make_engine()
    engine.add_order("bob", req("sell", volume="1", price="100.0"), T0)
    result = engine.add_order("alice", req("buy", volume="2", price="100.0", timeinforce="IOC"), T0)
    order = engine.order(result.txid or "")
    assert (order.status, order.vol_exec, order.cancel_reason) == (
        "canceled", D(1), "Immediate or cancel",
    )  # fmt: skip
    assert engine.book("XBT/USD").best_bid() is None
    check_invariants(engine)


def test_gtd_expires_on_advance() -> None:
    engine = make_engine()
    txid = engine.add_order("alice", req(timeinforce="GTD", expiretm="+60"), T0).txid or ""
    assert engine.order(txid).expiretm == T0 + 60 * SECOND
    assert engine.advance(T0 + 59 * SECOND).events == ()
    events = engine.advance(T0 + 61 * SECOND).events
    assert kinds(events) == ["BookLevelChanged", "OrderExpired"]
    assert engine.order(txid).status == "expired" and engine.order(txid).closetm == T0 + 60 * SECOND
    assert engine.held("alice", "USD") == 0


def test_starttm_schedules_the_order() -> None:
    engine = make_engine()
    engine.add_order("bob", req("sell", volume="1", price="100.0"), T0)
    result = engine.add_order("alice", req(starttm="+30"), T0)
    assert kinds(result.events) == ["OrderPlaced"]
    txid = result.txid or ""
    assert engine.order(txid).status == "pending" and engine.held("alice", "USD") > 0
    events = engine.advance(T0 + 30 * SECOND).events
    assert "OrderOpened" in kinds(events) and engine.order(txid).status == "closed"
    check_invariants(engine)


@pytest.mark.parametrize(
    ("stp", "taker_status", "maker_status"),
    [
        ("cancel_newest", "canceled", "open"),
        ("cancel_oldest", "open", "canceled"),
        ("cancel_both", "canceled", "canceled"),
    ],
)
def test_self_trade_prevention(stp: str, taker_status: str, maker_status: str) -> None:
    engine = make_engine()
    maker = engine.add_order("alice", req("sell", price="100.0"), T0).txid or ""
    taker = engine.add_order("alice", req("buy", price="100.0", stp_type=stp), T0 + 1).txid or ""
    assert engine.order(taker).status == taker_status
    assert engine.order(maker).status == maker_status
    assert engine.trades("alice") == []
    for txid in (maker, taker):
        if engine.order(txid).status == "canceled":
            assert engine.order(txid).cancel_reason == "Self trade prevention"
    check_invariants(engine)


def test_cl_ord_id_unique_among_open_orders() -> None:
    engine = make_engine()
    engine.add_order("alice", req(cl_ord_id="my-order-1"), T0)
    assert error_of(engine, cl_ord_id="my-order-1") == "EGeneral:Invalid arguments:cl_ord_id"
    assert engine.open_orders("alice")[0].cl_ord_id == "my-order-1"


def test_orders_limit() -> None:
    engine = make_engine()
    for index in range(60):
        engine.add_order("alice", req(price=str(D("50.0") + index)), T0 + index * 10 * SECOND)
    with pytest.raises(OrdersLimitExceededError):
        engine.add_order("alice", req(price="10.0"), T0 + 700 * SECOND)


def test_clock_never_goes_back() -> None:
    engine = make_engine()
    engine.advance(T0 + 5)
    with pytest.raises(ValueError, match="backwards"):
        engine.advance(T0)
    closed = engine.add_order("bob", req("sell"), T0 + 6)
    assert isinstance(closed.events[0], OrderPlaced)
    assert not any(isinstance(e, OrderClosed) for e in closed.events)
