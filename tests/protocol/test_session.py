"""Session state: reqid correlation, subscription registry, sequence gaps, heartbeat deadlines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET

from krakenws.errors import ProtocolError, UsageError
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import (
    AddOrder,
    AddOrderStatus,
    CancelOrder,
    CancelOrderStatus,
    ErrorEvent,
    Ping,
    Pong,
    Subscribe,
    Subscription,
    SubscriptionStatus,
    Unsubscribe,
)
from krakenws.protocol.session import (
    MAX_REQID,
    HeartbeatMonitor,
    RequestTracker,
    SequenceResult,
    SequenceTracker,
    SubscriptionKey,
    SubscriptionRegistry,
    SubscriptionState,
    channel_name_of,
)


def _ack(
    pair: str | None, name: str, reqid: int | None = None, **extra: object
) -> SubscriptionStatus:
    fields: dict[str, object] = {"status": "subscribed", "channel_name": name}
    if pair is not None:
        fields["pair"] = pair
    if reqid is not None:
        fields["reqid"] = reqid
    fields.update(extra)
    return SubscriptionStatus(**fields)  # type: ignore[arg-type]


# --- requests ----------------------------------------------------------------------------------


def test_reqids_are_allocated_and_replies_matched_by_reqid_not_order() -> None:
    tracker = RequestTracker()
    first = tracker.register(Ping())
    second = tracker.register(
        AddOrder(token="t", ordertype="limit", type="buy", pair="XBT/USD", volume="1", price="1")
    )
    assert (first.reqid, second.reqid) == (1, 2)
    # The answer to the second request arrives first.
    done = tracker.resolve(AddOrderStatus(reqid=2, status="ok", txid="OABC"))
    assert done is not None and done.complete and done.request is second
    assert 1 in tracker and 2 not in tracker
    done = tracker.resolve(Pong(reqid=1))
    assert done is not None and done.request is first
    assert len(tracker) == 0


def test_unsolicited_and_unknown_replies_are_not_matched() -> None:
    tracker = RequestTracker()
    tracker.register(Ping())
    assert tracker.resolve(Pong()) is None  # no reqid
    assert tracker.resolve(Pong(reqid=99)) is None
    assert tracker.resolve(Pong(reqid="1")) is None  # echoed as a string: not ours
    assert tracker.resolve(Pong(reqid=None)) is None
    assert 1 in tracker


def test_reply_of_the_wrong_kind_is_a_protocol_error() -> None:
    tracker = RequestTracker()
    tracker.register(Ping())
    with pytest.raises(ProtocolError, match="does not answer Ping"):
        tracker.resolve(AddOrderStatus(reqid=1, status="ok"))


def test_error_event_completes_any_request() -> None:
    tracker = RequestTracker()
    tracker.register(
        Subscribe(pair=["XBT/USD", "ETH/USD"], subscription=Subscription(name="ticker"))
    )
    done = tracker.resolve(ErrorEvent(reqid=1, error_message="Malformed request"))
    assert done is not None and done.errors == ["Malformed request"]
    assert 1 not in tracker


def test_subscribe_completes_after_one_ack_per_pair() -> None:
    tracker = RequestTracker()
    tracker.register(
        Subscribe(pair=["XBT/USD", "ETH/USD", "XDG/XBT"], subscription=Subscription(name="ticker"))
    )
    for count, pair in enumerate(["ETH/USD", "XDG/XBT"], start=1):
        done = tracker.resolve(_ack(pair, "ticker", reqid=1))
        assert done is not None and not done.complete and len(done.replies) == count
    done = tracker.resolve(_ack("XBT/USD", "ticker", reqid=1))
    assert done is not None and done.complete
    assert 1 not in tracker


def test_cancel_order_expects_one_status_per_txid_but_userrefs_are_open_ended() -> None:
    tracker = RequestTracker()
    by_txid = tracker.register(
        CancelOrder(token="t", txid=["OAAAAA-AAAAA-AAAAAA", "OBBBBB-BBBBB-BBBBBB"])
    )
    by_userref = tracker.register(CancelOrder(token="t", txid=["8874657"]))
    ok = CancelOrderStatus(reqid=by_txid.reqid, status="ok")
    bad = CancelOrderStatus(
        reqid=by_txid.reqid, status="error", error_message="EOrder:Unknown order"
    )
    assert not tracker.resolve(ok).complete  # type: ignore[union-attr]
    done = tracker.resolve(bad)
    assert done is not None and done.complete and done.errors == ["EOrder:Unknown order"]
    for _ in range(3):
        pending = tracker.resolve(CancelOrderStatus(reqid=by_userref.reqid, status="ok"))
        assert pending is not None and not pending.complete
    finished = tracker.finish(by_userref.reqid)  # type: ignore[arg-type]
    assert finished is not None and len(finished.replies) == 3


def test_explicit_reqid_is_kept_and_collisions_refused() -> None:
    tracker = RequestTracker()
    assert tracker.register(Ping(reqid=42)).reqid == 42
    with pytest.raises(UsageError):
        tracker.register(Ping(reqid=42))
    with pytest.raises(UsageError):
        RequestTracker(first_reqid=0)


def test_reqid_wraps_below_two_to_the_64() -> None:
    tracker = RequestTracker(first_reqid=MAX_REQID)
    assert tracker.register(Ping()).reqid == MAX_REQID
    assert tracker.register(Ping()).reqid == 1


def test_fail_all_returns_everything_pending() -> None:
    tracker = RequestTracker()
    tracker.register(Ping())
    tracker.register(Ping())
    assert [p.reqid for p in tracker.fail_all()] == [1, 2]
    assert len(tracker) == 0


# --- subscriptions -----------------------------------------------------------------------------


def test_channel_names() -> None:
    assert channel_name_of(Subscription(name="book")) == "book-10"
    assert channel_name_of(Subscription(name="book", depth=1000)) == "book-1000"
    assert channel_name_of(Subscription(name="ohlc")) == "ohlc-1"
    assert channel_name_of(Subscription(name="ohlc", interval=60)) == "ohlc-60"
    assert channel_name_of(Subscription(name="openOrders")) == "openOrders"


def test_registry_lifecycle_and_resubscribe_after_reconnect() -> None:
    registry = SubscriptionRegistry()
    book = Subscribe(pair=["XBT/USD", "ETH/USD"], subscription=Subscription(name="book", depth=25))
    ohlc = Subscribe(pair=["XBT/USD"], subscription=Subscription(name="ohlc", interval=5))
    orders = Subscribe(subscription=Subscription(name="openOrders", token="old", ratecounter=True))
    for request in (book, ohlc, orders):
        registry.want(request)
    assert len(registry) == 4
    key = SubscriptionKey("book-25", "XBT/USD")
    assert registry.state(key) is SubscriptionState.PENDING
    registry.on_status(_ack("XBT/USD", "book-25", channel_id=336))
    registry.on_status(_ack("ETH/USD", "book-25", channel_id=337))
    registry.on_status(
        _ack(None, "openOrders", subscription=Subscription(name="openOrders", maxratecount=125))
    )
    assert registry.state(key) is SubscriptionState.ACTIVE
    assert registry.key_for_channel_id(336) == key
    # The ohlc subscription is refused.
    registry.on_status(
        SubscriptionStatus(
            status="error",
            pair="XBT/USD",
            error_message="Subscription ohlc interval not supported",
            subscription=Subscription(name="ohlc", interval=5),
        )
    )
    ohlc_key = SubscriptionKey("ohlc-5", "XBT/USD")
    assert registry.state(ohlc_key) is SubscriptionState.FAILED
    assert registry.error(ohlc_key) == "Subscription ohlc interval not supported"

    registry.reset()
    assert registry.key_for_channel_id(336) is None
    requests = registry.resubscribe_requests(token="fresh")
    assert [r.pair for r in requests] == [["XBT/USD", "ETH/USD"], UNSET]
    assert requests[0].subscription == Subscription(name="book", depth=25)
    assert requests[1].subscription == Subscription(
        name="openOrders", ratecounter=True, token="fresh"
    )
    # Without a token the private subscription waits.
    assert len(registry.resubscribe_requests()) == 1


def test_resubscribe_batches_pairs() -> None:
    registry = SubscriptionRegistry()
    pairs = [f"P{i}/USD" for i in range(7)]
    registry.want(Subscribe(pair=pairs, subscription=Subscription(name="trade")))
    requests = registry.resubscribe_requests(max_pairs=3)
    assert [len(r.pair) for r in requests] == [3, 3, 1]  # type: ignore[arg-type]


def test_unsubscribe_forgets_and_unsolicited_unsubscribe_is_applied() -> None:
    registry = SubscriptionRegistry()
    registry.want(Subscribe(pair=["XBT/USD", "ETH/USD"], subscription=Subscription(name="spread")))
    registry.on_status(_ack("XBT/USD", "spread", channel_id=7))
    registry.unwant(Unsubscribe(pair=["XBT/USD"], subscription=Subscription(name="spread")))
    assert SubscriptionKey("spread", "XBT/USD") not in registry
    assert registry.key_for_channel_id(7) is None
    # The exchange drops the other one by itself.
    registry.on_status(
        SubscriptionStatus(status="unsubscribed", channel_name="spread", pair="ETH/USD")
    )
    assert len(registry) == 0


def test_already_subscribed_counts_as_active() -> None:
    registry = SubscriptionRegistry()
    registry.want(Subscribe(pair=["XBT/USD"], subscription=Subscription(name="ticker")))
    registry.on_status(
        SubscriptionStatus(
            status="error",
            pair="XBT/USD",
            error_message="Already subscribed",
            subscription=Subscription(name="ticker"),
        )
    )
    assert registry.state(SubscriptionKey("ticker", "XBT/USD")) is SubscriptionState.ACTIVE


def test_registry_follows_real_acks() -> None:
    registry = SubscriptionRegistry()
    pairs = ["WAVES/EUR", "XMR/USD"]
    registry.want(Subscribe(pair=pairs, subscription=Subscription(name="book", depth=1000)))
    for text in (
        '{"channelID":1664,"channelName":"book-1000","event":"subscriptionStatus","pair":"WAVES/EUR",'
        '"status":"subscribed","subscription":{"depth":1000,"name":"book"}}',
        '{"channelID":992,"channelName":"book-1000","event":"subscriptionStatus","pair":"XMR/USD",'
        '"status":"subscribed","subscription":{"depth":1000,"name":"book"}}',
    ):
        status = decode_server(text)
        assert isinstance(status, SubscriptionStatus)
        registry.on_status(status)
    assert registry.key_for_channel_id(992) == SubscriptionKey("book-1000", "XMR/USD")
    assert all(registry.state(k) is SubscriptionState.ACTIVE for k in registry)


# --- sequences ---------------------------------------------------------------------------------


def test_sequences_per_channel() -> None:
    tracker = SequenceTracker()
    assert tracker.check("openOrders", 1) is SequenceResult.SNAPSHOT
    assert tracker.check("ownTrades", 1) is SequenceResult.SNAPSHOT
    assert tracker.check("openOrders", 2) is SequenceResult.IN_ORDER
    assert tracker.check("ownTrades", 2) is SequenceResult.IN_ORDER
    assert tracker.check("openOrders", 2) is SequenceResult.STALE
    assert tracker.check("openOrders", 5) is SequenceResult.GAP
    assert tracker.last_gap == ("openOrders", 3, 5)
    assert tracker.expected("openOrders") == 6
    assert tracker.check("openOrders", 1) is SequenceResult.SNAPSHOT  # healed by resubscribing
    assert tracker.gaps == 1


def test_first_frame_without_snapshot_is_a_gap() -> None:
    tracker = SequenceTracker()
    assert tracker.check("ownTrades", 3) is SequenceResult.GAP
    assert tracker.last_gap == ("ownTrades", 1, 3)


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=60))
def test_gap_detection_matches_a_simple_model(sequences: list[int]) -> None:
    tracker = SequenceTracker()
    last: int | None = None
    for number in sequences:
        result = tracker.check("openOrders", number)
        if number == 1:
            expected = SequenceResult.SNAPSHOT
        elif last is None or number > last + 1:
            expected = SequenceResult.GAP
        elif number <= last:
            expected = SequenceResult.STALE
        else:
            expected = SequenceResult.IN_ORDER
        assert result is expected
        if expected is not SequenceResult.STALE:
            last = number


# --- heartbeat ---------------------------------------------------------------------------------


def test_heartbeat_deadline_moves_with_traffic() -> None:
    monitor = HeartbeatMonitor(timeout=3.0, ping_interval=1.0, now=0.0)
    assert monitor.deadline == 3.0
    assert not monitor.ping_due(0.5)
    assert monitor.ping_due(1.0)
    monitor.ping_sent(1.0)
    assert not monitor.ping_due(1.5)  # one ping outstanding
    assert monitor.ping_due(2.0)  # ... but repeat after another interval
    assert monitor.next_wakeup(1.5) == 2.0
    assert not monitor.expired(3.0)
    assert monitor.expired(3.01)
    monitor.received(3.01)
    assert monitor.deadline == pytest.approx(6.01)
    assert not monitor.expired(5.0)


def test_heartbeat_refuses_nonsense() -> None:
    with pytest.raises(UsageError):
        HeartbeatMonitor(timeout=0, now=0.0)
