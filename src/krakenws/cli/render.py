"""Output of the feed commands: JSON Lines, raw frames, or a live terminal view.

Three renderers share one small interface, :class:`Renderer`; the command feeds every one the
same calls and picks which with :func:`select_renderer` (``--raw``, ``--json``, or whether
stdout is a terminal):

* ``message(m)`` with each decoded :data:`~krakenws.protocol.messages.ServerMessage`;
* ``book(b, checksum_ok=...)`` with the :class:`~krakenws.protocol.book.OrderBook` after each
  book message (book frames given to ``message`` are ignored: the book is the thing to show);
* ``balances(mapping)`` with the whole balance table whenever it changes;
* ``raw(frame)`` with each frame's text as received.

:class:`JsonLinesRenderer` writes one JSON object per line and event, with a ``type`` and a
fixed set of keys per type (see :func:`message_json`, :func:`book_json`,
:func:`balances_json`). Prices, volumes and times are the exact wire strings, never floats;
only counters (trade counts, sequence numbers, reqids, checksums) are JSON integers.
:class:`RawRenderer` writes the frames untouched, one per line. :class:`TerminalRenderer` keeps
a :class:`ScreenState` and shows :func:`render_screen` of it with ``rich.live``; both are pure
(state in, renderable out), so the view is testable without a terminal.

No protocol logic here: the client decodes frames and maintains books; this module only shows
them. Heartbeats are not shown except by the raw renderer.
"""

from __future__ import annotations

import re
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Self, TextIO

import msgspec
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from krakenws.errors import UsageError
from krakenws.protocol.book import OrderBook
from krakenws.protocol.messages import (
    BookSnapshot,
    BookUpdate,
    ErrorEvent,
    Heartbeat,
    LegacyErrorMessage,
    Ohlc,
    OpenOrders,
    OwnTrade,
    OwnTrades,
    Pong,
    ServerMessage,
    Spread,
    SubscriptionStatus,
    SystemStatus,
    Ticker,
    Trade,
    TradeEntry,
)

__all__ = [
    "BookView",
    "JsonLinesRenderer",
    "RawRenderer",
    "Renderer",
    "ScreenState",
    "TerminalRenderer",
    "balances_json",
    "book_json",
    "message_json",
    "render_balances",
    "render_book",
    "render_log",
    "render_ohlc",
    "render_orders",
    "render_own_trades",
    "render_screen",
    "render_spreads",
    "render_tickers",
    "render_trades",
    "select_renderer",
]

Balances = Mapping[str, str | Decimal]
"""Asset -> balance, as REST text or an exact Decimal."""

_SIDES = {"b": "buy", "s": "sell"}
_ORDER_TYPES = {"l": "limit", "m": "market"}
_encode = msgspec.json.Encoder().encode


# --- the interface -----------------------------------------------------------------------------


class Renderer(ABC):
    """What a feed command calls; every method has a do-nothing default but :meth:`message`."""

    @abstractmethod
    def message(self, message: ServerMessage) -> None:
        """One decoded message (book frames excepted: see :meth:`book`)."""

    def book(self, book: OrderBook, *, checksum_ok: bool | None = None) -> None:  # noqa: B027 -- an optional hook
        """The book after a message: ``checksum_ok`` None for a snapshot, else the verdict."""

    def balances(self, balances: Balances) -> None:  # noqa: B027 -- an optional hook
        """The whole balance table, after any change."""

    def raw(self, frame: str | bytes) -> None:  # noqa: B027 -- an optional hook
        """One frame exactly as received."""

    def close(self) -> None:  # noqa: B027 -- an optional hook
        """Finish the output (flush, stop the live view)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def select_renderer(
    *,
    json_lines: bool = False,
    raw: bool = False,
    stream: TextIO | None = None,
    is_terminal: bool | None = None,
    console: Console | None = None,
) -> Renderer:
    """The renderer for ``--raw``, ``--json``, or else by whether ``stream`` is a terminal."""
    if json_lines and raw:
        raise UsageError("--json and --raw exclude each other")
    stream = sys.stdout if stream is None else stream
    if raw:
        return RawRenderer(stream)
    if is_terminal is None:
        is_terminal = stream.isatty()
    if json_lines or not is_terminal:
        return JsonLinesRenderer(stream)
    return TerminalRenderer(console or Console(file=stream))


# --- JSON Lines --------------------------------------------------------------------------------


def _reqid(value: object) -> dict[str, Any]:
    return {} if value is msgspec.UNSET else {"reqid": value}


def _present(**values: object) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not msgspec.UNSET}


_CAMEL = re.compile(r"(?<=[a-z])([A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


def message_json(message: ServerMessage) -> list[dict[str, Any]]:
    """The JSON Lines objects for one message (none, one, or one per trade/order/fill).

    Types and keys (``?`` = only when Kraken sent it):

    * ``system_status``: status, version, connection_id
    * ``pong``: reqid?
    * ``subscription``: status, channel?, pair?, reqid?, error?
    * ``ticker``: pair, ask, ask_volume, bid, bid_volume, last, last_volume, volume_today,
      volume_24h, vwap_today, vwap_24h, trades_today, trades_24h, low_today, low_24h,
      high_today, high_24h, open_today, open_24h
    * ``ohlc``: pair, interval, time, etime, open, high, low, close, vwap, volume, count
    * ``trade`` (one per trade): pair, price, volume, time, side (buy/sell), order_type
      (limit/market), misc
    * ``spread``: pair, bid, ask, time, bid_volume, ask_volume
    * ``order`` (one per order): txid, sequence, then the order's wire fields as sent
    * ``own_trade`` (one per fill): trade_id, sequence, then the fill's wire fields, its
      ``type`` (buy/sell) renamed ``side``
    * ``reply``: event (e.g. ``addOrderStatus``), status, the reply's fields in snake_case,
      error? (Kraken's errorMessage)
    * ``error``: error, reqid?
    """
    match message:
        case Ticker():
            return [_ticker_json(message)]
        case Trade():
            return [_trade_json(message.pair, entry) for entry in message.trades]
        case Spread():
            return [
                {
                    "type": "spread",
                    "pair": message.pair,
                    "bid": message.bid,
                    "ask": message.ask,
                    "time": message.timestamp,
                    "bid_volume": message.bid_volume,
                    "ask_volume": message.ask_volume,
                }
            ]
        case Ohlc():
            return [
                {
                    "type": "ohlc",
                    "pair": message.pair,
                    "interval": message.interval,
                    "time": message.time,
                    "etime": message.etime,
                    "open": message.open,
                    "high": message.high,
                    "low": message.low,
                    "close": message.close,
                    "vwap": message.vwap,
                    "volume": message.volume,
                    "count": message.count,
                }
            ]
        case OpenOrders():
            return [
                {
                    "type": "order",
                    "txid": txid,
                    "sequence": message.sequence,
                    **msgspec.to_builtins(info),
                }
                for txid, info in message.orders
            ]
        case OwnTrades():
            return [
                _own_trade_json(trade_id, trade, message.sequence)
                for trade_id, trade in message.trades
            ]
        case BookSnapshot() | BookUpdate() | Heartbeat():
            return []
        case SystemStatus():
            return [
                {
                    "type": "system_status",
                    "status": message.status,
                    "version": message.version,
                    "connection_id": message.connection_id,
                }
            ]
        case Pong():
            return [{"type": "pong", **_reqid(message.reqid)}]
        case SubscriptionStatus():
            return [
                {
                    "type": "subscription",
                    "status": message.status,
                    **_present(channel=message.channel_name, pair=message.pair),
                    **_reqid(message.reqid),
                    **_present(error=message.error_message),
                }
            ]
        case ErrorEvent():
            return [{"type": "error", "error": message.error_message, **_reqid(message.reqid)}]
        case LegacyErrorMessage():
            return [{"type": "error", "error": message.error}]
        case _:
            fields = msgspec.to_builtins(message)
            error = fields.pop("errorMessage", None)
            reply = {"type": "reply", "event": fields.pop("event")}
            reply.update((_snake(key), value) for key, value in fields.items())
            if error is not None:
                reply["error"] = error
            return [reply]


def _ticker_json(ticker: Ticker) -> dict[str, Any]:
    return {
        "type": "ticker",
        "pair": ticker.pair,
        "ask": ticker.a[0],
        "ask_volume": ticker.a[2],
        "bid": ticker.b[0],
        "bid_volume": ticker.b[2],
        "last": ticker.c[0],
        "last_volume": ticker.c[1],
        "volume_today": ticker.v[0],
        "volume_24h": ticker.v[1],
        "vwap_today": ticker.p[0],
        "vwap_24h": ticker.p[1],
        "trades_today": ticker.t[0],
        "trades_24h": ticker.t[1],
        "low_today": ticker.l[0],
        "low_24h": ticker.l[1],
        "high_today": ticker.h[0],
        "high_24h": ticker.h[1],
        "open_today": ticker.o[0],
        "open_24h": ticker.o[1],
    }


def _trade_json(pair: str, entry: TradeEntry) -> dict[str, Any]:
    return {
        "type": "trade",
        "pair": pair,
        "price": entry.price,
        "volume": entry.volume,
        "time": entry.time,
        "side": _SIDES.get(entry.side, entry.side),
        "order_type": _ORDER_TYPES.get(entry.order_type, entry.order_type),
        "misc": entry.misc,
    }


def _own_trade_json(trade_id: str, trade: OwnTrade, sequence: int) -> dict[str, Any]:
    fields = msgspec.to_builtins(trade)
    # The fill's own "type" (buy/sell) is renamed: "type" names the event kind on every line.
    return {
        "type": "own_trade",
        "trade_id": trade_id,
        "sequence": sequence,
        **{("side" if key == "type" else key): value for key, value in fields.items()},
    }


def book_json(
    book: OrderBook, *, checksum_ok: bool | None = None, levels: int | None = None
) -> dict[str, Any]:
    """``{"type":"book","pair","depth","asks":[[price,volume],...],"bids":...,"checksum",
    "checksum_ok","updates"}``: best level first, at most ``levels`` per side (all by
    default); ``checksum`` is the computed CRC32, ``checksum_ok`` null after a snapshot."""
    asks = list(book.iter_wire_asks())
    bids = list(book.iter_wire_bids())
    if levels is not None:
        asks, bids = asks[:levels], bids[:levels]
    return {
        "type": "book",
        "pair": book.pair,
        "depth": book.depth,
        "asks": [[level[0], level[1]] for level in asks],
        "bids": [[level[0], level[1]] for level in bids],
        "checksum": book.checksum(),
        "checksum_ok": checksum_ok,
        "updates": book.updates,
    }


def _decimal_text(value: str | Decimal) -> str:
    return value if isinstance(value, str) else format(value, "f")


def balances_json(balances: Balances) -> dict[str, Any]:
    """``{"type":"balances","balances":{asset: "text", ...}}``, assets in the order given."""
    return {
        "type": "balances",
        "balances": {asset: _decimal_text(value) for asset, value in balances.items()},
    }


class JsonLinesRenderer(Renderer):
    """One JSON object per line (see :func:`message_json`), flushed line by line."""

    def __init__(self, stream: TextIO, *, book_levels: int | None = None) -> None:
        self.stream = stream
        self.book_levels = book_levels

    def _write(self, objects: Iterable[dict[str, Any]]) -> None:
        text = "".join(_encode(item).decode() + "\n" for item in objects)
        if text:
            self.stream.write(text)
            self.stream.flush()

    def message(self, message: ServerMessage) -> None:
        self._write(message_json(message))

    def book(self, book: OrderBook, *, checksum_ok: bool | None = None) -> None:
        self._write([book_json(book, checksum_ok=checksum_ok, levels=self.book_levels)])

    def balances(self, balances: Balances) -> None:
        self._write([balances_json(balances)])

    def close(self) -> None:
        self.stream.flush()


class RawRenderer(Renderer):
    """Every frame exactly as received, one per line; decoded messages are ignored."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def message(self, message: ServerMessage) -> None:
        pass

    def raw(self, frame: str | bytes) -> None:
        text = frame.decode("utf-8", errors="replace") if isinstance(frame, bytes) else frame
        self.stream.write(text.rstrip("\n") + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


# --- terminal: state ---------------------------------------------------------------------------


@dataclass
class BookView:
    """A book as shown: the book itself and what its checksums said so far."""

    book: OrderBook
    checksum_ok: bool | None = None
    verified: int = 0
    mismatches: int = 0


@dataclass
class ScreenState:
    """Everything the terminal view shows; updated by :meth:`apply`, read by the renderers."""

    trade_rows: int = 20
    log_rows: int = 8
    system: SystemStatus | None = None
    books: dict[str, BookView] = field(default_factory=dict)
    tickers: dict[str, Ticker] = field(default_factory=dict)
    spreads: dict[str, Spread] = field(default_factory=dict)
    candles: dict[tuple[str, int], Ohlc] = field(default_factory=dict)
    trades: deque[tuple[str, TradeEntry]] = field(default_factory=deque)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    own_trades: deque[tuple[str, OwnTrade]] = field(default_factory=deque)
    balances: dict[str, str] | None = None
    log: deque[Text] = field(default_factory=deque)

    def apply(self, message: ServerMessage) -> None:
        """Take one message into the state."""
        match message:
            case Ticker():
                self.tickers[message.pair] = message
            case Trade():
                for entry in message.trades:
                    self.trades.appendleft((message.pair, entry))
                while len(self.trades) > self.trade_rows:
                    self.trades.pop()
            case Spread():
                self.spreads[message.pair] = message
            case Ohlc():
                self.candles[(message.pair, message.interval)] = message
            case OpenOrders():
                for txid, info in message.orders:
                    self._merge_order(txid, msgspec.to_builtins(info))
            case OwnTrades():
                for trade_id, trade in message.trades:
                    self.own_trades.appendleft((trade_id, trade))
                while len(self.own_trades) > self.trade_rows:
                    self.own_trades.pop()
            case SystemStatus():
                self.system = message
                self.note(
                    f"system {message.status} (version {message.version}, "
                    f"connection {message.connection_id})"
                )
            case BookSnapshot() | BookUpdate() | Heartbeat():
                pass
            case _:
                self.note(*_log_line(message))

    def apply_book(self, book: OrderBook, checksum_ok: bool | None) -> None:
        """Show ``book``; count its checksum verdict."""
        view = self.books.get(book.pair)
        if view is None:
            view = self.books[book.pair] = BookView(book)
        view.book = book
        view.checksum_ok = checksum_ok if checksum_ok is not None else view.checksum_ok
        if checksum_ok is True:
            view.verified += 1
        elif checksum_ok is False:
            view.mismatches += 1

    def apply_balances(self, balances: Balances) -> None:
        """Replace the balance table."""
        self.balances = {asset: _decimal_text(value) for asset, value in balances.items()}

    def note(self, text: str, style: str = "") -> None:
        """Add one status line."""
        self.log.append(Text(text, style=style))
        while len(self.log) > self.log_rows:
            self.log.popleft()

    def _merge_order(self, txid: str, update: dict[str, Any]) -> None:
        order = self.orders.pop(txid, None)
        if order is None:
            order = {}
        for key, value in update.items():
            if key == "descr" and isinstance(value, dict) and isinstance(order.get(key), dict):
                order[key] = {**order[key], **value}
            else:
                order[key] = value
        self.orders[txid] = order  # re-inserted: the most recently changed order comes last


def _log_line(message: ServerMessage) -> tuple[str, str]:
    if isinstance(message, Pong):
        return "pong", ""
    if isinstance(message, SubscriptionStatus):
        what = " ".join(
            str(part) for part in (message.channel_name, message.pair) if part is not msgspec.UNSET
        )
        if message.is_error:
            return f"subscription error: {message.error_message} {what}".rstrip(), "bold red"
        return f"{message.status} {what}".rstrip(), "cyan"
    if isinstance(message, ErrorEvent):
        return f"error: {message.error_message}", "bold red"
    if isinstance(message, LegacyErrorMessage):
        return f"error: {message.error}", "bold red"
    fields = msgspec.to_builtins(message)
    event = str(fields.pop("event", type(message).__name__))
    name = event.removesuffix("Status")
    status = fields.pop("status", "")
    error = fields.pop("errorMessage", None)
    fields.pop("reqid", None)
    if error is not None:
        return f"{name} {status}: {error}", "bold red"
    details = " ".join(f"{_snake(key)}={value}" for key, value in fields.items())
    return f"{name} {status} {details}".rstrip(), "green"


# --- terminal: rendering (pure) ----------------------------------------------------------------


def _clock(timestamp: str) -> str:
    """``"1618678145.715785"`` -> ``"16:49:05.715"`` (UTC), without going through a float."""
    whole, _, fraction = timestamp.partition(".")
    try:
        moment = datetime.fromtimestamp(int(whole), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return timestamp
    return f"{moment:%H:%M:%S}.{(fraction + '000')[:3]}"


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return value if value.is_finite() else None


def _column(table: Table, header: str, **options: Any) -> None:
    """Add a column that folds a cell too long for it over lines (``overflow="fold"``): a price,
    volume or id is never cut short with an ellipsis in a narrow terminal."""
    options.setdefault("overflow", "fold")
    table.add_column(header, **options)


def render_book(view: BookView, *, rows: int = 10) -> Table:
    """The ladder: ``rows`` asks (best at the bottom) above ``rows`` bids, with cumulative
    volume, the spread and mid in between, and the checksum status as caption."""
    book = view.book
    table = Table(
        title=f"{book.pair} book-{book.depth}",
        caption=_checksum_caption(view),
        caption_justify="left",
        min_width=36,
    )
    _column(table, "Price", justify="right")
    _column(table, "Volume", justify="right")
    _column(table, "Total", justify="right")
    asks = list(book.iter_wire_asks())[:rows]
    bids = list(book.iter_wire_bids())[:rows]
    ask_rows: list[tuple[str, str, str]] = []
    total = Decimal(0)
    for level in asks:
        total += Decimal(level[1])
        ask_rows.append((level[0], level[1], f"{total:f}"))
    for price, volume, cumulative in reversed(ask_rows):
        table.add_row(price, volume, cumulative, style="red")
    spread, mid = book.spread(), book.mid()
    if spread is not None and mid is not None:
        table.add_row(Text(f"spread {spread:f}", style="bold"), Text(f"mid {mid:f}"), "")
    else:
        table.add_row(Text("(one side empty)", style="dim"), "", "")
    total = Decimal(0)
    for level in bids:
        total += Decimal(level[1])
        table.add_row(level[0], level[1], f"{total:f}", style="green")
    return table


def _checksum_caption(view: BookView) -> Text:
    crc = view.book.checksum()
    counts = f"{view.verified} verified"
    if view.mismatches:
        counts += f", {view.mismatches} mismatched"
    if view.checksum_ok is False:
        return Text(f"checksum MISMATCH ({crc})\n{counts}", style="bold red")
    if view.checksum_ok is None:
        return Text(f"checksum {crc} (snapshot)\n{counts}", style="yellow")
    return Text(f"checksum ok ({crc})\n{counts}", style="green")


def _change(last: str, opening: str) -> Text:
    last_value, open_value = _number(last), _number(opening)
    if last_value is None or not open_value:
        return Text("")
    percent = ((last_value - open_value) / open_value * 100).quantize(Decimal("0.01"))
    style = "green" if percent > 0 else "red" if percent < 0 else ""
    return Text(f"{percent:+f}%", style=style)


def render_tickers(tickers: Mapping[str, Ticker]) -> Table:
    """One row per pair: bid, ask, last, change over 24 h, 24 h volume, VWAP, low, high."""
    table = Table(title="Ticker")
    for name in ("Pair", "Bid", "Ask", "Last", "24h", "Volume 24h", "VWAP 24h"):
        _column(table, name, justify="left" if name == "Pair" else "right")
    for name in ("Low 24h", "High 24h", "Trades 24h"):
        _column(table, name, justify="right")
    for pair, ticker in tickers.items():
        table.add_row(
            pair,
            Text(ticker.b[0], style="green"),
            Text(ticker.a[0], style="red"),
            ticker.c[0],
            _change(ticker.c[0], ticker.o[1]),
            ticker.v[1],
            ticker.p[1],
            ticker.l[1],
            ticker.h[1],
            str(ticker.t[1]),
        )
    return table


def render_trades(trades: Iterable[tuple[str, TradeEntry]]) -> Table:
    """The tape, newest first; buys green, sells red."""
    table = Table(title="Trades")
    _column(table, "Time (UTC)")
    _column(table, "Pair")
    _column(table, "Side")
    _column(table, "Price", justify="right")
    _column(table, "Volume", justify="right")
    _column(table, "Type")
    for pair, entry in trades:
        side = _SIDES.get(entry.side, entry.side)
        style = "green" if side == "buy" else "red" if side == "sell" else ""
        table.add_row(
            _clock(entry.time),
            pair,
            Text(side, style=style),
            Text(entry.price, style=style),
            entry.volume,
            _ORDER_TYPES.get(entry.order_type, entry.order_type),
        )
    return table


def render_spreads(spreads: Mapping[str, Spread]) -> Table:
    """One row per pair: best bid and ask with their volumes, and the spread."""
    table = Table(title="Spread")
    _column(table, "Pair")
    for name in ("Bid", "Ask", "Spread", "Bid volume", "Ask volume"):
        _column(table, name, justify="right")
    _column(table, "Time (UTC)")
    for pair, spread in spreads.items():
        bid, ask = _number(spread.bid), _number(spread.ask)
        difference = f"{ask - bid:f}" if bid is not None and ask is not None else ""
        table.add_row(
            pair,
            Text(spread.bid, style="green"),
            Text(spread.ask, style="red"),
            difference,
            spread.bid_volume,
            spread.ask_volume,
            _clock(spread.timestamp),
        )
    return table


def render_ohlc(candles: Mapping[tuple[str, int], Ohlc]) -> Table:
    """One row per pair and interval: the running candle."""
    table = Table(title="OHLC")
    _column(table, "Pair")
    _column(table, "Interval", justify="right")
    for name in ("Open", "High", "Low", "Close", "VWAP", "Volume", "Count"):
        _column(table, name, justify="right")
    _column(table, "Ends (UTC)")
    for (pair, interval), candle in candles.items():
        table.add_row(
            pair,
            f"{interval}m",
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.vwap,
            candle.volume,
            str(candle.count),
            _clock(candle.etime),
        )
    return table


_STATUS_STYLES = {
    "pending": "yellow",
    "open": "cyan",
    "closed": "green",
    "canceled": "dim",
    "expired": "dim",
}


def render_orders(orders: Mapping[str, Mapping[str, Any]], *, rows: int = 20) -> Table:
    """Open orders as last known (updates merged), most recently changed first."""
    table = Table(title="Orders")
    _column(table, "Order")
    # Short words stay whole (no_wrap); ids and numbers fold over lines when the terminal is
    # narrow, never losing a character.
    table.add_column("Status", no_wrap=True)
    table.add_column("Pair", no_wrap=True)
    table.add_column("Side", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    _column(table, "Price", justify="right")
    _column(table, "Volume", justify="right")
    _column(table, "Executed", justify="right")
    _column(table, "Avg price", justify="right")
    table.add_column("Note")
    for txid, order in list(reversed(list(orders.items())))[:rows]:
        descr = order.get("descr") or {}
        status = str(order.get("status", ""))
        note = order.get("cancel_reason") or order.get("misc") or ""
        table.add_row(
            txid,
            Text(status, style=_STATUS_STYLES.get(status, "")),
            str(descr.get("pair", "")),
            Text(
                str(descr.get("type", "")),
                style={"buy": "green", "sell": "red"}.get(str(descr.get("type")), ""),
            ),
            str(descr.get("ordertype", "")),
            str(descr.get("price", "")),
            str(order.get("vol", "")),
            str(order.get("vol_exec", "")),
            str(order.get("avg_price", "")),
            str(note),
        )
    return table


def render_own_trades(trades: Iterable[tuple[str, OwnTrade]]) -> Table:
    """The account's fills, newest first."""
    table = Table(title="Own trades")
    _column(table, "Time (UTC)")
    _column(table, "Trade")
    _column(table, "Order")
    _column(table, "Pair")
    _column(table, "Side")
    for name in ("Price", "Volume", "Cost", "Fee"):
        _column(table, name, justify="right")
    for trade_id, trade in trades:
        table.add_row(
            _clock(trade.time),
            trade_id,
            trade.ordertxid,
            trade.pair,
            Text(trade.type, style={"buy": "green", "sell": "red"}.get(trade.type, "")),
            trade.price,
            trade.vol,
            trade.cost,
            trade.fee,
        )
    return table


def render_balances(balances: Mapping[str, str]) -> Table:
    """Asset and balance, in the order given."""
    table = Table(title="Balances")
    _column(table, "Asset")
    _column(table, "Balance", justify="right")
    for asset, balance in balances.items():
        table.add_row(asset, balance)
    return table


def render_log(lines: Sequence[Text]) -> Group:
    """The most recent status lines, oldest first."""
    return Group(*lines)


def render_screen(state: ScreenState, *, book_rows: int = 10) -> RenderableType:
    """The whole view: books side by side, then every non-empty table, then the status lines."""
    parts: list[RenderableType] = []
    if state.books:
        books = [render_book(view, rows=book_rows) for view in state.books.values()]
        parts.append(books[0] if len(books) == 1 else Columns(books))
    if state.tickers:
        parts.append(render_tickers(state.tickers))
    if state.spreads:
        parts.append(render_spreads(state.spreads))
    if state.candles:
        parts.append(render_ohlc(state.candles))
    if state.trades:
        parts.append(render_trades(state.trades))
    if state.orders:
        parts.append(render_orders(state.orders))
    if state.own_trades:
        parts.append(render_own_trades(state.own_trades))
    if state.balances is not None:
        parts.append(render_balances(state.balances))
    if state.log:
        parts.append(render_log(list(state.log)))
    if not parts:
        parts.append(Text("waiting for data…", style="dim"))
    return Group(*parts)


# --- terminal: the live wrapper ----------------------------------------------------------------


class TerminalRenderer(Renderer):
    """A live view redrawn in place, at most every ``min_interval`` seconds (and on close).

    Redrawing happens in the caller's thread, on the caller's events: no refresh thread reads
    the state while it changes.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        book_rows: int = 10,
        trade_rows: int = 20,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console or Console()
        self.state = ScreenState(trade_rows=trade_rows)
        self.book_rows = book_rows
        self.min_interval = min_interval
        self._clock = clock
        self._live: Live | None = None
        self._drawn_at: float | None = None
        self._pending = False

    def renderable(self) -> RenderableType:
        """What the screen shows now."""
        return render_screen(self.state, book_rows=self.book_rows)

    def message(self, message: ServerMessage) -> None:
        if isinstance(message, Heartbeat | BookSnapshot | BookUpdate):
            return
        self.state.apply(message)
        self._changed()

    def book(self, book: OrderBook, *, checksum_ok: bool | None = None) -> None:
        self.state.apply_book(book, checksum_ok)
        self._changed()

    def balances(self, balances: Balances) -> None:
        self.state.apply_balances(balances)
        self._changed()

    def refresh(self) -> None:
        """Redraw now if anything changed since the last drawing (for a periodic timer)."""
        if self._pending:
            self._draw()

    def close(self) -> None:
        if self._live is not None:
            self._draw()
            self._live.stop()
            self._live = None

    def _changed(self) -> None:
        self._pending = True
        now = self._clock()
        if self._drawn_at is None or now - self._drawn_at >= self.min_interval:
            self._draw()

    def _draw(self) -> None:
        renderable = self.renderable()
        if self._live is None:
            self._live = Live(renderable, console=self.console, auto_refresh=False, transient=False)
            self._live.start(refresh=True)
        else:
            self._live.update(renderable, refresh=True)
        self._drawn_at = self._clock()
        self._pending = False
