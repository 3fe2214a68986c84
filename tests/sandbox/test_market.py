"""The simulated markets: deterministic, never crossed, deep, lively, and tradeable by users."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from krakenws.errors import UsageError
from krakenws.sandbox.engine import Engine, Markets, OrderRequest, PublicTrade, SeededIds
from krakenws.sandbox.market import (
    MAIN_PAIRS,
    Cancel,
    Deposit,
    EngineView,
    MarketSimulator,
    Place,
    SimAction,
    apply,
)

SECOND = 1_000_000
T0 = 1_700_000_000 * SECOND
MARKETS = Markets.default()


def _setup(seed: int = 7, **kwargs: object) -> tuple[MarketSimulator, Engine]:
    sim = MarketSimulator(MARKETS, seed=seed, **kwargs)  # type: ignore[arg-type]
    engine = Engine(MARKETS, ids=SeededIds(seed=1), now=T0, exempt_accounts=sim.accounts)
    for action in sim.bootstrap(T0):
        apply(engine, action, T0)
    return sim, engine


def _run(
    sim: MarketSimulator, engine: Engine, seconds: float, hz: int = 20
) -> Iterator[tuple[int, list[SimAction], list[object]]]:
    """Step at ``hz``; yields (now, actions, events) after applying each step."""
    for n in range(1, int(seconds * hz) + 1):
        now = T0 + n * SECOND // hz
        actions = sim.step(now, EngineView(engine))
        events: list[object] = []
        for action in actions:
            events.extend(apply(engine, action, now).events)
            if isinstance(action, Place):
                assert not engine.book(action.request.pair).is_crossed()
        yield now, actions, events


def _levels(engine: Engine, pair: str, side: str) -> int:
    return sum(1 for _ in engine.book(pair).levels(side))


def test_same_seed_same_actions_other_seed_other_actions() -> None:
    def record(seed: int) -> list[SimAction]:
        sim, engine = _setup(seed, main_levels=30, other_levels=10)
        out: list[SimAction] = []
        for _, actions, _ in _run(sim, engine, 5):
            out.extend(actions)
        return out

    first = record(3)
    assert first == record(3)
    assert first != record(4)
    assert any(isinstance(a, Cancel) for a in first)


def test_bootstrap_funds_and_ladders() -> None:
    sim = MarketSimulator(MARKETS, seed=1)
    actions = sim.bootstrap(T0)
    deposits = [a for a in actions if isinstance(a, Deposit)]
    assert {a.account for a in deposits} == sim.accounts
    assert all(a.amount == Decimal(10) ** 12 for a in deposits)
    assert sim.accounts >= {"sim-mm-1", "sim-taker-1"}
    places = [a for a in actions if isinstance(a, Place)]
    for name in sim.pairs:
        pair = MARKETS.pair(name)
        mine = [a.request for a in places if a.request.pair == name]
        assert len(mine) >= 2 * (1000 if name in MAIN_PAIRS else 20)
        for request in mine:
            price, volume = Decimal(str(request.price)), Decimal(str(request.volume))
            assert pair.is_on_tick(price) and price > 0
            assert volume >= (pair.ordermin or 0)
            assert volume * price >= (pair.costmin or 0)
    assert sim.mid_price("XBT/USD") == Decimal("60000.0")
    assert sim.mid_price("XDG/USD") == Decimal("0.1000000")
    with pytest.raises(UsageError):
        sim.bootstrap(T0)


def test_sixty_seconds_uncrossed_deep_lively_and_trading() -> None:
    sim, engine = _setup(main_levels=40, other_levels=10)
    start = {name: sim.mid_price(name) for name in sim.pairs}
    trades = 0
    changes = 0
    top = engine.book("XBT/USD").depth("bid", 10) + engine.book("XBT/USD").depth("ask", 10)
    for _, _, events in _run(sim, engine, 60):
        trades += sum(1 for event in events if isinstance(event, PublicTrade))
        for name in sim.pairs:
            for side in ("bid", "ask"):
                assert _levels(engine, name, side) >= sim.min_levels(name), (name, side)
        book = engine.book("XBT/USD")
        now_top = book.depth("bid", 10) + book.depth("ask", 10)
        changes += now_top != top
        top = now_top
    assert trades > 100
    assert changes / 60 >= 3  # a book-10 feed changes several times a second
    moved = [name for name in sim.pairs if sim.mid_price(name) != start[name]]
    assert len(moved) == len(sim.pairs)
    assert all(sim.mid_price(name) > 0 for name in sim.pairs)
    for name in sim.pairs:  # the book follows the drifting mid
        book = engine.book(name)
        bid, ask, mid = book.best_bid(), book.best_ask(), sim.mid_price(name)
        assert bid is not None and ask is not None
        assert abs((bid + ask) / 2 - mid) / mid < Decimal("0.01"), name


def test_full_depth_on_main_pairs() -> None:
    sim, engine = _setup(rate=20.0)
    for now, _, _ in _run(sim, engine, 10, hz=10):
        if now % SECOND == 0:
            for name in sim.pairs:
                floor = 1000 if name in MAIN_PAIRS else 10
                for side in ("bid", "ask"):
                    assert _levels(engine, name, side) >= floor, (name, side)


def _user(engine: Engine) -> None:
    engine.deposit("alice", "ZUSD", Decimal("10000000"), now=engine.now)
    engine.deposit("alice", "XXBT", Decimal("100"), now=engine.now)


def test_user_market_order_sweeps_sim_levels() -> None:
    sim, engine = _setup(main_levels=30, other_levels=10)
    list(_run(sim, engine, 2))
    _user(engine)
    asks = engine.book("XBT/USD").depth("ask", 5)
    volume = sum((level.volume for level in asks[:4]), Decimal(0))
    now = T0 + 3 * SECOND
    result = engine.add_order(
        "alice", OrderRequest(pair="XBT/USD", type="buy", ordertype="market", volume=volume), now
    )
    assert result.txid is not None
    order = engine.order(result.txid)
    assert order.status == "closed" and order.vol_exec == volume
    fills = engine.trades("alice")
    assert len({trade.price for trade in fills}) >= 4
    assert engine.book("XBT/USD").best_ask() == asks[4].price
    assert len(list(sim.step(now + SECOND, EngineView(engine)))) > 0


def test_user_limit_order_far_from_market_is_accepted() -> None:
    sim, engine = _setup(main_levels=30, other_levels=10)
    _user(engine)
    mid = sim.mid_price("XBT/USD")
    for side, factor in (("buy", Decimal("0.85")), ("sell", Decimal("1.15"))):
        price = (mid * factor).quantize(Decimal("0.1"))
        result = engine.add_order(
            "alice",
            OrderRequest(pair="XBT/USD", type=side, ordertype="limit", volume="0.01", price=price),
            T0,
        )
        assert result.txid is not None
        assert engine.order(result.txid).status == "open"
    list(_run(sim, engine, 5))
    assert all(order.status == "open" for order in engine.open_orders("alice"))


def test_step_needs_bootstrap_and_forward_time() -> None:
    sim = MarketSimulator(MARKETS, seed=1, pairs=["XBT/USD"], main_levels=10)
    engine = Engine(MARKETS, ids=SeededIds(seed=1), exempt_accounts=sim.accounts)
    with pytest.raises(UsageError):
        sim.step(T0, EngineView(engine))
    sim.bootstrap(T0)
    with pytest.raises(UsageError):
        sim.step(T0 - 1, EngineView(engine))
    with pytest.raises(UsageError):
        MarketSimulator(MARKETS, seed=1, rate=0)
    assert sim.pairs == ["XBT/USD"]
