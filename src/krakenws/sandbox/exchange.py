"""The sandbox exchange as a service: the pure engine made durable, plus accounts, keys and tokens.

:class:`Exchange` owns one :class:`~krakenws.sandbox.engine.Engine`, one
:class:`~krakenws.sandbox.store.Store` and the clock. It is synchronous and single-threaded:
the aiohttp handlers (``rest_api.py``, ``ws_api.py``) and the market simulator call it on the
event loop thread. It must not import asyncio or aiohttp.

How state survives a crash (the engine is deterministic: seeded ids, injected time):

1. Every state-changing call is a *command* (``kind`` + JSON arguments). The exchange reads the
   clock once (``now``, µs, clamped so it never goes backwards), brings the engine to ``now``
   (:meth:`Engine.advance`, so that timer events are captured even when the call then fails),
   runs the call, and appends the command, its ``now`` and the error it raised (if any) to the
   journal, in **one SQLite transaction** with the order/trade/ledger/balance rows derived from
   its events. Only after the commit does the call return (or raise) and do listeners hear of
   the events. So nothing acknowledged can be lost by killing the process.
2. Failing calls are journaled too: a rejected order still charges the rate counter, and replay
   reproduces the same failure. An :meth:`advance` that produced no event is not journaled (it
   only moved the engine's clock, which the next command moves anyway).
3. Arguments are journaled in a form that keeps their exact Python types (``Decimal("1E+3")`` vs
   ``"1E+3"``, ``int`` vs ``str``), and the live call runs from the *decoded* arguments, so live
   and replay see identical inputs.
4. Every ``snapshot_every`` commands (or ``snapshot_seconds`` of clock time with commands
   pending) the engine's live state is pickled into ``snapshots`` with its journal position,
   and the engine lets go of its history (see :meth:`Exchange.snapshot`). A restart loads the
   newest snapshot written by the same schema and engine code (others, and ones that fail to
   load, are ignored) and replays the journal after it; with none, it replays from the start.
5. History (every order as it stands, fills, ledger entries) is read from the store's rows
   (:meth:`Exchange.orders`, :meth:`Exchange.trades`, :meth:`Exchange.ledger`), which are
   complete and current after every command.

Seed, tier and markets are recorded on first open; reopening with different ones is refused,
because replay would then build a different exchange.

>>> from decimal import Decimal
>>> from krakenws.sandbox.engine import OrderRequest
>>> ticks = iter(range(1_700_000_000_000_000, 1_800_000_000_000_000, 1000))
>>> exchange = Exchange.open(":memory:", clock=lambda: next(ticks))
>>> alice = exchange.create_account("alice")
>>> exchange.deposit(alice, "ZUSD", Decimal("1000"))
>>> placed = exchange.add_order(alice, OrderRequest(
...     pair="XBT/USD", type="buy", ordertype="limit", volume="0.01", price="20000.0"))
>>> exchange.store.order(placed.txid).status, exchange.engine.held(alice, "ZUSD")
('open', Decimal('200.8000'))
>>> exchange.cancel_order(alice, placed.txid).count
1
>>> exchange.close()
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import logging
import pickle
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields as dataclass_fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from krakenws.auth import MAX_NONCE
from krakenws.errors import UsageError, error_from_kraken
from krakenws.sandbox import engine as _engine_package
from krakenws.sandbox.engine import (
    AddOrderResult,
    AmendOrderResult,
    CancelResult,
    ContingentRejected,
    DeadManSwitchResult,
    EditOrderResult,
    Engine,
    Event,
    LedgerEntry,
    Markets,
    OrderRequest,
    OrderView,
    Outcome,
    SeededIds,
    TradeView,
)
from krakenws.sandbox.store import (
    PERMISSIONS,
    SCHEMA_VERSION,
    ApiKey,
    Store,
    check_permissions,
)

__all__ = ["PERMISSIONS", "WS_TOKEN_TTL", "ApiKey", "Exchange"]

_log = logging.getLogger(__name__)

WS_TOKEN_TTL = 900 * 1_000_000
"""A WebSocket token must be used within 15 minutes of issue or of its last use (µs)."""

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_DEC = "$dec"
_REQUEST_FIELDS = tuple(field.name for field in dataclass_fields(OrderRequest))

Listener = Callable[[list[Event]], None]
"""Receives each committed batch of events (a new list per listener call)."""

# --- journal argument encoding ------------------------------------------------------------------


def _tag(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {_DEC: str(value)}
    if isinstance(value, dict):
        # Recurse only where there is something to tag (most values are plain text).
        return {
            key: _tag(item) if isinstance(item, Decimal | dict) else item
            for key, item in value.items()
        }
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _DEC in value:
            return Decimal(value[_DEC])
        return {
            key: _untag(item) if isinstance(item, dict) else item for key, item in value.items()
        }
    return value


def encode_args(args: dict[str, Any]) -> str:
    """A command's arguments as journal JSON, keeping ``Decimal`` apart from ``str``.

    >>> encode_args({"amount": Decimal("1.50"), "asset": "ZUSD", "n": 3})
    '{"amount":{"$dec":"1.50"},"asset":"ZUSD","n":3}'
    >>> decode_args(encode_args({"amount": Decimal("1E+3")}))
    {'amount': Decimal('1E+3')}
    """
    try:
        return msgspec.json.encode(_tag(args)).decode()
    except (TypeError, msgspec.EncodeError) as exc:
        raise UsageError(f"arguments cannot be journaled: {exc}") from None


def decode_args(text: str) -> dict[str, Any]:
    """The inverse of :func:`encode_args`."""
    value = _untag(msgspec.json.decode(text))
    assert isinstance(value, dict)
    return value


# --- commands: one function per journaled kind, shared by live calls and replay ------------------

_Command = Callable[[Engine, dict[str, Any], int], Outcome | None]


def _set_fee_volume(engine: Engine, a: dict[str, Any], now: int) -> None:
    engine.set_fee_volume(a["account"], a["volume"])


_COMMANDS: dict[str, _Command] = {
    "advance": lambda e, a, now: e.advance(now),
    "deposit": lambda e, a, now: e.deposit(a["account"], a["asset"], a["amount"], now),
    "withdraw": lambda e, a, now: e.withdraw(a["account"], a["asset"], a["amount"], now),
    "add_order": lambda e, a, now: e.add_order(a["account"], OrderRequest(**a["request"]), now),
    "cancel_order": lambda e, a, now: e.cancel_order(a["account"], a["txid"], now),
    "cancel_by_cl_ord_id": lambda e, a, now: e.cancel_by_cl_ord_id(
        a["account"], a["cl_ord_id"], now
    ),
    "cancel_all": lambda e, a, now: e.cancel_all(a["account"], now),
    "cancel_all_orders_after": lambda e, a, now: e.cancel_all_orders_after(
        a["account"], a["timeout"], now
    ),
    "edit_order": lambda e, a, now: e.edit_order(
        a["account"], a["orderid"], a["pair"], now, **a["fields"]
    ),
    "amend_order": lambda e, a, now: e.amend_order(a["account"], now, **a["fields"]),
    "set_system_status": lambda e, a, now: e.set_system_status(a["status"], now),
    "set_pair_status": lambda e, a, now: e.set_pair_status(a["pair"], a["status"], now),
    "set_last_price": lambda e, a, now: e.set_last_price(a["pair"], a["price"], now),
    "set_fee_volume": _set_fee_volume,
}


def _execute(
    engine: Engine, kind: str, args: dict[str, Any], now: int
) -> tuple[Outcome | None, list[Event | ContingentRejected], Exception | None]:
    """Run one command exactly as replay will: advance to ``now`` first, then the call."""
    events: list[Event | ContingentRejected] = []
    try:
        if kind != "advance":
            events.extend(engine.advance(now).events)
        result = _COMMANDS[kind](engine, args, now)
    except Exception as exc:  # journaled and re-raised; replay reproduces it
        return None, events, exc
    if result is not None:
        events.extend(result.events)
    return result, events, None


def _error_text(exc: Exception) -> str:
    kraken = getattr(exc, "kraken_error", None)
    return kraken if isinstance(kraken, str) else f"{type(exc).__name__}: {exc}"


# --- fingerprints ------------------------------------------------------------------------------


@functools.cache
def code_fingerprint() -> str:
    """A hash of the engine's source (and the pair model it pickles): snapshots taken by other
    code are not loaded; the journal is replayed instead."""
    digest = hashlib.sha256()
    sources = sorted(Path(_engine_package.__file__).resolve().parent.glob("*.py"))
    sources.append(Path(__file__).resolve().parents[1] / "pairs.py")
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def _markets_fingerprint(markets: Markets) -> str:
    document = msgspec.json.encode([list(markets), markets.to_assets()])
    return hashlib.sha256(document).hexdigest()[:32]


def _random_id(prefix: str) -> str:
    body = "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
    return f"{prefix}{body[:5]}-{body[5:10]}-{body[10:]}"


def _default_clock() -> int:
    return time.time_ns() // 1000


# --- the exchange ------------------------------------------------------------------------------


class Exchange:
    """The durable sandbox exchange. Create it with :meth:`open`; close it with :meth:`close`.

    ``engine`` may be read freely (REST queries, snapshots of books); every change must go
    through the methods here, or it will not survive a restart.
    """

    engine: Engine
    store: Store

    def __init__(
        self,
        store: Store,
        engine: Engine,
        *,
        clock: Callable[[], int],
        position: int,
        snapshot_every: int,
        snapshot_seconds: float,
    ) -> None:
        self.store = store
        self.engine = engine
        self._clock = clock
        self._position = position
        self._snapshot_every = snapshot_every
        self._snapshot_interval = int(snapshot_seconds * 1_000_000)
        self._snapshot_position = position
        self._snapshot_time: int | None = (
            None  # engine time of the last snapshot (or first command)
        )
        self._listeners: list[Listener] = []
        self._window_seen: dict[str, set[int]] = {}
        self._broken: BaseException | None = None
        self._closed = False
        self._batched: list[Event] | None = None

    @classmethod
    def open(
        cls,
        db: str = ":memory:",
        *,
        seed: int = 0,
        tier: str = "starter",
        markets: Markets | None = None,
        clock: Callable[[], int] | None = None,
        snapshot_every: int = 5000,
        snapshot_seconds: float = 300.0,
        exempt_accounts: Iterable[str] = (),
    ) -> Exchange:
        """Open (or create) the exchange stored in ``db`` (a path or ``":memory:"``).

        Rebuilds the engine from the newest usable snapshot plus the journal after it.
        ``clock`` returns µs since the epoch (default: the system clock). ``exempt_accounts``
        (the simulated market makers) are spared the trading rate counter and open-order caps;
        they are part of the engine's configuration, fixed before the journal is replayed, so
        that a replay takes the same decisions as the original run.
        """
        if snapshot_every < 1:
            raise UsageError("snapshot_every must be at least 1")
        markets = markets if markets is not None else Markets.default()
        store = Store(db)
        try:
            exempt = sorted(set(exempt_accounts))
            fresh = Engine(  # validates the tier
                markets, ids=SeededIds(seed), tier=tier, exempt_accounts=exempt
            )
            config = msgspec.json.encode(
                {
                    "seed": seed,
                    "tier": tier,
                    "markets": _markets_fingerprint(markets),
                    "exempt": exempt,
                }
            ).decode()
            stored = store.meta("engine")
            if stored is None:
                store.set_meta("engine", config)
            elif stored != config:
                raise UsageError(
                    f"{db!r} was created with {stored}; reopen it with the same seed, tier and "
                    f"markets (asked for {config})"
                )
            engine, position = cls._restore(store, fresh)
            return cls(
                store,
                engine,
                clock=clock if clock is not None else _default_clock,
                position=position,
                snapshot_every=snapshot_every,
                snapshot_seconds=snapshot_seconds,
            )
        except BaseException:
            store.close()
            raise

    @staticmethod
    def _restore(store: Store, fresh: Engine) -> tuple[Engine, int]:
        engine, start = fresh, 0
        for snapshot in store.snapshots():
            if snapshot.schema_version != SCHEMA_VERSION or snapshot.code != code_fingerprint():
                continue
            try:
                loaded = pickle.loads(snapshot.data)
            except Exception:  # a damaged snapshot is only a lost shortcut
                _log.warning("ignoring snapshot at journal position %d", snapshot.seq)
                continue
            if isinstance(loaded, Engine):
                engine, start = loaded, snapshot.seq
                break
        position = start
        for entry in store.journal(start):
            _execute(engine, entry.kind, decode_args(entry.args), entry.now)
            position = entry.seq
        return engine, position

    # --- time, lifecycle ------------------------------------------------------------------------

    def now(self) -> int:
        """The clock in µs since the epoch, never before the engine's time."""
        return max(int(self._clock()), self.engine.now)

    def snapshot(self) -> None:
        """Store a snapshot of the engine now (restart then replays only what follows).

        Only the live state is pickled (open orders, books, balances, counters, timers). The
        history (ended orders, fills, ledger entries) never changes, is already rows of the
        store, and is read from there (:meth:`orders`, :meth:`trades`, :meth:`ledger`); the
        engine lets go of it here, so neither a snapshot nor the engine's memory grows with
        everything ever done. The engine's commands never read history, so a restart (which
        starts from a snapshot) takes the same decisions as a run that never stopped.
        """
        self._usable()
        history = self.engine.detach_history()
        try:
            data = pickle.dumps(self.engine, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            self.engine.attach_history(history)
            raise
        self.store.save_snapshot(
            self._position, data, code=code_fingerprint(), created=self.engine.now
        )
        self._snapshot_position = self._position
        self._snapshot_time = self.engine.now

    def close(self, *, snapshot: bool = True) -> None:
        """Close the database; first snapshot the engine if commands were journaled since the
        last snapshot (``snapshot=False`` skips that). Idempotent."""
        if self._closed:
            return
        try:
            if snapshot and self._broken is None and self._position > self._snapshot_position:
                self.snapshot()
        finally:
            self._closed = True
            self.store.close()

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _usable(self) -> None:
        if self._closed:
            raise UsageError("the exchange is closed")
        if self._broken is not None:
            # The engine may be ahead of the database: refuse until restarted from the journal.
            raise error_from_kraken("EGeneral:Internal error")

    # --- events -------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every committed batch of engine events, in order (after the
        commit). Returns a function that unsubscribes it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, events: list[Event]) -> None:
        for listener in list(self._listeners):
            try:
                listener(list(events))
            except Exception:  # one broken subscriber must not affect the others
                _log.exception("event listener %r failed", listener)

    # --- the command path -----------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Run many commands in one transaction: one commit, listeners told after it.

        For the market simulator's steps (thousands of orders at bootstrap). A command that
        raises :class:`~krakenws.errors.ExchangeError` inside the block is journaled like any
        other; anything else escaping the block leaves the engine ahead of the database, so the
        exchange refuses further calls until it is reopened.
        """
        if self._batched is not None:
            yield
            return
        self._usable()
        self._batched = []
        try:
            with self.store.transaction():
                yield
        except BaseException as exc:
            self._broken = exc
            raise
        finally:
            events, self._batched = self._batched, None
        if events:
            self._notify(events)

    def _run(self, kind: str, args: dict[str, Any]) -> Outcome | None:
        self._usable()
        text = encode_args(args)
        now = self.now()
        result, events, error = _execute(self.engine, kind, decode_args(text), now)
        if kind == "advance" and not events and error is None:
            return result
        try:
            self._position = self.store.append(
                kind, text, now, None if error is None else _error_text(error), events
            )
        except BaseException as exc:
            self._broken = exc
            raise error_from_kraken("EGeneral:Internal error") from exc
        public = [event for event in events if not isinstance(event, ContingentRejected)]
        if public:
            if self._batched is not None:
                self._batched.extend(public)
            else:
                self._notify(public)
        self._maybe_snapshot()
        if error is not None:
            raise error
        return result

    def _maybe_snapshot(self) -> None:
        if self._snapshot_time is None:
            self._snapshot_time = self.engine.now
        pending = self._position - self._snapshot_position
        if pending >= self._snapshot_every or (
            pending > 0 and self.engine.now - self._snapshot_time >= self._snapshot_interval
        ):
            try:
                self.snapshot()
            except Exception:  # the journal already holds everything; retry next time
                _log.exception("snapshot failed")

    # --- money and trading ----------------------------------------------------------------------

    def deposit(self, account: str, asset: str, amount: Decimal) -> None:
        """Credit ``amount`` (a ``Decimal``) of ``asset`` to ``account``."""
        self._run("deposit", {"account": account, "asset": asset, "amount": amount})

    def withdraw(self, account: str, asset: str, amount: Decimal) -> None:
        """Debit available money (``EOrder:Insufficient funds`` beyond it)."""
        self._run("withdraw", {"account": account, "asset": asset, "amount": amount})

    def add_order(self, account: str, request: OrderRequest) -> AddOrderResult:
        """Place (or validate) an order; Kraken's errors propagate as ``ExchangeError``."""
        fields = {
            name: value for name in _REQUEST_FIELDS if (value := getattr(request, name)) is not None
        }
        result = self._run("add_order", {"account": account, "request": fields})
        assert isinstance(result, AddOrderResult)
        return result

    def cancel_order(self, account: str, txid: str | int) -> CancelResult:
        """Cancel by txid, or every open order with a userref (int)."""
        result = self._run("cancel_order", {"account": account, "txid": txid})
        assert isinstance(result, CancelResult)
        return result

    def cancel_by_cl_ord_id(self, account: str, cl_ord_id: str) -> CancelResult:
        """Cancel the open order with this ``cl_ord_id``."""
        result = self._run("cancel_by_cl_ord_id", {"account": account, "cl_ord_id": cl_ord_id})
        assert isinstance(result, CancelResult)
        return result

    def cancel_all(self, account: str) -> CancelResult:
        """Cancel every open order of the account."""
        result = self._run("cancel_all", {"account": account})
        assert isinstance(result, CancelResult)
        return result

    def cancel_all_orders_after(self, account: str, timeout: int | str) -> DeadManSwitchResult:
        """Arm, reset (``timeout`` s) or disable (0) the dead man's switch."""
        result = self._run("cancel_all_orders_after", {"account": account, "timeout": timeout})
        assert isinstance(result, DeadManSwitchResult)
        return result

    def edit_order(
        self,
        account: str,
        orderid: str | int,
        pair: str,
        *,
        volume: str | Decimal | None = None,
        price: str | Decimal | None = None,
        price2: str | Decimal | None = None,
        oflags: str | None = None,
        newuserref: str | int | None = None,
        validate: bool | str | None = None,
    ) -> EditOrderResult:
        """Replace an open order (:meth:`Engine.edit_order`)."""
        fields = {
            key: value
            for key, value in (
                ("volume", volume), ("price", price), ("price2", price2), ("oflags", oflags),
                ("newuserref", newuserref), ("validate", validate),
            )
            if value is not None
        }  # fmt: skip
        result = self._run(
            "edit_order", {"account": account, "orderid": orderid, "pair": pair, "fields": fields}
        )
        assert isinstance(result, EditOrderResult)
        return result

    def amend_order(
        self,
        account: str,
        *,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        volume: str | Decimal | None = None,
        limit_price: str | Decimal | None = None,
        trigger_price: str | Decimal | None = None,
        post_only: bool | str | None = None,
        display_volume: str | Decimal | None = None,
    ) -> AmendOrderResult:
        """Amend an open order in place (:meth:`Engine.amend_order`)."""
        fields = {
            key: value
            for key, value in (
                ("txid", txid), ("cl_ord_id", cl_ord_id), ("volume", volume),
                ("limit_price", limit_price), ("trigger_price", trigger_price),
                ("post_only", post_only), ("display_volume", display_volume),
            )
            if value is not None
        }  # fmt: skip
        result = self._run("amend_order", {"account": account, "fields": fields})
        assert isinstance(result, AmendOrderResult)
        return result

    def advance(self) -> list[Event]:
        """Run the timers due by now (expiries, scheduled starts, dead man's switch, triggers);
        the server calls this about ten times a second."""
        result = self._run("advance", {})
        assert result is not None
        return [event for event in result.events if not isinstance(event, ContingentRejected)]

    def set_system_status(self, status: str) -> None:
        """``online``, ``cancel_only``, ``post_only``, ``limit_only`` or ``maintenance``."""
        self._run("set_system_status", {"status": status})

    def set_pair_status(self, pair: str, status: str) -> None:
        """A pair's own state (``online``, ``cancel_only``, ``post_only``, ``limit_only``)."""
        self._run("set_pair_status", {"pair": pair, "status": status})

    def set_last_price(self, pair: str, price: Decimal) -> None:
        """Seed a pair's last trade price (for relative prices and triggers)."""
        self._run("set_last_price", {"pair": pair, "price": price})

    def set_fee_volume(self, account: str, volume: Decimal) -> None:
        """An account's 30-day volume, which picks its fee tier."""
        self._run("set_fee_volume", {"account": account, "volume": volume})

    # --- history: the store's rows, complete and current (committed with every command) ------

    def order(self, txid: str) -> OrderView | None:
        """Any order ever placed, as it stands (``None`` if unknown)."""
        return self.store.order(txid)

    def orders(self, account: str) -> list[OrderView]:
        """Every order of ``account`` (open and ended), in placement order."""
        return self.store.orders(account)

    def trades(self, account: str) -> list[TradeView]:
        """Every fill of ``account``, oldest first."""
        return self.store.trades(account)

    def ledger(self, account: str) -> list[LedgerEntry]:
        """Every ledger entry of ``account``, oldest first."""
        return self.store.ledger(account)

    # --- accounts and API keys -----------------------------------------------------------------

    def create_account(self, name: str | None = None) -> str:
        """A new account; returns its id (``A`` + Kraken-style random groups)."""
        self._usable()
        account = _random_id("A")
        self.store.add_account(account, name, self.now())
        return account

    def create_api_key(
        self,
        account: str,
        *,
        permissions: Iterable[str] | None = None,
        key: str | None = None,
        secret: str | None = None,
        nonce_window: int = 0,
    ) -> ApiKey:
        """A new API key for an existing account. ``permissions`` ``None`` = all of
        :data:`~krakenws.sandbox.store.PERMISSIONS`; ``key``/``secret`` default to random ones
        shaped like Kraken's (56-character key, secret = base64 of 64 random bytes)."""
        self._usable()
        chosen = check_permissions(permissions)
        if not self.store.account_exists(account):
            raise UsageError(f"unknown account {account!r}")
        if isinstance(nonce_window, bool) or not isinstance(nonce_window, int) or nonce_window < 0:
            raise UsageError("nonce_window must be a non-negative integer")
        key = key if key is not None else base64.b64encode(secrets.token_bytes(42)).decode()
        secret = (
            secret if secret is not None else base64.b64encode(secrets.token_bytes(64)).decode()
        )
        _check_secret(secret)
        if not key or self.store.api_key(key) is not None:
            raise UsageError("that API key already exists" if key else "the API key is empty")
        api_key = ApiKey(
            key=key, secret=secret, account=account, permissions=chosen, nonce_window=nonce_window
        )
        self.store.put_api_key(api_key)
        return api_key

    def ensure_api_key(
        self, key: str, secret: str, *, permissions: Iterable[str] | None = None
    ) -> tuple[ApiKey, bool]:
        """The configured key, creating it (and a new account) only if it does not exist yet.

        Returns ``(key, created)``. An existing key keeps its account and nonce; its secret and
        permissions are set to the ones given.
        """
        self._usable()
        chosen = check_permissions(permissions)
        _check_secret(secret)
        existing = self.store.api_key(key)
        if existing is not None:
            if existing.secret != secret or existing.permissions != chosen:
                existing = ApiKey(
                    key=key, secret=secret, account=existing.account, permissions=chosen,
                    nonce_window=existing.nonce_window,
                )  # fmt: skip
                self.store.put_api_key(existing)
            return existing, False
        with self.store.transaction():
            account = self.create_account(f"api key {key[:8]}")
            return self.create_api_key(account, permissions=chosen, key=key, secret=secret), True

    def api_key(self, key: str) -> ApiKey | None:
        """The key, ``None`` if unknown."""
        return self.store.api_key(key)

    def check_nonce(self, key: str, nonce: int) -> bool:
        """Accept ``nonce`` for ``key`` (spec 7.2) and record it durably; ``False`` if refused.

        Accepted: an unsigned 64-bit integer above the key's last nonce, or, with a nonce window
        ``w``, one above ``last - w`` not accepted before. (Out-of-order nonces accepted within
        the window are remembered in memory only: after a restart one of them could be accepted
        once more.)
        """
        self._usable()
        if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 < nonce <= MAX_NONCE:
            return False
        api_key = self.store.api_key(key)
        last = self.store.last_nonce(key)
        if api_key is None or last is None:
            return False
        window = api_key.nonce_window
        seen = self._window_seen.setdefault(key, set())
        if nonce > last:
            self.store.set_last_nonce(key, nonce)
            if window:
                seen.add(last)
                seen.difference_update({n for n in seen if n <= nonce - window})
            return True
        if window and nonce > last - window and nonce != last and nonce not in seen:
            seen.add(nonce)
            return True
        return False

    # --- WebSocket tokens ----------------------------------------------------------------------

    def issue_ws_token(self, account: str, key: str) -> str:
        """A new WebSocket token for ``key`` (which must belong to ``account``)."""
        self._usable()
        api_key = self.store.api_key(key)
        if api_key is None or api_key.account != account:
            raise UsageError(f"API key {key!r} does not belong to account {account!r}")
        now = self.now()
        self.store.delete_ws_tokens_unused_since(now - WS_TOKEN_TTL)
        token = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        self.store.add_ws_token(token, account, key, now)
        return token

    def ws_token_account(self, token: str, *, use: bool = True) -> str | None:
        """The account of a valid token, ``None`` if unknown or expired.

        Kraken's rule (spec 5.1): a token must be used within 15 minutes of issue. Each use
        (``use=True``) refreshes it, so a token in use stays valid; one left unused for 15
        minutes expires. Connection-level validity of an established private subscription is
        the WebSocket layer's business.
        """
        self._usable()
        row = self.store.ws_token(token)
        if row is None:
            return None
        now = self.now()
        since = row.last_used if row.last_used is not None else row.created
        if now - since > WS_TOKEN_TTL:
            self.store.delete_ws_token(token)
            return None
        if use:
            self.store.touch_ws_token(token, now)
        return row.account


def _check_secret(secret: str) -> None:
    try:
        decoded = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError("an API secret must be base64 text") from None
    if not decoded:
        raise UsageError("an API secret must not be empty")
