"""Kraken's REST API (``/0/public/*``, ``/0/private/*``) over the sandbox: dict in, dict out.

:class:`RestApi.handle` takes what an HTTP server received (method, path, query, headers, body)
and returns ``(http_status, payload)``, where payload is Kraken's ``{"error": [...], "result":
...}``. It owns: request parsing (form-encoded and JSON bodies), API-Key/API-Sign verification
with :func:`krakenws.auth.verify_api_sign`, nonces, key permissions, the REST call counter
(spec 7.6; tiers and costs from :mod:`krakenws.ratelimit`), parameter validation with Kraken's
error strings, and the exact result shapes of spec 7.4/7.5. Every failure is a Kraken-style
error; bad input never produces an HTTP 500.

Times and decimals that Kraken sends as JSON numbers (``opentm``, trade ``time``, fee tiers) are
written with :class:`msgspec.Raw` so that no float is ever involved.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl

import msgspec

from krakenws.auth import verify_api_sign
from krakenws.errors import ExchangeError, KrakenError, UnknownPairError, UsageError
from krakenws.pairs import Pair
from krakenws.protocol.messages import userref_value
from krakenws.ratelimit import REST_TIERS, TRADING_ENDPOINTS, rest_cost
from krakenws.sandbox.engine.events import LedgerEntry, OrderView, TradeView
from krakenws.sandbox.engine.requests import OrderRequest
from krakenws.sandbox.exchange import ApiKey, Exchange
from krakenws.sandbox.marketdata import OHLC_INTERVALS, MarketData

__all__ = [
    "MAX_BODY",
    "PERMISSIONS",
    "REST_TIERS",
    "RestApi",
    "RestCounter",
    "deadline_error",
    "rfc3339",
]

MAX_BODY: Final = 64 * 1024
PERMISSIONS: Final = (
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
_PAGE: Final = 50
_Item = TypeVar("_Item")
_DEADLINE_MAX: Final = 60 * 1_000_000  # a deadline is at most now + 60 s (spec 11)


class _RefusedError(Exception):
    """A Kraken error string to answer with (and the HTTP status, 200 unless the path is bad)."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _fail(message: str) -> _RefusedError:
    return _RefusedError(message)


def _invalid(field: str | None = None) -> _RefusedError:
    return _RefusedError(
        f"EGeneral:Invalid arguments:{field}" if field else "EGeneral:Invalid arguments"
    )


class RestCounter:
    """Kraken's REST call counter per API key: each call adds its cost, the counter decays."""

    def __init__(self, tier: str = "starter") -> None:
        if tier not in REST_TIERS:
            raise UsageError(f"unknown tier {tier!r}")
        self.maximum = REST_TIERS[tier].maximum
        self.decay = REST_TIERS[tier].decay_per_second
        self._state: dict[str, tuple[Decimal, int]] = {}

    def spend(self, key: str, cost: int, now: int) -> bool:
        """Add ``cost`` at ``now`` (µs); False, adding nothing, if that would pass the maximum."""
        value, since = self._state.get(key, (Decimal(0), now))
        elapsed = Decimal(max(0, now - since)) / 1_000_000
        value = max(Decimal(0), value - elapsed * self.decay)
        if value + cost > self.maximum:
            self._state[key] = (value, now)
            return False
        self._state[key] = (value + cost, now)
        return True


@dataclass(frozen=True)
class _Call:
    name: str
    params: dict[str, Any]
    key: ApiKey | None


def rfc3339(micros: int) -> str:
    """Kraken's second-precision UTC time text, a fraction of a second rounded up (spec 6.6:
    so a dead man's switch's trigger time is its current time plus exactly the timeout)."""
    seconds = -(-micros // 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deadline_error(deadline: Any, now: int) -> str | None:
    """Kraken's error for a trading request's RFC3339 ``deadline`` at ``now`` (µs), else None.

    ``EService:Deadline elapsed`` once it has passed; ``EGeneral:Invalid arguments:deadline``
    when malformed, without a time zone, or more than 60 s ahead. No deadline (None) passes.
    Shared by REST and WebSocket trading requests.
    """
    if deadline is None:
        return None
    try:
        moment = datetime.fromisoformat(str(deadline).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            return "EGeneral:Invalid arguments:deadline"
        micros = int(moment.timestamp() * 1_000_000)
    except (ValueError, OverflowError):
        return "EGeneral:Invalid arguments:deadline"
    if micros <= now:
        return "EService:Deadline elapsed"
    if micros > now + _DEADLINE_MAX:
        return "EGeneral:Invalid arguments:deadline"
    return None


def _raw_number(text: str) -> msgspec.Raw:
    return msgspec.Raw(text.encode())


def _seconds(micros: int) -> str:
    whole, fraction = divmod(micros, 1_000_000)
    return f"{whole}.{fraction:06d}"


def _fmt(value: Decimal, places: int) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places)):f}" if places else f"{value:.0f}"


class RestApi:
    """Answers Kraken REST requests from an :class:`~krakenws.sandbox.exchange.Exchange`."""

    def __init__(
        self,
        exchange: Exchange,
        market_data: MarketData,
        *,
        tier: str = "starter",
        rest_limits: bool = True,
    ) -> None:
        self.exchange = exchange
        self.market_data = market_data
        self.counter = RestCounter(tier)
        self.rest_limits = rest_limits
        self._public: dict[str, Callable[[dict[str, Any]], Any]] = {
            "Time": self._time,
            "SystemStatus": self._system_status,
            "Assets": self._assets,
            "AssetPairs": self._asset_pairs,
            "Ticker": self._ticker,
            "Depth": self._depth,
            "OHLC": self._ohlc,
            "Trades": self._trades,
            "Spread": self._spread,
        }
        self._private: dict[str, tuple[str, Callable[[_Call], Any]]] = {
            "Balance": ("query_funds", self._balance),
            "BalanceEx": ("query_funds", self._balance_ex),
            "TradeBalance": ("query_funds", self._trade_balance),
            "OpenOrders": ("query_open_orders", self._open_orders),
            "ClosedOrders": ("query_closed_orders", self._closed_orders),
            "QueryOrders": ("query_open_orders", self._query_orders),
            "TradesHistory": ("query_closed_orders", self._trades_history),
            "QueryTrades": ("query_closed_orders", self._query_trades),
            "Ledgers": ("query_ledger", self._ledgers),
            "QueryLedgers": ("query_ledger", self._query_ledgers),
            "AddOrder": ("create_orders", self._add_order),
            "AddOrderBatch": ("create_orders", self._add_order_batch),
            "EditOrder": ("create_orders", self._edit_order),
            "CancelOrder": ("cancel_orders", self._cancel_order),
            "CancelAll": ("cancel_orders", self._cancel_all),
            "CancelAllOrdersAfter": ("cancel_orders", self._cancel_all_orders_after),
            "GetWebSocketsToken": ("websocket", self._ws_token),
        }

    # --- entry point -------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, Any]]:
        """Answer one HTTP request; ``headers`` keys are matched case-insensitively."""
        try:
            result = self._dispatch(method.upper(), path, query, headers, body)
        except _RefusedError as failure:
            return failure.status, {"error": [failure.message]}
        except ExchangeError as error:
            return 200, {"error": [error.kraken_error]}
        except UnknownPairError:
            return 200, {"error": ["EQuery:Unknown asset pair"]}
        except KrakenError as error:
            return 200, {"error": [f"EGeneral:Invalid arguments:{error}"]}
        return 200, {"error": [], "result": result}

    def _dispatch(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Any:
        parts = path.rstrip("/").split("/")
        if len(parts) != 4 or parts[0] != "" or parts[1] != "0":
            raise _RefusedError("EGeneral:Unknown method", 404)
        kind, name = parts[2], parts[3]
        if kind == "public" and name in self._public:
            if method not in ("GET", "HEAD"):
                raise _RefusedError("EGeneral:Invalid arguments:method must be GET", 405)
            return self._public[name](dict(query))
        if kind == "private" and name in self._private:
            if method != "POST":
                raise _RefusedError("EGeneral:Invalid arguments:method must be POST", 405)
            if len(body) > MAX_BODY:
                raise _RefusedError("EGeneral:Invalid arguments:body too large", 413)
            permission, handler = self._private[name]
            call = self._authenticate(name, path, headers, body)
            key = call.key
            assert key is not None
            if permission not in key.permissions:
                raise _fail("EGeneral:Permission denied")
            if (
                self.rest_limits
                and name not in TRADING_ENDPOINTS
                and not self.counter.spend(key.key, rest_cost(name), self.exchange.now())
            ):
                raise _fail("EAPI:Rate limit exceeded")
            return handler(call)
        raise _RefusedError("EGeneral:Unknown method", 404)

    def _authenticate(self, name: str, path: str, headers: Mapping[str, str], body: bytes) -> _Call:
        lowered = {k.lower(): v for k, v in headers.items()}
        api_key = lowered.get("api-key", "")
        signature = lowered.get("api-sign", "")
        key = self.exchange.api_key(api_key) if api_key and _encodable(api_key) else None
        if key is None:
            raise _fail("EAPI:Invalid key")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail("EAPI:Bad request") from None
        params = _parse_body(text, lowered.get("content-type", ""))
        nonce_text = params.get("nonce")
        if not isinstance(nonce_text, str | int) or isinstance(nonce_text, bool):
            raise _fail("EAPI:Invalid nonce")
        nonce_str = str(nonce_text)
        if not _is_digits(nonce_str) or not 0 < int(nonce_str) < 2**64:
            raise _fail("EAPI:Invalid nonce")
        if not signature or not verify_api_sign(path, nonce_str, text, key.secret, signature):
            raise _fail("EAPI:Invalid signature")
        if not self.exchange.check_nonce(key.key, int(nonce_str)):
            raise _fail("EAPI:Invalid nonce")
        return _Call(name, params, key)

    # --- public ------------------------------------------------------------------------------

    def _time(self, query: dict[str, Any]) -> Any:
        now = self.exchange.now()
        moment = datetime.fromtimestamp(now // 1_000_000, UTC)
        return {
            "unixtime": now // 1_000_000,
            "rfc1123": moment.strftime("%a, %d %b %y %H:%M:%S +0000"),
        }

    def _system_status(self, query: dict[str, Any]) -> Any:
        now = self.exchange.now()
        moment = datetime.fromtimestamp(now // 1_000_000, UTC)
        return {
            "status": self.exchange.engine.system_status(),
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _asset_code(self, name: str) -> str | None:
        """An asset's code (``XXBT``) from any of its names (``XBT``, ``BTC``, ``xxbt``)."""
        markets = self.exchange.engine.markets
        by_name = {a.altname: a for a in markets.assets.values()} | dict(markets.assets)
        aliases = {"BTC": "XBT", "DOGE": "XDG"}
        asset = by_name.get(name.upper()) or by_name.get(aliases.get(name.upper(), ""))
        return None if asset is None else asset.code

    def _assets(self, query: dict[str, Any]) -> Any:
        markets = self.exchange.engine.markets
        wanted = _split(query.get("asset"))
        aclass = query.get("aclass")
        result = {}
        if wanted:
            for name in wanted:
                code = self._asset_code(name)
                if code is None:
                    raise _fail("EQuery:Unknown asset")
                result[code] = _json_ready(markets.assets[code].to_asset_info())
        else:
            result = {code: _json_ready(a.to_asset_info()) for code, a in markets.assets.items()}
        if aclass and aclass != "currency":
            return {}
        return result

    def _pairs(self, names: str | None, *, required: bool = False) -> list[Pair]:
        markets = self.exchange.engine.markets
        wanted = _split(names)
        if not wanted:
            if required:
                raise _invalid("pair")
            return list(markets)
        pairs = []
        for name in wanted:
            try:
                pairs.append(markets.pair(name))
            except (UnknownPairError, UsageError):
                raise _fail("EQuery:Unknown asset pair") from None
        return pairs

    def _asset_pairs(self, query: dict[str, Any]) -> Any:
        info = query.get("info", "info")
        if info not in ("info", "leverage", "fees", "margin"):
            raise _invalid("info")
        result = {}
        for pair in self._pairs(query.get("pair")):
            full = _json_ready(pair.to_asset_pair())
            if info == "leverage":
                entry = {
                    "leverage_buy": full["leverage_buy"],
                    "leverage_sell": full["leverage_sell"],
                }
            elif info == "fees":
                entry = {
                    "fees": full["fees"],
                    "fee_volume_currency": full.get("fee_volume_currency", "ZUSD"),
                }
            elif info == "margin":
                entry = {
                    "margin_call": full.get("margin_call", 80),
                    "margin_stop": full.get("margin_stop", 40),
                }
            else:
                entry = full
            result[pair.key] = entry
        return result

    def _wire_price(self, pair: Pair, value: Decimal) -> str:
        return _fmt(value, pair.ws_price_decimals or pair.pair_decimals)

    def _ticker(self, query: dict[str, Any]) -> Any:
        engine = self.exchange.engine
        now = self.exchange.now()
        result = {}
        for pair in self._pairs(query.get("pair")):
            book = engine.book(pair.key)
            stats = self.market_data.stats(pair.key, now)
            last = stats.last_price or engine.last_price(pair.key) or _mid(book) or Decimal(0)
            vol = pair.lot_decimals
            result[pair.key] = {
                "a": self._ticker_best(pair, book, "ask"),
                "b": self._ticker_best(pair, book, "bid"),
                "c": [self._wire_price(pair, last), _fmt(stats.last_volume, vol)],
                "v": [_fmt(stats.volume_today, vol), _fmt(stats.volume_24h, vol)],
                "p": self._two_prices(pair, last, stats.vwap_today or None, stats.vwap_24h or None),
                "t": [stats.trades_today, stats.trades_24h],
                "l": self._two_prices(pair, last, stats.low_today, stats.low_24h),
                "h": self._two_prices(pair, last, stats.high_today, stats.high_24h),
                "o": self._wire_price(pair, stats.open_today or last),
            }
        return result

    def _ticker_best(self, pair: Pair, book: Any, side: str) -> list[str]:
        levels = book.depth(side, 1)
        if not levels:
            return [self._wire_price(pair, Decimal(0)), "0", "0.000"]
        level = levels[0]
        return [self._wire_price(pair, level.price), str(int(level.volume)), _fmt(level.volume, 3)]

    def _two_prices(
        self, pair: Pair, fallback: Decimal, today: Decimal | None, day: Decimal | None
    ) -> list[str]:
        return [self._wire_price(pair, today or fallback), self._wire_price(pair, day or fallback)]

    def _depth(self, query: dict[str, Any]) -> Any:
        (pair,) = self._one_pair(query)
        count = _int_param(query, "count", 100, 1, 500)
        book = self.exchange.engine.book(pair.key)

        def side(name: str) -> list[list[Any]]:
            return [
                [
                    self._wire_price(pair, level.price),
                    _fmt(level.volume, pair.lot_decimals),
                    level.updated // 1_000_000,
                ]
                for level in book.depth(name, count)
            ]

        return {pair.key: {"asks": side("ask"), "bids": side("bid")}}

    def _one_pair(self, query: dict[str, Any]) -> list[Pair]:
        pairs = self._pairs(query.get("pair"), required=True)
        if len(pairs) != 1:
            raise _invalid("pair")
        return pairs

    def _ohlc(self, query: dict[str, Any]) -> Any:
        (pair,) = self._one_pair(query)
        interval = _int_param(query, "interval", 1, 1, 21600)
        if interval not in OHLC_INTERVALS:
            raise _invalid("interval")
        since = _int_param(query, "since", 0, 0, 2**63) * 1_000_000
        candles = self.market_data.candles(pair.key, interval)
        places = pair.pair_decimals
        rows = [
            [
                c.start // 1_000_000,
                _fmt(c.open, places),
                _fmt(c.high, places),
                _fmt(c.low, places),
                _fmt(c.close, places),
                _fmt(c.vwap, places),
                _fmt(c.volume, pair.lot_decimals),
                c.count,
            ]
            for c in candles
            if c.start >= since
        ]
        last = (
            candles[-2].start // 1_000_000
            if len(candles) > 1
            else (candles[-1].start // 1_000_000 if candles else self.exchange.now() // 1_000_000)
        )
        return {pair.key: rows, "last": last}

    def _trades(self, query: dict[str, Any]) -> Any:
        (pair,) = self._one_pair(query)
        since_ns = _int_param(query, "since", 0, 0, 2**63)
        count = _int_param(query, "count", 1000, 1, 1000)
        trades = self.market_data.recent_trades(pair.key, since_ns // 1000 if since_ns else None)
        # With ``since`` the oldest ``count`` trades after it (so that ``last`` pages forward
        # without gaps); without it the newest ``count``.
        trades = trades[:count] if since_ns else trades[-count:]
        rows = [
            [
                self._wire_price(pair, t.price),
                _fmt(t.volume, pair.lot_decimals),
                _raw_number(f"{_seconds(t.time)[:-2]}"),
                t.side,
                t.ordertype,
                "",
                t.match_id,
            ]
            for t in trades
        ]
        last = (
            str(trades[-1].time * 1000) if trades else str(since_ns or self.exchange.now() * 1000)
        )
        return {pair.key: rows, "last": last}

    def _spread(self, query: dict[str, Any]) -> Any:
        (pair,) = self._one_pair(query)
        since = _int_param(query, "since", 0, 0, 2**63) * 1_000_000
        points = self.market_data.spreads(pair.key, since or None)
        rows = [
            [p.time // 1_000_000, self._wire_price(pair, p.bid), self._wire_price(pair, p.ask)]
            for p in points
        ]
        last = points[-1].time // 1_000_000 if points else self.exchange.now() // 1_000_000
        return {pair.key: rows, "last": last}

    # --- private: funds ----------------------------------------------------------------------

    def _asset_places(self, code: str) -> int:
        try:
            return self.exchange.engine.markets.asset(code).decimals
        except (KeyError, UsageError, UnknownPairError):
            return 8

    def _balance(self, call: _Call) -> Any:
        ledger = self.exchange.engine.ledger
        account = call.key.account if call.key else ""
        return {
            code: _fmt(amount, self._asset_places(code))
            for code, amount in sorted(ledger.balances(account).items())
        }

    def _balance_ex(self, call: _Call) -> Any:
        engine = self.exchange.engine
        account = call.key.account if call.key else ""
        return {
            code: {
                "balance": _fmt(amount, self._asset_places(code)),
                "hold_trade": _fmt(engine.held(account, code), self._asset_places(code)),
            }
            for code, amount in sorted(engine.ledger.balances(account).items())
        }

    def _trade_balance(self, call: _Call) -> Any:
        engine = self.exchange.engine
        account = call.key.account if call.key else ""
        target = self._asset_code(str(call.params.get("asset", "ZUSD")))
        if target is None:
            raise _invalid("asset")
        total = Decimal(0)
        for code, amount in engine.ledger.balances(account).items():
            total += amount * self._convert(code, target)
        text = _fmt(total, 4)
        zero = "0.0000"
        return {
            "eb": text,
            "tb": text,
            "m": zero,
            "n": zero,
            "c": zero,
            "v": zero,
            "e": text,
            "mf": text,
            "uv": zero,
        }

    def _convert(self, source: str, target: str) -> Decimal:
        if source == target:
            return Decimal(1)
        engine = self.exchange.engine
        for pair in engine.markets:
            price = engine.last_price(pair.key) or _mid(engine.book(pair.key))
            if not price:
                continue
            if pair.base == source and pair.quote == target:
                return price
            if pair.base == target and pair.quote == source:
                return 1 / price
        return Decimal(0)

    # --- private: orders and trades ------------------------------------------------------------

    def _order_json(self, order: OrderView, *, with_trades: bool) -> dict[str, Any]:
        engine = self.exchange.engine
        pair = engine.markets.pair(order.pair)
        places = pair.pair_decimals
        quote_places = pair.cost_decimals if pair.cost_decimals is not None else places
        entry: dict[str, Any] = {
            "refid": None,
            "userref": order.userref,
            "status": order.status,
            "opentm": _raw_number(_seconds(order.opentm)),
            "starttm": _raw_number(_seconds(order.starttm)) if order.starttm else 0,
            "expiretm": _raw_number(_seconds(order.expiretm)) if order.expiretm else 0,
            "descr": {
                "pair": order.altname,
                "type": order.type,
                "ordertype": order.ordertype,
                "price": _fmt(order.price, places),
                "price2": _fmt(order.price2, places),
                "leverage": "none",
                "order": self._describe(order),
                "close": (
                    f"close position @ {order.contingent.ordertype}"
                    + (f" {order.contingent.price}" if order.contingent.price else "")
                    if order.contingent
                    else ""
                ),
            },
            "vol": _fmt(order.vol, pair.lot_decimals),
            "vol_exec": _fmt(order.vol_exec, pair.lot_decimals),
            "cost": _fmt(order.cost, quote_places),
            "fee": _fmt(order.fee, quote_places),
            "price": _fmt(order.avg_price, places),
            "stopprice": _fmt(order.stopprice, places),
            "limitprice": _fmt(order.limitprice, places),
            "misc": ",".join(order.misc),
            "oflags": ",".join(order.oflags),
            "timeinforce": order.timeinforce,
        }
        if order.cl_ord_id:
            entry["cl_ord_id"] = order.cl_ord_id
        if order.closetm is not None:
            entry["closetm"] = _raw_number(_seconds(order.closetm))
            entry["reason"] = order.cancel_reason
        if with_trades and order.trades:
            entry["trades"] = list(order.trades)
        return entry

    def _describe(self, order: OrderView) -> str:
        pair = self.exchange.engine.markets.pair(order.pair)
        text = (
            f"{order.type} {_fmt(order.vol, pair.lot_decimals)} {order.altname} @ {order.ordertype}"
        )
        if order.ordertype != "market":
            text += f" {_fmt(order.price, pair.pair_decimals)}"
        if order.ordertype.endswith("-limit"):
            text += f" -> limit {_fmt(order.price2, pair.pair_decimals)}"
        return text

    def _trade_json(self, trade: TradeView) -> dict[str, Any]:
        pair = self.exchange.engine.markets.pair(trade.pair)
        quote_places = pair.cost_decimals if pair.cost_decimals is not None else pair.pair_decimals
        return {
            "ordertxid": trade.ordertxid,
            "postxid": "TKH2SE-M7IF5-CFI7LT",
            "pair": trade.pair,
            "time": _raw_number(_seconds(trade.time)),
            "type": trade.type,
            "ordertype": trade.ordertype,
            "price": _fmt(trade.price, pair.pair_decimals),
            "cost": _fmt(trade.cost, quote_places),
            "fee": _fmt(trade.fee, quote_places),
            "vol": _fmt(trade.vol, pair.lot_decimals),
            "margin": _fmt(Decimal(0), quote_places),
            "leverage": "0",
            "misc": "",
            "trade_id": trade.match_id,
            "maker": trade.maker,
            "ledgers": list(trade.ledgers),
        }

    def _ledger_json(self, entry: LedgerEntry) -> dict[str, Any]:
        places = self._asset_places(entry.asset)
        return {
            "refid": entry.refid,
            "time": _raw_number(_seconds(entry.time)),
            "type": entry.type,
            "subtype": "",
            "aclass": "currency",
            "asset": entry.asset,
            "amount": _fmt(entry.amount, places),
            "fee": _fmt(entry.fee, places),
            "balance": _fmt(entry.balance, places),
        }

    def _account(self, call: _Call) -> str:
        assert call.key is not None
        return call.key.account

    def _filter_orders(
        self, orders: Iterable[OrderView], params: dict[str, Any]
    ) -> list[OrderView]:
        userref = params.get("userref")
        cl_ord_id = params.get("cl_ord_id")
        out = []
        for order in orders:
            if userref is not None and str(order.userref) != str(userref):
                continue
            if cl_ord_id is not None and order.cl_ord_id != cl_ord_id:
                continue
            out.append(order)
        return out

    def _open_orders(self, call: _Call) -> Any:
        with_trades = _bool_param(call.params, "trades")
        orders = self._filter_orders(
            self.exchange.engine.open_orders(self._account(call)), call.params
        )
        return {"open": {o.txid: self._order_json(o, with_trades=with_trades) for o in orders}}

    def _closed_orders(self, call: _Call) -> Any:
        params = call.params
        with_trades = _bool_param(params, "trades")
        orders = [o for o in self.exchange.orders(self._account(call)) if not o.is_open]
        orders = self._filter_orders(orders, params)
        closetime = params.get("closetime", "both")
        if closetime not in ("open", "close", "both"):
            raise _invalid("closetime")

        def moment(order: OrderView) -> int:
            return order.opentm if closetime == "open" else (order.closetm or order.opentm)

        page, count = _page(orders, params, moment, lambda o: o.txid)
        result: dict[str, Any] = {
            "closed": {o.txid: self._order_json(o, with_trades=with_trades) for o in page}
        }
        if not _bool_param(params, "without_count"):
            result["count"] = count
        return result

    def _query_orders(self, call: _Call) -> Any:
        params = call.params
        with_trades = _bool_param(params, "trades")
        txids = _split(params.get("txid"))
        if not txids or len(txids) > 50:
            raise _invalid("txid")
        account = self._account(call)
        userref = params.get("userref")
        result = {}
        for txid in txids:
            order = self.exchange.order(txid)
            if order is None or order.account != account:
                raise _fail("EOrder:Invalid order")
            if userref is not None and str(order.userref) != str(userref):
                continue
            result[txid] = self._order_json(order, with_trades=with_trades)
        return result

    def _trades_history(self, call: _Call) -> Any:
        params = call.params
        kind = params.get("type", "all")
        trades = self.exchange.trades(self._account(call))
        if kind not in (
            "all",
            "any position",
            "closed position",
            "closing position",
            "no position",
        ):
            raise _invalid("type")
        # the sandbox trades no margin: no trade belongs to a position
        in_position = kind in ("any position", "closed position", "closing position")
        page, count = _page(
            trades, params, lambda t: t.time, lambda t: t.trade_id, lambda t: not in_position
        )
        return {"trades": {t.trade_id: self._trade_json(t) for t in page}, "count": count}

    def _query_trades(self, call: _Call) -> Any:
        ids = _split(call.params.get("txid"))
        if not ids or len(ids) > 20:
            raise _invalid("txid")
        mine = {t.trade_id: t for t in self.exchange.trades(self._account(call))}
        result = {}
        for trade_id in ids:
            if trade_id not in mine:
                raise _invalid("txid")
            result[trade_id] = self._trade_json(mine[trade_id])
        return result

    def _my_ledger(self, call: _Call) -> list[LedgerEntry]:
        """The account's ledger entries, oldest first."""
        return self.exchange.ledger(self._account(call))

    def _ledgers(self, call: _Call) -> Any:
        params = call.params
        names = set(_split(params.get("asset"))) - {"all"}
        kind = params.get("type", "all")
        assets = {self._asset_code(name) or name for name in names}

        def keep(entry: LedgerEntry) -> bool:
            return (not assets or entry.asset in assets) and kind in ("all", entry.type)

        page, count = _page(
            self._my_ledger(call), params, lambda e: e.time, lambda e: e.ledger_id, keep
        )
        return {"ledger": {e.ledger_id: self._ledger_json(e) for e in page}, "count": count}

    def _query_ledgers(self, call: _Call) -> Any:
        ids = _split(call.params.get("id"))
        if not ids or len(ids) > 20:
            raise _invalid("id")
        mine = {e.ledger_id: e for e in self._my_ledger(call)}
        if any(i not in mine for i in ids):
            raise _invalid("id")
        return {i: self._ledger_json(mine[i]) for i in ids}

    # --- private: trading ----------------------------------------------------------------------

    def _order_request(self, params: Mapping[str, Any], pair_name: Any) -> OrderRequest:
        if "trigger" in params and params["trigger"] not in ("last", "index"):
            raise _invalid("trigger")
        if params.get("trigger") == "index":
            raise _fail("EGeneral:Invalid arguments:Index unavailable")
        if params.get("displayvol") is not None:
            raise _invalid("displayvol")
        stp = params.get("stptype")
        if stp is not None and stp not in ("cancel-newest", "cancel-oldest", "cancel-both"):
            raise _invalid("stptype")
        for field in ("pair", "type", "ordertype", "volume"):
            value = pair_name if field == "pair" else params.get(field)
            if value is None or value == "":
                raise _invalid(field)
        fields = {
            name: _text(params.get(name))
            for name in (
                "price",
                "price2",
                "oflags",
                "timeinforce",
                "starttm",
                "expiretm",
                "userref",
                "cl_ord_id",
                "leverage",
            )
        }
        leverage = fields["leverage"]
        if leverage is not None and not leverage.isascii():
            # The engine reads the text before ":" with str.isdigit/int, which disagree on "²".
            raise _invalid("leverage")
        return OrderRequest(
            pair=str(pair_name),
            type=str(params["type"]),
            ordertype=str(params["ordertype"]),
            volume=_text(params["volume"]),
            stp_type=stp.replace("-", "_") if isinstance(stp, str) else None,
            margin=_text(params.get("margin")),
            reduce_only=_text(params.get("reduce_only")),
            close_ordertype=_text(params.get("close[ordertype]")),
            close_price=_text(params.get("close[price]")),
            close_price2=_text(params.get("close[price2]")),
            validate=_text(params.get("validate")),
            **fields,
        )

    def _check_deadline(self, params: Mapping[str, Any]) -> None:
        error = deadline_error(params.get("deadline"), self.exchange.now())
        if error is not None:
            raise _fail(error)

    def _add_order(self, call: _Call) -> Any:
        params = call.params
        self._check_deadline(params)
        result = self.exchange.add_order(
            self._account(call), self._order_request(params, params.get("pair"))
        )
        descr: dict[str, Any] = {"order": result.descr}
        if result.close_descr:
            descr["close"] = result.close_descr
        answer: dict[str, Any] = {"descr": descr}
        if result.txid is not None:
            answer["txid"] = [result.txid]
        return answer

    def _add_order_batch(self, call: _Call) -> Any:
        params = call.params
        orders = params.get("orders")
        pair = params.get("pair")
        if not isinstance(orders, list) or not orders or len(orders) > 15:
            raise _invalid("orders")
        if pair is None:
            raise _invalid("pair")
        self._check_deadline(params)
        requests = []
        for item in orders:
            if not isinstance(item, dict):
                raise _invalid("orders")
            merged = dict(item)
            if "validate" in params:
                merged["validate"] = params["validate"]
            requests.append(self._order_request(merged, pair))
        out: list[dict[str, Any]] = []
        for request in requests:
            try:
                result = self.exchange.add_order(self._account(call), request)
            except ExchangeError as error:
                out.append({"error": error.kraken_error})
                continue
            entry: dict[str, Any] = {"descr": {"order": result.descr}}
            if result.txid is not None:
                entry["txid"] = result.txid
            out.append(entry)
        return {"orders": out}

    def _edit_order(self, call: _Call) -> Any:
        params = call.params
        txid = params.get("txid")
        pair = params.get("pair")
        if not txid:
            raise _invalid("txid")
        if not pair:
            raise _invalid("pair")
        self._check_deadline(params)
        result = self.exchange.edit_order(
            self._account(call),
            _order_ref(txid),
            str(pair),
            volume=_text(params.get("volume")),
            price=_text(params.get("price")),
            price2=_text(params.get("price2")),
            oflags=_text(params.get("oflags")),
            newuserref=_text(params.get("newuserref")),
            validate=_text(params.get("validate")),
        )
        answer: dict[str, Any] = {
            "status": "ok",
            "descr": {"order": result.descr},
            "originaltxid": result.originaltxid,
        }
        if result.txid is not None:
            answer["txid"] = result.txid
            order = self.exchange.order(result.txid)
            assert order is not None  # just placed
            market_pair = self.exchange.engine.markets.pair(order.pair)
            answer["volume"] = _fmt(order.vol, market_pair.lot_decimals)
            answer["price"] = _fmt(order.price, market_pair.pair_decimals)
            answer["price2"] = _fmt(order.price2, market_pair.pair_decimals)
            answer["orders_cancelled"] = 1
        return answer

    def _cancel_order(self, call: _Call) -> Any:
        params = call.params
        account = self._account(call)
        txid = params.get("txid")
        cl_ord_id = params.get("cl_ord_id")
        if txid is None and cl_ord_id is None:
            raise _invalid("txid")
        if cl_ord_id is not None:
            result = self.exchange.cancel_by_cl_ord_id(account, str(cl_ord_id))
        else:
            result = self.exchange.cancel_order(account, _order_ref(txid))
        return {"count": result.count}

    def _cancel_all(self, call: _Call) -> Any:
        return {"count": self.exchange.cancel_all(self._account(call)).count}

    def _cancel_all_orders_after(self, call: _Call) -> Any:
        timeout = call.params.get("timeout")
        try:
            seconds = int(str(timeout))
        except ValueError:
            raise _invalid("timeout") from None
        if not 0 <= seconds < 86400:
            raise _invalid("timeout")
        result = self.exchange.cancel_all_orders_after(self._account(call), seconds)
        return {
            "currentTime": rfc3339(result.current_time),
            "triggerTime": "0" if result.trigger_time is None else rfc3339(result.trigger_time),
        }

    def _ws_token(self, call: _Call) -> Any:
        assert call.key is not None
        token = self.exchange.issue_ws_token(call.key.account, call.key.key)
        return {"token": token, "expires": 900}


# --- parameter helpers ------------------------------------------------------------------------


def _page(
    items: list[_Item],
    params: Mapping[str, Any],
    moment: Callable[[_Item], int],
    ident: Callable[[_Item], str],
    keep: Callable[[_Item], bool] = lambda item: True,
) -> tuple[list[_Item], int]:
    """History paging (ClosedOrders, TradesHistory, Ledgers).

    ``items`` come in the account's record order (oldest first). Those to ``keep`` are
    returned newest first, filtered by ``start``/``end`` (exclusive start, inclusive end;
    each a time or the id of one of the records), then 50 from ``ofs``; with how many
    matched. Records of the same microsecond keep their record order, so an id as ``start``
    excludes exactly that record and those before it."""
    ranked = [((moment(item), n), item) for n, item in enumerate(items)]
    ranks = {ident(item): rank for rank, item in ranked}
    start = _bound_param(params, "start", ranks)
    end = _bound_param(params, "end", ranks)
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    chosen = [
        item
        for rank, item in ranked
        if keep(item) and (start is None or rank > start) and (end is None or rank <= end)
    ]
    offset = _int_param(params, "ofs", 0, 0, 2**31)
    return chosen[offset : offset + _PAGE], len(chosen)


def _parse_body(text: str, content_type: str) -> dict[str, Any]:
    if "json" in content_type.lower() or text.lstrip().startswith("{"):
        try:
            value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise _fail("EAPI:Bad request") from None
        if not isinstance(value, dict) or not _encodable(value):
            raise _fail("EAPI:Bad request")
        return value
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        raise _fail("EAPI:Bad request") from None
    params: dict[str, Any] = {}
    orders: dict[int, dict[str, str]] = {}
    for name, value in pairs:
        if name.startswith("orders[") and "][" in name:
            index_text, _, field = name[len("orders[") :].partition("][")
            if not _is_digits(index_text) or len(index_text) > 2:
                raise _invalid("orders")
            orders.setdefault(int(index_text), {})[field.rstrip("]")] = value
        else:
            params[name] = value
    if orders:
        params["orders"] = [orders[i] for i in sorted(orders)]
    return params


def _is_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts ``"²"``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def _encodable(value: Any) -> bool:
    """No lone surrogate (JSON ``"\\udcff"``) anywhere: such text cannot be stored."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_encodable(v) for v in value)
    return True


def _order_ref(value: Any) -> str | int:
    """A ``txid`` parameter: an order id, or a userref (a 32-bit integer, possibly negative).

    Text that is neither stays text (and is then an unknown order)."""
    userref = userref_value(value)
    return str(value) if userref is None else userref


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _split(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _text(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        raise _invalid()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | str):
        return str(value)
    raise _invalid()


def _bool_param(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0", ""):
        return False
    raise _invalid(name)


def _int_param(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    text = str(value)
    if not _is_digits(text):
        raise _invalid(name)
    number = int(text)
    if not low <= number <= high:
        raise _invalid(name)
    return number


def _bound_param(
    params: Mapping[str, Any], name: str, ranks: Mapping[str, tuple[int, int]]
) -> tuple[int, int] | None:
    """``start``/``end``: unix seconds (then after every record of that microsecond), or the
    id of one of the listed records (then exactly that record's place)."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value in ranks:
        return ranks[value]
    try:
        seconds = Decimal(str(value))
    except InvalidOperation:
        raise _invalid(name) from None
    if not seconds.is_finite() or seconds < 0 or seconds > 2**40:
        raise _invalid(name)
    return int(seconds * 1_000_000), len(ranks)


def _mid(book: Any) -> Decimal | None:
    bid: Decimal | None = book.best_bid()
    ask: Decimal | None = book.best_ask()
    if bid is None or ask is None:
        return bid or ask
    return (bid + ask) / 2


def _json_ready(value: Any) -> Any:
    """Decimals from pair/asset data as exact JSON numbers (msgspec.Raw), recursively."""
    if isinstance(value, Decimal):
        text = format(value, "f")
        return _raw_number(text if "." not in text else text.rstrip("0").rstrip(".") or "0")
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
