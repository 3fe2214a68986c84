"""The asyncio client: one entry point for Kraken's WebSocket API v1 and its REST API.

:class:`Client` is an async context manager that holds up to two WebSocket connections, the
public one (market data) and the private one (account feeds and trading), each opened when
first needed, plus a :class:`~krakenws.rest.RestClient`. Everything Kraken's rules say about a
connection lives in the sans-I/O core (:mod:`krakenws.protocol.session`, ``book``, ``codec``,
:mod:`krakenws.orders`); this module moves frames, reads clocks and runs tasks:

* **public data** as async iterators of typed messages (:meth:`Client.ticker`,
  :meth:`~Client.ohlc`, :meth:`~Client.trades`, :meth:`~Client.spreads`) and checksum-verified
  books that stay current (:meth:`Client.book` gives a :class:`LiveBook`);
* **private data**: :meth:`Client.open_orders` and :meth:`~Client.own_trades` streams, and
  :attr:`Client.orders`, the account's orders as the feeds tell them; sequence gaps are
  detected, reported and healed by resubscribing for a fresh snapshot;
* **trading**: :meth:`Client.add_order` returns an :class:`OrderHandle` that follows the
  order on the private feeds (``await handle.wait_done()``), :meth:`~Client.edit_order`,
  :meth:`~Client.amend_order`, :meth:`~Client.cancel_order`, :meth:`~Client.cancel_all`,
  :meth:`~Client.cancel_all_orders_after`; replies are matched by ``reqid``; every call has a
  deadline and raises the :class:`~krakenws.errors.ExchangeError` carrying Kraken's string;
* **connection management**: a heartbeat watchdog and application-level pings, reconnects
  with exponential backoff and jitter, paced resubscription, books rebuilt from fresh
  snapshots, a checksum mismatch resubscribing only that book, WebSocket tokens fetched one at
  a time and renewed when Kraken says ``ESession:Invalid session``. Every such happening is a
  :class:`ClientEvent` on :meth:`Client.events`.

Example (against a sandbox started with ``krakenws sandbox``)::

    async with Client(sandbox="http://127.0.0.1:8080", api_key=KEY, api_secret=SECRET) as kraken:
        book = await kraken.book("XBT/USD", depth=10)
        print(book.best_bid(), book.best_ask(), book.checksum())
        order = await kraken.add_order(
            "XBT/USD", "buy", "limit", volume="0.01", price=book.best_bid().price
        )
        await order.cancel()
        state = await order.wait_done()
        print(state.status)  # "canceled"

The values it hands out live next door: events, results and the reconnect policy in
:mod:`krakenws.events`, streams, live books and order handles in :mod:`krakenws.streams`
(all re-exported here). It must not import :mod:`krakenws.sandbox`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl as ssl_module
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, Final, TypeAlias, TypeVar, cast

import aiohttp
import msgspec
from msgspec import UNSET

from krakenws.errors import (
    BookError,
    ChecksumMismatchError,
    ConnectionClosedError,
    ExchangeError,
    InvalidSessionError,
    KrakenError,
    KrakenTimeoutError,
    MessageRateError,
    OrderRateLimitError,
    ProtocolError,
    SubscriptionError,
    TransportError,
    UsageError,
    error_from_kraken,
)
from krakenws.events import (
    Backoff,
    BookResync,
    BookSynced,
    CancelAllResult,
    ClientEvent,
    Connected,
    ConnectFailed,
    DeadManSwitch,
    Disconnected,
    FeedResynced,
    GaveUp,
    OrdersReconciled,
    ProtocolProblem,
    Reconnecting,
    Resubscribed,
    SequenceGap,
    StatusChanged,
    SubscriptionLost,
    TokenRefreshed,
)
from krakenws.orders import OrderState, OrderTracker
from krakenws.pairs import PairRegistry
from krakenws.protocol.codec import decode_server, encode_client
from krakenws.protocol.messages import (
    AddOrder,
    AddOrderStatus,
    AmendOrder,
    AmendOrderStatus,
    BookSnapshot,
    BookUpdate,
    CancelAll,
    CancelAllOrdersAfter,
    CancelAllOrdersAfterStatus,
    CancelAllStatus,
    CancelOrder,
    ClientMessage,
    EditOrder,
    EditOrderStatus,
    ErrorEvent,
    Heartbeat,
    LegacyErrorMessage,
    Ohlc,
    OpenOrders,
    OwnTrades,
    Ping,
    Spread,
    Subscribe,
    Subscription,
    SubscriptionStatus,
    SystemStatus,
    Ticker,
    Trade,
    Unsubscribe,
)
from krakenws.protocol.session import (
    PRIVATE_CHANNELS,
    HeartbeatMonitor,
    Reply,
    RequestTracker,
    SequenceResult,
    SequenceTracker,
    SubscriptionKey,
    SubscriptionRegistry,
    SubscriptionState,
    channel_name_of,
)
from krakenws.ratelimit import ADD_COST, OrderCostKind
from krakenws.rest import RestClient
from krakenws.streams import LiveBook, Opening, OrderHandle, Stream

__all__ = [
    "KRAKEN_REST_URL",
    "KRAKEN_WS_AUTH_URL",
    "KRAKEN_WS_URL",
    "Backoff",
    "BookResync",
    "BookSynced",
    "CancelAllResult",
    "Client",
    "ClientEvent",
    "ConnectFailed",
    "Connected",
    "DeadManSwitch",
    "Disconnected",
    "FeedResynced",
    "GaveUp",
    "LiveBook",
    "OrderHandle",
    "OrdersReconciled",
    "ProtocolProblem",
    "Reconnecting",
    "Resubscribed",
    "SequenceGap",
    "StatusChanged",
    "Stream",
    "SubscriptionLost",
    "TokenRefreshed",
]

log = logging.getLogger("krakenws.client")

KRAKEN_WS_URL: Final = "wss://ws.kraken.com"
KRAKEN_WS_AUTH_URL: Final = "wss://ws-auth.kraken.com"
KRAKEN_REST_URL: Final = "https://api.kraken.com"

_T = TypeVar("_T")
_Frame = TypeVar("_Frame", OpenOrders, OwnTrades)
_PUBLIC: Final = "public"
_PRIVATE: Final = "private"
_TOKEN_MAX_AGE: Final = 600.0  # Kraken: a token must be used within 15 minutes of issue
_SETTLE_SECONDS: Final = 0.3  # open-ended cancels (by userref): replies within this are one answer
_Request = TypeVar("_Request", Subscribe, Unsubscribe)
_NO_CREDENTIALS: Final = (
    "private feeds and trading need an API key and secret (arguments, or the "
    "KRAKEN_API_KEY / KRAKEN_API_SECRET environment variables) or a token"
)
_RATE_RETRIES: Final = 2  # a request refused with EOrder:Rate limit exceeded: retries after waiting
_TOKEN_RENEWALS: Final = 2  # refused private subscriptions renewing the token, in a row


# --- one connection ----------------------------------------------------------------------------


class _Pacer:
    """A token bucket for outgoing frames, so resubscribing never trips Kraken's message rate."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp: float | None = None
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            now = loop.time()
            if self._stamp is not None:
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate
                await asyncio.sleep(wait)
                self._stamp = loop.time()
                self._tokens = 1.0
            self._tokens -= 1

    def penalise(self) -> None:
        """The server said "Exceeded msg rate": empty the bucket."""
        self._tokens = min(self._tokens, 0.0)


class _Connection:
    """One WebSocket endpoint (public or private) and its reconnecting life."""

    def __init__(self, client: Client, endpoint: str, url: str) -> None:
        self.client = client
        self.endpoint = endpoint
        self.url = url
        self.requests = RequestTracker()
        self.registry = SubscriptionRegistry()
        self.sequences = SequenceTracker()
        self.status: str | None = None
        self.connection_id: int | None = None
        self.connects = 0
        self.online = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ready = asyncio.Event()
        # Resolved (and replaced) whenever ready, closing or gave-up changes: what ready() and
        # _wait_down() sleep on.
        self._changed: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._gave_up: BaseException | None = None
        self._replies: dict[int, asyncio.Future[list[Reply]]] = {}
        self._settle: dict[int, asyncio.TimerHandle] = {}
        self._sub_waiters: dict[SubscriptionKey, list[asyncio.Future[None]]] = {}
        self._unsub_waiters: dict[SubscriptionKey, list[asyncio.Future[None]]] = {}
        self._subscribe_reqids: dict[int, Subscribe] = {}
        # Our unsubscribes in flight (reqid -> answers still due, one per key): those answers
        # are not the server dropping a channel.
        self._unsubscribe_reqids: dict[int, int] = {}
        self._pacer = _Pacer(client.message_rate, client.message_burst)
        self._received = 0
        self._feed_received = 0
        self._dead: asyncio.Future[str] | None = None
        self._greeted: asyncio.Future[None] | None = None
        self._token: str | None = None
        self._healing: set[str] = set()
        self._renewals = 0  # tokens renewed for refused private subscriptions, in a row

    # lifecycle

    def start(self) -> None:
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"krakenws-{self.endpoint}"
            )

    async def ready(self, timeout: float | None) -> None:
        """Wait until connected (and resubscribed); starts the connection if needed."""
        self.start()
        if self._ready.is_set():
            return
        if self._gave_up is not None:
            raise self._gave_up_error() from self._gave_up
        try:
            async with asyncio.timeout(timeout):
                while not self._ready.is_set():
                    if self._gave_up is not None:
                        raise self._gave_up_error() from self._gave_up
                    if self._closing:
                        raise ConnectionClosedError("the client is closed")
                    await self._next_change()
        except TimeoutError:
            raise KrakenTimeoutError(
                f"{self.endpoint} connection to {self.url} not ready within {timeout} s"
            ) from None

    def _gave_up_error(self) -> KrakenError:
        """What a caller of a connection that gave up gets: the caller's own mistake (a secret
        that is not base64...) as it is, anything else as ConnectionClosedError."""
        cause = self._gave_up
        if isinstance(cause, UsageError):
            return UsageError(str(cause))
        return ConnectionClosedError(f"{self.endpoint} connection gave up: {cause}")

    async def _next_change(self) -> None:
        """Sleep until ready, closing or gave-up changes (shared by every waiter; a waiter that
        is cancelled does not cancel it for the others)."""
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._changed)

    def _state_changed(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    async def close(self) -> None:
        self._closing = True
        self._state_changed()
        if self._dead is not None and not self._dead.done():
            self._dead.set_result("client closed")
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Its failure, if any, was given to the waiters already; closing must go on.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._fail_pending("the client is closed")

    async def _run(self) -> None:
        client = self.client
        attempt = 0
        failure = ""
        while not self._closing:
            attempt += 1
            try:
                ws = await self._open()
            except (aiohttp.ClientError, OSError, TimeoutError, TransportError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
                client._emit(ConnectFailed(endpoint=self.endpoint, attempt=attempt, error=failure))
                if not await self._backoff(attempt, failure):
                    return
                continue
            except (ExchangeError, UsageError) as exc:
                # e.g. a key that cannot get a token, a secret that is not base64: retrying
                # won't help
                self._give_up(attempt, exc)
                return
            self.connects += 1
            attempt = 0
            cause = await self._live(ws)
            client._emit(Disconnected(endpoint=self.endpoint, cause=cause))
            if self._closing:
                return
            if not await self._backoff(1, cause):
                return

    async def _backoff(self, attempt: int, cause: str) -> bool:
        policy = self.client.backoff
        if policy.max_attempts is not None and attempt >= policy.max_attempts:
            self._give_up(attempt, ConnectionClosedError(cause))
            return False
        delay = policy.delay(attempt, self.client._rng)
        if self.status in ("maintenance", "cancel_only"):
            delay = max(delay, policy.after_maintenance)
        self.client._emit(
            Reconnecting(endpoint=self.endpoint, attempt=attempt, delay=delay, cause=cause)
        )
        await asyncio.sleep(delay)
        return True

    def _give_up(self, attempts: int, error: BaseException) -> None:
        self._gave_up = error
        self._state_changed()
        self.client._emit(GaveUp(endpoint=self.endpoint, attempts=attempts, error=str(error)))
        self.client._connection_gave_up(self, error)

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        client = self.client
        if self.endpoint == _PRIVATE:
            self._token = await client._tokens.get(fresh_after=_TOKEN_MAX_AGE)
        session = await client._session()
        return await session.ws_connect(
            self.url,
            ssl=client.ssl if client.ssl is not None else True,
            autoping=True,
            max_msg_size=0,
            **_close_timeout(2.0),
        )

    async def _live(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Serve one open connection until it ends; returns the cause."""
        loop = asyncio.get_running_loop()
        self._ws = ws
        self._dead = loop.create_future()
        self._greeted = loop.create_future()
        self.registry.reset()
        self.sequences.reset()
        self.client._connection_opened(self)
        reader = loop.create_task(self._read(ws), name=f"krakenws-{self.endpoint}-reader")
        watchdog: asyncio.Task[None] | None = None
        resubscriber: asyncio.Task[None] | None = None
        try:
            # Kraken greets with systemStatus at once; wait for it (briefly) so that the
            # connection id and the exchange's status are known before anything is sent.
            await asyncio.wait(
                {reader, self._greeted}, timeout=5.0, return_when=asyncio.FIRST_COMPLETED
            )
            requests = self._resubscribe_requests()
            self.online = True
            self._ready.set()
            self._state_changed()
            self.client._emit(
                Connected(
                    endpoint=self.endpoint,
                    url=self.url,
                    connection_id=self.connection_id,
                    attempt=self.connects,
                )
            )
            watchdog = loop.create_task(self._watch(), name=f"krakenws-{self.endpoint}-watchdog")
            resubscriber = loop.create_task(self._send_all(requests, resubscribe=self.connects > 1))
            waitables: set[asyncio.Future[Any]] = {reader, self._dead}
            await asyncio.wait(waitables, return_when=asyncio.FIRST_COMPLETED)
            if self._dead.done():
                cause = self._dead.result()
            elif reader.exception() is not None:
                cause = f"read failed: {reader.exception()}"
            else:
                cause = _close_cause(ws)
        finally:
            self.online = False
            self._ready.clear()
            self._state_changed()
            tasks = [task for task in (reader, watchdog, resubscriber) if task is not None]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await ws.close()
            self._ws = None
            self._fail_pending(
                "the connection closed before the reply arrived "
                "(a trading request may or may not have taken effect)"
            )
        return cause

    def _resubscribe_requests(self) -> list[Subscribe]:
        requests = self.registry.resubscribe_requests(self._token)
        healed = []
        for request in requests:
            # Trades missed while disconnected come back in a snapshot (deduplicated later).
            if request.subscription.name == "ownTrades":
                subscription = msgspec.structs.replace(request.subscription, snapshot=True)
                request = msgspec.structs.replace(request, subscription=subscription)
            healed.append(request)
        return healed

    async def _send_all(self, requests: list[Subscribe], *, resubscribe: bool) -> None:
        for request in requests:
            await self.send_subscribe(request)
        if resubscribe:
            self.client._emit(Resubscribed(endpoint=self.endpoint, subscriptions=len(requests)))

    def _fail_pending(self, why: str) -> None:
        for handle in self._settle.values():
            handle.cancel()
        self._settle.clear()
        self.requests.fail_all()
        self._subscribe_reqids.clear()
        self._unsubscribe_reqids.clear()
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ConnectionClosedError(why))
        self._replies.clear()
        if self._closing:
            for waiters in (*self._sub_waiters.values(), *self._unsub_waiters.values()):
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(ConnectionClosedError(why))
            self._sub_waiters.clear()
            self._unsub_waiters.clear()

    def die(self, cause: str) -> None:
        """Give the current connection up (the run loop reconnects)."""
        if self._dead is not None and not self._dead.done():
            self._dead.set_result(cause)

    # sending

    async def send(self, message: ClientMessage) -> None:
        """Send one request. Subscription traffic is paced (resubscribing many channels at once
        must not trip Kraken's message rate); trading requests are paced by the rate mirror."""
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionClosedError(f"{self.endpoint} connection is not open")
        if isinstance(message, Subscribe | Unsubscribe | Ping):
            await self._pacer.acquire()
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionClosedError(f"{self.endpoint} connection is not open")
        try:
            await ws.send_str(encode_client(message).decode())
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            self.die(f"send failed: {exc}")
            raise ConnectionClosedError(f"{self.endpoint} connection lost while sending") from exc

    async def request(self, message: ClientMessage, timeout: float | None) -> list[Reply]:
        """Send a request and wait for its complete answer, matched by reqid.

        A request that could not even be written (the connection was already closing) was
        never sent: it is sent again once the connection is back, within the same deadline.
        A connection lost after the request left raises ConnectionClosedError: its outcome is
        unknown.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ready(None)
                    registered = self.requests.register(message)
                    reqid = registered.reqid
                    assert isinstance(reqid, int)
                    future: asyncio.Future[list[Reply]] = asyncio.get_running_loop().create_future()
                    self._replies[reqid] = future
                    try:
                        try:
                            await self.send(registered)
                        except ConnectionClosedError:
                            await self._wait_down()
                            continue  # never sent: try again on the next connection
                        return await future
                    finally:
                        self._replies.pop(reqid, None)
                        self.requests.finish(reqid)
                        settle = self._settle.pop(reqid, None)
                        if settle is not None:
                            settle.cancel()
        except TimeoutError:
            raise KrakenTimeoutError(
                f"{type(message).__name__}: no reply within {timeout} s"
            ) from None

    async def _wait_down(self) -> None:
        """Wait until the current (failing) connection has been given up."""
        while self._ready.is_set() and not self._closing:
            await self._next_change()

    async def send_subscribe(self, request: Subscribe) -> None:
        registered = self.requests.register(request)
        assert isinstance(registered, Subscribe) and isinstance(registered.reqid, int)
        self._subscribe_reqids[registered.reqid] = registered
        try:
            await self.send(registered)
        except ConnectionClosedError:
            self.requests.finish(registered.reqid)
            self._subscribe_reqids.pop(registered.reqid, None)

    async def subscribe(self, request: Subscribe, timeout: float | None) -> None:
        """Want a subscription and wait until the server confirms (or refuses) it."""
        if self._gave_up is not None:
            raise self._gave_up_error() from self._gave_up
        keys = self.registry.want(request)
        with _waiting(self._sub_waiters, keys) as waiters:
            self.start()
            if self.online:
                await self.send_subscribe(self._with_token(request))
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*waiters)
            except TimeoutError:
                raise KrakenTimeoutError(
                    f"subscribe {channel_name_of(request.subscription)}: "
                    f"no confirmation within {timeout} s"
                ) from None

    async def unsubscribe(self, request: Unsubscribe, timeout: float | None) -> None:
        """Stop wanting a subscription; waits for the server's ack when connected."""
        keys = self.registry.unwant(request)
        if not self.online:
            return
        with _waiting(self._unsub_waiters, keys) as waiters:
            registered = self.requests.register(self._with_token(request))
            assert isinstance(registered.reqid, int)
            self._unsubscribe_reqids[registered.reqid] = len(keys)
            try:
                await self.send(registered)
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*waiters)
            except (TimeoutError, ConnectionClosedError):
                pass  # gone with the connection, or never acked: either way it is not wanted
            finally:
                assert isinstance(registered.reqid, int)
                self.requests.finish(registered.reqid)

    def _with_token(self, request: _Request) -> _Request:
        """A private (un)subscribe carries the connection's token; public ones are as given."""
        subscription = request.subscription
        if subscription is UNSET or subscription.name not in PRIVATE_CHANNELS:
            return request
        return msgspec.structs.replace(
            request, subscription=msgspec.structs.replace(subscription, token=self._token)
        )

    # receiving

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        dispatch = self.client._handlers
        frame_sinks = self.client._frame_sinks
        text_type = aiohttp.WSMsgType.TEXT
        while True:
            message = await ws.receive()
            if message.type is not text_type:
                if message.type is aiohttp.WSMsgType.BINARY:
                    self.client._emit(
                        ProtocolProblem(endpoint=self.endpoint, error="binary frame skipped")
                    )
                    continue
                return  # CLOSE, CLOSING, CLOSED, ERROR: the connection is over
            self._received += 1
            data = message.data
            if frame_sinks:
                for sink in frame_sinks.get(self.endpoint, ()):
                    sink._push(data)
            try:
                decoded = decode_server(data)
            except ProtocolError as exc:
                self.client._emit(ProtocolProblem(endpoint=self.endpoint, error=str(exc)))
                continue
            try:
                dispatch[type(decoded)](self, decoded)
            except (KrakenError, ArithmeticError, ValueError, LookupError, TypeError) as exc:
                # A well-formed frame whose content cannot be used: skip it, say so, go on.
                self.client._emit(
                    ProtocolProblem(endpoint=self.endpoint, error=f"{type(exc).__name__}: {exc}")
                )

    def on_reply(self, reply: Reply) -> None:
        if isinstance(reply, SubscriptionStatus):
            self.on_subscription_status(reply)
            return
        reqid = reply.reqid
        if isinstance(reply, ErrorEvent) and isinstance(reqid, int):
            subscribe = self._subscribe_reqids.pop(reqid, None)
            if subscribe is not None:
                self.requests.finish(reqid)
                self._subscribe_failed(subscribe, reply.error_message)
                return
        try:
            pending = self.requests.resolve(reply)
        except ProtocolError as exc:
            self.client._emit(ProtocolProblem(endpoint=self.endpoint, error=str(exc)))
            return
        if pending is None:
            if isinstance(reply, ErrorEvent):
                self.client._emit(
                    ProtocolProblem(endpoint=self.endpoint, error=reply.error_message)
                )
            return
        future = self._replies.get(pending.reqid)
        if future is None or future.done():
            return
        if pending.expected is None and not isinstance(reply, ErrorEvent):
            # Open-ended (cancel by userref): answer once replies stop coming.
            previous = self._settle.pop(pending.reqid, None)
            if previous is not None:
                previous.cancel()
            loop = asyncio.get_running_loop()
            self._settle[pending.reqid] = loop.call_later(
                _SETTLE_SECONDS, _settle_future, future, pending.replies
            )
            return
        if pending.complete or isinstance(reply, ErrorEvent):
            future.set_result(list(pending.replies))

    def _subscribe_failed(self, request: Subscribe, error: str) -> None:
        """A subscribe answered by an error event (e.g. "Exceeded msg rate"): retry later."""
        if error == "Exceeded msg rate":
            self._pacer.penalise()

            async def again() -> None:
                await asyncio.sleep(self.client.backoff.delay(2, self.client._rng))
                if self.online:
                    await self.send_subscribe(request)

            self.client._spawn(again())
            return
        for key in self.registry.want(request):
            _resolve(self._sub_waiters, key, error_from_kraken(error))

    def on_subscription_status(self, status: SubscriptionStatus) -> None:
        reqid = status.reqid
        if isinstance(reqid, int) and reqid in self._subscribe_reqids:
            pending = self.requests.resolve(status)
            if pending is not None and (pending.complete or status.is_error):
                self._subscribe_reqids.pop(reqid, None)
        elif isinstance(reqid, int):
            self.requests.finish(reqid)
        ours = isinstance(reqid, int) and reqid in self._unsubscribe_reqids
        if ours and status.status in ("unsubscribed", "error"):
            assert isinstance(reqid, int)
            due = self._unsubscribe_reqids.pop(reqid) - 1
            if due > 0:
                self._unsubscribe_reqids[reqid] = due
        if status.status == "error" and status.error_message == "ESession:Invalid session":
            self.client._spawn(self.client._renew_private_subscriptions(self, status))
        key = self.registry.on_status(status)
        if key is None:
            return
        if status.status == "subscribed":
            if key.pair is None:
                self._renewals = 0
            _resolve(self._sub_waiters, key, None)
            self.client._subscription_confirmed(self, key)
        elif status.status == "unsubscribed":
            _resolve(self._unsub_waiters, key, None)
            if not ours:  # not our own unsubscribe (a release or a resync): the server's doing
                why = "unsubscribed by the server"
                self.client._subscription_ended(self, key, why, SubscriptionError(why))
        elif status.status == "error":
            message = status.error_message or "error"
            if message == "Already subscribed":
                _resolve(self._sub_waiters, key, None)
            elif ours or key in self._unsub_waiters:
                _resolve(self._unsub_waiters, key, None)
            elif message != "ESession:Invalid session":
                # Someone opening the key gets the error (and gives its use back); otherwise
                # it was a resubscription refused, and the streams using it end with it.
                opening = key in self._sub_waiters
                _resolve(self._sub_waiters, key, error_from_kraken(message))
                ended = None if opening else error_from_kraken(message)
                self.client._subscription_ended(self, key, message, ended)

    # liveness

    async def _watch(self) -> None:
        client = self.client
        loop = asyncio.get_running_loop()
        monitor = HeartbeatMonitor(
            timeout=client.heartbeat_timeout, ping_interval=client.ping_interval, now=loop.time()
        )
        seen = self._received
        feed_seen = self._feed_received
        feed_since = loop.time()
        step = min(client.ping_interval, client.heartbeat_timeout) / 4
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            if self._received != seen:
                seen = self._received
                monitor.received(now)
            if self._feed_received != feed_seen or not self._has_active_feed():
                feed_seen = self._feed_received
                feed_since = now
            if monitor.expired(now):
                self.die(f"silent for {client.heartbeat_timeout} s (no reply to ping)")
                return
            if now - feed_since > client.heartbeat_timeout:
                self.die(f"heartbeats stopped: no data for {client.heartbeat_timeout} s")
                return
            if monitor.ping_due(now):
                monitor.ping_sent(now)
                with contextlib.suppress(ConnectionClosedError):
                    await self.send(Ping())

    def _has_active_feed(self) -> bool:
        return any(self.registry.state(key) is SubscriptionState.ACTIVE for key in self.registry)


_Waiters: TypeAlias = dict[SubscriptionKey, list[asyncio.Future[None]]]


@contextlib.contextmanager
def _waiting(
    table: _Waiters, keys: Sequence[SubscriptionKey]
) -> Iterator[list[asyncio.Future[None]]]:
    """One future per key, registered in ``table`` for the block and removed after it."""
    loop = asyncio.get_running_loop()
    waiters: list[asyncio.Future[None]] = [loop.create_future() for _ in keys]
    for key, waiter in zip(keys, waiters, strict=True):
        table.setdefault(key, []).append(waiter)
    try:
        yield waiters
    finally:
        for key, waiter in zip(keys, waiters, strict=True):
            queue = table.get(key)
            if queue is not None and waiter in queue:
                queue.remove(waiter)
                if not queue:
                    del table[key]


def _resolve(table: _Waiters, key: SubscriptionKey, error: KrakenError | None) -> None:
    """Wake everything waiting on ``key`` in ``table``: done, or failed with ``error``."""
    for waiter in table.pop(key, []):
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


def _settle_future(future: asyncio.Future[list[Reply]], replies: list[Reply]) -> None:
    if not future.done():
        future.set_result(list(replies))


def _close_cause(ws: aiohttp.ClientWebSocketResponse) -> str:
    code = ws.close_code
    if code is None:
        return "connection lost"
    return f"closed by the server (code {code})"


def _close_timeout(seconds: float) -> dict[str, Any]:
    """aiohttp >= 3.11 wants a ClientWSTimeout; older versions a float."""
    timeout_type = getattr(aiohttp, "ClientWSTimeout", None)
    if timeout_type is not None:
        return {"timeout": timeout_type(ws_close=seconds)}
    return {"timeout": seconds}


# --- tokens ------------------------------------------------------------------------------------


class _Tokens:
    """The WebSocket token: fetched through REST when needed, one fetch at a time."""

    def __init__(self, client: Client, token: str | None) -> None:
        self._client = client
        self._token = token
        self._fixed = token is not None
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self, *, fresh_after: float | None = None, replacing: str | None = None) -> str:
        """A usable token: the current one, or a new one if it is missing, older than
        ``fresh_after`` seconds, or equal to ``replacing`` (rejected by the server)."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            token = self._token
            stale = (
                token is None
                or (replacing is not None and token == replacing)
                or (
                    fresh_after is not None
                    and self._fetched_at is not None
                    and loop.time() - self._fetched_at > fresh_after
                )
            )
            if token is not None and not stale:
                return token
            if not self._client._has_credentials():
                if token is not None and self._fixed and replacing is None:
                    return token
                raise UsageError(_NO_CREDENTIALS)
            cause = "first use" if token is None else "renewal"
            if replacing is not None:
                cause = "the server rejected the token"
            result = await self._client.rest.get_websockets_token()
            self._token = result.token
            self._fetched_at = loop.time()
            self._client._emit(TokenRefreshed(endpoint=_PRIVATE, cause=cause))
            return self._token


# --- the client --------------------------------------------------------------------------------


def _money(name: str, value: Decimal | str | int | None) -> str | None:
    """Wire text for an amount: exact, never through a float."""
    if value is None:
        return None
    if isinstance(value, bool | float):
        raise UsageError(f"{name} must be a Decimal, str or int, never a float: {value!r}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise UsageError(f"{name} must be finite, got {value}")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise UsageError(f"{name} must be a Decimal, str or int, got {value!r}")


def _set(**fields: Any) -> dict[str, Any]:
    """Only the fields that were given (None means absent)."""
    return {name: value for name, value in fields.items() if value is not None}


def _add_order_request(
    pair: str, side: str, ordertype: str, volume: Decimal | str | int, **fields: Any
) -> Callable[[str], ClientMessage]:
    """The addOrder request for a token (``fields`` already in wire form; None: absent)."""
    wire_volume = _money("volume", volume)
    if wire_volume is None:
        raise UsageError("volume is required")
    given = _set(**fields)

    def build(token: str) -> ClientMessage:
        return AddOrder(
            token=token, pair=pair, type=side, ordertype=ordertype, volume=wire_volume, **given
        )

    return build


class Client:
    """Kraken's WebSocket API v1 (public and private) and REST API in one async client.

    Credentials come from ``api_key``/``api_secret``, else from the ``KRAKEN_API_KEY`` /
    ``KRAKEN_API_SECRET`` environment variables, or a ready WebSocket ``token`` is used as is.
    ``sandbox="http://127.0.0.1:8080"`` points all three URLs at a krakenws sandbox
    (``ws://.../ws`` and ``ws://.../ws-auth``); otherwise Kraken's production URLs, each
    overridable. ``ssl`` is an :class:`ssl.SSLContext` for TLS endpoints with a private CA.

    Connection policy: ``heartbeat_timeout`` seconds without any data on a connection that has
    subscriptions (or without any reply at all) count as a dead connection; a ping goes out
    after ``ping_interval`` quiet seconds; reconnects follow ``backoff``; outgoing frames are
    paced to ``message_rate`` per second (bursts of ``message_burst``). Every request waits at
    most ``request_timeout`` seconds unless given its own ``timeout``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        token: str | None = None,
        sandbox: str | None = None,
        rest_url: str | None = None,
        ws_url: str | None = None,
        ws_auth_url: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        tier: str = "starter",
        rate_limit: bool = True,
        request_timeout: float = 10.0,
        heartbeat_timeout: float = 10.0,
        ping_interval: float = 5.0,
        backoff: Backoff | None = None,
        message_rate: float = 20.0,
        message_burst: float = 40.0,
        stream_maxsize: int = 100_000,
        pairs: PairRegistry | None = None,
        seed: int | None = None,
    ) -> None:
        if sandbox is not None:
            base = sandbox.rstrip("/")
            ws_base = "wss" + base[5:] if base.startswith("https") else "ws" + base[4:]
            rest_url = rest_url or base
            ws_url = ws_url or f"{ws_base}/ws"
            ws_auth_url = ws_auth_url or f"{ws_base}/ws-auth"
        if api_key is None and api_secret is None:
            api_key = os.environ.get("KRAKEN_API_KEY") or None
            api_secret = os.environ.get("KRAKEN_API_SECRET") or None
        if (api_key is None) != (api_secret is None):
            raise UsageError("give both an API key and its secret, or neither")
        self.rest_url = rest_url or KRAKEN_REST_URL
        self.ws_url = ws_url or KRAKEN_WS_URL
        self.ws_auth_url = ws_auth_url or KRAKEN_WS_AUTH_URL
        self.ssl = ssl
        self.tier = tier
        self.rate_limit = rate_limit
        self.request_timeout = request_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.ping_interval = ping_interval
        self.backoff = backoff or Backoff()
        self.message_rate = message_rate
        self.message_burst = message_burst
        self.stream_maxsize = stream_maxsize
        self._api_key = api_key
        self._api_secret = api_secret
        self._initial_token = token
        self._pairs = pairs
        self._rng = random.Random(seed)
        self.orders = OrderTracker()
        """Every order seen on the private feeds (see :class:`~krakenws.orders.OrderTracker`)."""
        self._closed = False
        self._http: aiohttp.ClientSession | None = None
        self._rest: RestClient | None = None
        self._public: _Connection | None = None
        self._private: _Connection | None = None
        self._tokens_obj: _Tokens | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._event_sinks: list[Stream[ClientEvent]] = []
        self._frame_sinks: dict[str, list[Stream[str]]] = {}
        self._sinks: dict[SubscriptionKey, list[Stream[Any]]] = {}
        self._books: dict[SubscriptionKey, LiveBook] = {}
        self._users: dict[SubscriptionKey, int] = {}
        self._open_orders_sinks: list[Stream[OpenOrders]] = []
        self._own_trades_sinks: list[Stream[OwnTrades]] = []
        self._order_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._unsubscribing: dict[SubscriptionKey, asyncio.Task[Any]] = {}
        self._pairs_lock: asyncio.Lock | None = None
        self._handlers: dict[type[Any], Callable[[_Connection, Any], None]] = {
            BookUpdate: self._on_book_update,
            BookSnapshot: self._on_book_snapshot,
            Ticker: self._on_channel,
            Trade: self._on_channel,
            Spread: self._on_channel,
            Ohlc: self._on_channel,
            Heartbeat: self._on_heartbeat,
            SystemStatus: self._on_system_status,
            OpenOrders: self._on_open_orders,
            OwnTrades: self._on_own_trades,
            LegacyErrorMessage: self._on_legacy_error,
        }
        for reply_type in Reply.__args__:
            self._handlers[reply_type] = self._on_reply
        self.system_status: str | None = None
        """The latest ``systemStatus`` seen on any connection."""

    # --- lifecycle ---

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close both connections, every stream and book, and the REST client.

        Every stream ends as if closed by its reader (an ``async for`` over it finishes,
        public and private alike); a wait on a book or an order raises
        :class:`~krakenws.errors.ConnectionClosedError`. A connection that gives up, by
        contrast, fails its streams with that error: data stopped that nobody stopped.
        """
        if self._closed:
            return
        self._closed = True
        for connection in (self._public, self._private):
            if connection is not None:
                await connection.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        closed = ConnectionClosedError("the client is closed")
        streams: list[Stream[Any]] = [
            *(stream for sinks in self._sinks.values() for stream in sinks),
            *self._open_orders_sinks,
            *self._own_trades_sinks,
            *self._event_sinks,
        ]
        for stream in streams:
            stream._finish()
        for streams in list(self._frame_sinks.values()):
            for frames in list(streams):
                frames._finish()
        for book in self._books.values():
            book._end(closed)
        for waiters in self._order_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(closed)
        if self._rest is not None:
            await self._rest.close()
        if self._http is not None:
            await self._http.close()
            if self.ssl is not None or "https:" in self.rest_url or "wss:" in self.ws_url:
                # aiohttp's graceful shutdown: TLS transports finish closing just after.
                await asyncio.sleep(0.25)

    async def _session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ConnectionClosedError("the client is closed")
        return self._http_session()

    def _http_session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    @property
    def rest(self) -> RestClient:
        """The REST client (same credentials, same error tree)."""
        if self._rest is None:
            self._rest = RestClient(
                url=self.rest_url,
                api_key=self._api_key,
                api_secret=self._api_secret,
                tier=self.tier,
                rate_limit=self.rate_limit,
                timeout=self.request_timeout,
                ssl=self.ssl,
                session=self._http_session(),
                pairs=self._pairs,
            )
        return self._rest

    @property
    def _tokens(self) -> _Tokens:
        if self._tokens_obj is None:
            self._tokens_obj = _Tokens(self, self._initial_token)
        return self._tokens_obj

    def _has_credentials(self) -> bool:
        return self._api_key is not None and self._api_secret is not None

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("krakenws background task failed: %r", task.exception())

    def _connection(self, endpoint: str) -> _Connection:
        if self._closed:
            raise ConnectionClosedError("the client is closed")
        if endpoint == _PUBLIC:
            if self._public is None:
                self._public = _Connection(self, _PUBLIC, self.ws_url)
            return self._public
        if self._private is None:
            self._private = _Connection(self, _PRIVATE, self.ws_auth_url)
        return self._private

    # --- events ---

    def _emit(self, event: ClientEvent) -> None:
        log.debug("%s", event)
        for stream in self._event_sinks[:]:
            stream._push(event)

    def events(self) -> Stream[ClientEvent]:
        """A stream of every :class:`ClientEvent` from now on (connects, resyncs, gaps...)."""
        stream: Stream[ClientEvent] = Stream("events", maxsize=self.stream_maxsize)
        self._event_sinks.append(stream)
        stream._on_close = lambda: _discard(self._event_sinks, stream)
        return stream

    def frames(self, endpoint: str = _PUBLIC) -> Stream[str]:
        """Every raw text frame received on one endpoint (``public``/``private``), as sent."""
        if endpoint not in (_PUBLIC, _PRIVATE):
            raise UsageError("endpoint is 'public' or 'private'")
        stream: Stream[str] = Stream(f"{endpoint} frames", maxsize=self.stream_maxsize)
        sinks = self._frame_sinks.setdefault(endpoint, [])
        sinks.append(stream)
        stream._on_close = lambda: _discard(sinks, stream)
        return stream

    def _connection_opened(self, connection: _Connection) -> None:
        if connection.endpoint == _PUBLIC:
            for book in self._books.values():
                if book.synced:
                    book._unsync()
                    self._emit(
                        BookResync(
                            endpoint=_PUBLIC, pair=book.pair, depth=book.depth, cause="reconnect"
                        )
                    )
        else:
            connection._healing.clear()

    def _connection_gave_up(self, connection: _Connection, error: BaseException) -> None:
        failure = ConnectionClosedError(f"{connection.endpoint} connection gave up: {error}")
        for key, sinks in list(self._sinks.items()):
            if _endpoint_of(key) == connection.endpoint:
                for stream in list(sinks):
                    stream._fail(failure)
        if connection.endpoint == _PUBLIC:
            for book in self._books.values():
                book._end(failure)
        else:
            private: list[Stream[Any]] = [*self._open_orders_sinks, *self._own_trades_sinks]
            for stream in private:
                stream._fail(failure)
            for waiters in self._order_waiters.values():
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(failure)

    def _subscription_confirmed(self, connection: _Connection, key: SubscriptionKey) -> None:
        if self._users.get(key, 0) <= 0 and key.channel_name not in PRIVATE_CHANNELS:
            # Confirmed after every user left: drop it again.
            self._drop_subscription(connection, key)

    def _drop_subscription(self, connection: _Connection, key: SubscriptionKey) -> None:
        """Unsubscribe ``key`` in the background; a new user of it waits for that first."""
        task = self._spawn(self._unsubscribe(connection, key))
        self._unsubscribing[key] = task

        def done(_: asyncio.Task[Any]) -> None:
            if self._unsubscribing.get(key) is task:
                del self._unsubscribing[key]

        task.add_done_callback(done)

    def _subscription_ended(
        self,
        connection: _Connection,
        key: SubscriptionKey,
        why: str,
        error: KrakenError | None,
    ) -> None:
        """The server ended (or refused to restore) a subscription: say so, and end the public
        streams and book using it with ``error`` (if given), so none waits in silence; a new
        stream for it subscribes afresh."""
        if self._users.get(key, 0) <= 0:
            return
        self._emit(
            SubscriptionLost(
                endpoint=connection.endpoint,
                channel=key.channel_name,
                pair=key.pair,
                reason=why,
            )
        )
        if error is not None:
            self._end_users(connection, key, error)

    def _end_users(self, connection: _Connection, key: SubscriptionKey, error: KrakenError) -> None:
        """End the public streams and the book that use ``key`` with ``error``."""
        if key.pair is None:
            return
        for stream in list(self._sinks.get(key, ())):
            stream._fail(error)  # its close hook gives its use of the key back
        book = self._books.pop(key, None)
        if book is not None:
            book._end(error)
            self._release(connection, [key])

    # --- dispatch (the hot path) ---

    def _on_book_update(self, connection: _Connection, message: BookUpdate) -> None:
        connection._feed_received += 1
        book = self._books.get(SubscriptionKey(message.channel_name, message.pair))
        if book is None or not book.synced:
            return
        try:
            book.book.apply_update(message.asks, message.bids, message.checksum)
        except BookError as error:
            self._book_failed(connection, book, error)
            return
        book.update_count += 1
        book._changed()

    def _on_book_snapshot(self, connection: _Connection, message: BookSnapshot) -> None:
        connection._feed_received += 1
        book = self._books.get(SubscriptionKey(message.channel_name, message.pair))
        if book is None:
            return
        try:
            book._snapshot(message)
        except BookError as error:
            self._book_failed(connection, book, error)
            return
        self._emit(
            BookSynced(endpoint=_PUBLIC, pair=book.pair, depth=book.depth, checksum=book.checksum())
        )

    def _book_failed(self, connection: _Connection, book: LiveBook, error: BookError) -> None:
        book.last_error = error
        book._unsync()
        cause = (
            "checksum mismatch"
            if isinstance(error, ChecksumMismatchError)
            else f"{type(error).__name__}: {error}"
        )
        self._emit(BookResync(endpoint=_PUBLIC, pair=book.pair, depth=book.depth, cause=cause))
        self._spawn(self._resubscribe(connection, SubscriptionKey(f"book-{book.depth}", book.pair)))

    def _on_channel(self, connection: _Connection, message: Ticker | Trade | Spread | Ohlc) -> None:
        connection._feed_received += 1
        sinks = self._sinks.get(SubscriptionKey(message.channel_name, message.pair))
        if sinks:
            for stream in sinks[:]:  # a stream that overflows leaves the list
                stream._push(message)

    def _on_heartbeat(self, connection: _Connection, message: Heartbeat) -> None:
        connection._feed_received += 1

    def _on_system_status(self, connection: _Connection, message: SystemStatus) -> None:
        connection.connection_id = message.connection_id
        greeted = connection._greeted
        if greeted is not None and not greeted.done():
            greeted.set_result(None)
        previous = connection.status
        connection.status = message.status
        self.system_status = message.status
        if previous != message.status:
            self._emit(
                StatusChanged(
                    endpoint=connection.endpoint, status=message.status, previous=previous
                )
            )

    def _on_reply(self, connection: _Connection, message: Reply) -> None:
        connection.on_reply(message)

    def _on_legacy_error(self, connection: _Connection, message: LegacyErrorMessage) -> None:
        if message.error == "Exceeded msg rate":
            connection._pacer.penalise()
        self._emit(ProtocolProblem(endpoint=connection.endpoint, error=message.error))

    def _private_frame_ok(self, connection: _Connection, channel: str, sequence: int) -> bool:
        """Sequence check for a private frame; a gap starts healing and drops the frame."""
        connection._feed_received += 1
        expected = connection.sequences.expected(channel)
        result = connection.sequences.check(channel, sequence)
        if result is SequenceResult.SNAPSHOT:
            if channel in connection._healing:
                connection._healing.discard(channel)
                self._emit(FeedResynced(endpoint=_PRIVATE, channel=channel, cause="fresh snapshot"))
            return True
        if result is SequenceResult.IN_ORDER:
            return channel not in connection._healing
        if result is SequenceResult.GAP:
            if channel not in connection._healing:
                connection._healing.add(channel)
                self._emit(
                    SequenceGap(
                        endpoint=_PRIVATE,
                        channel=channel,
                        expected=expected or 1,
                        received=sequence,
                    )
                )
                self._spawn(self._resubscribe(connection, SubscriptionKey(channel, None)))
            return False
        return False  # stale: already seen

    def _on_open_orders(self, connection: _Connection, message: OpenOrders) -> None:
        if not self._private_frame_ok(connection, "openOrders", message.sequence):
            return
        result = self.orders.apply_open_orders(message)
        if self.rate_limit:
            self._sync_ratecount(message)
        for stream in self._open_orders_sinks[:]:
            stream._push(message)
        self._wake_orders(result.changed)
        if result.vanished:
            self._spawn(self._reconcile(result.vanished))

    def _sync_ratecount(self, message: OpenOrders) -> None:
        """Adopt the server's counter from ``ratecount`` (openOrders with ratecounter)."""
        for txid, info in message.orders:
            if info.ratecount is UNSET:
                continue
            key = self._rate_key(self.orders.state(txid).pair)
            if key is not None:
                with contextlib.suppress(UsageError, ValueError, ArithmeticError):
                    self.rest.trading_mirror.sync(key, info.ratecount, _micros())

    def _on_own_trades(self, connection: _Connection, message: OwnTrades) -> None:
        if not self._private_frame_ok(connection, "ownTrades", message.sequence):
            return
        fresh = self.orders.apply_own_trades(message)
        if fresh and self._own_trades_sinks:
            frame = (
                message
                if len(fresh) == len(message.trades)
                else OwnTrades(trades=fresh, sequence=message.sequence)
            )
            for stream in self._own_trades_sinks[:]:
                stream._push(frame)
        self._wake_orders(trade.ordertxid for _, trade in fresh)

    def _wake_orders(self, txids: Iterable[str]) -> None:
        if not self._order_waiters:
            return
        for txid in txids:
            for waiter in self._order_waiters.pop(txid, []):
                if not waiter.done():
                    waiter.set_result(None)

    # --- subscription plumbing ---

    async def _resubscribe(self, connection: _Connection, key: SubscriptionKey) -> None:
        """Unsubscribe then subscribe one key again: a fresh snapshot (book or private feed)."""
        subscription = connection.registry.subscription(key)
        if subscription is None:
            return
        pairs = None if key.pair is None else [key.pair]
        with contextlib.suppress(KrakenError):
            await connection.unsubscribe(
                Unsubscribe(pair=pairs or UNSET, subscription=subscription), timeout=5.0
            )
        if self._users.get(key, 0) <= 0 and key.pair is not None:
            return
        if subscription.name == "ownTrades":
            subscription = msgspec.structs.replace(subscription, snapshot=True)
        try:
            await connection.subscribe(
                Subscribe(pair=pairs or UNSET, subscription=subscription),
                timeout=self.request_timeout,
            )
        except KrakenError as error:
            self._emit(
                SubscriptionLost(
                    endpoint=connection.endpoint,
                    channel=key.channel_name,
                    pair=key.pair,
                    reason=f"resubscribe failed: {error}",
                )
            )
            if isinstance(error, ExchangeError):  # refused; a lost connection resubscribes
                self._end_users(connection, key, error)

    async def _unsubscribe(self, connection: _Connection, key: SubscriptionKey) -> None:
        subscription = connection.registry.subscription(key)
        if subscription is None:
            return
        await connection.unsubscribe(
            Unsubscribe(pair=[key.pair] if key.pair else UNSET, subscription=subscription),
            timeout=self.request_timeout,
        )

    def _release(self, connection: _Connection, keys: Sequence[SubscriptionKey]) -> None:
        dropped = []
        for key in keys:
            users = self._users.get(key, 0) - 1
            if users > 0:
                self._users[key] = users
                continue
            self._users.pop(key, None)
            dropped.append(key)
        if dropped and not self._closed:
            for key in dropped:
                self._drop_subscription(connection, key)

    async def _registry(self) -> PairRegistry | None:
        if self._pairs is not None:
            return self._pairs
        if self._pairs_lock is None:
            self._pairs_lock = asyncio.Lock()
        async with self._pairs_lock:
            if self._pairs is None:
                try:
                    self._pairs = await self.rest.pair_registry()
                except (TransportError, ExchangeError, ProtocolError) as error:
                    log.warning("pair list unavailable (%s); pair names are sent as given", error)
                    return None
        return self._pairs

    async def resolve_pairs(self, pairs: Iterable[str]) -> list[str]:
        """WebSocket names (``XBT/USD``) for any spelling (``BTC/USD``, ``XBTUSD``...).

        Raises :class:`~krakenws.errors.UnknownPairError` for a name the exchange does not list.
        """
        names = list(pairs)
        if not names:
            raise UsageError("name at least one pair")
        registry = await self._registry()
        if registry is None:
            return [name.upper() for name in names]
        return [registry.resolve(name).wsname for name in names]

    async def _price_decimals(self, pair: str) -> int | None:
        registry = await self._registry()
        if registry is None:
            return None
        found = registry.get(pair)
        return None if found is None else found.ws_price_decimals

    async def _open_public(
        self, subscription: Subscription, pairs: Sequence[str], timeout: float | None
    ) -> tuple[_Connection, list[SubscriptionKey]]:
        names = list(dict.fromkeys(await self.resolve_pairs(pairs)))  # BTC/USD = XBT/USD
        connection = self._connection(_PUBLIC)
        channel = channel_name_of(subscription)
        keys = [SubscriptionKey(channel, name) for name in names]
        new = [key.pair for key in keys if self._users.get(key, 0) == 0 and key.pair]
        for key in keys:
            self._users[key] = self._users.get(key, 0) + 1
        try:
            leaving = [self._unsubscribing[k] for k in keys if k in self._unsubscribing]
            if leaving:  # subscribed after that unsubscribe, not before it (fresh snapshots)
                await asyncio.wait(leaving)
            if new:
                await connection.subscribe(
                    Subscribe(pair=new, subscription=subscription),
                    timeout=timeout if timeout is not None else self.request_timeout,
                )
            else:
                await connection.ready(timeout if timeout is not None else self.request_timeout)
        except BaseException:
            self._release(connection, keys)
            raise
        return connection, keys

    def _stream(
        self, subscription: Subscription, pairs: Sequence[str], timeout: float | None
    ) -> Opening[Stream[Any]]:
        async def open_stream() -> Stream[Any]:
            connection, keys = await self._open_public(subscription, pairs, timeout)
            name = f"{channel_name_of(subscription)} {','.join(k.pair or '' for k in keys)}"
            stream: Stream[Any] = Stream(name, maxsize=self.stream_maxsize)
            for key in keys:
                self._sinks.setdefault(key, []).append(stream)

            def closed() -> None:
                for key in keys:
                    sinks = self._sinks.get(key)
                    if sinks is not None:
                        _discard(sinks, stream)
                        if not sinks:
                            del self._sinks[key]
                self._release(connection, keys)

            stream._on_close = closed
            return stream

        return Opening(open_stream())

    # --- public data ---

    def ticker(self, *pairs: str, timeout: float | None = None) -> Opening[Stream[Ticker]]:
        """Stream :class:`~krakenws.protocol.messages.Ticker` messages for ``pairs``."""
        return cast(
            Opening[Stream[Ticker]], self._stream(Subscription(name="ticker"), pairs, timeout)
        )

    def trades(self, *pairs: str, timeout: float | None = None) -> Opening[Stream[Trade]]:
        """Stream :class:`~krakenws.protocol.messages.Trade` batches for ``pairs``."""
        return cast(
            Opening[Stream[Trade]], self._stream(Subscription(name="trade"), pairs, timeout)
        )

    def spreads(self, *pairs: str, timeout: float | None = None) -> Opening[Stream[Spread]]:
        """Stream :class:`~krakenws.protocol.messages.Spread` (best bid/ask) for ``pairs``."""
        return cast(
            Opening[Stream[Spread]], self._stream(Subscription(name="spread"), pairs, timeout)
        )

    def ohlc(
        self, *pairs: str, interval: int = 1, timeout: float | None = None
    ) -> Opening[Stream[Ohlc]]:
        """Stream :class:`~krakenws.protocol.messages.Ohlc` candles (``interval`` minutes)."""
        if interval not in (1, 5, 15, 30, 60, 240, 1440, 10080, 21600):
            raise UsageError(f"interval {interval} is not one of Kraken's")
        return cast(
            Opening[Stream[Ohlc]],
            self._stream(Subscription(name="ohlc", interval=interval), pairs, timeout),
        )

    def book(
        self, pair: str, depth: int = 10, *, timeout: float | None = None
    ) -> Opening[LiveBook]:
        """A :class:`LiveBook` for ``pair`` at ``depth`` (10, 25, 100, 500, 1000), once its
        snapshot has arrived. Books of the same pair and depth are shared."""
        if depth not in (10, 25, 100, 500, 1000):
            raise UsageError(f"depth {depth} is not one of 10, 25, 100, 500, 1000")

        async def open_book() -> LiveBook:
            wait = timeout if timeout is not None else self.request_timeout
            [name] = await self.resolve_pairs([pair])
            key = SubscriptionKey(f"book-{depth}", name)
            book = self._books.get(key)
            if book is not None and not book._closed:
                book._users += 1  # one subscription user per LiveBook, however many holders
                try:
                    await book.wait_synced(wait)
                except BaseException:
                    book.close()
                    raise
                return book
            decimals = await self._price_decimals(name)
            connection = self._connection(_PUBLIC)

            def release(done: LiveBook) -> None:
                if self._books.get(key) is done:
                    del self._books[key]
                self._release(connection, [key])

            book = LiveBook(name, depth, price_decimals=decimals, release=release)
            self._books[key] = book
            try:
                await self._open_public(Subscription(name="book", depth=depth), [name], wait)
            except BaseException:  # _open_public gave its subscription use back
                book._end(None)
                if self._books.get(key) is book:
                    del self._books[key]
                raise
            try:
                await book.wait_synced(wait)
            except BaseException:
                book.close()  # this opener's share: the last one out unsubscribes
                raise
            return book

        return Opening(open_book())

    async def ping(
        self, *, endpoint: str = _PUBLIC, reqid: int | None = None, timeout: float | None = None
    ) -> float:
        """An application-level ping (with ``reqid`` if given, else the client's next one);
        returns the round trip in seconds."""
        wait = timeout if timeout is not None else self.request_timeout
        connection = self._connection(endpoint)
        await connection.ready(wait)
        loop = asyncio.get_running_loop()
        started = loop.time()
        replies = await connection.request(Ping() if reqid is None else Ping(reqid=reqid), wait)
        reply = replies[-1]
        if isinstance(reply, ErrorEvent):
            raise error_from_kraken(reply.error_message)
        return loop.time() - started

    # --- private data ---

    async def _private_ready(self, timeout: float | None) -> _Connection:
        if not self._has_credentials() and self._initial_token is None:
            raise UsageError(_NO_CREDENTIALS)
        connection = self._connection(_PRIVATE)
        await connection.ready(timeout)
        return connection

    async def _private_subscribe(self, subscription: Subscription, timeout: float | None) -> None:
        wait = timeout if timeout is not None else self.request_timeout
        connection = await self._private_ready(wait)
        key = SubscriptionKey(subscription.name, None)
        if connection.registry.state(key) is SubscriptionState.ACTIVE:
            return
        await connection.subscribe(Subscribe(subscription=subscription), timeout=wait)

    def _check_private_options(self, wanted: Subscription) -> None:
        """Refuse a stream asking for private-feed options the running subscription lacks:
        Kraken keeps one subscription per channel on a connection, so it would silently not
        get them. (``ratecounter`` off on a feed that has it only adds a field: allowed.)"""
        connection = self._private
        active = (
            None
            if connection is None
            else connection.registry.subscription(SubscriptionKey(wanted.name, None))
        )
        if active is None:
            return
        if wanted.name == "ownTrades":
            have = active.consolidate_taker is not False  # absent: Kraken's default, true
            if (wanted.consolidate_taker is not False) != have:
                raise UsageError(
                    f"ownTrades already runs with consolidate_taker={have} (Kraken keeps one"
                    " subscription per channel on a connection): open this stream with that"
                    " value, or before anything else (order tracking included) subscribes it"
                )
        elif wanted.ratecounter is True and active.ratecounter is not True:
            raise UsageError(
                "openOrders already runs without ratecounter (Kraken keeps one subscription per"
                " channel on a connection): open the first openOrders stream with"
                " ratecounter=True"
            )

    def _live_sequence(self, channel: str) -> int | None:
        """The last sequence of a private feed already subscribed and past its snapshot
        (None if it is not, or is healing: then a real snapshot is still to come)."""
        connection = self._private
        if connection is None or not connection.online or channel in connection._healing:
            return None
        if connection.registry.state(SubscriptionKey(channel, None)) is not (
            SubscriptionState.ACTIVE
        ):
            return None
        expected = connection.sequences.expected(channel)
        return None if expected is None else expected - 1

    def open_orders(
        self, *, ratecounter: bool = False, timeout: float | None = None
    ) -> Opening[Stream[OpenOrders]]:
        """Stream ``openOrders`` frames, a snapshot of the open orders first.

        The subscription is shared; asking for ``ratecounter`` while the feed runs without it
        raises :class:`~krakenws.errors.UsageError` (order tracking subscribes with it). A
        stream opened while the feed already runs (another stream, or order handles, use it)
        starts with a snapshot rebuilt from what the feed sent so far (each open order's
        entry with its updates merged; the sequence of the last frame it reflects).
        """

        subscription = Subscription(name="openOrders", ratecounter=ratecounter or UNSET)
        return Opening(
            self._private_stream(
                subscription, self._open_orders_sinks, self.orders.open_orders_snapshot, timeout
            )
        )

    def own_trades(
        self,
        *,
        snapshot: bool = True,
        consolidate_taker: bool = True,
        timeout: float | None = None,
    ) -> Opening[Stream[OwnTrades]]:
        """Stream ``ownTrades`` frames; every trade id appears once, even across resyncs.

        With ``snapshot`` the stream starts with the last 50 trades. A stream opened while
        the feed already runs gets them from what the feed sent so far (the latest 50 trades
        seen; the sequence of the last frame). ``consolidate_taker`` is the feed's: a stream
        asking for the other value while the feed runs (order tracking subscribes it with
        ``True``) gets :class:`~krakenws.errors.UsageError`, not silently the other kind.
        """
        subscription = Subscription(
            name="ownTrades", snapshot=snapshot, consolidate_taker=consolidate_taker
        )
        rebuilt = self.orders.own_trades_snapshot if snapshot else None
        return Opening(self._private_stream(subscription, self._own_trades_sinks, rebuilt, timeout))

    async def _private_stream(
        self,
        subscription: Subscription,
        sinks: list[Stream[_Frame]],
        rebuilt: Callable[[int], _Frame] | None,
        timeout: float | None,
    ) -> Stream[_Frame]:
        """A stream of one private feed, subscribed if it is not yet. Joining a feed that
        already runs, it starts with ``rebuilt(last sequence)`` (None: no snapshot wanted)."""
        self._check_private_options(subscription)
        stream: Stream[_Frame] = Stream(subscription.name, maxsize=self.stream_maxsize)
        sinks.append(stream)
        stream._on_close = lambda: _discard(sinks, stream)
        if rebuilt is not None:
            sequence = self._live_sequence(subscription.name)
            if sequence is not None:
                stream._push(rebuilt(sequence))
        try:
            await self._private_subscribe(subscription, timeout)
        except BaseException:
            stream.close()
            raise
        return stream

    async def track_orders(self, *, timeout: float | None = None) -> None:
        """Subscribe openOrders and ownTrades so :attr:`orders` and handles stay current
        (done automatically by :meth:`add_order`)."""
        await self._private_subscribe(Subscription(name="openOrders", ratecounter=True), timeout)
        await self._private_subscribe(
            Subscription(name="ownTrades", snapshot=False, consolidate_taker=True), timeout
        )

    async def _renew_private_subscriptions(
        self, connection: _Connection, status: SubscriptionStatus
    ) -> None:
        """A private subscribe was refused with ``ESession:Invalid session``: a new token, and
        that subscription asked for again. A renewed token refused too fails it: at most
        ``_TOKEN_RENEWALS`` renewals until a private subscription is confirmed."""
        name = status.channel_name
        if not isinstance(name, str):
            name = status.subscription.name if status.subscription is not UNSET else "openOrders"
        key = SubscriptionKey(name, None)
        old = connection._token
        connection._renewals += 1
        try:
            if connection._renewals > _TOKEN_RENEWALS:
                raise InvalidSessionError("ESession:Invalid session (a renewed token too)")
            token = await self._tokens.get(replacing=old)
        except (KrakenError, UsageError) as error:
            _resolve(connection._sub_waiters, key, InvalidSessionError("ESession:Invalid session"))
            self._emit(
                SubscriptionLost(
                    endpoint=_PRIVATE, channel=key.channel_name, pair=None, reason=str(error)
                )
            )
            return
        if token != old:
            connection._token = token
            self._emit(TokenRefreshed(endpoint=_PRIVATE, cause="subscription refused"))
        subscription = connection.registry.subscription(key)
        if subscription is None or not connection.online:
            return  # no longer wanted, or the next connection subscribes it with the new token
        request = Subscribe(subscription=msgspec.structs.replace(subscription, token=token))
        connection.registry.want(request)  # pending again (the refusal marked it failed)
        await connection.send_subscribe(request)

    async def _reconcile(self, txids: list[str]) -> None:
        """Orders that vanished from a fresh snapshot ended unseen: ask REST how."""
        if not self._has_credentials():
            return
        try:
            result = await self.rest.private("QueryOrders", txid=",".join(txids), trades=False)
        except KrakenError as error:
            log.warning("could not reconcile %s: %s", txids, error)
            return
        settled = []
        for txid, info in dict(result).items():
            if not isinstance(info, dict):
                continue
            status = str(info.get("status", "unknown"))
            self.orders.settle(
                txid,
                status,
                vol_exec=_text(info.get("vol_exec")),
                cost=_text(info.get("cost")),
                fee=_text(info.get("fee")),
                avg_price=_text(info.get("price")),
                cancel_reason=_text(info.get("reason")),
            )
            settled.append(txid)
        if settled:
            self._emit(OrdersReconciled(endpoint=_PRIVATE, txids=tuple(settled)))
            self._wake_orders(settled)

    async def _wait_order(
        self, txid: str, predicate: Callable[[OrderState], bool], timeout: float | None
    ) -> OrderState:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    state = self.orders.state(txid)
                    if predicate(state):
                        return state
                    if self._closed:
                        raise ConnectionClosedError("the client is closed")
                    private = self._private
                    if private is not None and private._gave_up is not None:
                        raise ConnectionClosedError(
                            f"order {txid}: the private connection gave up"
                        ) from private._gave_up
                    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    waiters = self._order_waiters.setdefault(txid, [])
                    waiters.append(waiter)
                    try:
                        await waiter
                    finally:  # timed out or cancelled: no stale future left behind
                        if waiter in waiters:
                            waiters.remove(waiter)
                            if not waiters and self._order_waiters.get(txid) is waiters:
                                del self._order_waiters[txid]
        except TimeoutError:
            state = self.orders.state(txid)
            raise KrakenTimeoutError(
                f"order {txid}: still {state.status} after {timeout} s"
            ) from None

    # --- trading ---

    async def _trade(
        self,
        build: Callable[[str], ClientMessage],
        timeout: float | None,
        charges: Sequence[tuple[str, Decimal]] = (),
    ) -> Reply:
        """Send a trading request; its (last) reply."""
        return (await self._trade_replies(build, timeout, charges))[-1]

    def _rate_key(self, wsname: str | None) -> str | None:
        """The key the trading-rate mirror counts a pair under (its REST key)."""
        if wsname is None:
            return None
        found = self._pairs.get(wsname) if self._pairs is not None else None
        return found.key if found is not None else wsname

    def _order_charges(
        self, kind: OrderCostKind, txids: Iterable[str]
    ) -> list[tuple[str, Decimal]]:
        """Mirror charges of amending, editing or cancelling orders, summed per pair (an order
        the mirror does not track is charged on the pair the order feeds gave it)."""

        def pair_of(txid: str) -> str | None:
            state = self.orders.get(txid)
            return self._rate_key(None if state is None else state.pair)

        return self.rest.trading_mirror.order_charges(kind, txids, _micros(), pair_of=pair_of)

    async def _trade_replies(
        self,
        build: Callable[[str], ClientMessage],
        timeout: float | None,
        charges: Sequence[tuple[str, Decimal]] = (),
        *,
        cancel: bool = False,
    ) -> list[Reply]:
        """Send a trading request with the current token; renew the token once if rejected.

        ``charges`` are (pair key, cost) for the trading-rate mirror: with ``rate_limit`` on,
        the call first waits until each fits under the tier's threshold (spec 7.6), so that
        Kraken never has to answer ``EOrder:Rate limit exceeded``.
        """
        wait = timeout if timeout is not None else self.request_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        connection = await self._private_ready(wait)
        token = connection._token or await self._tokens.get()
        renewed = False
        refusals = 0
        while True:
            await self._reserve(charges, cancel=cancel, deadline=deadline)
            replies = await connection.request(build(token), max(deadline - loop.time(), 0.0))
            if self.rate_limit:
                answered = _micros()
                for key, _ in charges:  # the server charged it by now, at the latest
                    self.rest.trading_mirror.settle(key, answered)
            error = _reply_error(replies)
            if error is None:
                return replies
            if isinstance(error, InvalidSessionError) and not renewed and self._has_credentials():
                renewed = True
                token = await self._tokens.get(replacing=token)
                connection._token = token
                self._emit(TokenRefreshed(endpoint=_PRIVATE, cause="trading request refused"))
                continue
            if (
                isinstance(error, OrderRateLimitError)
                and self.rate_limit
                and charges
                and not cancel  # a multi-order cancel may have partly happened: never resend
            ):
                # Refused outright (nothing happened), so trying again is safe: the counter
                # stands at the threshold (other clients of the account spent it); wait it down.
                refusals += 1
                if refusals <= _RATE_RETRIES:
                    mirror = self.rest.trading_mirror
                    for key, _ in charges:
                        mirror.sync(key, mirror.tier.threshold, _micros())
                    continue
            if isinstance(error, MessageRateError):
                connection._pacer.penalise()
            raise error

    async def _reserve(
        self, charges: Sequence[tuple[str, Decimal]], *, cancel: bool, deadline: float
    ) -> None:
        """Wait until every charge fits the trading-rate mirror, then book it.

        Nothing is booked while waiting, so a caller cancelled meanwhile leaves no charge
        behind; a wait that would pass ``deadline`` (loop time) fails at once.
        """
        if not self.rate_limit or not charges:
            return
        mirror = self.rest.trading_mirror
        loop = asyncio.get_running_loop()
        while (delay := mirror.take(charges, _micros(), cancel=cancel)) > 0:
            left = deadline - loop.time()
            if delay > left:
                raise KrakenTimeoutError(
                    f"the trading rate counter needs {delay:.1f} s to fit this request, "
                    f"more than the {max(left, 0.0):.1f} s left of its timeout"
                )
            await asyncio.sleep(delay)

    async def request(self, message: ClientMessage, *, timeout: float | None = None) -> list[Reply]:
        """Send any prepared trading request (``AddOrder``, ``CancelOrder``... from
        :mod:`krakenws.protocol.messages`) on the private connection; returns its replies.

        Its ``token`` is replaced by the client's current one (pass ``token=""``) and renewed
        once if Kraken answers ``ESession:Invalid session``; a refusal raises the mapped
        :class:`~krakenws.errors.ExchangeError`. This is the escape hatch for fields the
        typed calls do not take; prefer :meth:`add_order` and friends, which also follow
        the trading-rate mirror and return handles.
        """
        if not isinstance(
            message,
            AddOrder | EditOrder | AmendOrder | CancelOrder | CancelAll | CancelAllOrdersAfter,
        ):
            raise UsageError(f"{type(message).__name__} is not a trading request")
        trading = message

        def build(token: str) -> ClientMessage:
            return msgspec.structs.replace(trading, token=token)

        return await self._trade_replies(build, timeout)

    async def add_order(
        self,
        pair: str,
        side: str,
        ordertype: str,
        volume: Decimal | str | int,
        *,
        price: Decimal | str | int | None = None,
        price2: Decimal | str | int | None = None,
        leverage: Decimal | str | int | None = None,
        reduce_only: bool | None = None,
        oflags: str | Iterable[str] | None = None,
        starttm: str | int | None = None,
        expiretm: str | int | None = None,
        deadline: str | None = None,
        userref: int | None = None,
        cl_ord_id: str | None = None,
        stp_type: str | None = None,
        timeinforce: str | None = None,
        close_ordertype: str | None = None,
        close_price: Decimal | str | int | None = None,
        close_price2: Decimal | str | int | None = None,
        track: bool = True,
        timeout: float | None = None,
    ) -> OrderHandle:
        """Place an order (spec 6.1); returns a handle following it on the private feeds.

        Amounts are Decimals, ints or exact strings (relative prices like ``"+1.5"`` or
        ``"#2%"`` pass as written); floats are refused. ``track=False`` skips subscribing the
        private feeds (the handle then only knows the txid).
        """
        [name] = await self.resolve_pairs([pair])
        if track:
            await self.track_orders(timeout=timeout)
        build = _add_order_request(
            name,
            side,
            ordertype,
            volume,
            price=_money("price", price),
            price2=_money("price2", price2),
            leverage=_money("leverage", leverage),
            reduce_only=reduce_only,
            oflags=oflags if oflags is None or isinstance(oflags, str) else ",".join(oflags),
            starttm=None if starttm is None else str(starttm),
            expiretm=None if expiretm is None else str(expiretm),
            deadline=deadline,
            userref=None if userref is None else str(userref),
            cl_ord_id=cl_ord_id,
            stp_type=stp_type,
            timeinforce=timeinforce,
            close_ordertype=close_ordertype,
            close_price=_money("close_price", close_price),
            close_price2=_money("close_price2", close_price2),
        )
        key = self._rate_key(name) or name
        reply = await self._trade(build, timeout, [(key, ADD_COST)])
        assert isinstance(reply, AddOrderStatus)
        if not isinstance(reply.txid, str):
            raise ProtocolError("addOrderStatus without a txid")
        self.rest.trading_mirror.track_order(
            reply.txid, key, _micros(), userref=userref, cl_ord_id=cl_ord_id
        )
        descr = reply.descr if isinstance(reply.descr, str) else None
        return OrderHandle(self, reply.txid, descr)

    async def validate_order(
        self,
        pair: str,
        side: str,
        ordertype: str,
        volume: Decimal | str | int,
        *,
        price: Decimal | str | int | None = None,
        price2: Decimal | str | int | None = None,
        oflags: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Check an order without placing it (``validate``); returns Kraken's description."""
        [name] = await self.resolve_pairs([pair])
        build = _add_order_request(
            name,
            side,
            ordertype,
            volume,
            price=_money("price", price),
            price2=_money("price2", price2),
            oflags=oflags,
            validate=True,
        )
        reply = await self._trade(build, timeout)
        assert isinstance(reply, AddOrderStatus)
        return reply.descr if isinstance(reply.descr, str) else ""

    async def edit_order(
        self,
        orderid: str,
        pair: str,
        *,
        volume: Decimal | str | int | None = None,
        price: Decimal | str | int | None = None,
        price2: Decimal | str | int | None = None,
        oflags: str | None = None,
        newuserref: int | None = None,
        timeout: float | None = None,
    ) -> OrderHandle:
        """Replace an order by a new one (spec 6.2); returns the new order's handle."""
        [name] = await self.resolve_pairs([pair])
        fields = _set(
            volume=_money("volume", volume),
            price=_money("price", price),
            price2=_money("price2", price2),
            oflags=oflags,
            newuserref=None if newuserref is None else str(newuserref),
        )

        def build(token: str) -> ClientMessage:
            return EditOrder(token=token, orderid=orderid, pair=name, **fields)

        reply = await self._trade(build, timeout, self._order_charges("edit", [orderid]))
        assert isinstance(reply, EditOrderStatus)
        if not isinstance(reply.txid, str):
            raise ProtocolError("editOrderStatus without a txid")
        mirror = self.rest.trading_mirror
        userref = newuserref if newuserref is not None else mirror.order_userref(orderid)
        mirror.forget_order(orderid)
        mirror.track_order(reply.txid, self._rate_key(name) or name, _micros(), userref=userref)
        return OrderHandle(self, reply.txid, reply.descr if isinstance(reply.descr, str) else None)

    async def amend_order(
        self,
        *,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        volume: Decimal | str | int | None = None,
        display_volume: Decimal | str | int | None = None,
        limit_price: Decimal | str | int | None = None,
        trigger_price: Decimal | str | int | None = None,
        post_only: bool | None = None,
        pair: str | None = None,
        deadline: str | None = None,
        timeout: float | None = None,
    ) -> str | None:
        """Change an order in place, keeping its txid (spec 6.3); returns the amend id."""
        if (txid is None) == (cl_ord_id is None):
            raise UsageError("give exactly one of txid and cl_ord_id")
        name = None if pair is None else (await self.resolve_pairs([pair]))[0]
        fields = _set(
            txid=txid,
            cl_ord_id=cl_ord_id,
            volume=_money("volume", volume),
            display_volume=_money("display_volume", display_volume),
            limit_price=_money("limit_price", limit_price),
            trigger_price=_money("trigger_price", trigger_price),
            post_only=post_only,
            pair=name,
            deadline=deadline,
        )

        def build(token: str) -> ClientMessage:
            return AmendOrder(token=token, **fields)

        charges = self._order_charges("amend", [txid]) if txid is not None else []
        reply = await self._trade(build, timeout, charges)
        assert isinstance(reply, AmendOrderStatus)
        if txid is not None:
            self.rest.trading_mirror.order_amended(txid, _micros())
        return reply.amend_id if isinstance(reply.amend_id, str) else None

    async def cancel_order(
        self, *txids: str, cl_ord_ids: Sequence[str] = (), timeout: float | None = None
    ) -> int:
        """Cancel orders by txid (or userref) and/or ``cl_ord_id``; returns how many were
        cancelled. The first refusal (e.g. ``EOrder:Unknown order``) is raised."""
        if not txids and not cl_ord_ids:
            raise UsageError("name at least one order to cancel")

        def build(token: str) -> ClientMessage:
            return CancelOrder(
                token=token,
                txid=list(txids) if txids else UNSET,
                cl_ord_id=list(cl_ord_ids) if cl_ord_ids else UNSET,
            )

        # Charged per order cancelled: by txid, and every tracked order a userref or
        # cl_ord_id names (a cancel by userref may close several).
        named = self.rest.trading_mirror.orders_named(txids, cl_ord_ids)
        targets = list(dict.fromkeys([*named, *(t for t in txids if t not in named)]))
        charges = self._order_charges("cancel", targets)
        replies = await self._trade_replies(build, timeout, charges, cancel=True)
        for txid in targets:
            self.rest.trading_mirror.forget_order(txid)
        return len(replies)

    async def cancel_all(self, *, timeout: float | None = None) -> CancelAllResult:
        """Cancel every open order of the account."""
        reply = await self._trade(lambda token: CancelAll(token=token), timeout)
        assert isinstance(reply, CancelAllStatus)
        self.rest.trading_mirror.forget_all_orders()
        return CancelAllResult(int(reply.count) if reply.count is not UNSET else 0)

    async def cancel_all_orders_after(
        self, timeout_seconds: int, *, timeout: float | None = None
    ) -> DeadManSwitch:
        """Arm (or refresh) the dead man's switch; ``timeout_seconds=0`` disables it."""
        if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int):
            raise UsageError("timeout_seconds must be an int")
        reply = await self._trade(
            lambda token: CancelAllOrdersAfter(token=token, timeout=timeout_seconds), timeout
        )
        assert isinstance(reply, CancelAllOrdersAfterStatus)
        return DeadManSwitch(
            current_time=reply.current_time if isinstance(reply.current_time, str) else "",
            trigger_time=reply.trigger_time if isinstance(reply.trigger_time, str) else "",
        )

    def order(self, txid: str) -> OrderHandle:
        """A handle for an order placed elsewhere (or earlier), followed from now on."""
        return OrderHandle(self, txid, None)


def _reply_error(replies: list[Reply]) -> ExchangeError | None:
    for reply in replies:
        if isinstance(reply, ErrorEvent):
            return error_from_kraken(reply.error_message)
        message = getattr(reply, "error_message", UNSET)
        if getattr(reply, "status", None) == "error":
            return error_from_kraken(message if isinstance(message, str) else "EGeneral:Error")
    return None


def _micros() -> int:
    """Monotonic microseconds, the clock of the rate mirrors (as the REST client's)."""
    return time.monotonic_ns() // 1000


def _endpoint_of(key: SubscriptionKey) -> str:
    return _PRIVATE if key.pair is None else _PUBLIC


def _discard(items: list[Any], item: Any) -> None:
    with contextlib.suppress(ValueError):
        items.remove(item)


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(value)
