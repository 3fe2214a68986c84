"""Cancel (txid, userref, cl_ord_id, all), edit, amend, the rate counter, the dead man's switch
and market states."""

from __future__ import annotations

from decimal import Decimal

import pytest

from krakenws.errors import (
    ExchangeError,
    InvalidArgumentsError,
    MarketStateError,
    OrderRateLimitError,
    ServiceUnavailableError,
    UnknownOrderError,
)
from krakenws.sandbox.engine import DeadManSwitchFired, OrderAmended, OrderCanceled

from .helpers import SECOND, T0, check_invariants, kinds, make_engine, req

D = Decimal


def test_cancel_by_txid_userref_and_cl_ord_id() -> None:
    engine = make_engine()
    a = engine.add_order("alice", req(price="90.0", userref="5"), T0).txid or ""
    engine.add_order("alice", req(price="91.0", userref="5"), T0)
    engine.add_order("alice", req(price="92.0", cl_ord_id="abc"), T0)
    engine.add_order("alice", req(price="93.0"), T0)
    one = engine.cancel_order("alice", a, T0 + 400 * SECOND)
    assert one.count == 1 and kinds(one.events) == ["BookLevelChanged", "OrderCanceled"]
    canceled = one.events[-1]
    assert isinstance(canceled, OrderCanceled) and canceled.order.cancel_reason == "User requested"
    assert engine.cancel_order("alice", 5, T0 + 400 * SECOND).count == 1
    assert engine.cancel_by_cl_ord_id("alice", "abc", T0 + 400 * SECOND).count == 1
    with pytest.raises(UnknownOrderError):
        engine.cancel_order("alice", a, T0 + 400 * SECOND)
    with pytest.raises(UnknownOrderError):
        engine.cancel_order("bob", engine.open_orders("alice")[0].txid, T0 + 400 * SECOND)
    with pytest.raises(UnknownOrderError):
        engine.cancel_by_cl_ord_id("alice", "abc", T0 + 400 * SECOND)
    with pytest.raises(InvalidArgumentsError):
        engine.cancel_order("alice", "not-an-id", T0 + 400 * SECOND)
    assert engine.cancel_all("alice", T0 + 400 * SECOND).count == 1
    assert engine.cancel_all("alice", T0 + 400 * SECOND).count == 0
    assert engine.held("alice", "USD") == 0
    check_invariants(engine)


def test_edit_replaces_the_order() -> None:
    engine = make_engine()
    original = engine.add_order("alice", req(volume="2", price="90.0", userref="3"), T0).txid or ""
    engine.add_order("bob", req("sell", volume="0.5", price="90.0"), T0 + 1)
    result = engine.edit_order(
        "alice", original, "XBTUSD", T0 + 60 * SECOND, volume="3", price="95.0", newuserref="4"
    )
    assert result.originaltxid == original and result.txid != original
    old, new = engine.order(original), engine.order(result.txid or "")
    assert (old.status, old.cancel_reason) == ("canceled", "Order replaced")
    assert new.vol == D("2.5") and new.price == D("95.0") and new.userref == 4
    assert result.descr == "buy 2.50000000 XBTUSD @ limit 95.0"
    with pytest.raises(InvalidArgumentsError, match="volume"):
        engine.edit_order("alice", result.txid or "", "XBT/USD", T0 + 61 * SECOND, volume="0")
    with pytest.raises(UnknownOrderError):
        engine.edit_order("alice", result.txid or "", "ETH/USD", T0 + 62 * SECOND, price="1")
    checked = engine.edit_order(
        "alice", result.txid or "", "XBT/USD", T0 + 63 * SECOND, price="96.0", validate=True
    )
    assert checked.txid is None and engine.order(result.txid or "").price == D("95.0")
    check_invariants(engine)


def test_amend_keeps_the_txid_and_queue_place_when_shrinking() -> None:
    engine = make_engine()
    first = engine.add_order("alice", req("sell", volume="2", price="101.0"), T0).txid or ""
    second = engine.add_order("bob", req("sell", volume="1", price="101.0"), T0).txid or ""
    result = engine.amend_order("alice", T0 + 20 * SECOND, txid=first, volume="1.5")
    assert result.txid == first and result.amend_id.startswith("T")
    amended = next(e for e in result.events if isinstance(e, OrderAmended))
    assert amended.order.vol == D("1.5") and amended.order.amended
    assert engine.book("XBT/USD").queue("ask", D("101.0")) == [first, second]
    engine.amend_order("alice", T0 + 40 * SECOND, txid=first, volume="3")
    assert engine.book("XBT/USD").queue("ask", D("101.0")) == [second, first]
    assert engine.held("alice", "XBT") == D(3)
    check_invariants(engine)


def test_amend_price_that_crosses_trades_or_is_refused_when_post_only() -> None:
    engine = make_engine()
    engine.add_order("bob", req("sell", volume="1", price="101.0"), T0)
    txid = engine.add_order("alice", req("buy", volume="1", price="99.0"), T0).txid or ""
    with pytest.raises(InvalidArgumentsError, match="post_only"):
        engine.amend_order("alice", T0 + SECOND, txid=txid, limit_price="101.0", post_only=True)
    assert engine.order(txid).price == D("99.0")
    with pytest.raises(ExchangeError, match="Tick size"):
        engine.amend_order("alice", T0 + SECOND, txid=txid, limit_price="101.05")
    with pytest.raises(InvalidArgumentsError, match="trigger_price"):
        engine.amend_order("alice", T0 + SECOND, txid=txid, trigger_price="101.0")
    engine.amend_order("alice", T0 + 2 * SECOND, txid=txid, limit_price="101.0")
    assert engine.order(txid).status == "closed"
    with pytest.raises(UnknownOrderError):
        engine.amend_order("alice", T0 + 3 * SECOND, txid=txid, volume="2")
    check_invariants(engine)


def test_amend_cannot_overdraw() -> None:
    engine = make_engine()
    txid = engine.add_order("alice", req("sell", volume="100", price="101.0"), T0).txid or ""
    with pytest.raises(ExchangeError, match="Insufficient funds"):
        engine.amend_order("alice", T0 + SECOND, txid=txid, volume="101")
    assert engine.order(txid).vol == D(100)


def test_rate_limit_counts_adds_and_cancels() -> None:
    engine = make_engine(tier="starter")
    now = T0
    # each add (+1) cancelled within 5 s (+8) = 9; 6 of them = 54, the 7th add is the 55th...
    for _ in range(6):
        txid = engine.add_order("alice", req(price="90.0"), now).txid or ""
        engine.cancel_order("alice", txid, now)
    assert engine.rate_count("alice", "XBT/USD", now) == 54
    for _ in range(6):
        engine.add_order("alice", req(price="90.0"), now)
    with pytest.raises(OrderRateLimitError) as caught:
        engine.add_order("alice", req(price="90.0"), now)
    assert caught.value.kraken_error == "EOrder:Rate limit exceeded"
    assert engine.rate_count("bob", "XBT/USD", now) == 0  # per account
    engine.add_order("alice", req(price="90.0", pair="ETH/USD"), now)  # per pair
    assert engine.cancel_all("alice", now).count == 7  # cancel-all is free
    later = now + 10 * SECOND
    assert engine.rate_count("alice", "XBT/USD", later) == 50  # decays 1/s
    engine.add_order("alice", req(price="90.0"), later)


def test_rate_limit_charges_the_fixed_part_even_when_validation_fails() -> None:
    engine = make_engine()
    with pytest.raises(ExchangeError):
        engine.add_order("alice", req(volume="0.00001"), T0)
    assert engine.rate_count("alice", "XBT/USD", T0) == 1


def test_dead_mans_switch() -> None:
    engine = make_engine()
    engine.add_order("alice", req(price="90.0"), T0)
    engine.add_order("alice", req(price="91.0"), T0)
    armed = engine.cancel_all_orders_after("alice", 60, T0)
    assert armed.trigger_time == T0 + 60 * SECOND
    reset = engine.cancel_all_orders_after("alice", "30", T0 + 50 * SECOND)
    assert reset.trigger_time == T0 + 80 * SECOND
    assert engine.advance(T0 + 79 * SECOND).events == ()
    events = engine.advance(T0 + 90 * SECOND).events
    fired = [e for e in events if isinstance(e, DeadManSwitchFired)]
    assert [(e.account, e.count, e.time) for e in fired] == [("alice", 2, T0 + 80 * SECOND)]
    assert engine.open_orders("alice") == [] and engine.dead_man_switch("alice") is None
    reasons = {e.order.cancel_reason for e in events if isinstance(e, OrderCanceled)}
    assert reasons == {"Dead man's switch"}
    off = engine.cancel_all_orders_after("alice", 0, T0 + 91 * SECOND)
    assert off.trigger_time is None
    for bad in (-1, 86400, "x", True):
        with pytest.raises(InvalidArgumentsError, match="timeout"):
            engine.cancel_all_orders_after("alice", bad, T0 + 91 * SECOND)  # type: ignore[arg-type]


def test_market_states() -> None:
    engine = make_engine()
    txid = engine.add_order("alice", req(price="90.0"), T0).txid or ""
    engine.set_pair_status("XBT/USD", "cancel_only", T0)
    with pytest.raises(MarketStateError) as caught:
        engine.add_order("alice", req(price="90.0"), T0)
    assert caught.value.kraken_error == "EService:Market in cancel_only mode"
    engine.add_order("alice", req(price="90.0", pair="ETH/USD"), T0)  # other pairs trade
    engine.set_pair_status("XBT/USD", "post_only", T0)
    with pytest.raises(MarketStateError, match="post_only"):
        engine.add_order("alice", req(price="90.0"), T0)
    engine.add_order("alice", req(price="90.0", oflags="post"), T0)
    engine.set_pair_status("XBT/USD", "limit_only", T0)
    with pytest.raises(MarketStateError, match="limit_only"):
        engine.add_order("alice", req(ordertype="market"), T0)
    engine.set_pair_status("XBT/USD", "online", T0)
    engine.set_system_status("maintenance", T0)
    for call in (
        lambda: engine.add_order("alice", req(price="90.0"), T0),
        lambda: engine.cancel_order("alice", txid, T0),
        lambda: engine.cancel_all("alice", T0),
        lambda: engine.cancel_all_orders_after("alice", 10, T0),
        lambda: engine.amend_order("alice", T0, txid=txid, volume="2"),
    ):
        with pytest.raises(ServiceUnavailableError) as unavailable:
            call()
        assert unavailable.value.kraken_error == "EService:Unavailable"
    engine.set_system_status("online", T0)
    assert engine.cancel_order("alice", txid, T0).count == 1
    assert engine.pair_status("XBT/USD") == "online"


def test_maintenance_freezes_timers() -> None:
    engine = make_engine()
    txid = engine.add_order("alice", req(expiretm="+10"), T0).txid or ""
    engine.set_system_status("maintenance", T0)
    engine.advance(T0 + 20 * SECOND)
    assert engine.order(txid).status == "open"
    engine.set_system_status("online", T0 + 30 * SECOND)
    assert engine.order(txid).status == "expired"
