"""Exempt accounts (the simulated market makers) skip the rate counter and the order caps."""

from __future__ import annotations

import pytest

from krakenws.errors import ExchangeError
from krakenws.sandbox.engine import Engine, SeededIds

from .helpers import T0, D, check_invariants, req


def _engine(**kwargs: object) -> Engine:
    engine = Engine(ids=SeededIds(seed=5), now=T0, **kwargs)  # type: ignore[arg-type]
    for account in ("mm", "user"):
        engine.deposit(account, "ZUSD", D("10000000"), now=T0)
        engine.deposit(account, "XXBT", D("1000"), now=T0)
    return engine


def _bids(engine: Engine, account: str, count: int) -> None:
    for n in range(count):
        engine.add_order(account, req(volume="0.01", price=f"{100 + n}.0"), now=T0)


def test_exempt_account_exceeds_open_order_cap_and_rate_threshold() -> None:
    engine = _engine(exempt_accounts={"mm"})
    assert engine.tier.max_open_orders == 60 and engine.tier.threshold == 60
    _bids(engine, "mm", 300)
    assert len(engine.open_orders("mm")) == 300
    assert engine.rate_count("mm", "XBT/USD", T0) == 0
    for order in engine.open_orders("mm")[:100]:
        engine.cancel_order("mm", order.txid, now=T0)
    assert engine.is_exempt("mm") and not engine.is_exempt("user")
    check_invariants(engine)


def test_other_accounts_keep_their_limits() -> None:
    engine = _engine(exempt_accounts={"mm"})
    _bids(engine, "user", 60)
    with pytest.raises(ExchangeError) as caught:
        _bids(engine, "user", 1)
    assert caught.value.kraken_error in (
        "EOrder:Orders limit exceeded",
        "EOrder:Rate limit exceeded",
    )


def test_exempt_later_drops_the_counter() -> None:
    engine = _engine()
    _bids(engine, "mm", 50)
    assert engine.rate_count("mm", "XBT/USD", T0) == 50
    engine.exempt("mm")
    assert engine.rate_count("mm", "XBT/USD", T0) == 0
    _bids(engine, "mm", 100)
    assert len(engine.open_orders("mm")) == 150


def test_exempt_accounts_still_obey_funds() -> None:
    engine = _engine(exempt_accounts={"poor"})
    with pytest.raises(ExchangeError) as caught:
        engine.add_order("poor", req(volume="1", price="100.0"), now=T0)
    assert caught.value.kraken_error == "EOrder:Insufficient funds"
