"""What the client tells its user: events with their causes, small results, reconnect policy.

Plain frozen values (no I/O, no clock): :class:`ClientEvent` and its kinds, the results of
``cancelAll`` and ``cancelAllOrdersAfter``, and :class:`Backoff`, the reconnect delays. The
client (:mod:`krakenws.client`) emits and uses them; they are re-exported there.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "Backoff",
    "BookResync",
    "BookSynced",
    "CancelAllResult",
    "ClientEvent",
    "ConnectFailed",
    "Connected",
    "DeadManSwitch",
    "Disconnected",
    "FeedResynced",
    "GaveUp",
    "OrdersReconciled",
    "ProtocolProblem",
    "Reconnecting",
    "Resubscribed",
    "SequenceGap",
    "StatusChanged",
    "SubscriptionLost",
    "TokenRefreshed",
]


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ClientEvent:
    """Something that happened to a connection or to the data; ``endpoint`` is public/private."""

    endpoint: str


@dataclass(frozen=True, kw_only=True)
class Connected(ClientEvent):
    """A WebSocket connection is open (``attempt`` 1 is the first ever)."""

    url: str
    connection_id: int | None
    attempt: int


@dataclass(frozen=True, kw_only=True)
class Disconnected(ClientEvent):
    """A connection ended; ``cause`` says why (closed by server, heartbeats stopped, ...)."""

    cause: str


@dataclass(frozen=True, kw_only=True)
class ConnectFailed(ClientEvent):
    """An attempt to connect failed."""

    attempt: int
    error: str


@dataclass(frozen=True, kw_only=True)
class Reconnecting(ClientEvent):
    """The next connection attempt starts after ``delay`` seconds."""

    attempt: int
    delay: float
    cause: str


@dataclass(frozen=True, kw_only=True)
class GaveUp(ClientEvent):
    """The reconnect budget (``Backoff.max_attempts``) is spent; the connection stays down."""

    attempts: int
    error: str


@dataclass(frozen=True, kw_only=True)
class StatusChanged(ClientEvent):
    """``systemStatus`` changed (``online``, ``maintenance``, ``cancel_only``, ``post_only``)."""

    status: str
    previous: str | None


@dataclass(frozen=True, kw_only=True)
class Resubscribed(ClientEvent):
    """After a reconnect, this many subscriptions were asked for again."""

    subscriptions: int


@dataclass(frozen=True, kw_only=True)
class BookResync(ClientEvent):
    """A book stopped being trustworthy and is being rebuilt from a fresh snapshot."""

    pair: str
    depth: int
    cause: str


@dataclass(frozen=True, kw_only=True)
class BookSynced(ClientEvent):
    """A book has a fresh snapshot again; its checksum verifies."""

    pair: str
    depth: int
    checksum: int


@dataclass(frozen=True, kw_only=True)
class SequenceGap(ClientEvent):
    """A private feed skipped sequence numbers: messages were lost (healing follows)."""

    channel: str
    expected: int
    received: int


@dataclass(frozen=True, kw_only=True)
class FeedResynced(ClientEvent):
    """A private feed restarted from a fresh snapshot (after a gap or a reconnect)."""

    channel: str
    cause: str


@dataclass(frozen=True, kw_only=True)
class SubscriptionLost(ClientEvent):
    """The server ended or refused a subscription the client wanted. The public streams and
    the book using it end with :class:`~krakenws.errors.SubscriptionError` (or the refusal's
    error); opening the channel again subscribes afresh."""

    channel: str
    pair: str | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class TokenRefreshed(ClientEvent):
    """A new WebSocket token was fetched through REST ``GetWebSocketsToken``."""

    cause: str


@dataclass(frozen=True, kw_only=True)
class OrdersReconciled(ClientEvent):
    """Orders that ended while the private feed was down, settled from REST ``QueryOrders``."""

    txids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ProtocolProblem(ClientEvent):
    """A frame that is not Kraken v1 (or an unsolicited error) arrived; it was skipped."""

    error: str


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CancelAllResult:
    """``cancelAll``: how many orders were cancelled."""

    count: int


@dataclass(frozen=True)
class DeadManSwitch:
    """``cancelAllOrdersAfter``: server time now and when everything will be cancelled
    (``trigger_time`` ``"0"`` once disabled)."""

    current_time: str
    trigger_time: str


# --- reconnect policy --------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Delays between connection attempts: exponential, with jitter, bounded on request.

    The n-th attempt after a failure waits between half and all of
    ``min(maximum, initial * factor**(n-1))`` seconds; after maintenance at least
    ``after_maintenance`` seconds (Kraken's advice). ``max_attempts=None`` retries forever.

    >>> policy = Backoff(initial=1.0, maximum=8.0)
    >>> [policy.ceiling(n) for n in (1, 2, 3, 4, 5)]
    [1.0, 2.0, 4.0, 8.0, 8.0]
    >>> 0.5 <= policy.delay(1, random.Random(7)) <= 1.0
    True
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    max_attempts: int | None = None
    after_maintenance: float = 5.0

    def ceiling(self, attempt: int) -> float:
        """The longest wait before attempt number ``attempt`` (1-based)."""
        return min(self.maximum, self.initial * self.factor ** max(attempt - 1, 0))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """A jittered wait before attempt ``attempt``: uniform in [ceiling/2, ceiling]."""
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + rng.uniform(0.0, ceiling / 2)
