"""What the client hands out: message streams, live books and order handles.

:class:`Stream` (an async iterator of one subscription's messages), :class:`Opening` (what
``client.ticker(...)`` and friends return: await it or ``async with`` it), :class:`LiveBook`
(a checksum-verified book the client keeps current) and :class:`OrderHandle` (an order followed
on the private feeds). The client (:mod:`krakenws.client`) feeds them; they never touch a socket.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from krakenws.errors import (
    BookError,
    ConnectionClosedError,
    KrakenError,
    KrakenTimeoutError,
    SlowConsumerError,
    UsageError,
)
from krakenws.orders import OrderState
from krakenws.protocol.book import Level, OrderBook
from krakenws.protocol.messages import BookSnapshot

if TYPE_CHECKING:
    from krakenws.client import Client

__all__ = ["LiveBook", "Opening", "OrderHandle", "Stream"]

_T = TypeVar("_T")


# --- streams -----------------------------------------------------------------------------------


class Stream(Generic[_T]):
    """An async iterator of one subscription's messages, in arrival order.

    Iterate it (``async for ticker in stream``), or ``await stream.get(timeout)``. Closing it
    (``stream.close()``, or leaving ``async with``) drops the subscription when no other stream
    or book uses it. A reader that falls more than ``maxsize`` messages behind gets
    :class:`~krakenws.errors.SlowConsumerError` instead of silently lost messages.
    """

    def __init__(
        self, name: str, *, maxsize: int, on_close: Callable[[], None] | None = None
    ) -> None:
        self.name = name
        self._items: deque[_T] = deque()
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._on_close = on_close

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._items)} pending"
        return f"<Stream {self.name} {state}>"

    @property
    def closed(self) -> bool:
        """Whether the stream has ended (closed, failed or the client closed)."""
        return self._closed

    def pending(self) -> int:
        """Messages received but not read yet."""
        return len(self._items)

    def _push(self, item: _T) -> None:
        if self._closed:
            return
        if len(self._items) >= self._maxsize:
            self._fail(SlowConsumerError(f"{self.name}: more than {self._maxsize} unread messages"))
            return
        self._items.append(item)
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._closed:
            return
        self._error = error
        self._finish()

    def _finish(self) -> None:
        self._closed = True
        self._wake()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def close(self) -> None:
        """Stop receiving; unread messages are dropped."""
        if not self._closed:
            self._items.clear()
            self._finish()

    async def aclose(self) -> None:
        """Same as :meth:`close` (for ``contextlib.aclosing`` and friends)."""
        self.close()

    def __aiter__(self) -> Stream[_T]:
        return self

    async def __anext__(self) -> _T:
        while True:
            if self._items:
                return self._items.popleft()
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._closed:
                raise StopAsyncIteration
            # One future shared by every reader (tasks may read one stream together); a reader
            # that times out or is cancelled leaves it to the others.
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(waiter)

    async def get(self, timeout: float | None = None) -> _T:
        """The next message; :class:`~krakenws.errors.KrakenTimeoutError` after ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                return await self.__anext__()
        except StopAsyncIteration:
            raise ConnectionClosedError(f"{self.name}: the stream is closed") from None
        except TimeoutError:
            raise KrakenTimeoutError(f"{self.name}: nothing within {timeout} s") from None

    async def __aenter__(self) -> Stream[_T]:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        self.close()


class _Closable(Protocol):
    async def aclose(self) -> None: ...


_C = TypeVar("_C", bound=_Closable)


class Opening(Generic[_C]):
    """What :meth:`Client.ticker` and friends return: ``await`` it, or ``async with`` it."""

    def __init__(self, opener: Coroutine[Any, Any, _C]) -> None:
        self._opener = opener
        self._value: _C | None = None

    def __await__(self) -> Generator[Any, None, _C]:
        return self._opener.__await__()

    async def __aenter__(self) -> _C:
        self._value = await self._opener
        return self._value

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        if self._value is not None:
            await self._value.aclose()


# --- books -------------------------------------------------------------------------------------


class LiveBook:
    """A checksum-verified order book that the client keeps current.

    Read it at any time (:meth:`best_bid`, :meth:`asks`, :attr:`book` for the whole
    :class:`~krakenws.protocol.book.OrderBook`); ``await book.wait_update()`` for the next
    change, or ``async for book in live_book.updates()``. While :attr:`synced` is False (after a
    checksum mismatch or a reconnect, until the fresh snapshot arrives) the contents are stale.
    """

    def __init__(
        self,
        pair: str,
        depth: int,
        *,
        price_decimals: int | None,
        release: Callable[[LiveBook], None],
    ) -> None:
        self.pair = pair
        self.depth = depth
        self.book = OrderBook(pair, depth, price_decimals=price_decimals)
        self.synced = False
        self.update_count = 0
        """Updates applied with a verified checksum."""
        self.snapshot_count = 0
        self.resync_count = 0
        self.version = 0
        """Bumped on every applied snapshot or update."""
        self.last_error: BookError | None = None
        self._users = 1
        self._release = release
        self._closed = False
        self._end_error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._sync_waiters: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        state = "synced" if self.synced else "resyncing"
        return f"<LiveBook {self.pair} depth={self.depth} {state} updates={self.update_count}>"

    def _changed(self) -> None:
        self.version += 1
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _snapshot(self, message: BookSnapshot) -> None:
        self.book.apply_snapshot(message.asks, message.bids)
        self.synced = True
        self.snapshot_count += 1
        for waiter in self._sync_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._sync_waiters.clear()
        self._changed()

    def _unsync(self) -> None:
        self.synced = False
        self.resync_count += 1

    def _end(self, error: BaseException | None) -> None:
        # Waiters wake up and find the book closed (no exception is left unretrieved on a
        # future nobody awaits any more).
        self._closed = True
        self._end_error = error
        for waiter in [self._waiter, *self._sync_waiters]:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._waiter = None
        self._sync_waiters.clear()

    def _closed_error(self) -> KrakenError:
        if isinstance(self._end_error, KrakenError):
            return self._end_error
        return ConnectionClosedError(f"book {self.pair} is closed")

    async def wait_update(self, timeout: float | None = None) -> LiveBook:
        """Wait for the next applied snapshot or update; returns the book itself."""
        if self._closed:
            raise self._closed_error()
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._waiter)
        except TimeoutError:
            raise KrakenTimeoutError(f"book {self.pair}: no update within {timeout} s") from None
        if self._closed:
            raise self._closed_error()
        return self

    async def wait_synced(self, timeout: float | None = None) -> LiveBook:
        """Wait until the book holds a fresh snapshot (returns at once when it does)."""
        if self.synced:
            return self
        if self._closed:
            raise self._closed_error()
        waiter = asyncio.get_running_loop().create_future()
        self._sync_waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            raise KrakenTimeoutError(f"book {self.pair}: no snapshot within {timeout} s") from None
        if not self.synced:
            raise self._closed_error()
        return self

    async def updates(self) -> Any:
        """Async iterator: yields the book after every change, until it is closed."""
        while not self._closed:
            try:
                await self.wait_update()
            except ConnectionClosedError:
                return
            yield self

    def best_bid(self) -> Level | None:
        """The best bid (price, volume, timestamp), or None on an empty side."""
        return self.book.best_bid()

    def best_ask(self) -> Level | None:
        """The best ask, or None on an empty side."""
        return self.book.best_ask()

    def bids(self, n: int | None = None) -> list[Level]:
        """The best ``n`` bids (all by default), best first."""
        return self.book.bids(n)

    def asks(self, n: int | None = None) -> list[Level]:
        """The best ``n`` asks (all by default), best first."""
        return self.book.asks(n)

    def spread(self) -> Decimal | None:
        """Best ask minus best bid."""
        return self.book.spread()

    def mid(self) -> Decimal | None:
        """Midpoint of the best bid and ask."""
        return self.book.mid()

    def checksum(self) -> int:
        """The CRC32 of the top ten levels, as Kraken computes it."""
        return self.book.checksum()

    def close(self) -> None:
        """Stop maintaining the book (unsubscribes when nothing else uses it)."""
        if not self._closed:
            self._users -= 1
            if self._users <= 0:
                self._end(None)
                self._release(self)

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        self.close()

    async def __aenter__(self) -> LiveBook:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        self.close()


# --- orders ------------------------------------------------------------------------------------


class OrderHandle:
    """An accepted order, followed on the private feeds.

    :attr:`state` is its current :class:`~krakenws.orders.OrderState` (status, ``vol_exec``,
    ``cost``, ``fee``, ``avg_price``, fills). Await :meth:`wait_done`, :meth:`wait_filled`,
    :meth:`wait_status` or any predicate with :meth:`wait_for`.
    """

    def __init__(self, client: Client, txid: str, descr: str | None) -> None:
        self._client = client
        self.txid = txid
        self.descr = descr

    def __repr__(self) -> str:
        state = self.state
        return f"<OrderHandle {self.txid} {state.status} vol_exec={state.vol_exec}>"

    @property
    def state(self) -> OrderState:
        """What the feeds said of this order so far."""
        return self._client.orders.state(self.txid)

    @property
    def status(self) -> str:
        """``pending``, ``open``, ``closed``, ``canceled``, ``expired`` (``unknown`` before the
        first feed message)."""
        return self.state.status

    async def wait_for(
        self, predicate: Callable[[OrderState], bool], timeout: float | None = None
    ) -> OrderState:
        """Wait until ``predicate(state)`` holds; returns the state."""
        return await self._client._wait_order(self.txid, predicate, timeout)

    async def wait_status(self, *statuses: str, timeout: float | None = None) -> OrderState:
        """Wait until the order's status is one of ``statuses``."""
        wanted = frozenset(statuses)
        return await self.wait_for(lambda state: state.status in wanted, timeout)

    async def wait_done(self, timeout: float | None = None) -> OrderState:
        """Wait until the order is closed, canceled or expired."""
        return await self.wait_for(lambda state: state.is_done, timeout)

    async def wait_filled(self, timeout: float | None = None) -> OrderState:
        """Wait until the whole volume has executed."""
        return await self.wait_for(lambda state: state.is_filled, timeout)

    async def cancel(self, *, timeout: float | None = None) -> None:
        """Cancel this order."""
        await self._client.cancel_order(self.txid, timeout=timeout)

    async def amend(self, **changes: Any) -> str | None:
        """Amend this order in place (see :meth:`Client.amend_order`); returns the amend id."""
        return await self._client.amend_order(txid=self.txid, **changes)

    async def edit(self, **changes: Any) -> OrderHandle:
        """Replace this order (see :meth:`Client.edit_order`); returns the new order."""
        pair = changes.pop("pair", None) or self.state.pair
        if pair is None:
            raise UsageError("the order's pair is not known yet; pass pair=")
        return await self._client.edit_order(self.txid, pair, **changes)
