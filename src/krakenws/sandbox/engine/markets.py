"""What the sandbox trades: assets, pairs, and the money rounding rules. Pure, no I/O but data.

Owned here:

* :class:`Asset` — one row of Kraken's REST ``Assets`` result (code, altname, decimals).
* :class:`Markets` — the assets and the :class:`~krakenws.pairs.PairRegistry` the engine trades,
  loaded from AssetPairs/Assets ``result`` documents (the built-in ``default_pairs.json`` and
  ``default_assets.json`` next to this module, or any other file).
* :data:`SANDBOX_WS_PRICE_DECIMALS` — v1 wire price widths for default pairs that
  :data:`krakenws.pairs.WS_PRICE_DECIMALS` does not know (chosen, not measured; see below).
* The rounding helpers every amount goes through: :func:`round_down` (what a trade moves),
  :func:`round_up` (what a hold reserves), :func:`round_half_even` (display averages).

Reading the packaged data files is the only thing that touches the file system, and only in
:meth:`Markets.default` / :meth:`Markets.from_files`; everything else takes documents.

>>> markets = Markets.default()
>>> pair = markets.pair("BTC/USD")
>>> pair.key, pair.tick_size, pair.ordermin, pair.costmin, pair.ws_price_decimals
('XXBTZUSD', Decimal('0.1'), Decimal('0.0001'), Decimal('0.5'), 5)
>>> markets.asset("ZUSD").decimals, markets.asset("XXBT").decimals
(4, 10)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from importlib import resources
from types import MappingProxyType
from typing import Any

import msgspec

from krakenws.errors import UsageError, error_from_kraken
from krakenws.pairs import Pair, PairRegistry, parse_asset_pairs

__all__ = [
    "SANDBOX_WS_PRICE_DECIMALS",
    "Asset",
    "Markets",
    "quantum",
    "round_down",
    "round_half_even",
    "round_up",
]

SANDBOX_WS_PRICE_DECIMALS: Mapping[str, int] = MappingProxyType(
    {
        # Not measured: chosen >= pair_decimals, following the measured pattern of spec 4.5
        # (fiat-quoted pairs use 5 decimals; XBT-quoted pairs with 8 pair decimals use 9).
        "ETH/XBT": 5,
        "LTC/USD": 5,
        "LTC/EUR": 5,
        "XDG/USD": 8,
        "XDG/XBT": 9,
    }
)
"""Wire price decimals for default pairs missing from :data:`krakenws.pairs.WS_PRICE_DECIMALS`."""


class Asset(msgspec.Struct, frozen=True, kw_only=True):
    """One asset as REST ``Assets`` lists it; balances are kept at ``decimals`` places."""

    code: str
    """REST asset code, e.g. ``XXBT``, ``ZUSD``, ``SOL``."""
    altname: str
    decimals: int
    display_decimals: int
    aclass: str = "currency"
    collateral_value: Decimal | None = None
    status: str = "enabled"

    def to_asset_info(self) -> dict[str, Any]:
        """This asset as a REST ``Assets`` entry (the value under its code)."""
        entry: dict[str, Any] = {
            "aclass": self.aclass,
            "altname": self.altname,
            "decimals": self.decimals,
            "display_decimals": self.display_decimals,
        }
        if self.collateral_value is not None:
            entry["collateral_value"] = self.collateral_value
        entry["status"] = self.status
        return entry


_QUANTA: dict[int, Decimal] = {}


def quantum(places: int) -> Decimal:
    """``10**-places`` as a Decimal (``quantum(2) == Decimal("0.01")``)."""
    found = _QUANTA.get(places)
    if found is None:
        found = _QUANTA[places] = Decimal(1).scaleb(-places)
    return found


def round_down(value: Decimal, places: int) -> Decimal:
    """``value`` floored to ``places`` decimals: what a trade moves (customer-favourable)."""
    return value.quantize(quantum(places), rounding=ROUND_FLOOR)


def round_up(value: Decimal, places: int) -> Decimal:
    """``value`` ceiled to ``places`` decimals: what a hold reserves (never too little)."""
    return value.quantize(quantum(places), rounding=ROUND_CEILING)


def round_half_even(value: Decimal, places: int) -> Decimal:
    """``value`` rounded half-even to ``places`` decimals (averages, relative prices)."""
    return value.quantize(quantum(places), rounding=ROUND_HALF_EVEN)


def _assets_from_result(result: Mapping[str, Any]) -> dict[str, Asset]:
    assets = {}
    for code, info in result.items():
        if not isinstance(info, Mapping):
            raise UsageError(f"Assets entry {code!r} must be an object")
        collateral = info.get("collateral_value")
        assets[code] = Asset(
            code=code,
            altname=str(info["altname"]),
            decimals=int(info["decimals"]),
            display_decimals=int(info["display_decimals"]),
            aclass=str(info.get("aclass", "currency")),
            collateral_value=None if collateral is None else Decimal(str(collateral)),
            status=str(info.get("status", "enabled")),
        )
    return assets


def _result(document: Any) -> Mapping[str, Any]:
    if isinstance(document, Mapping) and "result" in document and "error" in document:
        if document["error"]:
            raise error_from_kraken(str(document["error"][0]))
        document = document["result"]
    if not isinstance(document, Mapping):
        raise UsageError("an Assets document must be a JSON object")
    return document


class Markets:
    """The assets and pairs one engine trades.

    Every pair's base and quote must be a known asset, and each pair's ``lot_decimals`` must fit
    in its base asset's ``decimals`` (volumes move balances exactly).
    """

    def __init__(self, registry: PairRegistry, assets: Mapping[str, Asset]) -> None:
        self.registry = registry
        self._assets = dict(assets)
        for pair in registry:
            for code in (pair.base, pair.quote):
                if code not in self._assets:
                    raise UsageError(f"pair {pair.wsname}: asset {code!r} missing from Assets")
            if pair.lot_decimals > self._assets[pair.base].decimals:
                raise UsageError(f"pair {pair.wsname}: lot_decimals exceed the base decimals")

    @classmethod
    def from_documents(
        cls,
        asset_pairs: Mapping[str, Any],
        assets: Mapping[str, Any],
        *,
        ws_price_decimals: Mapping[str, int] | None = None,
    ) -> Markets:
        """Markets from AssetPairs and Assets ``result`` maps (or whole REST responses).

        ``ws_price_decimals`` (by wsname) adds to :data:`SANDBOX_WS_PRICE_DECIMALS` and
        :data:`krakenws.pairs.WS_PRICE_DECIMALS`.
        """
        widths = {**SANDBOX_WS_PRICE_DECIMALS, **(ws_price_decimals or {})}
        registry = PairRegistry.from_asset_pairs(_result(asset_pairs), ws_price_decimals=widths)
        return cls(registry, _assets_from_result(_result(assets)))

    @classmethod
    def from_files(
        cls,
        asset_pairs_path: str | os.PathLike[str],
        assets_path: str | os.PathLike[str],
        *,
        ws_price_decimals: Mapping[str, int] | None = None,
    ) -> Markets:
        """Markets from an AssetPairs JSON file and an Assets JSON file."""
        with open(asset_pairs_path, "rb") as source:
            pairs = parse_asset_pairs(source.read())
        with open(assets_path, "rb") as source:
            assets = json.loads(source.read(), parse_float=Decimal)
        return cls.from_documents(pairs, assets, ws_price_decimals=ws_price_decimals)

    @classmethod
    def default(cls, *, ws_price_decimals: Mapping[str, int] | None = None) -> Markets:
        """The built-in pairs (XBT/USD, XBT/EUR, ETH/USD, ... USDC/USD) and their assets."""
        package = resources.files(__package__ or "krakenws.sandbox.engine")
        pairs = parse_asset_pairs(package.joinpath("default_pairs.json").read_bytes())
        assets = json.loads(
            package.joinpath("default_assets.json").read_bytes(), parse_float=Decimal
        )
        return cls.from_documents(pairs, assets, ws_price_decimals=ws_price_decimals)

    def pair(self, name: str | Pair) -> Pair:
        """The pair any spelling means; ``EQuery:Unknown asset pair`` when none."""
        if isinstance(name, str | Pair):
            pair = self.registry.get(name.wsname if isinstance(name, Pair) else name)
            if pair is not None:
                return pair
        raise error_from_kraken("EQuery:Unknown asset pair")

    def asset(self, code: str) -> Asset:
        """The asset of a REST code (``XXBT``) or altname (``XBT``); UsageError when unknown."""
        found = self._assets.get(code)
        if found is None:
            for asset in self._assets.values():
                if asset.altname == code:
                    return asset
            raise UsageError(f"unknown asset {code!r}")
        return found

    @property
    def assets(self) -> Mapping[str, Asset]:
        """Every asset by REST code."""
        return MappingProxyType(self._assets)

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.registry)

    def to_assets(self) -> dict[str, dict[str, Any]]:
        """The REST ``Assets`` result of every asset."""
        return {code: asset.to_asset_info() for code, asset in self._assets.items()}
