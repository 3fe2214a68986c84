"""The pair model and the name normaliser, against Kraken's real AssetPairs and book traffic."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krakenws.errors import (
    ExchangeError,
    ProtocolError,
    UnknownAssetPairError,
    UnknownPairError,
    UsageError,
)
from krakenws.pairs import (
    WS_PRICE_DECIMALS,
    FeeTier,
    Pair,
    PairRegistry,
    dump_asset_pairs,
    load_pair_registry,
    parse_asset_pairs,
)
from krakenws.testing import frames_from_cryptofeed_log

from .conftest import ASSET_PAIRS, BOOK1000, fixture_path

# The ten pairs of the April 2021 book-1000 capture and their wire price decimals (spec 4.5).
FIXTURE_WIDTHS = {
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
}

# AssetPairs entry in today's shape (spec 7.4 example, XXBTZUSD, 2025), fields in Kraken's order.
MODERN_XBTUSD: dict[str, Any] = {
    "altname": "XBTUSD",
    "wsname": "XBT/USD",
    "aclass_base": "currency",
    "base": "XXBT",
    "aclass_quote": "currency",
    "quote": "ZUSD",
    "lot": "unit",
    "cost_decimals": 5,
    "pair_decimals": 1,
    "lot_decimals": 8,
    "lot_multiplier": 1,
    "leverage_buy": [2, 3, 4, 5],
    "leverage_sell": [2, 3, 4, 5],
    "fees": [[0, Decimal("0.4")], [10000, Decimal("0.35")]],
    "fees_maker": [[0, Decimal("0.25")], [10000, Decimal("0.2")]],
    "fee_volume_currency": "ZUSD",
    "margin_call": 80,
    "margin_stop": 40,
    "ordermin": "0.0001",
    "costmin": "0.5",
    "tick_size": "0.1",
    "status": "online",
    "long_position_limit": 270,
    "short_position_limit": 180,
}


def _asset_pairs_text() -> str:
    """The JSON of the real AssetPairs capture (line 1 is ``<url> -> <ts>: <json>``)."""
    first_line = fixture_path(ASSET_PAIRS).read_text(encoding="utf-8").splitlines()[0]
    return first_line.partition(": ")[2]


@cache
def _raw_result() -> dict[str, Any]:
    return parse_asset_pairs(_asset_pairs_text())


@cache
def _registry() -> PairRegistry:
    return PairRegistry.from_asset_pairs(_raw_result())


@pytest.fixture
def registry() -> PairRegistry:
    return _registry()


# --- building from the real AssetPairs ---------------------------------------------------------


def test_registry_skips_dark_pool_and_wsname_less_entries(registry: PairRegistry) -> None:
    raw = _raw_result()
    assert len(raw) == 304
    assert len(registry) == 293
    assert not any(pair.key.endswith(".d") for pair in registry)
    assert {key for key in raw if key not in registry.pairs} == {
        key for key in raw if key.endswith(".d")
    }


def test_real_pair_fields(registry: PairRegistry) -> None:
    pair = registry.resolve("XBT/USD")
    assert (pair.key, pair.altname, pair.wsname, pair.base, pair.quote) == (
        "XXBTZUSD",
        "XBTUSD",
        "XBT/USD",
        "XXBT",
        "ZUSD",
    )
    assert (pair.pair_decimals, pair.lot_decimals, pair.ordermin) == (1, 8, Decimal("0.0002"))
    # absent in 2021 data: tick_size derived from pair_decimals, the others unknown
    assert pair.tick_size == Decimal("0.1")
    assert pair.cost_decimals is None and pair.costmin is None
    assert pair.status == "online"
    assert pair.ws_price_decimals == 5 and pair.ws_volume_decimals == 8
    assert pair.fees is not None and pair.fees[0] == FeeTier(Decimal(0), Decimal("0.26"))
    assert pair.fees_maker is not None and pair.fees_maker[-1] == (Decimal(10000000), Decimal(0))
    assert all(isinstance(t.percent, Decimal) for t in pair.fees)
    assert pair.leverage_buy == (2, 3, 4, 5)
    assert (pair.margin_call, pair.margin_stop, pair.fee_volume_currency) == (80, 40, "ZUSD")
    assert pair.v2_symbol == "BTC/USD"
    assert registry.resolve("XDG/USD").v2_symbol == "DOGE/USD"
    assert registry.resolve("ETH/USD").tick_size == Decimal("0.01")


def test_every_pair_resolves_by_every_spelling(registry: PairRegistry) -> None:
    aliases = {"XBT": ["BTC", "btc"], "XDG": ["DOGE", "doge"]}
    for pair in registry:
        base, quote = pair.base_ws, pair.quote_ws
        names = [
            pair.wsname,
            pair.wsname.lower(),
            pair.altname,
            pair.altname.lower(),
            pair.key,
            pair.key.lower(),
            f"{base}-{quote}".lower(),
            f"{base}{quote}",
            f" {base}_{quote} ",
            f"{pair.base}/{pair.quote}",  # REST asset codes, e.g. XXBT/ZUSD
            f"{pair.base}{pair.quote}",
        ]
        for base_alias in aliases.get(base, [base]):
            for quote_alias in aliases.get(quote, [quote]):
                names += [
                    f"{base_alias}/{quote_alias}",
                    f"{base_alias}{quote_alias}",
                    f"{base_alias}-{quote_alias}",
                ]
        for name in names:
            assert registry.resolve(name) is pair, name
            assert name in registry
        assert registry.resolve(pair) is pair


@pytest.mark.parametrize(
    ("name", "wsname"),
    [
        ("XBT/USD", "XBT/USD"),
        ("BTC/USD", "XBT/USD"),
        ("xbt/usd", "XBT/USD"),
        ("XBTUSD", "XBT/USD"),
        ("xbtusd", "XBT/USD"),
        ("XXBTZUSD", "XBT/USD"),
        ("BTCUSD", "XBT/USD"),
        ("btc-usd", "XBT/USD"),
        ("XDG/USD", "XDG/USD"),
        ("DOGE/USD", "XDG/USD"),
        ("dogeusd", "XDG/USD"),
        ("XXDGZUSD", "XDG/USD"),
        ("XBT/USDT", "XBT/USDT"),
        ("BTC/USDT", "XBT/USDT"),
        ("xbtusdt", "XBT/USDT"),
        ("XBT/USDC", "XBT/USDC"),
        ("USDT/USD", "USDT/USD"),
        ("USDTZUSD", "USDT/USD"),
        ("ETH/BTC", "ETH/XBT"),
        ("XETHXXBT", "ETH/XBT"),
        ("ETHXBT", "ETH/XBT"),
        ("XDG/BTC", "XDG/XBT"),
        ("DOGEXBT", "XDG/XBT"),
        ("ETH2.S/ETH", "ETH2.S/ETH"),
        ("eth2.s-eth", "ETH2.S/ETH"),
        ("XMR/USD", "XMR/USD"),
        ("XXMRZUSD", "XMR/USD"),
        ("XBT:CHF", "XBT/CHF"),
    ],
)
def test_resolve_examples(registry: PairRegistry, name: str, wsname: str) -> None:
    assert registry.resolve(name).wsname == wsname


@pytest.mark.parametrize(
    "name",
    ["XBT/FOO", "FOO", "", "XBT/USD/EUR", "XBTUSD.d", "XXBTZUSD.d", "XBT/", "/USD", "USD/XBT"],
)
def test_unknown_names_raise_unknown_pair_error(registry: PairRegistry, name: str) -> None:
    with pytest.raises(UnknownPairError) as info:
        registry.resolve(name)
    error = info.value
    assert isinstance(error, UsageError) and isinstance(error, KeyError)
    assert error.name == name
    assert f"unknown pair {name!r}" in str(error)
    assert registry.get(name) is None
    assert name not in registry


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("XBT/USX", "XBT/USD"),
        ("BTCUSX", "XBT/USD"),
        ("doge/usdx", "XDG/USD"),
        ("ETH/CHX", "ETH/CHF"),
    ],
)
def test_unknown_pair_hint_suggests_close_matches(
    registry: PairRegistry, name: str, suggestion: str
) -> None:
    with pytest.raises(UnknownPairError, match="did you mean") as info:
        registry.resolve(name)
    assert repr(suggestion) in str(info.value)


# --- hypothesis: any spelling of a wsname resolves to that pair --------------------------------

_ALIASES = {"XBT": ["XBT", "BTC", "XXBT"], "XDG": ["XDG", "DOGE", "XXDG"]}


@st.composite
def _spellings(draw: st.DrawFn) -> tuple[Pair, str]:
    pair = draw(st.sampled_from(sorted(_registry(), key=lambda p: p.key)))
    base = draw(st.sampled_from(_ALIASES.get(pair.base_ws, [pair.base_ws, pair.base])))
    quote = draw(st.sampled_from(_ALIASES.get(pair.quote_ws, [pair.quote_ws, pair.quote])))
    separator = draw(st.sampled_from(["/", "-", "_", ":", " ", ""]))
    text = f"{base}{separator}{quote}"
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    text = "".join(c.swapcase() if flip else c for c, flip in zip(text, flips, strict=True))
    padding = draw(st.sampled_from(["", " ", "\t"]))
    return pair, f"{padding}{text}{padding}"


@given(_spellings())
def test_any_case_and_separator_resolves_to_the_pair(case: tuple[Pair, str]) -> None:
    pair, name = case
    assert _registry().resolve(name) is pair


# --- wire widths measured from real book traffic -----------------------------------------------


def _measured_widths() -> dict[str, tuple[set[int], set[int]]]:
    path = fixture_path(BOOK1000)
    widths: dict[str, tuple[set[int], set[int]]] = defaultdict(lambda: (set(), set()))
    with open(path, encoding="utf-8") as log:
        for direction, text in frames_from_cryptofeed_log(log):
            frame = json.loads(text)
            if direction != "recv" or not isinstance(frame, list):
                continue
            prices, volumes = widths[frame[-1]]
            for payload in frame[1:-2]:  # [channelID, {..}, ({..},) channelName, pair]
                for side in ("as", "bs", "a", "b"):
                    for level in payload.get(side, []):
                        prices.add(len(level[0].partition(".")[2]))
                        volumes.add(len(level[1].partition(".")[2]))
    return dict(widths)


def test_wire_widths_measured_from_the_book_capture(registry: PairRegistry) -> None:
    measured = _measured_widths()
    assert set(measured) == set(FIXTURE_WIDTHS)
    for wsname, (prices, volumes) in measured.items():
        assert len(prices) == 1, f"{wsname}: price width not constant: {prices}"
        assert volumes == {8}, f"{wsname}: volume widths {volumes}"
        assert prices == {FIXTURE_WIDTHS[wsname]}
        assert WS_PRICE_DECIMALS[wsname] == FIXTURE_WIDTHS[wsname]
        pair = registry.resolve(wsname)
        assert pair.ws_price_decimals == FIXTURE_WIDTHS[wsname]
        assert pair.ws_volume_decimals == 8
    # spec 4.5: the wire width is not pair_decimals (only OMG/USD happens to agree)
    differing = [
        w for w in FIXTURE_WIDTHS if registry.resolve(w).pair_decimals != FIXTURE_WIDTHS[w]
    ]
    assert sorted(set(FIXTURE_WIDTHS) - set(differing)) == ["OMG/USD"]


def test_wire_width_table_has_the_other_observations() -> None:
    for wsname, width in {
        "XBT/USD": 5,
        "XBT/EUR": 5,
        "ETH/USD": 5,
        "ETH/EUR": 5,
        "SOL/USD": 5,
        "ATOM/USD": 6,
        "USDC/USD": 8,
    }.items():
        assert WS_PRICE_DECIMALS[wsname] == width


def test_wire_width_override_and_unknown(registry: PairRegistry) -> None:
    raw = {"AAVEUSD": _raw_result()["AAVEUSD"]}
    unknown = PairRegistry.from_asset_pairs(raw).resolve("AAVE/USD")
    assert unknown.ws_price_decimals is None
    with pytest.raises(UsageError, match="wire price decimals unknown"):
        unknown.format_ws_price(Decimal(1))
    known = PairRegistry.from_asset_pairs(raw, ws_price_decimals={"AAVE/USD": 5})
    assert known.resolve("aaveusd").format_ws_price(Decimal("301.2")) == "301.20000"


# --- number formatting -------------------------------------------------------------------------


def test_format_ws_numbers_exactly(registry: PairRegistry) -> None:
    xbtusd, xmrusd = registry.resolve("XBT/USD"), registry.resolve("XMR/USD")
    assert xbtusd.format_ws_price(Decimal("5541.3")) == "5541.30000"
    assert xbtusd.format_ws_price("37080.2") == "37080.20000"
    assert xbtusd.format_ws_price(30000) == "30000.00000"
    assert xmrusd.format_ws_price(Decimal("389.61")) == "389.61000000"
    assert xbtusd.format_ws_volume(Decimal("0")) == "0.00000000"
    assert xbtusd.format_ws_volume(Decimal("-0")) == "0.00000000"
    assert xbtusd.format_ws_volume(Decimal("2.507")) == "2.50700000"
    assert xbtusd.format_ws_volume(Decimal("1E-8")) == "0.00000001"
    assert xbtusd.format_ws_price(Decimal("5541.30000000")) == "5541.30000"  # zeros are exact
    huge = Decimal("123456789012345678901234567890.5")
    assert xbtusd.format_ws_price(huge) == "123456789012345678901234567890.50000"
    assert xbtusd.format_price(Decimal("37500")) == "37500.0"
    assert xbtusd.format_volume(Decimal("1.25")) == "1.25000000"


def test_format_refuses_inexact_unless_rounding_given(registry: PairRegistry) -> None:
    xbtusd = registry.resolve("XBT/USD")
    with pytest.raises(UsageError, match="more than 5 decimals"):
        xbtusd.format_ws_price(Decimal("1.000001"))
    with pytest.raises(UsageError, match="more than 1 decimals"):
        xbtusd.format_price(Decimal("37500.05"))
    assert xbtusd.format_price(Decimal("37500.05"), rounding=ROUND_DOWN) == "37500.0"
    assert xbtusd.format_price(Decimal("37500.05"), rounding=ROUND_HALF_UP) == "37500.1"
    with pytest.raises(UsageError, match="more than 8 decimals"):
        xbtusd.format_ws_volume(Decimal("0.000000001"))


@pytest.mark.parametrize("value", [1.5, True, Decimal("NaN"), Decimal("Infinity"), "abc", None])
def test_format_refuses_floats_and_non_numbers(registry: PairRegistry, value: Any) -> None:
    with pytest.raises(UsageError):
        registry.resolve("XBT/USD").format_ws_price(value)


def test_tick_and_fee_helpers(registry: PairRegistry) -> None:
    pair = Pair.from_asset_pair("XXBTZUSD", MODERN_XBTUSD)
    assert pair.is_on_tick(Decimal("30000.1"))
    assert not pair.is_on_tick(Decimal("30000.15"))
    assert pair.fee_percent(Decimal(0)) == Decimal("0.4")
    assert pair.fee_percent(Decimal(10000)) == Decimal("0.35")
    assert pair.fee_percent(Decimal(9999), maker=True) == Decimal("0.25")
    assert registry.resolve("XBT/USD").fee_percent(Decimal(10**9)) == Decimal("0.1")
    minimal = {"altname": "AB", "wsname": "A/B", "base": "A", "quote": "B"}
    bare = Pair.from_asset_pair("X", minimal | {"pair_decimals": 2, "lot_decimals": 8})
    assert bare.fee_percent(Decimal(0)) is None


# --- AssetPairs round trip ---------------------------------------------------------------------


def test_round_trip_preserves_every_real_field(registry: PairRegistry) -> None:
    for key, info in _raw_result().items():
        if key.endswith(".d"):
            continue
        pair = registry.pairs[key]
        out = pair.to_asset_pair()
        for field, value in info.items():
            assert out[field] == value, (key, field)
        # added: the modern always-present fields, derived for 2021 data
        assert set(out) - set(info) == {"tick_size", "status"}
        assert Pair.from_asset_pair(key, out) == pair


def test_round_trip_through_json_keeps_the_numbers_exact(registry: PairRegistry) -> None:
    original = json.loads(_asset_pairs_text())["result"]  # plain floats, as any client sees it
    again = json.loads(dump_asset_pairs(registry))
    assert again["error"] == []
    for key, entry in again["result"].items():
        for field, value in original[key].items():
            assert entry[field] == value, (key, field)
            assert type(entry[field]) is type(value), (key, field)
    # the fee percents appear in the JSON text exactly as Kraken wrote them
    assert b"[[0,0.26],[50000,0.24]" in dump_asset_pairs(registry)


def test_modern_entry_round_trips_in_krakens_field_order() -> None:
    pair = Pair.from_asset_pair("XXBTZUSD", MODERN_XBTUSD)
    assert (pair.cost_decimals, pair.costmin, pair.tick_size) == (5, Decimal("0.5"), Decimal("0.1"))
    assert (pair.long_position_limit, pair.short_position_limit) == (270, 180)
    out = pair.to_asset_pair()
    assert out == MODERN_XBTUSD
    assert list(out) == list(MODERN_XBTUSD)


def test_from_asset_pair_reads_floats_through_their_text() -> None:
    info = {**MODERN_XBTUSD, "fees": [[0, 0.26], [50000, 0.24]]}
    pair = Pair.from_asset_pair("XXBTZUSD", info)
    assert pair.fees == (
        FeeTier(Decimal(0), Decimal("0.26")),
        FeeTier(Decimal(50000), Decimal("0.24")),
    )


def test_tick_size_given_wins_over_pair_decimals() -> None:
    pair = Pair.from_asset_pair("XXBTZUSD", {**MODERN_XBTUSD, "tick_size": "0.5"})
    assert pair.tick_size == Decimal("0.5")
    assert pair.to_asset_pair()["tick_size"] == "0.5"
    no_tick = {k: v for k, v in MODERN_XBTUSD.items() if k != "tick_size"} | {"pair_decimals": 8}
    assert Pair.from_asset_pair("T", no_tick).to_asset_pair()["tick_size"] == "0.00000001"


REMOVE = object()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"wsname": REMOVE}, "missing 'wsname'"),
        ({"pair_decimals": "1"}, "pair_decimals must be an integer"),
        ({"pair_decimals": True}, "pair_decimals must be an integer"),
        ({"wsname": "XBTUSD"}, "BASE/QUOTE"),
        ({"ordermin": "lots"}, "ordermin is not a decimal"),
        ({"fees": [[0]]}, r"\[volume, percent\]"),
        ({"leverage_buy": "2"}, "leverage_buy must be a list"),
    ],
)
def test_malformed_entries_raise_protocol_error(change: dict[str, Any], message: str) -> None:
    info = {k: v for k, v in (MODERN_XBTUSD | change).items() if v is not REMOVE}
    with pytest.raises(ProtocolError, match=message):
        Pair.from_asset_pair("XXBTZUSD", info)


# --- loading -----------------------------------------------------------------------------------


def test_parse_full_response_or_result_only() -> None:
    text = _asset_pairs_text()
    full = parse_asset_pairs(text)
    result_only = parse_asset_pairs(json.dumps(json.loads(text)["result"]))
    assert full.keys() == result_only.keys()
    assert isinstance(full["XXBTZUSD"]["fees"][1][1], Decimal)


def test_parse_error_response_raises_the_exchange_error() -> None:
    with pytest.raises(UnknownAssetPairError) as info:
        parse_asset_pairs('{"error":["EQuery:Unknown asset pair"],"result":{}}')
    assert isinstance(info.value, ExchangeError)
    with pytest.raises(ProtocolError):
        parse_asset_pairs("not json")
    with pytest.raises(ProtocolError):
        parse_asset_pairs("[1, 2]")


def test_load_pair_registry_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "AssetPairs.json"
    path.write_text(_asset_pairs_text(), encoding="utf-8")
    loaded = load_pair_registry(path, ws_price_decimals={"AAVE/USD": 4})
    assert len(loaded) == 293
    assert loaded.resolve("aave-usd").ws_price_decimals == 4
    assert loaded.resolve("XBT/USD") == _registry().resolve("XBT/USD")
    path.write_bytes(dump_asset_pairs(loaded))  # the sandbox's REST answer, read back
    assert load_pair_registry(path).pairs == _registry().pairs  # wire widths are not in it


# --- registry construction rules ---------------------------------------------------------------


def _pair(key: str, wsname: str, altname: str, base: str, quote: str) -> Pair:
    return Pair(
        key=key,
        altname=altname,
        wsname=wsname,
        base=base,
        quote=quote,
        pair_decimals=2,
        lot_decimals=8,
        tick_size=Decimal("0.01"),
    )


def test_compact_spelling_two_pairs_share_is_ambiguous() -> None:
    registry = PairRegistry(
        [_pair("K1", "AB/CD", "AB_CD", "AB", "CD"), _pair("K2", "ABC/D", "ABC_D", "ABC", "D")]
    )
    assert registry.resolve("ab-cd").key == "K1"
    assert registry.resolve("abc/d").key == "K2"
    with pytest.raises(UnknownPairError, match="ambiguous"):
        registry.resolve("ABCD")


def test_rest_key_and_altname_win_over_derived_spellings() -> None:
    registry = PairRegistry(
        [_pair("ABCD", "AB/CD", "ABCD", "AB", "CD"), _pair("K2", "ABC/D", "ABC_D", "ABC", "D")]
    )
    assert registry.resolve("abcd").key == "ABCD"


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(UsageError, match="used by both"):
        PairRegistry([_pair("K1", "A/B", "AB", "A", "B"), _pair("K2", "A/B", "AB2", "A", "B")])


def test_registry_is_iterable_and_exports_asset_pairs(registry: PairRegistry) -> None:
    assert len(list(registry)) == len(registry) == 293
    assert "XBT/USD" in registry and 42 not in registry
    exported = registry.to_asset_pairs()
    assert exported["XXBTZUSD"]["wsname"] == "XBT/USD"
    assert PairRegistry.from_asset_pairs(exported).pairs == registry.pairs
    assert repr(registry) == "<PairRegistry of 293 pairs>"
