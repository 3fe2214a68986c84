"""The pure order view (krakenws.orders): folding openOrders/ownTrades frames into states,
fills counted once, orders that vanished from a snapshot, and the snapshots it rebuilds for a
reader joining a running feed."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET

from krakenws.orders import SNAPSHOT_TRADES, OrderTracker
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import OpenOrders, OrderInfo, OwnTrades

FULL: dict[str, Any] = {
    "refid": None,
    "userref": 7,
    "status": "pending",
    "opentm": "1700000000.000100",
    "starttm": None,
    "expiretm": None,
    "descr": {
        "pair": "XBT/USD",
        "type": "buy",
        "ordertype": "limit",
        "price": "30000.0",
        "price2": "0.0",
        "leverage": None,
        "order": "buy 0.50000000 XBT/USD @ limit 30000.0",
        "close": None,
    },
    "vol": "0.50000000",
    "vol_exec": "0.00000000",
    "cost": "0.00000",
    "fee": "0.00000",
    "avg_price": "0.00000",
    "stopprice": "0.00000",
    "limitprice": "0.00000",
    "misc": "",
    "oflags": "fciq",
    "timeinforce": "GTC",
}


def wire(channel: str, sequence: int, entries: tuple[tuple[str, dict[str, Any]], ...]) -> Any:
    """A private frame decoded from its JSON text (``entries``: (id, object) pairs)."""
    return decode_server(
        json.dumps([[{key: entry} for key, entry in entries], channel, {"sequence": sequence}])
    )


def orders_frame(sequence: int, *entries: tuple[str, dict[str, Any]]) -> OpenOrders:
    frame = wire("openOrders", sequence, entries)
    assert isinstance(frame, OpenOrders)
    return frame


def trade(n: int, order: str = "OA", **extra: Any) -> tuple[str, dict[str, Any]]:
    return f"T{n:05d}", {
        "ordertxid": order,
        "postxid": "TKH2SE-M7IF5-CFI7LT",
        "pair": "XBT/USD",
        "time": f"1700000{n:03d}.000000",
        "type": "buy",
        "ordertype": "limit",
        "price": "30000.0",
        "cost": "3000.00000",
        "fee": "7.80000",
        "vol": "0.10000000",
        "margin": "0.00000",
        **extra,
    }


def trades_frame(sequence: int, *entries: tuple[str, dict[str, Any]]) -> OwnTrades:
    frame = wire("ownTrades", sequence, entries)
    assert isinstance(frame, OwnTrades)
    return frame


def test_updates_fold_into_one_exact_state_and_fills_count_once() -> None:
    tracker = OrderTracker()
    tracker.apply_open_orders(orders_frame(1, ("OA", FULL)))
    tracker.apply_open_orders(orders_frame(2, ("OA", {"status": "open", "userref": 7})))
    fill = {"vol_exec": "0.10000000", "cost": "3000.00000", "fee": "7.80000"}
    tracker.apply_open_orders(orders_frame(3, ("OA", {**fill, "avg_price": "30000.0"})))
    fresh = tracker.apply_own_trades(trades_frame(1, trade(1, userref=7)))
    again = tracker.apply_own_trades(trades_frame(2, trade(1, userref=7)))  # a repeated snapshot
    state = tracker["OA"]
    assert (state.status, state.side, state.pair, state.userref) == ("open", "buy", "XBT/USD", 7)
    assert state.volume == Decimal("0.5") and state.vol_exec == Decimal("0.1")
    assert state.remaining == Decimal("0.4") and not state.is_done and not state.is_filled
    assert [f.trade_id for f in state.fills] == ["T00001"] and again == [] and len(fresh) == 1
    assert state.filled_volume == Decimal("0.1")
    assert list(tracker.open_orders) == ["OA"]


def test_a_snapshot_reports_orders_that_ended_unseen_and_settle_records_them() -> None:
    tracker = OrderTracker()
    tracker.apply_open_orders(orders_frame(1, ("OA", FULL), ("OB", FULL)))
    result = tracker.apply_open_orders(orders_frame(1, ("OB", {**FULL, "status": "open"})))
    assert result.vanished == ["OA"] and result.changed == ["OB"]
    state = tracker.settle(
        "OA", "closed", vol_exec="0.5", cost="15000", fee="39", avg_price="30000"
    )
    assert state.is_done and state.is_filled and state.cost == Decimal("15000")
    assert [txid for txid, _ in tracker.open_orders_snapshot(1).orders] == ["OB"]


def test_the_rebuilt_open_orders_snapshot_is_each_entry_with_its_updates_merged() -> None:
    tracker = OrderTracker()
    newer = {**FULL, "opentm": "1700000005.000000", "userref": 8}
    tracker.apply_open_orders(orders_frame(1, ("OA", FULL)))
    tracker.apply_open_orders(orders_frame(2, ("OB", newer)))
    tracker.apply_open_orders(orders_frame(3, ("OA", {"status": "open", "userref": 7})))
    amended = {"vol": "0.40000000", "descr": {"order": "buy 0.40000000 XBT/USD @ limit 30000.0"}}
    tracker.apply_open_orders(orders_frame(4, ("OA", amended)))
    snapshot = tracker.open_orders_snapshot(4)
    assert snapshot.sequence == 4
    assert [txid for txid, _ in snapshot.orders] == ["OB", "OA"]  # newest first
    merged = dict(snapshot.orders)["OA"]
    assert merged.status == "open" and merged.vol == "0.40000000" and merged.userref == 7
    assert merged.descr is not UNSET
    assert merged.descr.order == "buy 0.40000000 XBT/USD @ limit 30000.0"
    assert merged.descr.price == "30000.0" and merged.oflags == "fciq"  # kept from the entry
    # What a fresh snapshot would say: the encoded entry is the full one with the changes.
    expected = {**FULL, "status": "open", "vol": "0.40000000"}
    expected["descr"] = {**FULL["descr"], "order": "buy 0.40000000 XBT/USD @ limit 30000.0"}
    assert msgspec.to_builtins(merged) == expected
    # Ended orders leave it; a fresh snapshot replaces it entirely.
    tracker.apply_open_orders(orders_frame(5, ("OA", {"status": "canceled"})))
    assert [txid for txid, _ in tracker.open_orders_snapshot(5).orders] == ["OB"]
    tracker.apply_open_orders(orders_frame(1, ("OC", FULL)))
    assert [txid for txid, _ in tracker.open_orders_snapshot(1).orders] == ["OC"]


def test_the_rebuilt_own_trades_snapshot_is_the_latest_fifty_newest_first() -> None:
    tracker = OrderTracker()
    for n in range(1, 61):
        tracker.apply_own_trades(trades_frame(n, trade(n, userref=7, cl_ord_id="mine")))
    snapshot = tracker.own_trades_snapshot(60)
    ids = [trade_id for trade_id, _ in snapshot.trades]
    assert len(ids) == SNAPSHOT_TRADES == 50
    assert ids == [f"T{n:05d}" for n in range(60, 10, -1)]
    # shaped as Kraken's snapshots: userref and cl_ord_id are update-only fields
    assert all(t.userref is UNSET and t.cl_ord_id is UNSET for _, t in snapshot.trades)
    assert snapshot.sequence == 60


def test_odd_times_sort_as_the_oldest_instead_of_failing() -> None:
    # Decoding refuses such times; a frame built by hand may still carry them.
    tracker = OrderTracker()
    for sequence, (txid, opentm) in enumerate([("OA", "NaN"), ("OB", "soon"), ("OC", "5.0")], 1):
        info = OrderInfo(status="open", opentm=opentm)
        tracker.apply_open_orders(OpenOrders(orders=[(txid, info)], sequence=sequence))
    assert [t for t, _ in tracker.open_orders_snapshot(3).orders] == ["OC", "OB", "OA"]


def test_updates_with_only_some_fields_keep_what_earlier_frames_said() -> None:
    """Spec 5.3: every field of an update is optional (userref included): older servers sent a
    bare ``{"status": "open"}``, fills without userref and the docs a bare closing status."""
    tracker = OrderTracker()
    tracker.apply_open_orders(orders_frame(1, ("OA", FULL)))
    tracker.apply_open_orders(orders_frame(2, ("OA", {"status": "open"})))
    fill = {"vol_exec": "0.50000000", "cost": "15000.00000", "fee": "39.00000"}
    tracker.apply_open_orders(orders_frame(3, ("OA", {**fill, "avg_price": "30000.00000"})))
    state = tracker["OA"]
    assert (state.status, state.userref, state.price) == ("open", 7, Decimal("30000.0"))
    assert state.vol_exec == Decimal("0.5") and state.cost == Decimal("15000")
    result = tracker.apply_open_orders(orders_frame(4, ("OA", {"status": "closed"})))
    state = tracker["OA"]
    assert result.changed == ["OA"] and state.is_done and state.is_filled
    assert (state.userref, state.fee, state.volume) == (7, Decimal("39"), Decimal("0.5"))
    assert list(tracker.open_orders) == []


def test_relative_prices_and_fractional_ratecounts_never_cut_a_frame_short() -> None:
    """A trailing stop's descr.price is relative (``+50.0000%``) and a ratecount decays by
    fractions (``"12.34"``): neither may stop the rest of the frame from being applied."""
    trailing = {
        **FULL,
        "descr": {**FULL["descr"], "ordertype": "trailing-stop", "price": "+50.0000%"},
    }
    tracker = OrderTracker()
    tracker.apply_open_orders(orders_frame(1, ("OA", FULL), ("OB", FULL)))
    result = tracker.apply_open_orders(
        orders_frame(
            2,
            ("OT", trailing),
            ("OA", {"status": "open", "ratecount": "12.34"}),
            ("OB", {"status": "closed", "vol_exec": "0.50000000", "cost": "15000.00000"}),
        )
    )
    assert result.changed == ["OT", "OA", "OB"]
    assert tracker["OT"].price is None and tracker["OT"].ordertype == "trailing-stop"
    assert tracker["OA"].ratecount == Decimal("12.34") and tracker["OA"].status == "open"
    assert tracker["OB"].is_done and tracker["OB"].vol_exec == Decimal("0.5")
    assert sorted(tracker.open_orders) == ["OA", "OT"]
