"""Stop-loss, take-profit, their -limit forms, trailing stops, relative prices, closes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from krakenws.errors import ExchangeError
from krakenws.sandbox.engine import ContingentRejected, Engine, OrderTriggered

from .helpers import SECOND, T0, check_invariants, kinds, make_engine, req

D = Decimal


def trade_at(engine: Engine, price: str, now: int) -> None:
    """bob sells 0.01 to carol at ``price`` (moves the last trade price)."""
    engine.add_order("bob", req("sell", volume="0.01", price=price), now)
    engine.add_order("carol", req("buy", volume="0.01", price=price), now)


def test_stop_loss_sell_triggers_when_price_falls() -> None:
    engine = make_engine()
    trade_at(engine, "100.0", T0)
    engine.add_order("carol", req("buy", volume="1", price="94.0"), T0)
    stop = engine.add_order("alice", req("sell", "stop-loss", volume="1", price="95.0"), T0).txid
    assert engine.order(stop or "").status == "open" and not engine.order(stop or "").triggered
    assert engine.held("alice", "XBT") == D(1)
    trade_at(engine, "96.0", T0 + 1)
    assert not engine.order(stop or "").triggered
    engine.add_order("bob", req("sell", volume="0.01", price="95.0"), T0 + 2)
    result = engine.add_order("carol", req("buy", volume="0.01", price="95.0"), T0 + 2)
    assert "OrderTriggered" in kinds(result.events)
    order = engine.order(stop or "")
    assert order.triggered and order.misc == ("stopped",)
    assert order.status == "closed" and order.avg_price == D("94.00000")
    check_invariants(engine)


def test_take_profit_buy_and_stop_loss_limit() -> None:
    engine = make_engine()
    trade_at(engine, "100.0", T0)
    tp = engine.add_order("alice", req("buy", "take-profit", volume="0.5", price="98.0"), T0)
    sll = engine.add_order(
        "alice", req("sell", "stop-loss-limit", volume="0.5", price="97.0", price2="96.5"), T0
    )
    assert sll.descr == "sell 0.50000000 XBTUSD @ stop loss 97.0 -> limit 96.5"
    trade_at(engine, "97.0", T0 + 1)
    assert engine.order(tp.txid or "").triggered
    limit_order = engine.order(sll.txid or "")
    assert limit_order.triggered and limit_order.limitprice == D("96.5")
    check_invariants(engine)


def test_relative_prices() -> None:
    engine = make_engine()
    trade_at(engine, "100.0", T0)
    cases = [
        (req("buy", price="-5"), D("95.0")),
        (req("buy", price="+5%"), D("105.0")),
        (req("buy", price="#2"), D("98.0")),
        (req("sell", price="#2"), D("102.0")),
        (req("buy", "stop-loss", price="#3"), D("103.0")),
        (req("sell", "stop-loss", price="#3"), D("97.0")),
        (req("sell", "take-profit", price="#3"), D("103.0")),
        (req("sell", "stop-loss-limit", price="-10%", price2="-1"), D("90.0")),
    ]
    for request, expected in cases:
        txid = engine.add_order("alice", request, T0 + 1).txid or ""
        assert engine.order(txid).price == expected, request
    txid = engine.add_order("alice", cases[-1][0], T0 + 2).txid or ""
    assert engine.order(txid).price2 == D("89.0")
    with pytest.raises(ExchangeError, match="Tick size"):
        engine.add_order("alice", req("buy", price="-0.05"), T0 + 3)
    with pytest.raises(ExchangeError, match="Invalid arguments:price"):
        engine.add_order("alice", req("buy", price="5%"), T0 + 3)


def test_trailing_stop_follows_the_price() -> None:
    engine = make_engine()
    trade_at(engine, "100.0", T0)
    with pytest.raises(ExchangeError, match="Invalid arguments:price"):
        engine.add_order("alice", req("sell", "trailing-stop", price="-5"), T0)
    txid = engine.add_order("alice", req("sell", "trailing-stop", price="+5"), T0).txid or ""
    assert engine.order(txid).stopprice == D("95.0")
    trade_at(engine, "110.0", T0 + 1)
    assert engine.order(txid).stopprice == D("105.0") and not engine.order(txid).triggered
    trade_at(engine, "106.0", T0 + 2)
    assert not engine.order(txid).triggered
    engine.add_order("carol", req("buy", volume="2", price="104.0"), T0 + 3)
    trade_at(engine, "105.0", T0 + 4)
    order = engine.order(txid)
    assert order.triggered and order.status == "closed" and order.avg_price == D("104.00000")
    check_invariants(engine)


def test_trailing_stop_limit_needs_signed_offsets() -> None:
    engine = make_engine()
    trade_at(engine, "100.0", T0)
    with pytest.raises(ExchangeError, match="price2"):
        engine.add_order("alice", req("buy", "trailing-stop-limit", price="+2", price2="3"), T0)
    txid = (
        engine.add_order(
            "alice", req("buy", "trailing-stop-limit", price="+2%", price2="+1"), T0
        ).txid
        or ""
    )
    assert engine.order(txid).stopprice == D("102.0")
    trade_at(engine, "90.0", T0 + 1)
    assert engine.order(txid).stopprice == D("91.8")
    trade_at(engine, "92.0", T0 + 2)
    order = engine.order(txid)
    assert order.triggered and order.limitprice == D("92.8") and order.status == "open"
    assert engine.book("XBT/USD").best_bid() == D("92.8")
    check_invariants(engine)


def test_conditional_close_is_placed_when_the_parent_fills() -> None:
    engine = make_engine()
    result = engine.add_order(
        "alice",
        req("buy", volume="1", price="100.0", close_ordertype="limit", close_price="110.0"),
        T0,
    )
    assert result.close_descr == "close position @ limit 110.0"
    engine.add_order("bob", req("sell", volume="0.4", price="100.0"), T0 + 1)
    assert len(engine.open_orders("alice")) == 1
    fill = engine.add_order("bob", req("sell", volume="0.6", price="100.0"), T0 + 2)
    assert kinds(fill.events).count("OrderPlaced") == 2
    closes = [o for o in engine.open_orders("alice") if o.type == "sell"]
    assert len(closes) == 1 and closes[0].vol == D(1) and closes[0].price == D("110.0")
    check_invariants(engine)


def test_conditional_close_refusal_is_an_event() -> None:
    engine = make_engine()
    engine.add_order(
        "alice",
        req("buy", volume="1", price="100.0", close_ordertype="limit", close_price="100.05"),
        T0,
    )
    result = engine.add_order("bob", req("sell", volume="1", price="100.0"), T0 + 1)
    rejected = [e for e in result.events if isinstance(e, ContingentRejected)]
    assert [e.error for e in rejected] == ["EOrder:Tick size check failed"]


def test_triggers_wait_in_cancel_only_mode() -> None:
    engine = make_engine()
    trade_at(engine, "100.0", T0)
    txid = engine.add_order("alice", req("sell", "stop-loss", price="150.0"), T0).txid or ""
    assert engine.order(txid).triggered  # already below the stop: fires at once
    txid = engine.add_order("alice", req("buy", "stop-loss", price="101.0"), T0).txid or ""
    engine.set_last_price("XBT/USD", D("100.0"), T0)
    engine.set_pair_status("XBT/USD", "cancel_only", T0 + 1)
    engine.set_last_price("XBT/USD", D("102.0"), T0 + 2)
    assert not engine.order(txid).triggered
    result = engine.set_pair_status("XBT/USD", "online", T0 + 3 * SECOND)
    assert any(isinstance(e, OrderTriggered) for e in result.events)
