"""The sandbox's matching engine: orders, price-time matching, triggers, fees, holds. Pure.

:class:`Engine` owns every order, every pair's :class:`~.book.OrderBook`, the
:class:`~.ledger.Ledger` and the trading rate counters. It never reads a clock, never does I/O
and draws ids only from the injected :class:`~.ids.IdSource`: every call takes ``now``, integer
**microseconds since the Unix epoch** (exact, and what v1's ``"sec.µs"`` times encode), which
must never go backwards. Each call first brings the engine up to ``now`` (expiries, scheduled
starts, the dead man's switch, triggers — :meth:`Engine.advance` does only that) and returns all
the events it caused, in order.

Rules and the choices made where Kraken documents nothing (spec 6, 7.6, 10):

* Money: balances at each asset's ``decimals``; a fill of ``vol`` at ``price`` moves
  ``cost = vol*price`` rounded **down** to the quote asset's decimals; fees are ``cost*pct/100``
  (or ``vol*pct/100`` with ``fcib``) rounded **down**, and go to the house account. Holds round
  **up**, so an order's hold always covers what its fills take.
* Fees: taker ``fees``, maker ``fees_maker`` of the pair, tier by the account's 30-day volume
  (0 unless :meth:`Engine.set_fee_volume`); in the quote asset unless ``fcib``.
* Holds: a buy reserves ``remaining * limit price`` plus the taker fee (the trigger price for
  stop/take-profit market types); a sell reserves the remaining volume (plus the fee with
  ``fcib``). Market orders execute at once and reserve nothing; a market buy is checked against
  the cost of sweeping the book and never spends more than the available balance.
* Market orders that find no (or not enough) liquidity are canceled for the rest
  (``cancel_reason`` ``"No liquidity"``; ``"Insufficient funds"`` when the balance ran out).
  IOC limit orders cancel their rest with ``"Immediate or cancel"``; post-only orders that would
  take are placed and canceled with ``"Post only order"``; self-trade prevention cancels with
  ``"Self trade prevention"``; user cancels say ``"User requested"``, edits ``"Order
  replaced"``, the dead man's switch ``"Dead man's switch"``.
* Prices must be on the tick and have at most ``pair_decimals`` decimals, else ``EOrder:Tick
  size check failed``. Relative prices (``+``/``-``/``#`` prefix, ``%`` suffix) are relative to
  the last trade price (:meth:`Engine.set_last_price` seeds it) and rounded to the tick; ``#``
  means "away from the market" (buy limit/take-profit: minus, buy stop-loss: plus, mirrored for
  sells). ``price2`` of ``*-limit`` types may be relative to the trigger price. Trailing types
  need a ``+`` price (the trailing offset); ``trailing-stop-limit`` needs a ``+``/``-`` price2
  (the limit offset from the stop price at trigger time).
* Scheduled orders (``starttm`` in the future) stay ``pending`` with their funds held (market
  orders are only checked at placement; they spend what is available when they start).
* Views show ``oflags`` ``("fciq",)`` for orders placed without flags, as Kraken's feeds do.
* No margin: a valid ``leverage``, ``margin=true``: ``EOrder:Cannot open position``; a leverage
  the pair does not offer: ``EGeneral:Invalid arguments:leverage``; ``reduce_only``:
  ``EOrder:Reduce only:No position exists``; ``settle-position``: ``EOrder:Unknown position``.
* Market state per pair (from AssetPairs ``status``, or :meth:`Engine.set_pair_status`) and per
  system (:meth:`Engine.set_system_status`): ``cancel_only`` refuses new orders and edits and
  does not trigger or start orders; ``post_only`` admits only post-only limit orders;
  ``limit_only`` only limit orders; system ``maintenance`` answers ``EService:Unavailable`` to
  everything, cancels included, and freezes timers until it ends.
* Rate counter (spec 7.6): add +1, amend/edit/cancel by age; cancel-all and the dead man's
  switch are free. Open orders per pair are capped by the tier (``EOrder:Orders limit exceeded``).
  *Exempt* accounts (``exempt_accounts``, :meth:`Engine.exempt`: the simulated market makers that
  keep thousands of orders resting) skip the rate counter and the open/scheduled order caps;
  every other rule (funds, minimums, tick, matching, STP) applies to them as to anyone.
* Conditional close: when the parent ends (filled, or canceled/expired after partial fills) a
  close order for the executed volume is placed on the opposite side; if that is refused, a
  :class:`ContingentRejected` event carries Kraken's error string.

History (ended orders, fills, ledger entries) only grows and never changes once written, and
no command reads it: it is there for :meth:`Engine.orders`, :meth:`Engine.trades` and the
ledger's ``entries``. :meth:`Engine.detach_history` takes it out, leaving the live state (for
a snapshot that costs what is open, not everything ever done); an engine without its history,
or restored from such a snapshot, takes exactly the decisions of one that kept it. The
sandbox's exchange keeps the history in its store and lets the engine drop it at every
snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

import msgspec

from krakenws.errors import ExchangeError, UsageError, error_from_kraken
from krakenws.pairs import Pair
from krakenws.sandbox.engine.book import OrderBook
from krakenws.sandbox.engine.events import (
    BookLevelChanged,
    Contingent,
    DeadManSwitchFired,
    Event,
    LedgerEntry,
    LedgerEntryAdded,
    OrderAmended,
    OrderCanceled,
    OrderClosed,
    OrderExpired,
    OrderFilled,
    OrderOpened,
    OrderPlaced,
    OrderTriggered,
    OrderView,
    PublicTrade,
    TradeExecuted,
    TradeView,
)
from krakenws.sandbox.engine.ids import IdSource, SeededIds
from krakenws.sandbox.engine.ledger import HOUSE, Ledger
from krakenws.sandbox.engine.markets import Markets, quantum, round_down, round_up
from krakenws.sandbox.engine.ratelimit import (
    ADD_COST,
    RATE_TIERS,
    TradingRateCounter,
    amend_cost,
    cancel_cost,
    edit_cost,
)
from krakenws.sandbox.engine.requests import (
    ORDER_TYPES,
    TRIGGER_TYPES,
    OrderRequest,
    PriceSpec,
    invalid,
    parse_amount,
    parse_bool,
    parse_price_spec,
    parse_userref,
)

__all__ = [
    "AddOrderResult",
    "AmendOrderResult",
    "CancelResult",
    "ContingentRejected",
    "DeadManSwitchResult",
    "EditOrderResult",
    "Engine",
    "EngineHistory",
    "Outcome",
]

_EXACT = Context(prec=80, traps=[InvalidOperation, DivisionByZero, Overflow])
_SECOND = 1_000_000
_MONTH = 31 * 24 * 3600 * _SECOND
_STATES = ("online", "limit_only", "post_only", "cancel_only")  # least to most restrictive
_OFLAGS = frozenset({"post", "fcib", "fciq", "nompp", "viqc"})
_CLOSE_TYPES = TRIGGER_TYPES | {"limit"}
_STP = {"cancel_newest", "cancel_oldest", "cancel_both"}
_TXID = re.compile(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")
_CL_ORD_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}|[\x21-\x7e]{1,18}"
)
_ZERO = Decimal(0)


# --- results -----------------------------------------------------------------------------------


class ContingentRejected(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A conditional close order could not be placed; ``error`` is Kraken's string."""

    time: int
    parent_txid: str
    account: str
    error: str


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a call did: its events, in order (engine :data:`~.events.Event` or rejections)."""

    events: tuple[Event | ContingentRejected, ...] = ()


class AddOrderResult(Outcome, frozen=True, kw_only=True):
    """``txid`` is ``None`` for ``validate`` requests; ``descr`` as addOrderStatus shows it."""

    txid: str | None
    descr: str
    close_descr: str | None = None


class EditOrderResult(Outcome, frozen=True, kw_only=True):
    """The replacement order's ``txid`` (``None`` when validating) and the original's."""

    txid: str | None
    originaltxid: str
    descr: str


class AmendOrderResult(Outcome, frozen=True, kw_only=True):
    """The amended order (same txid) and the amend's id."""

    txid: str
    amend_id: str


class CancelResult(Outcome, frozen=True, kw_only=True):
    """How many orders were canceled, and which."""

    count: int
    txids: tuple[str, ...] = ()


class DeadManSwitchResult(Outcome, frozen=True, kw_only=True):
    """``trigger_time`` is ``None`` when the switch was disabled (timeout 0)."""

    current_time: int
    trigger_time: int | None


# --- orders ------------------------------------------------------------------------------------


class EngineHistory:
    """What :meth:`Engine.detach_history` took out: every order by txid, fills by account,
    ledger entries."""

    __slots__ = ("entries", "issued", "orders", "trades")

    def __init__(
        self,
        orders: dict[str, _Order | OrderView],
        trades: dict[str, list[TradeView]],
        entries: list[LedgerEntry],
        issued: set[str],
    ) -> None:
        self.orders, self.trades, self.entries = orders, trades, entries
        self.issued = issued  # ids already drawn (when the id source is a SeededIds)


@dataclass(eq=False)
class _Order:
    txid: str
    account: str
    pair: Pair
    side: str
    ordertype: str
    vol: Decimal
    price: Decimal
    price2: Decimal
    price_spec: PriceSpec | None
    price2_spec: PriceSpec | None
    oflags: tuple[str, ...]
    timeinforce: str
    userref: int
    cl_ord_id: str | None
    stp_type: str
    opentm: int
    starttm: int | None
    expiretm: int | None
    contingent: Contingent | None
    status: str = "pending"
    vol_exec: Decimal = _ZERO
    cost: Decimal = _ZERO
    fee: Decimal = _ZERO
    closetm: int | None = None
    lastupdated: int = 0
    cancel_reason: str | None = None
    triggered: bool = False
    stopprice: Decimal = _ZERO
    limitprice: Decimal = _ZERO
    trail_ref: Decimal | None = None
    amended: bool = False
    age_ref: int = 0
    hold: Decimal = _ZERO
    hold_asset: str = ""
    trades: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status in ("pending", "open")

    @property
    def viqc(self) -> bool:
        return "viqc" in self.oflags

    @property
    def fee_in_base(self) -> bool:
        return "fcib" in self.oflags

    @property
    def remaining(self) -> Decimal:
        return self.vol - self.vol_exec

    @property
    def waiting(self) -> bool:
        """A trigger type not triggered yet."""
        return self.ordertype in TRIGGER_TYPES and not self.triggered

    @property
    def limit_price(self) -> Decimal | None:
        """The price it trades at or better now; None = market."""
        if self.ordertype == "limit":
            return self.price
        if self.triggered and self.ordertype.endswith("-limit"):
            return self.limitprice
        return None


def _to_tick(pair: Pair, value: Decimal, rounding: str) -> Decimal:
    steps = (value / pair.tick_size).to_integral_value(rounding=rounding)
    return (steps * pair.tick_size).quantize(quantum(pair.pair_decimals))


def _crosses(side: str, limit: Decimal, best: Decimal) -> bool:
    return limit >= best if side == "buy" else limit <= best


def _hash_sign(side: str, ordertype: str) -> str:
    stop = ordertype.startswith("stop-loss")
    return "+" if (side == "buy") == stop else "-"


# --- the engine --------------------------------------------------------------------------------


class Engine:
    """A pure Kraken-like spot exchange over :class:`~.markets.Markets`.

    ``ids`` must be seeded (:class:`~.ids.SeededIds`); ``tier`` is a key of
    :data:`~.ratelimit.RATE_TIERS`; ``house`` is the account that collects fees; ``now`` is
    the engine's starting time (µs); ``exempt_accounts`` are spared the rate counter and the
    open-order caps (see :meth:`exempt`).
    """

    def __init__(
        self,
        markets: Markets | None = None,
        *,
        ids: IdSource,
        tier: str = "starter",
        house: str = HOUSE,
        now: int = 0,
        exempt_accounts: Iterable[str] = (),
    ) -> None:
        if tier not in RATE_TIERS:
            raise UsageError(f"unknown tier {tier!r}; choose one of {sorted(RATE_TIERS)}")
        self.markets = markets if markets is not None else Markets.default()
        self.tier = RATE_TIERS[tier]
        self._ids = ids
        self.ledger = Ledger(
            {code: asset.decimals for code, asset in self.markets.assets.items()}, ids, house=house
        )
        self._rate = TradingRateCounter(self.tier, exempt=exempt_accounts)
        self._now = now
        self._system_status = "online"
        self._pair_status: dict[str, str] = {pair.key: pair.status for pair in self.markets}
        self._books: dict[str, OrderBook] = {pair.key: OrderBook() for pair in self.markets}
        self._last_price: dict[str, Decimal] = {}
        # Every order in placement order: live ones as _Order, ended ones as their final
        # OrderView (an ended order never changes again).
        self._orders: dict[str, _Order | OrderView] = {}
        self._open: dict[str, dict[str, _Order]] = {}
        # The same open orders by (account, pair key): the per-pair caps without a scan.
        self._open_by_pair: dict[tuple[str, str], dict[str, _Order]] = {}
        self._waiting: dict[str, dict[str, _Order]] = {pair.key: {} for pair in self.markets}
        self._timed: dict[str, _Order] = {}
        self._trades: dict[str, list[TradeView]] = {}
        self._fee_volume: dict[str, Decimal] = {}
        self._dms: dict[str, int] = {}
        self._closes: list[tuple[_Order, int]] = []
        self._match_id = 0

    # === public: time, state, money ============================================================

    @property
    def now(self) -> int:
        """The latest time the engine was brought to (µs)."""
        return self._now

    def advance(self, now: int) -> Outcome:
        """Bring the engine to ``now``: expire, start scheduled orders, fire the dead man's
        switch and triggers that are due. Frozen while the system is in maintenance."""
        with localcontext(_EXACT):
            return Outcome(events=tuple(self._advance(now)))

    def set_system_status(self, status: str, now: int) -> Outcome:
        """``online``, ``cancel_only``, ``post_only``, ``limit_only`` or ``maintenance``."""
        if status not in (*_STATES, "maintenance"):
            raise UsageError(f"unknown system status {status!r}")
        with localcontext(_EXACT):
            events = self._advance(now)
            self._system_status = status
            events += self._advance(now)
            return Outcome(events=tuple(events))

    def set_pair_status(self, pair: str, status: str, now: int) -> Outcome:
        """A pair's own state: ``online``, ``cancel_only``, ``post_only`` or ``limit_only``."""
        if status not in _STATES:
            raise UsageError(f"unknown pair status {status!r}")
        with localcontext(_EXACT):
            events = self._advance(now)
            self._pair_status[self.markets.pair(pair).key] = status
            events += self._advance(now)
            return Outcome(events=tuple(events))

    def system_status(self) -> str:
        """The system state (spec 7.4 SystemStatus)."""
        return self._system_status

    def pair_status(self, pair: str) -> str:
        """The effective state of a pair: the stricter of its own and the system's."""
        return self._state(self.markets.pair(pair).key)

    def set_last_price(self, pair: str, price: Decimal, now: int) -> Outcome:
        """Seed the last trade price (reference of relative prices and triggers)."""
        with localcontext(_EXACT):
            events = self._advance(now)
            found = self.markets.pair(pair)
            if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
                raise UsageError(f"price must be a positive Decimal, got {price!r}")
            self._last_price[found.key] = price
            self._settle(now, events)
            return Outcome(events=tuple(events))

    def last_price(self, pair: str) -> Decimal | None:
        """The pair's last trade price, if any."""
        return self._last_price.get(self.markets.pair(pair).key)

    def exempt(self, account: str) -> None:
        """Spare ``account`` the trading rate counter and the open/scheduled order caps.

        For the sandbox's own simulated participants, which keep far more orders resting
        than any tier allows; there is no way back (an exemption lasts for the engine's life).
        """
        self._rate.exempt(account)

    def is_exempt(self, account: str) -> bool:
        """Whether ``account`` is exempt from the rate counter and the order caps."""
        return self._rate.is_exempt(account)

    def set_fee_volume(self, account: str, volume: Decimal) -> None:
        """The account's 30-day volume, which picks its fee tier (default 0)."""
        self._fee_volume[account] = volume

    def deposit(self, account: str, asset: str, amount: Decimal, now: int) -> Outcome:
        """Credit new money (``amount`` at most the asset's decimals)."""
        with localcontext(_EXACT):
            events = self._advance(now)
            code = self.markets.asset(asset).code
            entry = self.ledger.deposit(account, code, amount, now=now)
            events.append(LedgerEntryAdded(time=now, entry=entry))
            return Outcome(events=tuple(events))

    def withdraw(self, account: str, asset: str, amount: Decimal, now: int) -> Outcome:
        """Debit available money (``EOrder:Insufficient funds`` beyond it)."""
        with localcontext(_EXACT):
            events = self._advance(now)
            self._service()
            code = self.markets.asset(asset).code
            entry = self.ledger.withdraw(account, code, amount, now=now)
            events.append(LedgerEntryAdded(time=now, entry=entry))
            return Outcome(events=tuple(events))

    # === public: reading ========================================================================

    def book(self, pair: str) -> OrderBook:
        """The pair's book (read it; never mutate it)."""
        return self._books[self.markets.pair(pair).key]

    def order(self, txid: str) -> OrderView:
        """An order the engine holds (live, or ended since the history was last detached);
        ``EOrder:Unknown order`` if none."""
        found = self._orders.get(txid)
        if found is None:
            raise error_from_kraken("EOrder:Unknown order")
        return found if isinstance(found, OrderView) else self._view(found)

    def open_orders(self, account: str) -> list[OrderView]:
        """The account's pending and open orders, oldest first."""
        return [self._view(order) for order in self._open.get(account, {}).values()]

    def orders(self, account: str) -> list[OrderView]:
        """Every order of the account (open and ended; ended ones since the history was last
        detached), oldest first."""
        return [
            o if isinstance(o, OrderView) else self._view(o)
            for o in self._orders.values()
            if o.account == account
        ]

    def trades(self, account: str) -> list[TradeView]:
        """The account's fills (since the history was last detached), oldest first."""
        return list(self._trades.get(account, []))

    # === public: history ========================================================================

    def detach_history(self) -> EngineHistory:
        """Take the history out (ended orders, fills, ledger entries, ids issued so far): what
        is left is the live state, for a snapshot. Readings then show only what is live and
        what ends from now on. :meth:`attach_history` puts it back."""
        orders = self._orders
        live: dict[str, _Order | OrderView] = {
            txid: order for mine in self._open.values() for txid, order in mine.items()
        }
        issued = self._ids.take_issued() if isinstance(self._ids, SeededIds) else set()
        history = EngineHistory(orders, self._trades, self.ledger.entries, issued)
        self._orders, self._trades, self.ledger.entries = live, {}, []
        return history

    def attach_history(self, history: EngineHistory) -> None:
        """Undo :meth:`detach_history` (nothing may have happened in between)."""
        self._orders, self._trades, self.ledger.entries = (
            history.orders,
            history.trades,
            history.entries,
        )
        if isinstance(self._ids, SeededIds):
            self._ids.put_issued(history.issued)

    def balance(self, account: str, asset: str) -> Decimal:
        """Total balance of an asset (code or altname)."""
        return self.ledger.balance(account, self.markets.asset(asset).code)

    def available(self, account: str, asset: str) -> Decimal:
        """Balance minus holds."""
        return self.ledger.available(account, self.markets.asset(asset).code)

    def held(self, account: str, asset: str) -> Decimal:
        """Funds reserved for open orders."""
        return self.ledger.held(account, self.markets.asset(asset).code)

    def rate_count(self, account: str, pair: str, now: int) -> Decimal:
        """The trading rate counter of ``account`` on ``pair`` at ``now`` (``ratecount``)."""
        return self._rate.value(account, self.markets.pair(pair).key, now)

    def dead_man_switch(self, account: str) -> int | None:
        """When the account's switch fires (µs), ``None`` if disarmed."""
        return self._dms.get(account)

    # === public: trading =======================================================================

    def add_order(self, account: str, request: OrderRequest, now: int) -> AddOrderResult:
        """Place (or, with ``validate``, only check) an order; raises Kraken's errors."""
        with localcontext(_EXACT):
            events = self._advance(now)
            pair = self.markets.pair(request.pair)
            self._tradeable(pair)
            validate = parse_bool(request.validate, "validate")
            if not validate:
                self._rate.check(account, pair.key, ADD_COST, now)
                self._rate.charge(account, pair.key, ADD_COST, now)
            order = self._build(account, pair, request, now)
            hold = self._admit(order)
            descr = self._describe(order)
            close_descr = self._describe_close(order)
            if validate:
                return AddOrderResult(
                    events=tuple(events), txid=None, descr=descr, close_descr=close_descr
                )
            self._place(order, now, events, hold=hold)
            self._settle(now, events)
            return AddOrderResult(
                events=tuple(events), txid=order.txid, descr=descr, close_descr=close_descr
            )

    def cancel_order(self, account: str, txid: str | int, now: int) -> CancelResult:
        """Cancel one order by txid, or every open order carrying a userref (int or digits)."""
        with localcontext(_EXACT):
            events = self._advance(now)
            self._service()
            orders = self._find(account, txid)
            return self._cancel(account, orders, now, events)

    def cancel_by_cl_ord_id(self, account: str, cl_ord_id: str, now: int) -> CancelResult:
        """Cancel the open order with this ``cl_ord_id``."""
        with localcontext(_EXACT):
            events = self._advance(now)
            self._service()
            orders = [o for o in self._open.get(account, {}).values() if o.cl_ord_id == cl_ord_id]
            if not orders:
                raise error_from_kraken("EOrder:Unknown order")
            return self._cancel(account, orders, now, events)

    def cancel_all(self, account: str, now: int) -> CancelResult:
        """Cancel every open order of the account (count may be 0). Not rate counted."""
        with localcontext(_EXACT):
            events = self._advance(now)
            self._service()
            txids = self._cancel_everything(account, "User requested", now, events)
            self._settle(now, events)
            return CancelResult(events=tuple(events), count=len(txids), txids=txids)

    def cancel_all_orders_after(
        self, account: str, timeout: int | str, now: int
    ) -> DeadManSwitchResult:
        """Arm/reset (``timeout`` seconds, < 86400) or disable (0) the dead man's switch."""
        with localcontext(_EXACT):
            events = self._advance(now)
            self._service()
            if (
                isinstance(timeout, str)
                and timeout.isascii()
                and timeout.isdigit()
                and len(timeout) < 19
            ):
                timeout = int(timeout)
            if isinstance(timeout, bool) or not isinstance(timeout, int):
                raise invalid("timeout")
            if not 0 <= timeout < 86400:
                raise invalid("timeout")
            if timeout == 0:
                self._dms.pop(account, None)
                return DeadManSwitchResult(
                    events=tuple(events), current_time=now, trigger_time=None
                )
            self._dms[account] = now + timeout * _SECOND
            return DeadManSwitchResult(
                events=tuple(events), current_time=now, trigger_time=self._dms[account]
            )

    def edit_order(
        self,
        account: str,
        orderid: str | int,
        pair: str,
        now: int,
        *,
        volume: str | Decimal | None = None,
        price: str | Decimal | None = None,
        price2: str | Decimal | None = None,
        oflags: str | None = None,
        newuserref: str | int | None = None,
        validate: bool | str | None = None,
    ) -> EditOrderResult:
        """Replace an open order by a new one (new txid, queue place lost; spec 6.2).

        ``volume`` is the new total; the new order gets ``volume - vol_exec`` of the original.
        Triggered trigger orders and orders with a conditional close cannot be edited
        (``EOrder:Invalid order``), nor orders placed with a ``cl_ord_id``.
        """
        with localcontext(_EXACT):
            events = self._advance(now)
            found_pair = self.markets.pair(pair)
            self._tradeable(found_pair)
            matches = self._find(account, orderid)
            if len(matches) != 1:
                raise invalid("orderid")
            original = matches[0]
            if original.pair.key != found_pair.key:
                raise error_from_kraken("EOrder:Unknown order")
            is_validate = parse_bool(validate, "validate")
            cost = edit_cost(Decimal(now - original.age_ref) / _SECOND)
            if not is_validate:
                self._rate.check(account, found_pair.key, cost, now)
                self._rate.charge(account, found_pair.key, cost, now)
            if original.triggered or original.contingent is not None:
                raise error_from_kraken("EOrder:Invalid order")
            if original.cl_ord_id is not None:
                raise invalid("cl_ord_id")
            total = original.vol if volume is None else parse_amount(volume, "volume")
            if total <= original.vol_exec:
                raise invalid("volume")
            request = OrderRequest(
                pair=found_pair.key,
                type=original.side,
                ordertype=original.ordertype,
                volume=total,
                price=price if price is not None else self._spec_text(original, 1),
                price2=price2 if price2 is not None else self._spec_text(original, 2),
                oflags=oflags if oflags is not None else ",".join(original.oflags),
                timeinforce=original.timeinforce,
                expiretm=None if original.expiretm is None else _seconds(original.expiretm),
                userref=newuserref if newuserref is not None else original.userref,
                stp_type=original.stp_type,
            )
            replacement = self._build(account, found_pair, request, now, replacing=original)
            replacement.vol = total - original.vol_exec
            released = original.hold
            self.ledger.hold(account, original.hold_asset, -released)
            try:
                self._admit(replacement)
            finally:
                self.ledger.hold(account, original.hold_asset, released)
            descr = self._describe(replacement)
            if is_validate:
                return EditOrderResult(
                    events=tuple(events), txid=None, originaltxid=original.txid, descr=descr
                )
            self._finish(original, "canceled", "Order replaced", now, events)
            self._place(replacement, now, events)
            self._settle(now, events)
            return EditOrderResult(
                events=tuple(events), txid=replacement.txid, originaltxid=original.txid,
                descr=descr,
            )  # fmt: skip

    def amend_order(
        self,
        account: str,
        now: int,
        *,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        volume: str | Decimal | None = None,
        limit_price: str | Decimal | None = None,
        trigger_price: str | Decimal | None = None,
        post_only: bool | str | None = None,
        display_volume: str | Decimal | None = None,
    ) -> AmendOrderResult:
        """Change an open order in place (spec 6.3): same txid; queue place kept unless the
        price changes or the volume grows. ``volume`` is the new total (> vol_exec)."""
        with localcontext(_EXACT):
            events = self._advance(now)
            self._service()
            if (txid is None) == (cl_ord_id is None):
                raise invalid("txid")
            if txid is not None:
                found = self._orders.get(txid)
                order = found if isinstance(found, _Order) else None
            else:
                order = next(
                    (o for o in self._open.get(account, {}).values() if o.cl_ord_id == cl_ord_id),
                    None,
                )
            if order is None or order.account != account or not order.open:
                raise error_from_kraken("EOrder:Unknown order")
            pair = order.pair
            self._tradeable(pair)
            cost = amend_cost(Decimal(now - order.age_ref) / _SECOND)
            self._rate.check(account, pair.key, cost, now)
            self._rate.charge(account, pair.key, cost, now)
            if display_volume is not None:
                raise invalid("display_volume")
            passive = parse_bool(post_only, "post_only") or "post" in order.oflags
            if volume is None and limit_price is None and trigger_price is None:
                raise error_from_kraken("EGeneral:Invalid arguments")
            new_vol = order.vol
            if volume is not None:
                new_vol = self._volume(pair, volume, viqc=order.viqc)
                if new_vol <= order.vol_exec:
                    raise invalid("volume")
                if pair.ordermin is not None and not order.viqc and new_vol < pair.ordermin:
                    raise error_from_kraken("EOrder:Order minimum not met")
            new_limit: Decimal | None = None
            if limit_price is not None:
                if order.ordertype not in ("limit", "stop-loss-limit", "take-profit-limit"):
                    raise invalid("limit_price")
                new_limit = self._absolute(pair, parse_price_spec(limit_price, "limit_price"))
            new_trigger: Decimal | None = None
            if trigger_price is not None:
                if not order.waiting or order.ordertype.startswith("trailing"):
                    raise invalid("trigger_price")
                new_trigger = self._absolute(pair, parse_price_spec(trigger_price, "trigger_price"))
            saved = (order.vol, order.price, order.price2, order.limitprice)
            old_price = order.limit_price
            order.vol = new_vol
            if new_limit is not None:
                if order.ordertype == "limit":
                    order.price = new_limit
                elif order.triggered:
                    order.limitprice = new_limit
                else:
                    order.price2 = new_limit
            if new_trigger is not None:
                order.price = new_trigger
            book = self._books[pair.key]
            opposite = book.best("ask" if order.side == "buy" else "bid")
            limit = order.limit_price
            crossing = (
                limit is not None and opposite is not None and _crosses(order.side, limit, opposite)
            )
            asset, need = self._required_hold(order)
            spare = self.ledger.available(account, asset) + (
                order.hold if order.hold_asset == asset else _ZERO
            )
            if (crossing and passive) or need > spare:
                order.vol, order.price, order.price2, order.limitprice = saved
                if crossing and passive:
                    raise invalid("post_only")
                raise error_from_kraken("EOrder:Insufficient funds")
            amend_id = self._ids.next("T")
            resting = order.txid in book
            requeue = resting and (limit != old_price or new_vol > saved[0])
            if resting and requeue:
                self._book_change(pair, book.remove(order.txid, now=now), order, now, events)
            elif resting:
                self._book_change(
                    pair, book.set_volume(order.txid, order.remaining, now=now), order, now, events
                )
            self._set_hold(order)
            order.amended = True
            order.age_ref = now
            order.lastupdated = now
            events.append(OrderAmended(time=now, order=self._view(order), amend_id=amend_id))
            if requeue:
                self._take(order, now, events)
            self._settle(now, events)
            return AmendOrderResult(events=tuple(events), txid=order.txid, amend_id=amend_id)

    # === internals: time ========================================================================

    def _advance(self, now: int) -> list[Event | ContingentRejected]:
        if isinstance(now, bool) or not isinstance(now, int):
            raise UsageError(f"now must be integer microseconds, got {now!r}")
        if now < self._now:
            raise UsageError(f"time went backwards: {now} < {self._now}")
        self._now = now
        events: list[Event | ContingentRejected] = []
        if self._system_status == "maintenance":
            return events
        due: list[tuple[int, int, int, object]] = []
        for order in self._timed.values():
            if order.expiretm is not None and order.expiretm <= now:
                due.append((order.expiretm, 0, len(due), order))
            elif order.status == "pending" and order.starttm is not None and order.starttm <= now:
                due.append((order.starttm, 1, len(due), order))
        for account, at in self._dms.items():
            if at <= now:
                due.append((at, 2, len(due), account))
        for at, kind, _, item in sorted(due, key=lambda row: row[:3]):
            if kind == 0 and isinstance(item, _Order):
                self._finish(item, "expired", None, at, events)
            elif kind == 1 and isinstance(item, _Order):
                if item.status == "pending" and self._state(item.pair.key) == "online":
                    self._timed_done(item)
                    self._activate(item, at, events)
                    self._settle(at, events)
            elif isinstance(item, str):
                del self._dms[item]
                txids = self._cancel_everything(item, "Dead man's switch", at, events)
                events.append(DeadManSwitchFired(time=at, account=item, count=len(txids)))
        self._settle(now, events)
        return events

    def _timed_done(self, order: _Order) -> None:
        if order.expiretm is None:
            self._timed.pop(order.txid, None)

    # === internals: state checks ================================================================

    def _state(self, pair_key: str) -> str:
        if self._system_status == "maintenance":
            return "maintenance"
        own = self._pair_status.get(pair_key, "online")
        own = own if own in _STATES else "cancel_only"
        return max(own, self._system_status, key=_STATES.index)

    def _service(self) -> None:
        if self._system_status == "maintenance":
            raise error_from_kraken("EService:Unavailable")

    def _tradeable(self, pair: Pair) -> None:
        state = self._state(pair.key)
        if state == "maintenance":
            raise error_from_kraken("EService:Unavailable")
        if state == "cancel_only":
            raise error_from_kraken("EService:Market in cancel_only mode")

    # === internals: building and checking orders ===============================================

    def _volume(self, pair: Pair, value: object, *, viqc: bool) -> Decimal:
        volume = parse_amount(value, "volume")
        places = self.markets.asset(pair.quote).decimals if viqc else pair.lot_decimals
        if volume != round_down(volume, places):
            raise invalid("volume")
        return volume

    def _absolute(self, pair: Pair, spec: PriceSpec) -> Decimal:
        if spec.relative:
            raise invalid("price")
        return self._on_tick(pair, spec.value)

    def _on_tick(self, pair: Pair, value: Decimal) -> Decimal:
        if value != round_down(value, pair.pair_decimals) or not pair.is_on_tick(value):
            raise error_from_kraken("EOrder:Tick size check failed")
        return value.quantize(quantum(pair.pair_decimals))

    def _resolve(
        self, pair: Pair, spec: PriceSpec, field_name: str, base: Decimal | None, sign: str
    ) -> Decimal:
        """An absolute price from a spec; relative ones against ``base``."""
        if not spec.relative:
            return self._on_tick(pair, spec.value)
        if base is None or not spec.sign:
            raise invalid(field_name)
        delta = base * spec.value / 100 if spec.percent else self._on_tick(pair, spec.value)
        direction = sign if spec.sign == "#" else spec.sign
        value = _to_tick(pair, base + delta if direction == "+" else base - delta, ROUND_HALF_EVEN)
        if value <= 0:
            raise invalid(field_name)
        return value

    def _build(
        self,
        account: str,
        pair: Pair,
        request: OrderRequest,
        now: int,
        *,
        replacing: _Order | None = None,
    ) -> _Order:
        side = request.type
        if side not in ("buy", "sell"):
            raise invalid("type")
        ordertype = request.ordertype
        if ordertype == "settle-position":
            raise error_from_kraken("EOrder:Unknown position")
        if ordertype not in ORDER_TYPES:
            raise invalid("ordertype")
        self._no_margin(pair, side, request)
        flags = self._oflags(request.oflags, side, ordertype)
        volume = self._volume(pair, request.volume, viqc="viqc" in flags)

        last = self._last_price.get(pair.key)
        price = price2 = _ZERO
        price_spec = price2_spec = None
        if ordertype != "market":
            if request.price is None:
                raise invalid("price")
            spec = parse_price_spec(request.price, "price")
            if ordertype.startswith("trailing"):
                if spec.sign != "+" or last is None:
                    raise invalid("price")
                if not spec.percent:
                    self._on_tick(pair, spec.value)
                price, price_spec = spec.value, spec
            else:
                price = self._resolve(pair, spec, "price", last, _hash_sign(side, ordertype))
        if ordertype.endswith("-limit"):
            if request.price2 is None:
                raise invalid("price2")
            spec2 = parse_price_spec(request.price2, "price2")
            if ordertype == "trailing-stop-limit":
                if spec2.sign not in ("+", "-"):
                    raise invalid("price2")
                if not spec2.percent:
                    self._on_tick(pair, spec2.value)
                price2, price2_spec = spec2.value, spec2
            else:
                price2 = self._resolve(pair, spec2, "price2", price, "+" if side == "buy" else "-")

        timeinforce = (request.timeinforce or "GTC").upper()
        if timeinforce not in ("GTC", "IOC", "GTD"):
            raise invalid("timeinforce")
        if timeinforce == "IOC" and "post" in flags:
            raise invalid("timeinforce")
        starttm = self._time(request.starttm, "starttm", now)
        expiretm = self._time(request.expiretm, "expiretm", now)
        if expiretm is not None and (
            expiretm <= max(now, starttm or now) or expiretm > now + _MONTH
        ):
            raise invalid("expiretm")
        if timeinforce == "GTD" and expiretm is None:
            raise invalid("expiretm")
        if timeinforce == "IOC" and (expiretm is not None or starttm is not None):
            raise invalid("timeinforce")

        userref = 0 if request.userref is None else parse_userref(request.userref)
        cl_ord_id = request.cl_ord_id
        if cl_ord_id is not None:
            if request.userref is not None or not _CL_ORD_ID.fullmatch(cl_ord_id):
                raise invalid("cl_ord_id")
            if any(o.cl_ord_id == cl_ord_id for o in self._open.get(account, {}).values()):
                raise invalid("cl_ord_id")
        stp = (request.stp_type or "cancel_newest").replace("-", "_")
        if stp not in _STP:
            raise invalid("stp_type")
        contingent = self._contingent(request, flags)

        order = _Order(
            txid="",
            account=account,
            pair=pair,
            side=side,
            ordertype=ordertype,
            vol=volume,
            price=price,
            price2=price2,
            price_spec=price_spec,
            price2_spec=price2_spec,
            oflags=tuple(sorted(flags)),
            timeinforce=timeinforce,
            userref=userref,
            cl_ord_id=cl_ord_id,
            stp_type=stp,
            opentm=now,
            starttm=starttm,
            expiretm=expiretm,
            contingent=contingent,
            lastupdated=now,
            age_ref=now,
        )
        if ordertype.startswith("trailing"):
            order.trail_ref = last
            order.stopprice = self._trail_stop(order, last)
        self._minimums(order, replacing)
        return order

    def _no_margin(self, pair: Pair, side: str, request: OrderRequest) -> None:
        leverage = request.leverage
        if leverage is not None and str(leverage).lower() not in ("", "none", "0", "1", "1:1"):
            text = str(leverage).split(":")[0]
            offered = pair.leverage_buy if side == "buy" else pair.leverage_sell
            if not (text.isascii() and text.isdigit()) or int(text) not in offered:
                raise invalid("leverage")
            raise error_from_kraken("EOrder:Cannot open position")
        if parse_bool(request.margin, "margin"):
            raise error_from_kraken("EOrder:Cannot open position")
        if parse_bool(request.reduce_only, "reduce_only"):
            raise error_from_kraken("EOrder:Reduce only:No position exists")

    def _oflags(self, text: str | None, side: str, ordertype: str) -> frozenset[str]:
        if not text:
            return frozenset()
        flags = frozenset(part.strip() for part in text.split(","))
        if not flags <= _OFLAGS or {"fcib", "fciq"} <= flags:
            raise invalid("oflags")
        if "post" in flags and ordertype != "limit":
            raise invalid("oflags")
        if "viqc" in flags and (ordertype != "market" or side != "buy"):
            raise invalid("oflags")
        return flags - {"nompp"}

    def _time(self, value: str | int | None, field_name: str, now: int) -> int | None:
        """``0``/None: none; ``+n``: n seconds from now; else a unix time in seconds."""
        if value is None or value in (0, "0"):
            return None
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not re.fullmatch(r"\+?[0-9]{1,10}(\.[0-9]{1,6})?", text):
            raise invalid(field_name)
        seconds = Decimal(text.lstrip("+"))
        micros = int(seconds * _SECOND)
        return now + micros if text.startswith("+") else micros

    def _contingent(self, request: OrderRequest, flags: frozenset[str]) -> Contingent | None:
        if request.close_ordertype is None:
            if request.close_price is not None or request.close_price2 is not None:
                raise invalid("close[ordertype]")
            return None
        if request.close_ordertype not in _CLOSE_TYPES or "viqc" in flags:
            raise invalid("close[ordertype]")
        if request.close_price is None:
            raise invalid("close[price]")
        parse_price_spec(request.close_price, "close[price]")
        price2 = None
        if request.close_ordertype.endswith("-limit"):
            if request.close_price2 is None:
                raise invalid("close[price2]")
            parse_price_spec(request.close_price2, "close[price2]")
            price2 = str(request.close_price2)
        return Contingent(
            ordertype=request.close_ordertype, price=str(request.close_price), price2=price2
        )

    def _reference_price(self, order: _Order) -> Decimal | None:
        """The price to judge cost minimum and market-order funds by."""
        if order.ordertype in ("limit", "stop-loss", "take-profit"):
            return order.price
        if order.ordertype in ("stop-loss-limit", "take-profit-limit"):
            return order.price2
        if order.ordertype == "trailing-stop":
            return order.stopprice
        if order.ordertype == "trailing-stop-limit":
            return self._trail_limit(order, order.stopprice)
        book = self._books[order.pair.key]
        best = book.best("ask" if order.side == "buy" else "bid")
        return best if best is not None else self._last_price.get(order.pair.key)

    def _minimums(self, order: _Order, replacing: _Order | None) -> None:
        pair = order.pair
        if order.viqc:
            if pair.costmin is not None and order.vol < pair.costmin:
                raise error_from_kraken("EOrder:Cost minimum not met")
            return
        if pair.ordermin is not None and order.vol < pair.ordermin:
            raise error_from_kraken("EOrder:Order minimum not met")
        reference = self._reference_price(order)
        if (
            pair.costmin is not None
            and reference is not None
            and order.vol * reference < pair.costmin
        ):
            raise error_from_kraken("EOrder:Cost minimum not met")

    def _admit(self, order: _Order) -> tuple[str, Decimal] | None:
        """Mode, open-order limits and funds; raises Kraken's errors.

        Returns the order's required hold when that is what was checked (every type but
        market: the caller places it without computing it again), else None.
        """
        pair = order.pair
        state = self._state(pair.key)
        if state == "post_only" and not (order.ordertype == "limit" and "post" in order.oflags):
            raise error_from_kraken("EService:Market in post_only mode")
        if state == "limit_only" and order.ordertype != "limit":
            raise error_from_kraken("EService:Market in limit_only mode")
        if not self._rate.is_exempt(order.account):  # exempt: no caps, and no O(n) scan
            mine = self._open_by_pair.get((order.account, pair.key), {})
            if len(mine) >= self.tier.max_open_orders:
                raise error_from_kraken("EOrder:Orders limit exceeded")
            if order.starttm is not None and order.starttm > self._now:
                scheduled = sum(1 for o in mine.values() if o.status == "pending")
                if scheduled >= self.tier.max_scheduled_orders:
                    raise error_from_kraken("EOrder:Scheduled orders limit exceeded")
        asset, need = self._funds_needed(order)
        if self.ledger.available(order.account, asset) < need:
            raise error_from_kraken("EOrder:Insufficient funds")
        return None if order.ordertype == "market" else (asset, need)

    def _funds_needed(self, order: _Order) -> tuple[str, Decimal]:
        """What must be available to accept ``order``: its hold, or for market orders what
        executing it would take (a market buy: the cost of sweeping the asks)."""
        pair = order.pair
        if order.ordertype != "market":
            return self._required_hold(order)
        taker = self._fee_pct(order.account, pair, maker=False)
        if order.side == "sell":
            fee = _ZERO
            if order.fee_in_base:
                fee = round_up(order.vol * taker / 100, self.markets.asset(pair.base).decimals)
            return pair.base, order.vol + fee
        quote_places = self.markets.asset(pair.quote).decimals
        if order.viqc:
            fee = _ZERO if order.fee_in_base else round_up(order.vol * taker / 100, quote_places)
            return pair.quote, order.vol + fee
        cost, left = _ZERO, order.vol
        for level in self._books[pair.key].levels("ask"):
            take = min(left, level.volume)
            cost += round_up(take * level.price, quote_places)
            left -= take
            if left <= 0:
                break
        fee = _ZERO if order.fee_in_base else round_up(cost * taker / 100, quote_places)
        return pair.quote, cost + fee

    def _fee_pct(self, account: str, pair: Pair, *, maker: bool) -> Decimal:
        percent = pair.fee_percent(self._fee_volume.get(account, _ZERO), maker=maker)
        return _ZERO if percent is None else percent

    def _required_hold(self, order: _Order) -> tuple[str, Decimal]:
        """What an order must keep reserved: (asset, amount).

        Market orders (and triggered stop/take-profit market types) reserve nothing: they
        execute at once and spend only what is available.
        """
        pair = order.pair
        asset = pair.base if order.side == "sell" else pair.quote
        if not order.open or order.remaining <= 0:
            return asset, _ZERO
        if not order.waiting and order.limit_price is None:
            return asset, _ZERO
        taker = self._fee_pct(order.account, pair, maker=False)
        if order.side == "sell":
            need = order.remaining
            if order.fee_in_base:
                need += round_up(
                    order.remaining * taker / 100, self.markets.asset(pair.base).decimals
                )
            return asset, need
        price: Decimal | None
        if order.waiting:
            if order.ordertype in ("stop-loss-limit", "take-profit-limit"):
                price = order.price2
            elif order.ordertype == "trailing-stop-limit":
                price = self._trail_limit(order, order.stopprice)
            elif order.ordertype == "trailing-stop":
                price = order.stopprice
            else:
                price = order.price
        else:
            price = order.limit_price
        if price is None:  # pragma: no cover - market-like orders returned above
            return asset, _ZERO
        places = self.markets.asset(pair.quote).decimals
        cost = round_up(order.remaining * price, places)
        fee = _ZERO if order.fee_in_base else round_up(cost * taker / 100, places)
        return asset, cost + fee

    def _set_hold(self, order: _Order, hold: tuple[str, Decimal] | None = None) -> None:
        """Reserve what ``order`` needs now (``hold``: that, already computed by the caller)."""
        asset, need = self._required_hold(order) if hold is None else hold
        if order.hold_asset:
            self.ledger.hold(order.account, order.hold_asset, -order.hold)
        self.ledger.hold(order.account, asset, need)
        order.hold, order.hold_asset = need, asset

    # === internals: placing, matching, finishing ================================================

    def _place(
        self,
        order: _Order,
        now: int,
        events: list[Event | ContingentRejected],
        *,
        hold: tuple[str, Decimal] | None = None,
    ) -> None:
        """Register a built and admitted order (``hold``: its required hold, if known)."""
        order.txid = self._ids.next("O")
        self._orders[order.txid] = order
        self._open.setdefault(order.account, {})[order.txid] = order
        self._open_by_pair.setdefault((order.account, order.pair.key), {})[order.txid] = order
        if order.expiretm is not None or order.starttm is not None:
            self._timed[order.txid] = order
        self._set_hold(order, hold)
        view = self._view(order)
        events.append(OrderPlaced(time=now, order=view))
        if order.starttm is None or order.starttm <= now:
            self._timed_done(order)
            self._activate(order, now, events, placed=view)

    def _activate(
        self,
        order: _Order,
        now: int,
        events: list[Event | ContingentRejected],
        *,
        placed: OrderView | None = None,
    ) -> None:
        """``placed``: the view just taken by :meth:`_place` in the same call. Then the hold
        set there stands (pending and open orders hold the same), and the open view is that
        one with the new status and time (nothing else changed)."""
        order.status = "open"
        order.lastupdated = now
        if placed is None:
            self._set_hold(order)
            view = self._view(order)
        else:
            view = msgspec.structs.replace(placed, status="open", lastupdated=now)
        events.append(OrderOpened(time=now, order=view))
        if order.waiting:
            self._waiting[order.pair.key][order.txid] = order
        else:
            self._take(order, now, events)

    def _take(self, order: _Order, now: int, events: list[Event | ContingentRejected]) -> None:
        """Match ``order`` against the book as taker; rest, cancel or close what is left."""
        pair = order.pair
        book = self._books[pair.key]
        opposite = "ask" if order.side == "buy" else "bid"
        limit = order.limit_price
        if "post" in order.oflags and limit is not None:
            best = book.best(opposite)
            if best is not None and _crosses(order.side, limit, best):
                self._finish(order, "canceled", "Post only order", now, events)
                return
        quote_places = self.markets.asset(pair.quote).decimals
        stop_reason: str | None = None
        while order.open and order.remaining > 0:
            best = book.best(opposite)
            if best is None or (limit is not None and not _crosses(order.side, limit, best)):
                break
            maker = self._orders[book.queue(opposite, best)[0]]
            assert isinstance(maker, _Order)  # the books hold live orders only
            if maker.account == order.account:
                if order.stp_type in ("cancel_oldest", "cancel_both"):
                    self._finish(maker, "canceled", "Self trade prevention", now, events)
                if order.stp_type in ("cancel_newest", "cancel_both"):
                    self._finish(order, "canceled", "Self trade prevention", now, events)
                continue
            if order.viqc:
                quantity = round_down(order.remaining / best, pair.lot_decimals)
            else:
                quantity = order.remaining
            quantity = min(quantity, maker.remaining)
            if limit is None:
                quantity = min(quantity, self._affordable(order, best))
            if order.viqc and round_down(quantity * best, quote_places) <= 0:
                stop_reason = "dust"  # the quote left cannot buy one lot unit: done
                break
            if quantity <= 0:
                stop_reason = "Insufficient funds"
                break
            self._fill(order, maker=maker, price=best, quantity=quantity, now=now, events=events)
        if not order.open:
            return
        if order.remaining <= 0 or (stop_reason == "dust" and order.vol_exec > 0):
            self._finish(order, "closed", None, now, events)
        elif limit is not None and order.timeinforce != "IOC":
            if order.txid not in book:
                side = "bid" if order.side == "buy" else "ask"
                change = book.add(side, limit, order.txid, order.remaining, now=now)
                self._book_change(pair, change, order, now, events)
        else:
            reason = "Immediate or cancel" if limit is not None else "No liquidity"
            if stop_reason == "Insufficient funds":
                reason = stop_reason
            self._finish(order, "canceled", reason, now, events)

    def _affordable(self, order: _Order, price: Decimal) -> Decimal:
        """The most a market-like order can trade at ``price`` with the available balance."""
        pair = order.pair
        unit = quantum(pair.lot_decimals)
        taker = self._fee_pct(order.account, pair, maker=False)
        if order.side == "sell":
            available = self.ledger.available(order.account, pair.base)
            if not order.fee_in_base:
                return round_down(available, pair.lot_decimals)
            places = self.markets.asset(pair.base).decimals
            quantity = round_down(available / (1 + taker / 100), pair.lot_decimals)
            while (
                quantity > 0 and quantity + round_down(quantity * taker / 100, places) > available
            ):
                quantity -= unit
            return max(quantity, _ZERO)
        available = self.ledger.available(order.account, pair.quote)
        places = self.markets.asset(pair.quote).decimals
        rate = _ZERO if order.fee_in_base else taker
        quantity = round_down(available / (price * (1 + rate / 100)), pair.lot_decimals)
        while quantity > 0:
            cost = round_down(quantity * price, places)
            if cost + round_down(cost * rate / 100, places) <= available:
                break
            quantity -= unit
        return max(quantity, _ZERO)

    def _fill(
        self,
        taker: _Order,
        *,
        maker: _Order,
        price: Decimal,
        quantity: Decimal,
        now: int,
        events: list[Event | ContingentRejected],
    ) -> None:
        pair = taker.pair
        base_places = self.markets.asset(pair.base).decimals
        quote_places = self.markets.asset(pair.quote).decimals
        cost = round_down(quantity * price, quote_places)
        self._match_id += 1
        book = self._books[pair.key]
        change = book.set_volume(maker.txid, maker.remaining - quantity, now=now)
        self._book_change(pair, change, maker, now, events)
        for order, is_maker in ((taker, False), (maker, True)):
            percent = self._fee_pct(order.account, pair, maker=is_maker)
            trade_id = self._ids.next("T")
            if order.fee_in_base:
                fee_asset, fee = pair.base, round_down(quantity * percent / 100, base_places)
            else:
                fee_asset, fee = pair.quote, round_down(cost * percent / 100, quote_places)
            sign = 1 if order.side == "buy" else -1
            legs = ((pair.base, sign * quantity), (pair.quote, -sign * cost))
            ledger_ids = []
            for asset, amount in legs:
                leg_fee = fee if asset == fee_asset else _ZERO
                for entry in self.ledger.trade(
                    order.account, asset, amount, leg_fee, refid=trade_id, now=now
                ):
                    events.append(LedgerEntryAdded(time=now, entry=entry))
                    if entry.account == order.account:
                        ledger_ids.append(entry.ledger_id)
            if order.viqc:
                order.vol_exec += cost
                order.cost += quantity
            else:
                order.vol_exec += quantity
                order.cost += cost
            order.fee += fee
            order.trades.append(trade_id)
            order.lastupdated = now
            trade = TradeView(
                trade_id=trade_id,
                match_id=self._match_id,
                account=order.account,
                ordertxid=order.txid,
                pair=pair.key,
                wsname=pair.wsname,
                time=now,
                type=order.side,
                ordertype=order.ordertype,
                price=price,
                vol=quantity,
                cost=cost,
                fee=fee,
                fee_asset=fee_asset,
                maker=is_maker,
                userref=order.userref,
                cl_ord_id=order.cl_ord_id,
                ledgers=tuple(ledger_ids),
            )
            self._trades.setdefault(order.account, []).append(trade)
            self._set_hold(order)
            events.append(TradeExecuted(time=now, trade=trade))
            events.append(OrderFilled(time=now, order=self._view(order), trade_id=trade_id))
        events.append(
            PublicTrade(
                time=now,
                pair=pair.key,
                wsname=pair.wsname,
                price=price,
                volume=quantity,
                side="b" if taker.side == "buy" else "s",
                ordertype="l" if taker.limit_price is not None else "m",
                match_id=self._match_id,
            )
        )
        self._last_price[pair.key] = price
        if maker.remaining <= 0:
            self._finish(maker, "closed", None, now, events)

    def _book_change(
        self,
        pair: Pair,
        change: tuple[Decimal, Decimal],
        order: _Order,
        now: int,
        events: list[Event | ContingentRejected],
    ) -> None:
        price, volume = change
        events.append(
            BookLevelChanged(
                time=now,
                pair=pair.key,
                wsname=pair.wsname,
                side="bid" if order.side == "buy" else "ask",
                price=price,
                volume=volume,
            )
        )

    def _finish(
        self,
        order: _Order,
        status: str,
        reason: str | None,
        now: int,
        events: list[Event | ContingentRejected],
    ) -> None:
        if not order.open:
            return
        book = self._books[order.pair.key]
        if order.txid in book:
            self._book_change(order.pair, book.remove(order.txid, now=now), order, now, events)
        order.status = status
        order.closetm = now
        order.lastupdated = now
        order.cancel_reason = reason
        self._open.get(order.account, {}).pop(order.txid, None)
        self._open_by_pair.get((order.account, order.pair.key), {}).pop(order.txid, None)
        self._waiting[order.pair.key].pop(order.txid, None)
        self._timed.pop(order.txid, None)
        self._set_hold(order)
        view = self._view(order)
        self._orders[order.txid] = view  # final: kept as this view from now on
        if status == "closed":
            events.append(OrderClosed(time=now, order=view))
        elif status == "expired":
            events.append(OrderExpired(time=now, order=view))
        else:
            events.append(OrderCanceled(time=now, order=view))
        if order.contingent is not None and order.vol_exec > 0:
            self._closes.append((order, now))

    def _cancel(
        self,
        account: str,
        orders: list[_Order],
        now: int,
        events: list[Event | ContingentRejected],
    ) -> CancelResult:
        costs: dict[str, Decimal] = {}
        for order in orders:
            age = Decimal(now - order.age_ref) / _SECOND
            costs[order.pair.key] = costs.get(order.pair.key, _ZERO) + cancel_cost(age)
        for key, cost in costs.items():
            self._rate.check(account, key, cost, now, cancel=True)
        for key, cost in costs.items():
            self._rate.charge(account, key, cost, now)
        for order in orders:
            self._finish(order, "canceled", "User requested", now, events)
        self._settle(now, events)
        return CancelResult(
            events=tuple(events), count=len(orders), txids=tuple(o.txid for o in orders)
        )

    def _cancel_everything(
        self, account: str, reason: str, now: int, events: list[Event | ContingentRejected]
    ) -> tuple[str, ...]:
        orders = list(self._open.get(account, {}).values())
        for order in orders:
            self._finish(order, "canceled", reason, now, events)
        return tuple(o.txid for o in orders)

    def _find(self, account: str, ref: str | int) -> list[_Order]:
        """Open orders of ``account`` named by a txid or a userref."""
        mine = self._open.get(account, {})
        if isinstance(ref, str) and _TXID.fullmatch(ref):
            order = mine.get(ref)
            if order is None:
                raise error_from_kraken("EOrder:Unknown order")
            return [order]
        try:
            userref = parse_userref(ref, "txid")
        except ExchangeError:
            raise invalid("txid") from None
        found = [o for o in mine.values() if o.userref == userref]
        if not found:
            raise error_from_kraken("EOrder:Unknown order")
        return found

    # === internals: triggers and conditional closes =============================================

    def _trail_stop(self, order: _Order, reference: Decimal | None) -> Decimal:
        spec = order.price_spec
        if reference is None or spec is None:
            return order.stopprice
        offset = reference * spec.value / 100 if spec.percent else spec.value
        if order.side == "sell":
            return max(_to_tick(order.pair, reference - offset, ROUND_FLOOR), _ZERO)
        return _to_tick(order.pair, reference + offset, ROUND_CEILING)

    def _trail_limit(self, order: _Order, stop: Decimal) -> Decimal:
        spec = order.price2_spec
        if spec is None:
            return order.price2
        offset = stop * spec.value / 100 if spec.percent else spec.value
        value = stop + offset if spec.sign == "+" else stop - offset
        return max(_to_tick(order.pair, value, ROUND_HALF_EVEN), order.pair.tick_size)

    def _should_trigger(self, order: _Order, last: Decimal) -> bool:
        if order.ordertype.startswith("trailing"):
            better = order.trail_ref is None or (
                last > order.trail_ref if order.side == "sell" else last < order.trail_ref
            )
            if better:
                order.trail_ref = last
                order.stopprice = self._trail_stop(order, last)
                self._set_hold(order)
            if order.side == "sell":
                return last <= order.stopprice
            return last >= order.stopprice
        stop = order.ordertype.startswith("stop-loss")
        rises = (order.side == "buy") == stop  # buy stops and sell take-profits fire going up
        return last >= order.price if rises else last <= order.price

    def _settle(self, now: int, events: list[Event | ContingentRejected]) -> None:
        """Fire triggers and place conditional closes until nothing more happens."""
        while True:
            if self._closes:
                parent, at = self._closes.pop(0)
                self._place_close(parent, max(at, now), events)
                continue
            if not any(self._waiting.values()):  # no trigger order anywhere: nothing to fire
                return
            fired = None
            for key, waiting in self._waiting.items():
                last = self._last_price.get(key)
                if not waiting or last is None or self._state(key) != "online":
                    continue
                for order in list(waiting.values()):
                    if self._should_trigger(order, last):
                        fired = order
                        break
                if fired is not None:
                    break
            if fired is None:
                return
            self._trigger(fired, now, events)

    def _trigger(self, order: _Order, now: int, events: list[Event | ContingentRejected]) -> None:
        del self._waiting[order.pair.key][order.txid]
        order.triggered = True
        order.lastupdated = now
        if order.ordertype == "trailing-stop-limit":
            order.limitprice = self._trail_limit(order, order.stopprice)
        elif order.ordertype.endswith("-limit"):
            order.limitprice = order.price2
        self._set_hold(order)
        events.append(OrderTriggered(time=now, order=self._view(order)))
        self._take(order, now, events)

    def _place_close(
        self, parent: _Order, now: int, events: list[Event | ContingentRejected]
    ) -> None:
        close = parent.contingent
        assert close is not None
        request = OrderRequest(
            pair=parent.pair.key,
            type="sell" if parent.side == "buy" else "buy",
            ordertype=close.ordertype,
            volume=round_down(parent.vol_exec, parent.pair.lot_decimals),
            price=close.price,
            price2=close.price2,
            userref=parent.userref,
        )
        try:
            self._tradeable(parent.pair)
            order = self._build(parent.account, parent.pair, request, now)
            self._admit(order)
        except ExchangeError as error:
            events.append(
                ContingentRejected(
                    time=now, parent_txid=parent.txid, account=parent.account,
                    error=error.kraken_error,
                )
            )  # fmt: skip
            return
        self._place(order, now, events)

    # === internals: views and descriptions ======================================================

    def _view(self, order: _Order) -> OrderView:
        pair = order.pair
        places = max(pair.pair_decimals, pair.ws_price_decimals or 0)
        average = _ZERO
        if order.vol_exec > 0 and order.cost > 0:
            ratio = order.vol_exec / order.cost if order.viqc else order.cost / order.vol_exec
            average = ratio.quantize(quantum(places))
        return OrderView(
            txid=order.txid,
            account=order.account,
            pair=pair.key,
            wsname=pair.wsname,
            altname=pair.altname,
            type=order.side,
            ordertype=order.ordertype,
            status=order.status,
            vol=order.vol,
            vol_exec=order.vol_exec,
            cost=order.cost,
            fee=order.fee,
            fee_asset=pair.base if order.fee_in_base else pair.quote,
            avg_price=average,
            price=order.price,
            price2=order.price2,
            stopprice=order.stopprice,
            limitprice=order.limitprice,
            oflags=order.oflags or ("fciq",),
            timeinforce=order.timeinforce,
            userref=order.userref,
            cl_ord_id=order.cl_ord_id,
            opentm=order.opentm,
            starttm=order.starttm,
            expiretm=order.expiretm,
            closetm=order.closetm,
            lastupdated=order.lastupdated,
            triggered=order.triggered,
            misc=("stopped",) if order.triggered else (),
            cancel_reason=order.cancel_reason,
            stp_type=order.stp_type,
            contingent=order.contingent,
            amended=order.amended,
            trades=tuple(order.trades),
        )

    def _spec_text(self, order: _Order, which: int) -> str | None:
        spec = order.price_spec if which == 1 else order.price2_spec
        if spec is not None:
            return spec.text()
        if which == 1:
            return None if order.ordertype == "market" else format(order.price, "f")
        return format(order.price2, "f") if order.ordertype.endswith("-limit") else None

    def _describe(self, order: _Order) -> str:
        """addOrderStatus ``descr``: altname, 8-decimal volume, pair_decimals prices."""
        pair = order.pair
        volume = format(order.vol.quantize(quantum(8)), "f")
        return f"{order.side} {volume} {pair.altname} @ {self._price_text(order)}"

    def _price_text(self, order: _Order) -> str:
        def fmt(which: int, value: Decimal) -> str:
            spec = order.price_spec if which == 1 else order.price2_spec
            return spec.text() if spec is not None else pair.format_price(value)

        pair = order.pair
        words = order.ordertype.replace("-limit", "").replace("-", " ")
        if order.ordertype == "market":
            return "market"
        if order.ordertype == "limit":
            return f"limit {fmt(1, order.price)}"
        text = f"{words} {fmt(1, order.price)}"
        if order.ordertype.endswith("-limit"):
            text += f" -> limit {fmt(2, order.price2)}"
        return text

    def _describe_close(self, order: _Order) -> str | None:
        close = order.contingent
        if close is None:
            return None
        words = close.ordertype.replace("-limit", "").replace("-", " ")
        text = f"close position @ {words} {close.price}"
        if close.price2 is not None:
            text += f" -> limit {close.price2}"
        return text


def _seconds(micros: int) -> str:
    seconds, fraction = divmod(micros, _SECOND)
    return f"{seconds}.{fraction:06d}" if fraction else str(seconds)
