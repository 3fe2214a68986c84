"""Default pairs and assets, loading from files, ids, the rate counter table."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from krakenws.errors import UnknownAssetPairError
from krakenws.pairs import WS_PRICE_DECIMALS, dump_asset_pairs
from krakenws.sandbox.engine import Markets, SeededIds
from krakenws.sandbox.engine.ratelimit import RATE_TIERS, TradingRateCounter, cancel_cost, edit_cost

D = Decimal
WSNAMES = [
    "XBT/USD", "XBT/EUR", "ETH/USD", "ETH/EUR", "ETH/XBT", "LTC/USD", "LTC/EUR", "SOL/USD",
    "XDG/USD", "XDG/XBT", "USDC/USD",
]  # fmt: skip


def test_default_pairs_cover_the_required_set_with_wire_widths() -> None:
    markets = Markets.default()
    assert sorted(p.wsname for p in markets) == sorted(WSNAMES)
    for pair in markets:
        assert pair.ws_price_decimals is not None
        assert pair.ws_price_decimals >= pair.pair_decimals
        assert pair.fees and pair.fees_maker and pair.ordermin and pair.costmin
        if pair.wsname in WS_PRICE_DECIMALS:
            assert pair.ws_price_decimals == WS_PRICE_DECIMALS[pair.wsname]
        assert pair.lot_decimals <= markets.asset(pair.base).decimals


def test_xbtusd_has_krakens_parameters() -> None:
    pair = Markets.default().pair("XBTUSD")
    assert (pair.key, pair.altname, pair.base, pair.quote) == ("XXBTZUSD", "XBTUSD", "XXBT", "ZUSD")
    assert (pair.pair_decimals, pair.lot_decimals, pair.cost_decimals) == (1, 8, 5)
    assert (pair.ordermin, pair.costmin, pair.tick_size) == (D("0.0001"), D("0.5"), D("0.1"))
    assert pair.fee_percent(D(0)) == D("0.4")
    assert pair.fee_percent(D(0), maker=True) == D("0.25")
    assert pair.format_ws_price(D("37080.2")) == "37080.20000"


def test_assets_table() -> None:
    markets = Markets.default()
    assert set(markets.assets) == {"XXBT", "ZUSD", "ZEUR", "XETH", "XLTC", "SOL", "XXDG", "USDC"}
    assert markets.asset("XBT").code == "XXBT"
    assert markets.to_assets()["ZUSD"]["decimals"] == 4


def test_unknown_pair_is_krakens_error() -> None:
    with pytest.raises(UnknownAssetPairError):
        Markets.default().pair("FOO/BAR")


def test_markets_load_from_other_files(tmp_path: Path) -> None:
    default = Markets.default()
    pairs = {k: v for k, v in default.registry.to_asset_pairs().items() if k == "XXBTZUSD"}
    pairs_path = tmp_path / "pairs.json"
    pairs_path.write_bytes(dump_asset_pairs(pairs))
    assets_path = tmp_path / "assets.json"
    assets = {k: default.assets[k].to_asset_info() for k in ("XXBT", "ZUSD")}
    assets_path.write_text(json.dumps({"error": [], "result": assets}, default=str))
    loaded = Markets.from_files(pairs_path, assets_path, ws_price_decimals={"XBT/USD": 6})
    assert [p.wsname for p in loaded] == ["XBT/USD"]
    assert loaded.pair("XBT/USD").ws_price_decimals == 6
    assert loaded.pair("XBT/USD").ordermin == default.pair("XBT/USD").ordermin
    assert loaded.pair("XBT/USD").fees == default.pair("XBT/USD").fees


def test_seeded_ids_are_reproducible_and_unique() -> None:
    first = [SeededIds(seed=5).next("O") for _ in range(3)]
    assert len(set(first)) == 1
    ids = SeededIds(seed=5)
    many = {ids.next("T") for _ in range(2000)}
    assert len(many) == 2000
    with pytest.raises(ValueError):
        SeededIds()


def test_rate_costs_match_the_worked_example() -> None:
    # add (+1), amend after 7 s (+1 fixed, +2), cancel 36 s after the amend (+4) = 8 (spec 7.6)
    counter = TradingRateCounter(RATE_TIERS["pro"]._replace(decay_per_second=D(0)))
    counter.charge("a", "P", D(1), now=0)
    counter.charge("a", "P", D(1) + 2, now=7_000_000)
    assert counter.charge("a", "P", cancel_cost(D(36)), now=43_000_000) == 8
    assert edit_cost(D(3)) == 7 and edit_cost(D(100)) == 1
    assert cancel_cost(D(299)) == 1 and cancel_cost(D(300)) == 0
