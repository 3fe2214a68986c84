"""Trading requests as the engine takes them, and the argument parsers that reject bad ones. Pure.

:class:`OrderRequest` carries an addOrder/AddOrder request with the wire's field names and the
wire's values (strings), so the REST and WebSocket layers hand over what they received;
``Decimal`` and ``int`` are accepted too, floats never. The parsers raise Kraken's exact errors,
``EGeneral:Invalid arguments:<field>`` for anything malformed, missing, negative, not finite or
absurdly large, and ``EOrder:Tick size check failed`` for prices off the tick.

>>> parse_price_spec("+5%", "price")
PriceSpec(sign='+', value=Decimal('5'), percent=True)
>>> parse_price_spec("#10.5", "price")
PriceSpec(sign='#', value=Decimal('10.5'), percent=False)
>>> parse_amount("1.5e3", "volume")
Traceback (most recent call last):
...
krakenws.errors.InvalidArgumentsError: EGeneral:Invalid arguments:volume
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from krakenws.errors import ExchangeError, error_from_kraken
from krakenws.protocol.messages import userref_value

__all__ = [
    "MAX_AMOUNT",
    "ORDER_TYPES",
    "TRIGGER_TYPES",
    "OrderRequest",
    "PriceSpec",
    "invalid",
    "parse_amount",
    "parse_bool",
    "parse_price_spec",
    "parse_userref",
]

MAX_AMOUNT = Decimal(10) ** 12
"""Prices and volumes at or above this are refused as invalid arguments."""

ORDER_TYPES = frozenset(
    {
        "limit",
        "market",
        "stop-loss",
        "take-profit",
        "stop-loss-limit",
        "take-profit-limit",
        "trailing-stop",
        "trailing-stop-limit",
    }
)
"""Order types the sandbox trades (``settle-position`` and ``iceberg`` are refused)."""

TRIGGER_TYPES = frozenset(ORDER_TYPES - {"limit", "market"})
"""Order types that wait for a trigger."""

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_PRICE = re.compile(r"([+\-#]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(%?)")


def invalid(field: str) -> ExchangeError:
    """``EGeneral:Invalid arguments:<field>``."""
    return error_from_kraken(f"EGeneral:Invalid arguments:{field}")


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRequest:
    """An addOrder request (spec 6.1) in wire names; values as received (strings) or exact.

    ``pair`` may be any spelling the pair registry resolves. ``validate`` accepts a bool or
    ``"true"``/``"false"`` in any letter case. ``deadline`` is not here: the I/O layer checks it
    against arrival time before calling the engine.
    """

    pair: str
    type: str
    ordertype: str
    volume: str | Decimal | int | None
    price: str | Decimal | int | None = None
    price2: str | Decimal | int | None = None
    oflags: str | None = None
    timeinforce: str | None = None
    starttm: str | int | None = None
    expiretm: str | int | None = None
    userref: str | int | None = None
    cl_ord_id: str | None = None
    stp_type: str | None = None
    leverage: str | int | None = None
    margin: bool | str | None = None
    reduce_only: bool | str | None = None
    close_ordertype: str | None = None
    close_price: str | Decimal | int | None = None
    close_price2: str | Decimal | int | None = None
    validate: bool | str | None = None


class PriceSpec(NamedTuple):
    """A parsed price: ``sign`` is ``""`` (absolute), ``+``, ``-`` or ``#``; ``%`` -> percent."""

    sign: str
    value: Decimal
    percent: bool

    @property
    def relative(self) -> bool:
        """Whether the price is relative to the last trade price."""
        return bool(self.sign) or self.percent

    def text(self) -> str:
        """The spec as Kraken's descr shows it (``+5%``, ``#10``, ``25000.1``)."""
        return f"{self.sign}{self.value:f}{'%' if self.percent else ''}"


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise invalid(field)
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, str) and _NUMBER.fullmatch(value):
        try:
            result = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern only admits plain numbers
            raise invalid(field) from None
    else:
        raise invalid(field)
    if not result.is_finite() or result < 0 or result >= MAX_AMOUNT:
        raise invalid(field)
    return result


def parse_amount(value: object, field: str) -> Decimal:
    """A positive, finite, plain decimal (``"0.5"``, ``Decimal``, ``int``) below MAX_AMOUNT."""
    result = _decimal(value, field)
    if result <= 0:
        raise invalid(field)
    return result


def parse_price_spec(value: object, field: str) -> PriceSpec:
    """An absolute price, or a relative one: ``+``/``-``/``#`` prefix and/or ``%`` suffix."""
    if isinstance(value, str):
        match = _PRICE.fullmatch(value)
        if match is None:
            raise invalid(field)
        sign, number, percent = match.groups()
        return PriceSpec(sign, parse_amount(number, field), bool(percent))
    return PriceSpec("", parse_amount(value, field), False)


def parse_bool(value: object, field: str) -> bool:
    """``True``/``False`` or their strings in any case; ``None`` is ``False``."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid(field)


def parse_userref(value: object, field: str = "userref") -> int:
    """A signed 32-bit integer (Kraken's userref), as int or string of an int."""
    userref = userref_value(value)
    if userref is None:
        raise invalid(field)
    return userref
