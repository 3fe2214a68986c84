"""Kraken's REST API (spec 7) from asyncio: public and private calls, typed and Decimal-exact.

This module owns :class:`RestClient` and the typed results of its calls. It builds on
:func:`krakenws.auth.sign_request` (API-Sign, spec 7.1), :func:`krakenws.auth.nonce_source`
(nonces, spec 7.2) and the rate mirrors of :mod:`krakenws.ratelimit` (spec 7.6). It must not
import :mod:`krakenws.sandbox`, :mod:`krakenws.client` or the CLI.

Example (against the real exchange, or a sandbox's ``rest_url``)::

    import asyncio
    from krakenws.rest import RestClient

    async def main() -> None:
        async with RestClient(api_key="...", api_secret="...") as rest:
            print((await rest.ticker("XBT/USD"))["XXBTZUSD"].last_trade.price)
            print(await rest.balance())                       # {"ZUSD": Decimal("171288.6158")}
            token = await rest.get_websockets_token()         # for the private WebSocket
            placed = await rest.add_order(pair="XBTUSD", type="buy", ordertype="limit",
                                          volume="0.0001", price="20000.0")
            await rest.cancel_order(placed.txid[0])

    asyncio.run(main())

Numbers: every response is decoded with decimals as :class:`~decimal.Decimal` built from the
exact JSON text (a float never exists); Kraken's decimal strings become ``Decimal`` in the typed
results; parameters are sent as ``str``/``int``/``Decimal`` (a float is refused).

Errors: a non-empty ``error`` list raises :func:`krakenws.errors.error_from_kraken` of its first
entry (Kraken's string kept in ``.kraken_error``); warnings (``W...``) alone are not errors.
Connection failures raise :class:`~krakenws.errors.TransportError` (a lost connection
:class:`~krakenws.errors.ConnectionClosedError`, no answer within ``timeout``
:class:`~krakenws.errors.KrakenTimeoutError`, also a builtin :class:`TimeoutError`); a body
that is not Kraken's JSON envelope raises :class:`~krakenws.errors.ProtocolError`. No aiohttp
exception escapes.

Rate limits (``rate_limit=True``, the default): before a private call the client books its
cost on a :class:`~krakenws.ratelimit.RestRateMirror` and sleeps until it fits; trading calls
(AddOrder, AddOrderBatch, EditOrder, CancelOrder) book theirs on a per-pair
:class:`~krakenws.ratelimit.TradingRateMirror` instead (pairs are normalised to Kraken's REST
key with one AssetPairs call, made the first time it is needed). The mirror remembers the
orders this client placed, so cancel and edit costs follow their age; orders it did not place
are assumed brand new for an edit, and not counted for a cancel (their pair is unknown).
Each answered call *settles* its booking (no decay counted before the answer arrived), which
keeps the mirror an upper bound of the server's counter. Share ``trading_mirror`` with the
WebSocket client so both count one limiter, and feed it the ``ratecount`` of openOrders updates
(:meth:`~krakenws.ratelimit.TradingRateMirror.sync`).

If the server still answers ``EAPI:Rate limit exceeded`` or ``EService: Throttled``, a
*read-only* call (public, or private but not trading) is retried up to ``read_retries`` times
(default 3) after full-jitter backoff delays (:func:`~krakenws.ratelimit.backoff_delays`,
0.5 s doubling to 8 s); the mirror is first set to full, so the retry also waits for the
counter. Trading calls are never retried (they may not be idempotent): their
``EOrder:Rate limit exceeded`` is raised at once (and the pair's mirror set to full).

Private calls of one client are sent one at a time, so that their nonces reach Kraken in the
order they were drawn (spec 7.2).
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, TypeVar

import aiohttp
import msgspec

from krakenws.auth import form_value, nonce_source, sign_request
from krakenws.errors import (
    ConnectionClosedError,
    ExchangeError,
    KrakenTimeoutError,
    OrderRateLimitError,
    ProtocolError,
    RestRateLimitError,
    ThrottledError,
    TransportError,
    UsageError,
    error_from_kraken,
)
from krakenws.pairs import PairRegistry
from krakenws.protocol.messages import absolute_decimal, userref_value
from krakenws.ratelimit import (
    ADD_COST,
    TRADING_ENDPOINTS,
    RestRateMirror,
    TradingRateMirror,
    backoff_delays,
    batch_add_cost,
    rest_cost,
)

__all__ = [
    "ENDPOINTS",
    "AddOrderBatchResult",
    "AddOrderResult",
    "AssetInfo",
    "BatchOrderResult",
    "Candle",
    "CancelAllOrdersAfterResult",
    "CancelOrderResult",
    "ClosedOrdersResult",
    "DepthLevel",
    "DepthResult",
    "EditOrderResult",
    "ExtendedBalance",
    "LedgerInfo",
    "LedgersResult",
    "OHLCResult",
    "OrderDescription",
    "OrderInfo",
    "PublicTrade",
    "RestClient",
    "ServerTime",
    "SpreadEntry",
    "SpreadResult",
    "SystemStatus",
    "TickerCounts",
    "TickerInfo",
    "TickerLast",
    "TickerLevel",
    "TickerWindow",
    "TradeBalance",
    "TradeInfo",
    "TradesHistoryResult",
    "TradesResult",
    "WebSocketsToken",
]

DEFAULT_URL: Final = "https://api.kraken.com"
USER_AGENT: Final = "krakenws (Python asyncio REST client)"

ENDPOINTS: Final[Mapping[str, str]] = {
    # public
    "Time": "time",
    "SystemStatus": "system_status",
    "Assets": "assets",
    "AssetPairs": "asset_pairs",
    "Ticker": "ticker",
    "Depth": "depth",
    "OHLC": "ohlc",
    "Trades": "trades",
    "Spread": "spread",
    # private
    "Balance": "balance",
    "BalanceEx": "balance_ex",
    "TradeBalance": "trade_balance",
    "OpenOrders": "open_orders",
    "ClosedOrders": "closed_orders",
    "QueryOrders": "query_orders",
    "TradesHistory": "trades_history",
    "QueryTrades": "query_trades",
    "Ledgers": "ledgers",
    "QueryLedgers": "query_ledgers",
    "AddOrder": "add_order",
    "AddOrderBatch": "add_order_batch",
    "EditOrder": "edit_order",
    "CancelOrder": "cancel_order",
    "CancelAll": "cancel_all",
    "CancelAllOrdersAfter": "cancel_all_orders_after",
    "GetWebSocketsToken": "get_websockets_token",
}
"""Kraken endpoint name -> the :class:`RestClient` method that calls it."""

_T = TypeVar("_T")
_DECODER: Final = msgspec.json.Decoder(float_hook=Decimal)
_ZERO: Final = Decimal(0)


# --- typed results -----------------------------------------------------------------------------
# Field names follow Kraken's; where Kraken uses one letter, the Python name says what it is and
# ``msgspec.field(name=...)`` keeps the wire name: this is the one place of that mapping.


class ServerTime(msgspec.Struct, frozen=True):
    """``Time``: the server's clock."""

    unixtime: int
    rfc1123: str


class SystemStatus(msgspec.Struct, frozen=True):
    """``SystemStatus``: ``online``, ``maintenance``, ``cancel_only`` or ``post_only``."""

    status: str
    timestamp: str


class AssetInfo(msgspec.Struct, frozen=True):
    """One ``Assets`` entry."""

    aclass: str
    altname: str
    decimals: int
    display_decimals: int
    collateral_value: Decimal | None = None
    status: str | None = None


class TickerLevel(msgspec.Struct, frozen=True, array_like=True):
    """Best ask or bid of ``Ticker``: ``[price, whole_lot_volume, lot_volume]``."""

    price: Decimal
    whole_lot_volume: Decimal
    lot_volume: Decimal


class TickerLast(msgspec.Struct, frozen=True, array_like=True):
    """Last trade of ``Ticker``: ``[price, lot_volume]``."""

    price: Decimal
    volume: Decimal


class TickerWindow(msgspec.Struct, frozen=True, array_like=True):
    """A ``Ticker`` statistic for today and for the last 24 hours."""

    today: Decimal
    last_24h: Decimal


class TickerCounts(msgspec.Struct, frozen=True, array_like=True):
    """The number of trades today and in the last 24 hours."""

    today: int
    last_24h: int


class TickerInfo(msgspec.Struct, frozen=True):
    """One pair of ``Ticker`` (wire names ``a b c v p t l h o``)."""

    ask: TickerLevel = msgspec.field(name="a")
    bid: TickerLevel = msgspec.field(name="b")
    last_trade: TickerLast = msgspec.field(name="c")
    volume: TickerWindow = msgspec.field(name="v")
    vwap: TickerWindow = msgspec.field(name="p")
    trades: TickerCounts = msgspec.field(name="t")
    low: TickerWindow = msgspec.field(name="l")
    high: TickerWindow = msgspec.field(name="h")
    open: Decimal = msgspec.field(name="o")


class DepthLevel(msgspec.Struct, frozen=True, array_like=True):
    """One ``Depth`` level: ``[price, volume, timestamp]``."""

    price: Decimal
    volume: Decimal
    timestamp: int


class DepthResult(msgspec.Struct, frozen=True):
    """``Depth`` of one pair (``pair`` is Kraken's REST key)."""

    pair: str
    asks: list[DepthLevel]
    bids: list[DepthLevel]


class Candle(msgspec.Struct, frozen=True, array_like=True):
    """One ``OHLC`` row; the last row of a result is the running candle."""

    time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vwap: Decimal
    volume: Decimal
    count: int


class OHLCResult(msgspec.Struct, frozen=True):
    """``OHLC``: candles of one pair; ``last`` is the ``since`` for the next poll."""

    pair: str
    candles: list[Candle]
    last: int


class PublicTrade(msgspec.Struct, frozen=True, array_like=True):
    """One ``Trades`` row: ``[price, volume, time, side, ordertype, misc, trade_id]``."""

    price: Decimal
    volume: Decimal
    time: Decimal
    side: str
    ordertype: str
    misc: str
    trade_id: int | None = None


class TradesResult(msgspec.Struct, frozen=True):
    """``Trades`` of one pair; ``last`` (nanosecond id, as text) is the next ``since``."""

    pair: str
    trades: list[PublicTrade]
    last: str


class SpreadEntry(msgspec.Struct, frozen=True, array_like=True):
    """One ``Spread`` row: ``[time, bid, ask]``."""

    time: int
    bid: Decimal
    ask: Decimal


class SpreadResult(msgspec.Struct, frozen=True):
    """``Spread`` of one pair; ``last`` is the next ``since``."""

    pair: str
    spreads: list[SpreadEntry]
    last: int


class ExtendedBalance(msgspec.Struct, frozen=True):
    """One asset of ``BalanceEx``."""

    balance: Decimal
    hold_trade: Decimal = _ZERO
    credit: Decimal | None = None
    credit_used: Decimal | None = None


class TradeBalance(msgspec.Struct, frozen=True):
    """``TradeBalance`` (wire names ``eb tb m n c v e mf ml uv``)."""

    equivalent_balance: Decimal = msgspec.field(name="eb")
    trade_balance: Decimal = msgspec.field(name="tb")
    margin: Decimal = msgspec.field(name="m")
    unrealized_pnl: Decimal = msgspec.field(name="n")
    cost_basis: Decimal = msgspec.field(name="c")
    floating_valuation: Decimal = msgspec.field(name="v")
    equity: Decimal = msgspec.field(name="e")
    free_margin: Decimal = msgspec.field(name="mf")
    margin_level: Decimal | None = msgspec.field(default=None, name="ml")
    unexecuted_value: Decimal | None = msgspec.field(default=None, name="uv")


class OrderDescription(msgspec.Struct, frozen=True):
    """An order's ``descr`` in order queries.

    ``price`` and ``price2`` are Kraken's text: a number, or a price relative to the market
    for trailing stops (``"+50.0000%"``); :attr:`price_value` and :attr:`price2_value` read an
    absolute one as a Decimal (None for a relative one)."""

    pair: str
    type: str
    ordertype: str
    price: str
    price2: str
    leverage: str
    order: str
    close: str = ""

    @property
    def price_value(self) -> Decimal | None:
        """``price`` as a Decimal, or None when it is relative."""
        return absolute_decimal(self.price)

    @property
    def price2_value(self) -> Decimal | None:
        """``price2`` as a Decimal, or None when it is relative."""
        return absolute_decimal(self.price2)


class OrderInfo(msgspec.Struct, frozen=True):
    """One order of ``OpenOrders``, ``ClosedOrders`` or ``QueryOrders``.

    ``price`` is the average fill price; times are Unix seconds with a fraction."""

    status: str
    opentm: Decimal
    descr: OrderDescription
    vol: Decimal
    vol_exec: Decimal
    cost: Decimal
    fee: Decimal
    price: Decimal
    refid: str | None = None
    userref: int | None = None
    cl_ord_id: str | None = None
    starttm: Decimal = _ZERO
    expiretm: Decimal = _ZERO
    stopprice: Decimal = _ZERO
    limitprice: Decimal = _ZERO
    trigger: str | None = None
    misc: str = ""
    oflags: str = ""
    timeinforce: str | None = None
    closetm: Decimal | None = None
    reason: str | None = None
    trades: list[str] | None = None


class ClosedOrdersResult(msgspec.Struct, frozen=True):
    """``ClosedOrders``: one page (50) of closed orders and how many matched."""

    closed: dict[str, OrderInfo]
    count: int | None = None


class TradeInfo(msgspec.Struct, frozen=True):
    """One trade of ``TradesHistory`` or ``QueryTrades`` (``pair`` is the REST key)."""

    ordertxid: str
    pair: str
    time: Decimal
    type: str
    ordertype: str
    price: Decimal
    cost: Decimal
    fee: Decimal
    vol: Decimal
    postxid: str | None = None
    margin: Decimal = _ZERO
    leverage: str | None = None
    misc: str = ""
    trade_id: int | None = None
    maker: bool | None = None
    ledgers: list[str] | None = None


class TradesHistoryResult(msgspec.Struct, frozen=True):
    """``TradesHistory``: one page (50) of trades by trade id, and how many matched."""

    trades: dict[str, TradeInfo]
    count: int


class LedgerInfo(msgspec.Struct, frozen=True):
    """One entry of ``Ledgers`` or ``QueryLedgers``."""

    refid: str
    time: Decimal
    type: str
    asset: str
    amount: Decimal
    fee: Decimal
    balance: Decimal
    subtype: str = ""
    aclass: str = "currency"


class LedgersResult(msgspec.Struct, frozen=True):
    """``Ledgers``: one page (50) of entries by ledger id, and how many matched."""

    ledger: dict[str, LedgerInfo]
    count: int


class AddOrderDescription(msgspec.Struct, frozen=True):
    """What Kraken understood: ``order`` and, with a conditional close, ``close``."""

    order: str
    close: str | None = None


class AddOrderResult(msgspec.Struct, frozen=True):
    """``AddOrder``: the new order's id (none with ``validate``) and its description."""

    descr: AddOrderDescription
    txid: list[str] = msgspec.field(default_factory=list)


class BatchOrderResult(msgspec.Struct, frozen=True):
    """One order of ``AddOrderBatch``: placed (``txid``) or refused (``error``)."""

    descr: AddOrderDescription | None = None
    txid: str | None = None
    error: str | None = None


class AddOrderBatchResult(msgspec.Struct, frozen=True):
    """``AddOrderBatch``: one entry per order, in order."""

    orders: list[BatchOrderResult]


class EditOrderResult(msgspec.Struct, frozen=True):
    """``EditOrder``: the replacement order (``txid``) of ``originaltxid``."""

    descr: AddOrderDescription
    originaltxid: str
    status: str = "ok"
    txid: str | None = None
    volume: Decimal | None = None
    price: Decimal | None = None
    price2: Decimal | None = None
    orders_cancelled: int | None = None


class CancelOrderResult(msgspec.Struct, frozen=True):
    """``CancelOrder`` / ``CancelAll``: how many orders were cancelled."""

    count: int
    pending: bool | None = None


class CancelAllOrdersAfterResult(msgspec.Struct, frozen=True):
    """``CancelAllOrdersAfter``: RFC 3339 times; ``trigger_time`` is ``"0"`` when disabled."""

    current_time: str = msgspec.field(name="currentTime")
    trigger_time: str = msgspec.field(name="triggerTime")


class WebSocketsToken(msgspec.Struct, frozen=True):
    """``GetWebSocketsToken``: use ``token`` within ``expires`` seconds."""

    token: str
    expires: int


# --- helpers -----------------------------------------------------------------------------------


def _monotonic_micros() -> int:
    return time.monotonic_ns() // 1000


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str | int) and str(value).lower() in ("true", "1"))


def _params(*sources: Mapping[str, object]) -> dict[str, object]:
    merged: dict[str, object] = {}
    for source in sources:
        merged.update({k: v for k, v in source.items() if v is not None})
    return merged


def _convert(name: str, value: Any, kind: type[_T]) -> _T:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"{name}: unexpected result: {exc}") from None


def _one_pair(name: str, result: Any) -> tuple[str, Any, Any]:
    """(pair key, rows, last) of a pair-keyed result such as OHLC's."""
    if not isinstance(result, dict):
        raise ProtocolError(f"{name}: result is not an object")
    keys = [key for key in result if key != "last"]
    if len(keys) != 1:
        raise ProtocolError(f"{name}: expected one pair in the result, got {keys}")
    return keys[0], result[keys[0]], result.get("last")


def _socket_tracking_response(sockets: dict[int, Any]) -> type[aiohttp.ClientResponse]:
    """A response class that notes each connection's socket in ``sockets`` (by id)."""

    class _TrackingResponse(aiohttp.ClientResponse):
        async def start(self, connection: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
            transport = connection.transport
            sock = None if transport is None else transport.get_extra_info("socket")
            if sock is not None:
                for key in [k for k, s in sockets.items() if s.fileno() == -1]:
                    del sockets[key]
                sockets[id(sock)] = sock
            return await super().start(connection)

    return _TrackingResponse


def _default_backoff() -> Iterator[float]:
    return backoff_delays(0.5, 8.0, 2.0)


# --- the client --------------------------------------------------------------------------------


_KEY_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _key_lock(api_key: str) -> asyncio.Lock:
    """The lock every RestClient of this event loop holds while signing and sending a private
    call with ``api_key``: Kraken refuses a nonce lower than one it already saw, so calls on one
    key must reach it in nonce order, whichever client (a Client's ``rest``, the user's own)
    makes them."""
    locks = _KEY_LOCKS.setdefault(asyncio.get_running_loop(), {})
    lock = locks.get(api_key)
    if lock is None:
        lock = locks[api_key] = asyncio.Lock()
    return lock


class RestClient:
    """An asyncio client of Kraken's REST API; see the module docstring for the rules.

    ``url`` is the base (``https://api.kraken.com``, or a sandbox's ``rest_url``); calls go to
    ``{url}/0/public/<Name>`` and ``{url}/0/private/<Name>``. ``api_key``/``api_secret`` are
    needed for private calls only (this class reads no environment variables). ``tier`` picks
    the rate tables (``starter``, ``intermediate``, ``pro``). ``timeout`` is the seconds one
    HTTP exchange may take. ``session`` lends an :class:`aiohttp.ClientSession` (left open by
    :meth:`close`); without one the client makes its own. ``nonce`` is a callable returning
    the next nonce (default :func:`krakenws.auth.nonce_source` of the key). ``ssl`` is passed
    to aiohttp (an :class:`ssl.SSLContext` trusting the sandbox's CA, for instance).
    ``read_retries`` and ``backoff`` (a factory of delay iterators) govern the retries of
    read-only calls; ``trading_mirror``/``rest_mirror`` lend mirrors to share; ``pairs`` lends
    the registry used to normalise pair names; ``clock`` returns monotonic microseconds.
    """

    def __init__(
        self,
        *,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        api_secret: str | None = None,
        tier: str = "starter",
        rate_limit: bool = True,
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        nonce: Callable[[], int] | None = None,
        ssl: _ssl.SSLContext | None = None,
        read_retries: int = 3,
        backoff: Callable[[], Iterator[float]] | None = None,
        trading_mirror: TradingRateMirror | None = None,
        rest_mirror: RestRateMirror | None = None,
        pairs: PairRegistry | None = None,
        clock: Callable[[], int] = _monotonic_micros,
    ) -> None:
        if timeout <= 0:
            raise UsageError(f"timeout must be positive, got {timeout}")
        if read_retries < 0:
            raise UsageError(f"read_retries cannot be negative, got {read_retries}")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.api_secret = api_secret
        self.rate_limit = rate_limit
        self.timeout = timeout
        self.read_retries = read_retries
        self.trading_mirror = trading_mirror or TradingRateMirror(tier)
        """The per-pair trading counter mirror (share it with the WebSocket client)."""
        self.rest_mirror = rest_mirror or RestRateMirror(tier)
        """The REST call counter mirror of this key."""
        self.pairs = pairs
        """The pair registry used to key the trading mirror (loaded on first need)."""
        self._session = session
        self._own_session = session is None
        self._nonce = nonce
        self._own_nonce = nonce is None
        self._ssl = ssl
        self._backoff = backoff or _default_backoff
        self._clock = clock
        self._closed = False
        # Sockets of the client's own session, so that close() can wait until they are really
        # closed (a TLS shutdown finishes a few loop turns after ClientSession.close()).
        self._sockets: dict[int, Any] = {}

    # --- lifetime ------------------------------------------------------------------------------

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client's own HTTP session (a lent session stays open); idempotent."""
        self._closed = True
        if self._own_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()
            await self._sockets_closed()
        if self._own_nonce and self._nonce is not None:
            close = getattr(self._nonce, "close", None)
            if callable(close):
                close()

    async def _sockets_closed(self, limit: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            if all(sock.fileno() == -1 for sock in self._sockets.values()):
                break
            await asyncio.sleep(0.002)
        self._sockets.clear()

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise UsageError("this RestClient is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT},
                response_class=_socket_tracking_response(self._sockets),
            )
        return self._session

    # --- generic calls -------------------------------------------------------------------------

    async def public(
        self, name: str, params: Mapping[str, object] | None = None, /, **options: object
    ) -> Any:
        """``GET /0/public/<name>``; the raw ``result`` with decimals as ``Decimal``.

        Retried on rate-limit answers (read-only); see the module docstring."""
        query = _params(params or {}, options)
        fields = {k: text for k, v in query.items() if (text := form_value(k, v)) is not None}
        return await self._retrying(
            lambda: self._exchange(name, "GET", f"/0/public/{name}", query=fields), rest=False
        )

    async def private(
        self, name: str, params: Mapping[str, object] | None = None, /, **options: object
    ) -> Any:
        """``POST /0/private/<name>`` signed; the raw ``result`` with decimals as ``Decimal``.

        Non-trading calls wait on the REST mirror and are retried on rate-limit answers;
        trading calls are sent once and are not counted here (the typed trading methods count
        them on the trading mirror)."""
        body = _params(params or {}, options)
        if name in TRADING_ENDPOINTS:
            return await self._private_once(name, body)
        return await self._retrying(lambda: self._private_counted(name, body), rest=True)

    # --- plumbing ------------------------------------------------------------------------------

    async def _retrying(self, call: Callable[[], Any], *, rest: bool) -> Any:
        delays = self._backoff()
        attempt = 0
        while True:
            try:
                return await call()
            except (RestRateLimitError, ThrottledError) as refusal:
                if rest and self.rate_limit and isinstance(refusal, RestRateLimitError):
                    self.rest_mirror.sync(self.rest_mirror.tier.maximum, self._clock())
                if attempt >= self.read_retries:
                    raise
            attempt += 1
            delay = next(delays, None)
            if delay is None:
                raise UsageError("the backoff iterator ran out before read_retries")
            await asyncio.sleep(delay)

    async def _private_counted(self, name: str, body: Mapping[str, object]) -> Any:
        if not self.rate_limit:
            return await self._private_once(name, body)
        await self._sleep(self.rest_mirror.reserve(rest_cost(name), self._clock()))
        try:
            return await self._private_once(name, body)
        finally:
            self.rest_mirror.settle(self._clock())

    async def _private_once(self, name: str, body: Mapping[str, object]) -> Any:
        key, secret = self.api_key, self.api_secret
        if not key or not secret:
            raise UsageError(
                f"{name} is a private endpoint: create the RestClient with api_key and api_secret"
            )
        path = f"/0/private/{name}"
        json_body = name == "AddOrderBatch"
        async with _key_lock(key):
            if self._nonce is None:
                self._nonce = nonce_source(key)
            headers, text = sign_request(
                path, body, key, secret, self._nonce(), json_body=json_body
            )
            return await self._exchange(name, "POST", path, data=text, headers=headers)

    async def _sleep(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)

    async def _exchange(
        self,
        name: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        data: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        session = self._http()
        extra: dict[str, Any] = {}
        if self._ssl is not None:
            extra["ssl"] = self._ssl
        try:
            async with session.request(
                method,
                self.url + path,
                params=query,
                data=None if data is None else data.encode("utf-8"),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                **extra,
            ) as response:
                status = response.status
                raw = await response.read()
        except TimeoutError:
            raise KrakenTimeoutError(f"{name}: no answer within {self.timeout} s") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise ConnectionClosedError(f"{name}: connection lost: {exc}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{name}: {type(exc).__name__}: {exc}") from None
        return self._result(name, status, raw)

    def _result(self, name: str, status: int, raw: bytes) -> Any:
        try:
            document = _DECODER.decode(raw)
        except msgspec.DecodeError:
            if not 200 <= status < 300:
                raise TransportError(f"{name}: HTTP {status}") from None
            raise ProtocolError(f"{name}: the answer is not JSON: {raw[:80]!r}") from None
        if not isinstance(document, dict) or not isinstance(document.get("error"), list):
            raise ProtocolError(f"{name}: the answer has no 'error' list: {raw[:80]!r}")
        errors = [str(e) for e in document["error"] if not str(e).startswith("W")]
        if errors:
            raise error_from_kraken(errors[0])
        if "result" not in document:
            if not 200 <= status < 300:
                raise TransportError(f"{name}: HTTP {status}")
            raise ProtocolError(f"{name}: the answer has neither errors nor a result")
        return document["result"]

    async def _pair_key(self, pair: object) -> str:
        """The REST key of ``pair`` for the trading mirror (the given text if unknown)."""
        text = str(pair)
        if self.pairs is None:
            try:
                self.pairs = await self.pair_registry()
            except ExchangeError:
                return text
        found = self.pairs.get(text)
        return text if found is None else found.key

    async def _trading(
        self,
        name: str,
        body: Mapping[str, object],
        charges: Sequence[tuple[str | None, Decimal]],
        *,
        cancel: bool = False,
    ) -> Any:
        """Send a trading call once its (pair key, cost) charges fit the trading mirror.

        Nothing is booked while waiting (a caller that gives up leaves no charge behind).
        """
        mirror = self.trading_mirror
        counted = (
            [(key, cost) for key, cost in charges if key is not None and cost > 0]
            if self.rate_limit
            else []
        )
        while counted and (delay := mirror.take(counted, self._clock(), cancel=cancel)) > 0:
            await self._sleep(delay)
        try:
            return await self._private_once(name, body)
        except OrderRateLimitError:
            if self.rate_limit:
                for key, _ in charges:
                    if key is not None:
                        mirror.sync(key, mirror.tier.threshold, self._clock())
            raise
        finally:
            for key, _ in counted:
                mirror.settle(key, self._clock())

    # --- public endpoints ----------------------------------------------------------------------

    async def time(self) -> ServerTime:
        """``Time``."""
        return _convert("Time", await self.public("Time"), ServerTime)

    async def system_status(self) -> SystemStatus:
        """``SystemStatus``."""
        return _convert("SystemStatus", await self.public("SystemStatus"), SystemStatus)

    async def assets(
        self, asset: str | Sequence[str] | None = None, *, aclass: str | None = None
    ) -> dict[str, AssetInfo]:
        """``Assets``: asset code (``XXBT``) -> its information."""
        result = await self.public("Assets", asset=asset, aclass=aclass)
        return _convert("Assets", result, dict[str, AssetInfo])

    async def asset_pairs(
        self, pair: str | Sequence[str] | None = None, *, info: str | None = None
    ) -> dict[str, Any]:
        """``AssetPairs``: REST key -> the pair's fields, as sent (decimals as ``Decimal``).

        :meth:`pair_registry` gives the same pairs as a :class:`~krakenws.pairs.PairRegistry`.
        """
        result = await self.public("AssetPairs", pair=pair, info=info)
        if not isinstance(result, dict):
            raise ProtocolError("AssetPairs: result is not an object")
        return result

    async def pair_registry(self, pair: str | Sequence[str] | None = None) -> PairRegistry:
        """``AssetPairs`` as a :class:`~krakenws.pairs.PairRegistry` (the one pair normaliser)."""
        result = await self.asset_pairs(pair)
        try:
            return PairRegistry.from_asset_pairs(result)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ExchangeError | ProtocolError):
                raise
            raise ProtocolError(f"AssetPairs: unexpected result: {exc}") from None

    async def ticker(self, pair: str | Sequence[str] | None = None) -> dict[str, TickerInfo]:
        """``Ticker``: REST key -> the pair's ticker (every pair without ``pair``)."""
        return _convert("Ticker", await self.public("Ticker", pair=pair), dict[str, TickerInfo])

    async def depth(self, pair: str, count: int | None = None) -> DepthResult:
        """``Depth``: the order book of one pair (``count`` levels per side, 1-500)."""
        key, book, _ = _one_pair("Depth", await self.public("Depth", pair=pair, count=count))
        if not isinstance(book, dict):
            raise ProtocolError("Depth: the book is not an object")
        return _convert("Depth", {"pair": key, **book}, DepthResult)

    async def ohlc(
        self, pair: str, interval: int | None = None, since: int | None = None
    ) -> OHLCResult:
        """``OHLC``: candles of ``interval`` minutes (1, 5, 15, 30, 60, 240, 1440, ...)."""
        result = await self.public("OHLC", pair=pair, interval=interval, since=since)
        key, rows, last = _one_pair("OHLC", result)
        return _convert("OHLC", {"pair": key, "candles": rows, "last": last}, OHLCResult)

    async def trades(
        self, pair: str, since: int | str | None = None, count: int | None = None
    ) -> TradesResult:
        """``Trades``: recent public trades (``since`` is a previous ``last``)."""
        result = await self.public("Trades", pair=pair, since=since, count=count)
        key, rows, last = _one_pair("Trades", result)
        # Kraken sends ``last`` as a string; one sent as a number is the same id. Missing, it
        # stays None and the conversion refuses the answer (no "None" to page on with).
        cursor = last if last is None or isinstance(last, str) else str(last)
        return _convert("Trades", {"pair": key, "trades": rows, "last": cursor}, TradesResult)

    async def spread(self, pair: str, since: int | None = None) -> SpreadResult:
        """``Spread``: recent best bid/ask pairs."""
        key, rows, last = _one_pair("Spread", await self.public("Spread", pair=pair, since=since))
        return _convert("Spread", {"pair": key, "spreads": rows, "last": last}, SpreadResult)

    # --- private: funds ------------------------------------------------------------------------

    async def balance(self) -> dict[str, Decimal]:
        """``Balance``: asset code -> amount."""
        return _convert("Balance", await self.private("Balance"), dict[str, Decimal])

    async def balance_ex(self) -> dict[str, ExtendedBalance]:
        """``BalanceEx``: asset code -> balance and the part held by open orders."""
        result = await self.private("BalanceEx")
        return _convert("BalanceEx", result, dict[str, ExtendedBalance])

    async def trade_balance(self, asset: str | None = None) -> TradeBalance:
        """``TradeBalance`` in ``asset`` (default ``ZUSD``)."""
        return _convert(
            "TradeBalance", await self.private("TradeBalance", asset=asset), TradeBalance
        )

    # --- private: orders, trades, ledger -------------------------------------------------------

    async def open_orders(self, **params: object) -> dict[str, OrderInfo]:
        """``OpenOrders`` (``trades``, ``userref``, ``cl_ord_id``): txid -> order."""
        result = await self.private("OpenOrders", params)
        if not isinstance(result, dict):
            raise ProtocolError("OpenOrders: result is not an object")
        return _convert("OpenOrders", result.get("open"), dict[str, OrderInfo])

    async def closed_orders(self, **params: object) -> ClosedOrdersResult:
        """``ClosedOrders`` (``start``, ``end``, ``ofs``, ``closetime``, ``trades``, ...)."""
        result = await self.private("ClosedOrders", params)
        return _convert("ClosedOrders", result, ClosedOrdersResult)

    async def query_orders(
        self, txid: str | Sequence[str], **params: object
    ) -> dict[str, OrderInfo]:
        """``QueryOrders``: up to 50 orders by id."""
        result = await self.private("QueryOrders", params, txid=txid)
        return _convert("QueryOrders", result, dict[str, OrderInfo])

    async def trades_history(self, **params: object) -> TradesHistoryResult:
        """``TradesHistory`` (``type``, ``start``, ``end``, ``ofs``, ...); costs 2 calls."""
        result = await self.private("TradesHistory", params)
        return _convert("TradesHistory", result, TradesHistoryResult)

    async def query_trades(
        self, txid: str | Sequence[str], **params: object
    ) -> dict[str, TradeInfo]:
        """``QueryTrades``: up to 20 trades by id."""
        result = await self.private("QueryTrades", params, txid=txid)
        return _convert("QueryTrades", result, dict[str, TradeInfo])

    async def ledgers(self, **params: object) -> LedgersResult:
        """``Ledgers`` (``asset``, ``type``, ``start``, ``end``, ``ofs``); costs 2 calls."""
        return _convert("Ledgers", await self.private("Ledgers", params), LedgersResult)

    async def query_ledgers(
        self, id: str | Sequence[str], **params: object
    ) -> dict[str, LedgerInfo]:
        """``QueryLedgers``: up to 20 ledger entries by id; costs 2 calls."""
        result = await self.private("QueryLedgers", params, id=id)
        return _convert("QueryLedgers", result, dict[str, LedgerInfo])

    # --- private: trading ----------------------------------------------------------------------

    async def add_order(
        self,
        *,
        pair: str,
        type: str,
        ordertype: str,
        volume: Decimal | str | int,
        price: Decimal | str | int | None = None,
        price2: Decimal | str | int | None = None,
        **options: object,
    ) -> AddOrderResult:
        """``AddOrder``; other parameters (``oflags``, ``timeinforce``, ``userref``,
        ``cl_ord_id``, ``validate``, ``**{"close[ordertype]": ...}``...) go in ``options``."""
        body = _params(
            {
                "pair": pair,
                "type": type,
                "ordertype": ordertype,
                "volume": volume,
                "price": price,
                "price2": price2,
            },
            options,
        )
        key = await self._pair_key(pair) if self.rate_limit else None
        cost = _ZERO if _truthy(options.get("validate")) else ADD_COST
        result = _convert(
            "AddOrder", await self._trading("AddOrder", body, [(key, cost)]), AddOrderResult
        )
        if key is not None:
            now = self._clock()
            named = options.get("cl_ord_id")
            for txid in result.txid:
                self.trading_mirror.track_order(
                    txid,
                    key,
                    now,
                    userref=userref_value(options.get("userref")),
                    cl_ord_id=named if isinstance(named, str) else None,
                )
        return result

    async def add_order_batch(
        self, orders: Sequence[Mapping[str, object]], *, pair: str, **options: object
    ) -> AddOrderBatchResult:
        """``AddOrderBatch``: 2 to 15 orders (dicts of AddOrder fields) on one pair.

        Sent as JSON. A refused order comes back with ``error`` set; the others stand."""
        body = _params({"pair": pair, "orders": [_params(order) for order in orders]}, options)
        key = await self._pair_key(pair) if self.rate_limit else None
        cost = _ZERO if _truthy(options.get("validate")) else batch_add_cost(len(orders))
        result = _convert(
            "AddOrderBatch",
            await self._trading("AddOrderBatch", body, [(key, cost)]),
            AddOrderBatchResult,
        )
        if key is not None:
            now = self._clock()
            for entry in result.orders:
                if entry.txid:
                    self.trading_mirror.track_order(entry.txid, key, now)
        return result

    async def edit_order(self, *, txid: str | int, pair: str, **options: object) -> EditOrderResult:
        """``EditOrder``: replace an order (``volume``, ``price``, ``price2``, ``oflags``,
        ``newuserref``, ``validate``...); the replacement has a new ``txid``."""
        body = _params({"txid": txid, "pair": pair}, options)
        key = await self._pair_key(pair) if self.rate_limit else None
        validate = _truthy(options.get("validate"))
        cost = (
            _ZERO if validate else self.trading_mirror.order_cost("edit", str(txid), self._clock())
        )
        result = _convert(
            "EditOrder", await self._trading("EditOrder", body, [(key, cost)]), EditOrderResult
        )
        if key is not None and result.txid:
            mirror = self.trading_mirror
            userref = userref_value(options.get("newuserref"))
            if userref is None:
                userref = mirror.order_userref(str(txid))
            mirror.forget_order(str(txid))
            mirror.track_order(result.txid, key, self._clock(), userref=userref)
        return result

    async def cancel_order(
        self, txid: str | int | None = None, *, cl_ord_id: str | None = None
    ) -> CancelOrderResult:
        """``CancelOrder`` by order id, userref (an int) or ``cl_ord_id``."""
        if txid is None and cl_ord_id is None:
            raise UsageError("cancel_order needs a txid, a userref or a cl_ord_id")
        body = _params({"txid": txid, "cl_ord_id": cl_ord_id})
        mirror = self.trading_mirror
        # Every tracked order the cancel names (a txid, a userref, a cl_ord_id) is charged by
        # its age, as Kraken charges it.
        named = mirror.orders_named(
            [] if txid is None else [txid], [] if cl_ord_id is None else [cl_ord_id]
        )
        charges = mirror.order_charges("cancel", named, self._clock())
        result = _convert(
            "CancelOrder",
            await self._trading("CancelOrder", body, charges, cancel=True),
            CancelOrderResult,
        )
        for order in named:
            mirror.forget_order(order)
        return result

    async def cancel_all(self) -> CancelOrderResult:
        """``CancelAll``: cancel every open order."""
        result = _convert("CancelAll", await self.private("CancelAll"), CancelOrderResult)
        self.trading_mirror.forget_all_orders()
        return result

    async def cancel_all_orders_after(self, timeout: int) -> CancelAllOrdersAfterResult:
        """``CancelAllOrdersAfter``: arm (``timeout`` seconds, < 86400) or disarm (0) the
        dead man's switch."""
        result = await self.private("CancelAllOrdersAfter", timeout=timeout)
        return _convert("CancelAllOrdersAfter", result, CancelAllOrdersAfterResult)

    async def get_websockets_token(self) -> WebSocketsToken:
        """``GetWebSocketsToken``: a token for the private WebSocket (use within 15 min)."""
        result = await self.private("GetWebSocketsToken")
        return _convert("GetWebSocketsToken", result, WebSocketsToken)
