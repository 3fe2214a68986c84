"""Public market data of the sandbox, derived from engine events. Pure.

:class:`MarketData` is fed the engine's :class:`~.engine.events.PublicTrade` events (and reads
the live books for best bid/ask) and keeps, per pair: the recent trades (REST ``Trades``, WS
``trade``), OHLC candles at every Kraken interval (REST ``OHLC``, WS ``ohlc-<n>``), rolling
24-hour and since-midnight-UTC statistics (REST ``Ticker``, WS ``ticker``) and the history of
best bid/ask (REST ``Spread``, WS ``spread``). Times are integer microseconds, as in the engine.
It never reads a clock: ``now`` comes with each call.

History starts when the sandbox starts; it is not persisted (orders, trades and balances are).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from krakenws.sandbox.engine.events import Event, PublicTrade

__all__ = ["OHLC_INTERVALS", "Candle", "MarketData", "PairStats", "SpreadPoint"]

OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
_CANDLES_KEPT = 720
_TRADES_KEPT = 1000
_SPREADS_KEPT = 200
_DAY = 86_400_000_000
_ZERO = Decimal(0)


@dataclass
class Candle:
    """One OHLC candle; ``start`` is the interval's begin (µs), ``updated`` its last trade."""

    start: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = _ZERO
    cost: Decimal = _ZERO
    count: int = 0
    updated: int = 0

    @property
    def vwap(self) -> Decimal:
        """Volume-weighted average price (the close when nothing traded)."""
        return self.cost / self.volume if self.volume else self.close


@dataclass(frozen=True)
class SpreadPoint:
    """Best bid and ask (with their volumes) at a moment."""

    time: int
    bid: Decimal
    ask: Decimal
    bid_volume: Decimal
    ask_volume: Decimal


@dataclass
class PairStats:
    """Today's and the last 24 hours' figures of one pair (what a ticker shows)."""

    volume_today: Decimal = _ZERO
    volume_24h: Decimal = _ZERO
    vwap_today: Decimal = _ZERO
    vwap_24h: Decimal = _ZERO
    trades_today: int = 0
    trades_24h: int = 0
    low_today: Decimal | None = None
    low_24h: Decimal | None = None
    high_today: Decimal | None = None
    high_24h: Decimal | None = None
    open_today: Decimal | None = None
    open_24h: Decimal | None = None
    last_price: Decimal | None = None
    last_volume: Decimal = _ZERO


@dataclass
class _Pair:
    trades: deque[PublicTrade] = field(default_factory=lambda: deque(maxlen=_TRADES_KEPT))
    day: deque[PublicTrade] = field(default_factory=deque)  # the last 24 h of trades
    candles: dict[int, deque[Candle]] = field(
        default_factory=lambda: {n: deque(maxlen=_CANDLES_KEPT) for n in OHLC_INTERVALS}
    )
    spreads: deque[SpreadPoint] = field(default_factory=lambda: deque(maxlen=_SPREADS_KEPT))


class MarketData:
    """Recent trades, candles, ticker statistics and spreads per pair (keyed by REST key)."""

    def __init__(self) -> None:
        self._pairs: dict[str, _Pair] = {}

    def _pair(self, key: str) -> _Pair:
        data = self._pairs.get(key)
        if data is None:
            data = self._pairs[key] = _Pair()
        return data

    def on_events(self, events: Iterable[Event]) -> list[PublicTrade]:
        """Take in engine events; returns the public trades among them."""
        trades = [event for event in events if isinstance(event, PublicTrade)]
        for trade in trades:
            self._on_trade(trade)
        return trades

    def _on_trade(self, trade: PublicTrade) -> None:
        data = self._pair(trade.pair)
        data.trades.append(trade)
        data.day.append(trade)
        for interval, candles in data.candles.items():
            length = interval * 60_000_000
            start = trade.time - trade.time % length
            if candles and candles[-1].start == start:
                candle = candles[-1]
                candle.high = max(candle.high, trade.price)
                candle.low = min(candle.low, trade.price)
                candle.close = trade.price
            else:
                candle = Candle(start, trade.price, trade.price, trade.price, trade.price)
                candles.append(candle)
            candle.volume += trade.volume
            candle.cost += trade.volume * trade.price
            candle.count += 1
            candle.updated = trade.time

    def record_spread(self, key: str, point: SpreadPoint) -> bool:
        """Remember a best bid/ask if it differs from the last one; returns whether it did."""
        spreads = self._pair(key).spreads
        if spreads:
            last = spreads[-1]
            if (last.bid, last.ask, last.bid_volume, last.ask_volume) == (
                point.bid,
                point.ask,
                point.bid_volume,
                point.ask_volume,
            ):
                return False
        spreads.append(point)
        return True

    def recent_trades(self, key: str, since: int | None = None) -> list[PublicTrade]:
        """Trades after ``since`` (µs), oldest first."""
        trades = self._pair(key).trades
        return [t for t in trades if since is None or t.time > since]

    def candles(self, key: str, interval: int) -> list[Candle]:
        """The kept candles of an interval (minutes), oldest first; the last one is running."""
        return list(self._pair(key).candles[interval])

    def spreads(self, key: str, since: int | None = None) -> list[SpreadPoint]:
        """Best bid/ask history after ``since`` (µs), oldest first."""
        return [p for p in self._pair(key).spreads if since is None or p.time > since]

    def stats(self, key: str, now: int) -> PairStats:
        """Ticker statistics at ``now``: the rolling 24 h and the UTC day so far."""
        data = self._pair(key)
        day = data.day
        while day and day[0].time <= now - _DAY:
            day.popleft()
        stats = PairStats()
        midnight = now - now % _DAY
        cost_today = cost_24h = _ZERO
        for trade in day:
            cost = trade.price * trade.volume
            stats.volume_24h += trade.volume
            cost_24h += cost
            stats.trades_24h += 1
            stats.low_24h = (
                trade.price if stats.low_24h is None else min(stats.low_24h, trade.price)
            )
            stats.high_24h = (
                trade.price if stats.high_24h is None else max(stats.high_24h, trade.price)
            )
            if stats.open_24h is None:
                stats.open_24h = trade.price
            if trade.time >= midnight:
                stats.volume_today += trade.volume
                cost_today += cost
                stats.trades_today += 1
                stats.low_today = (
                    trade.price if stats.low_today is None else min(stats.low_today, trade.price)
                )
                stats.high_today = (
                    trade.price if stats.high_today is None else max(stats.high_today, trade.price)
                )
                if stats.open_today is None:
                    stats.open_today = trade.price
        if data.trades:
            last = data.trades[-1]
            stats.last_price, stats.last_volume = last.price, last.volume
        stats.vwap_24h = cost_24h / stats.volume_24h if stats.volume_24h else _ZERO
        stats.vwap_today = cost_today / stats.volume_today if stats.volume_today else _ZERO
        return stats
