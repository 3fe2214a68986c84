"""The SQLite store on its own: schema, PRAGMAs, atomic journal appends, snapshots, locking."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from krakenws.errors import UsageError
from krakenws.sandbox.engine import Engine, OrderRequest, SeededIds
from krakenws.sandbox.store import PERMISSIONS, ApiKey, Store, check_permissions

T0 = 1_700_000_000_000_000


def _events() -> list[object]:
    engine = Engine(ids=SeededIds(seed=3), now=T0)
    events: list[object] = []
    events += engine.deposit("alice", "ZUSD", Decimal("1000"), now=T0).events
    events += engine.deposit("bob", "XXBT", Decimal("1"), now=T0).events
    sell = OrderRequest(pair="XBT/USD", type="sell", ordertype="limit", volume="0.1", price="100.0")
    buy = OrderRequest(pair="XBT/USD", type="buy", ordertype="limit", volume="0.05", price="100.0")
    events += engine.add_order("bob", sell, now=T0 + 1).events
    events += engine.add_order("alice", buy, now=T0 + 2).events
    return events


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(str(tmp_path / "x.db")) as opened:
        yield opened  # type: ignore[misc]


def test_file_database_uses_wal_and_memory_database_works(store: Store) -> None:
    assert store.journal_mode == "wal"
    with Store(":memory:") as memory:
        assert memory.journal_mode == "memory"
        assert memory.journal_position() == 0


def test_append_writes_journal_and_derived_rows(store: Store) -> None:
    seq = store.append("scenario", "{}", T0, None, _events())
    assert seq == 1 and store.journal_position() == 1
    (order_row,) = [o for o in store.orders("bob")]
    assert order_row.status == "open" and order_row.vol_exec == Decimal("0.05")
    assert store.orders("alice")[0].status == "closed"
    assert store.orders(open_only=True) == [order_row]
    assert {t.account for t in store.trades()} == {"alice", "bob"}
    assert store.balances("alice")[("alice", "XXBT")] == Decimal("0.0500000000")
    # money is exact text in the table, never REAL
    assert all(isinstance(b, Decimal) for b in store.balances().values())
    ledger = store.ledger()
    assert {entry.type for entry in ledger} >= {"deposit", "trade"}
    assert store.order(order_row.txid) == order_row
    assert store.order("nope") is None


def test_a_failing_append_leaves_nothing_behind(store: Store) -> None:
    events = _events()
    store.append("one", "{}", T0, None, events)
    with pytest.raises(sqlite3.IntegrityError):  # the same trade ids again
        store.append("two", "{}", T0, None, events)
    assert [entry.kind for entry in store.journal()] == ["one"]
    assert len(store.trades()) == 2


def test_journal_reads_after_a_position(store: Store) -> None:
    for n in range(5):
        store.append(f"k{n}", "{}", T0 + n, "EOrder:x" if n == 2 else None, ())
    assert [e.seq for e in store.journal(after=3)] == [4, 5]
    assert next(store.journal(after=2)).error == "EOrder:x"


def test_snapshots_keep_the_newest_two(store: Store) -> None:
    for seq in (1, 5, 9):
        store.save_snapshot(seq, b"data%d" % seq, code="c", created=seq)
    assert [s.seq for s in store.snapshots()] == [9, 5]
    assert next(store.snapshots()).data == b"data9"


def test_api_keys_and_exact_64_bit_nonces(store: Store) -> None:
    store.add_account("A1", "alice", T0)
    key = ApiKey(key="k", secret="c2VjcmV0", account="A1", permissions=frozenset({"websocket"}))
    store.put_api_key(key)
    assert store.api_key("k") == key and store.api_key("x") is None
    assert store.last_nonce("k") == 0 and store.last_nonce("x") is None
    store.set_last_nonce("k", 2**64 - 1)
    assert store.last_nonce("k") == 2**64 - 1
    with pytest.raises(sqlite3.IntegrityError):  # foreign key: the account must exist
        store.put_api_key(ApiKey(key="j", secret="c2Vj", account="A9", permissions=frozenset()))


def test_permissions_are_checked() -> None:
    assert check_permissions(None) == frozenset(PERMISSIONS)
    assert check_permissions("websocket,query_funds") == {"websocket", "query_funds"}
    with pytest.raises(UsageError, match="unknown permissions"):
        check_permissions(["trade"])


def test_second_store_on_the_same_file_is_refused(store: Store) -> None:
    with pytest.raises(UsageError, match="in use"):
        Store(store.path)
    store.close()
    store.close()  # idempotent
    with Store(store.path) as again:
        assert again.journal_position() == 0


def test_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    db.close()
    with pytest.raises(UsageError, match="schema version 99"):
        Store(path)
    with pytest.raises(UsageError, match="schema version 99"):  # not "in use": lock released
        Store(path)
