"""Client-side session state of a v1 connection, free of I/O and clocks.

This module owns four pieces a client keeps per connection (h11 style: plain objects fed events,
answering with decisions; the caller moves bytes and reads clocks):

* :class:`RequestTracker` gives every request a ``reqid`` and matches replies to requests by
  that ``reqid`` alone, never by arrival order. A subscribe for N pairs is complete after N
  acks; a cancelOrder for N order ids after N statuses (userrefs make the count open-ended).
* :class:`SubscriptionRegistry` remembers what the user asked for and what the server
  confirmed, so that after a reconnect :meth:`~SubscriptionRegistry.resubscribe_requests`
  rebuilds the same subscriptions (with a fresh token for private channels).
* :class:`SequenceTracker` checks the ``sequence`` of openOrders/ownTrades frames and reports
  gaps (lost messages: resubscribe for a fresh snapshot).
* :class:`HeartbeatMonitor` says when a ping is due and when a silent connection is dead; every
  method takes ``now`` (seconds, any monotonic origin) from the caller.

It imports only the standard library, msgspec and the protocol messages.

>>> tracker = RequestTracker()
>>> request = tracker.register(Ping())
>>> request.reqid
1
>>> done = tracker.resolve(Pong(reqid=1))
>>> done.complete, done.request is request
(True, True)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, TypeAlias

import msgspec
from msgspec import UNSET

from krakenws.errors import ProtocolError, UsageError
from krakenws.protocol.messages import (
    AddOrder,
    AddOrderStatus,
    AmendOrder,
    AmendOrderStatus,
    CancelAll,
    CancelAllOrdersAfter,
    CancelAllOrdersAfterStatus,
    CancelAllStatus,
    CancelOrder,
    CancelOrderStatus,
    ClientMessage,
    EditOrder,
    EditOrderStatus,
    ErrorEvent,
    Ping,
    PingStatus,
    Pong,
    Subscribe,
    Subscription,
    SubscriptionStatus,
    Unsubscribe,
)

__all__ = [
    "MAX_REQID",
    "PRIVATE_CHANNELS",
    "PUBLIC_CHANNELS",
    "HeartbeatMonitor",
    "Pending",
    "Reply",
    "RequestTracker",
    "SequenceResult",
    "SequenceTracker",
    "SubscriptionKey",
    "SubscriptionRegistry",
    "SubscriptionState",
    "channel_name_of",
]

MAX_REQID: Final = 2**64 - 1
PUBLIC_CHANNELS: Final = frozenset({"ticker", "ohlc", "trade", "spread", "book"})
PRIVATE_CHANNELS: Final = frozenset({"openOrders", "ownTrades"})

Reply: TypeAlias = (
    Pong
    | PingStatus
    | SubscriptionStatus
    | AddOrderStatus
    | EditOrderStatus
    | AmendOrderStatus
    | CancelOrderStatus
    | CancelAllStatus
    | CancelAllOrdersAfterStatus
    | ErrorEvent
)
"""Every server message that answers a request."""

# Which reply events answer which request: a reply of another kind with a matching reqid is a
# protocol violation, not an answer.
_REPLIES: Final[dict[type[ClientMessage], tuple[type[Reply], ...]]] = {
    Ping: (Pong, PingStatus),
    Subscribe: (SubscriptionStatus,),
    Unsubscribe: (SubscriptionStatus,),
    AddOrder: (AddOrderStatus,),
    EditOrder: (EditOrderStatus,),
    AmendOrder: (AmendOrderStatus,),
    CancelOrder: (CancelOrderStatus,),
    CancelAll: (CancelAllStatus,),
    CancelAllOrdersAfter: (CancelAllOrdersAfterStatus,),
}


def channel_name_of(subscription: Subscription) -> str:
    """The ``channelName`` Kraken uses for a subscription: ``book-10``, ``ohlc-5``, ``trade``..."""
    if subscription.name == "book":
        return f"book-{10 if subscription.depth is UNSET else subscription.depth}"
    if subscription.name == "ohlc":
        return f"ohlc-{1 if subscription.interval is UNSET else subscription.interval}"
    return subscription.name


# --- requests and replies ----------------------------------------------------------------------


@dataclass
class Pending:
    """A request waiting for its replies.

    ``expected`` is how many replies complete it (None: open-ended, e.g. a cancelOrder by
    userref, whose status count is the number of orders that carried the userref).
    """

    request: ClientMessage
    reqid: int
    expected: int | None
    replies: list[Reply] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every expected reply has arrived."""
        return self.expected is not None and len(self.replies) >= self.expected

    @property
    def errors(self) -> list[str]:
        """The ``errorMessage`` of every error reply so far."""
        out: list[str] = []
        for reply in self.replies:
            message = getattr(reply, "error_message", UNSET)
            if isinstance(message, str):
                out.append(message)
        return out


def _expected_replies(request: ClientMessage) -> int | None:
    if isinstance(request, Subscribe | Unsubscribe):
        if request.subscription is not UNSET and request.subscription.name in PRIVATE_CHANNELS:
            return 1
        return len(request.pair) if request.pair is not UNSET and request.pair else 1
    if isinstance(request, CancelOrder):
        ids = [*(request.txid or ()), *(request.cl_ord_id or ())]
        # A userref (all digits) cancels every order carrying it: the count is unknowable.
        if not ids or any(item.isdigit() for item in (request.txid or ())):
            return None
        return len(ids)
    return 1


class RequestTracker:
    """Allocates ``reqid`` values and correlates replies with the requests that caused them.

    Replies are matched by ``reqid`` only. A reply without a ``reqid`` we are waiting for is
    *unsolicited* (e.g. an exchange-initiated unsubscribe): :meth:`resolve` returns None for it.
    """

    def __init__(self, first_reqid: int = 1) -> None:
        if not 1 <= first_reqid <= MAX_REQID:
            raise UsageError("reqid must be a positive integer below 2**64")
        self._counter = itertools.count(first_reqid)
        self._pending: dict[int, Pending] = {}

    def next_reqid(self) -> int:
        """A fresh reqid, never one still pending (wraps below 2**64)."""
        while True:
            reqid = next(self._counter)
            if reqid > MAX_REQID:
                self._counter = itertools.count(1)
                continue
            if reqid not in self._pending:
                return reqid

    def register(self, request: ClientMessage) -> ClientMessage:
        """Record a request about to be sent; returns it with a ``reqid`` set.

        A request that already carries a ``reqid`` keeps it (it must not collide with one
        still pending).
        """
        if request.reqid is UNSET:
            request = msgspec.structs.replace(request, reqid=self.next_reqid())
        reqid = request.reqid
        assert isinstance(reqid, int)
        if reqid in self._pending:
            raise UsageError(f"reqid {reqid} is already waiting for a reply")
        self._pending[reqid] = Pending(request, reqid, _expected_replies(request))
        return request

    def resolve(self, reply: Reply) -> Pending | None:
        """Attach a reply to its request.

        Returns the :class:`Pending` entry (check ``complete``), or None when no request
        waits for this reqid. A complete entry is forgotten. A reply of the wrong kind for its
        reqid raises :class:`~krakenws.errors.ProtocolError`.
        """
        reqid = reply.reqid
        if not isinstance(reqid, int) or isinstance(reqid, bool):
            return None
        pending = self._pending.get(reqid)
        if pending is None:
            return None
        if not isinstance(reply, ErrorEvent) and not isinstance(
            reply, _REPLIES[type(pending.request)]
        ):
            raise ProtocolError(
                f"reply {type(reply).__name__} with reqid {reqid} does not answer "
                f"{type(pending.request).__name__}"
            )
        pending.replies.append(reply)
        if pending.complete or isinstance(reply, ErrorEvent):
            del self._pending[reqid]
        return pending

    def finish(self, reqid: int) -> Pending | None:
        """Stop waiting for a request (deadline passed, or open-ended reply count settled)."""
        return self._pending.pop(reqid, None)

    def fail_all(self) -> list[Pending]:
        """Forget every pending request (the connection closed); returns them."""
        pending = list(self._pending.values())
        self._pending.clear()
        return pending

    def __contains__(self, reqid: object) -> bool:
        return reqid in self._pending

    def __len__(self) -> int:
        return len(self._pending)


# --- subscriptions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionKey:
    """One subscription: a channel variant (``book-25``, ``ohlc-5``, ``openOrders``) and pair."""

    channel_name: str
    pair: str | None


class SubscriptionState(Enum):
    """Where a wanted subscription stands on the current connection."""

    PENDING = "pending"  # asked for (or to be re-asked after a reconnect), not acked yet
    ACTIVE = "active"  # acked with status "subscribed"
    FAILED = "failed"  # refused with an errorMessage; not resubscribed


@dataclass
class _Entry:
    subscription: Subscription  # as requested, without the token
    state: SubscriptionState
    channel_id: int | None = None
    error: str | None = None


class SubscriptionRegistry:
    """What the user subscribed to, and what the server has confirmed.

    Call :meth:`want` when sending a subscribe, :meth:`unwant` when sending an unsubscribe,
    :meth:`on_status` with every ``subscriptionStatus``; after a reconnect call
    :meth:`reset` and send :meth:`resubscribe_requests`.
    """

    def __init__(self) -> None:
        self._entries: dict[SubscriptionKey, _Entry] = {}
        self._by_channel_id: dict[int, SubscriptionKey] = {}

    def want(self, request: Subscribe) -> list[SubscriptionKey]:
        """Record the subscriptions a subscribe request asks for; returns their keys."""
        subscription = msgspec.structs.replace(request.subscription, token=UNSET)
        name = channel_name_of(subscription)
        pairs: Iterable[str | None] = (
            [None] if subscription.name in PRIVATE_CHANNELS else (request.pair or [])
        )
        keys = []
        for pair in pairs:
            key = SubscriptionKey(name, pair)
            self._entries[key] = _Entry(subscription, SubscriptionState.PENDING)
            keys.append(key)
        return keys

    def unwant(self, request: Unsubscribe) -> list[SubscriptionKey]:
        """Forget the subscriptions an unsubscribe request drops (also before its ack)."""
        if request.subscription is UNSET:
            key = self._by_channel_id.get(request.channel_id) if request.channel_id else None
            keys = [key] if key else []
        else:
            name = channel_name_of(request.subscription)
            if request.subscription.name in PRIVATE_CHANNELS:
                keys = [SubscriptionKey(name, None)]
            else:
                keys = [SubscriptionKey(name, pair) for pair in (request.pair or [])]
        for key in keys:
            self._forget(key)
        return keys

    def on_status(self, status: SubscriptionStatus) -> SubscriptionKey | None:
        """Apply a ``subscriptionStatus``; returns the key it concerned, if one can be told."""
        key = self._key_of(status)
        if key is None:
            return None
        entry = self._entries.get(key)
        if status.status == "subscribed":
            if entry is None:  # acked after an unsubscribe was sent, or never asked: keep truth
                subscription = (
                    status.subscription
                    if status.subscription is not UNSET
                    else Subscription(name=key.channel_name.split("-")[0])
                )
                entry = self._entries[key] = _Entry(subscription, SubscriptionState.PENDING)
            entry.state = SubscriptionState.ACTIVE
            entry.error = None
            if isinstance(status.channel_id, int):
                entry.channel_id = status.channel_id
                self._by_channel_id[status.channel_id] = key
        elif status.status == "unsubscribed":
            self._forget(key)
        elif status.status == "error" and entry is not None:
            if status.error_message == "Already subscribed":
                entry.state = SubscriptionState.ACTIVE
            else:
                entry.state = SubscriptionState.FAILED
                entry.error = status.error_message or "error"
        return key

    def _key_of(self, status: SubscriptionStatus) -> SubscriptionKey | None:
        pair = status.pair if isinstance(status.pair, str) else None
        if isinstance(status.channel_name, str):
            return SubscriptionKey(status.channel_name, pair)
        if status.subscription is not UNSET:
            return SubscriptionKey(channel_name_of(status.subscription), pair)
        if isinstance(status.channel_id, int):
            return self._by_channel_id.get(status.channel_id)
        return None

    def _forget(self, key: SubscriptionKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry.channel_id is not None:
            self._by_channel_id.pop(entry.channel_id, None)

    def reset(self) -> None:
        """The connection is gone: every wanted subscription must be asked for again."""
        self._by_channel_id.clear()
        for entry in self._entries.values():
            if entry.state is SubscriptionState.ACTIVE:
                entry.state = SubscriptionState.PENDING
            entry.channel_id = None

    def resubscribe_requests(
        self, token: str | None = None, *, max_pairs: int = 50
    ) -> list[Subscribe]:
        """Subscribe requests that restore every pending subscription, grouped by options.

        Public subscriptions with identical options share one request (at most ``max_pairs``
        pairs each, to stay friendly with Kraken's message rate); private ones need ``token``
        and are skipped when it is None. Failed subscriptions are not retried.
        """
        groups: dict[Subscription, list[str]] = {}
        private: list[Subscription] = []
        for key, entry in self._entries.items():
            if entry.state is not SubscriptionState.PENDING:
                continue
            if key.pair is None:
                private.append(entry.subscription)
            else:
                groups.setdefault(entry.subscription, []).append(key.pair)
        requests: list[Subscribe] = []
        for subscription, pairs in groups.items():
            for start in range(0, len(pairs), max_pairs):
                requests.append(
                    Subscribe(pair=pairs[start : start + max_pairs], subscription=subscription)
                )
        if token is not None:
            for subscription in private:
                requests.append(
                    Subscribe(subscription=msgspec.structs.replace(subscription, token=token))
                )
        return requests

    def state(self, key: SubscriptionKey) -> SubscriptionState | None:
        """The state of one subscription, or None if it is not wanted."""
        entry = self._entries.get(key)
        return entry.state if entry else None

    def error(self, key: SubscriptionKey) -> str | None:
        """Why a subscription failed, if it did."""
        entry = self._entries.get(key)
        return entry.error if entry else None

    def key_for_channel_id(self, channel_id: int) -> SubscriptionKey | None:
        """The subscription behind a (deprecated but still sent) channelID."""
        return self._by_channel_id.get(channel_id)

    def subscription(self, key: SubscriptionKey) -> Subscription | None:
        """The options a subscription was requested with (no token)."""
        entry = self._entries.get(key)
        return entry.subscription if entry else None

    def __iter__(self) -> Iterator[SubscriptionKey]:
        return iter(list(self._entries))

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)


# --- sequence numbers --------------------------------------------------------------------------


class SequenceResult(Enum):
    """What a private frame's ``sequence`` says."""

    SNAPSHOT = "snapshot"  # sequence 1: a (re)subscription's snapshot; state starts afresh
    IN_ORDER = "in_order"
    GAP = "gap"  # numbers were skipped: messages lost; resubscribe for a fresh snapshot
    STALE = "stale"  # a number already seen (duplicate or replay): ignore the frame


class SequenceTracker:
    """Per-channel sequence checking for ``openOrders`` and ``ownTrades`` (spec 5.2).

    >>> tracker = SequenceTracker()
    >>> [tracker.check("openOrders", n).value for n in (1, 2, 4)]
    ['snapshot', 'in_order', 'gap']
    >>> tracker.last_gap
    ('openOrders', 3, 4)
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self.gaps = 0
        self.last_gap: tuple[str, int, int] | None = None

    def check(self, channel: str, sequence: int) -> SequenceResult:
        """Record a frame's sequence number and classify it."""
        if sequence == 1:
            self._last[channel] = 1
            return SequenceResult.SNAPSHOT
        last = self._last.get(channel)
        if last is None or sequence > last + 1:
            self._last[channel] = sequence
            self.gaps += 1
            self.last_gap = (channel, (last or 0) + 1, sequence)
            return SequenceResult.GAP
        if sequence <= last:
            return SequenceResult.STALE
        self._last[channel] = sequence
        return SequenceResult.IN_ORDER

    def expected(self, channel: str) -> int | None:
        """The sequence number the next frame on ``channel`` should carry."""
        last = self._last.get(channel)
        return None if last is None else last + 1

    def reset(self, channel: str | None = None) -> None:
        """Forget one channel (it was unsubscribed) or all (the connection closed)."""
        if channel is None:
            self._last.clear()
        else:
            self._last.pop(channel, None)


# --- liveness ----------------------------------------------------------------------------------


class HeartbeatMonitor:
    """Decides, from times the caller passes in, when to ping and when a connection is dead.

    Kraken sends a heartbeat after about a second without other traffic, but only once
    something is subscribed; so the client pings when it has heard nothing for
    ``ping_interval`` seconds, and gives the connection up after ``timeout`` seconds of silence.

    >>> monitor = HeartbeatMonitor(timeout=5.0, ping_interval=2.0, now=100.0)
    >>> monitor.ping_due(101.0), monitor.ping_due(102.5)
    (False, True)
    >>> monitor.expired(104.0), monitor.expired(105.5)
    (False, True)
    >>> monitor.received(105.5); monitor.expired(106.0)
    False
    """

    def __init__(self, *, timeout: float = 10.0, ping_interval: float = 5.0, now: float) -> None:
        if timeout <= 0 or ping_interval <= 0:
            raise UsageError("heartbeat timeout and ping interval must be positive")
        self.timeout = timeout
        self.ping_interval = ping_interval
        self._last_received = now
        self._last_ping: float | None = None

    def received(self, now: float) -> None:
        """Any message arrived (data, heartbeat, pong, status)."""
        self._last_received = now
        self._last_ping = None

    def ping_sent(self, now: float) -> None:
        """The caller sent an application-level ping."""
        self._last_ping = now

    def ping_due(self, now: float) -> bool:
        """Whether a ping should be sent now (silent for a while, no ping outstanding)."""
        quiet_since = self._last_received if self._last_ping is None else self._last_ping
        return now - quiet_since >= self.ping_interval

    @property
    def deadline(self) -> float:
        """The time after which the connection counts as dead unless something arrives."""
        return self._last_received + self.timeout

    def expired(self, now: float) -> bool:
        """Whether the connection has been silent for longer than ``timeout``."""
        return now > self.deadline

    def next_wakeup(self, now: float) -> float:
        """When the caller should look again: the next ping time or the deadline."""
        quiet_since = self._last_received if self._last_ping is None else self._last_ping
        return max(now, min(quiet_since + self.ping_interval, self.deadline))
