"""The engine's output: immutable views of orders, trades and ledger entries, and the events.

Every state change the engine makes is returned as one of the events below, in the order it
happened, so that a persistence layer can store them and the WebSocket/REST layers can fan them
out (openOrders, ownTrades, book, trade, ticker...). Pure values: msgspec structs, Decimals for
money, integer microseconds since the Unix epoch for times (:func:`format_time` gives the v1
``"sec.µs"`` text). Nothing here formats numbers for the wire; :class:`krakenws.pairs.Pair`
does that.

>>> format_time(1700220661985020)
'1700220661.985020'
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypeAlias

import msgspec

__all__ = [
    "BookLevelChanged",
    "Contingent",
    "DeadManSwitchFired",
    "Event",
    "LedgerEntry",
    "LedgerEntryAdded",
    "OrderAmended",
    "OrderCanceled",
    "OrderClosed",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderOpened",
    "OrderPlaced",
    "OrderTriggered",
    "OrderView",
    "PublicTrade",
    "TradeExecuted",
    "TradeView",
    "format_time",
]


def format_time(micros: int) -> str:
    """Integer microseconds as v1 writes times: seconds with 6 decimals."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{seconds}.{fraction:06d}"


class Contingent(msgspec.Struct, frozen=True, kw_only=True):
    """A conditional close order to place when its parent fills (``close[...]`` fields)."""

    ordertype: str
    price: str | None = None
    price2: str | None = None


class OrderView(msgspec.Struct, frozen=True, kw_only=True):
    """Everything openOrders / QueryOrders say about one order, at one moment.

    Volumes are in the base asset (the quote asset for ``viqc`` orders, whose ``cost`` is then in
    the base asset, as Kraken does). ``price`` is the limit price (or the trigger price of stop,
    take-profit and trailing orders), ``price2`` the limit price of ``*-limit`` trigger orders;
    both are absolute (relative inputs resolved at placement). ``stopprice`` is the current
    trigger level of trailing orders; ``limitprice`` the limit of a triggered ``*-limit``
    order. Times are integer microseconds; ``None`` where not applicable.
    """

    txid: str
    account: str
    pair: str
    """The pair's REST key (``XXBTZUSD``)."""
    wsname: str
    altname: str
    type: str
    ordertype: str
    status: str
    """``pending``, ``open``, ``closed``, ``canceled`` or ``expired``."""
    vol: Decimal
    vol_exec: Decimal
    cost: Decimal
    fee: Decimal
    fee_asset: str
    avg_price: Decimal
    price: Decimal
    price2: Decimal
    stopprice: Decimal
    limitprice: Decimal
    oflags: tuple[str, ...]
    timeinforce: str
    userref: int
    cl_ord_id: str | None
    opentm: int
    starttm: int | None
    expiretm: int | None
    closetm: int | None
    lastupdated: int
    triggered: bool
    misc: tuple[str, ...]
    cancel_reason: str | None
    stp_type: str
    contingent: Contingent | None
    amended: bool
    trades: tuple[str, ...]

    @property
    def is_open(self) -> bool:
        """Whether the order still lives (``pending`` or ``open``)."""
        return self.status in ("pending", "open")


class TradeView(msgspec.Struct, frozen=True, kw_only=True):
    """One side of one fill, as ownTrades / TradesHistory show it to ``account``."""

    trade_id: str
    match_id: int
    """The public trade id (shared by both sides of the fill)."""
    account: str
    ordertxid: str
    pair: str
    wsname: str
    time: int
    type: str
    ordertype: str
    price: Decimal
    vol: Decimal
    cost: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    userref: int
    cl_ord_id: str | None
    ledgers: tuple[str, ...]


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One balance movement. ``balance`` = the asset's balance after ``amount - fee``."""

    ledger_id: str
    refid: str
    """The trade id for trades/fees, the deposit reference for deposits."""
    time: int
    type: str
    """``trade``, ``fee`` (fee income of the house account), ``deposit`` or ``withdrawal``."""
    account: str
    asset: str
    amount: Decimal
    fee: Decimal
    balance: Decimal


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the order events: ``order`` is the order's state right after the change."""

    time: int
    order: OrderView


class OrderPlaced(OrderEvent, frozen=True, kw_only=True, tag=True):
    """A new order exists (status ``pending``): openOrders sends the full object."""


class OrderOpened(OrderEvent, frozen=True, kw_only=True, tag=True):
    """The order was accepted onto the book or into the trigger/schedule queue (``open``)."""


class OrderFilled(OrderEvent, frozen=True, kw_only=True, tag=True):
    """One fill: ``vol_exec``, ``cost``, ``fee``, ``avg_price`` are the new cumulative values."""

    trade_id: str


class OrderTriggered(OrderEvent, frozen=True, kw_only=True, tag=True):
    """A stop/take-profit/trailing order's condition was met; it now trades as market/limit."""


class OrderAmended(OrderEvent, frozen=True, kw_only=True, tag=True):
    """Amended in place (same txid); ``amend_id`` identifies the amend."""

    amend_id: str


class OrderClosed(OrderEvent, frozen=True, kw_only=True, tag=True):
    """Fully filled (status ``closed``)."""


class OrderCanceled(OrderEvent, frozen=True, kw_only=True, tag=True):
    """Canceled (status ``canceled``); ``order.cancel_reason`` says why."""


class OrderExpired(OrderEvent, frozen=True, kw_only=True, tag=True):
    """Its ``expiretm`` passed (status ``expired``)."""


class TradeExecuted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One side of a fill, for ``trade.account``'s ownTrades."""

    time: int
    trade: TradeView


class PublicTrade(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A fill as the public ``trade`` channel shows it: taker side ``b``/``s``, ``m``/``l``."""

    time: int
    pair: str
    wsname: str
    price: Decimal
    volume: Decimal
    side: str
    ordertype: str
    match_id: int


class BookLevelChanged(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A public price level's total volume changed; ``volume == 0`` means it is gone."""

    time: int
    pair: str
    wsname: str
    side: str
    """``bid`` or ``ask``."""
    price: Decimal
    volume: Decimal


class LedgerEntryAdded(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A ledger entry was written (balances changed)."""

    time: int
    entry: LedgerEntry


class DeadManSwitchFired(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """An account's cancelAllOrdersAfter timer ran out; ``count`` orders were canceled."""

    time: int
    account: str
    count: int


Event: TypeAlias = (
    OrderPlaced
    | OrderOpened
    | OrderFilled
    | OrderTriggered
    | OrderAmended
    | OrderClosed
    | OrderCanceled
    | OrderExpired
    | TradeExecuted
    | PublicTrade
    | BookLevelChanged
    | LedgerEntryAdded
    | DeadManSwitchFired
)
"""Every event the engine emits."""
