"""Level-2 order book for Kraken v1 ``book-<depth>`` channels, with CRC32 checksum verification.

This module owns the book rules of spec sections 3.5 and 4: a snapshot replaces everything;
update levels are applied strictly in order; volume zero deletes (deleting an unknown price is
ignored); republished ``"r"`` levels are ordinary inserts; after the whole message each side is
cut to the subscribed depth; then the checksum over the top ten levels of each side, computed
from the exact wire strings, is compared with Kraken's ``"c"``.

Why it is fast: within one pair v1 prices have a fixed number of decimals, so the digits of a
price without its dot form an integer that sorts exactly. Each side keeps those integers in a
sorted list (bids negated, so index 0 is always the best level) next to a parallel list of each
level's checksum fragment (price digits then volume digits, leading zeros stripped, as bytes).
The top ten of a side is then a slice, and the CRC of a side is recomputed only when a message
touched its top ten; the CRC of the asks feeds the CRC of the bids (``zlib.crc32`` is
incremental), so an update deep in the book costs a dictionary lookup and one bisection.

A price with another number of decimals than the book has seen is still handled exactly: the
book rescales its integer keys to the wider width (the fragments, being wire text, never change).

It imports only the standard library, msgspec, :mod:`krakenws.errors` and the protocol
messages; no I/O, no clock.

>>> book = OrderBook("XBT/USD", depth=10)
>>> book.apply_snapshot(
...     asks=[["5711.80000", "8.13439401", "1557070784.848047"]],
...     bids=[["5711.70000", "0.00749800", "1557070783.114209"]],
... )
>>> book.apply_update(bids=[["5711.60000", "1.00000000", "1557070785.000000"]],
...                   checksum=book.checksum_after(bids=[["5711.60000", "1.00000000", "0"]]))
>>> book.best_bid().price, book.best_ask().price, book.spread()
(Decimal('5711.70000'), Decimal('5711.80000'), Decimal('0.10000'))
>>> [level.price for level in book.bids()]
[Decimal('5711.70000'), Decimal('5711.60000')]
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import NamedTuple

import msgspec

from krakenws.errors import ChecksumMismatchError, CrossedBookError, ProtocolError
from krakenws.protocol.messages import BookSnapshot, BookUpdate

__all__ = [
    "BOOK_DEPTHS",
    "CHECKSUM_LEVELS",
    "Level",
    "OrderBook",
    "checksum_reference",
    "depth_from_channel_name",
]

BOOK_DEPTHS = (10, 25, 100, 500, 1000)
CHECKSUM_LEVELS = 10

WireLevel = Sequence[str]
"""A level as on the wire: ``[price, volume, timestamp]`` or ``[price, volume, timestamp, "r"]``."""


class Level(NamedTuple):
    """One price level, exact: Decimals made from the wire strings."""

    price: Decimal
    volume: Decimal
    timestamp: Decimal


def depth_from_channel_name(channel_name: str) -> int:
    """The depth of a ``book-<depth>`` channel name, e.g. ``"book-1000"`` gives 1000."""
    prefix, _, depth = channel_name.partition("-")
    if prefix != "book" or not depth.isdigit() or int(depth) not in BOOK_DEPTHS:
        raise ProtocolError(f"not a book channel name: {channel_name!r}")
    return int(depth)


def checksum_reference(asks: Sequence[WireLevel], bids: Sequence[WireLevel]) -> int:
    """Kraken's v1 checksum computed the slow, obvious way (spec 4.1); for tests and tools.

    ``asks`` and ``bids`` are levels of a whole book in any order; only price and volume count.

    Kraken's own example (spec 4.2):

    >>> asks = [[f"0.0{p}", "0.00000500"] for p in range(5005, 5051, 5)]
    >>> bids = [[f"0.0{p}", "0.00000500"] for p in (5000, 4995, 4990, 4980, 4975,
    ...                                             4970, 4965, 4960, 4955, 4950)]
    >>> checksum_reference(asks, bids)
    974947235
    """

    def digits(text: str) -> str:
        return text.replace(".", "").lstrip("0")

    top_asks = sorted(asks, key=lambda level: Decimal(level[0]))[:CHECKSUM_LEVELS]
    top_bids = sorted(bids, key=lambda level: Decimal(level[0]), reverse=True)[:CHECKSUM_LEVELS]
    text = "".join(digits(level[0]) + digits(level[1]) for level in [*top_asks, *top_bids])
    return zlib.crc32(text.encode("ascii"))


class _Side:
    """One side of the book. ``keys`` ascend, so index 0 is the best level on either side.

    ``fragments[i]`` is the checksum text of the level at ``keys[i]``. It is always present for
    the top ten and None further down until needed: a level gets its fragment when it enters
    the top ten (by an update there, or by moving up when a level above it is deleted).
    ``parsed`` remembers every price text seen on this side as ``(key, checksum digits)``.
    """

    __slots__ = ("fragments", "keys", "levels", "negate", "parsed")

    def __init__(self, negate: bool) -> None:
        self.negate = negate
        self.keys: list[int] = []  # price digits as an integer; negated for bids
        self.fragments: list[bytes | None] = []
        self.levels: dict[int, WireLevel] = {}  # key -> the level's wire strings
        self.parsed: dict[str, tuple[int, str]] = {}

    def truncate(self, depth: int) -> None:
        keys = self.keys
        levels = self.levels
        for key in keys[depth:]:
            del levels[key]
        del keys[depth:]
        del self.fragments[depth:]

    def rescale(self, factor: int) -> None:
        # In place: the apply loop holds references to these containers.
        self.keys[:] = [key * factor for key in self.keys]
        rescaled = {key * factor: level for key, level in self.levels.items()}
        self.levels.clear()
        self.levels.update(rescaled)
        self.parsed.clear()

    def fill_fragment(self, index: int) -> None:
        level = self.levels[self.keys[index]]
        self.fragments[index] = _fragment(level[0], level[1])

    def top_text(self) -> bytes:
        """The checksum text of the top ten levels."""
        return b"".join(self.fragments[:CHECKSUM_LEVELS])  # type: ignore[arg-type]


def _fragment(price: str, volume: str) -> bytes:
    return (price.replace(".", "").lstrip("0") + volume.replace(".", "").lstrip("0")).encode()


_PARSED_PRICES_KEPT = 65536
_TO_NINES = bytes.maketrans(b"0123456789", b"9999999999")


def _plain_decimals(joined: bytes, count: int, width: int | None) -> bool:
    """Whether ``joined`` is ``count`` comma-separated decimals ``digits.digits``.

    With ``width``, every one must have exactly that many decimals. All checks are C loops
    over bytes (``bytes.translate`` maps every digit to ``9``; counting does the rest).
    """
    shape = joined.translate(_TO_NINES)
    if shape.count(b".") != count or len(shape) != shape.count(b"9") + 2 * count - 1:
        return False
    if shape[:1] == b"." or shape[-1:] == b"." or b",." in shape or b".," in shape:
        return False
    if width is None:
        return True
    fraction = b"." + b"9" * width
    return shape.count(fraction + b",") == count - 1 and shape.endswith(fraction)


def _check_decimals(pair: str, what: str, texts: Sequence[str]) -> None:
    for text in texts:
        try:
            valid = Decimal(text).is_finite() and text.isascii() and text.strip() == text
        except ArithmeticError:
            valid = False
        if not valid:
            raise ProtocolError(f"{pair}: {what} {text!r} is not a decimal")


_decode_ints = msgspec.json.Decoder(list[int]).decode


class OrderBook:
    """A checksum-verified local copy of one pair's v1 book at one depth.

    ``price_decimals`` is the pair's wire price width (spec 4.5); when omitted it is learnt from
    the first price seen. Feed it :meth:`apply_snapshot` then :meth:`apply_update` (or
    :meth:`apply` with decoded messages). An update whose checksum does not match raises
    :class:`~krakenws.errors.ChecksumMismatchError`; a book left crossed raises
    :class:`~krakenws.errors.CrossedBookError` unless ``allow_crossed`` is set; malformed levels
    raise :class:`~krakenws.errors.ProtocolError`. After any of these the book should be rebuilt
    from a fresh snapshot.
    """

    __slots__ = (
        "_ask_crc",
        "_asks",
        "_bid_text",
        "_bids",
        "_crc",
        "_crc_text",
        "_has_snapshot",
        "_width",
        "allow_crossed",
        "depth",
        "pair",
        "updates",
    )

    def __init__(
        self,
        pair: str,
        depth: int = 10,
        *,
        price_decimals: int | None = None,
        allow_crossed: bool = False,
    ) -> None:
        if depth not in BOOK_DEPTHS:
            raise ValueError(f"book depth must be one of {BOOK_DEPTHS}, not {depth!r}")
        self.pair = pair
        self.depth = depth
        self.allow_crossed = allow_crossed
        self.updates = 0
        self._width = price_decimals
        self._asks = _Side(negate=False)
        self._bids = _Side(negate=True)
        self._ask_crc = 0
        self._bid_text = b""
        self._crc = 0
        self._crc_text = "0"
        self._has_snapshot = False

    # --- feeding ---------------------------------------------------------------------------

    def apply(self, message: BookSnapshot | BookUpdate) -> None:
        """Apply a decoded book message: a snapshot replaces the book, an update changes it."""
        if type(message) is BookUpdate:
            self.apply_update(message.asks, message.bids, message.checksum)
        else:
            self.apply_snapshot(message.asks, message.bids)

    def apply_snapshot(self, asks: Sequence[WireLevel], bids: Sequence[WireLevel]) -> None:
        """Replace the whole book with a snapshot's levels (any order; cut to depth)."""
        self._has_snapshot = False
        self.updates = 0
        if self._width is None:
            first = asks[0] if asks else bids[0] if bids else None
            if first is not None:
                try:
                    self._slow_key(first[0])
                except (IndexError, TypeError, AttributeError) as exc:
                    raise ProtocolError(f"{self.pair}: malformed snapshot level: {exc}") from None
        self._asks = _Side(negate=False)
        self._bids = _Side(negate=True)
        self._load(self._asks, asks)
        self._load(self._bids, bids)
        self._ask_crc = zlib.crc32(self._asks.top_text())
        self._bid_text = self._bids.top_text()
        self._crc = zlib.crc32(self._bid_text, self._ask_crc)
        self._crc_text = str(self._crc)
        self._has_snapshot = True
        self._check_crossed()

    def _load(self, side: _Side, levels: Sequence[WireLevel]) -> None:
        """Bulk-load a snapshot side.

        Snapshots of 1000 levels a side are common, so the per-level checks are done by C code
        on the joined texts: ``bytes.translate`` maps every digit to ``9``, after which counting
        ``".99999,"`` proves every price has the book's width; msgspec then parses all the digit
        strings as one JSON array of integers. Anything unusual takes the level-by-level path.
        """
        if not levels:
            return
        count = len(levels)
        try:
            prices = ",".join([level[0] for level in levels]).encode("ascii")
            volumes = ",".join([level[1] for level in levels]).encode("ascii")
            stamps = ",".join([level[2] for level in levels]).encode("ascii")
        except (IndexError, TypeError, KeyError, UnicodeEncodeError) as exc:
            raise ProtocolError(f"{self.pair}: malformed snapshot levels: {exc}") from None
        if (
            not self._width
            or not _plain_decimals(prices, count, self._width)
            or not _plain_decimals(volumes, count, None)
            or b",," in b"," + volumes.translate(None, b"0.") + b","
        ):
            # Mixed widths, zero volumes or junk: the careful level-by-level path decides.
            self._apply_levels(side, levels)
            return
        if not _plain_decimals(stamps, count, None):
            _check_decimals(self.pair, "timestamp", [level[2] for level in levels])
        digits = prices.replace(b".", b"")
        if digits[:1] != b"0" and b",0" not in digits:
            keys = _decode_ints(
                b"[-" + digits.replace(b",", b",-") + b"]" if side.negate else b"[" + digits + b"]"
            )
        elif prices.translate(_TO_NINES) == b",".join(
            [levels[0][0].encode().translate(_TO_NINES)] * count
        ):
            # Leading zeros are not JSON. Prices below 1 all have the same length here, so a
            # leading "1" makes them JSON and adds the same offset to every one.
            offset = 10 ** (len(levels[0][0]) - 1)
            shifted = _decode_ints(b"[1" + digits.replace(b",", b",1") + b"]")
            keys = (
                [offset - key for key in shifted]
                if side.negate
                else [key - offset for key in shifted]
            )
        else:
            keys = [-int(price) if side.negate else int(price) for price in digits.split(b",")]
        by_key = dict(zip(keys, levels, strict=True))
        side.keys = sorted(by_key)
        side.levels = by_key
        side.fragments = [None] * len(by_key)
        side.truncate(self.depth)
        for index in range(min(CHECKSUM_LEVELS, len(side.keys))):
            side.fill_fragment(index)

    def apply_update(
        self,
        asks: Sequence[WireLevel] = (),
        bids: Sequence[WireLevel] = (),
        checksum: str | int | None = None,
    ) -> None:
        """Apply one update message; verify ``checksum`` (Kraken's ``"c"``) when given."""
        if not self._has_snapshot:
            raise ProtocolError(f"{self.pair}: book update before any snapshot")
        changed = False
        if asks and self._apply_levels(self._asks, asks):
            self._ask_crc = zlib.crc32(b"".join(self._asks.fragments[:CHECKSUM_LEVELS]))  # type: ignore[arg-type]
            changed = True
        if bids and self._apply_levels(self._bids, bids):
            self._bid_text = b"".join(self._bids.fragments[:CHECKSUM_LEVELS])  # type: ignore[arg-type]
            changed = True
        if changed:
            crc = self._crc = zlib.crc32(self._bid_text, self._ask_crc)
            self._crc_text = str(crc)
        self.updates += 1
        if checksum is not None and checksum != self._crc_text:
            try:
                expected = int(checksum)
            except (TypeError, ValueError):
                raise ProtocolError(
                    f"{self.pair}: checksum {checksum!r} is not an integer"
                ) from None
            if expected != self._crc:
                raise ChecksumMismatchError(self.pair, expected, self._crc)
        if not self.allow_crossed:
            ask_keys = self._asks.keys
            bid_keys = self._bids.keys
            if ask_keys and bid_keys and ask_keys[0] <= -bid_keys[0]:
                self._check_crossed()

    def _apply_levels(self, side: _Side, levels: Sequence[WireLevel]) -> bool:
        """Apply levels in order, then cut the side to depth; return whether its top ten changed.

        Keeps the invariant that the top ten levels always have their checksum fragments.
        """
        keys = side.keys
        fragments = side.fragments
        book = side.levels
        parsed = side.parsed
        top_changed = False
        level: object = None
        try:
            for level in levels:
                price = level[0]
                volume = level[1]
                known = parsed.get(price)
                if known is None:
                    known = self._parse_price(side, price)
                key, price_digits = known
                volume_digits = volume.replace(".", "").lstrip("0")
                if volume_digits:
                    if not volume_digits.isdigit() or volume.count(".") > 1:
                        raise ProtocolError(f"{self.pair}: volume {volume!r} is not a decimal")
                    index = bisect_left(keys, key)
                    if index < CHECKSUM_LEVELS:
                        fragment: bytes | None = (price_digits + volume_digits).encode()
                        top_changed = True
                    else:
                        fragment = None
                    if key in book:
                        fragments[index] = fragment
                    else:
                        keys.insert(index, key)
                        fragments.insert(index, fragment)
                    book[key] = level
                elif volume in ("", ".") or volume.count(".") > 1:
                    raise ProtocolError(f"{self.pair}: volume {volume!r} is not a decimal")
                elif key in book:
                    index = bisect_left(keys, key)
                    del keys[index], fragments[index], book[key]
                    if index < CHECKSUM_LEVELS:
                        top_changed = True
                        if len(keys) >= CHECKSUM_LEVELS and fragments[9] is None:
                            side.fill_fragment(9)  # the level that moved up into the top ten
        except (IndexError, TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, ProtocolError):
                raise
            raise ProtocolError(f"{self.pair}: malformed book level {level!r}: {exc}") from None
        if len(keys) > self.depth:
            side.truncate(self.depth)
        return top_changed

    def _parse_price(self, side: _Side, price: str) -> tuple[int, str]:
        """``(key, checksum digits)`` of a price not seen before; remembered for next time.

        Prices recur constantly (levels change volume, vanish and come back), so each price
        text is validated and converted once, not on every update.
        """
        width = self._width
        if (
            width
            and price[-1 - width : -width] == "."
            and (digits := price.replace(".", "")).isdigit()
            and len(digits) == len(price) - 1
        ):
            key = int(digits)
        else:
            digits, key = self._slow_key(price)
        parsed = side.parsed
        if len(parsed) >= _PARSED_PRICES_KEPT:
            parsed.clear()
        known = parsed[price] = (-key if side.negate else key, digits.lstrip("0"))
        return known

    def _slow_key(self, price: str) -> tuple[str, int]:
        """Key of a price whose width differs from the book's (or is the first one seen)."""
        if not isinstance(price, str):
            raise ProtocolError(f"{self.pair}: price {price!r} is not a string")
        whole, dot, fraction = price.partition(".")
        digits = whole + fraction
        if not digits.isdigit() or not digits.isascii() or not whole or (dot and not fraction):
            raise ProtocolError(f"{self.pair}: price {price!r} is not a decimal")
        width = len(fraction)
        if self._width is None:
            self._width = width
        elif width > self._width:
            factor = 10 ** (width - self._width)
            self._asks.rescale(factor)
            self._bids.rescale(factor)
            self._width = width
        return digits, int(digits) * 10 ** (self._width - width)

    def _check_crossed(self) -> None:
        if self.allow_crossed or not self.crossed:
            return
        best_bid = self._bids.levels[self._bids.keys[0]][0]
        best_ask = self._asks.levels[self._asks.keys[0]][0]
        raise CrossedBookError(self.pair, best_bid, best_ask)

    # --- reading ---------------------------------------------------------------------------

    def checksum(self) -> int:
        """Kraken's CRC32 of the current top ten levels of each side."""
        return self._crc

    def checksum_after(self, asks: Sequence[WireLevel] = (), bids: Sequence[WireLevel] = ()) -> int:
        """The checksum this book would have after an update, without changing it.

        Useful for servers that must put ``"c"`` on an update, and for tests.
        """
        trial = OrderBook(self.pair, self.depth, price_decimals=self._width, allow_crossed=True)
        trial.apply_snapshot(list(self.iter_wire_asks()), list(self.iter_wire_bids()))
        trial.apply_update(asks, bids)
        return trial.checksum()

    @property
    def is_synced(self) -> bool:
        """Whether a snapshot has been applied."""
        return self._has_snapshot

    @property
    def price_decimals(self) -> int | None:
        """The wire price width of this pair, once known."""
        return self._width

    @property
    def crossed(self) -> bool:
        """Whether the best bid is at or above the best ask."""
        asks = self._asks.keys
        bids = self._bids.keys
        return bool(asks and bids and asks[0] <= -bids[0])

    def best_ask(self) -> Level | None:
        """The lowest ask, or None when the side is empty."""
        return self._level(self._asks, 0)

    def best_bid(self) -> Level | None:
        """The highest bid, or None when the side is empty."""
        return self._level(self._bids, 0)

    def spread(self) -> Decimal | None:
        """Best ask minus best bid, exact; None when a side is empty."""
        ask, bid = self.best_ask(), self.best_bid()
        if ask is None or bid is None:
            return None
        return ask.price - bid.price

    def mid(self) -> Decimal | None:
        """The mid price, exact; None when a side is empty."""
        ask, bid = self.best_ask(), self.best_bid()
        if ask is None or bid is None:
            return None
        return (ask.price + bid.price) / 2

    def asks(self, n: int | None = None) -> list[Level]:
        """The best ``n`` asks (all by default), lowest price first."""
        return [_to_level(level) for level in self._wire(self._asks, n)]

    def bids(self, n: int | None = None) -> list[Level]:
        """The best ``n`` bids (all by default), highest price first."""
        return [_to_level(level) for level in self._wire(self._bids, n)]

    def iter_wire_asks(self) -> Iterator[WireLevel]:
        """Asks as their wire strings, best first."""
        return iter(self._wire(self._asks, None))

    def iter_wire_bids(self) -> Iterator[WireLevel]:
        """Bids as their wire strings, best first."""
        return iter(self._wire(self._bids, None))

    def __iter__(self) -> Iterator[tuple[str, Level]]:
        """``("ask", level)`` for every ask best first, then ``("bid", level)`` likewise."""
        for level in self._wire(self._asks, None):
            yield "ask", _to_level(level)
        for level in self._wire(self._bids, None):
            yield "bid", _to_level(level)

    def __len__(self) -> int:
        return len(self._asks.keys) + len(self._bids.keys)

    def __repr__(self) -> str:
        ask, bid = self.best_ask(), self.best_bid()
        return (
            f"<OrderBook {self.pair} depth={self.depth} asks={len(self._asks.keys)} "
            f"bids={len(self._bids.keys)} best_bid={bid.price if bid else None} "
            f"best_ask={ask.price if ask else None} checksum={self._crc}>"
        )

    @staticmethod
    def _wire(side: _Side, n: int | None) -> list[WireLevel]:
        keys = side.keys if n is None else side.keys[:n]
        levels = side.levels
        return [levels[key] for key in keys]

    @staticmethod
    def _level(side: _Side, index: int) -> Level | None:
        if len(side.keys) <= index:
            return None
        return _to_level(side.levels[side.keys[index]])


def _to_level(level: WireLevel) -> Level:
    return Level(Decimal(level[0]), Decimal(level[1]), Decimal(level[2]))
