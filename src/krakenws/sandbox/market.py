"""Simulated order flow that keeps every public book of the sandbox alive. Pure.

:class:`MarketSimulator` plays several synthetic participants (market makers ``sim-mm-N`` and
takers ``sim-taker-N``) around a drifting mid price per pair. It never touches the engine: it
only *issues commands* (:data:`SimAction`: :class:`Deposit`, :class:`Place`, :class:`Cancel`)
that the exchange layer executes on the :class:`~krakenws.sandbox.engine.Engine` like any user's
request, so users' orders trade against the simulated liquidity and sweep its levels.

What it owns: the per-pair mid prices (a mean-reverting random walk in log price), a seeded
:class:`random.Random`, a Poisson-like schedule of events per pair, and a *shadow* of the price
levels its makers hold. Txids are never taken from results: the simulator asks a
:class:`MarketView` which orders rest at a price (so replaying its actions stays simple), and
forgets shadow levels on the wrong side of the current best price (they were traded away).

Rules it keeps:

* Makers never cross: a maker limit order is clamped one tick inside the opposite best, so the
  only trades the simulator causes come from deliberate taker orders (market, or IOC limits).
* Depth: each side holds at least ``main_levels`` levels on the main pairs (XBT/USD, ETH/USD,
  XBT/EUR, ETH/EUR, LTC/USD) and ``other_levels`` elsewhere, plus a margin; the tail of the
  ladder is extended or pruned to stay in that band.
* Every order is on the tick, at or above ``ordermin`` and ``costmin``; participants are funded
  with :data:`FUNDING` of each asset. Their accounts must be exempt from the engine's rate
  counter and order caps (``Engine(exempt_accounts=simulator.accounts)``).

Pure: no I/O, no clock reads (``now`` is passed in, integer µs), randomness only from the
simulator's own ``random.Random(seed)``. Same seed, same ``now`` sequence and same view answers
give the same actions. It imports nothing from the I/O shells.

>>> from krakenws.sandbox.engine import Engine, Markets, SeededIds
>>> markets = Markets.default()
>>> sim = MarketSimulator(markets, seed=1, pairs=["XBT/USD"], main_levels=20)
>>> engine = Engine(markets, ids=SeededIds(seed=1), exempt_accounts=sim.accounts)
>>> for action in sim.bootstrap(now=0):
...     _ = apply(engine, action, now=0)
>>> book = engine.book("XBT/USD")
>>> book.best_bid() < sim.mid_price("XBT/USD") < book.best_ask()
True
>>> for action in sim.step(2_000_000, EngineView(engine)):
...     _ = apply(engine, action, now=2_000_000)
>>> book.is_crossed()
False
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, TypeAlias

from krakenws.errors import UsageError
from krakenws.pairs import Pair
from krakenws.sandbox.engine.core import Engine, Outcome
from krakenws.sandbox.engine.markets import Markets, quantum, round_up
from krakenws.sandbox.engine.requests import OrderRequest

__all__ = [
    "SIMULATOR_ACCOUNTS",
    "DEFAULT_START_PRICES",
    "FUNDING",
    "MAIN_PAIRS",
    "Cancel",
    "Deposit",
    "EngineView",
    "MarketSimulator",
    "MarketView",
    "Place",
    "SimAction",
    "apply",
]

MAIN_PAIRS: frozenset[str] = frozenset({"XBT/USD", "ETH/USD", "XBT/EUR", "ETH/EUR", "LTC/USD"})
"""Pairs (wsnames) whose books hold ``main_levels`` (default 1000+) levels a side."""

DEFAULT_START_PRICES: Mapping[str, Decimal] = {
    "XBT/USD": Decimal("60000"),
    "XBT/EUR": Decimal("55000"),
    "ETH/USD": Decimal("3000"),
    "ETH/EUR": Decimal("2750"),
    "ETH/XBT": Decimal("0.05"),
    "LTC/USD": Decimal("80"),
    "LTC/EUR": Decimal("73"),
    "SOL/USD": Decimal("150"),
    "XDG/USD": Decimal("0.1"),
    "XDG/XBT": Decimal("0.0000017"),
    "USDC/USD": Decimal("1"),
}
"""Starting mid prices by wsname; other pairs start at ``100000 * tick_size``."""

FUNDING = Decimal(10) ** 12
"""What each participant is credited of every asset it trades: effectively unlimited."""

_SECOND = 1_000_000
_VOLATILITY = 1.5e-4  # per sqrt(second) of log price: about 85% a year, a lively crypto market
_REVERSION = 1 / 3600  # per second: the mid drifts but is pulled back to its start over hours
_PLACE, _CANCEL = 0.5, 0.38  # event mix; the rest (12%) are taker orders
_MAKERS, _TAKERS = 3, 2
SIMULATOR_ACCOUNTS: frozenset[str] = frozenset(
    [f"sim-mm-{n}" for n in range(1, _MAKERS + 1)]
    + [f"sim-taker-{n}" for n in range(1, _TAKERS + 1)]
)
"""Every simulator participant: open the exchange with them exempt from rate limits."""
_FAR = 1 << 62  # beyond any price, in ticks


# --- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deposit:
    """Credit ``amount`` of ``asset`` (REST code) to ``account`` (``Engine.deposit``)."""

    account: str
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Place:
    """Place ``request`` for ``account`` (``Engine.add_order``)."""

    account: str
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel ``txid`` of ``account`` (``Engine.cancel_order``)."""

    account: str
    txid: str


SimAction: TypeAlias = Deposit | Place | Cancel
"""One command the exchange layer executes for the simulator."""


def apply(engine: Engine, action: SimAction, now: int) -> Outcome:
    """Execute one action on ``engine`` and return the engine's outcome (events).

    Kraken errors propagate (``ExchangeError``); a caller driving a live exchange should log
    and skip them, since a user's order may have changed the book after the step was computed.
    """
    if isinstance(action, Deposit):
        return engine.deposit(action.account, action.asset, action.amount, now=now)
    if isinstance(action, Place):
        return engine.add_order(action.account, action.request, now=now)
    return engine.cancel_order(action.account, action.txid, now=now)


# --- the view ----------------------------------------------------------------------------------


class MarketView(Protocol):
    """What the simulator reads of the exchange: a read-only window on the books."""

    def depth(self, pair: str, side: str, count: int) -> Sequence[tuple[Decimal, Decimal]]:
        """The best ``count`` levels of ``side`` (``bid``/``ask``): ``(price, volume)``."""
        ...

    def resting_at(self, pair: str, side: str, price: Decimal) -> Sequence[tuple[str, str]]:
        """``(account, txid)`` of the orders resting at ``price``, first in line first."""
        ...


class EngineView:
    """:class:`MarketView` over a live :class:`~krakenws.sandbox.engine.Engine` (reads only)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def depth(self, pair: str, side: str, count: int) -> list[tuple[Decimal, Decimal]]:
        """The best ``count`` levels of a side of ``pair``'s book."""
        return [(lvl.price, lvl.volume) for lvl in self._engine.book(pair).depth(side, count)]

    def resting_at(self, pair: str, side: str, price: Decimal) -> list[tuple[str, str]]:
        """Who rests at ``price``: ``(account, txid)`` in queue order."""
        engine = self._engine
        return [(engine.order(txid).account, txid) for txid in engine.book(pair).queue(side, price)]


# --- per-pair state ----------------------------------------------------------------------------


class _Shadow:
    """The price levels (in ticks) the makers hold on one side, and how many orders at each.

    Keys are ``tick`` for bids and ``-tick`` for asks, ascending, so the best is always last
    and the far end of the ladder first.
    """

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys: list[int] = []
        self.counts: dict[int, int] = {}

    def add(self, tick: int) -> None:
        key = self.sign * tick
        if key in self.counts:
            self.counts[key] += 1
        else:
            self.counts[key] = 1
            insort(self.keys, key)

    def drop(self, tick: int, count: int = 1) -> None:
        key = self.sign * tick
        left = self.counts.get(key, 0) - count
        if left > 0:
            self.counts[key] = left
        elif key in self.counts:
            del self.counts[key]
            del self.keys[bisect_left(self.keys, key)]

    def forget_better_than(self, best: int | None) -> None:
        """Drop levels strictly better than the book's best: they were traded away."""
        if best is None:
            self.keys.clear()
            self.counts.clear()
            return
        limit = self.sign * best
        while self.keys and self.keys[-1] > limit:
            del self.counts[self.keys.pop()]

    def __len__(self) -> int:
        return len(self.keys)

    def tick(self, index: int) -> int:
        """The tick of the ``index``-th level, counted from the best (0 = best)."""
        return self.sign * self.keys[-1 - index]

    def worst(self) -> int:
        return self.sign * self.keys[0]


@dataclass(eq=False)
class _PairState:
    pair: Pair
    start: float
    """Start mid, in ticks."""
    log_mid: float
    min_levels: int
    target: int
    half_spread: int
    gap: float
    """Mean distance between ladder levels, in ticks."""
    min_volume: Decimal
    volume_places: int
    updated: int = 0
    bids: _Shadow = field(default_factory=lambda: _Shadow(1))
    asks: _Shadow = field(default_factory=lambda: _Shadow(-1))

    @property
    def mid(self) -> int:
        return max(1, round(math.exp(self.log_mid)))

    def shadow(self, side: str) -> _Shadow:
        return self.bids if side == "bid" else self.asks


class _StepBooks:
    """What the simulator believes about one pair during one step (view read once)."""

    def __init__(self, state: _PairState, view: MarketView) -> None:
        self.state = state
        self.view = view
        self.best: dict[str, int | None] = {
            side: self._best(view, state.pair, side) for side in ("bid", "ask")
        }
        self.touched: dict[str, int | None] = {"bid": None, "ask": None}
        """Per side, the worst price a taker of this step may have reached."""
        self.canceled: set[str] = set()

    @staticmethod
    def _best(view: MarketView, pair: Pair, side: str) -> int | None:
        top = view.depth(pair.wsname, side, 1)
        return _ticks(pair, top[0][0]) if top else None


def _ticks(pair: Pair, price: Decimal) -> int:
    return int((price / pair.tick_size).to_integral_value())


# --- the simulator -----------------------------------------------------------------------------


class MarketSimulator:
    """Seeded, deterministic order flow for the sandbox's public books.

    ``markets``: what the exchange trades. ``seed``: the only source of randomness. ``rate``:
    events (place, cancel or take) per second per pair; the default keeps a book-10 feed
    changing several times a second. ``pairs``: wsnames (or any spelling) to simulate, default
    all online pairs. ``start_prices``: mid prices by wsname, over :data:`DEFAULT_START_PRICES`.
    ``main_levels`` / ``other_levels``: the minimum number of levels per side on
    :data:`MAIN_PAIRS` / on the others (tests use small values; the book keeps ~10% more).
    """

    def __init__(
        self,
        markets: Markets,
        *,
        seed: int,
        rate: float = 10.0,
        pairs: Iterable[str] | None = None,
        start_prices: Mapping[str, Decimal] | None = None,
        main_levels: int = 1000,
        other_levels: int = 20,
    ) -> None:
        if not rate > 0:
            raise UsageError(f"rate must be positive, got {rate!r}")
        if main_levels < 1 or other_levels < 1:
            raise UsageError("level counts must be positive")
        self.markets = markets
        self.rate = rate
        self._rng = random.Random(seed)
        self.makers = tuple(f"sim-mm-{n}" for n in range(1, _MAKERS + 1))
        self.takers = tuple(f"sim-taker-{n}" for n in range(1, _TAKERS + 1))
        self._mine = frozenset(self.makers)
        chosen = (
            [markets.pair(name) for name in pairs]
            if pairs is not None
            else [pair for pair in markets if pair.status == "online"]
        )
        prices = {**DEFAULT_START_PRICES, **(start_prices or {})}
        self._states: dict[str, _PairState] = {}
        for pair in chosen:
            main = pair.wsname in MAIN_PAIRS
            minimum = main_levels if main else other_levels
            start = prices.get(pair.wsname, pair.tick_size * 100_000)
            self._states[pair.wsname] = self._pair_state(pair, start, minimum, main)
        self._queue: list[tuple[int, int, str]] = []
        self._sequence = 0
        self._now: int | None = None

    # --- public ------------------------------------------------------------------------------

    @property
    def accounts(self) -> frozenset[str]:
        """Every participant account (all must be exempt from the engine's rate limits)."""
        return frozenset(self.makers + self.takers)

    @property
    def pairs(self) -> list[str]:
        """The simulated pairs' wsnames."""
        return list(self._states)

    def mid_price(self, pair: str) -> Decimal:
        """The current fair mid of a pair, on its tick (e.g. to seed a last price)."""
        state = self._states[self.markets.pair(pair).wsname]
        return self._price(state.pair, state.mid)

    def min_levels(self, pair: str) -> int:
        """The number of levels each side of ``pair`` is kept above."""
        return self._states[self.markets.pair(pair).wsname].min_levels

    def bootstrap(self, now: int) -> list[SimAction]:
        """Funding for every participant, then the initial ladders (best levels first).

        Call once, on an engine without simulator orders; ``now`` starts the schedule.
        """
        if self._now is not None:
            raise UsageError("bootstrap() was already called")
        self._now = now
        actions: list[SimAction] = []
        assets = sorted({a for s in self._states.values() for a in (s.pair.base, s.pair.quote)})
        for account in sorted(self.accounts):
            actions.extend(Deposit(account, asset, FUNDING) for asset in assets)
        for state in self._states.values():
            state.updated = now
            mid = state.mid
            for side in ("bid", "ask"):
                sign = 1 if side == "bid" else -1
                tick = mid - sign * state.half_spread
                for _ in range(state.target):
                    actions.append(self._maker_order(state, side, tick))
                    state.shadow(side).add(tick)
                    tick -= sign * self._gap(state)
            self._schedule(state.pair.wsname, now)
        return actions

    def step(self, now: int, view: MarketView) -> list[SimAction]:
        """The actions due between the previous call and ``now``, in time order.

        ``view`` must show the books as they are now (after every earlier action ran). Cheap:
        a few view reads per pair that has an event due.
        """
        if self._now is None:
            raise UsageError("call bootstrap() before step()")
        if now < self._now:
            raise UsageError(f"time went backwards: {now} < {self._now}")
        self._now = now
        actions: list[SimAction] = []
        books: dict[str, _StepBooks] = {}
        while self._queue and self._queue[0][0] <= now:
            at, _, name = heapq.heappop(self._queue)
            state = self._states[name]
            step_books = books.get(name)
            if step_books is None:
                step_books = books[name] = _StepBooks(state, view)
                state.bids.forget_better_than(step_books.best["bid"])
                state.asks.forget_better_than(step_books.best["ask"])
            self._drift(state, at)
            self._event(step_books, actions)
            self._maintain(step_books, actions)
            self._schedule(name, at)
        return actions

    # --- setup -------------------------------------------------------------------------------

    def _pair_state(self, pair: Pair, start: Decimal, minimum: int, main: bool) -> _PairState:
        start_ticks = _ticks(pair, start)
        target = minimum + max(5, minimum // 10)
        span = (0.03 if main else 0.02) * start_ticks
        half_spread = max(1, round(start_ticks * 2e-5))
        if start_ticks < 4 * (target + half_spread):
            raise UsageError(
                f"{pair.wsname}: start price {start} has too few ticks for {target} levels a side"
            )
        floor_price = pair.tick_size * max(1, start_ticks // 8)  # far below the mid's floor
        need = Decimal(0)
        if pair.costmin is not None:
            need = round_up(pair.costmin / floor_price, pair.lot_decimals)
        min_volume = max(pair.ordermin or Decimal(0), need, quantum(pair.lot_decimals))
        volume_places = min(pair.lot_decimals, max(0, 2 - min_volume.adjusted()))
        return _PairState(
            pair=pair,
            start=float(start_ticks),
            log_mid=math.log(start_ticks),
            min_levels=minimum,
            target=target,
            half_spread=half_spread,
            gap=max(1.0, span / target),
            min_volume=min_volume,
            volume_places=volume_places,
        )

    # --- schedule and drift ------------------------------------------------------------------

    def _schedule(self, name: str, after: int) -> None:
        delay = max(1, round(self._rng.expovariate(self.rate) * _SECOND))
        self._sequence += 1
        heapq.heappush(self._queue, (after + delay, self._sequence, name))

    def _drift(self, state: _PairState, at: int) -> None:
        seconds = (at - state.updated) / _SECOND
        state.updated = at
        if seconds <= 0:
            return
        pull = -_REVERSION * seconds * (state.log_mid - math.log(state.start))
        shock = self._rng.gauss(0.0, _VOLATILITY * math.sqrt(seconds))
        floor = math.log(state.start / 4)
        state.log_mid = max(floor, state.log_mid + pull + shock)

    # --- events ------------------------------------------------------------------------------

    def _event(self, books: _StepBooks, actions: list[SimAction]) -> None:
        draw = self._rng.random()
        side = "bid" if self._rng.random() < 0.5 else "ask"
        if draw < _PLACE:
            self._place_near_mid(books, side, actions)
        elif draw < _PLACE + _CANCEL:
            self._cancel_near_top(books, side, actions)
        else:
            self._take(books, actions)

    def _maintain(self, books: _StepBooks, actions: list[SimAction]) -> None:
        """Keep each side's ladder between ``target`` and ``target + slack`` levels."""
        state = books.state
        slack = max(5, state.target // 20)
        for side in ("bid", "ask"):
            shadow = state.shadow(side)
            sign = shadow.sign
            for _ in range(8):  # bounded work per event; a deep sweep refills over a few events
                if len(shadow) >= state.target:
                    break
                if shadow:
                    tick = shadow.worst() - sign * self._gap(state)
                else:
                    tick = state.mid - sign * state.half_spread
                clamped = self._clamp(books, side, tick)
                if clamped is None:
                    break
                actions.append(self._maker_order(state, side, clamped))
                self._placed(books, side, clamped)
            while len(shadow) > state.target + slack:  # each call forgets or cancels one
                if not self._cancel_at(books, side, shadow.worst(), actions):
                    break

    def _clamp(self, books: _StepBooks, side: str, tick: int) -> int | None:
        """A maker price that does not cross the opposite best; None if not positive."""
        opposite = books.best["ask" if side == "bid" else "bid"]
        if opposite is not None:
            tick = min(tick, opposite - 1) if side == "bid" else max(tick, opposite + 1)
        return tick if tick > 0 else None

    def _placed(self, books: _StepBooks, side: str, tick: int) -> None:
        books.state.shadow(side).add(tick)
        best = books.best[side]
        better = best is None or (tick > best if side == "bid" else tick < best)
        if better:
            books.best[side] = tick

    def _place_near_mid(self, books: _StepBooks, side: str, actions: list[SimAction]) -> None:
        state = books.state
        sign = 1 if side == "bid" else -1
        offset = state.half_spread + int(self._rng.expovariate(1 / (1.5 * state.gap)))
        tick = self._clamp(books, side, state.mid - sign * offset)
        if tick is not None:
            actions.append(self._maker_order(state, side, tick))
            self._placed(books, side, tick)

    def _cancel_near_top(self, books: _StepBooks, side: str, actions: list[SimAction]) -> None:
        shadow = books.state.shadow(side)
        if shadow:
            index = min(len(shadow) - 1, int(self._rng.expovariate(1 / 4)))
            self._cancel_at(books, side, shadow.tick(index), actions)

    def _cancel_at(self, books: _StepBooks, side: str, tick: int, actions: list[SimAction]) -> bool:
        """Cancel the makers' first order at ``tick`` (True), or forget the level if the view
        shows none there any more; False, changing nothing, if a taker of this step may have
        reached it."""
        state = books.state
        touched = books.touched[side]
        if touched is not None and (tick >= touched if side == "bid" else tick <= touched):
            return False
        price = self._price(state.pair, tick)
        own = [
            (account, txid)
            for account, txid in books.view.resting_at(state.pair.wsname, side, price)
            if account in self._mine and txid not in books.canceled
        ]
        shadow = state.shadow(side)
        shadow.drop(tick, count=_FAR)
        if not own:
            return True
        account, txid = own[0]
        for _ in range(len(own) - 1):
            shadow.add(tick)
        books.canceled.add(txid)
        actions.append(Cancel(account, txid))
        return True

    def _take(self, books: _StepBooks, actions: list[SimAction]) -> None:
        """A taker order: toward the fair mid when the book lags it, else either way."""
        state = books.state
        pair = state.pair
        mid = state.mid
        best_bid, best_ask = books.best["bid"], books.best["ask"]
        if best_ask is not None and best_ask < mid:
            buy = True
        elif best_bid is not None and best_bid > mid:
            buy = False
        else:
            buy = self._rng.random() < 0.5
        side = "ask" if buy else "bid"  # the side it takes from
        levels = list(books.view.depth(pair.wsname, side, 30))
        if not levels:
            return
        count = 1 + min(int(self._rng.expovariate(1.0)), 5)
        ticks = [_ticks(pair, price) for price, _ in levels]
        lagging = sum(1 for tick in ticks if (tick < mid if buy else tick > mid))
        count = min(max(count, lagging), len(levels))
        taken = levels[:count]
        volume = sum((vol for _, vol in taken), Decimal(0)) * Decimal(
            str(round(self._rng.uniform(0.5, 1.0), 3))
        )
        volume = max(self._round_volume(state, volume), state.min_volume)
        limit = taken[-1][0]
        account = self.takers[self._rng.randrange(len(self.takers))]
        kind = "buy" if buy else "sell"
        if self._rng.random() < 0.25:
            request = OrderRequest(
                pair=pair.wsname, type=kind, ordertype="market", volume=format(volume, "f")
            )
            reached = 0 if side == "bid" else _FAR  # may sweep past ``limit``: the whole side
        else:
            request = OrderRequest(
                pair=pair.wsname, type=kind, ordertype="limit", price=format(limit, "f"),
                volume=format(volume, "f"), timeinforce="IOC",
            )  # fmt: skip
            reached = _ticks(pair, limit)
        previous = books.touched[side]
        if previous is not None:
            reached = min(previous, reached) if side == "bid" else max(previous, reached)
        books.touched[side] = reached
        actions.append(Place(account, request))

    # --- orders ------------------------------------------------------------------------------

    def _gap(self, state: _PairState) -> int:
        if state.gap <= 1:
            return 1
        return 1 + int(self._rng.expovariate(1 / (state.gap - 1)))

    def _price(self, pair: Pair, tick: int) -> Decimal:
        return (tick * pair.tick_size).quantize(quantum(pair.pair_decimals))

    def _round_volume(self, state: _PairState, volume: Decimal) -> Decimal:
        return round_up(volume, state.volume_places)

    def _maker_order(self, state: _PairState, side: str, tick: int) -> Place:
        multiple = Decimal(str(round(1 + self._rng.expovariate(1 / 20), 2)))
        volume = self._round_volume(state, state.min_volume * multiple)
        account = self.makers[self._rng.randrange(len(self.makers))]
        request = OrderRequest(
            pair=state.pair.wsname,
            type="buy" if side == "bid" else "sell",
            ordertype="limit",
            price=format(self._price(state.pair, tick), "f"),
            volume=format(volume, "f"),
        )
        return Place(account, request)
