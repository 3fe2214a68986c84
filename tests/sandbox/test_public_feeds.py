"""Book feeds at every depth: our own client book verifies every checksum the sandbox sends."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from krakenws.protocol.book import OrderBook
from krakenws.sandbox.engine.events import BookLevelChanged
from krakenws.sandbox.engine.markets import Markets
from krakenws.sandbox.public_feeds import BookFeed

PAIR = Markets.default().pair("XBT/USD")
DEPTHS = (10, 25)

changes = st.lists(
    st.tuples(
        st.sampled_from(["bid", "ask"]),
        st.integers(min_value=0, max_value=40),
        st.sampled_from([Decimal(0), Decimal(0), Decimal("0.5"), Decimal("1.25"), Decimal(3)]),
    ),
    min_size=1,
    max_size=8,
)


def _price(side: str, offset: int) -> Decimal:
    # Asks above 100, bids below: the book never crosses.
    return (
        Decimal(100) + Decimal(offset + 1) / 10
        if side == "ask"
        else Decimal(100) - Decimal(offset) / 10
    )


@settings(max_examples=300, deadline=None)
@given(initial=changes, batches=st.lists(changes, min_size=1, max_size=30))
def test_every_depth_sees_a_book_whose_checksums_verify(
    initial: list[tuple[str, int, Decimal]], batches: list[list[tuple[str, int, Decimal]]]
) -> None:
    feed = BookFeed(PAIR)
    clock = iter(range(1_700_000_000_000_000, 1_800_000_000_000_000, 1_000))

    def events(batch: list[tuple[str, int, Decimal]]) -> list[BookLevelChanged]:
        return [
            BookLevelChanged(
                time=next(clock), pair=PAIR.key, wsname=PAIR.wsname, side=side,
                price=_price(side, offset), volume=volume,
            )
            for side, offset, volume in batch
        ]  # fmt: skip

    feed.apply(events(initial), DEPTHS)
    books = {}
    for depth in DEPTHS:
        snapshot = feed.snapshot(depth)
        books[depth] = OrderBook("XBT/USD", depth)
        books[depth].apply_snapshot(snapshot["as"], snapshot["bs"])
    for batch in batches:
        updates = feed.apply(events(batch), DEPTHS)
        for depth, book in books.items():
            if depth in updates:
                asks, bids = updates[depth]
                book.apply_update(asks, bids, checksum=feed.checksum())  # raises on mismatch
            expected = feed.snapshot(depth)
            assert [list(level[:2]) for level in book.iter_wire_asks()] == [
                level[:2] for level in expected["as"]
            ]
            assert [list(level[:2]) for level in book.iter_wire_bids()] == [
                level[:2] for level in expected["bs"]
            ]


def test_republished_level_keeps_its_time_and_comes_last() -> None:
    feed = BookFeed(PAIR)
    base = 1_700_000_000_000_000
    levels = [
        BookLevelChanged(time=base + i, pair=PAIR.key, wsname=PAIR.wsname, side="bid",
                         price=Decimal(100) - i, volume=Decimal(1))
        for i in range(11)
    ]  # fmt: skip
    feed.apply(levels, [10])
    gone = BookLevelChanged(
        time=base + 100,
        pair=PAIR.key,
        wsname=PAIR.wsname,
        side="bid",
        price=Decimal(95),
        volume=Decimal(0),
    )
    (asks, bids) = feed.apply([gone], [10])[10]
    assert asks == []
    assert bids[0] == ["95.00000", "0.00000000", "1700000000.000100"]
    assert bids[-1] == ["90.00000", "1.00000000", "1700000000.000010", "r"]
