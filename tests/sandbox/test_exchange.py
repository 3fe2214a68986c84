"""The durable exchange: journal + snapshots survive restarts and SIGKILL; keys, nonces, tokens."""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from krakenws.errors import (
    InternalError,
    InvalidArgumentsError,
    OrderRateLimitError,
    UsageError,
)
from krakenws.sandbox import exchange as exchange_module
from krakenws.sandbox.engine import Event, OrderRequest, TradeExecuted
from krakenws.sandbox.exchange import WS_TOKEN_TTL, Exchange, decode_args, encode_args

D = Decimal
SECOND = 1_000_000
T0 = 1_700_000_000 * SECOND
ACCOUNTS = ("alice", "bob", "house")


class Clock:
    """A settable clock (µs); each reading moves it on by 1 ms unless frozen."""

    def __init__(self, start: int = T0, step: int = 1000) -> None:
        self.t = start
        self.step = step

    def __call__(self) -> int:
        self.t += self.step
        return self.t


def limit(side: str, volume: str, price: str, **kwargs: Any) -> OrderRequest:
    return OrderRequest(
        pair="XBT/USD", type=side, ordertype="limit", volume=volume, price=price, **kwargs
    )


def open_exchange(path: Path, clock: Clock, **kwargs: Any) -> Exchange:
    return Exchange.open(str(path), clock=clock, seed=7, **kwargs)


def first_half(ex: Exchange) -> list[str]:
    """Deposits, resting orders on both sides, a crossing fill, a cancel, a rejection."""
    ex.deposit("alice", "ZUSD", D("100000"))
    ex.deposit("bob", "XXBT", D("10"))
    txids = [
        ex.add_order("bob", limit("sell", "1", "30000.0")).txid,
        ex.add_order("bob", limit("sell", "1", "31000.0")).txid,
        ex.add_order("alice", limit("buy", "0.5", "30000.0")).txid,  # crosses: a trade
        ex.add_order("alice", limit("buy", "0.2", "20000.0", userref=5)).txid,
        ex.add_order("alice", limit("buy", "0.2", "21000.0")).txid,
    ]
    ex.cancel_order("alice", txids[-1])
    with pytest.raises(InvalidArgumentsError):  # rejected calls are journaled too
        ex.add_order("alice", limit("buy", "-1", "20000.0"))
    return [t for t in txids if t is not None]


def second_half(ex: Exchange) -> None:
    """More trading after (possibly) a restart: resting orders must still match."""
    ex.add_order("alice", limit("buy", "0.7", "30000.0"))  # takes the rest of bob's first ask
    ex.amend_order("bob", txid=ex.engine.open_orders("bob")[0].txid, volume="0.5")
    ex.cancel_order("alice", 5)
    ex.cancel_all_orders_after("bob", 60)
    ex.advance()


def state(ex: Exchange) -> dict[str, Any]:
    """Everything observable: the engine's live state, the history (the exchange reads it
    from the store), and the derived tables themselves."""
    engine = ex.engine
    clone = pickle.loads(pickle.dumps(engine))  # next ids without disturbing the original
    return {
        "orders": {a: ex.orders(a) for a in ACCOUNTS},
        "open": {a: engine.open_orders(a) for a in ACCOUNTS},
        "trades": {a: ex.trades(a) for a in ACCOUNTS},
        "ledger": {a: ex.ledger(a) for a in ACCOUNTS},
        "balances": {a: engine.ledger.balances(a) for a in ACCOUNTS},
        "held": {a: engine.held(a, "ZUSD") for a in ACCOUNTS},
        "book": [(lvl.price, lvl.volume) for lvl in engine.book("XBT/USD").levels("ask")],
        "rate": engine.rate_count("bob", "XBT/USD", engine.now),
        "dms": engine.dead_man_switch("bob"),
        "now": engine.now,
        "next_id": clone._ids.next("O"),
        "stored_orders": ex.store.orders(),
        "stored_trades": ex.store.trades(),
        "stored_ledger": ex.store.ledger(),
        "stored_balances": ex.store.balances(),
    }


def test_stored_rows_mirror_the_engine(tmp_path: Path) -> None:
    with open_exchange(tmp_path / "a.db", Clock()) as ex:
        first_half(ex)
        second_half(ex)
        for account in ACCOUNTS:
            assert ex.store.orders(account) == ex.engine.orders(account)
            assert ex.store.orders(account, open_only=True) == ex.engine.open_orders(account)
            assert ex.store.trades(account) == ex.engine.trades(account)
            stored = {asset: v for (_, asset), v in ex.store.balances(account).items()}
            assert stored == {k: v for k, v in ex.engine.ledger.balances(account).items() if v}


@pytest.mark.parametrize("snapshot_every", [1_000_000, 3])
def test_restart_resumes_exactly_like_a_twin_that_never_stopped(
    tmp_path: Path, snapshot_every: int
) -> None:
    twin_clock, clock = Clock(), Clock()
    with open_exchange(tmp_path / "twin.db", twin_clock) as twin:
        first_half(twin)
        second_half(twin)
        expected = state(twin)

    ex = open_exchange(tmp_path / "a.db", clock, snapshot_every=snapshot_every)
    first_half(ex)
    before = state(ex)
    ex.close(snapshot=False)
    with open_exchange(tmp_path / "a.db", clock, snapshot_every=snapshot_every) as ex:
        assert bool(list(ex.store.snapshots())) == (snapshot_every == 3)
        assert state(ex) == before
        second_half(ex)
        assert state(ex) == expected
    with open_exchange(tmp_path / "a.db", clock) as ex:  # and once more, from the close snapshot
        assert state(ex) == expected


def test_a_snapshot_holds_live_state_only_and_restart_gives_history_back(
    tmp_path: Path,
) -> None:
    """Ended orders, fills and ledger entries never change and are rows of the store: the
    snapshot leaves them out (and the engine lets go of them), so it stays the size of what is
    open however long the history, and a restarted exchange equals a twin that never stopped
    (its history read from the store, its next ids and decisions the same)."""

    def churn(ex: Exchange, start: int, stop: int) -> None:
        for n in range(start, stop):
            ex.add_order("alice", limit("buy", "0.01", f"{20000 + n}.0"))
            if n % 10 == 9:
                ex.cancel_all("alice")

    def tail(ex: Exchange) -> None:
        ex.add_order("alice", limit("buy", "0.2", "30000.0"))  # fills against bob: history
        ex.add_order("alice", limit("buy", "0.01", "10000.0", userref=9))  # rests

    def snapshot_size(ex: Exchange) -> int:
        ex.snapshot()
        return len(next(iter(ex.store.snapshots())).data)

    twin_clock, clock = Clock(), Clock()
    with open_exchange(tmp_path / "twin.db", twin_clock, tier="unlimited") as twin:
        first_half(twin)
        churn(twin, 0, 400)
        tail(twin)
        expected = state(twin)
    ex = open_exchange(tmp_path / "a.db", clock, tier="unlimited")
    first_half(ex)
    churn(ex, 0, 20)
    small = snapshot_size(ex)
    churn(ex, 20, 400)
    tail(ex)
    large = snapshot_size(ex)
    assert len(ex.orders("alice")) > 400 and len(ex.engine.orders("alice")) < 10
    assert large < small * 1.1, (small, large)  # 400 orders later: no bigger
    assert state(ex) == expected  # letting go of the history changed nothing observable
    ex.close(snapshot=False)
    with open_exchange(tmp_path / "a.db", clock, tier="unlimited") as ex:
        assert state(ex) == expected
        first = ex.order(expected["orders"]["alice"][0].txid)
        assert first is not None and first.status == "closed"
        churn(ex, 400, 450)  # and it goes on like its twin would
        tail(ex)
        assert ex.orders("alice")[-1].userref == 9


def test_resting_orders_match_after_restart(tmp_path: Path) -> None:
    clock = Clock()
    with open_exchange(tmp_path / "a.db", clock) as ex:
        ex.deposit("alice", "ZUSD", D("100000"))
        ex.deposit("bob", "XXBT", D("10"))
        ask = ex.add_order("bob", limit("sell", "1", "30000.0")).txid
    with open_exchange(tmp_path / "a.db", clock) as ex:
        seen: list[Event] = []
        ex.subscribe(seen.extend)
        ex.add_order("alice", limit("buy", "1", "30000.0"))
        assert ex.engine.order(ask).status == "closed"
        assert ex.store.order(ask).status == "closed"  # type: ignore[union-attr]
        assert sum(isinstance(e, TradeExecuted) for e in seen) == 2


def test_corrupt_or_foreign_snapshots_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    with open_exchange(tmp_path / "a.db", clock, snapshot_every=4) as ex:
        first_half(ex)
        expected = state(ex)
    with open_exchange(tmp_path / "a.db", clock) as ex:
        assert len(list(ex.store.snapshots())) == 2
        with ex.store.transaction() as db:
            db.execute("UPDATE snapshots SET data = X'8004DEADBEEF'")
    ex.close(snapshot=False)
    with open_exchange(tmp_path / "a.db", clock) as ex:
        assert state(ex) == expected
        ex.close(snapshot=False)
    monkeypatch.setattr(exchange_module, "code_fingerprint", lambda: "other code")
    with open_exchange(tmp_path / "a.db", clock) as ex:
        assert state(ex) == expected


def test_failing_calls_are_journaled_and_replayed(tmp_path: Path) -> None:
    clock = Clock(step=0)
    with open_exchange(tmp_path / "a.db", clock) as ex:
        ex.deposit("bob", "XXBT", D("10"))
        ask = ex.add_order("bob", limit("sell", "0.1", "30000.0")).txid
        assert ask is not None
        rejected = 0
        while True:  # cancel costs +8 when young: the starter counter (60) soon refuses
            try:
                ex.amend_order("bob", txid=ask, volume="0.2")
            except OrderRateLimitError:
                rejected += 1
                break
        counter = ex.engine.rate_count("bob", "XBT/USD", ex.now())
        assert rejected and ex.store.journal_position() > 3
        assert list(ex.store.journal())[-1].error == "EOrder:Rate limit exceeded"
    with open_exchange(tmp_path / "a.db", clock, snapshot_every=10**6) as ex:
        assert ex.engine.rate_count("bob", "XBT/USD", ex.now()) == counter


def test_reopen_with_other_settings_is_refused(tmp_path: Path) -> None:
    Exchange.open(str(tmp_path / "a.db"), seed=1).close()
    with pytest.raises(UsageError, match="same seed"):
        Exchange.open(str(tmp_path / "a.db"), seed=2)
    with Exchange.open(str(tmp_path / "a.db"), seed=1), pytest.raises(UsageError, match="in use"):
        Exchange.open(str(tmp_path / "a.db"), seed=1)


def test_a_failed_commit_stops_the_exchange_until_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    ex = open_exchange(tmp_path / "a.db", clock)
    ex.deposit("alice", "ZUSD", D("1"))

    def fail(*args: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(ex.store, "append", fail)
    with pytest.raises(InternalError):
        ex.deposit("alice", "ZUSD", D("2"))
    with pytest.raises(InternalError):
        ex.deposit("alice", "ZUSD", D("3"))
    ex.close()
    monkeypatch.undo()
    with open_exchange(tmp_path / "a.db", clock) as ex:
        assert ex.engine.balance("alice", "ZUSD") == D("1")


def test_listeners_hear_committed_batches_in_order() -> None:
    with Exchange.open(clock=Clock()) as ex:
        batches: list[list[Event]] = []
        unsubscribe = ex.subscribe(batches.append)
        ex.subscribe(lambda events: 1 / 0)  # a broken listener does not stop the others
        ex.deposit("bob", "XXBT", D("1"))
        ex.add_order("bob", limit("sell", "0.1", "30000.0"))
        assert ex.advance() == []
        unsubscribe()
        ex.deposit("bob", "XXBT", D("1"))
        assert [type(e).__name__ for b in batches for e in b] == [
            "LedgerEntryAdded",
            "OrderPlaced",
            "OrderOpened",
            "BookLevelChanged",
        ]


def test_advance_runs_timers_and_only_journals_when_something_happened() -> None:
    clock = Clock(step=0)
    with Exchange.open(clock=clock) as ex:
        ex.deposit("bob", "XXBT", D("1"))
        ex.add_order("bob", limit("sell", "0.1", "30000.0"))
        ex.cancel_all_orders_after("bob", 1)
        position = ex.store.journal_position()
        assert ex.advance() == [] and ex.store.journal_position() == position
        clock.t += 2 * SECOND
        kinds = [type(e).__name__ for e in ex.advance()]
        assert "OrderCanceled" in kinds and "DeadManSwitchFired" in kinds
        assert ex.store.journal_position() == position + 1


def test_journal_arguments_keep_their_types() -> None:
    args = {"a": D("1E+3"), "b": "1E+3", "c": 3, "d": True, "e": None, "f": {"g": D("-0")}}
    assert decode_args(encode_args(args)) == args
    assert type(decode_args(encode_args(args))["b"]) is str
    with pytest.raises(UsageError):
        encode_args({"x": object()})


def test_clock_never_goes_backwards() -> None:
    clock = Clock(step=0)
    with Exchange.open(clock=clock) as ex:
        ex.deposit("a", "ZUSD", D("1"))
        clock.t -= 10 * SECOND
        assert ex.now() == T0
        ex.deposit("a", "ZUSD", D("1"))


# --- accounts, keys, nonces, tokens -------------------------------------------------------------


def test_api_keys_survive_restart_and_ensure_is_idempotent(tmp_path: Path) -> None:
    clock = Clock()
    secret = (
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
    )
    with open_exchange(tmp_path / "a.db", clock) as ex:
        account = ex.create_account("alice")
        generated = ex.create_api_key(account, permissions=["query_funds", "websocket"])
        assert len(generated.key) == 56 and len(generated.secret) == 88
        assert generated.permissions == {"query_funds", "websocket"}
        configured, created = ex.ensure_api_key("cfg-key", secret)
        assert created and configured.allows("create_orders")
        assert ex.check_nonce("cfg-key", 2**64 - 1)
        with pytest.raises(UsageError, match="already exists"):
            ex.create_api_key(account, key=generated.key)
        with pytest.raises(UsageError, match="unknown account"):
            ex.create_api_key("nobody")
        with pytest.raises(UsageError, match="base64"):
            ex.create_api_key(account, secret="not base64!")
    with open_exchange(tmp_path / "a.db", clock) as ex:
        again, created = ex.ensure_api_key("cfg-key", secret)
        assert not created and again == configured
        assert len(ex.store.accounts()) == 2
        assert ex.api_key(generated.key) == generated
        assert not ex.check_nonce("cfg-key", 2**64 - 1)  # the exact 64-bit nonce persisted
        narrowed, _ = ex.ensure_api_key("cfg-key", secret, permissions=["websocket"])
        assert narrowed.account == configured.account and narrowed.permissions == {"websocket"}


def test_nonces_strictly_increase_per_key() -> None:
    with Exchange.open(clock=Clock()) as ex:
        account = ex.create_account()
        one = ex.create_api_key(account).key
        two = ex.create_api_key(account).key
        assert ex.check_nonce(one, 1000)
        assert not ex.check_nonce(one, 1000)
        assert not ex.check_nonce(one, 999)
        assert ex.check_nonce(two, 5)  # per key
        assert ex.check_nonce(one, 1001)
        for bad in (0, -1, 2**64, True):
            assert not ex.check_nonce(two, bad)
        assert not ex.check_nonce("unknown", 10**6)
        assert ex.check_nonce(two, 2**64 - 1)
        assert not ex.check_nonce(two, 2**64 - 1)


def test_nonce_window_tolerates_out_of_order_but_not_replays() -> None:
    with Exchange.open(clock=Clock()) as ex:
        key = ex.create_api_key(ex.create_account(), nonce_window=10).key
        assert ex.check_nonce(key, 100)
        assert ex.check_nonce(key, 105)
        assert ex.check_nonce(key, 103)  # late but inside the window
        assert not ex.check_nonce(key, 103)  # twice: refused
        assert not ex.check_nonce(key, 100)  # accepted before
        assert not ex.check_nonce(key, 105)
        assert not ex.check_nonce(key, 95)  # outside the window
        assert ex.check_nonce(key, 2**64 - 1)


def test_ws_token_must_be_used_within_15_minutes_and_stays_valid_while_used(
    tmp_path: Path,
) -> None:
    clock = Clock(step=0)
    with open_exchange(tmp_path / "a.db", clock) as ex:
        account = ex.create_account()
        key = ex.create_api_key(account).key
        late = ex.issue_ws_token(account, key)
        used = ex.issue_ws_token(account, key)
        assert len(used) == 43 and late != used
        assert ex.ws_token_account("nope") is None
        clock.t += WS_TOKEN_TTL  # exactly 15 minutes: still fine
        assert ex.ws_token_account(used) == account
        assert ex.ws_token_account(late, use=False) == account
        clock.t += 1
        assert ex.ws_token_account(late) is None  # never used in time
        assert ex.ws_token_account(late) is None
        for _ in range(3):  # kept alive by use, across a restart
            clock.t += WS_TOKEN_TTL - SECOND
            assert ex.ws_token_account(used) == account
        with pytest.raises(UsageError):
            ex.issue_ws_token("someone else", key)
    with open_exchange(tmp_path / "a.db", clock) as ex:
        clock.t += WS_TOKEN_TTL - SECOND
        assert ex.ws_token_account(used) == account
        clock.t += WS_TOKEN_TTL + 1
        assert ex.ws_token_account(used, use=False) is None


# --- a real SIGKILL ---------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    from decimal import Decimal
    from krakenws.sandbox.engine import OrderRequest
    from krakenws.sandbox.exchange import Exchange

    def order(side, volume):
        return OrderRequest(pair="XBT/USD", type=side, ordertype="limit", volume=volume,
                            price="30000.0")

    ticks = iter(range(1_700_000_000_000_000, 1_800_000_000_000_000, 10_000_000))
    ex = Exchange.open(sys.argv[1], seed=7, snapshot_every=40, clock=lambda: next(ticks))
    ex.deposit("alice", "ZUSD", Decimal("100000000"))
    ex.deposit("bob", "XXBT", Decimal("10000"))
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        ask = ex.add_order("bob", order("sell", "0.002")).txid
        print("open", ask, flush=True)
        bid = ex.add_order("alice", order("buy", "0.001")).txid
        print("closed", bid, flush=True)
        if n % 2:
            ex.cancel_order("bob", ask)
            print("canceled", ask, flush=True)
    """
)


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    script = tmp_path / "child.py"
    script.write_text(_CHILD, encoding="utf-8")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        time.sleep(random.uniform(0.3, 1.2))
        child.send_signal(signal.SIGKILL)
        output = child.stdout.read()
        assert child.wait(timeout=10) == -signal.SIGKILL
    lines = [line.split() for line in output.splitlines(keepends=True) if line.endswith("\n")]
    assert len(lines) > 10, "the child acknowledged too little to test anything"
    assert any(what == "canceled" for what, _ in lines)
    status: dict[str, str] = {}
    for what, txid in lines:
        status[txid] = what  # the last acknowledgement wins (open, then canceled)
    with Exchange.open(str(path), seed=7) as ex:
        for txid, what in status.items():
            view = ex.order(txid)
            assert view is not None
            if view.is_open:
                assert ex.engine.order(txid) == view
            if what == "open":  # later fills (acknowledged or not) may have closed it
                assert view.status in ("open", "closed")
            else:
                assert view.status == what
        totals = {"ZUSD": D(0), "XXBT": D(0)}
        for account in ex.engine.ledger.accounts():
            for asset, amount in ex.engine.ledger.balances(account).items():
                totals[asset] += amount
        assert totals == {"ZUSD": D("100000000"), "XXBT": D("10000")}
        stored = {"ZUSD": D(0), "XXBT": D(0)}
        for (_, asset), amount in ex.store.balances().items():
            stored[asset] += amount
        assert stored == totals
        # and it keeps trading where it stopped
        assert ex.add_order("alice", limit("buy", "0.001", "30000.0")).txid is not None
