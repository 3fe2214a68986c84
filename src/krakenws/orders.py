"""The account's orders as the private feeds tell them: a pure, incremental view.

:class:`OrderTracker` folds ``openOrders`` and ``ownTrades`` frames into one
:class:`OrderState` per order id: its status, cumulative ``vol_exec``/``cost``/``fee``/
``avg_price``, and the fills (own trades) that belong to it, each fill counted once however
often a snapshot repeats it. Updates carry only the fields that changed (spec 5.3), so every
field is optional and merged into what is known.

A fresh ``openOrders`` snapshot (after a reconnect or a healed sequence gap) lists only the
orders still open; an order the tracker believed open but the snapshot omits ended while
nobody was listening. :meth:`OrderTracker.apply_open_orders` reports those ids as *vanished*
so the caller can learn their final state elsewhere (REST ``QueryOrders``) and feed it back
with :meth:`OrderTracker.settle`.

The tracker also keeps the feeds as sent, merged: every open order's ``openOrders`` entry with
its updates folded in, and the latest 50 own trades. :meth:`OrderTracker.open_orders_snapshot`
and :meth:`OrderTracker.own_trades_snapshot` rebuild from them the snapshot a new reader of an
already running feed would have been sent.

No I/O and no clock: times are Kraken's own ``sec.µs`` strings. Money stays exact:
every amount is a :class:`~decimal.Decimal` built from the wire text.

>>> from krakenws.protocol.codec import decode_server
>>> tracker = OrderTracker()
>>> frame = decode_server(
...     '[[{"OABC-1":{"status":"pending","vol":"1.5","vol_exec":"0","descr":'
...     '{"pair":"XBT/USD","type":"buy","ordertype":"limit","price":"100.0"}}}],'
...     '"openOrders",{"sequence":1}]'
... )
>>> tracker.apply_open_orders(frame).changed
['OABC-1']
>>> _ = tracker.apply_open_orders(decode_server(
...     '[[{"OABC-1":{"status":"closed","vol_exec":"1.5","cost":"150.0","fee":"0.39",'
...     '"avg_price":"100.0"}}],"openOrders",{"sequence":2}]'))
>>> order = tracker["OABC-1"]
>>> order.status, order.vol_exec, order.remaining, order.is_done
('closed', Decimal('1.5'), Decimal('0.0'), True)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from msgspec import UNSET, structs

from krakenws.protocol.messages import (
    OpenOrders,
    OrderDescr,
    OrderInfo,
    OwnTrade,
    OwnTrades,
    absolute_decimal,
)

__all__ = ["DONE_STATUSES", "Fill", "OpenOrdersResult", "OrderState", "OrderTracker"]

DONE_STATUSES: Final = frozenset({"closed", "canceled", "expired"})
"""Statuses after which an order never changes again."""

_ZERO: Final = Decimal(0)
SNAPSHOT_TRADES: Final = 50
"""How many own trades an ``ownTrades`` snapshot lists (spec 5.4)."""


@dataclass(frozen=True)
class Fill:
    """One own trade: a (partial) execution of an order."""

    trade_id: str
    txid: str
    pair: str
    side: str
    ordertype: str
    price: Decimal
    volume: Decimal
    cost: Decimal
    fee: Decimal
    time: str

    @classmethod
    def from_wire(cls, trade_id: str, trade: OwnTrade) -> Fill:
        """A fill from an ``ownTrades`` entry."""
        return cls(
            trade_id=trade_id,
            txid=trade.ordertxid,
            pair=trade.pair,
            side=trade.type,
            ordertype=trade.ordertype,
            price=Decimal(trade.price),
            volume=Decimal(trade.vol),
            cost=Decimal(trade.cost),
            fee=Decimal(trade.fee),
            time=trade.time,
        )


@dataclass
class OrderState:
    """What is known of one order; amounts are exact Decimals, ``None`` where not yet known.

    ``price``/``price2`` are ``None`` for a relative price (a trailing stop's ``+50.0000%``;
    ``description`` keeps the text); ``ratecount`` is a Decimal (it decays by fractions)."""

    txid: str
    status: str = "unknown"
    pair: str | None = None
    side: str | None = None
    ordertype: str | None = None
    price: Decimal | None = None
    price2: Decimal | None = None
    volume: Decimal | None = None
    vol_exec: Decimal = _ZERO
    cost: Decimal = _ZERO
    fee: Decimal = _ZERO
    avg_price: Decimal | None = None
    userref: int | None = None
    cl_ord_id: str | None = None
    opentm: str | None = None
    lastupdated: str | None = None
    oflags: str | None = None
    timeinforce: str | None = None
    description: str | None = None
    cancel_reason: str | None = None
    ratecount: Decimal | None = None
    fills: list[Fill] = field(default_factory=list)

    @property
    def is_done(self) -> bool:
        """Whether the order is closed, canceled or expired (it will not change again)."""
        return self.status in DONE_STATUSES

    @property
    def is_filled(self) -> bool:
        """Whether the whole volume has executed."""
        return self.volume is not None and self.vol_exec >= self.volume

    @property
    def remaining(self) -> Decimal | None:
        """Volume still to execute (None while the order's volume is unknown)."""
        return None if self.volume is None else self.volume - self.vol_exec

    @property
    def filled_volume(self) -> Decimal:
        """The sum of this order's fills seen on ``ownTrades`` (may lag ``vol_exec``)."""
        return sum((fill.volume for fill in self.fills), _ZERO)

    def merge(self, info: OrderInfo) -> None:
        """Fold one ``openOrders`` entry (full or partial) into this state."""
        for source, fields in ((info, _ORDER_FIELDS), (info.descr, _DESCR_FIELDS)):
            if source is UNSET:
                continue
            for wire, attribute, convert in fields:
                value = getattr(source, wire)
                if value is not UNSET and value is not None:
                    setattr(self, attribute, convert(value))


def _same(value: Any) -> Any:
    return value


def _number(value: Any) -> Decimal | None:
    """A plain number's value, else None (never raising: a frame is not cut short by it)."""
    return absolute_decimal(str(value))


def _merged(known: OrderInfo, update: OrderInfo) -> OrderInfo:
    """``known`` with every field ``update`` carries (a ``descr`` merged the same way)."""
    changes = _present(update)
    descr = changes.get("descr")
    if descr is not None and known.descr is not UNSET:
        changes["descr"] = structs.replace(known.descr, **_present(descr))
    return structs.replace(known, **changes)


def _present(struct: OrderInfo | OrderDescr) -> dict[str, Any]:
    """The fields a (partial) entry carries: every one not UNSET."""
    return {
        name: value
        for name in struct.__struct_fields__
        if (value := getattr(struct, name)) is not UNSET
    }


def _time_key(text: str | Any) -> Decimal:
    """Kraken's ``sec.µs`` text as a sort key (missing or malformed: the oldest)."""
    try:
        value = Decimal(text) if isinstance(text, str) else _ZERO
    except ArithmeticError:
        return _ZERO
    return value if value.is_finite() else _ZERO


# (wire field, OrderState attribute, conversion) for openOrders entries and their ``descr``.
_ORDER_FIELDS: Final[tuple[tuple[str, str, Callable[[Any], Any]], ...]] = (
    ("status", "status", _same),
    ("vol", "volume", Decimal),
    ("vol_exec", "vol_exec", Decimal),
    ("cost", "cost", Decimal),
    ("fee", "fee", Decimal),
    ("avg_price", "avg_price", Decimal),
    ("userref", "userref", _same),
    ("cl_ord_id", "cl_ord_id", _same),
    ("opentm", "opentm", _same),
    ("lastupdated", "lastupdated", _same),
    ("oflags", "oflags", _same),
    ("timeinforce", "timeinforce", _same),
    ("cancel_reason", "cancel_reason", _same),
    ("ratecount", "ratecount", _number),
)
_DESCR_FIELDS: Final[tuple[tuple[str, str, Callable[[Any], Any]], ...]] = (
    ("pair", "pair", _same),
    ("type", "side", _same),
    ("ordertype", "ordertype", _same),
    ("price", "price", _number),
    ("price2", "price2", _number),
    ("order", "description", _same),
)


@dataclass
class OpenOrdersResult:
    """What one ``openOrders`` frame did to the tracker."""

    changed: list[str]
    """Order ids whose state changed, in frame order."""
    vanished: list[str]
    """Orders believed open that a snapshot no longer lists (ended unseen: look them up)."""


class OrderTracker:
    """Every order seen on the private feeds, by txid (a read-only mapping)."""

    def __init__(self) -> None:
        self._orders: dict[str, OrderState] = {}
        self._trade_ids: set[str] = set()
        self._wire: dict[str, OrderInfo] = {}  # open orders' entries, updates merged
        self._recent: deque[tuple[str, OwnTrade]] = deque(maxlen=SNAPSHOT_TRADES)

    def apply_open_orders(self, frame: OpenOrders) -> OpenOrdersResult:
        """Merge an ``openOrders`` frame; a ``sequence`` 1 frame is a full snapshot."""
        changed: list[str] = []
        listed: set[str] = set()
        if frame.sequence == 1:
            self._wire.clear()
        for txid, info in frame.orders:
            state = self.state(txid)
            state.merge(info)
            listed.add(txid)
            changed.append(txid)
            if state.is_done:
                self._wire.pop(txid, None)
            else:
                known = self._wire.get(txid)
                self._wire[txid] = info if known is None else _merged(known, info)
        vanished: list[str] = []
        if frame.sequence == 1:
            vanished = [
                txid
                for txid, state in self._orders.items()
                if txid not in listed and state.status in ("pending", "open")
            ]
        return OpenOrdersResult(changed, vanished)

    def apply_own_trades(self, frame: OwnTrades) -> list[tuple[str, OwnTrade]]:
        """Record fills, each trade id once; returns the entries not seen before, in order."""
        fresh: list[tuple[str, OwnTrade]] = []
        for trade_id, trade in frame.trades:
            if trade_id in self._trade_ids:
                continue
            self._trade_ids.add(trade_id)
            fill = Fill.from_wire(trade_id, trade)
            state = self.state(fill.txid)
            state.fills.append(fill)
            if state.pair is None:
                state.pair = fill.pair
            if state.side is None:
                state.side = fill.side
            fresh.append((trade_id, trade))
            self._recent.append((trade_id, trade))
        return fresh

    def open_orders_snapshot(self, sequence: int) -> OpenOrders:
        """The open orders as one ``openOrders`` snapshot (newest first, as Kraken lists
        them), each entry what the feed sent with its updates merged; ``sequence`` is that
        of the last frame it reflects."""
        ordered = sorted(self._wire.items(), key=lambda item: _time_key(item[1].opentm))
        return OpenOrders(orders=ordered[::-1], sequence=sequence)

    def own_trades_snapshot(self, sequence: int) -> OwnTrades:
        """The latest :data:`SNAPSHOT_TRADES` own trades seen, newest first, as one
        ``ownTrades`` snapshot (shaped as Kraken's: without the update-only ``userref`` and
        ``cl_ord_id``); ``sequence`` is that of the last frame it reflects."""
        ordered = sorted(self._recent, key=lambda item: _time_key(item[1].time))
        # userref and cl_ord_id come in update messages only (spec 5.4), not in snapshots
        trades = [
            (trade_id, structs.replace(trade, userref=UNSET, cl_ord_id=UNSET))
            for trade_id, trade in reversed(ordered)
        ]
        return OwnTrades(trades=trades, sequence=sequence)

    def settle(self, txid: str, status: str, **amounts: Decimal | str | None) -> OrderState:
        """Record an order's final state learnt elsewhere (e.g. REST ``QueryOrders``)."""
        state = self.state(txid)
        state.status = status
        for name in ("vol_exec", "cost", "fee"):
            value = amounts.get(name)
            if value is not None:
                setattr(state, name, Decimal(value))
        avg = amounts.get("avg_price")
        if avg is not None:
            state.avg_price = Decimal(avg)
        reason = amounts.get("cancel_reason")
        if isinstance(reason, str):
            state.cancel_reason = reason
        if state.is_done:
            self._wire.pop(txid, None)
        return state

    def state(self, txid: str) -> OrderState:
        """The state of ``txid``, created empty (status ``unknown``) if never seen."""
        state = self._orders.get(txid)
        if state is None:
            state = self._orders[txid] = OrderState(txid)
        return state

    @property
    def open_orders(self) -> Mapping[str, OrderState]:
        """Orders currently pending or open."""
        return {t: s for t, s in self._orders.items() if s.status in ("pending", "open")}

    def __getitem__(self, txid: str) -> OrderState:
        return self._orders[txid]

    def get(self, txid: str) -> OrderState | None:
        """The state of ``txid``, or None if never seen."""
        return self._orders.get(txid)

    def __contains__(self, txid: object) -> bool:
        return txid in self._orders

    def __iter__(self) -> Iterator[str]:
        return iter(self._orders)

    def __len__(self) -> int:
        return len(self._orders)
