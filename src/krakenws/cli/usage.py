"""The reference script's usage, ``krakenws feed/endpoint [parameters]``, as typed requests.

Kraken's ``krakenws.py`` takes a feed or endpoint name followed by its parameters::

    krakenws ping
    krakenws ticker XBT/USD ETH/EUR XDG/XBT           public feeds: pairs ...
    krakenws book ETH/USD 10                           ... then the depth (book)
    krakenws ohlc LTC/EUR XBT/USD 60                   ... or the interval in minutes (ohlc)
    krakenws openOrders ratecounter=true               private feeds: key=value options
    krakenws ownTrades snapshot=false
    krakenws addOrder pair=XBT/USD type=buy ordertype=market volume=0.002 leverage=5
    krakenws cancelOrder txid=OADMSD-7AGC3-IMB46A,OD6VRE-HCSPM-CKORER
    krakenws cancelAllOrdersAfter timeout=60
    krakenws balances

:func:`parse_feed_command` turns one such command line (name and arguments, already split by
the shell) into one of the frozen values of :data:`FeedCommand`. Trading calls carry the
:mod:`krakenws.protocol.messages` request itself, complete but for the token, so sending one is
``command.request(token)``. Every problem is a :class:`~krakenws.errors.UsageError` whose text
is one line a person can act on.

What is checked here: names (endpoints case-insensitively, with a "did you mean" for near
misses; parameter names likewise), the fixed vocabularies of Kraken's v1 (depths, intervals,
order types, sides, flags, time-in-force, STP types), number syntax (plain decimals read with
``Decimal``, never float, and kept as typed), required and mutually exclusive parameters. What
is not: whether a pair exists (that needs the exchange's pair list) or whether an order would be
accepted (that is the exchange's answer to give).

Pure: no I/O, no clock. Imports only the standard library, msgspec and krakenws' protocol
messages and errors.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal, TypeAlias

import msgspec
from msgspec import UNSET, UnsetType

from krakenws.errors import UsageError
from krakenws.protocol.messages import (
    AddOrder,
    CancelAll,
    CancelAllOrdersAfter,
    CancelOrder,
    EditOrder,
    Ping,
    Subscribe,
    Subscription,
)

__all__ = [
    "BOOK_DEPTHS",
    "ENDPOINTS",
    "OHLC_INTERVALS",
    "ORDER_TYPES",
    "PRIVATE_FEEDS",
    "PUBLIC_FEEDS",
    "TRADING_ENDPOINTS",
    "USAGE_EXAMPLES",
    "BalancesCommand",
    "FeedCommand",
    "PingCommand",
    "PrivateFeed",
    "PublicFeed",
    "TradingCall",
    "TradingRequest",
    "parse_feed_command",
    "resolve_endpoint",
]

PUBLIC_FEEDS = ("ticker", "spread", "trade", "book", "ohlc")
PRIVATE_FEEDS = ("openOrders", "ownTrades")
TRADING_ENDPOINTS = ("addOrder", "editOrder", "cancelOrder", "cancelAll", "cancelAllOrdersAfter")
ENDPOINTS = ("ping", *PUBLIC_FEEDS, *PRIVATE_FEEDS, "balances", *TRADING_ENDPOINTS)
"""Every name the reference script knows (plus ``editOrder``), spelled as Kraken spells it."""

BOOK_DEPTHS = (10, 25, 100, 500, 1000)
OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
ORDER_TYPES = (
    "limit",
    "market",
    "stop-loss",
    "stop-loss-limit",
    "take-profit",
    "take-profit-limit",
    "trailing-stop",
    "trailing-stop-limit",
    "settle-position",
)
_ORDER_SIDES = ("buy", "sell")
_ORDER_FLAGS = ("fcib", "fciq", "nompp", "post", "viqc")
_TIME_IN_FORCE = ("GTC", "IOC", "GTD")
_STP_TYPES = ("cancel_newest", "cancel_oldest", "cancel_both")
_NEEDS_PRICE = frozenset(ORDER_TYPES) - {"market", "settle-position"}
_NEEDS_PRICE2 = frozenset(t for t in ORDER_TYPES if t.endswith("-limit") and t != "limit")
_MAX_DEAD_MAN_TIMEOUT = 86400  # REST caps the dead man's switch below one day (spec 6.6)

USAGE_EXAMPLES = (
    "krakenws ping",
    "krakenws ticker XBT/USD ETH/EUR XDG/XBT",
    "krakenws spread XBT/USD XBT/EUR",
    "krakenws trade XBT/USD",
    "krakenws book ETH/USD 10",
    "krakenws ohlc LTC/EUR XBT/USD 60",
    "krakenws openOrders ratecounter=true",
    "krakenws ownTrades snapshot=false",
    "krakenws balances",
    "krakenws addOrder pair=XBT/USD type=buy ordertype=market volume=0.002 leverage=5",
    "krakenws editOrder orderid=OADMSD-7AGC3-IMB46A pair=XBT/USD price=9000",
    "krakenws cancelOrder txid=OADMSD-7AGC3-IMB46A,OD6VRE-HCSPM-CKORER",
    "krakenws cancelAll",
    "krakenws cancelAllOrdersAfter timeout=60",
)
"""The forms of issue 7, for help texts."""


# --- the typed commands ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PingCommand:
    """``krakenws ping``: one ping on the public endpoint."""

    reqid: int | None = None
    endpoint: Literal["ping"] = "ping"
    needs_token: ClassVar[bool] = False
    needs_api_key: ClassVar[bool] = False

    def request(self) -> Ping:
        """The ping request."""
        return Ping() if self.reqid is None else Ping(reqid=self.reqid)


@dataclass(frozen=True, slots=True)
class PublicFeed:
    """A public channel for some pairs: ``ticker``, ``spread``, ``trade``, ``book``, ``ohlc``.

    ``depth`` is set for ``book`` and ``interval`` for ``ohlc`` (their defaults, 10 and 1, when
    the command line named none); ``pairs`` are as typed, in order, without repeats.
    """

    endpoint: str
    pairs: tuple[str, ...]
    depth: int | None = None
    interval: int | None = None
    reqid: int | None = None
    needs_token: ClassVar[bool] = False
    needs_api_key: ClassVar[bool] = False

    @property
    def channel_name(self) -> str:
        """The ``channelName`` Kraken will use: ``book-10``, ``ohlc-60``, ``ticker``, ..."""
        if self.depth is not None:
            return f"{self.endpoint}-{self.depth}"
        if self.interval is not None:
            return f"{self.endpoint}-{self.interval}"
        return self.endpoint

    def subscription(self) -> Subscription:
        """The ``subscription`` object of the subscribe request."""
        return Subscription(
            name=self.endpoint,
            depth=UNSET if self.depth is None else self.depth,
            interval=UNSET if self.interval is None else self.interval,
        )

    def subscribe(self, pairs: Sequence[str] | None = None) -> Subscribe:
        """The subscribe request; ``pairs`` replaces :attr:`pairs`, e.g. by resolved wsnames."""
        return Subscribe(
            pair=list(self.pairs if pairs is None else pairs),
            subscription=self.subscription(),
            reqid=UNSET if self.reqid is None else self.reqid,
        )


@dataclass(frozen=True, slots=True)
class PrivateFeed:
    """``openOrders`` or ``ownTrades``; options left as None are not sent (Kraken's defaults)."""

    endpoint: str
    ratecounter: bool | None = None
    snapshot: bool | None = None
    consolidate_taker: bool | None = None
    reqid: int | None = None
    needs_token: ClassVar[bool] = True
    needs_api_key: ClassVar[bool] = False

    @property
    def channel_name(self) -> str:
        """The ``channelName`` of the feed's frames."""
        return self.endpoint

    def subscription(self, token: str) -> Subscription:
        """The ``subscription`` object, with the token it needs."""
        return Subscription(
            name=self.endpoint,
            token=token,
            ratecounter=_unset_if_none(self.ratecounter),
            snapshot=_unset_if_none(self.snapshot),
            consolidate_taker=_unset_if_none(self.consolidate_taker),
        )

    def subscribe(self, token: str) -> Subscribe:
        """The subscribe request (no ``pair``: private channels refuse one)."""
        return Subscribe(
            subscription=self.subscription(token),
            reqid=UNSET if self.reqid is None else self.reqid,
        )


@dataclass(frozen=True, slots=True)
class BalancesCommand:
    """``krakenws balances``: REST balances, kept current from the private feeds.

    v1 has no balances channel, so this needs the API key and secret (REST ``Balance``), not
    only a token.
    """

    endpoint: Literal["balances"] = "balances"
    needs_token: ClassVar[bool] = True
    needs_api_key: ClassVar[bool] = True


TradingRequest: TypeAlias = AddOrder | EditOrder | CancelOrder | CancelAll | CancelAllOrdersAfter
"""The requests :class:`TradingCall` can carry."""


@dataclass(frozen=True, slots=True)
class TradingCall:
    """A trading request, complete but for its token (``template.token`` is ``""``)."""

    endpoint: str
    template: TradingRequest
    needs_token: ClassVar[bool] = True
    needs_api_key: ClassVar[bool] = False

    @property
    def reqid(self) -> int | None:
        """The ``reqid`` given on the command line, if any."""
        reqid = self.template.reqid
        return None if isinstance(reqid, UnsetType) else reqid

    def request(self, token: str, reqid: int | None = None) -> TradingRequest:
        """The request to send: the template with ``token`` (and ``reqid`` when given) set."""
        if reqid is None:
            return msgspec.structs.replace(self.template, token=token)
        return msgspec.structs.replace(self.template, token=token, reqid=reqid)


FeedCommand: TypeAlias = PingCommand | PublicFeed | PrivateFeed | BalancesCommand | TradingCall
"""What :func:`parse_feed_command` returns; every kind has ``endpoint``, ``needs_token`` and
``needs_api_key``."""


# --- entry points ------------------------------------------------------------------------------


def resolve_endpoint(name: str) -> str:
    """Kraken's spelling of a feed/endpoint name; any letter case is accepted.

    >>> resolve_endpoint("openorders")
    'openOrders'
    >>> resolve_endpoint("openOrder")
    Traceback (most recent call last):
    ...
    krakenws.errors.UsageError: unknown feed or endpoint 'openOrder'; did you mean 'openOrders'?
    """
    if name in ENDPOINTS:
        return name
    by_lower = {endpoint.lower(): endpoint for endpoint in ENDPOINTS}
    found = by_lower.get(name.lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        raise UsageError(f"unknown feed or endpoint {name!r}; did you mean {by_lower[close[0]]!r}?")
    raise UsageError(f"unknown feed or endpoint {name!r}; known: {', '.join(ENDPOINTS)}")


def parse_feed_command(name: str, args: Sequence[str]) -> FeedCommand:
    """One reference-script command line as a typed request; :class:`UsageError` if invalid.

    >>> parse_feed_command("book", ["ETH/USD", "10"])
    PublicFeed(endpoint='book', pairs=('ETH/USD',), depth=10, interval=None, reqid=None)
    >>> parse_feed_command("cancelOrder", ["txid=OA,OB"]).request("t")
    CancelOrder(token='t', txid=['OA', 'OB'])
    """
    endpoint = resolve_endpoint(name)
    if endpoint == "ping":
        options = _options(endpoint, args, {})
        return PingCommand(reqid=options.reqid)
    if endpoint in PUBLIC_FEEDS:
        return _parse_public(endpoint, args)
    if endpoint == "openOrders":
        options = _options(endpoint, args, {"ratecounter": _parse_bool})
        return PrivateFeed(
            endpoint, ratecounter=options.get_bool("ratecounter"), reqid=options.reqid
        )
    if endpoint == "ownTrades":
        options = _options(
            endpoint, args, {"snapshot": _parse_bool, "consolidate_taker": _parse_bool}
        )
        return PrivateFeed(
            endpoint,
            snapshot=options.get_bool("snapshot"),
            consolidate_taker=options.get_bool("consolidate_taker"),
            reqid=options.reqid,
        )
    if endpoint == "balances":
        _options(endpoint, args, {}, reqid=False)
        return BalancesCommand()
    return TradingCall(endpoint, _TRADING_PARSERS[endpoint](args))


# --- public feeds ------------------------------------------------------------------------------

_PAIR_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.]*(?:[/\-_:]?[A-Za-z0-9][A-Za-z0-9.]*)?")


def _parse_public(endpoint: str, args: Sequence[str]) -> PublicFeed:
    pairs: list[str] = []
    number: int | None = None
    reqid: int | None = None
    number_name = {"book": "depth", "ohlc": "interval"}.get(endpoint)
    for arg in args:
        if arg.isdecimal():
            if number_name is None:
                raise UsageError(
                    f"{endpoint} takes pairs only, not the number {arg!r} "
                    "(a depth is for book, an interval for ohlc)"
                )
            if number is not None:
                raise UsageError(f"{endpoint}: give one {number_name}, not {number} and {arg}")
            number = int(arg)
        elif "=" in arg:
            key, _, value = arg.partition("=")
            key = _match_name(endpoint, key, [*(n for n in [number_name] if n), "reqid"])
            if key == "reqid":
                reqid = _parse_reqid(endpoint, value)
            else:
                if number is not None:
                    raise UsageError(f"{endpoint}: give one {number_name}, not two")
                number = _parse_int(endpoint, key, value)
        else:
            pair = _check_pair(endpoint, arg)
            if pair not in pairs:
                pairs.append(pair)
    if not pairs:
        example = {"book": "ETH/USD 10", "ohlc": "XBT/USD 60"}.get(endpoint, "XBT/USD")
        raise UsageError(f"{endpoint} needs at least one pair, e.g. krakenws {endpoint} {example}")
    if endpoint == "book":
        depth = 10 if number is None else number
        if depth not in BOOK_DEPTHS:
            raise UsageError(
                f"book depth {depth} is not supported; use one of {_listing(BOOK_DEPTHS)}"
            )
        return PublicFeed(endpoint, tuple(pairs), depth=depth, reqid=reqid)
    if endpoint == "ohlc":
        interval = 1 if number is None else number
        if interval not in OHLC_INTERVALS:
            raise UsageError(
                f"ohlc interval {interval} is not supported; use one of "
                f"{_listing(OHLC_INTERVALS)} (minutes)"
            )
        return PublicFeed(endpoint, tuple(pairs), interval=interval, reqid=reqid)
    return PublicFeed(endpoint, tuple(pairs), reqid=reqid)


def _check_pair(endpoint: str, text: str) -> str:
    if not text.strip():
        raise UsageError(f"{endpoint}: empty pair name")
    if text.startswith("-"):
        raise UsageError(f"{endpoint}: unknown option {text!r}")
    if not text.isascii() or _PAIR_TEXT.fullmatch(text) is None:
        raise UsageError(f"{endpoint}: {text!r} is not a pair name (write it like XBT/USD)")
    return text


# --- key=value parameters ----------------------------------------------------------------------

_Parser: TypeAlias = Callable[[str, str, str], object]
"""``(endpoint, key, value) -> parsed value``; raises UsageError."""


class _Options:
    """Parsed ``key=value`` parameters: canonical key -> parsed value, in command-line order."""

    def __init__(self, values: dict[str, Any], reqid: int | None) -> None:
        self.values = values
        self.reqid = reqid

    @property
    def wire_reqid(self) -> int | UnsetType:
        return UNSET if self.reqid is None else self.reqid

    def get_bool(self, key: str) -> bool | None:
        value = self.values.get(key)
        return value if isinstance(value, bool) else None


def _options(
    endpoint: str,
    args: Sequence[str],
    parsers: Mapping[str, _Parser],
    *,
    aliases: Mapping[str, str] | None = None,
    lists: frozenset[str] = frozenset(),
    reqid: bool = True,
) -> _Options:
    """Read ``key=value`` arguments: known names only, each once (``lists`` may repeat)."""
    aliases = aliases or {}
    known = [*parsers, *(["reqid"] if reqid else [])]
    values: dict[str, Any] = {}
    reqid_value: int | None = None
    for arg in args:
        key, equals, value = arg.partition("=")
        if not equals:
            if not known:
                raise UsageError(f"{endpoint} takes no parameters, got {arg!r}")
            hint = _positional_hint(endpoint, arg, known)
            raise UsageError(f"{endpoint} takes key=value parameters, got {arg!r}{hint}")
        if not known:
            raise UsageError(f"{endpoint} takes no parameters, got {arg!r}")
        canonical = _match_name(endpoint, key, [*known, *aliases], aliases)
        if canonical == "reqid":
            if reqid_value is not None:
                raise UsageError(f"{endpoint}: reqid given twice")
            reqid_value = _parse_reqid(endpoint, value)
            continue
        parsed = parsers[canonical](endpoint, key, value)
        if canonical in values:
            if canonical not in lists:
                raise UsageError(f"{endpoint}: {key} given twice")
            previous = values[canonical]
            assert isinstance(previous, list) and isinstance(parsed, list)
            parsed = previous + parsed
        values[canonical] = parsed
    return _Options(values, reqid_value)


def _match_name(
    endpoint: str, key: str, known: Sequence[str], aliases: Mapping[str, str] | None = None
) -> str:
    """The canonical parameter name for ``key`` (any letter case), or a UsageError."""
    aliases = aliases or {}
    if not key:
        raise UsageError(f"{endpoint}: a parameter has no name (write key=value)")
    by_lower = {name.lower(): name for name in known}
    found = by_lower.get(key.lower())
    if found is not None:
        return aliases.get(found, found)
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f"; did you mean {by_lower[close[0]]}?" if close else ""
    visible = [name for name in known if name not in aliases]
    raise UsageError(
        f"{endpoint}: unknown parameter {key!r}{hint} (known: {', '.join(visible) or 'none'})"
    )


def _positional_hint(endpoint: str, arg: str, known: Sequence[str]) -> str:
    if "/" in arg and "pair" in known:
        return f" (did you mean pair={arg}?)"
    if arg.isdecimal() and "timeout" in known:
        return f" (did you mean timeout={arg}?)"
    if "txid" in known and "-" in arg:
        return f" (did you mean txid={arg}?)"
    return f" (known: {', '.join(known)})"


def _listing(values: Sequence[object]) -> str:
    return ", ".join(str(value) for value in values)


def _unset_if_none(value: bool | None) -> bool | UnsetType:
    return UNSET if value is None else value


# --- value parsers -----------------------------------------------------------------------------

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
# ASCII digits only ([0-9], not \d): Kraken takes no other, so refuse them here (exit 2).
_PLAIN_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_PRICE = re.compile(r"(?P<sign>[+\-#]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<percent>%?)")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_LEVERAGE = re.compile(r"[1-9][0-9]*(?::1)?")
_TIME = re.compile(r"\+?[0-9]+")
_UUID = re.compile(
    r"(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32})"
)
_INT32 = 2**31


def _parse_bool(endpoint: str, key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UsageError(f"{endpoint}: {key} must be true or false, not {value!r}")


def _parse_int(endpoint: str, key: str, value: str) -> int:
    if _INTEGER.fullmatch(value) is None:
        raise UsageError(f"{endpoint}: {key} must be a whole number, not {value!r}")
    return int(value)


def _parse_reqid(endpoint: str, value: str) -> int:
    number = _parse_int(endpoint, "reqid", value)
    if not 0 <= number < 2**64:
        raise UsageError(f"{endpoint}: reqid must be between 0 and 2**64 - 1, not {value}")
    return number


def _parse_volume(endpoint: str, key: str, value: str) -> str:
    if _PLAIN_DECIMAL.fullmatch(value) is None:
        raise UsageError(
            f"{endpoint}: {key} must be a plain decimal number like 0.002, not {value!r}"
        )
    if Decimal(value) <= 0:
        raise UsageError(f"{endpoint}: {key} must be greater than zero, not {value}")
    return value


def _parse_price(endpoint: str, key: str, value: str) -> str:
    match = _PRICE.fullmatch(value)
    if match is None:
        raise UsageError(
            f"{endpoint}: {key} must be a decimal price, optionally relative "
            f"(+5, -1.5, #2, +1%), not {value!r}"
        )
    if match["percent"] and not match["sign"]:
        raise UsageError(f"{endpoint}: {key} {value!r}: a percentage needs a +, - or # prefix")
    try:
        Decimal(match["number"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise UsageError(f"{endpoint}: {key} {value!r} is not a number") from None
    return value


def _parse_text(endpoint: str, key: str, value: str) -> str:
    if not value:
        raise UsageError(f"{endpoint}: {key} is empty")
    return value


def _parse_pair(endpoint: str, key: str, value: str) -> str:
    if not value:
        raise UsageError(f"{endpoint}: {key} is empty")
    return _check_pair(endpoint, value)


def _choice(
    choices: Sequence[str], *, fold: Callable[[str], str] = str.lower
) -> Callable[[str, str, str], str]:
    def parse(endpoint: str, key: str, value: str) -> str:
        folded = fold(value)
        if folded in choices:
            return folded
        close = difflib.get_close_matches(folded, list(choices), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(f"{endpoint}: {key} {value!r} is not one of {', '.join(choices)}{hint}")

    return parse


def _parse_oflags(endpoint: str, key: str, value: str) -> str:
    flags = [flag.strip().lower() for flag in value.split(",")]
    for flag in flags:
        if flag not in _ORDER_FLAGS:
            raise UsageError(
                f"{endpoint}: unknown order flag {flag!r} in {key}; "
                f"known: {', '.join(_ORDER_FLAGS)}"
            )
    if len(set(flags)) != len(flags):
        raise UsageError(f"{endpoint}: {key} repeats a flag: {value!r}")
    return ",".join(flags)


def _parse_stp_type(endpoint: str, key: str, value: str) -> str:
    # REST spells these with hyphens (stptype=cancel-newest); WS v1 with underscores.
    return _choice(_STP_TYPES)(endpoint, key, value.replace("-", "_"))


def _parse_time(endpoint: str, key: str, value: str) -> str:
    if _TIME.fullmatch(value) is None:
        raise UsageError(
            f"{endpoint}: {key} must be 0 (now/none), +SECONDS or a unix time, not {value!r}"
        )
    return value


def _parse_deadline(endpoint: str, key: str, value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in value.upper():
        raise UsageError(
            f"{endpoint}: {key} must be an RFC 3339 time with a zone, e.g. "
            f"2024-01-01T12:00:00.000Z, not {value!r}"
        )
    return value


def _parse_userref(endpoint: str, key: str, value: str) -> str:
    number = _parse_int(endpoint, key, value)
    if not -_INT32 <= number < _INT32:
        raise UsageError(f"{endpoint}: {key} must fit in a signed 32-bit integer, not {value}")
    return value


def _parse_cl_ord_id(endpoint: str, key: str, value: str) -> str:
    if _UUID.fullmatch(value) or (
        0 < len(value) <= 18 and value.isascii() and value.isprintable() and " " not in value
    ):
        return value
    raise UsageError(
        f"{endpoint}: {key} must be a UUID or at most 18 ASCII characters, not {value!r}"
    )


def _parse_leverage(endpoint: str, key: str, value: str) -> str:
    if _LEVERAGE.fullmatch(value) is None:
        raise UsageError(f"{endpoint}: {key} must be a whole number like 2 or 5, not {value!r}")
    return value


def _parse_id_list(endpoint: str, key: str, value: str) -> list[str]:
    ids = [part.strip() for part in value.split(",")]
    if not value or any(not part for part in ids):
        raise UsageError(f"{endpoint}: {key} needs comma-separated ids, got {value!r}")
    return ids


def _parse_timeout(endpoint: str, key: str, value: str) -> int:
    number = _parse_int(endpoint, key, value)
    if not 0 <= number < _MAX_DEAD_MAN_TIMEOUT:
        raise UsageError(
            f"{endpoint}: {key} must be between 0 (disable) and {_MAX_DEAD_MAN_TIMEOUT - 1} "
            f"seconds, not {value}"
        )
    return number


# --- trading calls -----------------------------------------------------------------------------

_ADD_ORDER_PARSERS: dict[str, _Parser] = {
    "pair": _parse_pair,
    "type": _choice(_ORDER_SIDES),
    "ordertype": _choice(ORDER_TYPES),
    "volume": _parse_volume,
    "price": _parse_price,
    "price2": _parse_price,
    "leverage": _parse_leverage,
    "margin": _parse_bool,
    "reduce_only": _parse_bool,
    "oflags": _parse_oflags,
    "starttm": _parse_time,
    "expiretm": _parse_time,
    "deadline": _parse_deadline,
    "userref": _parse_userref,
    "cl_ord_id": _parse_cl_ord_id,
    "stp_type": _parse_stp_type,
    "sender_sub_id": _parse_text,
    "validate": _parse_bool,
    "timeinforce": _choice(_TIME_IN_FORCE, fold=str.upper),
    "close[ordertype]": _choice(ORDER_TYPES),
    "close[price]": _parse_price,
    "close[price2]": _parse_price,
}
# Other spellings people bring from REST or write to spare the shell's brackets.
_ADD_ORDER_ALIASES = {
    "stptype": "stp_type",
    "close_ordertype": "close[ordertype]",
    "close_price": "close[price]",
    "close_price2": "close[price2]",
}
# Wire name -> AddOrder attribute, for the bracketed names.
_ADD_ORDER_ATTRIBUTES = {
    "close[ordertype]": "close_ordertype",
    "close[price]": "close_price",
    "close[price2]": "close_price2",
}


def _require(endpoint: str, values: Mapping[str, object], names: Sequence[str]) -> None:
    missing = [name for name in names if name not in values]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise UsageError(f"{endpoint}: missing parameter{plural} {', '.join(missing)}")


def _parse_add_order(args: Sequence[str]) -> AddOrder:
    endpoint = "addOrder"
    options = _options(endpoint, args, _ADD_ORDER_PARSERS, aliases=_ADD_ORDER_ALIASES)
    values = options.values
    _require(endpoint, values, ("pair", "type", "ordertype", "volume"))
    ordertype = values["ordertype"]
    if ordertype in _NEEDS_PRICE and "price" not in values:
        raise UsageError(f"{endpoint}: a {ordertype} order needs price=")
    if ordertype in _NEEDS_PRICE2 and "price2" not in values:
        raise UsageError(f"{endpoint}: a {ordertype} order needs price2= (its limit price)")
    if "userref" in values and "cl_ord_id" in values:
        raise UsageError(f"{endpoint}: give userref or cl_ord_id, not both")
    if values.get("timeinforce") == "GTD" and "expiretm" not in values:
        raise UsageError(f"{endpoint}: timeinforce=GTD needs expiretm=")
    if ("close[price]" in values or "close[price2]" in values) and (
        "close[ordertype]" not in values
    ):
        raise UsageError(f"{endpoint}: a conditional close needs close[ordertype]=")
    fields = {_ADD_ORDER_ATTRIBUTES.get(key, key): value for key, value in values.items()}
    return AddOrder(token="", reqid=options.wire_reqid, **fields)


_EDIT_ORDER_PARSERS: dict[str, _Parser] = {
    "orderid": _parse_text,
    "pair": _parse_pair,
    "volume": _parse_volume,
    "price": _parse_price,
    "price2": _parse_price,
    "oflags": _parse_oflags,
    "newuserref": _parse_userref,
    "validate": _parse_bool,
}


def _parse_edit_order(args: Sequence[str]) -> EditOrder:
    endpoint = "editOrder"
    options = _options(endpoint, args, _EDIT_ORDER_PARSERS, aliases={"txid": "orderid"})
    values = options.values
    _require(endpoint, values, ("orderid", "pair"))
    if not any(key in values for key in ("volume", "price", "price2", "oflags", "newuserref")):
        raise UsageError(
            f"{endpoint}: nothing to change; give volume=, price=, price2=, oflags= or newuserref="
        )
    return EditOrder(token="", reqid=options.wire_reqid, **values)


def _parse_cancel_order(args: Sequence[str]) -> CancelOrder:
    endpoint = "cancelOrder"
    options = _options(
        endpoint,
        args,
        {"txid": _parse_id_list, "cl_ord_id": _parse_id_list},
        lists=frozenset({"txid", "cl_ord_id"}),
    )
    values = options.values
    if not values:
        raise UsageError(
            f"{endpoint}: missing parameter txid (comma-separated order ids or userrefs) "
            "or cl_ord_id"
        )
    return CancelOrder(token="", reqid=options.wire_reqid, **values)


def _parse_cancel_all(args: Sequence[str]) -> CancelAll:
    options = _options("cancelAll", args, {})
    return CancelAll(token="", reqid=options.wire_reqid)


def _parse_cancel_all_orders_after(args: Sequence[str]) -> CancelAllOrdersAfter:
    endpoint = "cancelAllOrdersAfter"
    options = _options(endpoint, args, {"timeout": _parse_timeout})
    _require(endpoint, options.values, ("timeout",))
    timeout = options.values["timeout"]
    assert isinstance(timeout, int)
    return CancelAllOrdersAfter(token="", timeout=timeout, reqid=options.wire_reqid)


_TRADING_PARSERS: dict[str, Callable[[Sequence[str]], TradingRequest]] = {
    "addOrder": _parse_add_order,
    "editOrder": _parse_edit_order,
    "cancelOrder": _parse_cancel_order,
    "cancelAll": _parse_cancel_all,
    "cancelAllOrdersAfter": _parse_cancel_all_orders_after,
}
