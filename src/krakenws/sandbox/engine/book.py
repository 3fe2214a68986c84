"""One pair's resting orders in price-time priority, and the public aggregated view. Pure.

:class:`OrderBook` keeps, per side, sorted price levels; each level is a FIFO queue of
``txid -> remaining volume`` and its total. It knows nothing about accounts or funds: the engine
owns orders and tells the book what rests where. Public feeds read :class:`BookLevel` rows
(price, total volume, time of last change) best first, and :meth:`OrderBook.best_bid` /
:meth:`OrderBook.best_ask`.

>>> from decimal import Decimal as D
>>> book = OrderBook()
>>> book.add("bid", D("100.0"), "O1", D("1"), now=1)
(Decimal('100.0'), Decimal('1'))
>>> book.add("bid", D("100.0"), "O2", D("2"), now=2)
(Decimal('100.0'), Decimal('3'))
>>> book.add("ask", D("101.0"), "O3", D("1"), now=3)
(Decimal('101.0'), Decimal('1'))
>>> book.best_bid(), book.best_ask(), book.queue("bid", D("100.0"))
(Decimal('100.0'), Decimal('101.0'), ['O1', 'O2'])
>>> book.depth("bid", 1)
[BookLevel(price=Decimal('100.0'), volume=Decimal('3'), updated=2)]
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from decimal import Decimal
from typing import NamedTuple

__all__ = ["BookLevel", "OrderBook"]


class BookLevel(NamedTuple):
    """One public price level: total resting volume and when it last changed (µs)."""

    price: Decimal
    volume: Decimal
    updated: int


class _Level:
    __slots__ = ("orders", "updated", "volume")

    def __init__(self) -> None:
        self.orders: dict[str, Decimal] = {}
        self.volume = Decimal(0)
        self.updated = 0


class _Side:
    """Levels of one side; ``prices`` ascending (bids are read from the end)."""

    def __init__(self, descending: bool) -> None:
        self.descending = descending
        self.levels: dict[Decimal, _Level] = {}
        self.prices: list[Decimal] = []

    def best(self) -> Decimal | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.descending else self.prices[0]

    def ordered(self) -> Iterator[Decimal]:
        return reversed(self.prices) if self.descending else iter(self.prices)


def _check_side(side: str) -> None:
    if side not in ("bid", "ask"):
        raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")


class OrderBook:
    """Price levels of one pair; every mutator returns ``(price, new level total)``."""

    def __init__(self) -> None:
        self._sides = {"bid": _Side(descending=True), "ask": _Side(descending=False)}
        self._where: dict[str, tuple[str, Decimal]] = {}

    # --- mutation ----------------------------------------------------------------------------

    def add(
        self, side: str, price: Decimal, txid: str, volume: Decimal, *, now: int
    ) -> tuple[Decimal, Decimal]:
        """Queue ``txid`` at the back of ``price``; returns the level's new total."""
        _check_side(side)
        if txid in self._where:
            raise ValueError(f"{txid} already rests in the book")
        if volume <= 0:
            raise ValueError("resting volume must be positive")
        book_side = self._sides[side]
        level = book_side.levels.get(price)
        if level is None:
            level = book_side.levels[price] = _Level()
            insort(book_side.prices, price)
        level.orders[txid] = volume
        level.volume += volume
        level.updated = now
        self._where[txid] = (side, price)
        return price, level.volume

    def set_volume(self, txid: str, volume: Decimal, *, now: int) -> tuple[Decimal, Decimal]:
        """Change the remaining volume of ``txid`` keeping its queue place (0 removes it)."""
        side, price = self._where[txid]
        book_side = self._sides[side]
        level = book_side.levels[price]
        level.volume += volume - level.orders[txid]
        level.updated = now
        if volume > 0:
            level.orders[txid] = volume
            return price, level.volume
        del level.orders[txid]
        del self._where[txid]
        if not level.orders:
            del book_side.levels[price]
            del book_side.prices[bisect_left(book_side.prices, price)]
            return price, Decimal(0)
        return price, level.volume

    def remove(self, txid: str, *, now: int) -> tuple[Decimal, Decimal]:
        """Take ``txid`` out of the book; returns its level's new total (0 = level gone)."""
        return self.set_volume(txid, Decimal(0), now=now)

    # --- reading -----------------------------------------------------------------------------

    def __contains__(self, txid: object) -> bool:
        return txid in self._where

    def side_of(self, txid: str) -> str:
        """``bid`` or ``ask`` for a resting order."""
        return self._where[txid][0]

    def best(self, side: str) -> Decimal | None:
        """Best price of a side, ``None`` if empty."""
        _check_side(side)
        return self._sides[side].best()

    def best_bid(self) -> Decimal | None:
        """Highest bid price."""
        return self._sides["bid"].best()

    def best_ask(self) -> Decimal | None:
        """Lowest ask price."""
        return self._sides["ask"].best()

    def queue(self, side: str, price: Decimal) -> list[str]:
        """Resting txids at ``price``, first in line first."""
        _check_side(side)
        level = self._sides[side].levels.get(price)
        return [] if level is None else list(level.orders)

    def remaining(self, txid: str) -> Decimal:
        """The resting volume of ``txid``."""
        side, price = self._where[txid]
        return self._sides[side].levels[price].orders[txid]

    def levels(self, side: str) -> Iterator[BookLevel]:
        """Every level of a side, best first."""
        _check_side(side)
        book_side = self._sides[side]
        for price in book_side.ordered():
            level = book_side.levels[price]
            yield BookLevel(price, level.volume, level.updated)

    def depth(self, side: str, count: int) -> list[BookLevel]:
        """The best ``count`` levels of a side."""
        result: list[BookLevel] = []
        for level in self.levels(side):
            if len(result) >= count:
                break
            result.append(level)
        return result

    def level_volume(self, side: str, price: Decimal) -> Decimal:
        """Total resting volume at ``price`` (0 if no level)."""
        _check_side(side)
        level = self._sides[side].levels.get(price)
        return Decimal(0) if level is None else level.volume

    def is_crossed(self) -> bool:
        """Whether best bid >= best ask (never true after the engine returns)."""
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask
