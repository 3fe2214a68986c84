"""Typed Kraken WebSocket API v1 messages, both directions, as frozen msgspec structs.

This module owns the *shape* of every v1 message and the one mapping between wire names and
Python attribute names (``channelID`` -> ``channel_id``, ``close[ordertype]`` ->
``close_ordertype``, ...). Turning text into these values and back is :mod:`.codec`'s job.

Rules that hold for every class here:

* Wire names that are already lowercase or snake_case (``ordertype``, ``vol_exec``, the ticker's
  one-letter keys) stay as they are; only camelCase and bracketed names are renamed, with
  ``msgspec.field(name=...)`` in this file and nowhere else.
* Prices, volumes, costs and timestamps are the exact wire *strings*. Floats would lose digits
  and ``Decimal`` fields would re-spell them (``str(Decimal("0.00000000")) == "0E-8"``), and the
  book checksum is computed over the wire text. ``*_decimal`` properties offer a ``Decimal`` view.
* Integers (``connectionID`` beyond 2**63, ``reqid``, ``sequence``) are exact Python ints.
* Optional fields default to ``msgspec.UNSET``, so an absent field and a JSON ``null`` stay
  distinct and encoding omits what was absent: decode -> encode reproduces the message.
* Structs check JSON types, not business rules: an out-of-range depth or a pair on a private
  subscribe decodes fine, so the sandbox can answer it with Kraken's own error text.

Requests (client -> server) form :data:`ClientMessage`; everything the server sends forms
:data:`ServerMessage`. The channel frames (``Ticker`` ... ``OwnTrades``) are positional JSON
arrays on the wire; the codec builds and writes them by hand.

Like everything in ``krakenws.protocol``, this module imports only the standard library and
msgspec: no asyncio, no aiohttp, no clock reads.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Final, TypeAlias

from msgspec import UNSET, Meta, Struct, UnsetType, field

__all__ = [
    "AddOrder",
    "AddOrderStatus",
    "AmendOrder",
    "AmendOrderStatus",
    "BookSnapshot",
    "BookUpdate",
    "CancelAll",
    "CancelAllOrdersAfter",
    "CancelAllOrdersAfterStatus",
    "CancelAllStatus",
    "CancelOrder",
    "CancelOrderStatus",
    "DECIMAL_TEXT",
    "absolute_decimal",
    "ClientMessage",
    "EditOrder",
    "EditOrderStatus",
    "ErrorEvent",
    "Heartbeat",
    "LegacyErrorMessage",
    "Number",
    "Ohlc",
    "OpenOrders",
    "OrderContingent",
    "OrderDescr",
    "OrderInfo",
    "OwnTrade",
    "OwnTrades",
    "Ping",
    "PingStatus",
    "Pong",
    "ReqIdEcho",
    "ServerMessage",
    "Spread",
    "Subscribe",
    "Subscription",
    "SubscriptionStatus",
    "SystemStatus",
    "Ticker",
    "Trade",
    "TradeEntry",
    "Unsubscribe",
    "userref_value",
]

ReqIdEcho: TypeAlias = int | str | None
"""``reqid`` as a server echoes it: exactly as the request sent it, even ``null`` or ``"a"``."""

DECIMAL_TEXT: Final = r"^-?[0-9]+(?:\.[0-9]+)?\Z"
"""How every amount, price and ``sec.µs`` time on the wire is written (``"0.00116300"``)."""

Number: TypeAlias = Annotated[str, Meta(pattern=DECIMAL_TEXT)]
"""A wire number kept as its exact text; decoding refuses text that is not one, so that the
``*_decimal`` readings of a decoded message never fail."""


_DECIMAL: Final = re.compile(DECIMAL_TEXT)


def absolute_decimal(text: str) -> Decimal | None:
    """``text``'s value if it is a plain wire number, else None: a price Kraken writes relative
    to the market (a trailing stop's ``"+50.0000%"``) has no absolute value.

    >>> absolute_decimal("25.50000"), absolute_decimal("+50.0000%")
    (Decimal('25.50000'), None)
    """
    return Decimal(text) if _DECIMAL.match(text) else None


def userref_value(value: object) -> int | None:
    """``value`` read as a userref (a signed 32-bit integer, given as an int or as the ASCII
    digits of one, possibly negative), or None when it is not one.

    >>> userref_value("-7"), userref_value(7), userref_value("2147483648"), userref_value(True)
    (-7, 7, None, None)
    """
    if isinstance(value, str):
        digits = value.removeprefix("-")
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 10):
            return None
        value = int(value)
    if type(value) is not int or not -(2**31) <= value < 2**31:
        return None
    return value


# --- client -> server --------------------------------------------------------------------------


class Subscription(Struct, frozen=True, kw_only=True, repr_omit_defaults=True):
    """The ``subscription`` object of subscribe/unsubscribe requests and of their acks."""

    name: str
    depth: int | UnsetType = UNSET
    interval: int | UnsetType = UNSET
    token: str | UnsetType = UNSET
    snapshot: bool | UnsetType = UNSET
    ratecounter: bool | UnsetType = UNSET
    consolidate_taker: bool | UnsetType = UNSET
    rebased: bool | UnsetType = UNSET
    # Only in acks: the account's trading-rate threshold for openOrders with ratecounter.
    maxratecount: int | UnsetType = UNSET


class _Request(Struct, frozen=True, kw_only=True, repr_omit_defaults=True, tag_field="event"):
    reqid: int | UnsetType = UNSET


class _TradingRequest(_Request, frozen=True, kw_only=True):
    token: str


class Ping(_Request, frozen=True, kw_only=True, tag="ping"):
    """``{"event":"ping"}``; answered by :class:`Pong` (or :class:`PingStatus` on a bad reqid)."""


class Subscribe(_Request, frozen=True, kw_only=True, tag="subscribe"):
    """Subscribe to a channel; ``pair`` is required for public channels, absent for private."""

    pair: list[str] | UnsetType = UNSET
    subscription: Subscription


class Unsubscribe(_Request, frozen=True, kw_only=True, tag="unsubscribe"):
    """Unsubscribe by pair + subscription (or, legacy, by ``channelID``)."""

    pair: list[str] | UnsetType = UNSET
    subscription: Subscription | UnsetType = UNSET
    channel_id: int | UnsetType = field(default=UNSET, name="channelID")


class AddOrder(_TradingRequest, frozen=True, kw_only=True, tag="addOrder"):
    """Place an order (spec 6.1). ``userref`` is a string of an int on the wire here."""

    ordertype: str
    type: str
    pair: str
    volume: str
    price: str | UnsetType = UNSET
    price2: str | UnsetType = UNSET
    leverage: str | UnsetType = UNSET
    margin: bool | UnsetType = UNSET
    reduce_only: bool | UnsetType = UNSET
    oflags: str | UnsetType = UNSET
    starttm: str | UnsetType = UNSET
    expiretm: str | UnsetType = UNSET
    deadline: str | UnsetType = UNSET
    userref: str | UnsetType = UNSET
    cl_ord_id: str | UnsetType = UNSET
    stp_type: str | UnsetType = UNSET
    sender_sub_id: str | UnsetType = UNSET
    # Kraken's own docs disagree (string vs boolean) and clients send "True"; keep what was sent.
    validate: bool | str | UnsetType = UNSET
    timeinforce: str | UnsetType = UNSET
    close_ordertype: str | UnsetType = field(default=UNSET, name="close[ordertype]")
    close_price: str | UnsetType = field(default=UNSET, name="close[price]")
    close_price2: str | UnsetType = field(default=UNSET, name="close[price2]")


class EditOrder(_TradingRequest, frozen=True, kw_only=True, tag="editOrder"):
    """Replace an order by a new one with a new txid (spec 6.2); ``orderid`` may be a userref."""

    orderid: str
    pair: str
    volume: str | UnsetType = UNSET
    price: str | UnsetType = UNSET
    price2: str | UnsetType = UNSET
    oflags: str | UnsetType = UNSET
    newuserref: str | UnsetType = UNSET
    validate: bool | str | UnsetType = UNSET


class AmendOrder(_TradingRequest, frozen=True, kw_only=True, tag="amendOrder"):
    """Modify an order in place, keeping its ids (spec 6.3); give ``txid`` or ``cl_ord_id``."""

    txid: str | UnsetType = UNSET
    cl_ord_id: str | UnsetType = UNSET
    volume: str | UnsetType = UNSET
    display_volume: str | UnsetType = UNSET
    limit_price: str | UnsetType = UNSET
    post_only: bool | UnsetType = UNSET
    trigger_price: str | UnsetType = UNSET
    pair: str | UnsetType = UNSET
    deadline: str | UnsetType = UNSET


class CancelOrder(_TradingRequest, frozen=True, kw_only=True, tag="cancelOrder"):
    """Cancel orders by txid (or userref) and/or ``cl_ord_id``; one status comes back per order."""

    txid: list[str] | UnsetType = UNSET
    cl_ord_id: list[str] | UnsetType = UNSET


class CancelAll(_TradingRequest, frozen=True, kw_only=True, tag="cancelAll"):
    """Cancel every open order of the account."""


class CancelAllOrdersAfter(_TradingRequest, frozen=True, kw_only=True, tag="cancelAllOrdersAfter"):
    """Arm (``timeout`` seconds), refresh or disable (``timeout=0``) the dead man's switch."""

    timeout: int


ClientMessage: TypeAlias = (
    Ping
    | Subscribe
    | Unsubscribe
    | AddOrder
    | EditOrder
    | AmendOrder
    | CancelOrder
    | CancelAll
    | CancelAllOrdersAfter
)
"""Every request a client sends (and the sandbox receives)."""


# --- server -> client: events ------------------------------------------------------------------


class _Event(Struct, frozen=True, kw_only=True, repr_omit_defaults=True, tag_field="event"):
    pass


class _Reply(_Event, frozen=True, kw_only=True):
    reqid: ReqIdEcho | UnsetType = UNSET


class _StatusReply(_Reply, frozen=True, kw_only=True):
    status: str
    error_message: str | UnsetType = field(default=UNSET, name="errorMessage")

    @property
    def is_error(self) -> bool:
        """Whether Kraken refused the request (``status == "error"``)."""
        return self.status == "error"


class SystemStatus(_Event, frozen=True, kw_only=True, tag="systemStatus"):
    """Sent on connect and on every engine status change."""

    connection_id: int = field(name="connectionID")
    status: str
    version: str


class Heartbeat(_Event, frozen=True, kw_only=True, tag="heartbeat"):
    """Sent after about a second without other traffic once something is subscribed."""


class Pong(_Reply, frozen=True, kw_only=True, tag="pong"):
    """The answer to :class:`Ping`."""


class PingStatus(_StatusReply, frozen=True, kw_only=True, tag="pingStatus"):
    """The error answer to a ping Kraken could not accept (e.g. a non-integer reqid)."""


class SubscriptionStatus(_StatusReply, frozen=True, kw_only=True, tag="subscriptionStatus"):
    """Ack of a (un)subscribe: one per pair, or one per private request; also errors."""

    channel_id: int | UnsetType = field(default=UNSET, name="channelID")
    channel_name: str | UnsetType = field(default=UNSET, name="channelName")
    pair: str | UnsetType = UNSET
    subscription: Subscription | UnsetType = UNSET


class AddOrderStatus(_StatusReply, frozen=True, kw_only=True, tag="addOrderStatus"):
    """Answer to :class:`AddOrder`; ``txid`` is a single string, ``descr`` free text."""

    txid: str | UnsetType = UNSET
    descr: str | UnsetType = UNSET
    cl_ord_id: str | UnsetType = UNSET
    pair: str | UnsetType = UNSET


class EditOrderStatus(_StatusReply, frozen=True, kw_only=True, tag="editOrderStatus"):
    """Answer to :class:`EditOrder`: the new ``txid`` and the replaced ``originaltxid``."""

    txid: str | UnsetType = UNSET
    originaltxid: str | UnsetType = UNSET
    descr: str | UnsetType = UNSET
    pair: str | UnsetType = UNSET


class AmendOrderStatus(_StatusReply, frozen=True, kw_only=True, tag="amendOrderStatus"):
    """Answer to :class:`AmendOrder`."""

    amend_id: str | UnsetType = UNSET
    txid: str | UnsetType = UNSET
    cl_ord_id: str | UnsetType = UNSET
    pair: str | UnsetType = UNSET


class CancelOrderStatus(_StatusReply, frozen=True, kw_only=True, tag="cancelOrderStatus"):
    """One per cancelled (or unknown) order of a :class:`CancelOrder`; it names no order."""


class CancelAllStatus(_StatusReply, frozen=True, kw_only=True, tag="cancelAllStatus"):
    """Answer to :class:`CancelAll`; ``count`` is an int in examples, a string in the schema."""

    count: int | str | UnsetType = UNSET


class CancelAllOrdersAfterStatus(
    _StatusReply, frozen=True, kw_only=True, tag="cancelAllOrdersAfterStatus"
):
    """Answer to :class:`CancelAllOrdersAfter`; ``trigger_time`` is ``"0"`` when disabled."""

    current_time: str | UnsetType = field(default=UNSET, name="currentTime")
    trigger_time: str | UnsetType = field(default=UNSET, name="triggerTime")


class ErrorEvent(_Reply, frozen=True, kw_only=True, tag="error"):
    """``{"event":"error","errorMessage":...}``: the answer to input Kraken could not parse."""

    error_message: str = field(name="errorMessage")


class LegacyErrorMessage(Struct, frozen=True, kw_only=True):
    """The untagged ``{"Error":"Exceeded msg rate"}`` shape some servers sent for rate limits."""

    error: str = field(name="Error")


# --- server -> client: public channel frames ---------------------------------------------------


class Ticker(Struct, frozen=True, kw_only=True):
    """``[channelID, {a,b,c,v,p,t,l,h,o}, "ticker", pair]``; keys keep their one-letter names.

    ``a``/``b`` = ``(price, whole_lot_volume, lot_volume)`` of the best ask/bid, ``c`` = last
    trade ``(price, lot_volume)``, the rest ``(today, last_24h)``: ``v`` volume, ``p`` VWAP,
    ``t`` trade count (ints), ``l`` low, ``h`` high, ``o`` open.
    """

    channel_id: int
    a: tuple[str, int, str]
    b: tuple[str, int, str]
    c: tuple[str, str]
    v: tuple[str, str]
    p: tuple[str, str]
    t: tuple[int, int]
    l: tuple[str, str]  # noqa: E741 -- Kraken's wire name
    h: tuple[str, str]
    o: tuple[str, str]
    channel_name: str
    pair: str

    @property
    def ask_price_decimal(self) -> Decimal:
        """Best ask price."""
        return Decimal(self.a[0])

    @property
    def bid_price_decimal(self) -> Decimal:
        """Best bid price."""
        return Decimal(self.b[0])

    @property
    def last_price_decimal(self) -> Decimal:
        """Price of the last trade."""
        return Decimal(self.c[0])


class Ohlc(Struct, frozen=True, kw_only=True):
    """``[channelID, [time, etime, open, high, low, close, vwap, volume, count], "ohlc-N", pair]``.

    ``time`` is the candle's last update, ``etime`` the end of its interval. ``count`` is an int
    in all real traffic but a string in Kraken's schema; whichever was sent is kept.
    """

    channel_id: int
    time: str
    etime: str
    open: str
    high: str
    low: str
    close: str
    vwap: str
    volume: str
    count: int | str
    channel_name: str
    pair: str

    @property
    def interval(self) -> int:
        """Candle length in minutes, from the channel name."""
        return int(self.channel_name[5:])

    @property
    def close_decimal(self) -> Decimal:
        """Close (latest) price of the candle."""
        return Decimal(self.close)


class TradeEntry(Struct, frozen=True, kw_only=True, array_like=True):
    """One trade ``[price, volume, time, side, order_type, misc]``.

    ``side`` is the taker's ``b``/``s``, ``order_type`` the taker's ``l``/``m``.
    """

    price: str
    volume: str
    time: str
    side: str
    order_type: str
    misc: str

    @property
    def price_decimal(self) -> Decimal:
        """Trade price."""
        return Decimal(self.price)

    @property
    def volume_decimal(self) -> Decimal:
        """Trade volume."""
        return Decimal(self.volume)


class Trade(Struct, frozen=True, kw_only=True):
    """``[channelID, [[price, volume, time, side, type, misc], ...], "trade", pair]``."""

    channel_id: int
    trades: list[TradeEntry]
    channel_name: str
    pair: str


class Spread(Struct, frozen=True, kw_only=True):
    """``[channelID, [bid, ask, timestamp, bidVolume, askVolume], "spread", pair]``."""

    channel_id: int
    bid: str
    ask: str
    timestamp: str
    bid_volume: str
    ask_volume: str
    channel_name: str
    pair: str

    @property
    def bid_decimal(self) -> Decimal:
        """Best bid price."""
        return Decimal(self.bid)

    @property
    def ask_decimal(self) -> Decimal:
        """Best ask price."""
        return Decimal(self.ask)


class BookSnapshot(Struct, frozen=True, kw_only=True):
    """The first book frame: ``{"as": [...], "bs": [...]}``, best level first on each side.

    Levels are ``[price, volume, timestamp]`` exactly as on the wire.
    """

    channel_id: int
    asks: list[list[str]]
    bids: list[list[str]]
    channel_name: str
    pair: str


class BookUpdate(Struct, frozen=True, kw_only=True):
    """A book delta: levels ``[price, volume, timestamp]`` or ``[..., "r"]`` (republish).

    ``asks``/``bids`` are ``[]`` when the frame had no ``"a"``/``"b"``; ``checksum`` is the
    ``"c"`` string (``None`` if absent). ``split`` marks the five-element form
    ``[id, {"a": ...}, {"b": ..., "c": ...}, name, pair]`` Kraken uses when both sides change.
    """

    channel_id: int
    asks: list[list[str]]
    bids: list[list[str]]
    checksum: str | None
    channel_name: str
    pair: str
    split: bool = False


# --- server -> client: private channel frames --------------------------------------------------


class OrderDescr(Struct, frozen=True, kw_only=True, repr_omit_defaults=True):
    """``descr`` of an open order; ``pair`` is the wsname, ``order`` a human-readable summary."""

    pair: str | UnsetType = UNSET
    position: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    ordertype: str | UnsetType = UNSET
    price: str | UnsetType = UNSET
    price2: str | UnsetType = UNSET
    leverage: str | UnsetType | None = UNSET
    margin: bool | UnsetType = UNSET
    order: str | UnsetType = UNSET
    close: str | UnsetType | None = UNSET


class OrderContingent(Struct, frozen=True, kw_only=True, repr_omit_defaults=True):
    """``contingent``: the conditional close order attached to an open order."""

    ordertype: str | UnsetType = UNSET
    price: str | UnsetType = UNSET
    price2: str | UnsetType = UNSET
    oflags: str | UnsetType = UNSET


class OrderInfo(Struct, frozen=True, kw_only=True, repr_omit_defaults=True):
    """One order in an ``openOrders`` frame; updates carry only what changed, so all is optional.

    ``userref`` is an int here (a string in :class:`AddOrder`); ``ratecount`` is a string or an
    int depending on the source, and kept as sent.
    """

    refid: str | UnsetType | None = UNSET
    userref: int | UnsetType = UNSET
    cl_ord_id: str | UnsetType = UNSET
    ext_ord_id: str | UnsetType = UNSET
    status: str | UnsetType = UNSET
    opentm: Number | UnsetType = UNSET
    starttm: Number | UnsetType | None = UNSET
    expiretm: Number | UnsetType | None = UNSET
    display_volume: Number | UnsetType = UNSET
    display_volume_remain: Number | UnsetType = UNSET
    contingent: OrderContingent | UnsetType = UNSET
    descr: OrderDescr | UnsetType = UNSET
    lastupdated: Number | UnsetType = UNSET
    vol: Number | UnsetType = UNSET
    vol_exec: Number | UnsetType = UNSET
    cost: Number | UnsetType = UNSET
    fee: Number | UnsetType = UNSET
    avg_price: Number | UnsetType = UNSET
    stopprice: Number | UnsetType = UNSET
    limitprice: Number | UnsetType = UNSET
    misc: str | UnsetType = UNSET
    oflags: str | UnsetType = UNSET
    timeinforce: str | UnsetType = UNSET
    trigger: str | UnsetType = UNSET
    sender_sub_id: str | UnsetType = UNSET
    cancel_reason: str | UnsetType = UNSET
    amend_reason: str | UnsetType = UNSET
    amended: bool | UnsetType = UNSET
    ratecount: int | str | UnsetType = UNSET


class OpenOrders(Struct, frozen=True, kw_only=True):
    """``[[{txid: {...}}, ...], "openOrders", {"sequence": n}]``; ``orders`` keeps wire order."""

    orders: list[tuple[str, OrderInfo]]
    sequence: int


class OwnTrade(Struct, frozen=True, kw_only=True, repr_omit_defaults=True):
    """One fill in an ``ownTrades`` frame; ``pair`` is the wsname."""

    ordertxid: str
    pair: str
    time: Number
    type: str
    ordertype: str
    price: Number
    cost: Number
    fee: Number
    vol: Number
    # Kraken's schema says integer; every real sample is the string "TKH2SE-M7IF5-CFI7LT".
    postxid: str | int | UnsetType = UNSET
    margin: Number | UnsetType = UNSET
    userref: int | UnsetType = UNSET
    cl_ord_id: str | UnsetType = UNSET
    margin_borrow: bool | UnsetType = UNSET
    ext_exec_id: str | UnsetType = UNSET

    @property
    def price_decimal(self) -> Decimal:
        """Average fill price."""
        return Decimal(self.price)

    @property
    def vol_decimal(self) -> Decimal:
        """Filled volume (base currency)."""
        return Decimal(self.vol)


class OwnTrades(Struct, frozen=True, kw_only=True):
    """``[[{tradeid: {...}}, ...], "ownTrades", {"sequence": n}]``; ``trades`` keeps wire order."""

    trades: list[tuple[str, OwnTrade]]
    sequence: int


ServerMessage: TypeAlias = (
    SystemStatus
    | Heartbeat
    | Pong
    | PingStatus
    | SubscriptionStatus
    | AddOrderStatus
    | EditOrderStatus
    | AmendOrderStatus
    | CancelOrderStatus
    | CancelAllStatus
    | CancelAllOrdersAfterStatus
    | ErrorEvent
    | LegacyErrorMessage
    | Ticker
    | Ohlc
    | Trade
    | Spread
    | BookSnapshot
    | BookUpdate
    | OpenOrders
    | OwnTrades
)
"""Every message a server sends (and a client receives)."""
