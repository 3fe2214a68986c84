"""Property tests: random order flow from several accounts never breaks the engine's invariants.

After every operation: each asset's total over all accounts and the house equals what was
deposited; no book is crossed; every order's vol_exec is the sum of its fills; holds equal what
the open orders need; book levels equal the resting orders' remaining volumes.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krakenws.errors import ExchangeError
from krakenws.sandbox.engine import OrderRequest

from .helpers import SECOND, T0, check_invariants, make_engine

ACCOUNTS = ("alice", "bob", "carol")
PAIRS = {"XBT/USD": ("100.0", "0.1"), "ETH/XBT": ("0.05000", "0.00001")}

volumes = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("3"), places=4)
limit_op = st.tuples(
    st.just("limit"),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(sorted(PAIRS)),
    st.sampled_from(["buy", "sell"]),
    st.integers(min_value=-10, max_value=10),
    volumes,
    st.sampled_from(["", "post", "fcib", "fciq"]),
    st.sampled_from(["GTC", "IOC", "GTD"]),
    st.sampled_from(["cancel_newest", "cancel_oldest", "cancel_both"]),
)
market_op = st.tuples(
    st.just("market"),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(sorted(PAIRS)),
    st.sampled_from(["buy", "sell"]),
    volumes,
    st.sampled_from(["", "fcib", "viqc"]),
)
cancel_op = st.tuples(st.just("cancel"), st.sampled_from(ACCOUNTS), st.integers(0, 20))
amend_op = st.tuples(
    st.just("amend"),
    st.sampled_from(ACCOUNTS),
    st.integers(0, 20),
    st.integers(min_value=-5, max_value=5),
    st.one_of(st.none(), volumes),
)
advance_op = st.tuples(st.just("advance"), st.integers(min_value=0, max_value=120))
operations = st.lists(
    st.one_of(limit_op, limit_op, limit_op, market_op, market_op, cancel_op, amend_op, advance_op),
    min_size=1,
    max_size=40,
)


def _ladder(engine: Any) -> None:
    """A market maker (carol) quoting five levels each side of both pairs."""
    for pair in PAIRS:
        for ticks in range(1, 6):
            for side, sign in (("buy", -1), ("sell", 1)):
                engine.add_order(
                    "carol",
                    OrderRequest(
                        pair=pair,
                        type=side,
                        ordertype="limit",
                        volume="0.5",
                        price=_price(pair, sign * ticks),
                    ),
                    T0,
                )


def _price(pair: str, ticks: int) -> Decimal:
    centre, tick = (Decimal(text) for text in PAIRS[pair])
    return centre + ticks * tick


def _apply(engine: Any, op: tuple[Any, ...], now: int) -> None:
    kind = op[0]
    if kind == "limit":
        _, account, pair, side, ticks, volume, oflags, tif, stp = op
        engine.add_order(
            account,
            OrderRequest(
                pair=pair,
                type=side,
                ordertype="limit",
                volume=volume,
                price=_price(pair, ticks),
                oflags=oflags or None,
                timeinforce=tif,
                expiretm="+30" if tif == "GTD" else None,
                stp_type=stp,
            ),
            now,
        )
    elif kind == "market":
        _, account, pair, side, volume, oflags = op
        if oflags == "viqc":
            if side == "sell":
                return
            volume = (volume * 10).quantize(Decimal("0.0001"))
        engine.add_order(
            account,
            OrderRequest(
                pair=pair, type=side, ordertype="market", volume=volume, oflags=oflags or None
            ),
            now,
        )
    elif kind == "cancel":
        _, account, index = op
        orders = engine.open_orders(account)
        if orders:
            engine.cancel_order(account, orders[index % len(orders)].txid, now)
    elif kind == "amend":
        _, account, index, ticks, volume = op
        orders = engine.open_orders(account)
        if orders:
            order = orders[index % len(orders)]
            pair = "XBT/USD" if order.pair == "XXBTZUSD" else "ETH/XBT"
            engine.amend_order(
                account, now, txid=order.txid, limit_price=_price(pair, ticks), volume=volume
            )
    else:
        engine.advance(now)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_random_order_flow_keeps_invariants(ops: list[tuple[Any, ...]]) -> None:
    engine = make_engine(tier="pro")
    _ladder(engine)
    now = T0
    check_invariants(engine)
    for op in ops:
        now += (op[1] if op[0] == "advance" else 1) * SECOND
        with contextlib.suppress(ExchangeError):
            _apply(engine, op, now)
        check_invariants(engine)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), st.integers(-3, 3), volumes),
        min_size=2,
        max_size=25,
    )
)
def test_tight_funds_never_overdraw(flow: list[tuple[str, int, Decimal]]) -> None:
    """Accounts with little money: holds and market affordability keep balances >= 0."""
    from krakenws.sandbox.engine import Engine, SeededIds

    engine = Engine(ids=SeededIds(seed=3), now=T0)
    for account in ACCOUNTS:
        engine.deposit(account, "ZUSD", Decimal("150"), now=T0)
        engine.deposit(account, "ZUSD", Decimal("0.0003"), now=T0)
        engine.deposit(account, "XXBT", Decimal("1.5"), now=T0)
    now = T0
    for index, (side, ticks, volume) in enumerate(flow):
        now += SECOND
        account = ACCOUNTS[index % 3]
        ordertype = "market" if ticks == 0 else "limit"
        price = None if ordertype == "market" else _price("XBT/USD", ticks)
        with contextlib.suppress(ExchangeError):
            engine.add_order(
                account,
                OrderRequest(
                    pair="XBT/USD", type=side, ordertype=ordertype, volume=volume, price=price
                ),
                now,
            )
        check_invariants(engine)
