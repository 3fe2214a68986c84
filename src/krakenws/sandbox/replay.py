"""Replaying a capture's public market data on the sandbox's ``/ws`` (``sandbox --replay``).

A capture (JSON Lines, one raw v1 server frame a line, see :mod:`krakenws.testing`) is read into
a timeline of the public market frames it holds: book snapshots and updates, trades, tickers,
spreads and candles. The sandbox then serves those frames, paced by their own exchange
timestamps, to whoever subscribes to the replayed pairs, so a recorded market can be played to a
bot as if it were live.

Two parts:

* :class:`ReplayMarket` (pure: no clock, no I/O) owns the timeline and, per replayed pair, an
  :class:`~krakenws.protocol.book.OrderBook` at the recorded depth that follows the replay. It
  turns each step into the frames every subscribed depth must receive: at the recorded depth the
  recorded update as it was; at a shallower depth the update re-derived for that window (changed
  levels inside it, deletes of levels that left the book from inside it, republished ``"r"``
  levels entering it, nothing for levels merely pushed out). Every depth is at least ten, so the
  checksum of a shallower window is the recorded book's checksum. A new subscriber gets a
  snapshot cut from the current book at its depth.
* :class:`ReplayFeed` (asyncio) waits for the first subscription to a replayed pair, then walks
  the timeline at the recorded pace times ``speed`` (0: as fast as possible) and publishes on a
  :class:`~krakenws.sandbox.ws_api.WsApi`, which has rewritten channelIDs per subscription.
  With ``loop`` it starts over at the end; the capture's opening snapshots then reach every book
  subscriber again, so their books stay valid across the restart.

Decisions:

* A capture is checked when it is loaded: a frame that is not Kraken v1 or a book update whose
  checksum does not verify is refused (``krakenws verify CAPTURE`` tells more), since a replay
  must not hand a bot a broken book. Book updates before a pair's first snapshot are dropped.
* One book source per pair: when a capture holds several depths of one pair, the deepest is
  replayed and the others are derived from it. A depth deeper than the recorded one is refused
  with Kraken's ``Subscription depth not supported``: the levels beyond it were never recorded.
* Pacing uses the newest timestamp a frame carries (level times, trade times, the spread or
  candle time), never letting the clock run backwards; tickers carry none and follow the frame
  before them. Timestamps inside the frames are served as recorded, not moved to today.
* A subscriber gets, right after its ack, the current book (when the replay has reached the
  pair's snapshot) or the latest ticker, spread or candle replayed so far; trades have no
  snapshot in v1. Channels a capture lacks for a replayed pair are acknowledged and stay silent.

What replay does not cover: the replayed pairs' REST market data (Ticker, Depth, Trades, OHLC,
Spread) and trading still go to the matching engine, whose book for those pairs is separate and
not fed by the simulator; orders never trade against the replayed book; private channels are
untouched. A replayed pair the exchange does not list (``XMR/USD`` in the default markets) exists
on ``/ws`` only. Nothing is derived that the capture lacks: a book-only capture has no trades,
tickers or spreads. With ``loop`` the same trades come again, with their recorded times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from krakenws.errors import BookError, ProtocolError, UsageError
from krakenws.pairs import Pair, PairRegistry
from krakenws.protocol.book import BOOK_DEPTHS, OrderBook, depth_from_channel_name
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import BookSnapshot, BookUpdate, Ohlc, Spread, Ticker, Trade
from krakenws.testing import read_capture

if TYPE_CHECKING:
    from krakenws.sandbox.ws_api import Connection, WsApi

__all__ = ["Publication", "ReplayFeed", "ReplayFrame", "ReplayMarket"]

MarketMessage: TypeAlias = BookSnapshot | BookUpdate | Trade | Ticker | Spread | Ohlc
WireLevel: TypeAlias = Sequence[str]

_TICKER_KEYS = ("a", "b", "c", "v", "p", "t", "l", "h", "o")


@dataclass(frozen=True, slots=True)
class ReplayFrame:
    """One public market frame of the capture: its line, its pacing time (µs) and message."""

    line: int
    time: int | None
    message: MarketMessage


@dataclass(frozen=True, slots=True)
class Publication:
    """A frame to send to the subscribers of ``(channel_name, pair)``: the wire frame is
    ``[channelID, *payloads, channel_name, pair]``."""

    channel_name: str
    pair: str
    payloads: tuple[Any, ...]


def _micros(text: object) -> int | None:
    """``"1618678145.715785"`` as integer microseconds; None when it is not such a time."""
    if not isinstance(text, str):
        return None
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        return None
    return int(whole) * 1_000_000 + int((fraction + "000000")[:6])


def _frame_time(message: MarketMessage) -> int | None:
    if isinstance(message, BookSnapshot | BookUpdate):
        texts: Iterable[object] = (level[2] for level in (*message.asks, *message.bids))
    elif isinstance(message, Trade):
        texts = (entry.time for entry in message.trades)
    elif isinstance(message, Spread):
        texts = (message.timestamp,)
    elif isinstance(message, Ohlc):
        texts = (message.time,)
    else:
        return None
    return max((t for t in map(_micros, texts) if t is not None), default=None)


def _first_price(message: MarketMessage) -> str | None:
    if isinstance(message, BookSnapshot | BookUpdate):
        levels = message.asks or message.bids
        return levels[0][0] if levels else None
    if isinstance(message, Trade):
        return message.trades[0].price if message.trades else None
    if isinstance(message, Spread):
        return message.bid
    if isinstance(message, Ohlc):
        return message.open
    return message.c[0]


def _stand_in_pair(wsname: str, price: str | None) -> Pair:
    """A pair the sandbox's markets may not know, with the wire width the capture shows."""
    base, _, quote = wsname.partition("/")
    width = len(price.partition(".")[2]) if price else 8
    return Pair(
        key=base + quote,
        altname=base + quote,
        wsname=wsname,
        base=base,
        quote=quote,
        pair_decimals=width,
        lot_decimals=8,
        tick_size=Decimal(1).scaleb(-width),
        ws_price_decimals=width,
    )


def _is_zero(volume: str) -> bool:
    return not volume.replace(".", "").strip("0")


def _window_levels(
    old: Sequence[WireLevel], new: Sequence[WireLevel], changes: Sequence[WireLevel]
) -> list[list[str]]:
    """The levels that turn a client's window ``old`` into ``new`` after ``changes`` were
    applied to the full book: deletes from inside the window first, then changed levels now
    inside it, then untouched levels entering it (republished with ``"r"``). Levels pushed out
    of the window are not sent: the client truncates them away, as with Kraken."""
    old_prices = {level[0] for level in old}
    new_levels = {level[0]: level for level in new}
    last: dict[str, WireLevel] = {}
    for level in changes:
        last[level[0]] = level
    deletes = [
        list(level[:3])
        for price, level in last.items()
        if price in old_prices and price not in new_levels and _is_zero(level[1])
    ]
    updates = [list(new_levels[price]) for price in last if price in new_levels]
    republished = [
        [*level[:3], "r"]
        for price, level in new_levels.items()
        if price not in old_prices and price not in last
    ]
    return deletes + updates + republished


def _update_payloads(asks: list[Any], bids: list[Any], checksum: str | None) -> tuple[Any, ...]:
    """The middle of a book update frame; two objects when both sides changed (spec 3.5)."""
    tail = {} if checksum is None else {"c": checksum}
    if asks and bids:
        return ({"a": asks}, {"b": bids, **tail})
    if bids:
        return ({"b": bids, **tail},)
    return ({"a": asks, **tail},)


class ReplayMarket:
    """The public market of a capture as a timeline, and the books that follow its replay."""

    def __init__(self, frames: Sequence[ReplayFrame], *, source: str = "capture") -> None:
        self.frames = tuple(frames)
        self.source = source
        self.book_depths: dict[str, int] = {}
        first_prices: dict[str, str | None] = {}
        for frame in self.frames:
            message = frame.message
            if message.pair not in first_prices or first_prices[message.pair] is None:
                first_prices[message.pair] = _first_price(message)
            if isinstance(message, BookSnapshot | BookUpdate):
                depth = depth_from_channel_name(message.channel_name)
                self.book_depths[message.pair] = max(depth, self.book_depths.get(message.pair, 0))
        self.wsnames = frozenset(first_prices)
        self.registry = PairRegistry(
            _stand_in_pair(wsname, price) for wsname, price in sorted(first_prices.items())
        )
        self.position = 0
        self._books: dict[str, OrderBook] = {}
        self._latest: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.rewind()

    # --- loading -----------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayMarket:
        """Read and check a JSON Lines capture; UsageError when it cannot be replayed."""
        try:
            return cls.from_lines(read_capture(path), source=str(path))
        except OSError as exc:
            raise UsageError(f"cannot read capture {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not a text capture: {exc}") from None

    @classmethod
    def from_lines(
        cls, lines: Iterable[tuple[int, str]], *, source: str = "capture"
    ) -> ReplayMarket:
        """Read ``(line_number, frame_text)`` pairs; UsageError on a frame that is not v1, on a
        book update whose checksum does not verify, or when no market frame is found."""
        decoded: list[tuple[int, MarketMessage]] = []
        deepest: dict[str, int] = {}
        for line, text in lines:
            try:
                message = decode_server(text)
            except ProtocolError as exc:
                raise UsageError(f"{source}:{line}: not a Kraken v1 frame: {exc}") from None
            if isinstance(message, BookSnapshot | BookUpdate):
                depth = depth_from_channel_name(message.channel_name)
                deepest[message.pair] = max(depth, deepest.get(message.pair, 0))
            elif not isinstance(message, Trade | Ticker | Spread | Ohlc):
                continue  # events, heartbeats, private frames: not part of the market
            decoded.append((line, message))
        checkers: dict[str, OrderBook] = {}
        frames = []
        for line, message in decoded:
            if isinstance(message, BookSnapshot | BookUpdate):
                depth = depth_from_channel_name(message.channel_name)
                if depth != deepest[message.pair]:
                    continue  # derived from the deepest recorded book of the pair
                book = checkers.get(message.pair)
                if isinstance(message, BookUpdate) and book is None:
                    continue  # nothing to apply it to: the capture began mid-stream
                if book is None:
                    book = checkers[message.pair] = OrderBook(message.pair, depth)
                try:
                    book.apply(message)
                except (BookError, ProtocolError) as exc:
                    raise UsageError(
                        f"{source}:{line}: the book cannot be replayed: {exc} "
                        "(krakenws verify tells more)"
                    ) from None
            frames.append(ReplayFrame(line, _frame_time(message), message))
        if not frames:
            raise UsageError(f"{source}: no public market frame to replay")
        return cls(frames, source=source)

    # --- reading -----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether every frame has been replayed."""
        return self.position >= len(self.frames)

    def pair(self, name: str) -> Pair | None:
        """The replayed pair any spelling of ``name`` means (``BTC/USD`` is ``XBT/USD``)."""
        return self.registry.get(name)

    def subscribe_error(self, channel_name: str, wsname: str) -> str | None:
        """Kraken's error for a subscription the replay cannot serve, else None."""
        if channel_name.startswith("book-"):
            recorded = self.book_depths.get(wsname)
            if recorded is not None and depth_from_channel_name(channel_name) > recorded:
                return "Subscription depth not supported"
        return None

    def first_payloads(self, channel_name: str, wsname: str) -> tuple[Any, ...] | None:
        """What a new subscriber gets after its ack: the book cut to its depth, or the latest
        ticker, spread or candle; None when there is nothing (yet)."""
        if channel_name.startswith("book-"):
            book = self._books.get(wsname)
            if book is None or not book.is_synced:
                return None
            return (self._snapshot(book, depth_from_channel_name(channel_name)),)
        return self._latest.get((channel_name, wsname))

    @staticmethod
    def _snapshot(book: OrderBook, depth: int) -> dict[str, list[list[str]]]:
        asks = list(book.iter_wire_asks())[:depth]
        bids = list(book.iter_wire_bids())[:depth]
        return {
            "as": [list(level[:3]) for level in asks],
            "bs": [list(level[:3]) for level in bids],
        }

    # --- replaying -----------------------------------------------------------------------------

    def rewind(self) -> None:
        """Back to the first frame; the books are rebuilt by the capture's snapshots."""
        self.position = 0
        self._books = {
            wsname: OrderBook(wsname, depth) for wsname, depth in self.book_depths.items()
        }

    def step(self, subscribed: Callable[[str, str], bool]) -> tuple[ReplayFrame, list[Publication]]:
        """Replay the next frame; return it and what its subscribers must receive.

        ``subscribed(channel_name, wsname)`` says whether anyone listens there: book frames
        are only derived for depths somebody holds.
        """
        frame = self.frames[self.position]
        self.position += 1
        message = frame.message
        wsname = message.pair
        if isinstance(message, BookSnapshot | BookUpdate):
            recorded = self.book_depths[wsname]
            depths = [d for d in BOOK_DEPTHS if d <= recorded and subscribed(f"book-{d}", wsname)]
            return frame, self._book_step(self._books[wsname], message, recorded, depths)
        if isinstance(message, Trade):
            entries = [
                [t.price, t.volume, t.time, t.side, t.order_type, t.misc] for t in message.trades
            ]
            payloads: tuple[Any, ...] = (entries,)
        elif isinstance(message, Ticker):
            payloads = ({key: list(getattr(message, key)) for key in _TICKER_KEYS},)
        elif isinstance(message, Spread):
            payloads = (
                [
                    message.bid,
                    message.ask,
                    message.timestamp,
                    message.bid_volume,
                    message.ask_volume,
                ],
            )
        else:
            payloads = (
                [
                    message.time,
                    message.etime,
                    message.open,
                    message.high,
                    message.low,
                    message.close,
                    message.vwap,
                    message.volume,
                    message.count,
                ],
            )
        if not isinstance(message, Trade):  # v1 sends no trade snapshot
            self._latest[(message.channel_name, wsname)] = payloads
        return frame, [Publication(message.channel_name, wsname, payloads)]

    def _book_step(
        self,
        book: OrderBook,
        message: BookSnapshot | BookUpdate,
        recorded: int,
        depths: Sequence[int],
    ) -> list[Publication]:
        wsname = message.pair
        if isinstance(message, BookSnapshot):
            book.apply(message)
            return [Publication(f"book-{d}", wsname, (self._snapshot(book, d),)) for d in depths]
        shallow = [d for d in depths if d < recorded]
        deepest = max(shallow, default=0)
        old_asks = list(book.iter_wire_asks())[:deepest] if shallow and message.asks else []
        old_bids = list(book.iter_wire_bids())[:deepest] if shallow and message.bids else []
        book.apply(message)
        out = []
        if recorded in depths:
            payloads = _update_payloads(message.asks, message.bids, message.checksum)
            out.append(Publication(message.channel_name, wsname, payloads))
        if shallow:
            checksum = str(book.checksum())
            new_asks = list(book.iter_wire_asks())[:deepest] if message.asks else []
            new_bids = list(book.iter_wire_bids())[:deepest] if message.bids else []
            for depth in shallow:
                asks = _window_levels(old_asks[:depth], new_asks[:depth], message.asks)
                bids = _window_levels(old_bids[:depth], new_bids[:depth], message.bids)
                if asks or bids:
                    out.append(
                        Publication(f"book-{depth}", wsname, _update_payloads(asks, bids, checksum))
                    )
        return out


class ReplayFeed:
    """Plays a :class:`ReplayMarket` to the subscribers of a :class:`WsApi`, in recorded time.

    ``speed`` multiplies the recorded pace (2.0: twice as fast; 0: as fast as possible).
    ``loop`` starts over at the end. The clock starts at the first subscription to a replayed
    pair, so a bot started after the sandbox still sees the recording from its beginning.
    """

    def __init__(self, market: ReplayMarket, *, speed: float = 1.0, loop: bool = False) -> None:
        if not speed >= 0:
            raise UsageError(f"replay speed must be 0 or more, got {speed!r}")
        self.market = market
        self.speed = speed
        self.loop = loop
        self.rounds = 0  # completed passes over the capture
        self._ws: WsApi | None = None
        self._market_keys: frozenset[str] = frozenset()
        self._go = asyncio.Event()
        self._clock: Callable[[], float] = time.monotonic

    def attach(self, ws: WsApi) -> None:
        """Serve on ``ws`` (the server calls this once)."""
        self._ws = ws
        self._market_keys = frozenset(
            pair.key for pair in ws.markets if pair.wsname in self.market.wsnames
        )

    @property
    def wsnames(self) -> frozenset[str]:
        """The replayed pairs: every public channel of these is served from the capture."""
        return self.market.wsnames

    @property
    def market_keys(self) -> frozenset[str]:
        """REST keys of the exchange's pairs that are replayed (their engine feed is muted)."""
        return self._market_keys

    # --- hooks used by WsApi ---------------------------------------------------------------------

    def pair(self, name: str) -> Pair | None:
        """A replayed pair the sandbox's markets do not know."""
        return self.market.pair(name)

    def subscribe_error(self, channel_name: str, wsname: str) -> str | None:
        """Kraken's error for a subscription the replay cannot serve (a too deep book)."""
        if wsname not in self.market.wsnames:
            return None
        return self.market.subscribe_error(channel_name, wsname)

    def first_frame(
        self, connection: Connection, channel_name: str, wsname: str, channel_id: int
    ) -> None:
        """After a subscription's ack: its first frame, and the replay's start signal."""
        self._go.set()
        payloads = self.market.first_payloads(channel_name, wsname)
        if payloads is not None:
            connection.send_json([channel_id, *payloads, channel_name, wsname])

    # --- the clock -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Replay until the end (forever with ``loop``); cancel to stop."""
        await self._go.wait()
        while True:
            await self._pass()
            self.rounds += 1
            if not self.loop:
                return
            self.market.rewind()

    async def _pass(self) -> None:
        ws = self._ws
        if ws is None:
            raise UsageError("ReplayFeed.attach(ws) was not called")
        market = self.market
        anchor = self._clock()
        first: int | None = None
        now = 0
        while not market.done:
            upcoming = market.frames[market.position].time
            if self.speed and upcoming is not None:
                first = upcoming if first is None else first
                now = max(now, upcoming - first)
                delay = anchor + now / 1_000_000 / self.speed - self._clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)  # let the connections' writers keep up
            frame, publications = market.step(ws.has_subscribers)
            corrupt = (
                isinstance(frame.message, BookUpdate)
                and bool(publications)
                and frame.message.pair in ws.corrupt_next
            )
            if corrupt:  # the corrupt-checksum fault, as for simulated books
                ws.corrupt_next.discard(frame.message.pair)
            for publication in publications:
                payloads = _corrupted(publication.payloads) if corrupt else publication.payloads
                ws.send_public((publication.channel_name, publication.pair), *payloads)


def _corrupted(payloads: tuple[Any, ...]) -> tuple[Any, ...]:
    """A book update's payloads with its checksum off by one."""
    last = dict(payloads[-1])
    last["c"] = str((int(last["c"]) + 1) % 2**32)
    return (*payloads[:-1], last)
