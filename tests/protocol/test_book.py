"""The order book: Kraken's checksum vectors, real captures replayed, and a property test."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from krakenws.errors import ChecksumMismatchError, CrossedBookError, ProtocolError
from krakenws.protocol.book import (
    Level,
    OrderBook,
    checksum_reference,
    depth_from_channel_name,
)
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import BookSnapshot, BookUpdate
from tests.conftest import BOOK1000, CHECKSUM_VECTORS, SDK_BOOK10, fixture_path, server_frames

# --- Kraken's documented examples ---------------------------------------------------------------

DOC_ASKS = [[f"0.0{p}", "0.00000500", "1582905487.684110"] for p in range(5005, 5051, 5)]
DOC_BIDS = [
    [f"0.0{p}", "0.00000500", "1582905487.439814"]
    for p in (5000, 4995, 4990, 4980, 4975, 4970, 4965, 4960, 4955, 4950)
]


def test_kraken_documentation_vector_spec_4_2() -> None:
    book = OrderBook("XBT/USD", depth=10)
    book.apply_snapshot(DOC_ASKS, DOC_BIDS)
    assert book.checksum() == 974947235
    assert checksum_reference(DOC_ASKS, DOC_BIDS) == 974947235


SPEC_4_3_ASKS = [
    ["5711.80000", "8.13439401", "1557070784.848047"],
    ["5712.20000", "2.00000000", "1557070781.808406"],
    ["5712.80000", "0.30000000", "1557070773.476930"],
    ["5713.00000", "3.29800000", "1557070781.512421"],
    ["5713.10000", "1.00000000", "1557070779.818328"],
    ["5713.90000", "1.00000000", "1557070768.447094"],
    ["5714.70000", "0.50000000", "1557070774.812637"],
    ["5715.20000", "1.00000000", "1557070775.107926"],
    ["5716.60000", "1.22700000", "1557070782.640298"],
    ["5716.80000", "0.35000000", "1557070778.437474"],
]
SPEC_4_3_BIDS = [
    ["5711.70000", "0.00749800", "1557070783.114209"],
    ["5709.20000", "3.30000000", "1557070783.130545"],
    ["5708.30000", "0.75483907", "1557070781.945733"],
    ["5708.20000", "5.00000000", "1557070765.713567"],
    ["5707.80000", "2.50000000", "1557070781.917062"],
    ["5707.40000", "4.33000000", "1557070781.835457"],
    ["5707.00000", "0.00200000", "1557070774.924290"],
    ["5706.90000", "1.17300000", "1557070775.183596"],
    ["5706.40000", "0.85600000", "1557070782.119548"],
    ["5706.30000", "1.00000000", "1557070778.434404"],
]


def test_real_depth10_sequence_with_republish_and_truncation_spec_4_3() -> None:
    book = OrderBook("XBT/USD", depth=10)
    book.apply_snapshot(SPEC_4_3_ASKS, SPEC_4_3_BIDS)
    book.apply_update(
        bids=[
            ["5709.20000", "3.00000000", "1557070784.000000"],
            ["5708.20000", "0.00000000", "1557070784.000001"],
            ["5705.90000", "7.62400000", "1557070783.582385", "r"],
        ],
        checksum="2470128591",
    )
    book.apply_update(
        bids=[
            ["5709.20000", "8.00000000", "1557070785.000000"],
            ["5709.40000", "0.30000000", "1557070785.000001"],
        ],
        checksum="4148072505",
    )
    assert len(book.bids()) == 10  # 11 bids: the worst, 5705.9, fell out of the window
    assert Decimal("5705.90000") not in [level.price for level in book.bids()]
    book.apply_update(
        bids=[
            ["5708.30000", "0.00000000", "1557070786.000000"],
            ["5705.90000", "7.62400000", "1557070783.582385", "r"],
        ],
        checksum="3093569863",
    )
    assert book.bids()[-1] == Level(
        Decimal("5705.90000"), Decimal("7.62400000"), Decimal("1557070783.582385")
    )


def test_checksum_vectors_file() -> None:
    vectors = json.loads(fixture_path(CHECKSUM_VECTORS).read_text())
    assert len(vectors) == 4
    for vector in vectors:
        asks = [[p, v, "0.000000"] for p, v in vector["asks"]]
        bids = [[p, v, "0.000000"] for p, v in vector["bids"]]
        assert checksum_reference(asks, bids) == vector["checksum"]
        book = OrderBook("TEST", depth=25)
        book.apply_snapshot(asks, bids)
        assert book.checksum() == vector["checksum"]


# --- real captures -----------------------------------------------------------------------------


def _replay(name: str) -> tuple[int, dict[str, OrderBook]]:
    books: dict[str, OrderBook] = {}
    verified = 0
    for text in server_frames(name):
        message = decode_server(text)
        if isinstance(message, BookSnapshot):
            book = books[message.pair] = OrderBook(
                message.pair, depth_from_channel_name(message.channel_name)
            )
            book.apply(message)
        elif isinstance(message, BookUpdate):
            assert message.checksum is not None
            books[message.pair].apply(message)
            verified += 1
    return verified, books


def test_every_checksum_of_the_book1000_capture_verifies() -> None:
    verified, books = _replay(BOOK1000)
    assert verified == 4269
    assert len(books) == 10
    for book in books.values():
        assert book.depth == 1000
        assert not book.crossed
        asks, bids = book.asks(), book.bids()
        assert [a.price for a in asks] == sorted(a.price for a in asks)
        assert [b.price for b in bids] == sorted((b.price for b in bids), reverse=True)
        assert len(asks) <= 1000 and len(bids) <= 1000


def test_every_checksum_of_the_sdk_book10_capture_verifies() -> None:
    verified, books = _replay(SDK_BOOK10)
    assert verified == 979
    (book,) = books.values()
    assert book.pair == "XBT/USD" and book.price_decimals == 5
    assert len(book.asks()) == len(book.bids()) == 10


@pytest.mark.parametrize("name", [BOOK1000, SDK_BOOK10])
def test_a_corrupted_frame_is_caught(name: str) -> None:
    frames = server_frames(name)
    # Corrupt the volume of the 100th update's first level, keeping the wire format.
    updates = [i for i, text in enumerate(frames) if '"c":"' in text]
    index = updates[100]
    frame = json.loads(frames[index])
    side = "a" if "a" in frame[1] else "b"
    level = frame[1][side][0]
    level[1] = "7.77777777" if level[1] != "7.77777777" else "6.66666666"
    frames[index] = json.dumps(frame)
    books: dict[str, OrderBook] = {}
    with pytest.raises(ChecksumMismatchError) as caught:
        for text in frames[: index + 1]:
            message = decode_server(text)
            if isinstance(message, BookSnapshot):
                books[message.pair] = OrderBook(
                    message.pair, depth_from_channel_name(message.channel_name)
                )
                books[message.pair].apply(message)
            elif isinstance(message, BookUpdate):
                books[message.pair].apply(message)
    error = caught.value
    assert error.pair == frame[-1]
    assert error.expected == int(frame[-3]["c"])
    assert error.computed != error.expected
    assert str(error.expected) in str(error)


# --- rules ---------------------------------------------------------------------------------------


def _book(depth: int = 10) -> OrderBook:
    book = OrderBook("XBT/USD", depth=depth)
    book.apply_snapshot(
        asks=[["101.00000", "1.00000000", "1.0"], ["102.00000", "2.00000000", "1.0"]],
        bids=[["100.00000", "1.00000000", "1.0"], ["99.00000", "2.00000000", "1.0"]],
    )
    return book


def test_reading_the_book_is_decimal_exact() -> None:
    book = _book()
    assert book.best_ask() == Level(Decimal("101.00000"), Decimal("1.00000000"), Decimal("1.0"))
    assert book.best_bid() is not None and book.best_bid().price == Decimal("100.00000")  # type: ignore[union-attr]
    assert book.spread() == Decimal("1.00000")
    assert book.mid() == Decimal("100.5")
    assert [level.price for level in book.asks(1)] == [Decimal("101.00000")]
    assert [side for side, _ in book] == ["ask", "ask", "bid", "bid"]
    assert len(book) == 4
    assert next(book.iter_wire_bids())[0] == "100.00000"
    assert "XBT/USD" in repr(book)


def test_zero_volume_deletes_and_unknown_delete_is_ignored() -> None:
    book = _book()
    book.apply_update(asks=[["101.00000", "0.00000000", "2.0"], ["150.00000", "0.00000000", "2.0"]])
    assert [level.price for level in book.asks()] == [Decimal("102.00000")]


def test_levels_apply_in_order_last_wins() -> None:
    book = _book()
    book.apply_update(
        bids=[
            ["100.50000", "3.00000000", "2.0"],
            ["100.50000", "0.00000000", "2.1"],
            ["100.50000", "4.00000000", "2.2"],
        ]
    )
    assert book.best_bid() == Level(Decimal("100.50000"), Decimal("4.00000000"), Decimal("2.2"))


def test_each_side_is_truncated_to_depth_after_the_message() -> None:
    book = OrderBook("XBT/USD", depth=10)
    book.apply_snapshot(
        asks=[[f"{200 + i}.00000", "1.00000000", "1.0"] for i in range(12)],
        bids=[[f"{100 - i}.00000", "1.00000000", "1.0"] for i in range(12)],
    )
    assert len(book.asks()) == len(book.bids()) == 10
    book.apply_update(asks=[["150.00000", "1.00000000", "2.0"]])
    assert len(book.asks()) == 10 and book.asks()[-1].price == Decimal("208.00000")


def test_update_before_snapshot_is_refused() -> None:
    with pytest.raises(ProtocolError, match="before any snapshot"):
        OrderBook("XBT/USD").apply_update(asks=[["1.00000", "1.00000000", "1.0"]])


def test_crossed_book_is_reported() -> None:
    book = _book()
    with pytest.raises(CrossedBookError) as caught:
        book.apply_update(bids=[["101.50000", "1.00000000", "2.0"]])
    assert caught.value.pair == "XBT/USD"
    assert (caught.value.best_bid, caught.value.best_ask) == ("101.50000", "101.00000")
    tolerant = OrderBook("XBT/USD", allow_crossed=True)
    tolerant.apply_snapshot([["1.00000", "1.00000000", "1"]], [["2.00000", "1.00000000", "1"]])
    assert tolerant.crossed


def test_prices_of_another_width_are_placed_exactly() -> None:
    book = OrderBook("XBT/USD", depth=10)
    book.apply_snapshot(
        asks=[["101.00000", "1.00000000", "1.0"]], bids=[["100.00000", "1.00000000", "1.0"]]
    )
    book.apply_update(asks=[["100.5", "1.00000000", "2.0"]])  # fewer decimals
    book.apply_update(asks=[["100.750000", "1.00000000", "2.0"]])  # more: the book rescales
    assert [level.price for level in book.asks()] == [
        Decimal("100.5"),
        Decimal("100.750000"),
        Decimal("101.00000"),
    ]
    # The checksum still uses the wire strings as sent.
    expected = checksum_reference(list(book.iter_wire_asks()), list(book.iter_wire_bids()))
    assert book.checksum() == expected


@pytest.mark.parametrize(
    "level",
    [
        ["abc", "1.00000000", "1.0"],
        ["1.2.3", "1.00000000", "1.0"],
        ["-1.00000", "1.00000000", "1.0"],
        ["1.00000", "x", "1.0"],
        ["1.00000", "", "1.0"],
        ["1.00000", "1.0.0", "1.0"],
        ["1.00000"],
        [1.5, "1.00000000", "1.0"],
        None,
        ["1 000.00", "1.00000000", "1.0"],
    ],
)
def test_malformed_levels_raise_protocol_error(level: object) -> None:
    book = _book()
    with pytest.raises(ProtocolError):
        book.apply_update(asks=[level])  # type: ignore[list-item]
    fresh = OrderBook("XBT/USD")
    with pytest.raises(ProtocolError):
        fresh.apply_snapshot([level, ["101.00000", "1.00000000", "1.0"]], [])  # type: ignore[list-item]


def test_bad_checksum_text_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not an integer"):
        _book().apply_update(asks=[["101.00000", "2.00000000", "1.0"]], checksum="abc")


def test_depth_from_channel_name() -> None:
    assert depth_from_channel_name("book-1000") == 1000
    for bad in ("book-7", "ticker", "book-", "book-abc"):
        with pytest.raises(ProtocolError):
            depth_from_channel_name(bad)
    with pytest.raises(ValueError):
        OrderBook("XBT/USD", depth=7)


# --- property test against a slow, obvious model ------------------------------------------


class ReferenceBook:
    """Dicts of wire strings; sort and cut with Decimal on every message. Slow and obvious."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.asks: dict[str, list[str]] = {}
        self.bids: dict[str, list[str]] = {}

    def apply(self, asks: list[list[str]], bids: list[list[str]]) -> None:
        for side, levels in ((self.asks, asks), (self.bids, bids)):
            for level in levels:
                if Decimal(level[1]) == 0:
                    side.pop(level[0], None)
                else:
                    side[level[0]] = level
        self.asks = dict(sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))[: self.depth])
        self.bids = dict(
            sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)[: self.depth]
        )

    def checksum(self) -> int:
        return checksum_reference(list(self.asks.values()), list(self.bids.values()))

    def crossed(self) -> bool:
        return bool(self.asks and self.bids) and min(map(Decimal, self.asks)) <= max(
            map(Decimal, self.bids)
        )


prices = st.integers(min_value=1, max_value=60).map(lambda n: f"{n / 4:.5f}")
volumes = st.sampled_from(["0.00000000", "0.00000000", "1.00000000", "0.50000000", "12.34567890"])
levels = st.lists(st.tuples(prices, volumes), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    depth=st.sampled_from([10, 25]),
    snapshot=st.tuples(levels, levels),
    updates=st.lists(st.tuples(levels, levels), max_size=25),
)
def test_random_updates_agree_with_the_reference(
    depth: int,
    snapshot: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    updates: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]],
) -> None:
    book = OrderBook("TEST", depth=depth, price_decimals=5, allow_crossed=True)
    reference = ReferenceBook(depth)

    def wire(pairs: list[tuple[str, str]], stamp: int) -> list[list[str]]:
        return [[p, v, f"{stamp}.000000"] for p, v in pairs]

    snap_asks = [lvl for lvl in wire(snapshot[0], 0) if Decimal(lvl[1])]
    snap_bids = [lvl for lvl in wire(snapshot[1], 0) if Decimal(lvl[1])]
    book.apply_snapshot(snap_asks, snap_bids)
    reference.apply(snap_asks, snap_bids)
    for stamp, (asks, bids) in enumerate(updates, start=1):
        ask_levels, bid_levels = wire(asks, stamp), wire(bids, stamp)
        reference.apply(ask_levels, bid_levels)
        book.apply_update(ask_levels, bid_levels, checksum=str(reference.checksum()))
        assert [list(level) for level in book.iter_wire_asks()] == list(reference.asks.values())
        assert [list(level) for level in book.iter_wire_bids()] == list(reference.bids.values())
        assert len(book.asks()) <= depth and len(book.bids()) <= depth
        assert book.crossed == reference.crossed()
        ask_prices = [level.price for level in book.asks()]
        assert ask_prices == sorted(ask_prices)
