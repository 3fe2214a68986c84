"""Kraken's rate rules (spec 7.6) in one place, for the sandbox and for the client. Pure.

This module owns:

* the tier tables: :data:`RATE_TIERS` (the per-pair trading counter shared by REST, WebSocket
  and FIX) and :data:`REST_TIERS` (the REST call counter per API key), each with the sandbox's
  own ``unlimited`` tier for load tests;
* the cost rules: :data:`ADD_COST`, :func:`amend_cost`, :func:`edit_cost`, :func:`cancel_cost`
  (by the order's age), :func:`batch_add_cost` and :func:`rest_cost` (by endpoint name);
* the client-side *mirrors* of both counters, :class:`TradingRateMirror` (per pair) and
  :class:`RestRateMirror`, which predict how long to wait before a call fits;
* :func:`backoff_delays`, full-jitter exponential backoff for when the server still says
  ``Rate limit exceeded``.

It reads no clock and does no I/O: every ``now`` is passed in as **integer microseconds** from
any monotonic origin (the mirrors only look at differences), and waits come back as ``float``
seconds, rounded up to the next microsecond. Counter values are :class:`~decimal.Decimal`.

Mirror semantics (the one place they are defined):

* ``reserve(..., cost, now)`` returns how many seconds the caller must wait before sending
  (``0.0`` if the call fits now) **and books the charge at that future moment**. A caller sleeps
  the returned delay and then sends, without calling again. Later reservations queue behind
  earlier ones (they never fit before a moment already booked), so concurrent callers that
  each reserve and sleep never overrun the counter between them.
* A call *fits* when ``counter + cost <= threshold`` (Kraken refuses above the threshold).
  Cancels are the exception (spec 7.6: a cancel may cross the threshold): they fit while the
  counter is *below* the threshold, as in :mod:`krakenws.sandbox.engine.ratelimit`.
* ``would_exceed(..., cost, now)`` answers without booking: for callers that prefer to fail
  fast rather than wait. ``wait(...)`` gives the delay without booking (``inf`` for a counter
  that never decays; ``reserve`` raises :class:`~krakenws.errors.UsageError` then).
* ``settle(..., now)`` says that a booked call has been answered at ``now``. The server may
  have charged it at any moment up to then, so the mirror stops counting decay before ``now``;
  with it the mirror stays an upper bound of the server's counter whatever the latency of each
  call (without it, a slow call followed by a fast one could make the mirror count decay the
  server never saw).
* ``sync(..., value, now)`` adopts a counter value the server reported (``ratecount`` of
  openOrders updates, or the maximum after a ``Rate limit exceeded`` answer).

Worked example of spec 7.6 (add, amend 7 s later, cancel 36 s after the amend):

>>> mirror = TradingRateMirror(RATE_TIERS["starter"]._replace(decay_per_second=Decimal(0)))
>>> mirror.reserve("XXBTZUSD", ADD_COST, now=0)
0.0
>>> mirror.reserve("XXBTZUSD", amend_cost(Decimal(7)), now=7_000_000)
0.0
>>> mirror.reserve("XXBTZUSD", cancel_cost(Decimal(36)), now=43_000_000, cancel=True)
0.0
>>> mirror.value("XXBTZUSD", now=43_000_000)
Decimal('8')

At the Starter threshold (60, decaying 1 per second) the 61st add waits one second:

>>> starter = TradingRateMirror("starter")
>>> [starter.reserve("XXBTZUSD", ADD_COST, now=0) for _ in range(61)][-2:]
[0.0, 1.0]

Imports: the standard library and :mod:`krakenws.errors` only.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, NamedTuple

from krakenws.errors import UsageError
from krakenws.protocol.messages import userref_value

__all__ = [
    "ADD_COST",
    "HISTORY_ENDPOINTS",
    "OrderCostKind",
    "RATE_TIERS",
    "REST_TIERS",
    "TRADING_ENDPOINTS",
    "RateTier",
    "RestRateMirror",
    "RestTier",
    "TradingRateMirror",
    "amend_cost",
    "backoff_delays",
    "batch_add_cost",
    "cancel_cost",
    "edit_cost",
    "rest_cost",
]

_MICROS = 1_000_000
_ZERO = Decimal(0)


# --- tiers -------------------------------------------------------------------------------------


class RateTier(NamedTuple):
    """A verification tier's trading limits (spec 7.6)."""

    name: str
    threshold: Decimal
    decay_per_second: Decimal
    max_open_orders: int
    """Open orders per pair (spec 7.6, newer text; Starter assumed 60)."""
    max_scheduled_orders: int


RATE_TIERS: Mapping[str, RateTier] = MappingProxyType(
    {
        "starter": RateTier("starter", Decimal(60), Decimal(1), 60, 25),
        "intermediate": RateTier("intermediate", Decimal(125), Decimal("2.34"), 80, 25),
        "pro": RateTier("pro", Decimal(180), Decimal("3.75"), 225, 40),
        # Not Kraken's: for load tests against the sandbox (no rate or open-order limits).
        "unlimited": RateTier("unlimited", Decimal(10) ** 12, Decimal(10) ** 12, 10**9, 10**9),
    }
)
"""Tier name -> trading limits (threshold and decay from spec 7.6; ``unlimited`` is the
sandbox's own)."""


class RestTier(NamedTuple):
    """A verification tier's REST call counter per API key (spec 7.6)."""

    name: str
    maximum: Decimal
    decay_per_second: Decimal


REST_TIERS: Mapping[str, RestTier] = MappingProxyType(
    {
        "starter": RestTier("starter", Decimal(15), Decimal("0.33")),
        "intermediate": RestTier("intermediate", Decimal(20), Decimal("0.5")),
        "pro": RestTier("pro", Decimal(20), Decimal(1)),
        "unlimited": RestTier("unlimited", Decimal(10) ** 12, Decimal(10) ** 12),
    }
)
"""Tier name -> REST call counter (spec 7.6; ``unlimited`` is the sandbox's own)."""


def _tier(tier: str | RateTier | RestTier, table: Mapping[str, RateTier | RestTier]) -> str:
    if isinstance(tier, str) and tier not in table:
        raise UsageError(f"unknown tier {tier!r}; choose one of {sorted(table)}")
    return tier if isinstance(tier, str) else tier.name


# --- costs -------------------------------------------------------------------------------------

ADD_COST = Decimal(1)
"""Adding an order: +1, fixed."""

# (age limit in seconds, extra cost) — first row whose limit exceeds the age applies.
_AMEND = ((5, 3), (10, 2), (15, 1))
_EDIT = ((5, 6), (10, 5), (15, 4), (45, 2), (90, 1))
_CANCEL = ((5, 8), (10, 6), (15, 5), (45, 4), (90, 2), (300, 1))


def _age_part(table: tuple[tuple[int, int], ...], age_seconds: Decimal) -> Decimal:
    for limit, cost in table:
        if age_seconds < limit:
            return Decimal(cost)
    return _ZERO


def amend_cost(age_seconds: Decimal) -> Decimal:
    """+1 fixed, +3/+2/+1 under 5/10/15 s (age: since the order was placed or last amended)."""
    return 1 + _age_part(_AMEND, age_seconds)


def edit_cost(age_seconds: Decimal) -> Decimal:
    """+1 fixed, +6/+5/+4/+2/+1 under 5/10/15/45/90 s."""
    return 1 + _age_part(_EDIT, age_seconds)


def cancel_cost(age_seconds: Decimal) -> Decimal:
    """+8/+6/+5/+4/+2/+1 under 5/10/15/45/90/300 s; free after that.

    >>> cancel_cost(Decimal(43)), cancel_cost(Decimal(300))
    (Decimal('4'), Decimal('0'))
    """
    return _age_part(_CANCEL, age_seconds)


def batch_add_cost(count: int) -> Decimal:
    """What a batch of ``count`` orders is charged: +1 per order.

    Kraken documents +n/2 for a batch add (spec 7.6); the sandbox places a batch as single
    orders, +1 each. A mirror must never count less than the server it talks to, so this is
    the larger of the two.
    """
    return ADD_COST * count


TRADING_ENDPOINTS: frozenset[str] = frozenset(
    {"AddOrder", "AddOrderBatch", "EditOrder", "CancelOrder", "CancelAll", "CancelAllOrdersAfter"}
)
"""Private REST endpoints that use the trading counter instead of the REST call counter."""

HISTORY_ENDPOINTS: frozenset[str] = frozenset({"Ledgers", "QueryLedgers", "TradesHistory"})
"""Private REST endpoints that cost +2 on the REST call counter (spec 7.6, as the sandbox)."""


def rest_cost(endpoint: str) -> int:
    """The REST call counter cost of a *private* endpoint: 0 (trading), 2 (history) or 1.

    >>> rest_cost("Balance"), rest_cost("Ledgers"), rest_cost("AddOrder")
    (1, 2, 0)
    """
    if endpoint in TRADING_ENDPOINTS:
        return 0
    return 2 if endpoint in HISTORY_ENDPOINTS else 1


# --- the decaying counter ----------------------------------------------------------------------


class _Counter:
    """One linearly decaying counter: ``value`` at time ``at`` (µs), floored at 0."""

    __slots__ = ("at", "value")

    def __init__(self, value: Decimal = _ZERO, at: int = 0) -> None:
        self.value = value
        self.at = at

    def at_time(self, now: int, decay: Decimal) -> Decimal:
        """The value at ``now``; before the last booking, the value booked then."""
        elapsed = Decimal(max(now - self.at, 0)) / _MICROS
        return max(_ZERO, self.value - elapsed * decay)

    def fits_at(
        self, cost: Decimal, now: int, limit: Decimal, decay: Decimal, cancel: bool
    ) -> int | None:
        """The first moment (µs, never before ``now`` nor the last booking) a charge fits;
        None if it never will (a counter that does not decay)."""
        start = max(now, self.at)
        current = self.at_time(start, decay)
        # A cancel fits while the counter is below the limit; anything else when it stays at or
        # under it once charged.
        excess = current - limit if cancel else current + cost - limit
        if excess < 0 or (excess == 0 and not cancel):
            return start
        if decay <= 0:
            return None
        micros = excess * _MICROS / decay
        wait = math.ceil(micros)
        if cancel and wait == micros:
            wait += 1  # strictly below the limit
        return start + wait

    def pin(self, now: int) -> None:
        """No decay before ``now``: the value stays what it was at the last booking."""
        self.at = max(self.at, now)

    def book(self, cost: Decimal, moment: int, decay: Decimal) -> Decimal:
        self.value = self.at_time(moment, decay) + cost
        self.at = max(moment, self.at)
        return self.value


def _wait(moment: int | None, now: int) -> float:
    return math.inf if moment is None else (moment - now) / _MICROS


def _never() -> UsageError:
    return UsageError("this counter does not decay: the charge can never fit")


def _check_cost(cost: Decimal | int, limit: Decimal, cancel: bool) -> Decimal:
    amount = Decimal(cost)
    if amount < 0:
        raise UsageError(f"a rate cost cannot be negative, got {cost}")
    if not cancel and amount > limit:
        raise UsageError(f"cost {cost} is above the limit {limit}: it would never fit")
    return amount


# --- client-side mirrors -----------------------------------------------------------------------

OrderCostKind = Literal["amend", "edit", "cancel"]
"""The order operations whose cost depends on the order's age."""
_COST_BY_KIND: Mapping[str, Callable[[Decimal], Decimal]] = MappingProxyType(
    {"amend": amend_cost, "edit": edit_cost, "cancel": cancel_cost}
)


class TradingRateMirror:
    """The client's copy of the per-pair trading counter (spec 7.6) of one account.

    Semantics of :meth:`reserve`, :meth:`would_exceed` and :meth:`sync` are in the module
    docstring. Pairs are whatever keys the caller uses; use one spelling per pair (the REST
    key, ``XXBTZUSD``, as ``ratecount`` refers to) or the counters split.

    The mirror also remembers when orders were placed or last amended (:meth:`track_order`),
    so the age-dependent cost of amending, editing or cancelling one of them is known
    (:meth:`order_cost`). It keeps at most ``max_tracked`` orders, forgetting the oldest.
    """

    def __init__(self, tier: str | RateTier = "starter", *, max_tracked: int = 10_000) -> None:
        self.tier = RATE_TIERS[_tier(tier, RATE_TIERS)] if isinstance(tier, str) else tier
        self._counters: dict[str, _Counter] = {}
        # txid -> (pair, placed or last amended, userref, cl_ord_id)
        self._orders: OrderedDict[str, tuple[str, int, int | None, str | None]] = OrderedDict()
        self._max_tracked = max_tracked

    # counter

    def _counter(self, pair: str) -> _Counter:
        counter = self._counters.get(pair)
        if counter is None:
            counter = self._counters[pair] = _Counter()
        return counter

    def value(self, pair: str, now: int) -> Decimal:
        """The mirrored counter of ``pair`` at ``now`` (µs)."""
        counter = self._counters.get(pair)
        return _ZERO if counter is None else counter.at_time(now, self.tier.decay_per_second)

    def wait(self, pair: str, cost: Decimal | int, now: int, *, cancel: bool = False) -> float:
        """Seconds until ``cost`` fits on ``pair`` (0.0 if now, ``inf`` if never); nothing is
        booked."""
        amount = _check_cost(cost, self.tier.threshold, cancel)
        counter = self._counters.get(pair, _Counter(_ZERO, now))
        moment = counter.fits_at(
            amount, now, self.tier.threshold, self.tier.decay_per_second, cancel
        )
        return _wait(moment, now)

    def would_exceed(
        self, pair: str, cost: Decimal | int, now: int, *, cancel: bool = False
    ) -> bool:
        """Whether ``cost`` on ``pair`` does not fit at ``now`` (the counter, or reservations
        booked later, make it wait); nothing is booked."""
        return self.wait(pair, cost, now, cancel=cancel) > 0

    def reserve(self, pair: str, cost: Decimal | int, now: int, *, cancel: bool = False) -> float:
        """Book ``cost`` on ``pair`` when it fits; return the seconds to wait before sending."""
        amount = _check_cost(cost, self.tier.threshold, cancel)
        counter = self._counter(pair)
        decay = self.tier.decay_per_second
        moment = counter.fits_at(amount, now, self.tier.threshold, decay, cancel)
        if moment is None:
            raise _never()
        counter.book(amount, moment, decay)
        return _wait(moment, now)

    def take(
        self, charges: Iterable[tuple[str, Decimal | int]], now: int, *, cancel: bool = False
    ) -> float:
        """Book every (pair, cost) of one request if all fit at ``now`` and return 0.0; else
        book nothing and return the seconds to wait before asking again. Unlike
        :meth:`reserve`, nothing is held for a caller that is still waiting (and may give up).

        >>> mirror = TradingRateMirror("starter")
        >>> mirror.take([("XXBTZUSD", 60)], now=0), mirror.take([("XXBTZUSD", 1)], now=0)
        (0.0, 1.0)
        >>> mirror.value("XXBTZUSD", 0)
        Decimal('60')
        """
        wanted = list(charges)
        delay = max((self.wait(pair, cost, now, cancel=cancel) for pair, cost in wanted), default=0)
        if delay > 0:
            if math.isinf(delay):
                raise _never()
            return delay
        for pair, cost in wanted:
            self.reserve(pair, cost, now, cancel=cancel)
        return 0.0

    def charge(self, pair: str, cost: Decimal | int, now: int) -> Decimal:
        """Book ``cost`` at ``now`` without any check (a call already sent); the new value."""
        amount = Decimal(cost)
        return self._counter(pair).book(amount, now, self.tier.decay_per_second)

    def settle(self, pair: str, now: int) -> None:
        """A call booked on ``pair`` was answered at ``now`` (see the module docstring)."""
        counter = self._counters.get(pair)
        if counter is not None:
            counter.pin(now)

    def sync(self, pair: str, ratecount: Decimal | int | str, now: int) -> None:
        """Adopt the server's counter for ``pair`` (``ratecount``), as seen at ``now``.

        If reservations are booked after ``now`` (callers still sleeping), they are kept: the
        counter then only rises to what the server's value would have decayed to by then.
        """
        reported = Decimal(ratecount)
        if not reported.is_finite() or reported < 0:
            raise UsageError(f"ratecount must be a non-negative number, got {ratecount!r}")
        counter = self._counter(pair)
        if counter.at <= now:
            counter.value, counter.at = reported, now
            return
        decayed = _Counter(reported, now).at_time(counter.at, self.tier.decay_per_second)
        counter.value = max(counter.value, decayed)

    # order ages

    def track_order(
        self,
        txid: str,
        pair: str,
        now: int,
        *,
        userref: int | None = None,
        cl_ord_id: str | None = None,
    ) -> None:
        """Remember that ``txid`` on ``pair`` was placed (or replaced by an edit) at ``now``,
        with the ``userref`` and ``cl_ord_id`` a cancel may name it by."""
        self._orders[txid] = (pair, now, userref, cl_ord_id)
        self._orders.move_to_end(txid)
        while len(self._orders) > self._max_tracked:
            self._orders.popitem(last=False)

    def order_amended(self, txid: str, now: int) -> None:
        """An amend restarts the order's age (spec 7.6); unknown orders are ignored."""
        known = self._orders.get(txid)
        if known is not None:
            self._orders[txid] = (known[0], now, known[2], known[3])

    def forget_order(self, txid: str) -> None:
        """Stop tracking ``txid`` (closed, cancelled or replaced)."""
        self._orders.pop(txid, None)

    def forget_all_orders(self) -> None:
        """Stop tracking every order (after a cancel-all)."""
        self._orders.clear()

    def orders_named(self, refs: Iterable[str | int], cl_ord_ids: Iterable[str] = ()) -> list[str]:
        """The tracked orders a cancel names: by txid, by userref (every order placed with
        it; a cancelOrder ``txid`` of digits is a userref) or by ``cl_ord_id``.

        >>> mirror = TradingRateMirror("starter")
        >>> mirror.track_order("OA", "XXBTZUSD", 0, userref=7)
        >>> mirror.track_order("OB", "XXBTZUSD", 0, userref=7, cl_ord_id="mine-1")
        >>> mirror.orders_named(["7"]), mirror.orders_named([], ["mine-1"])
        (['OA', 'OB'], ['OB'])
        """
        userrefs: set[int] = set()
        found: dict[str, None] = {}
        for ref in refs:
            if isinstance(ref, str) and ref in self._orders:
                found[ref] = None
                continue
            userref = userref_value(ref)
            if userref is not None:
                userrefs.add(userref)
        wanted = set(cl_ord_ids)
        if userrefs or wanted:
            for txid, (_, _, userref, cl_ord_id) in self._orders.items():
                if userref in userrefs or (cl_ord_id is not None and cl_ord_id in wanted):
                    found[txid] = None
        return list(found)

    def order_userref(self, txid: str) -> int | None:
        """The userref a tracked order was placed with, or None."""
        known = self._orders.get(txid)
        return None if known is None else known[2]

    def order_pair(self, txid: str) -> str | None:
        """The pair a tracked order was placed on, or None."""
        known = self._orders.get(txid)
        return None if known is None else known[0]

    def order_age(self, txid: str, now: int) -> Decimal | None:
        """Seconds since the tracked order was placed or last amended, or None if unknown."""
        known = self._orders.get(txid)
        return None if known is None else Decimal(max(now - known[1], 0)) / _MICROS

    def order_charges(
        self,
        kind: OrderCostKind,
        txids: Iterable[str],
        now: int,
        *,
        pair_of: Callable[[str], str | None] | None = None,
    ) -> list[tuple[str, Decimal]]:
        """The (pair, cost) charges of amending, editing or cancelling ``txids`` at ``now``,
        summed per pair. An order's pair is the one it was tracked with, else ``pair_of(txid)``;
        an order with neither is not charged.

        >>> mirror = TradingRateMirror("starter")
        >>> mirror.track_order("OA", "XXBTZUSD", 0)
        >>> mirror.track_order("OB", "XXBTZUSD", 0)
        >>> mirror.order_charges("cancel", ["OA", "OB", "OC"], 0)
        [('XXBTZUSD', Decimal('16'))]
        """
        totals: dict[str, Decimal] = {}
        for txid in txids:
            pair = self.order_pair(txid)
            if pair is None and pair_of is not None:
                pair = pair_of(txid)
            if pair is not None:
                totals[pair] = totals.get(pair, _ZERO) + self.order_cost(kind, txid, now)
        return list(totals.items())

    def order_cost(self, kind: OrderCostKind, txid: str, now: int) -> Decimal:
        """The cost of an amend, edit or cancel of ``txid`` at ``now``.

        An order the mirror does not track is assumed brand new (the highest cost), so that
        the mirror never counts less than the server.
        """
        age = self.order_age(txid, now)
        return _COST_BY_KIND[kind](_ZERO if age is None else age)


class RestRateMirror:
    """The client's copy of the REST call counter of one API key (spec 7.6).

    Costs come from :func:`rest_cost`; trading endpoints cost nothing here (they are counted
    by :class:`TradingRateMirror`). Semantics as in the module docstring.

    >>> mirror = RestRateMirror("pro")
    >>> [mirror.reserve(rest_cost("Ledgers"), now=0) for _ in range(11)]
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]
    """

    def __init__(self, tier: str | RestTier = "starter") -> None:
        self.tier = REST_TIERS[_tier(tier, REST_TIERS)] if isinstance(tier, str) else tier
        self._counter = _Counter()

    def value(self, now: int) -> Decimal:
        """The mirrored counter at ``now`` (µs)."""
        return self._counter.at_time(now, self.tier.decay_per_second)

    def wait(self, cost: Decimal | int, now: int) -> float:
        """Seconds until ``cost`` fits (0.0 if now, ``inf`` if never); nothing is booked."""
        amount = _check_cost(cost, self.tier.maximum, cancel=False)
        moment = self._counter.fits_at(
            amount, now, self.tier.maximum, self.tier.decay_per_second, cancel=False
        )
        return _wait(moment, now)

    def would_exceed(self, cost: Decimal | int, now: int) -> bool:
        """Whether a call costing ``cost`` does not fit at ``now``; nothing is booked."""
        return self.wait(cost, now) > 0

    def reserve(self, cost: Decimal | int, now: int) -> float:
        """Book ``cost`` when it fits; return the seconds to wait before sending."""
        amount = _check_cost(cost, self.tier.maximum, cancel=False)
        decay = self.tier.decay_per_second
        moment = self._counter.fits_at(amount, now, self.tier.maximum, decay, cancel=False)
        if moment is None:
            raise _never()
        self._counter.book(amount, moment, decay)
        return _wait(moment, now)

    def settle(self, now: int) -> None:
        """A booked call was answered at ``now`` (see the module docstring)."""
        self._counter.pin(now)

    def sync(self, value: Decimal | int, now: int) -> None:
        """Adopt a counter value at ``now`` (e.g. the maximum after ``EAPI:Rate limit
        exceeded``); bookings after ``now`` are kept, as in :meth:`TradingRateMirror.sync`."""
        reported = Decimal(value)
        if self._counter.at <= now:
            self._counter.value, self._counter.at = reported, now
            return
        decayed = _Counter(reported, now).at_time(self._counter.at, self.tier.decay_per_second)
        self._counter.value = max(self._counter.value, decayed)


# --- backoff -----------------------------------------------------------------------------------


def backoff_delays(
    initial: float = 0.5,
    maximum: float = 8.0,
    factor: float = 2.0,
    jitter_random: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Endless full-jitter exponential backoff: ``uniform(0, min(maximum, initial * factor**n))``.

    ``jitter_random`` returns a number in ``[0, 1)``; pass a constant to make it exact:

    >>> delays = backoff_delays(1.0, 5.0, 2.0, jitter_random=lambda: 1.0)
    >>> [next(delays) for _ in range(5)]
    [1.0, 2.0, 4.0, 5.0, 5.0]
    """
    if initial < 0 or maximum < 0 or factor < 1:
        raise UsageError("backoff needs initial >= 0, maximum >= 0 and factor >= 1")
    ceiling = min(initial, maximum)
    while True:
        yield jitter_random() * ceiling
        ceiling = min(ceiling * factor, maximum)
