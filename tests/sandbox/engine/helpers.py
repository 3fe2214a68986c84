"""Shared builders and the engine invariants the tests check after every operation."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from krakenws.sandbox.engine import Engine, Event, OrderRequest, SeededIds
from krakenws.sandbox.engine.markets import round_up

D = Decimal
SECOND = 1_000_000
T0 = 1_700_000_000 * SECOND


def make_engine(tier: str = "starter", **kwargs: Any) -> Engine:
    """An engine at T0 with alice, bob and carol funded in USD, EUR, XBT and ETH."""
    engine = Engine(ids=SeededIds(seed=42), tier=tier, now=T0, **kwargs)
    for account in ("alice", "bob", "carol"):
        engine.deposit(account, "ZUSD", D("1000000"), now=T0)
        engine.deposit(account, "ZEUR", D("1000000"), now=T0)
        engine.deposit(account, "XXBT", D("100"), now=T0)
        engine.deposit(account, "XETH", D("1000"), now=T0)
    return engine


def req(
    type: str = "buy",
    ordertype: str = "limit",
    volume: Any = "1",
    price: Any = None,
    pair: str = "XBT/USD",
    **kwargs: Any,
) -> OrderRequest:
    """An OrderRequest with test-friendly defaults."""
    if price is None and ordertype == "limit":
        price = "100.0"
    return OrderRequest(
        pair=pair, type=type, ordertype=ordertype, volume=volume, price=price, **kwargs
    )


def kinds(events: tuple[Any, ...] | list[Event]) -> list[str]:
    """Event class names, in order."""
    return [type(event).__name__ for event in events]


def check_invariants(engine: Engine) -> None:
    """Conservation, uncrossed books, vol_exec == sum of fills, holds == what orders need."""
    ledger = engine.ledger
    for asset in engine.markets.assets:
        assert ledger.total(asset) == ledger.deposited.get(asset, D(0)), asset
        for account in ledger.accounts():
            assert ledger.balance(account, asset) >= 0, (account, asset)
            assert ledger.available(account, asset) >= 0, (account, asset)
    for pair in engine.markets:
        book = engine.book(pair.key)
        assert not book.is_crossed(), pair.wsname
    needed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    exact: dict[str, bool] = defaultdict(lambda: True)
    resting: dict[tuple[str, str, Decimal], Decimal] = defaultdict(Decimal)
    for account in ledger.accounts():
        fills: dict[str, list[Any]] = defaultdict(list)
        for trade in engine.trades(account):
            fills[trade.ordertxid].append(trade)
        for order in engine.orders(account):
            trades = fills.get(order.txid, [])
            viqc = "viqc" in order.oflags
            executed = sum((t.cost if viqc else t.vol for t in trades), D(0))
            assert order.vol_exec == executed, order.txid
            assert order.fee == sum((t.fee for t in trades), D(0))
            assert order.vol_exec <= order.vol
            if not order.is_open:
                continue
            pair = engine.markets.pair(order.pair)
            remaining = order.vol - order.vol_exec
            side = "bid" if order.type == "buy" else "ask"
            if order.triggered and order.ordertype.endswith("-limit"):
                resting[(pair.key, side, order.limitprice)] += remaining
            if order.ordertype != "limit" or "fcib" in order.oflags:
                exact[account] = False
                if order.ordertype == "limit" and order.status == "open":
                    resting[(pair.key, side, order.price)] += remaining
                continue
            if order.type == "sell":
                needed[(account, pair.base)] += remaining
            else:
                places = engine.markets.asset(pair.quote).decimals
                cost = round_up(remaining * order.price, places)
                taker = pair.fee_percent(D(0)) or D(0)
                needed[(account, pair.quote)] += cost + round_up(cost * taker / 100, places)
            if order.status == "open":
                resting[(pair.key, side, order.price)] += remaining
    for account in ledger.accounts():
        if not exact[account]:
            continue
        for asset in engine.markets.assets:
            assert ledger.held(account, asset) == needed[(account, asset)], (account, asset)
    for pair in engine.markets:
        book = engine.book(pair.key)
        for side in ("bid", "ask"):
            for level in book.levels(side):
                assert level.volume == resting[(pair.key, side, level.price)], (side, level)
