"""One model of a Kraken pair, and the one place that turns any pair spelling into it.

Owned here (spec 9, 4.5, 7.4):

* :class:`Pair` — a pair's metadata as REST ``AssetPairs`` gives it (REST key, altname, wsname,
  asset codes, decimals, minimums, tick size, fee schedules, leverage, status) plus the v1
  **wire** widths that AssetPairs does not give: ``ws_price_decimals`` (spec 4.5; *not*
  ``pair_decimals``) and ``ws_volume_decimals`` (8). Client, CLI and sandbox all use it;
  :meth:`Pair.from_asset_pair` reads an AssetPairs entry and :meth:`Pair.to_asset_pair` writes
  one back for the sandbox's REST.
* :class:`PairRegistry` — every pair of one AssetPairs ``result``, and
  :meth:`PairRegistry.resolve`, the single normaliser for names users and peers send:
  ``XBT/USD``, ``BTC/USD``, ``xbt-usd``, ``XBTUSD``, ``XXBTZUSD``, ``btcusd``, ``DOGE/USD``...
  Unknown names raise :class:`~krakenws.errors.UnknownPairError` with a "did you mean" hint.
* :data:`WS_PRICE_DECIMALS` — the wire price widths measured from real v1 traffic.
* :func:`parse_asset_pairs` / :func:`load_pair_registry` / :func:`dump_asset_pairs` — AssetPairs
  JSON in and out. Parsing uses ``parse_float=Decimal``, so fee percents such as ``0.26`` become
  ``Decimal("0.26")`` from their exact text; money is never a float here.

>>> registry = PairRegistry.from_asset_pairs({
...     "XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD", "base": "XXBT", "quote": "ZUSD",
...                  "pair_decimals": 1, "lot_decimals": 8, "ordermin": "0.0001"},
...     "XBTUSDT": {"altname": "XBTUSDT", "wsname": "XBT/USDT", "base": "XXBT", "quote": "USDT",
...                 "pair_decimals": 1, "lot_decimals": 8, "ordermin": "0.0001"},
... })
>>> [registry.resolve(name).wsname for name in ("btc-usd", "XXBTZUSD", "xbtusdt", "BTC/USDT")]
['XBT/USD', 'XBT/USD', 'XBT/USDT', 'XBT/USDT']
>>> pair = registry.resolve("BTC/USD")
>>> pair.tick_size, pair.ws_price_decimals, pair.v2_symbol
(Decimal('0.1'), 5, 'BTC/USD')
>>> from decimal import Decimal
>>> pair.format_ws_price(Decimal("37080.2")), pair.format_ws_volume(Decimal("0.5"))
('37080.20000', '0.50000000')
>>> registry.resolve("XBT/EUR")
Traceback (most recent call last):
...
krakenws.errors.UnknownPairError: unknown pair 'XBT/EUR'; did you mean 'XBT/USD', 'XBT/USDT'?

This module imports msgspec, the standard library and :mod:`krakenws.errors` only.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation
from types import MappingProxyType
from typing import Any, NamedTuple

import msgspec

from krakenws.errors import ProtocolError, UnknownPairError, UsageError, error_from_kraken

__all__ = [
    "ASSET_ALIASES",
    "LEGACY_ASSET_CODES",
    "WS_PRICE_DECIMALS",
    "WS_VOLUME_DECIMALS",
    "FeeTier",
    "Pair",
    "PairRegistry",
    "dump_asset_pairs",
    "load_pair_registry",
    "parse_asset_pairs",
]

WS_PRICE_DECIMALS: Mapping[str, int] = MappingProxyType(
    {
        # spec 4.5, measured from the April 2021 book-1000 capture (tests re-measure these)
        "XBT/CHF": 5,
        "ETH/CHF": 5,
        "XMR/USD": 8,
        "WAVES/EUR": 6,
        "SC/EUR": 6,
        "OMG/USD": 6,
        "KSM/XBT": 8,
        "GRT/ETH": 9,
        "OCEAN/XBT": 9,
        "ADA/XBT": 9,
        # spec 4.5, other observations (2018-2023 book, ticker and private feeds)
        "XBT/USD": 5,
        "XBT/EUR": 5,
        "ETH/USD": 5,
        "ETH/EUR": 5,
        "SOL/USD": 5,
        "ATOM/USD": 6,
        "USDC/USD": 8,
    }
)
"""v1 wire price decimals by wsname. Kraken documents none of these; they are measured."""

WS_VOLUME_DECIMALS = 8
"""v1 sends every volume with 8 decimals (spec 4.5, 9.2)."""

ASSET_ALIASES: Mapping[str, str] = MappingProxyType({"BTC": "XBT", "DOGE": "XDG"})
"""Common (and v2) asset names -> the code v1 wsnames use."""

LEGACY_ASSET_CODES: Mapping[str, str] = MappingProxyType(
    {
        "XXBT": "XBT",
        "XXDG": "XDG",
        "XETH": "ETH",
        "XETC": "ETC",
        "XLTC": "LTC",
        "XMLN": "MLN",
        "XREP": "REP",
        "XXLM": "XLM",
        "XXMR": "XMR",
        "XXRP": "XRP",
        "XZEC": "ZEC",
        "ZUSD": "USD",
        "ZEUR": "EUR",
        "ZGBP": "GBP",
        "ZJPY": "JPY",
        "ZCAD": "CAD",
        "ZAUD": "AUD",
    }
)
"""Kraken's X-/Z-prefixed REST asset codes -> the code v1 wsnames use (spec 9.1).

A registry also learns these from its data (each pair's ``base``/``quote`` against its wsname);
this table covers spellings of assets whose pairs in the data use another code.
"""

_SEPARATORS = str.maketrans({"-": "/", "_": "/", ":": "/", " ": "/"})


class FeeTier(NamedTuple):
    """One fee schedule row: from 30-day ``volume`` (in fee_volume_currency) on, ``percent``."""

    volume: Decimal
    percent: Decimal


def _fail(key: str, message: str) -> ProtocolError:
    return ProtocolError(f"AssetPairs entry {key!r}: {message}")


def _decimal(key: str, field: str, value: object) -> Decimal:
    if isinstance(value, bool):
        raise _fail(key, f"{field} must be a decimal, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str | int):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise _fail(key, f"{field} is not a decimal: {value!r}") from None
    elif isinstance(value, float):
        # JSON parsed without parse_float=Decimal: repr is the shortest text of that float,
        # which is the JSON text for every value Kraken sends.
        result = Decimal(repr(value))
    else:
        raise _fail(key, f"{field} must be a decimal, got {type(value).__name__}")
    if not result.is_finite():
        raise _fail(key, f"{field} is not finite: {value!r}")
    return result


def _int(key: str, field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, f"{field} must be an integer, got {value!r}")
    return value


def _str(key: str, field: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(key, f"{field} must be a string, got {value!r}")
    return value


def _list(key: str, field: str, value: object) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _fail(key, f"{field} must be a list, got {value!r}")
    return list(value)


def _fee_tiers(key: str, field: str, value: object) -> tuple[FeeTier, ...]:
    tiers = []
    for row in _list(key, field, value):
        if not isinstance(row, list | tuple) or len(row) != 2:
            raise _fail(key, f"{field} rows must be [volume, percent], got {row!r}")
        tiers.append(FeeTier(_decimal(key, field, row[0]), _decimal(key, field, row[1])))
    return tuple(tiers)


def _json_number(value: Decimal) -> int | Decimal:
    """Integers back as ``int`` (as Kraken writes ``0``, ``50000``), fractions as Decimal."""
    if value.as_tuple().exponent >= 0:  # type: ignore[operator]  # finite: exponent is an int
        return int(value)
    return value


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _format_fixed(value: Decimal | str | int, places: int, rounding: str | None, what: str) -> str:
    """``value`` with exactly ``places`` decimals; exact unless a ``rounding`` mode is given."""
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise UsageError(f"{what} must be a Decimal, str or int (never a float), got {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise UsageError(f"{what} is not a number: {value!r}") from None
    if not number.is_finite():
        raise UsageError(f"{what} is not finite: {value!r}")
    # Enough precision for any digits the value has: quantize must never fail for size.
    digits = max(number.adjusted(), 0) + places + 2
    context = Context(prec=max(digits, 28), rounding=rounding or ROUND_HALF_EVEN)
    quantum = Decimal(1).scaleb(-places)
    if rounding is None:
        context.traps[Inexact] = True
        try:
            result = number.quantize(quantum, context=context)
        except Inexact:
            raise UsageError(
                f"{what} {value} has more than {places} decimals; round it first "
                "or pass rounding= (e.g. decimal.ROUND_DOWN)"
            ) from None
    else:
        result = number.quantize(quantum, context=context)
    if result.is_zero():
        result = result.copy_abs()  # "-0.00000000" is not a Kraken number
    return format(result, "f")


class Pair(msgspec.Struct, frozen=True, kw_only=True):
    """A trading pair's metadata, as REST AssetPairs gives it, plus its v1 wire widths.

    Decimal fields are parsed from Kraken's exact strings. Fields that older AssetPairs data
    lacks are ``None`` (``cost_decimals``, ``costmin``, ``fees``, ``fees_maker``, ...), except
    ``tick_size``, which :meth:`from_asset_pair` derives as ``10**-pair_decimals`` when absent,
    and ``status``, which is then ``"online"``.

    ``ws_price_decimals`` is the number of decimals v1 writes prices with on this pair (spec
    4.5); it is usually larger than ``pair_decimals`` and comes from :data:`WS_PRICE_DECIMALS`,
    ``None`` where unknown.
    """

    key: str
    """REST pair key, e.g. ``XXBTZUSD`` (keys of every REST ``result``)."""
    altname: str
    """``XBTUSD``: REST requests, REST ``descr.pair``, WS addOrderStatus ``descr`` text."""
    wsname: str
    """``XBT/USD``: every v1 WebSocket message."""
    base: str
    """Base asset code, e.g. ``XXBT``."""
    quote: str
    """Quote asset code, e.g. ``ZUSD``."""
    pair_decimals: int
    """REST price precision."""
    lot_decimals: int
    """REST volume precision."""
    tick_size: Decimal
    """Smallest price step accepted on orders."""
    cost_decimals: int | None = None
    ordermin: Decimal | None = None
    costmin: Decimal | None = None
    status: str = "online"
    ws_price_decimals: int | None = None
    ws_volume_decimals: int = WS_VOLUME_DECIMALS
    aclass_base: str = "currency"
    aclass_quote: str = "currency"
    lot: str = "unit"
    lot_multiplier: int = 1
    leverage_buy: tuple[int, ...] = ()
    leverage_sell: tuple[int, ...] = ()
    fees: tuple[FeeTier, ...] | None = None
    """Taker fee schedule (``fees`` in AssetPairs)."""
    fees_maker: tuple[FeeTier, ...] | None = None
    """Maker fee schedule (``fees_maker``)."""
    fee_volume_currency: str | None = None
    margin_call: int | None = None
    margin_stop: int | None = None
    long_position_limit: int | None = None
    short_position_limit: int | None = None

    # --- names -------------------------------------------------------------------------------

    @property
    def base_ws(self) -> str:
        """The base asset as the wsname spells it (``XBT``)."""
        return self.wsname.partition("/")[0]

    @property
    def quote_ws(self) -> str:
        """The quote asset as the wsname spells it (``USD``)."""
        return self.wsname.partition("/")[2]

    @property
    def v2_symbol(self) -> str:
        """The WebSocket v2 spelling (``BTC/USD``, ``DOGE/USD``)."""
        base, quote = self.base_ws, self.quote_ws
        return f"{_V2_NAMES.get(base, base)}/{_V2_NAMES.get(quote, quote)}"

    # --- numbers -----------------------------------------------------------------------------

    def format_ws_price(self, price: Decimal | str | int, *, rounding: str | None = None) -> str:
        """``price`` as v1 writes it on this pair (``ws_price_decimals`` decimals).

        Exact by default: a price with more decimals than the wire width raises
        :class:`~krakenws.errors.UsageError` unless ``rounding`` (a :mod:`decimal` rounding mode)
        is given. Also raises when the pair's wire width is unknown.
        """
        if self.ws_price_decimals is None:
            raise UsageError(
                f"{self.wsname}: v1 wire price decimals unknown; pass ws_price_decimals "
                "when building the pair or registry"
            )
        return _format_fixed(price, self.ws_price_decimals, rounding, f"{self.wsname} price")

    def format_ws_volume(self, volume: Decimal | str | int, *, rounding: str | None = None) -> str:
        """``volume`` as v1 writes it (``ws_volume_decimals``: 8 decimals); exact by default."""
        return _format_fixed(volume, self.ws_volume_decimals, rounding, f"{self.wsname} volume")

    def format_price(self, price: Decimal | str | int, *, rounding: str | None = None) -> str:
        """``price`` at REST precision (``pair_decimals``); exact by default."""
        return _format_fixed(price, self.pair_decimals, rounding, f"{self.wsname} price")

    def format_volume(self, volume: Decimal | str | int, *, rounding: str | None = None) -> str:
        """``volume`` at REST precision (``lot_decimals``); exact by default."""
        return _format_fixed(volume, self.lot_decimals, rounding, f"{self.wsname} volume")

    def is_on_tick(self, price: Decimal) -> bool:
        """Whether ``price`` is a whole number of ``tick_size`` steps (order validation)."""
        return bool(price.is_finite() and (price % self.tick_size).is_zero())

    def fee_percent(self, volume: Decimal, *, maker: bool = False) -> Decimal | None:
        """The fee percent of the tier that 30-day ``volume`` reaches; None without a schedule."""
        schedule = self.fees_maker if maker else self.fees
        if not schedule:
            return None
        percent = schedule[0].percent
        for tier in schedule:
            if volume >= tier.volume:
                percent = tier.percent
        return percent

    # --- AssetPairs in and out ---------------------------------------------------------------

    @classmethod
    def from_asset_pair(
        cls, key: str, info: Mapping[str, Any], *, ws_price_decimals: int | None = None
    ) -> Pair:
        """The pair of one AssetPairs entry (``key`` is its REST key).

        ``ws_price_decimals`` overrides :data:`WS_PRICE_DECIMALS`. Unknown extra fields are
        ignored; missing or mistyped required ones raise :class:`~krakenws.errors.ProtocolError`.
        Floats (JSON parsed without ``parse_float=Decimal``) are read through their ``repr``.
        """
        if not isinstance(info, Mapping):
            raise _fail(key, f"must be an object, got {type(info).__name__}")
        for field in ("altname", "wsname", "base", "quote", "pair_decimals", "lot_decimals"):
            if field not in info:
                raise _fail(key, f"missing {field!r}")
        wsname = _str(key, "wsname", info["wsname"])
        if wsname.count("/") != 1 or wsname.startswith("/") or wsname.endswith("/"):
            raise _fail(key, f"wsname must look like 'BASE/QUOTE', got {wsname!r}")
        pair_decimals = _int(key, "pair_decimals", info["pair_decimals"])

        def optional_int(field: str) -> int | None:
            value = info.get(field)
            return None if value is None else _int(key, field, value)

        def optional_decimal(field: str) -> Decimal | None:
            value = info.get(field)
            return None if value is None else _decimal(key, field, value)

        def optional_str(field: str) -> str | None:
            value = info.get(field)
            return None if value is None else _str(key, field, value)

        def optional_fees(field: str) -> tuple[FeeTier, ...] | None:
            value = info.get(field)
            return None if value is None else _fee_tiers(key, field, value)

        def int_list(field: str) -> tuple[int, ...]:
            return tuple(_int(key, field, item) for item in _list(key, field, info.get(field, [])))

        tick_size = optional_decimal("tick_size")
        if ws_price_decimals is None:
            ws_price_decimals = WS_PRICE_DECIMALS.get(wsname)
        return cls(
            key=key,
            altname=_str(key, "altname", info["altname"]),
            wsname=wsname,
            base=_str(key, "base", info["base"]),
            quote=_str(key, "quote", info["quote"]),
            pair_decimals=pair_decimals,
            lot_decimals=_int(key, "lot_decimals", info["lot_decimals"]),
            tick_size=tick_size if tick_size is not None else Decimal(1).scaleb(-pair_decimals),
            cost_decimals=optional_int("cost_decimals"),
            ordermin=optional_decimal("ordermin"),
            costmin=optional_decimal("costmin"),
            status=optional_str("status") or "online",
            ws_price_decimals=ws_price_decimals,
            aclass_base=optional_str("aclass_base") or "currency",
            aclass_quote=optional_str("aclass_quote") or "currency",
            lot=optional_str("lot") or "unit",
            lot_multiplier=optional_int("lot_multiplier") or 1,
            leverage_buy=int_list("leverage_buy"),
            leverage_sell=int_list("leverage_sell"),
            fees=optional_fees("fees"),
            fees_maker=optional_fees("fees_maker"),
            fee_volume_currency=optional_str("fee_volume_currency"),
            margin_call=optional_int("margin_call"),
            margin_stop=optional_int("margin_stop"),
            long_position_limit=optional_int("long_position_limit"),
            short_position_limit=optional_int("short_position_limit"),
        )

    def to_asset_pair(self) -> dict[str, Any]:
        """This pair as an AssetPairs entry (the value under its REST key), in Kraken's order.

        JSON types follow spec 7.4: decimals (``ordermin``, ``costmin``, ``tick_size``) as
        strings; counts and leverage as ints; fee tiers as numbers — integers as ``int``,
        fractions as :class:`~decimal.Decimal`, so encode with :func:`dump_asset_pairs` (or any
        encoder that writes Decimals as JSON numbers). Always written: ``tick_size``, ``status``,
        ``lot`` and the leverage lists; optional fields only when known. The wire widths are not
        AssetPairs fields and are not written.
        """
        entry: dict[str, Any] = {
            "altname": self.altname,
            "wsname": self.wsname,
            "aclass_base": self.aclass_base,
            "base": self.base,
            "aclass_quote": self.aclass_quote,
            "quote": self.quote,
            "lot": self.lot,
        }
        if self.cost_decimals is not None:
            entry["cost_decimals"] = self.cost_decimals
        entry["pair_decimals"] = self.pair_decimals
        entry["lot_decimals"] = self.lot_decimals
        entry["lot_multiplier"] = self.lot_multiplier
        entry["leverage_buy"] = list(self.leverage_buy)
        entry["leverage_sell"] = list(self.leverage_sell)
        for field, schedule in (("fees", self.fees), ("fees_maker", self.fees_maker)):
            if schedule is not None:
                entry[field] = [[_json_number(t.volume), _json_number(t.percent)] for t in schedule]
        optional: tuple[tuple[str, object], ...] = (
            ("fee_volume_currency", self.fee_volume_currency),
            ("margin_call", self.margin_call),
            ("margin_stop", self.margin_stop),
            ("ordermin", self.ordermin),
            ("costmin", self.costmin),
        )
        for field, value in optional:
            if value is not None:
                entry[field] = _plain(value) if isinstance(value, Decimal) else value
        entry["tick_size"] = _plain(self.tick_size)
        entry["status"] = self.status
        if self.long_position_limit is not None:
            entry["long_position_limit"] = self.long_position_limit
        if self.short_position_limit is not None:
            entry["short_position_limit"] = self.short_position_limit
        return entry


_V2_NAMES: Mapping[str, str] = MappingProxyType({v: k for k, v in ASSET_ALIASES.items()})


def _split(text: str) -> list[str] | None:
    """Upper-cased ``[base, quote]`` of a separated spelling, ``None`` for a compact one."""
    if "/" not in text:
        return None
    return text.split("/")


class PairRegistry:
    """The pairs of one exchange, and the one normaliser of pair names.

    :meth:`resolve` accepts, in any letter case and with ``/``, ``-``, ``_``, ``:`` or space as
    separator (or none): the wsname (``XBT/USD``), v2 and common asset names (``BTC``, ``DOGE``),
    the altname (``XBTUSD``), the REST key (``XXBTZUSD``) and legacy X/Z asset codes
    (``XXBT/ZUSD``). Every spelling is precomputed into dictionaries; resolving is a few dict
    lookups. A compact spelling that two pairs could both produce is refused as ambiguous,
    unless it is one pair's REST key or altname (those always win).
    """

    def __init__(
        self, pairs: Iterable[Pair], *, asset_aliases: Mapping[str, str] = ASSET_ALIASES
    ) -> None:
        self._pairs: dict[str, Pair] = {}
        exact: dict[str, Pair] = {}
        for pair in pairs:
            for name in (pair.key, pair.wsname, pair.altname):
                other = exact.get(name)
                if other is not None and other is not pair:
                    raise UsageError(f"pair name {name!r} used by both {other.key} and {pair.key}")
                exact[name] = pair
            self._pairs[pair.key] = pair
        self._exact = exact

        # asset spelling -> the code wsnames use; wsname codes map to themselves and win
        canonical: dict[str, str] = {k.upper(): v.upper() for k, v in asset_aliases.items()}
        canonical.update(LEGACY_ASSET_CODES)
        for pair in self._pairs.values():
            canonical[pair.base.upper()] = pair.base_ws.upper()
            canonical[pair.quote.upper()] = pair.quote_ws.upper()
        for pair in self._pairs.values():
            canonical[pair.base_ws.upper()] = pair.base_ws.upper()
            canonical[pair.quote_ws.upper()] = pair.quote_ws.upper()
        spellings: dict[str, set[str]] = {}
        for spelling, code in canonical.items():
            spellings.setdefault(code, {code}).add(spelling)
        self._canonical = canonical

        self._by_assets: dict[tuple[str, str], Pair] = {}
        authoritative: dict[str, Pair] = {}
        derived: dict[str, Pair] = {}
        self._ambiguous: dict[str, list[str]] = {}
        for pair in self._pairs.values():
            base, quote = pair.base_ws.upper(), pair.quote_ws.upper()
            self._by_assets[(base, quote)] = pair
            authoritative[pair.key.upper()] = pair
            authoritative[pair.altname.upper()] = pair
            for base_spelling in spellings.get(base, {base}):
                for quote_spelling in spellings.get(quote, {quote}):
                    compact = base_spelling + quote_spelling
                    other = derived.get(compact)
                    if other is not None and other is not pair:
                        self._ambiguous.setdefault(compact, [other.wsname]).append(pair.wsname)
                    derived[compact] = pair
        for compact in self._ambiguous:
            del derived[compact]
        self._compact = {**derived, **authoritative}
        self._hint_names = sorted({p.wsname.upper() for p in self._pairs.values()})
        self._wsname_upper = {p.wsname.upper(): p.wsname for p in self._pairs.values()}

    @classmethod
    def from_asset_pairs(
        cls,
        result: Mapping[str, Mapping[str, Any]],
        *,
        ws_price_decimals: Mapping[str, int] | None = None,
        asset_aliases: Mapping[str, str] = ASSET_ALIASES,
    ) -> PairRegistry:
        """A registry of a whole AssetPairs ``result`` (the map keyed by REST pair key).

        Dark-pool entries (``.d`` keys) and entries without a ``wsname`` are skipped (spec 9.1).
        ``ws_price_decimals`` (by wsname) adds to or overrides :data:`WS_PRICE_DECIMALS`.
        """
        widths = {**WS_PRICE_DECIMALS, **(ws_price_decimals or {})}
        pairs = [
            Pair.from_asset_pair(key, info, ws_price_decimals=widths.get(str(info["wsname"])))
            for key, info in result.items()
            if not key.endswith(".d") and isinstance(info, Mapping) and info.get("wsname")
        ]
        return cls(pairs, asset_aliases=asset_aliases)

    # --- lookups -----------------------------------------------------------------------------

    def resolve(self, name: str | Pair) -> Pair:
        """The pair any known spelling of ``name`` means; see the class docstring.

        Raises :class:`~krakenws.errors.UnknownPairError` (with close matches as a hint).
        """
        if isinstance(name, Pair):
            if self._pairs.get(name.key) is name:
                return name
            name = name.wsname
        pair = self._exact.get(name)
        if pair is not None:
            return pair
        pair = self._lookup(name)
        if pair is None:
            raise UnknownPairError(name, self._hint(name))
        return pair

    def get(self, name: str, default: Pair | None = None) -> Pair | None:
        """Like :meth:`resolve`, but ``default`` instead of an error."""
        if not isinstance(name, str):
            return default
        pair = self._exact.get(name)
        if pair is None:
            pair = self._lookup(name)
        return default if pair is None else pair

    def _lookup(self, name: str) -> Pair | None:
        text = name.strip().upper().translate(_SEPARATORS)
        parts = _split(text)
        if parts is None:
            return self._compact.get(text)
        if len(parts) != 2:
            return None
        base, quote = parts
        return self._by_assets.get(
            (self._canonical.get(base, base), self._canonical.get(quote, quote))
        )

    def _hint(self, name: str) -> str:
        text = name.strip().upper().translate(_SEPARATORS) if isinstance(name, str) else ""
        if text in self._ambiguous:
            choices = ", ".join(repr(w) for w in self._ambiguous[text])
            return f"ambiguous: could be {choices}; use the wsname"
        parts = _split(text)
        if parts is not None:
            text = "/".join(self._canonical.get(part, part) for part in parts)
            matches = difflib.get_close_matches(text, self._hint_names, n=3, cutoff=0.6)
            found = [self._wsname_upper[m] for m in matches]
        else:  # every compact spelling, so "BTCUSX" still finds XBT/USD
            matches = difflib.get_close_matches(text, self._compact, n=6, cutoff=0.6)
            found = [self._compact[m].wsname for m in matches]
        wsnames = list(dict.fromkeys(found))[:3]
        if not wsnames:
            return f"{len(self._pairs)} pairs known"
        return "did you mean " + ", ".join(repr(w) for w in wsnames) + "?"

    def __contains__(self, name: object) -> bool:
        if isinstance(name, Pair):
            return self._pairs.get(name.key) == name
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[Pair]:
        return iter(self._pairs.values())

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return f"<PairRegistry of {len(self._pairs)} pairs>"

    @property
    def pairs(self) -> Mapping[str, Pair]:
        """Every pair by REST key."""
        return MappingProxyType(self._pairs)

    def to_asset_pairs(self) -> dict[str, dict[str, Any]]:
        """The AssetPairs ``result`` of every pair, keyed by REST key (for the sandbox's REST)."""
        return {key: pair.to_asset_pair() for key, pair in self._pairs.items()}


# --- AssetPairs JSON ---------------------------------------------------------------------------


def parse_asset_pairs(text: str | bytes) -> dict[str, Any]:
    """The pair map of an AssetPairs JSON document, decimals as :class:`~decimal.Decimal`.

    Accepts the whole REST response (``{"error": [], "result": {...}}``) or just its
    ``result``. A response carrying an error raises the matching
    :class:`~krakenws.errors.ExchangeError`.
    """
    try:
        document = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise ProtocolError(f"AssetPairs is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ProtocolError("AssetPairs JSON must be an object")
    if "result" in document and "error" in document:
        errors = document["error"]
        if errors:
            raise error_from_kraken(str(errors[0]))
        document = document["result"]
        if not isinstance(document, dict):
            raise ProtocolError("AssetPairs 'result' must be an object")
    return document


def load_pair_registry(
    path: str | os.PathLike[str], *, ws_price_decimals: Mapping[str, int] | None = None
) -> PairRegistry:
    """A registry from an AssetPairs JSON file (full REST response or just ``result``)."""
    with open(path, "rb") as source:
        return PairRegistry.from_asset_pairs(
            parse_asset_pairs(source.read()), ws_price_decimals=ws_price_decimals
        )


_ENCODER = msgspec.json.Encoder(decimal_format="number")


def dump_asset_pairs(result: Mapping[str, Any] | PairRegistry, *, response: bool = True) -> bytes:
    """AssetPairs JSON bytes, with Decimal fee tiers as exact JSON numbers.

    ``response=True`` wraps the pairs in Kraken's ``{"error": [], "result": ...}``.
    """
    pairs = result.to_asset_pairs() if isinstance(result, PairRegistry) else result
    return _ENCODER.encode({"error": [], "result": pairs} if response else pairs)
