"""Private WebSocket v1 feeds and trading requests (ws_private.py), without sockets.

A fake outbox collects the frames; every frame is also run through the client codec
(``decode_server``) so that whatever the sandbox sends is a message the client understands.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from krakenws.protocol import messages as m
from krakenws.protocol.codec import decode_server
from krakenws.sandbox.engine import OrderRequest
from krakenws.sandbox.exchange import Exchange
from krakenws.sandbox.ws_private import PrivateFeeds

SECOND = 1_000_000
T0 = 1_700_000_000 * SECOND
ALL = frozenset({"create_orders", "cancel_orders"})
TYPED: dict[str, type] = {
    "subscriptionStatus": m.SubscriptionStatus,
    "addOrderStatus": m.AddOrderStatus,
    "editOrderStatus": m.EditOrderStatus,
    "amendOrderStatus": m.AmendOrderStatus,
    "cancelOrderStatus": m.CancelOrderStatus,
    "cancelAllStatus": m.CancelAllStatus,
    "cancelAllOrdersAfterStatus": m.CancelAllOrdersAfterStatus,
}


class Clock:
    """µs clock that moves 1 ms per reading."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> int:
        self.t += 1000
        return self.t


class Outbox:
    """Collects frames as sent, and as the client's codec decodes them."""

    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.decoded: list[Any] = []

    def send_json(self, payload: Any) -> None:
        data = msgspec.json.encode(payload)
        decoded = decode_server(data)
        if isinstance(payload, list):
            expected: type = m.OpenOrders if payload[1] == "openOrders" else m.OwnTrades
        else:
            expected = TYPED[payload["event"]]
        assert type(decoded) is expected, (payload, decoded)
        self.frames.append(msgspec.json.decode(data))
        self.decoded.append(decoded)

    def take(self) -> list[Any]:
        frames, self.frames = self.frames, []
        return frames


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def exchange(clock: Clock) -> Any:
    ex = Exchange.open(":memory:", seed=1, clock=clock, tier="starter")
    yield ex
    ex.close(snapshot=False)


@pytest.fixture
def feeds(exchange: Exchange) -> Any:
    f = PrivateFeeds(exchange)
    yield f
    f.close()


def funded(exchange: Exchange, name: str) -> str:
    account = exchange.create_account(name)
    exchange.deposit(account, "ZUSD", Decimal(1_000_000))
    exchange.deposit(account, "XXBT", Decimal(100))
    return account


@pytest.fixture
def alice(exchange: Exchange) -> str:
    return funded(exchange, "alice")


@pytest.fixture
def bob(exchange: Exchange) -> str:
    return funded(exchange, "bob")


def order(**fields: Any) -> OrderRequest:
    """An OrderRequest for XBT/USD (limit, volume 1 unless given)."""
    values: dict[str, Any] = {"pair": "XBT/USD", "ordertype": "limit", "volume": "1", **fields}
    return OrderRequest(**values)


def add(**fields: Any) -> dict[str, Any]:
    request = {
        "event": "addOrder",
        "token": "t",
        "pair": "XBT/USD",
        "type": "buy",
        "ordertype": "limit",
        "volume": "1",
        "price": "25000",
    }
    request.update(fields)
    return {k: v for k, v in request.items() if v is not None}


def entries(frame: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [next(iter(item.items())) for item in frame[0]]


def the_entry(frame: list[Any]) -> tuple[str, dict[str, Any]]:
    (entry,) = entries(frame)
    return entry


def trade(feeds: PrivateFeeds, out: Outbox, account: str, **fields: Any) -> dict[str, Any]:
    """Send a trading request; return its (last) status message."""
    feeds.handle_trading(out, account, add(**fields) if "event" not in fields else fields,
                         permissions=ALL)  # fmt: skip
    return out.frames[-1]  # type: ignore[no-any-return]


# --- openOrders ----------------------------------------------------------------------------------


def test_limit_order_lifecycle(feeds: PrivateFeeds, alice: str) -> None:
    out = Outbox()
    feeds.subscribe_open_orders(out, alice, ratecounter=False, reqid=3)
    ack, snapshot = out.take()
    assert ack == {
        "channelName": "openOrders",
        "event": "subscriptionStatus",
        "reqid": 3,
        "status": "subscribed",
        "subscription": {"name": "openOrders"},
    }
    assert snapshot == [[], "openOrders", {"sequence": 1}]
    assert isinstance(out.decoded[0], m.SubscriptionStatus)
    assert isinstance(out.decoded[1], m.OpenOrders)

    feeds.handle_trading(out, alice, add(reqid=7, userref="42"), permissions=ALL)
    pending, opened, status = out.take()
    assert status["event"] == "addOrderStatus" and status["status"] == "ok"
    assert status["reqid"] == 7
    assert status["descr"] == "buy 1.00000000 XBTUSD @ limit 25000.0"
    txid = status["txid"]
    assert isinstance(txid, str)
    assert isinstance(out.decoded[-1], m.AddOrderStatus)
    key, full = the_entry(pending)
    assert key == txid and pending[1:] == ["openOrders", {"sequence": 2}]
    assert full["status"] == "pending"
    assert full["refid"] is None and full["starttm"] is None and full["expiretm"] is None
    assert full["userref"] == 42
    assert full["descr"] == {
        "pair": "XBT/USD",
        "type": "buy",
        "ordertype": "limit",
        "price": "25000.00000",
        "price2": "0.00000",
        "leverage": None,
        "order": "buy 1.00000000 XBT/USD @ limit 25000.00000",
        "close": None,
    }
    assert full["vol"] == "1.00000000" and full["vol_exec"] == "0.00000000"
    assert full["cost"] == "0.00000" and full["fee"] == "0.00000"
    assert full["avg_price"] == "0.00000" and full["stopprice"] == "0.00000"
    assert full["oflags"] == "fciq" and full["misc"] == "" and full["timeinforce"] == "GTC"
    assert full["opentm"].count(".") == 1 and len(full["opentm"].split(".")[1]) == 6
    assert opened == [[{txid: {"status": "open", "userref": 42}}], "openOrders", {"sequence": 3}]

    feeds.handle_trading(
        out, alice, {"event": "cancelOrder", "token": "t", "txid": [txid], "reqid": 8},
        permissions=ALL,
    )  # fmt: skip
    canceled, status = out.take()
    assert status == {"event": "cancelOrderStatus", "status": "ok", "reqid": 8}
    assert isinstance(out.decoded[-1], m.CancelOrderStatus)
    assert canceled[1:] == ["openOrders", {"sequence": 4}]
    key, end = the_entry(canceled)
    assert key == txid
    assert set(end) == {
        "lastupdated", "status", "vol_exec", "cost", "fee", "avg_price", "userref",
        "cancel_reason",
    }  # fmt: skip
    assert end["status"] == "canceled" and end["cancel_reason"] == "User requested"
    assert isinstance(out.decoded[-2], m.OpenOrders)
    assert out.decoded[-2].sequence == 4


def test_snapshot_lists_open_orders_newest_first(
    feeds: PrivateFeeds, exchange: Exchange, alice: str
) -> None:
    first = exchange.add_order(alice, order(type="buy", price="100"))
    second = exchange.add_order(alice, order(type="sell", price="90000"))
    out = Outbox()
    feeds.subscribe_open_orders(out, alice, ratecounter=False, reqid=None)
    ack, snapshot = out.take()
    assert "reqid" not in ack
    assert [key for key, _ in entries(snapshot)] == [second.txid, first.txid]
    assert all(entry["status"] == "open" for _, entry in entries(snapshot))
    assert snapshot[2] == {"sequence": 1}
    decoded = out.decoded[1]
    assert isinstance(decoded, m.OpenOrders) and len(decoded.orders) == 2


def test_crossing_order_fills_both_sides(
    feeds: PrivateFeeds, exchange: Exchange, alice: str, bob: str
) -> None:
    maker, taker, taker_each = Outbox(), Outbox(), Outbox()
    feeds.subscribe_open_orders(maker, alice, ratecounter=False, reqid=None)
    feeds.subscribe_own_trades(maker, alice, snapshot=True, consolidate_taker=True, reqid=None)
    feeds.subscribe_open_orders(taker, bob, ratecounter=False, reqid=None)
    feeds.subscribe_own_trades(taker, bob, snapshot=True, consolidate_taker=True, reqid=None)
    feeds.subscribe_own_trades(taker_each, bob, snapshot=False, consolidate_taker=False, reqid=1)
    a1 = trade(feeds, maker, alice, type="sell", price="30000", volume="0.5")["txid"]
    a2 = trade(feeds, maker, alice, type="sell", price="30001", volume="0.5")["txid"]
    for out in (maker, taker, taker_each):
        out.take()

    status = trade(feeds, taker, bob, ordertype="market", volume="0.7", price=None, userref="5")
    assert status["status"] == "ok"
    bob_order = status["txid"]
    frames = taker.take()[:-1]
    orders = [f for f in frames if f[1] == "openOrders"]
    own = [f for f in frames if f[1] == "ownTrades"]
    assert [f[2]["sequence"] for f in orders] == [2, 3, 4, 5, 6]
    shapes = [the_entry(f)[1] for f in orders]
    assert shapes[0]["status"] == "pending" and shapes[1] == {"status": "open", "userref": 5}
    assert shapes[2] == {"vol_exec": "0.50000000", "cost": "15000.00000", "fee": "60.00000",
                         "avg_price": "30000.00000", "userref": 5}  # fmt: skip
    assert shapes[3] == {"vol_exec": "0.70000000", "cost": "21000.20000", "fee": "84.00080",
                         "avg_price": "30000.28571", "userref": 5}  # fmt: skip
    assert shapes[4]["status"] == "closed" and shapes[4]["vol_exec"] == "0.70000000"
    assert "cancel_reason" not in shapes[4]
    assert all(the_entry(f)[0] == bob_order for f in orders)

    # consolidated: one entry for the taker's two fills, first fill's id
    (one,) = own
    assert one[2] == {"sequence": 2}
    trade_id, entry = the_entry(one)
    assert entry == {
        "ordertxid": bob_order, "postxid": "TKH2SE-M7IF5-CFI7LT", "pair": "XBT/USD",
        "time": entry["time"], "type": "buy", "ordertype": "market", "price": "30000.28571",
        "cost": "21000.20000", "fee": "84.00080", "vol": "0.70000000", "margin": "0.00000",
        "userref": 5,
    }  # fmt: skip
    each = taker_each.take()
    assert [f[2]["sequence"] for f in each] == [1, 2]
    assert the_entry(each[0])[0] == trade_id
    assert [the_entry(f)[1]["vol"] for f in each] == ["0.50000000", "0.20000000"]
    assert [the_entry(f)[1]["price"] for f in each] == ["30000.00000", "30001.00000"]

    # the maker side: a fill + close for a1, a fill for a2, and two ownTrades entries
    frames = maker.take()
    updates = [the_entry(f) for f in frames if f[1] == "openOrders"]
    assert [(k, e.get("status"), e["vol_exec"]) for k, e in updates] == [
        (a1, None, "0.50000000"),
        (a1, "closed", "0.50000000"),
        (a2, None, "0.20000000"),
    ]
    assert updates[0][1]["fee"] == "37.50000"
    made = [the_entry(f)[1] for f in frames if f[1] == "ownTrades"]
    assert [(t["ordertxid"], t["vol"], t["ordertype"]) for t in made] == [
        (a1, "0.50000000", "limit"),
        (a2, "0.20000000", "limit"),
    ]
    assert [t["type"] for t in made] == ["sell", "sell"]
    for out in (maker, taker, taker_each):
        assert all(not isinstance(d, m.ErrorEvent) for d in out.decoded)
    assert any(isinstance(d, m.OwnTrades) and d.trades for d in taker.decoded)

    # a later subscription's snapshot consolidates the same way (or not)
    late, late_each = Outbox(), Outbox()
    feeds.subscribe_own_trades(late, bob, snapshot=True, consolidate_taker=True, reqid=None)
    feeds.subscribe_own_trades(late_each, bob, snapshot=True, consolidate_taker=False, reqid=None)
    snap = late.take()[1]
    assert snap[2] == {"sequence": 1}
    ((key, entry),) = entries(snap)
    assert key == trade_id and entry["vol"] == "0.70000000" and "userref" not in entry
    assert len(entries(late_each.take()[1])) == 2


def test_own_trades_snapshot_is_last_50_newest_first(clock: Clock) -> None:
    exchange = Exchange.open(":memory:", seed=1, clock=clock, tier="unlimited")
    feeds = PrivateFeeds(exchange)
    try:
        alice, bob = funded(exchange, "alice"), funded(exchange, "bob")
        exchange.add_order(alice, order(type="sell", volume="10", price="30000"))
        for _ in range(55):
            exchange.add_order(bob, order(type="buy", ordertype="market", volume="0.01"))
        every = exchange.engine.trades(alice)
        assert len(every) == 55
        out = Outbox()
        feeds.subscribe_own_trades(out, alice, snapshot=True, consolidate_taker=True, reqid=None)
        snap = out.frames[1]
        keys = [key for key, _ in entries(snap)]
        assert keys == [t.trade_id for t in reversed(every)][:50]
        times = [entry["time"] for _, entry in entries(snap)]
        assert times == sorted(times, reverse=True)
        decoded = out.decoded[1]
        assert isinstance(decoded, m.OwnTrades) and len(decoded.trades) == 50

        quiet = Outbox()
        feeds.subscribe_own_trades(quiet, alice, snapshot=False, consolidate_taker=True, reqid=9)
        assert len(quiet.frames) == 1 and quiet.frames[0]["reqid"] == 9
        exchange.add_order(bob, order(type="buy", ordertype="market", volume="0.01"))
        assert quiet.frames[1][1:] == ["ownTrades", {"sequence": 1}]
        assert out.frames[-1][2] == {"sequence": 2}
    finally:
        feeds.close()
        exchange.close(snapshot=False)


@pytest.mark.parametrize("as_string", [True, False])
def test_ratecounter(exchange: Exchange, alice: str, as_string: bool) -> None:
    feeds = PrivateFeeds(exchange, ratecount_as_string=as_string)
    try:
        out = Outbox()
        feeds.subscribe_open_orders(out, alice, ratecounter=True, reqid=0)
        ack = out.take()[0]
        assert ack["subscription"] == {"name": "openOrders", "maxratecount": 60}
        assert ack["reqid"] == 0
        decoded = out.decoded[0]
        assert isinstance(decoded, m.SubscriptionStatus)
        assert isinstance(decoded.subscription, m.Subscription)
        assert decoded.subscription.maxratecount == 60
        feeds.handle_trading(out, alice, add(), permissions=ALL)
        feeds.handle_trading(out, alice, add(), permissions=ALL)
        counts = [the_entry(f)[1]["ratecount"] for f in out.frames if isinstance(f, list)]
        expected = ["1", "1", "1", "1"] if as_string else [1, 1, 1, 1]
        # +1 per add; the counter decays 1/s and the clock moves only milliseconds: 1.99 -> 1
        assert counts == expected
        for d in out.decoded:
            if isinstance(d, m.OpenOrders) and d.orders:
                assert [info.ratecount for _, info in d.orders] == expected[:1]
    finally:
        feeds.close()


# --- trading ------------------------------------------------------------------------------------


def iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / SECOND, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"volume": None}, "EGeneral:Invalid arguments:volume"),
        ({"pair": None}, "EGeneral:Invalid arguments:pair"),
        ({"type": None}, "EGeneral:Invalid arguments:type"),
        ({"ordertype": ""}, "EGeneral:Invalid arguments:ordertype"),
        ({"volume": 1.5}, "EGeneral:Invalid arguments:volume"),
        ({"price": [1]}, "EGeneral:Invalid arguments:price"),
        ({"type": "hold"}, "EGeneral:Invalid arguments:type"),
        ({"ordertype": "iceberg"}, "EGeneral:Invalid arguments:ordertype"),
        ({"validate": "yes"}, "EGeneral:Invalid arguments:validate"),
        ({"validate": "TRUE"}, "EGeneral:Invalid arguments:validate"),
        ({"margin": 1}, "EGeneral:Invalid arguments:margin"),
        ({"oflags": 3}, "EGeneral:Invalid arguments:oflags"),
        ({"timeinforce": "XYZ"}, "EGeneral:Invalid arguments:timeinforce"),
        ({"userref": "x"}, "EGeneral:Invalid arguments:userref"),
        ({"volume": "0.00000001"}, "EOrder:Order minimum not met"),
        ({"price": "25000.05"}, "EOrder:Tick size check failed"),
        ({"volume": "1000"}, "EOrder:Insufficient funds"),
        ({"pair": "FOO/BAR"}, "EQuery:Unknown asset pair"),
        ({"deadline": "2000-01-01T00:00:00Z"}, "EService:Deadline elapsed"),
        ({"deadline": "tomorrow"}, "EGeneral:Invalid arguments:deadline"),
    ],
)
def test_add_order_errors(
    feeds: PrivateFeeds, alice: str, request_fields: dict[str, Any], message: str
) -> None:
    out = Outbox()
    request = add(**request_fields)
    for key, value in request_fields.items():
        if value is None:
            request.pop(key, None)
        else:
            request[key] = value
    feeds.handle_trading(out, alice, request, permissions=ALL)
    (reply,) = out.frames
    expected = {"errorMessage": message, "event": "addOrderStatus", "status": "error"}
    if "pair" in request:
        expected["pair"] = request["pair"]
    assert reply == expected
    decoded = out.decoded[0]
    assert isinstance(decoded, m.AddOrderStatus) and decoded.is_error


def test_deadline_in_the_future_passes(feeds: PrivateFeeds, clock: Clock, alice: str) -> None:
    out = Outbox()
    reply = trade(feeds, out, alice, deadline=iso(clock.t + 10 * SECOND))
    assert reply["status"] == "ok"


@pytest.mark.parametrize(
    ("event", "status_event"),
    [
        ("addOrder", "addOrderStatus"),
        ("editOrder", "editOrderStatus"),
        ("amendOrder", "amendOrderStatus"),
        ("cancelOrder", "cancelOrderStatus"),
        ("cancelAll", "cancelAllStatus"),
        ("cancelAllOrdersAfter", "cancelAllOrdersAfterStatus"),
    ],
)
def test_permission_denied(feeds: PrivateFeeds, alice: str, event: str, status_event: str) -> None:
    needed = (
        "create_orders" if event in ("addOrder", "editOrder", "amendOrder") else "cancel_orders"
    )
    out = Outbox()
    request: dict[str, Any] = {**add(), "event": event, "reqid": 4}
    feeds.handle_trading(out, alice, request, permissions=ALL - {needed})
    (reply,) = out.frames
    assert reply == {
        "errorMessage": "EGeneral:Permission denied", "event": status_event, "status": "error",
        "reqid": 4, "pair": "XBT/USD",
    }  # fmt: skip
    assert isinstance(out.decoded[0], m._StatusReply)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"event": "editOrder", "pair": "XBT/USD"}, "EGeneral:Invalid arguments:orderid"),
        ({"event": "editOrder", "orderid": "OAAAAA-BBBBB-CCCCCC"},
         "EGeneral:Invalid arguments:pair"),
        ({"event": "editOrder", "orderid": "OAAAAA-BBBBB-CCCCCC", "pair": "XBT/USD"},
         "EOrder:Unknown order"),
        ({"event": "amendOrder"}, "EGeneral:Invalid arguments:txid"),
        ({"event": "amendOrder", "txid": "OAAAAA-BBBBB-CCCCCC", "cl_ord_id": "x"},
         "EGeneral:Invalid arguments:txid"),
        ({"event": "amendOrder", "txid": "OAAAAA-BBBBB-CCCCCC", "volume": "1"},
         "EOrder:Unknown order"),
        ({"event": "amendOrder", "txid": "OAAAAA-BBBBB-CCCCCC", "post_only": "maybe"},
         "EGeneral:Invalid arguments:post_only"),
        ({"event": "cancelOrder"}, "EGeneral:Invalid arguments:txid"),
        ({"event": "cancelOrder", "txid": "OAAAAA-BBBBB-CCCCCC"},
         "EGeneral:Invalid arguments:txid"),
        ({"event": "cancelOrder", "txid": []}, "EGeneral:Invalid arguments:txid"),
        ({"event": "cancelOrder", "cl_ord_id": [None]}, "EGeneral:Invalid arguments:cl_ord_id"),
        ({"event": "cancelOrder", "txid": ["OAAAAA-BBBBB-CCCCCC"]}, "EOrder:Unknown order"),
        ({"event": "cancelOrder", "cl_ord_id": ["nope"]}, "EOrder:Unknown order"),
        ({"event": "cancelAllOrdersAfter"}, "EGeneral:Invalid arguments:timeout"),
        ({"event": "cancelAllOrdersAfter", "timeout": 86400},
         "EGeneral:Invalid arguments:timeout"),
        ({"event": "cancelAllOrdersAfter", "timeout": 1.5},
         "EGeneral:Invalid arguments:timeout"),
    ],
)  # fmt: skip
def test_other_errors(
    feeds: PrivateFeeds, alice: str, fields: dict[str, Any], message: str
) -> None:
    out = Outbox()
    feeds.handle_trading(out, alice, {**fields, "token": "t"}, permissions=ALL)
    (reply,) = out.frames
    assert reply["errorMessage"] == message
    assert reply["event"] == fields["event"] + "Status" and reply["status"] == "error"
    assert "reqid" not in reply
    assert ("pair" in reply) == ("pair" in fields)
    assert out.decoded[0].is_error


def test_reqid_echo_rules(feeds: PrivateFeeds, alice: str) -> None:
    out = Outbox()
    assert "reqid" not in trade(feeds, out, alice)
    assert "reqid" not in trade(feeds, out, alice, volume="x")
    assert trade(feeds, out, alice, reqid=0)["reqid"] == 0
    big = 2**63 + 5
    assert trade(feeds, out, alice, reqid=big)["reqid"] == big
    reply = trade(feeds, out, alice, reqid=None, volume="x")  # None drops the field in add()
    assert "reqid" not in reply
    feeds.handle_trading(out, alice, {**add(volume="x"), "reqid": None}, permissions=ALL)
    assert out.frames[-1]["reqid"] is None
    assert out.decoded[-1].reqid is None


def test_cancel_order_known_and_unknown(feeds: PrivateFeeds, alice: str) -> None:
    out = Outbox()
    first = trade(feeds, out, alice)["txid"]
    out.take()
    feeds.handle_trading(
        out, alice,
        {"event": "cancelOrder", "token": "t", "reqid": 5, "txid": [first, "OAAAAA-BBBBB-CCCCCC"]},
        permissions=ALL,
    )  # fmt: skip
    assert out.frames == [
        {"event": "cancelOrderStatus", "status": "ok", "reqid": 5},
        {"errorMessage": "EOrder:Unknown order", "event": "cancelOrderStatus",
         "status": "error", "reqid": 5},
    ]  # fmt: skip


def test_cancel_by_userref_and_cl_ord_id(feeds: PrivateFeeds, alice: str) -> None:
    out = Outbox()
    feeds.subscribe_open_orders(out, alice, ratecounter=False, reqid=None)
    a = trade(feeds, out, alice, userref="77")["txid"]
    b = trade(feeds, out, alice, userref="77", price="24000")["txid"]
    trade(feeds, out, alice, userref="78")
    placed = trade(feeds, out, alice, cl_ord_id="my-order-1")
    assert placed["cl_ord_id"] == "my-order-1"
    new_frames = [f for f in out.frames if isinstance(f, list)]
    assert the_entry(new_frames[-2])[1]["cl_ord_id"] == "my-order-1"
    assert isinstance(out.decoded[-1], m.AddOrderStatus)
    assert out.decoded[-1].cl_ord_id == "my-order-1"
    out.take()
    feeds.handle_trading(
        out, alice, {"event": "cancelOrder", "token": "t", "txid": ["77"]}, permissions=ALL
    )
    frames = out.take()
    statuses = [f for f in frames if isinstance(f, dict)]
    assert statuses == [{"event": "cancelOrderStatus", "status": "ok"}] * 2
    canceled = {the_entry(f)[0] for f in frames if isinstance(f, list)}
    assert canceled == {a, b}
    feeds.handle_trading(
        out, alice, {"event": "cancelOrder", "token": "t", "cl_ord_id": ["my-order-1"]},
        permissions=ALL,
    )  # fmt: skip
    frames = out.take()
    assert frames[-1] == {"event": "cancelOrderStatus", "status": "ok"}
    assert the_entry(frames[0])[1]["status"] == "canceled"


def test_edit_and_amend(feeds: PrivateFeeds, alice: str) -> None:
    out = Outbox()
    feeds.subscribe_open_orders(out, alice, ratecounter=False, reqid=None)
    original = trade(feeds, out, alice)["txid"]
    out.take()
    reply = trade(feeds, out, alice, event="editOrder", token="t", orderid=original,
                  pair="XBT/USD", price="24000", reqid=11)  # fmt: skip
    assert reply["status"] == "ok" and reply["originaltxid"] == original and reply["reqid"] == 11
    new = reply["txid"]
    assert new != original and isinstance(reply["descr"], str)
    assert isinstance(out.decoded[-1], m.EditOrderStatus)
    frames = [f for f in out.take() if isinstance(f, list)]
    assert [(the_entry(f)[0], the_entry(f)[1]["status"]) for f in frames] == [
        (original, "canceled"), (new, "pending"), (new, "open"),
    ]  # fmt: skip
    assert the_entry(frames[0])[1]["cancel_reason"] == "Order replaced"

    reply = trade(feeds, out, alice, event="amendOrder", token="t", txid=new,
                  limit_price="23000")  # fmt: skip
    assert reply["status"] == "ok" and reply["txid"] == new and reply["amend_id"].startswith("T")
    assert isinstance(out.decoded[-1], m.AmendOrderStatus)
    (amended,) = [f for f in out.take() if isinstance(f, list)]
    key, entry = the_entry(amended)
    assert key == new and entry["amended"] is True
    assert entry["descr"]["price"] == "23000.00000"

    trade(feeds, out, alice, cl_ord_id="abc")
    out.take()
    reply = trade(feeds, out, alice, event="amendOrder", token="t", cl_ord_id="abc", volume="2")
    assert reply["cl_ord_id"] == "abc" and "txid" not in reply


def test_validate_places_nothing(feeds: PrivateFeeds, alice: str) -> None:
    out = Outbox()
    feeds.subscribe_open_orders(out, alice, ratecounter=False, reqid=None)
    out.take()
    for flag in (True, "true", "True"):
        reply = trade(feeds, out, alice, validate=flag)
        assert reply["status"] == "ok" and "txid" not in reply
    assert all(isinstance(f, dict) for f in out.frames)
    reply = trade(feeds, out, alice, validate="False")
    assert "txid" in reply


def test_cancel_all_and_dead_man_switch(feeds: PrivateFeeds, alice: str, clock: Clock) -> None:
    out = Outbox()
    trade(feeds, out, alice)
    trade(feeds, out, alice)
    reply = trade(feeds, out, alice, event="cancelAll", token="t", reqid=6)
    assert reply == {"count": 2, "event": "cancelAllStatus", "status": "ok", "reqid": 6}
    assert isinstance(out.decoded[-1], m.CancelAllStatus) and out.decoded[-1].count == 2
    reply = trade(feeds, out, alice, event="cancelAllOrdersAfter", token="t", timeout=60)
    now = clock.t
    assert now % SECOND  # a fraction of a second: both times round it up (spec 6.6)
    assert reply["currentTime"] == datetime.fromtimestamp(-(-now // SECOND), UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    current, trigger = (
        datetime.fromisoformat(reply[name].replace("Z", "+00:00"))
        for name in ("currentTime", "triggerTime")
    )
    assert trigger.timestamp() == -(-(now + 60 * SECOND) // SECOND)
    assert (trigger - current).total_seconds() == 60
    decoded = out.decoded[-1]
    assert isinstance(decoded, m.CancelAllOrdersAfterStatus)
    reply = trade(feeds, out, alice, event="cancelAllOrdersAfter", token="t", timeout="0")
    assert reply["triggerTime"] == "0"


# --- subscription bookkeeping -------------------------------------------------------------------


def test_sequences_unsubscribe_and_drop(feeds: PrivateFeeds, alice: str, bob: str) -> None:
    one, two, other = Outbox(), Outbox(), Outbox()
    feeds.subscribe_open_orders(one, alice, ratecounter=False, reqid=None)
    trade(feeds, one, alice)
    feeds.subscribe_open_orders(two, alice, ratecounter=False, reqid=None)
    feeds.subscribe_open_orders(other, bob, ratecounter=False, reqid=None)
    two.take()
    other.take()
    trade(feeds, one, alice)
    assert [f[2]["sequence"] for f in one.frames if isinstance(f, list)] == [1, 2, 3, 4, 5]
    assert [f[2]["sequence"] for f in two.frames] == [2, 3]
    assert other.frames == []  # another account's events never reach it

    feeds.subscribe_open_orders(two, alice, ratecounter=False, reqid=2)
    assert two.frames[-1] == {
        "errorMessage": "Already subscribed", "event": "subscriptionStatus", "reqid": 2,
        "status": "error", "subscription": {"name": "openOrders"},
    }  # fmt: skip
    assert feeds.is_subscribed(two, "openOrders")
    assert feeds.unsubscribe(two, "openOrders", 12)
    assert two.frames[-1] == {
        "channelName": "openOrders", "event": "subscriptionStatus", "reqid": 12,
        "status": "unsubscribed", "subscription": {"name": "openOrders"},
    }  # fmt: skip
    assert isinstance(two.decoded[-1], m.SubscriptionStatus)
    assert not feeds.unsubscribe(two, "openOrders", None)
    assert not feeds.unsubscribe(two, "ownTrades", None)
    feeds.drop(one)
    before = (len(one.frames), len(two.frames))
    trade(feeds, Outbox(), alice)
    assert (len(one.frames), len(two.frames)) == before
    feeds.subscribe_open_orders(one, alice, ratecounter=False, reqid=None)
    assert one.frames[-1][2] == {"sequence": 1}


def test_failing_outbox_is_dropped(feeds: PrivateFeeds, alice: str) -> None:
    class Broken(Outbox):
        fail = False

        def send_json(self, payload: Any) -> None:
            if self.fail:
                raise ConnectionResetError
            super().send_json(payload)

    broken, fine = Broken(), Outbox()
    feeds.subscribe_open_orders(broken, alice, ratecounter=False, reqid=None)
    feeds.subscribe_open_orders(fine, alice, ratecounter=False, reqid=None)
    broken.fail = True
    trade(feeds, Outbox(), alice)
    assert not feeds.is_subscribed(broken, "openOrders")
    assert [f[2]["sequence"] for f in fine.frames if isinstance(f, list)] == [1, 2, 3]
