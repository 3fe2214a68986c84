"""The v1 public channel payloads of the sandbox, built from engine events. Pure.

:class:`BookFeed` mirrors one pair's public book and turns each batch of engine
:class:`~.engine.events.BookLevelChanged` events into the ``book-<depth>`` update every
subscriber at that depth must receive, with Kraken's exact semantics (spec 3.5, 4, 10.5):

* the subscribers of one depth all hold the same window: the best ``depth`` levels a side;
* a level that changed inside the new window is sent with its new volume; a level deleted from
  the old window is sent with volume ``0.00000000``; a level pushed out of the window by new
  ones is *not* deleted (the client truncates); a level that enters the window from beyond it,
  unchanged, is republished with ``"r"`` and its original timestamp;
* within one message deletes come first, then new or changed levels, then republished ones, so
  a client that truncates after every level still ends up right;
* asks and bids go in two objects when both sides changed, the checksum ``"c"`` (computed from
  the exact wire strings of the top ten levels) in the last one.

:func:`ticker_payload`, :func:`spread_payload`, :func:`trade_payload` and :func:`ohlc_payload`
format the other public channels. Every number is formatted with the pair's v1 wire decimals
(prices) or 8 decimals (volumes); times are ``"sec.µs"``.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from krakenws.pairs import Pair
from krakenws.sandbox.engine.book import OrderBook as EngineBook
from krakenws.sandbox.engine.events import BookLevelChanged, PublicTrade, format_time
from krakenws.sandbox.marketdata import Candle, PairStats

__all__ = [
    "BookFeed",
    "WireFormat",
    "ohlc_payload",
    "spread_payload",
    "ticker_payload",
    "trade_payload",
]

_CHECKSUM_LEVELS = 10


class WireFormat:
    """One pair's v1 number formats (prices at the wire width, volumes at 8 decimals)."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.price_places = pair.ws_price_decimals or pair.pair_decimals
        self.volume_places = pair.ws_volume_decimals or 8
        self._price_quantum = Decimal(1).scaleb(-self.price_places)
        self._volume_quantum = Decimal(1).scaleb(-self.volume_places)
        self._prices: dict[Decimal, str] = {}

    def price(self, value: Decimal) -> str:
        """A price as v1 writes it, e.g. ``"27120.00000"`` for XBT/USD."""
        text = self._prices.get(value)
        if text is None:
            if len(self._prices) > 100_000:
                self._prices.clear()
            text = self._prices[value] = f"{value.quantize(self._price_quantum):f}"
        return text

    def volume(self, value: Decimal) -> str:
        """A volume with 8 decimals (``"0.00000000"`` for zero)."""
        return f"{value.quantize(self._volume_quantum):f}"


class _Side:
    """One side of the mirror: ``keys`` ascend (bids negated) so index 0 is the best level."""

    __slots__ = ("keys", "levels", "negate")

    def __init__(self, negate: bool) -> None:
        self.negate = negate
        self.keys: list[Decimal] = []
        self.levels: dict[Decimal, tuple[Decimal, int]] = {}  # price -> (volume, updated µs)

    def key(self, price: Decimal) -> Decimal:
        return -price if self.negate else price

    def price(self, key: Decimal) -> Decimal:
        return -key if self.negate else key


class BookFeed:
    """The public book of one pair and the v1 messages its changes produce, per depth."""

    def __init__(self, pair: Pair, wire: WireFormat | None = None) -> None:
        self.pair = pair
        self.wire = wire or WireFormat(pair)
        self._asks = _Side(negate=False)
        self._bids = _Side(negate=True)
        self._checksum: str | None = None

    def load(self, book: EngineBook) -> None:
        """Start from the engine's current book."""
        for side, name in ((self._asks, "ask"), (self._bids, "bid")):
            side.levels = {
                level.price: (level.volume, level.updated) for level in book.levels(name)
            }
            side.keys = sorted(side.key(price) for price in side.levels)
        self._checksum = None

    # --- reading -------------------------------------------------------------------------------

    def _wire_level(self, side: _Side, price: Decimal, republish: bool = False) -> list[str]:
        volume, updated = side.levels[price]
        level = [self.wire.price(price), self.wire.volume(volume), format_time(updated)]
        if republish:
            level.append("r")
        return level

    def snapshot(self, depth: int) -> dict[str, list[list[str]]]:
        """The ``{"as": [...], "bs": [...]}`` object a new subscriber at ``depth`` receives."""
        return {
            "as": [
                self._wire_level(self._asks, self._asks.price(k)) for k in self._asks.keys[:depth]
            ],
            "bs": [
                self._wire_level(self._bids, self._bids.price(k)) for k in self._bids.keys[:depth]
            ],
        }

    def checksum(self) -> str:
        """Kraken's CRC32 of the top ten levels a side, as the quoted decimal ``"c"`` value."""
        if self._checksum is None:
            text = "".join(
                self._fragment(side, side.price(key))
                for side in (self._asks, self._bids)
                for key in side.keys[:_CHECKSUM_LEVELS]
            )
            self._checksum = str(zlib.crc32(text.encode()))
        return self._checksum

    def _fragment(self, side: _Side, price: Decimal) -> str:
        volume, _ = side.levels[price]
        return self.wire.price(price).replace(".", "").lstrip("0") + self.wire.volume(
            volume
        ).replace(".", "").lstrip("0")

    def best(self, name: str) -> tuple[Decimal, Decimal, int] | None:
        """``(price, volume, updated)`` of the best ask or bid."""
        side = self._asks if name == "ask" else self._bids
        if not side.keys:
            return None
        price = side.price(side.keys[0])
        volume, updated = side.levels[price]
        return price, volume, updated

    def level_count(self, name: str) -> int:
        """How many levels one side holds."""
        return len((self._asks if name == "ask" else self._bids).keys)

    # --- changing ------------------------------------------------------------------------------

    def apply(
        self, changes: Iterable[BookLevelChanged], depths: Iterable[int]
    ) -> dict[int, tuple[list[list[str]], list[list[str]]]]:
        """Apply one batch of level changes; return ``{depth: (ask levels, bid levels)}`` for
        every depth whose subscribers must be told something (both lists may not be empty)."""
        wanted = sorted(set(depths))
        per_side = []
        touched = False
        for side, name in ((self._asks, "ask"), (self._bids, "bid")):
            batch = [change for change in changes if change.side == name]
            if batch:
                touched = True
            per_side.append(self._apply_side(side, batch, wanted))
        if touched:
            self._checksum = None
        out: dict[int, tuple[list[list[str]], list[list[str]]]] = {}
        for depth in wanted:
            asks, bids = per_side[0].get(depth, []), per_side[1].get(depth, [])
            if asks or bids:
                out[depth] = (asks, bids)
        return out

    def _apply_side(
        self, side: _Side, batch: Sequence[BookLevelChanged], depths: Sequence[int]
    ) -> dict[int, list[list[str]]]:
        if not batch:
            return {}
        keys = side.keys
        old_boundary = {d: (keys[d - 1] if len(keys) >= d else None) for d in depths}
        existed: dict[Decimal, bool] = {}
        for change in batch:
            price = change.price
            key = side.key(price)
            if price not in existed:
                existed[price] = price in side.levels
            if change.volume:
                if price not in side.levels:
                    insort(keys, key)
                side.levels[price] = (change.volume, change.time)
            elif price in side.levels:
                del side.levels[price]
                del keys[bisect_left(keys, key)]
        out: dict[int, list[list[str]]] = {}
        for depth in depths:
            before = old_boundary[depth]
            after = keys[depth - 1] if len(keys) >= depth else None
            deletes, updates = [], []
            for price, was_there in existed.items():
                key = side.key(price)
                now_there = price in side.levels
                if now_there and (after is None or key <= after):
                    updates.append(self._wire_level(side, price))
                elif was_there and not now_there and (before is None or key <= before):
                    deletes.append(
                        [
                            self.wire.price(price),
                            self.wire.volume(Decimal(0)),
                            format_time(next(c.time for c in reversed(batch) if c.price == price)),
                        ]
                    )
            republished = []
            if before is not None:
                for key in keys[bisect_right(keys, before) : depth]:
                    price = side.price(key)
                    if price not in existed:
                        republished.append(self._wire_level(side, price, republish=True))
            levels = deletes + updates + republished
            if levels:
                out[depth] = levels
        return out


# --- the other public channels -----------------------------------------------------------------


def ticker_payload(
    wire: WireFormat,
    stats: PairStats,
    best_ask: tuple[Decimal, Decimal, int] | None,
    best_bid: tuple[Decimal, Decimal, int] | None,
    fallback_price: Decimal,
) -> dict[str, Any]:
    """The ticker object ``{a,b,c,v,p,t,l,h,o}`` (spec 3.1): whole-lot volumes are ints."""
    last = stats.last_price or fallback_price

    def best(level: tuple[Decimal, Decimal, int] | None) -> list[Any]:
        if level is None:
            return [wire.price(Decimal(0)), 0, wire.volume(Decimal(0))]
        return [wire.price(level[0]), int(level[1]), wire.volume(level[1])]

    def two(today: Decimal | None, day: Decimal | None) -> list[str]:
        return [wire.price(today or last), wire.price(day or last)]

    return {
        "a": best(best_ask),
        "b": best(best_bid),
        "c": [wire.price(last), wire.volume(stats.last_volume)],
        "v": [wire.volume(stats.volume_today), wire.volume(stats.volume_24h)],
        "p": two(stats.vwap_today or None, stats.vwap_24h or None),
        "t": [stats.trades_today, stats.trades_24h],
        "l": two(stats.low_today, stats.low_24h),
        "h": two(stats.high_today, stats.high_24h),
        "o": two(stats.open_today, stats.open_24h),
    }


def spread_payload(
    wire: WireFormat,
    best_bid: tuple[Decimal, Decimal, int],
    best_ask: tuple[Decimal, Decimal, int],
    now: int,
) -> list[str]:
    """``[bid, ask, timestamp, bidVolume, askVolume]`` (spec 3.4)."""
    return [
        wire.price(best_bid[0]),
        wire.price(best_ask[0]),
        format_time(now),
        wire.volume(best_bid[1]),
        wire.volume(best_ask[1]),
    ]


def trade_payload(wire: WireFormat, trades: Iterable[PublicTrade]) -> list[list[str]]:
    """``[[price, volume, time, side, orderType, misc], ...]`` (spec 3.3)."""
    return [
        [wire.price(t.price), wire.volume(t.volume), format_time(t.time), t.side, t.ordertype, ""]
        for t in trades
    ]


def ohlc_payload(wire: WireFormat, candle: Candle, interval: int) -> list[Any]:
    """``[time, etime, open, high, low, close, vwap, volume, count]`` (spec 3.2)."""
    end = candle.start + interval * 60_000_000
    return [
        format_time(candle.updated or candle.start),
        format_time(end),
        wire.price(candle.open),
        wire.price(candle.high),
        wire.price(candle.low),
        wire.price(candle.close),
        wire.price(candle.vwap),
        wire.volume(candle.volume),
        candle.count,
    ]
