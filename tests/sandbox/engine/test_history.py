"""History set aside for snapshots: detach_history leaves the live state, attach_history and
restore_history give the engine its history back, and matching goes on as before."""

from __future__ import annotations

import pickle

from krakenws.sandbox.engine import Engine, OrderView
from tests.sandbox.engine.helpers import SECOND, T0, make_engine, req


def trade_some(engine: Engine, now: int) -> list[str]:
    """A fill between bob and alice, a cancel, and two orders left resting."""
    ask = engine.add_order("bob", req("sell", volume="2", price="100.0"), now).txid
    engine.add_order("alice", req("buy", volume="1", price="100.0"), now + 1)
    gone = engine.add_order("alice", req("buy", volume="1", price="90.0"), now + 2).txid
    assert gone is not None and ask is not None
    engine.cancel_order("alice", gone, now + 3)
    rest = engine.add_order("carol", req("buy", volume="1", price="80.0", userref=3), now + 4)
    assert rest.txid is not None
    return [ask, gone, rest.txid]


def everything(engine: Engine) -> dict[str, object]:
    accounts = ("alice", "bob", "carol", engine.ledger.house)
    return {
        "orders": {a: engine.orders(a) for a in accounts},
        "open": {a: engine.open_orders(a) for a in accounts},
        "trades": {a: engine.trades(a) for a in accounts},
        "entries": list(engine.ledger.entries),
    }


def test_detach_leaves_the_live_state_and_attach_puts_history_back() -> None:
    engine = make_engine()
    ask, gone, rest = trade_some(engine, T0 + SECOND)
    before = everything(engine)
    history = engine.detach_history()
    live = {a: [o.txid for o in engine.orders(a)] for a in ("alice", "bob", "carol")}
    assert live == {"alice": [], "bob": [ask], "carol": [rest]}
    assert engine.trades("alice") == [] and engine.ledger.entries == []
    assert engine.order(ask).status == "open"  # bob's half-filled ask is live
    engine.attach_history(history)
    assert everything(engine) == before
    assert isinstance(engine.order(gone), OrderView) and engine.order(gone).status == "canceled"


def test_an_engine_without_its_history_decides_exactly_like_one_that_kept_it() -> None:
    """No command reads history: an engine restored from its live state alone (as a sandbox
    snapshot is) goes on with the same ids, fills, holds and events as its twin."""
    original, twin = make_engine(), make_engine()
    trade_some(original, T0 + SECOND)
    trade_some(twin, T0 + SECOND)
    original.detach_history()
    restored = pickle.loads(pickle.dumps(original))
    live = {a: restored.open_orders(a) for a in ("alice", "bob", "carol")}
    assert live == {a: twin.open_orders(a) for a in ("alice", "bob", "carol")}
    for engine in (restored, twin):
        engine.detach_history()  # compare what happens from here on

    def moves(engine: Engine, now: int) -> list[object]:
        return [
            engine.add_order("alice", req("sell", volume="2", price="80.0"), now).events,
            engine.add_order("alice", req("buy", volume="1", price="101.0"), now + 1).events,
            engine.cancel_all("bob", now + 2).events,
            engine.add_order("bob", req("buy", ordertype="market", volume="0.5"), now + 3).events,
        ]

    assert moves(restored, T0 + 2 * SECOND) == moves(twin, T0 + 2 * SECOND)
    assert everything(restored) == everything(twin)
    for account in ("alice", "bob", "carol"):
        assert restored.ledger.balances(account) == twin.ledger.balances(account)
