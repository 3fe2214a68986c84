"""Text <-> typed v1 messages, for both ends of the socket.

This module owns the translation between JSON text and the structs of :mod:`.messages`:

* :func:`decode_server` / :func:`encode_server`: what a client receives / a server sends;
* :func:`decode_client` / :func:`encode_client`: what a server receives / a client sends.

Decoding is strict on shape and tolerant of unknown extra object fields (Kraken adds fields over
time). Anything that is not a well-formed v1 message raises :class:`~krakenws.errors.ProtocolError`
saying what was wrong and where; no other exception escapes a decoder. Encoding a decoded message
reproduces the original JSON (same keys, same strings, same ints), minus any unknown fields.

>>> decode_server(b'{"event":"heartbeat"}')
Heartbeat()
>>> update_text = (
...     '[336,{"b":[["37080.20000","0.00000000","1693415331.123456"]],"c":"2470128591"},'
...     '"book-10","XBT/USD"]'
... )
>>> update = decode_server(update_text)
>>> update.bids, update.checksum, update.pair
([['37080.20000', '0.00000000', '1693415331.123456']], '2470128591', 'XBT/USD')
>>> encode_server(update) == update_text.encode()
True
>>> decode_server('{"event":"hello"}')
Traceback (most recent call last):
...
krakenws.errors.ProtocolError: unknown event 'hello'

The book path is the hot one (thousands of frames per second on a busy pair). One msgspec
decoder turns objects straight into the tagged event structs and arrays into lists in a single
pass, checking on the way that book levels are lists of strings; a one-sided book update is then
built by hand after a few cheap checks. Everything else takes a slower, fully checked path,
which is also where every error message is written.

Like everything in ``krakenws.protocol``, this module imports only the standard library,
msgspec and :mod:`krakenws.errors`: no asyncio, no aiohttp, no clock reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, TypeAlias, TypeVar

import msgspec

from krakenws.errors import ProtocolError
from krakenws.protocol.messages import (
    DECIMAL_TEXT,
    AddOrder,
    AddOrderStatus,
    AmendOrder,
    AmendOrderStatus,
    BookSnapshot,
    BookUpdate,
    CancelAll,
    CancelAllOrdersAfter,
    CancelAllOrdersAfterStatus,
    CancelAllStatus,
    CancelOrder,
    CancelOrderStatus,
    ClientMessage,
    EditOrder,
    EditOrderStatus,
    ErrorEvent,
    Heartbeat,
    LegacyErrorMessage,
    Ohlc,
    OpenOrders,
    OrderInfo,
    OwnTrade,
    OwnTrades,
    Ping,
    PingStatus,
    Pong,
    ServerMessage,
    Spread,
    Subscribe,
    SubscriptionStatus,
    SystemStatus,
    Ticker,
    Trade,
    TradeEntry,
    Unsubscribe,
)

__all__ = ["decode_client", "decode_server", "encode_client", "encode_server"]

_ServerEvent: TypeAlias = (
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
)
# How the hot path sees a channel frame's elements: the values of book objects are typed so
# that msgspec checks every level is a list of strings while parsing, which costs nothing
# extra in C. Frames that do not fit (the ticker's integer volumes, a malformed book level)
# are parsed again as plain lists and checked by hand, which also finds the error to report.
_FrameElement: TypeAlias = int | str | list[Any] | dict[str, list[list[str]] | str | int]

_SERVER_EVENTS: Final = (
    SystemStatus,
    Heartbeat,
    Pong,
    PingStatus,
    SubscriptionStatus,
    AddOrderStatus,
    EditOrderStatus,
    AmendOrderStatus,
    CancelOrderStatus,
    CancelAllStatus,
    CancelAllOrdersAfterStatus,
    ErrorEvent,
)
_CLIENT_EVENTS: Final = (
    Ping,
    Subscribe,
    Unsubscribe,
    AddOrder,
    EditOrder,
    AmendOrder,
    CancelOrder,
    CancelAll,
    CancelAllOrdersAfter,
)

# Arrays (channel frames) come out as lists and objects as typed event structs, in one pass.
_SERVER_DECODER: Final[msgspec.json.Decoder[list[_FrameElement] | _ServerEvent]] = (
    msgspec.json.Decoder(list[_FrameElement] | _ServerEvent)
)
_SERVER_LOOSE_DECODER: Final[msgspec.json.Decoder[list[Any] | _ServerEvent]] = msgspec.json.Decoder(
    list[Any] | _ServerEvent
)
_CLIENT_DECODER: Final[msgspec.json.Decoder[ClientMessage]] = msgspec.json.Decoder(ClientMessage)
_ANY_DECODER: Final = msgspec.json.Decoder()
_ENCODER: Final = msgspec.json.Encoder()

_SERVER_EVENT_NAMES: Final = frozenset(cls.__struct_config__.tag for cls in _SERVER_EVENTS)
_CLIENT_EVENT_NAMES: Final = frozenset(cls.__struct_config__.tag for cls in _CLIENT_EVENTS)

# What msgspec (or the codecs underneath it) raises on bad input: DecodeError/ValidationError
# for JSON and types, UnicodeError for undecodable bytes or lone surrogates in a str, TypeError
# for a non-text argument, RecursionError for absurd nesting.
_DECODE_FAILURES: Final = (msgspec.MsgspecError, ValueError, TypeError, RecursionError)
# A last guard around the hand-written frame checks: should one of them miss a case, the caller
# still gets a ProtocolError rather than a stray IndexError.
_FRAME_FAILURES: Final = (LookupError, TypeError, ValueError, AttributeError, RecursionError)

_TICKER_KEYS: Final = ("a", "b", "c", "v", "p", "t", "l", "h", "o")
# The depths Kraken offers (spec 3.5); other "book-<n>" names take the checked path.
_STANDARD_BOOK_NAMES: Final = frozenset(f"book-{depth}" for depth in (10, 25, 100, 500, 1000))


# --- public API --------------------------------------------------------------------------------


def decode_server(data: str | bytes) -> ServerMessage:
    """Parse one server -> client text frame into its typed message."""
    try:
        message = _SERVER_DECODER.decode(data)
    except _DECODE_FAILURES:
        return _decode_server_loosely(data)
    if not isinstance(message, list):
        return message
    # Fast path for the overwhelmingly common frame: a one-sided book update ({"a"|"b", "c"})
    # at a standard depth, whose levels msgspec has already checked to be lists of strings.
    # It accepts only what _decode_frame would build identically and leaves everything else,
    # including every error message, to that checked path.
    if len(message) == 4:
        channel_id, body, name, pair = message
        if (
            type(body) is dict
            and len(body) == 2
            and type(name) is str
            and name in _STANDARD_BOOK_NAMES
            and type(channel_id) is int
            and type(pair) is str
        ):
            checksum = body.get("c")
            levels = body.get("a")
            asks_side = levels is not None
            if not asks_side:
                levels = body.get("b")
            if (
                type(levels) is list
                and type(checksum) is str
                and checksum.isascii()
                and checksum.isdigit()
            ):
                for level in levels:
                    if len(level) != 3 and (len(level) != 4 or level[3] != "r"):
                        break
                else:
                    return BookUpdate(
                        channel_id=channel_id,
                        asks=levels if asks_side else [],
                        bids=[] if asks_side else levels,
                        checksum=checksum,
                        channel_name=name,
                        pair=pair,
                    )
    return _decode_frame_checked(message)


def encode_server(message: ServerMessage) -> bytes:
    """The JSON text (UTF-8) a server sends for ``message``."""
    encode_frame = _FRAME_ENCODERS.get(type(message))
    if encode_frame is not None:
        return encode_frame(message)
    if not isinstance(message, (*_SERVER_EVENTS, LegacyErrorMessage)):
        raise TypeError(f"not a server message: {type(message).__name__}")
    return _ENCODER.encode(message)


def decode_client(data: str | bytes) -> ClientMessage:
    """Parse one client -> server text frame into its typed request."""
    try:
        return _CLIENT_DECODER.decode(data)
    except _DECODE_FAILURES as exc:
        raise _explain_client_failure(data, exc) from exc


def encode_client(message: ClientMessage) -> bytes:
    """The JSON text (UTF-8) a client sends for ``message``."""
    if not isinstance(message, _CLIENT_EVENTS):
        raise TypeError(f"not a client request: {type(message).__name__}")
    return _ENCODER.encode(message)


# --- helpers for error messages ----------------------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _show(value: object, limit: int = 80) -> str:
    """Short JSON text of a (decoded JSON) value, for error messages."""
    try:
        text = msgspec.json.encode(value).decode()
    except (msgspec.MsgspecError, TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_failure(exc: BaseException) -> ProtocolError:
    if isinstance(exc, UnicodeError):
        return ProtocolError(f"frame is not valid UTF-8 text: {exc}")
    if isinstance(exc, RecursionError):
        return ProtocolError("frame is nested too deeply to be a Kraken message")
    if isinstance(exc, TypeError):
        return ProtocolError(f"frame must be str or bytes: {exc}")
    return ProtocolError(f"frame is not valid JSON: {exc}")


def _explain_event_object(
    raw: dict[Any, Any], exc: BaseException, known: frozenset[Any], other: frozenset[Any], side: str
) -> ProtocolError:
    if "event" not in raw:
        return ProtocolError(f"object has no 'event' field: {_show(raw)}")
    event = raw["event"]
    if type(event) is not str:
        return ProtocolError(f"'event' must be a string, got {_json_type(event)}")
    if event not in known:
        if event in other:
            return ProtocolError(f"event {event!r} is not a {side} message")
        return ProtocolError(f"unknown event {event!r}")
    return ProtocolError(f"invalid {event!r} message: {exc}")


def _decode_server_loosely(data: str | bytes) -> ServerMessage:
    """The slow path for text that did not fit the hot path's types."""
    try:
        message = _SERVER_LOOSE_DECODER.decode(data)
    except _DECODE_FAILURES as exc:
        return _decode_untypable_server_object(data, exc)
    if isinstance(message, list):
        return _decode_frame_checked(message)
    return message


def _decode_frame_checked(frame: list[Any]) -> ServerMessage:
    try:
        return _decode_frame(frame)
    except ProtocolError:
        raise
    except _FRAME_FAILURES as exc:
        raise ProtocolError(f"malformed channel frame: {exc!r}") from exc


def _decode_untypable_server_object(data: str | bytes, exc: BaseException) -> ServerMessage:
    """The slow path: explain why ``data`` fits no server message, or find the untagged shape."""
    if not isinstance(exc, msgspec.ValidationError):
        raise _parse_failure(exc) from exc
    try:
        raw = _ANY_DECODER.decode(data)
    except _DECODE_FAILURES as parse_exc:
        raise _parse_failure(parse_exc) from parse_exc
    if type(raw) is not dict:
        raise ProtocolError(
            f"a server message is a JSON object or array, got {_json_type(raw)}"
        ) from exc
    if "event" not in raw and "Error" in raw:
        error = raw["Error"]
        if type(error) is not str:
            raise ProtocolError(f"'Error' must be a string, got {_json_type(error)}") from exc
        return LegacyErrorMessage(error=error)
    raise _explain_event_object(
        raw, exc, _SERVER_EVENT_NAMES, _CLIENT_EVENT_NAMES, "server"
    ) from exc


def _explain_client_failure(data: str | bytes, exc: BaseException) -> ProtocolError:
    if not isinstance(exc, msgspec.ValidationError):
        return _parse_failure(exc)
    try:
        raw = _ANY_DECODER.decode(data)
    except _DECODE_FAILURES as parse_exc:
        return _parse_failure(parse_exc)
    if type(raw) is not dict:
        return ProtocolError(f"a client request is a JSON object, got {_json_type(raw)}")
    return _explain_event_object(raw, exc, _CLIENT_EVENT_NAMES, _SERVER_EVENT_NAMES, "client")


# --- channel frames: decoding ------------------------------------------------------------------


def _decode_frame(frame: list[Any]) -> ServerMessage:
    size = len(frame)
    if size < 3:
        raise ProtocolError(
            f"channel frame has {size} elements, expected [channelID, payload, channelName, pair]"
            " or [payload, channelName, {sequence}]"
        )
    # The channel name is second to last in every layout (public 4/5 elements, private 3).
    name = frame[-2]
    if type(name) is not str:
        raise ProtocolError(
            f"channel frame element {size - 2} must be the channel name, got {_json_type(name)}"
        )
    if name.startswith("book-"):
        return _decode_book(frame, size, name)
    decode = _CHANNEL_DECODERS.get(name)
    if decode is None:
        if not name.startswith("ohlc-"):
            raise ProtocolError(f"unknown channel {name!r}")
        decode = _decode_ohlc
    return decode(frame, size, name)


def _public_header(frame: list[Any], size: int, name: str, payloads: int = 1) -> tuple[int, str]:
    """Check ``[channelID, payload..., name, pair]`` around the payloads; return (id, pair)."""
    if size != payloads + 3:
        raise ProtocolError(f"{name} frame has {size} elements, expected {payloads + 3}")
    channel_id = frame[0]
    if type(channel_id) is not int:
        raise ProtocolError(
            f"{name} frame element 0 (channelID) must be an integer, got {_json_type(channel_id)}"
        )
    pair = frame[-1]
    if type(pair) is not str:
        raise ProtocolError(
            f"{name} frame's last element (pair) must be a string, got {_json_type(pair)}"
        )
    return channel_id, pair


def _check_suffix(name: str, kind: str) -> None:
    suffix = name[5:]
    if not (suffix.isascii() and suffix.isdigit()):
        raise ProtocolError(f"channel name {name!r} must be '{kind}-<integer>'")


# Book ------------------------------------------------------------------------------------------


def _levels_ok(levels: list[Any], republish_allowed: bool) -> bool:
    """The fast check of a level list; :func:`_level_problem` says what is wrong when it fails."""
    for level in levels:
        if type(level) is not list:
            return False
        width = len(level)
        if width == 3:
            price, volume, stamp = level
        elif width == 4 and republish_allowed:
            price, volume, stamp, flag = level
            if flag != "r":
                return False
        else:
            return False
        if type(price) is not str or type(volume) is not str or type(stamp) is not str:
            return False
    return True


def _level_problem(levels: list[Any], key: str, what: str, republish_allowed: bool) -> str:
    expected = "3 or 4" if republish_allowed else "3"
    for index, level in enumerate(levels):
        if type(level) is not list:
            return f"{what} level {index} of {key!r} must be an array, got {_json_type(level)}"
        if len(level) not in ((3, 4) if republish_allowed else (3,)):
            return f"{what} level {index} of {key!r} has {len(level)} elements, expected {expected}"
        for position, part in enumerate(level[:3]):
            if type(part) is not str:
                field = ("price", "volume", "timestamp")[position]
                return (
                    f"{what} level {index} of {key!r}: {field} must be a string,"
                    f" got {_json_type(part)}"
                )
        if len(level) == 4 and level[3] != "r":
            return (
                f"{what} level {index} of {key!r}: 4th element must be 'r', not {_show(level[3])}"
            )
    return f"{what} levels of {key!r} are malformed"  # pragma: no cover - _levels_ok disagreed


def _snapshot_side(body: dict[str, Any], key: str) -> list[list[str]]:
    if key not in body:
        return []
    levels = body[key]
    if type(levels) is not list:
        raise ProtocolError(f"book snapshot {key!r} must be an array, got {_json_type(levels)}")
    if not _levels_ok(levels, republish_allowed=False):
        raise ProtocolError(_level_problem(levels, key, "book snapshot", republish_allowed=False))
    return levels


def _update_side(body: dict[str, Any], key: str) -> list[list[str]]:
    levels = body[key]
    if type(levels) is not list:
        raise ProtocolError(f"book update {key!r} must be an array, got {_json_type(levels)}")
    if not _levels_ok(levels, republish_allowed=True):
        raise ProtocolError(_level_problem(levels, key, "book update", republish_allowed=True))
    return levels


def _checksum(body: dict[str, Any]) -> str | None:
    if "c" not in body:
        return None
    checksum = body["c"]
    if type(checksum) is not str or not (checksum.isascii() and checksum.isdigit()):
        raise ProtocolError(
            f"book update checksum 'c' must be a string of digits, got {_show(checksum)}"
        )
    return checksum


def _decode_book(frame: list[Any], size: int, name: str) -> BookSnapshot | BookUpdate:
    _check_suffix(name, "book")
    if size not in (4, 5):
        raise ProtocolError(
            f"{name} frame has {size} elements, expected 4 (or 5 for a two-object update)"
        )
    if size == 5:
        return _decode_split_book_update(frame, name)
    channel_id, pair = _public_header(frame, size, name)
    body = frame[1]
    if type(body) is not dict:
        raise ProtocolError(f"{name} payload must be an object, got {_json_type(body)}")
    has_asks = "a" in body
    has_bids = "b" in body
    if "as" in body or "bs" in body:
        if has_asks or has_bids or "c" in body:
            raise ProtocolError(
                "book object mixes snapshot keys ('as'/'bs') with update keys ('a'/'b'/'c')"
            )
        return BookSnapshot(
            channel_id=channel_id,
            asks=_snapshot_side(body, "as"),
            bids=_snapshot_side(body, "bs"),
            channel_name=name,
            pair=pair,
        )
    if not (has_asks or has_bids):
        raise ProtocolError(f"book update has neither 'a' nor 'b' (keys: {sorted(body)})")
    return BookUpdate(
        channel_id=channel_id,
        asks=_update_side(body, "a") if has_asks else [],
        bids=_update_side(body, "b") if has_bids else [],
        checksum=_checksum(body),
        channel_name=name,
        pair=pair,
    )


def _decode_split_book_update(frame: list[Any], name: str) -> BookUpdate:
    channel_id, pair = _public_header(frame, 5, name, payloads=2)
    first, second = frame[1], frame[2]
    if type(first) is not dict or type(second) is not dict:
        raise ProtocolError(
            f"five-element {name} update must carry two objects, got"
            f" {_json_type(first)} and {_json_type(second)}"
        )
    if "a" not in first or "b" in first or "c" in first:
        raise ProtocolError(
            f"five-element {name} update: the first object must carry 'a' only"
            f" (keys: {sorted(first)})"
        )
    if "b" not in second or "a" in second:
        raise ProtocolError(
            f"five-element {name} update: the second object must carry 'b' and 'c'"
            f" (keys: {sorted(second)})"
        )
    return BookUpdate(
        channel_id=channel_id,
        asks=_update_side(first, "a"),
        bids=_update_side(second, "b"),
        checksum=_checksum(second),
        channel_name=name,
        pair=pair,
        split=True,
    )


# Ticker, ohlc, trade, spread --------------------------------------------------------------------


def _pair_of(body: dict[str, Any], key: str, kinds: tuple[type, ...], layout: str) -> Any:
    value = body.get(key)
    if (
        type(value) is not list
        or len(value) != len(kinds)
        or any(type(part) is not kind for part, kind in zip(value, kinds, strict=True))
    ):
        raise ProtocolError(f"ticker {key!r} must be {layout}, got {_show(value)}")
    return tuple(value)


_TICKER_LAYOUTS: Final[dict[str, tuple[tuple[type, ...], str]]] = {
    "a": ((str, int, str), "[price, whole_lot_volume, lot_volume]"),
    "b": ((str, int, str), "[price, whole_lot_volume, lot_volume]"),
    "c": ((str, str), "[price, lot_volume]"),
    "v": ((str, str), "[today, last_24h] strings"),
    "p": ((str, str), "[today, last_24h] strings"),
    "t": ((int, int), "[today, last_24h] integers"),
    "l": ((str, str), "[today, last_24h] strings"),
    "h": ((str, str), "[today, last_24h] strings"),
    "o": ((str, str), "[today, last_24h] strings"),
}


_IS_NUMBER: Final = re.compile(DECIMAL_TEXT).match


def _numbers(values: Any, what: str, detail: object = None) -> None:
    """Refuse a payload whose numbers (``values``: their texts) are not decimal text; the
    error names ``what`` (formatted with ``detail`` only then, off the common path)."""
    for value in values:
        if type(value) is str and not _IS_NUMBER(value):
            where = what if detail is None else what.format(detail)
            raise ProtocolError(f"{where}: {_show(value)} is not a decimal number")


def _decode_ticker(frame: list[Any], size: int, name: str) -> Ticker:
    channel_id, pair = _public_header(frame, size, name)
    body = frame[1]
    if type(body) is not dict:
        raise ProtocolError(f"ticker payload must be an object, got {_json_type(body)}")
    parts = {}
    for key, (kinds, layout) in _TICKER_LAYOUTS.items():
        if key not in body:
            raise ProtocolError(f"ticker payload has no {key!r}")
        parts[key] = part = _pair_of(body, key, kinds, layout)
        _numbers(part, "ticker {!r}", key)
    return Ticker(channel_id=channel_id, channel_name=name, pair=pair, **parts)


_OHLC_LAYOUT: Final = "[time, etime, open, high, low, close, vwap, volume, count]"


def _decode_ohlc(frame: list[Any], size: int, name: str) -> Ohlc:
    _check_suffix(name, "ohlc")
    channel_id, pair = _public_header(frame, size, name)
    candle = frame[1]
    if (
        type(candle) is not list
        or len(candle) != 9
        or any(type(part) is not str for part in candle[:8])
        or type(candle[8]) not in (int, str)
    ):
        raise ProtocolError(
            f"ohlc payload must be {_OHLC_LAYOUT} (strings, count an integer), got {_show(candle)}"
        )
    _numbers(candle, "ohlc")
    time, etime, open_, high, low, close, vwap, volume, count = candle
    return Ohlc(
        channel_id=channel_id,
        time=time,
        etime=etime,
        open=open_,
        high=high,
        low=low,
        close=close,
        vwap=vwap,
        volume=volume,
        count=count,
        channel_name=name,
        pair=pair,
    )


def _decode_trade(frame: list[Any], size: int, name: str) -> Trade:
    channel_id, pair = _public_header(frame, size, name)
    entries = frame[1]
    if type(entries) is not list:
        raise ProtocolError(f"trade payload must be an array of trades, got {_json_type(entries)}")
    trades = []
    for index, entry in enumerate(entries):
        if type(entry) is not list or len(entry) != 6 or any(type(p) is not str for p in entry):
            raise ProtocolError(
                f"trade entry {index} must be [price, volume, time, side, order_type, misc]"
                f" strings, got {_show(entry)}"
            )
        price, volume, time, side, order_type, misc = entry
        _numbers((price, volume, time), "trade entry {}", index)
        trades.append(
            TradeEntry(
                price=price, volume=volume, time=time, side=side, order_type=order_type, misc=misc
            )
        )
    return Trade(channel_id=channel_id, trades=trades, channel_name=name, pair=pair)


def _decode_spread(frame: list[Any], size: int, name: str) -> Spread:
    channel_id, pair = _public_header(frame, size, name)
    body = frame[1]
    if type(body) is not list or len(body) != 5 or any(type(p) is not str for p in body):
        raise ProtocolError(
            "spread payload must be [bid, ask, timestamp, bid_volume, ask_volume] strings,"
            f" got {_show(body)}"
        )
    _numbers(body, "spread")
    bid, ask, timestamp, bid_volume, ask_volume = body
    return Spread(
        channel_id=channel_id,
        bid=bid,
        ask=ask,
        timestamp=timestamp,
        bid_volume=bid_volume,
        ask_volume=ask_volume,
        channel_name=name,
        pair=pair,
    )


# Private ----------------------------------------------------------------------------------------


_Entry = TypeVar("_Entry", OrderInfo, OwnTrade)


def _private_entries(
    frame: list[Any], size: int, name: str, kind: type[_Entry], noun: str
) -> tuple[list[tuple[str, _Entry]], int]:
    """Check ``[[{id: {...}}, ...], name, {"sequence": n}]``; return ((id, struct) pairs, n)."""
    if size != 3:
        raise ProtocolError(f"{name} frame has {size} elements, expected 3")
    entries, meta = frame[0], frame[2]
    if type(meta) is not dict or type(meta.get("sequence")) is not int:
        raise ProtocolError(
            f'{name} frame must end with {{"sequence": <integer>}}, got {_show(meta)}'
        )
    if type(entries) is not list:
        raise ProtocolError(f"{name} frame element 0 must be an array, got {_json_type(entries)}")
    items = []
    for index, entry in enumerate(entries):
        if type(entry) is not dict or len(entry) != 1:
            raise ProtocolError(
                f"{name} entry {index} must be an object holding exactly one {noun} id,"
                f" got {_show(entry)}"
            )
        ((entry_id, fields),) = entry.items()
        try:
            items.append((entry_id, msgspec.convert(fields, kind)))
        except msgspec.ValidationError as exc:
            raise ProtocolError(f"{name} {noun} {entry_id!r}: {_explain(exc, fields)}") from exc
    return items, meta["sequence"]


def _explain(exc: msgspec.ValidationError, fields: Any) -> str:
    """msgspec's complaint, in our words when it is about a number (``Number`` fields)."""
    text = str(exc)
    field, closed, rest = text.partition(" - at `$.")[2].partition("`")
    if (
        "matching regex" in text
        and closed
        and not rest
        and type(fields) is dict
        and field in fields
    ):
        return f"{field} {_show(fields[field])} is not a decimal number"
    return text


def _decode_open_orders(frame: list[Any], size: int, name: str) -> OpenOrders:
    orders, sequence = _private_entries(frame, size, name, OrderInfo, "order")
    return OpenOrders(orders=orders, sequence=sequence)


def _decode_own_trades(frame: list[Any], size: int, name: str) -> OwnTrades:
    trades, sequence = _private_entries(frame, size, name, OwnTrade, "trade")
    return OwnTrades(trades=trades, sequence=sequence)


_CHANNEL_DECODERS: Final[dict[str, Callable[[list[Any], int, str], ServerMessage]]] = {
    "ticker": _decode_ticker,
    "trade": _decode_trade,
    "spread": _decode_spread,
    "openOrders": _decode_open_orders,
    "ownTrades": _decode_own_trades,
}


# --- channel frames: encoding ------------------------------------------------------------------


def _encode_book_snapshot(snapshot: BookSnapshot) -> bytes:
    return _ENCODER.encode(
        [
            snapshot.channel_id,
            {"as": snapshot.asks, "bs": snapshot.bids},
            snapshot.channel_name,
            snapshot.pair,
        ]
    )


def _encode_book_update(update: BookUpdate) -> bytes:
    if update.split:
        second: dict[str, Any] = {"b": update.bids}
        if update.checksum is not None:
            second["c"] = update.checksum
        return _ENCODER.encode(
            [update.channel_id, {"a": update.asks}, second, update.channel_name, update.pair]
        )
    body: dict[str, Any] = {}
    # An update with no levels at all still needs one side key to be recognisable as an update.
    if update.asks or not update.bids:
        body["a"] = update.asks
    if update.bids:
        body["b"] = update.bids
    if update.checksum is not None:
        body["c"] = update.checksum
    return _ENCODER.encode([update.channel_id, body, update.channel_name, update.pair])


def _encode_ticker(ticker: Ticker) -> bytes:
    body = {key: getattr(ticker, key) for key in _TICKER_KEYS}
    return _ENCODER.encode([ticker.channel_id, body, ticker.channel_name, ticker.pair])


def _encode_ohlc(candle: Ohlc) -> bytes:
    payload = [
        candle.time,
        candle.etime,
        candle.open,
        candle.high,
        candle.low,
        candle.close,
        candle.vwap,
        candle.volume,
        candle.count,
    ]
    return _ENCODER.encode([candle.channel_id, payload, candle.channel_name, candle.pair])


def _encode_trade(trade: Trade) -> bytes:
    # TradeEntry is array_like, so msgspec writes each entry as the positional wire array.
    return _ENCODER.encode([trade.channel_id, trade.trades, trade.channel_name, trade.pair])


def _encode_spread(spread: Spread) -> bytes:
    payload = [spread.bid, spread.ask, spread.timestamp, spread.bid_volume, spread.ask_volume]
    return _ENCODER.encode([spread.channel_id, payload, spread.channel_name, spread.pair])


def _encode_open_orders(frame: OpenOrders) -> bytes:
    entries = [{order_id: info} for order_id, info in frame.orders]
    return _ENCODER.encode([entries, "openOrders", {"sequence": frame.sequence}])


def _encode_own_trades(frame: OwnTrades) -> bytes:
    entries = [{trade_id: info} for trade_id, info in frame.trades]
    return _ENCODER.encode([entries, "ownTrades", {"sequence": frame.sequence}])


_FRAME_ENCODERS: Final[dict[type, Callable[[Any], bytes]]] = {
    BookUpdate: _encode_book_update,
    BookSnapshot: _encode_book_snapshot,
    Ticker: _encode_ticker,
    Ohlc: _encode_ohlc,
    Trade: _encode_trade,
    Spread: _encode_spread,
    OpenOrders: _encode_open_orders,
    OwnTrades: _encode_own_trades,
}
