"""SQLite persistence of the sandbox exchange: the command journal, snapshots and query tables.

Owned here: the schema (one ``schema_version`` row), the connection and its PRAGMAs, and every
SQL statement of the sandbox. :class:`Store` knows rows, not rules: it never runs the engine
(:mod:`krakenws.sandbox.exchange` does) and imports nothing from the I/O shells (aiohttp,
asyncio). Tables:

* ``journal`` — the source of truth: one row per state-changing engine call (``kind``, its
  arguments as JSON, the ``now`` it ran at, and the Kraken error it raised, if any). Replaying
  the journal into a fresh, identically seeded engine rebuilds the exact state.
* ``snapshots`` — pickled engines with the journal position they include, the schema version
  and a fingerprint of the engine's code; a restart loads the newest usable one and replays only
  the journal after it.
* ``orders``, ``trades``, ``ledger``, ``balances`` — derived from the engine's events, written
  in the **same transaction** as the journal row that produced them, for queries and audits.
  Full views are msgspec JSON; money is ``TEXT`` (exact ``Decimal`` strings), never ``REAL``.
* ``accounts``, ``api_keys`` (Kraken's permission flags, nonce window, last nonce as exact
  ``TEXT`` since nonces are unsigned 64-bit), ``ws_tokens``, ``meta``.

Durability: ``journal_mode=WAL`` with ``synchronous=NORMAL``. In WAL mode a ``COMMIT`` writes
its frames to the WAL file with ``write()`` before it returns, so once :meth:`Store.append`
returns the data is in the operating system's page cache and survives the process being killed
(SIGKILL, crash) at any moment; only a power loss or kernel crash can drop the last
transactions, which ``synchronous=FULL`` would also cover at the cost of an fsync per command.

>>> store = Store(":memory:")
>>> store.append("deposit", '{"account":"a"}', 5, None, ())
1
>>> [(row.seq, row.kind, row.now) for row in store.journal()]
[(1, 'deposit', 5)]
>>> store.close()
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import msgspec

from krakenws.errors import UsageError
from krakenws.sandbox.engine.events import (
    LedgerEntry,
    LedgerEntryAdded,
    OrderEvent,
    OrderView,
    TradeExecuted,
    TradeView,
)

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows: no single-writer lock
    _fcntl = None  # type: ignore[assignment]

__all__ = [
    "PERMISSIONS",
    "SCHEMA_VERSION",
    "ApiKey",
    "JournalEntry",
    "Snapshot",
    "Store",
    "WsToken",
]

SCHEMA_VERSION = 1
"""Version of the tables below; a database of another version is refused."""

PERMISSIONS: tuple[str, ...] = (
    "query_funds",
    "withdraw_funds",
    "query_open_orders",
    "query_closed_orders",
    "query_ledger",
    "export_data",
    "create_orders",
    "cancel_orders",
    "websocket",
)
"""Kraken's API key permission flags in snake_case, in Kraken's order: ``create_orders`` is
"create & modify orders", ``cancel_orders`` "cancel & close orders", ``websocket`` "WebSocket
interface"."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    name TEXT,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    account TEXT NOT NULL REFERENCES accounts(id),
    permissions TEXT NOT NULL,
    nonce_window INTEGER NOT NULL DEFAULT 0,
    last_nonce TEXT NOT NULL DEFAULT '0'
);
CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys(account);
CREATE TABLE IF NOT EXISTS ws_tokens (
    token TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts(id),
    key TEXT NOT NULL REFERENCES api_keys(key),
    created INTEGER NOT NULL,
    last_used INTEGER
);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    args TEXT NOT NULL,
    now INTEGER NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY,
    schema_version INTEGER NOT NULL,
    code TEXT NOT NULL,
    created INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    txid TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    pair TEXT NOT NULL,
    status TEXT NOT NULL,
    userref INTEGER NOT NULL,
    cl_ord_id TEXT,
    opentm INTEGER NOT NULL,
    closetm INTEGER,
    view TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_account_status ON orders(account, status);
CREATE TABLE IF NOT EXISTS trades (
    trade_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    ordertxid TEXT NOT NULL,
    pair TEXT NOT NULL,
    time INTEGER NOT NULL,
    view TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trades_account_time ON trades(account, time);
CREATE TABLE IF NOT EXISTS ledger (
    ledger_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    asset TEXT NOT NULL,
    time INTEGER NOT NULL,
    view TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_account_time ON ledger(account, time);
CREATE TABLE IF NOT EXISTS balances (
    account TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount TEXT NOT NULL,
    PRIMARY KEY (account, asset)
);
"""

_UPSERT_ORDER = """
INSERT INTO orders (txid, account, pair, status, userref, cl_ord_id, opentm, closetm, view)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (txid) DO UPDATE SET status = excluded.status, userref = excluded.userref,
    closetm = excluded.closetm, view = excluded.view
"""
_INSERT_JOURNAL = "INSERT INTO journal (kind, args, now, error) VALUES (?, ?, ?, ?)"
_INSERT_TRADE = "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_LEDGER = "INSERT INTO ledger VALUES (?, ?, ?, ?, ?)"
_UPSERT_BALANCE = """
INSERT INTO balances (account, asset, amount) VALUES (?, ?, ?)
ON CONFLICT (account, asset) DO UPDATE SET amount = excluded.amount
"""

_encode = msgspec.json.Encoder().encode
_order_decoder = msgspec.json.Decoder(OrderView)
_trade_decoder = msgspec.json.Decoder(TradeView)
_ledger_decoder = msgspec.json.Decoder(LedgerEntry)


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """One API key: its secret (base64, as Kraken issues them), owner and permissions."""

    key: str
    secret: str
    account: str
    permissions: frozenset[str]
    nonce_window: int = 0

    def allows(self, permission: str) -> bool:
        """Whether the key has ``permission`` (one of :data:`PERMISSIONS`)."""
        return permission in self.permissions


class WsToken(msgspec.Struct, frozen=True, kw_only=True):
    """A WebSocket token row; times in µs, ``last_used`` ``None`` until first use."""

    token: str
    account: str
    key: str
    created: int
    last_used: int | None


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One journaled command."""

    seq: int
    kind: str
    args: str
    now: int
    error: str | None


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A stored engine snapshot covering the journal up to and including ``seq``."""

    seq: int
    schema_version: int
    code: str
    created: int
    data: bytes


def check_permissions(permissions: Iterable[str] | None) -> frozenset[str]:
    """Validate permission names; ``None`` means all of :data:`PERMISSIONS`."""
    if permissions is None:
        return frozenset(PERMISSIONS)
    if isinstance(permissions, str):
        permissions = [part for part in permissions.split(",") if part]
    chosen = frozenset(permissions)
    unknown = chosen - set(PERMISSIONS)
    if unknown:
        raise UsageError(f"unknown permissions {sorted(unknown)}; choose from {list(PERMISSIONS)}")
    return chosen


def _permission_text(permissions: frozenset[str]) -> str:
    return ",".join(name for name in PERMISSIONS if name in permissions)


class Store:
    """One SQLite database (a file path or ``":memory:"``); single writer, synchronous.

    A file database is locked (``flock`` on ``<path>-lock``) for the lifetime of the store, so
    two sandboxes can never append to one journal. Close it with :meth:`close` (or use it as a
    context manager).
    """

    def __init__(self, path: str = ":memory:", *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._lock_file: Any = None
        if path != ":memory:" and _fcntl is not None:
            lock_file = open(f"{path}-lock", "a+b")  # noqa: SIM115 - held until close()
            try:
                _fcntl.flock(lock_file.fileno(), _fcntl.LOCK_EX | _fcntl.LOCK_NB)
            except OSError:
                lock_file.close()
                raise UsageError(f"database {path!r} is in use by another sandbox") from None
            self._lock_file = lock_file
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except BaseException:
            self._release_lock()
            raise
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._create_schema()
        except BaseException:
            self.close()
            raise

    def _create_schema(self) -> None:
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                self._db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise UsageError(
                    f"database schema version {row[0]}, this code reads {SCHEMA_VERSION}"
                )

    # --- plumbing -------------------------------------------------------------------------------

    @property
    def journal_mode(self) -> str:
        """``wal`` for files, ``memory`` for ``:memory:``."""
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on success and rolled back on any exception."""
        db = self._db
        if db.in_transaction:  # nested use joins the outer transaction
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection and release the file lock (idempotent)."""
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None  # type: ignore[assignment]
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- meta -----------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        """A ``meta`` value, ``None`` if unset."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a ``meta`` value (committed)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                (key, value, value),
            )

    # --- accounts, keys, tokens ---------------------------------------------------------------

    def add_account(self, account: str, name: str | None, created: int) -> None:
        """Insert an account (committed)."""
        with self.transaction() as db:
            db.execute("INSERT INTO accounts VALUES (?, ?, ?)", (account, name, created))

    def account_exists(self, account: str) -> bool:
        """Whether ``accounts`` has this id."""
        row = self._db.execute("SELECT 1 FROM accounts WHERE id = ?", (account,)).fetchone()
        return row is not None

    def accounts(self) -> list[tuple[str, str | None, int]]:
        """``(id, name, created)`` of every account, oldest first."""
        rows = self._db.execute("SELECT id, name, created FROM accounts ORDER BY created, id")
        return [(str(a), n, int(c)) for a, n, c in rows]

    def put_api_key(self, api_key: ApiKey) -> None:
        """Insert or replace a key's secret, permissions and window (its nonce is kept)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO api_keys (key, secret, account, permissions, nonce_window)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET secret = excluded.secret,"
                " permissions = excluded.permissions, nonce_window = excluded.nonce_window",
                (
                    api_key.key,
                    api_key.secret,
                    api_key.account,
                    _permission_text(api_key.permissions),
                    api_key.nonce_window,
                ),
            )

    def api_key(self, key: str) -> ApiKey | None:
        """The key, ``None`` if unknown."""
        row = self._db.execute(
            "SELECT key, secret, account, permissions, nonce_window FROM api_keys WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        return ApiKey(
            key=row[0],
            secret=row[1],
            account=row[2],
            permissions=frozenset(p for p in row[3].split(",") if p),
            nonce_window=int(row[4]),
        )

    def last_nonce(self, key: str) -> int | None:
        """The key's last accepted nonce (0 before any), ``None`` for an unknown key."""
        row = self._db.execute("SELECT last_nonce FROM api_keys WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def set_last_nonce(self, key: str, nonce: int) -> None:
        """Record an accepted nonce (committed; kept as exact decimal text)."""
        with self.transaction() as db:
            db.execute("UPDATE api_keys SET last_nonce = ? WHERE key = ?", (str(nonce), key))

    def add_ws_token(self, token: str, account: str, key: str, created: int) -> None:
        """Insert a WebSocket token (committed)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO ws_tokens VALUES (?, ?, ?, ?, NULL)", (token, account, key, created)
            )

    def ws_token(self, token: str) -> WsToken | None:
        """A token row, ``None`` if unknown."""
        row = self._db.execute(
            "SELECT token, account, key, created, last_used FROM ws_tokens WHERE token = ?",
            (token,),
        ).fetchone()
        if row is None:
            return None
        return WsToken(token=row[0], account=row[1], key=row[2], created=row[3], last_used=row[4])

    def touch_ws_token(self, token: str, now: int) -> None:
        """Set a token's ``last_used`` (committed)."""
        with self.transaction() as db:
            db.execute("UPDATE ws_tokens SET last_used = ? WHERE token = ?", (now, token))

    def delete_ws_token(self, token: str) -> None:
        """Forget a token (committed)."""
        with self.transaction() as db:
            db.execute("DELETE FROM ws_tokens WHERE token = ?", (token,))

    def delete_ws_tokens_unused_since(self, before: int) -> None:
        """Forget tokens neither issued nor used at or after ``before`` (committed)."""
        with self.transaction() as db:
            db.execute("DELETE FROM ws_tokens WHERE COALESCE(last_used, created) < ?", (before,))

    # --- journal --------------------------------------------------------------------------------

    def append(
        self, kind: str, args: str, now: int, error: str | None, events: Sequence[object]
    ) -> int:
        """Journal one command and write the rows its ``events`` derive, in one transaction.

        Returns the command's journal position. Committed (durable against a killed process,
        see the module docstring) when this returns.
        """
        orders: dict[str, OrderView] = {}
        trades: list[tuple[str, str, str, str, int, str]] = []
        ledger: list[tuple[str, str, str, int, str]] = []
        balances: dict[tuple[str, str], Decimal] = {}
        for event in events:
            if isinstance(event, OrderEvent):
                orders[event.order.txid] = event.order
            elif isinstance(event, TradeExecuted):
                t = event.trade
                trades.append(
                    (t.trade_id, t.account, t.ordertxid, t.pair, t.time, _encode(t).decode())
                )
            elif isinstance(event, LedgerEntryAdded):
                e = event.entry
                ledger.append((e.ledger_id, e.account, e.asset, e.time, _encode(e).decode()))
                balances[(e.account, e.asset)] = e.balance
        order_rows = [
            (o.txid, o.account, o.pair, o.status, o.userref, o.cl_ord_id, o.opentm, o.closetm,
             _encode(o).decode())
            for o in orders.values()
        ]  # fmt: skip
        db = self._db
        outer = db.in_transaction  # inside a batch: join it (see transaction())
        if not outer:
            db.execute("BEGIN IMMEDIATE")
        try:
            seq = db.execute(_INSERT_JOURNAL, (kind, args, now, error)).lastrowid
            if len(order_rows) == 1:  # the common case: execute() costs less than a batch
                db.execute(_UPSERT_ORDER, order_rows[0])
            elif order_rows:
                db.executemany(_UPSERT_ORDER, order_rows)
            if trades:
                db.executemany(_INSERT_TRADE, trades)
            if ledger:
                db.executemany(_INSERT_LEDGER, ledger)
            if balances:
                db.executemany(
                    _UPSERT_BALANCE,
                    [
                        (account, asset, str(amount))
                        for (account, asset), amount in balances.items()
                    ],
                )
        except BaseException:
            if not outer:
                db.execute("ROLLBACK")
            raise
        if not outer:
            db.execute("COMMIT")
        assert seq is not None
        return seq

    def journal(self, after: int = 0) -> Iterator[JournalEntry]:
        """Journal rows with ``seq > after``, in order."""
        rows = self._db.execute(
            "SELECT seq, kind, args, now, error FROM journal WHERE seq > ? ORDER BY seq", (after,)
        ).fetchall()
        for seq, kind, args, now, error in rows:
            yield JournalEntry(seq=seq, kind=kind, args=args, now=now, error=error)

    def journal_position(self) -> int:
        """The last journal position (0 when empty)."""
        row = self._db.execute("SELECT MAX(seq) FROM journal").fetchone()
        return int(row[0] or 0)

    # --- snapshots ------------------------------------------------------------------------------

    def save_snapshot(
        self, seq: int, data: bytes, *, code: str, created: int, keep: int = 2
    ) -> None:
        """Store a snapshot covering the journal up to ``seq``; keep only the newest ``keep``."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?)",
                (seq, SCHEMA_VERSION, code, created, data),
            )
            db.execute(
                "DELETE FROM snapshots WHERE seq NOT IN"
                " (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?)",
                (keep,),
            )

    def snapshots(self) -> Iterator[Snapshot]:
        """Stored snapshots, newest first (read one at a time: they can be large)."""
        seqs = [row[0] for row in self._db.execute("SELECT seq FROM snapshots ORDER BY seq DESC")]
        for seq in seqs:
            row = self._db.execute(
                "SELECT seq, schema_version, code, created, data FROM snapshots WHERE seq = ?",
                (seq,),
            ).fetchone()
            if row is not None:
                yield Snapshot(
                    seq=row[0], schema_version=row[1], code=row[2], created=row[3],
                    data=bytes(row[4]),
                )  # fmt: skip

    # --- derived tables (queries) ---------------------------------------------------------------

    def order(self, txid: str) -> OrderView | None:
        """The stored view of an order, ``None`` if unknown."""
        row = self._db.execute("SELECT view FROM orders WHERE txid = ?", (txid,)).fetchone()
        return None if row is None else _order_decoder.decode(row[0])

    def orders(self, account: str | None = None, *, open_only: bool = False) -> list[OrderView]:
        """Stored orders (of ``account``, or all), oldest first; ``open_only``: pending/open."""
        sql = "SELECT view FROM orders WHERE 1"
        params: list[object] = []
        if account is not None:
            sql += " AND account = ?"
            params.append(account)
        if open_only:
            sql += " AND status IN ('pending', 'open')"
        sql += " ORDER BY opentm, rowid"
        return [_order_decoder.decode(row[0]) for row in self._db.execute(sql, params)]

    def trades(self, account: str | None = None) -> list[TradeView]:
        """Stored fills (of ``account``, or all), oldest first."""
        sql = "SELECT view FROM trades"
        params: tuple[object, ...] = ()
        if account is not None:
            sql += " WHERE account = ?"
            params = (account,)
        sql += " ORDER BY time, rowid"
        return [_trade_decoder.decode(row[0]) for row in self._db.execute(sql, params)]

    def ledger(self, account: str | None = None) -> list[LedgerEntry]:
        """Stored ledger entries (of ``account``, or all), oldest first."""
        sql = "SELECT view FROM ledger"
        params: tuple[object, ...] = ()
        if account is not None:
            sql += " WHERE account = ?"
            params = (account,)
        sql += " ORDER BY time, rowid"
        return [_ledger_decoder.decode(row[0]) for row in self._db.execute(sql, params)]

    def balances(self, account: str | None = None) -> dict[tuple[str, str], Decimal]:
        """Stored balances by ``(account, asset)`` (of ``account``, or of everyone)."""
        sql = "SELECT account, asset, amount FROM balances"
        params: tuple[object, ...] = ()
        if account is not None:
            sql += " WHERE account = ?"
            params = (account,)
        return {(a, s): Decimal(amount) for a, s, amount in self._db.execute(sql, params)}
