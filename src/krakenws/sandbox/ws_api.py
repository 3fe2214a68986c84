"""Kraken WebSocket API v1 on the sandbox: ``/ws`` (public) and ``/ws-auth`` (private, trading).

This module owns the connections: the ``systemStatus`` greeting, request parsing and validation
with Kraken's exact error strings (spec 2.4, in the order of spec 10.4), ping/pong, public
subscriptions with stable channelIDs and one ack per pair, the fan-out of public channel frames
built by :mod:`.public_feeds` from engine events, heartbeats after a second of silence once
something is subscribed, and the idle close. Private channels and trading requests are handed
to :class:`~.ws_private.PrivateFeeds` once the request's token is valid. With a
:class:`~.replay.ReplayFeed` in ``replay``, the public channels of the replayed pairs are served
from a capture instead of the engine (subscriptions, acks and channelIDs stay here).

Each connection has an outbox drained by its own writer task, so engine events (which arrive
synchronously, after each committed command) never wait for a slow client; one frame is
encoded once and shared by every subscriber.

Client messages are rate limited per connection (a token bucket, :data:`MESSAGE_BURST` then
:data:`MESSAGES_PER_SECOND`; beyond it ``Exceeded msg rate``), except on the sandbox's own
``unlimited`` tier: that tier is for load tests, and lifts this limit along with the trading
rate counter and open-order caps. Kraken's tiers (starter, intermediate, pro) keep it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import msgspec
from aiohttp import WSMsgType, web

from krakenws.errors import ExchangeError, UnknownPairError, UsageError
from krakenws.pairs import Pair
from krakenws.sandbox.engine.events import BookLevelChanged, Event, PublicTrade
from krakenws.sandbox.exchange import Exchange
from krakenws.sandbox.marketdata import OHLC_INTERVALS, MarketData
from krakenws.sandbox.public_feeds import (
    BookFeed,
    ohlc_payload,
    spread_payload,
    ticker_payload,
    trade_payload,
)
from krakenws.sandbox.ws_private import PrivateFeeds

if TYPE_CHECKING:
    from krakenws.sandbox.replay import ReplayFeed

__all__ = ["BOOK_DEPTHS", "SERVER_VERSION", "Connection", "WsApi"]

log = logging.getLogger("krakenws.sandbox.ws")

SERVER_VERSION: Final = "1.9.2"
BOOK_DEPTHS: Final = (10, 25, 100, 500, 1000)
HEARTBEAT_SECONDS: Final = 1.0
IDLE_SECONDS: Final = 60.0
_MAX_REQID: Final = 2**64
_PUBLIC: Final = frozenset({"ticker", "ohlc", "trade", "spread", "book"})
_PRIVATE: Final = frozenset({"openOrders", "ownTrades"})
_TRADING: Final = frozenset(
    {"addOrder", "editOrder", "amendOrder", "cancelOrder", "cancelAll", "cancelAllOrdersAfter"}
)
_FIELDS: Final = {
    "book": {"name", "depth", "rebased"},
    "ohlc": {"name", "interval", "rebased"},
    "ticker": {"name", "rebased"},
    "trade": {"name", "rebased"},
    "spread": {"name", "rebased"},
    "openOrders": {"name", "token", "ratecounter", "rebased"},
    "ownTrades": {"name", "token", "snapshot", "consolidate_taker", "rebased"},
}
_REQID_ERROR: Final = "Reqid field must be a positive integer less than 18446744073709551616"
# Kraken limits client messages per connection ("varies with system load"); the sandbox uses
# a token bucket generous enough for any sane client: bursts of 200, then 50 per second. The
# sandbox's own ``unlimited`` tier (for load tests, not Kraken's) lifts this limit too.
MESSAGE_BURST: Final = 200
MESSAGES_PER_SECOND: Final = 50.0
UNLIMITED_TIER: Final = "unlimited"
_ENCODE = msgspec.json.Encoder().encode
# One decoder for every request (``json.loads`` with options builds a new one per call).
_DECODE_REQUEST = json.JSONDecoder(parse_float=Decimal).decode


class Connection:
    """One client's WebSocket: its outbox, its subscriptions and its liveness."""

    def __init__(
        self, ws: web.WebSocketResponse, *, private: bool, transport: asyncio.BaseTransport | None
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.private = private
        self.connection_id = secrets.randbits(64)
        self.subscriptions: set[tuple[str, str]] = set()  # (channelName, wsname)
        self.private_channels: set[str] = set()
        self.tokens: dict[str, tuple[str, frozenset[str]]] = {}  # token -> (account, permissions)
        self._outbox: deque[str] = deque()
        self._wake = asyncio.Event()
        self.last_sent = time.monotonic()
        self.heartbeats = True
        self.delay = 0.0
        self.closed = False
        self._allowance = float(MESSAGE_BURST)
        self._allowance_at = time.monotonic()

    def admit(self, now: float, *, burst: int, per_second: float) -> bool:
        """Take one message from the connection's rate allowance; False when it is spent."""
        self._allowance = min(burst, self._allowance + (now - self._allowance_at) * per_second)
        self._allowance_at = now
        if self._allowance < 1:
            return False
        self._allowance -= 1
        return True

    def send_json(self, payload: Any) -> None:
        """Queue one frame (a JSON-ready dict or list)."""
        self.send_text(_ENCODE(payload).decode())

    def send_text(self, text: str) -> None:
        """Queue one already-encoded frame."""
        if not self.closed:
            self._outbox.append(text)
            self._wake.set()

    @property
    def subscribed(self) -> bool:
        """Whether anything is subscribed (heartbeats only flow then)."""
        return bool(self.subscriptions or self.private_channels)

    async def write_forever(self) -> None:
        """Drain the outbox; send a heartbeat after a second of silence once subscribed.

        The writer sleeps on ``_wake``, set by :meth:`send_text` and by one timer, armed for
        ``HEARTBEAT_SECONDS`` after the last frame sent (or a full period when that moment has
        passed) and re-armed only once it has fired: no ``wait_for`` per wake-up (a task and a
        timeout for every frame sent).
        """
        ws = self.ws
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def poke() -> None:
            nonlocal timer
            timer = None
            self._wake.set()

        try:
            while not ws.closed:
                if timer is None:
                    delay = self.last_sent + HEARTBEAT_SECONDS - time.monotonic()
                    timer = loop.call_later(delay if delay > 0 else HEARTBEAT_SECONDS, poke)
                await self._wake.wait()
                self._wake.clear()
                await self._drain()
        finally:
            if timer is not None:
                timer.cancel()

    async def _drain(self) -> None:
        ws = self.ws
        if not ws.closed:
            if self.delay:
                await asyncio.sleep(self.delay)
            while self._outbox and not ws.closed:
                await ws.send_str(self._outbox.popleft())
                self.last_sent = time.monotonic()
            if (
                self.heartbeats
                and self.subscribed
                and not ws.closed
                and time.monotonic() - self.last_sent >= HEARTBEAT_SECONDS
            ):
                await ws.send_str('{"event":"heartbeat"}')
                self.last_sent = time.monotonic()


class _IdleTimer:
    """Closes a connection that sent nothing for ``IDLE_SECONDS`` while nothing is subscribed.

    One timer per connection instead of a timeout around every receive (a timeout object and a
    timer handle per message): it fires at the last message received + ``IDLE_SECONDS`` and
    re-arms itself while messages keep coming, or (subscribed) for another full period, as the
    receive timeout did. When the connection is idle and unsubscribed it cancels the serving
    task, blocked in ``receive()``; :meth:`take_fired` tells that cancellation from any other
    and withdraws it, and the task closes the connection (1000 ``idle``).
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.last_received = self.loop.time()
        self._fired = False
        self._handle: asyncio.TimerHandle | None = self.loop.call_at(
            self.last_received + IDLE_SECONDS, self._check
        )

    def _check(self) -> None:
        now = self.loop.time()
        due = self.last_received + IDLE_SECONDS
        if now < due:
            self._handle = self.loop.call_at(due, self._check)
        elif self.connection.subscribed:
            self.last_received = now  # the receive timeout restarted a full period
            self._handle = self.loop.call_at(now + IDLE_SECONDS, self._check)
        else:
            self._handle = None
            if self.task is not None and not self.task.done():
                self._fired = True
                self.task.cancel()

    def take_fired(self) -> bool:
        """Whether the cancellation being handled is this timer's (then withdrawn)."""
        if not self._fired or self.task is None:
            return False
        self._fired = False
        return self.task.uncancel() == 0

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class _Parsed(NamedTuple):
    """A well-formed (un)subscribe request: its channel name, subscription object, pairs, the
    echo a status carries (only well-typed options) and a per-pair option error, if any."""

    name: str
    subscription: dict[str, Any]
    pairs: list[Any]
    shown: dict[str, Any]
    option_error: str | None


class _RequestError(Exception):
    def __init__(self, message: str, **echo: Any) -> None:
        super().__init__(message)
        self.message = message
        self.echo = echo


class WsApi:
    """The v1 WebSocket endpoints of one sandbox exchange."""

    def __init__(self, exchange: Exchange, market_data: MarketData) -> None:
        self.exchange = exchange
        self.market_data = market_data
        self.markets = exchange.engine.markets
        self.private = PrivateFeeds(exchange)
        self.connections: set[Connection] = set()
        self.feeds: dict[str, BookFeed] = {}
        for pair in self.markets:
            feed = BookFeed(pair)
            feed.load(exchange.engine.book(pair.key))
            self.feeds[pair.key] = feed
        self._subscribers: dict[tuple[str, str], set[Connection]] = defaultdict(set)
        self._channel_ids: dict[tuple[str, str], int] = {}
        self._last_best: dict[str, tuple[Any, Any]] = {}
        self._unsubscribe = exchange.subscribe(self.on_events)
        self.refuse_next = 0
        self.corrupt_next: set[str] = set()  # wsnames whose next book checksum is corrupted
        self.message_burst = MESSAGE_BURST
        self.messages_per_second = MESSAGES_PER_SECOND
        # Whether the per-connection message limit applies: not on the sandbox's own
        # ``unlimited`` tier, which exists for load tests.
        self.message_limit = exchange.engine.tier.name != UNLIMITED_TIER
        # Set by the server when a capture is replayed: its pairs' public channels come from it.
        self.replay: ReplayFeed | None = None

    def close(self) -> None:
        """Stop listening to the exchange."""
        self._unsubscribe()
        self.private.close()

    # --- aiohttp handlers ----------------------------------------------------------------------

    async def handle_public(self, request: web.Request) -> web.StreamResponse:
        """``GET /ws``: the public endpoint (like wss://ws.kraken.com)."""
        return await self._serve(request, private=False)

    async def handle_private(self, request: web.Request) -> web.StreamResponse:
        """``GET /ws-auth``: the private endpoint (like wss://ws-auth.kraken.com)."""
        return await self._serve(request, private=True)

    async def _serve(self, request: web.Request, *, private: bool) -> web.StreamResponse:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            raise web.HTTPServiceUnavailable(text="refused by fault injection")
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        connection = Connection(ws, private=private, transport=request.transport)
        self.connections.add(connection)
        connection.send_json(
            {
                "connectionID": connection.connection_id,
                "event": "systemStatus",
                "status": self.exchange.engine.system_status(),
                "version": SERVER_VERSION,
            }
        )
        writer = asyncio.create_task(connection.write_forever(), name="ws-writer")
        idle = _IdleTimer(connection)
        try:
            while True:
                try:
                    message = await ws.receive()
                except asyncio.CancelledError:
                    if not idle.take_fired():
                        raise
                    await ws.close(code=1000, message=b"idle")
                    break
                idle.last_received = idle.loop.time()
                if (
                    message.type == WSMsgType.TEXT
                    and self.message_limit
                    and not connection.admit(
                        time.monotonic(),
                        burst=self.message_burst,
                        per_second=self.messages_per_second,
                    )
                ):
                    connection.send_json(_rate_error(message.data))
                elif message.type == WSMsgType.TEXT:
                    try:
                        self.handle_text(connection, message.data)
                    except Exception:  # a bug must not cost the client its connection
                        log.exception("websocket request failed: %.200s", message.data)
                        connection.send_json(
                            {"errorMessage": "EGeneral:Internal error", "event": "error"}
                        )
                elif message.type == WSMsgType.BINARY:
                    connection.send_json({"errorMessage": "Malformed request", "event": "error"})
                else:
                    break
        finally:
            idle.cancel()
            connection.closed = True
            self._drop(connection)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer
            if not ws.closed:
                await ws.close()
        return ws

    def _drop(self, connection: Connection) -> None:
        self.connections.discard(connection)
        for key in connection.subscriptions:
            self._subscribers[key].discard(connection)
        connection.subscriptions.clear()
        self.private.drop(connection)

    # --- requests ------------------------------------------------------------------------------

    def handle_text(self, connection: Connection, text: str) -> None:
        """Answer one client frame."""
        try:
            request = _DECODE_REQUEST(text)
        except (ValueError, RecursionError):
            connection.send_json({"errorMessage": "Malformed request", "event": "error"})
            return
        if not isinstance(request, dict):
            connection.send_json({"errorMessage": "Malformed request", "event": "error"})
            return
        event = request.get("event")
        has_reqid = "reqid" in request
        reqid = request.get("reqid")
        if event == "ping":
            status_event = "pingStatus"
        elif isinstance(event, str) and event in _TRADING:
            status_event = f"{event}Status"
        else:
            status_event = "subscriptionStatus"
        if has_reqid and (type(reqid) is not int or not 0 <= reqid < _MAX_REQID):
            reply: dict[str, Any] = {"errorMessage": _REQID_ERROR, "event": status_event}
            # Kraken echoes what identifies the request: its pair (spec 1.6) and the reqid as
            # sent ("a", null); a list or object is not echoed.
            if isinstance(request.get("pair"), str):
                reply["pair"] = request["pair"]
            if reqid is None or (isinstance(reqid, int | str) and not isinstance(reqid, bool)):
                reply["reqid"] = reqid
            reply["status"] = "error"
            connection.send_json(reply)
            return
        echo = {"reqid": reqid} if has_reqid else {}
        if "event" not in request:
            self._error(connection, "Event(s) not found", "subscriptionStatus", echo)
        elif event == "ping":
            connection.send_json({"event": "pong", **echo})
        elif event == "subscribe":
            self._subscribe(connection, request, echo)
        elif event == "unsubscribe":
            self._unsubscribe_request(connection, request, echo)
        elif isinstance(event, str) and event in _TRADING:
            self._trading(connection, request, event, echo)
        else:
            self._error(connection, "Unsupported event", "subscriptionStatus", echo)

    @staticmethod
    def _error(connection: Connection, message: str, event: str, echo: dict[str, Any]) -> None:
        connection.send_json({"errorMessage": message, "event": event, **echo, "status": "error"})

    @classmethod
    def _private_error(
        cls, connection: Connection, message: str, name: str, echo: dict[str, Any]
    ) -> None:
        """A private channel's (un)subscribe error: no pair, the channel name echoed."""
        cls._error(
            connection, message, "subscriptionStatus", {**echo, "subscription": {"name": name}}
        )

    def _account(self, connection: Connection, token: Any) -> tuple[str, frozenset[str]] | None:
        if not isinstance(token, str) or not token:
            return None
        known = connection.tokens.get(token)
        if known is not None:
            return known
        account = self.exchange.ws_token_account(token)
        row = self.exchange.store.ws_token(token)
        if account is None or row is None:
            return None
        key = self.exchange.api_key(row.key)
        if key is None:
            return None
        known = connection.tokens[token] = (account, key.permissions)
        return known

    def _trading(
        self, connection: Connection, request: dict[str, Any], event: str, echo: dict[str, Any]
    ) -> None:
        status = f"{event}Status"
        if isinstance(request.get("pair"), str):
            echo = {**echo, "pair": request["pair"]}
        if not connection.private:
            self._error(
                connection,
                "Private data and trading are unavailable on this endpoint. Try ws-auth.kraken.com",
                status,
                echo,
            )
            return
        account = self._account(connection, request.get("token"))
        if account is None:
            self._error(connection, "ESession:Invalid session", status, echo)
            return
        self.private.handle_trading(connection, account[0], request, permissions=account[1])

    # --- subscribe / unsubscribe ---------------------------------------------------------------

    def _parse_subscription(
        self, connection: Connection, request: dict[str, Any], echo: dict[str, Any]
    ) -> _Parsed:
        subscription = request.get("subscription")
        if not isinstance(subscription, dict):
            raise _RequestError("Subscription field must be an object", **echo)
        name = subscription.get("name")
        if not isinstance(name, str) or name not in _FIELDS:
            named = {"subscription": {"name": name}} if isinstance(name, str) else {}
            raise _RequestError("Subscription name invalid", **echo, **named)
        # The echo carries only well-typed options: a client's decoder expects integers there.
        shown = {
            k: v
            for k, v in subscription.items()
            if k == "name" or (k in ("depth", "interval") and type(v) is int)
        }
        if set(subscription) - _FIELDS[name]:
            raise _RequestError("Subscription object unsupported field", **echo, subscription=shown)
        if name in _PRIVATE:
            if not connection.private:
                raise _RequestError(
                    "Private data and trading are unavailable on this endpoint. "
                    "Try ws-auth.kraken.com",
                    **echo,
                    subscription={"name": name},
                )
            if "pair" in request:
                raise _RequestError(
                    "Pair field unsupported for this subscription type",
                    **echo,
                    subscription={"name": name},
                )
            return _Parsed(name, subscription, [], {"name": name}, None)
        if connection.private:
            raise _RequestError(
                "Public channels not available in this endpoint", **echo, subscription=shown
            )
        pairs = request.get("pair")
        if pairs is None:
            raise _RequestError("Pair(s) not found", **echo, subscription=shown)
        if not isinstance(pairs, list) or not pairs:
            raise _RequestError("Pair field must be an array", **echo, subscription=shown)
        # A bad depth or interval is answered per pair, like every other per-pair status
        # (spec 2.3's example carries the pair); a pair Kraken does not know still gets its own.
        option_error = None
        if name == "book" and "depth" in subscription:
            depth = subscription["depth"]
            if type(depth) is not int:
                option_error = "Subscription book depth must be an integer"
            elif depth not in BOOK_DEPTHS:
                option_error = "Subscription depth not supported"
        if name == "ohlc" and "interval" in subscription:
            interval = subscription["interval"]
            if type(interval) is not int:
                option_error = "Subscription ohlc interval must be an integer"
            elif interval not in OHLC_INTERVALS:
                option_error = "Subscription ohlc interval not supported"
        return _Parsed(name, subscription, pairs, shown, option_error)

    def _parse_request(
        self, connection: Connection, request: dict[str, Any], echo: dict[str, Any]
    ) -> _Parsed | None:
        """The (un)subscribe request's parts, or None once its errors have been answered."""
        try:
            parsed = self._parse_subscription(connection, request, echo)
        except _RequestError as error:
            self._error(connection, error.message, "subscriptionStatus", error.echo)
            return None
        if parsed.option_error is None:
            return parsed
        for pair in self._known_pairs(connection, parsed.pairs, echo, parsed.shown):
            self._error(
                connection,
                parsed.option_error,
                "subscriptionStatus",
                {"pair": pair.wsname, **echo, "subscription": parsed.shown},
            )
        return None

    def _resolve(self, name: Any) -> Pair:
        if not isinstance(name, str) or "/" not in name:
            raise _RequestError(f"Currency pair not in ISO 4217-A3 format {name}")
        try:
            return self.markets.pair(name)
        except (UnknownPairError, UsageError, ExchangeError):
            replayed = self.replay.pair(name) if self.replay is not None else None
            if replayed is None:
                raise _RequestError(f"Currency pair not supported {name}") from None
            return replayed

    def _known_pairs(
        self,
        connection: Connection,
        pairs: list[Any],
        echo: dict[str, Any],
        shown: dict[str, Any],
    ) -> Iterator[Pair]:
        """The requested pairs Kraken would accept; each refused one gets its error status."""
        for raw in pairs:
            try:
                yield self._resolve(raw)
            except _RequestError as error:
                named = {"pair": raw} if isinstance(raw, str) else {}  # clients expect a name
                self._error(
                    connection,
                    error.message,
                    "subscriptionStatus",
                    {**named, **echo, "subscription": shown},
                )

    @staticmethod
    def _channel(name: str, subscription: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if name == "book":
            depth = subscription.get("depth", 10)
            return f"book-{depth}", {"depth": depth, "name": "book"}
        if name == "ohlc":
            interval = subscription.get("interval", 1)
            return f"ohlc-{interval}", {"interval": interval, "name": "ohlc"}
        return name, {"name": name}

    def _subscribe(
        self, connection: Connection, request: dict[str, Any], echo: dict[str, Any]
    ) -> None:
        parsed = self._parse_request(connection, request, echo)
        if parsed is None:
            return
        name, subscription, pairs = parsed.name, parsed.subscription, parsed.pairs
        if name in _PRIVATE:
            self._subscribe_private(connection, name, subscription, echo)
            return
        channel, shown = self._channel(name, subscription)
        for pair in self._known_pairs(connection, pairs, echo, shown):
            key = (channel, pair.wsname)
            if key in connection.subscriptions:
                self._error(
                    connection,
                    "Already subscribed",
                    "subscriptionStatus",
                    {"pair": pair.wsname, **echo, "subscription": shown},
                )
                continue
            refused = self.replay.subscribe_error(*key) if self.replay is not None else None
            if refused is not None:
                self._error(
                    connection,
                    refused,
                    "subscriptionStatus",
                    {"pair": pair.wsname, **echo, "subscription": shown},
                )
                continue
            channel_id = self._channel_id(key)
            connection.send_json(
                {
                    "channelID": channel_id,
                    "channelName": channel,
                    "event": "subscriptionStatus",
                    "pair": pair.wsname,
                    **echo,
                    "status": "subscribed",
                    "subscription": shown,
                }
            )
            connection.subscriptions.add(key)
            self._subscribers[key].add(connection)
            self._first_frame(connection, name, channel, pair, channel_id)

    def _subscribe_private(
        self, connection: Connection, name: str, subscription: dict[str, Any], echo: dict[str, Any]
    ) -> None:
        account = self._account(connection, subscription.get("token"))
        if account is None:
            self._private_error(connection, "ESession:Invalid session", name, echo)
            return
        if name in connection.private_channels:
            self._private_error(connection, "Already subscribed", name, echo)
            return
        reqid = echo.get("reqid")
        connection.private_channels.add(name)
        if name == "openOrders":
            self.private.subscribe_open_orders(
                connection,
                account[0],
                ratecounter=subscription.get("ratecounter") is True,
                reqid=reqid,
            )
        else:
            self.private.subscribe_own_trades(
                connection,
                account[0],
                snapshot=subscription.get("snapshot", True) is not False,
                consolidate_taker=subscription.get("consolidate_taker", True) is not False,
                reqid=reqid,
            )

    def _unsubscribe_request(
        self, connection: Connection, request: dict[str, Any], echo: dict[str, Any]
    ) -> None:
        if "subscription" not in request and "channelID" in request:
            self._unsubscribe_channel_id(connection, request["channelID"], echo)
            return
        parsed = self._parse_request(connection, request, echo)
        if parsed is None:
            return
        name, subscription, pairs = parsed.name, parsed.subscription, parsed.pairs
        if name in _PRIVATE:
            # Spec 2.2: a private unsubscribe carries the token again.
            if self._account(connection, subscription.get("token")) is None:
                self._private_error(connection, "ESession:Invalid session", name, echo)
                return
            if name in connection.private_channels and self.private.unsubscribe(
                connection, name, echo.get("reqid")
            ):
                connection.private_channels.discard(name)
            else:
                self._private_error(connection, "Subscription Not Found", name, echo)
            return
        channel, shown = self._channel(name, subscription)
        for pair in self._known_pairs(connection, pairs, echo, shown):
            key = (channel, pair.wsname)
            if key not in connection.subscriptions:
                self._error(
                    connection,
                    "Subscription Not Found",
                    "subscriptionStatus",
                    {"pair": pair.wsname, **echo, "subscription": shown},
                )
                continue
            self._unsubscribed(connection, key, echo, shown)

    def _unsubscribe_channel_id(
        self, connection: Connection, channel_id: Any, echo: dict[str, Any]
    ) -> None:
        """The legacy form (spec 2.2): ``{"event": "unsubscribe", "channelID": 100}``."""
        for key in connection.subscriptions:
            if type(channel_id) is int and self._channel_ids.get(key) == channel_id:
                name, _, variant = key[0].partition("-")  # "book-25" -> book, depth 25
                option = {"book": "depth", "ohlc": "interval"}.get(name)
                _, shown = self._channel(name, {option: int(variant)} if option else {})
                self._unsubscribed(connection, key, echo, shown)
                return
        self._error(
            connection,
            "Subscription Not Found",
            "subscriptionStatus",
            {"channelID": channel_id, **echo} if type(channel_id) is int else echo,
        )

    def _unsubscribed(
        self,
        connection: Connection,
        key: tuple[str, str],
        echo: dict[str, Any],
        shown: dict[str, Any],
    ) -> None:
        connection.subscriptions.discard(key)
        self._subscribers[key].discard(connection)
        connection.send_json(
            {
                "channelID": self._channel_id(key),
                "channelName": key[0],
                "event": "subscriptionStatus",
                "pair": key[1],
                **echo,
                "status": "unsubscribed",
                "subscription": shown,
            }
        )

    def _channel_id(self, key: tuple[str, str]) -> int:
        channel_id = self._channel_ids.get(key)
        if channel_id is None:
            channel_id = self._channel_ids[key] = 100 + len(self._channel_ids)
        return channel_id

    def _first_frame(
        self, connection: Connection, name: str, channel: str, pair: Pair, channel_id: int
    ) -> None:
        if self.replay is not None and pair.wsname in self.replay.wsnames:
            self.replay.first_frame(connection, channel, pair.wsname, channel_id)
            return
        feed = self.feeds[pair.key]
        if name == "book":
            depth = int(channel.split("-")[1])
            connection.send_json([channel_id, feed.snapshot(depth), channel, pair.wsname])
        elif name == "ticker":
            connection.send_json([channel_id, self._ticker(pair), channel, pair.wsname])
        elif name == "ohlc":
            interval = int(channel.split("-")[1])
            candles = self.market_data.candles(pair.key, interval)
            if candles:
                frame = ohlc_payload(feed.wire, candles[-1], interval)
                connection.send_json([channel_id, frame, channel, pair.wsname])
        elif name == "spread":
            bid, ask = feed.best("bid"), feed.best("ask")
            if bid and ask:
                frame = spread_payload(feed.wire, bid, ask, self.exchange.now())
                connection.send_json([channel_id, frame, channel, pair.wsname])

    def _ticker(self, pair: Pair) -> dict[str, Any]:
        feed = self.feeds[pair.key]
        stats = self.market_data.stats(pair.key, self.exchange.now())
        fallback = self.exchange.engine.last_price(pair.key) or Decimal(0)
        return ticker_payload(feed.wire, stats, feed.best("ask"), feed.best("bid"), fallback)

    # --- fan-out ---------------------------------------------------------------------------------

    def has_subscribers(self, channel_name: str, wsname: str) -> bool:
        """Whether anyone is subscribed to ``channel_name`` of ``wsname``."""
        return bool(self._subscribers.get((channel_name, wsname)))

    def send_public(self, key: tuple[str, str], *payloads: Any) -> None:
        """Send ``[channelID, *payloads, channelName, pair]`` to the subscribers of ``key``."""
        subscribers = self._subscribers.get(key)
        if not subscribers:
            return
        text = _ENCODE([self._channel_id(key), *payloads, *key]).decode()
        for connection in subscribers:
            connection.send_text(text)

    def _publish(self, key: tuple[str, str], payload: Any) -> None:
        subscribers = self._subscribers.get(key)
        if not subscribers:
            return
        text = _ENCODE([self._channel_id(key), payload, key[0], key[1]]).decode()
        for connection in subscribers:
            connection.send_text(text)

    def on_events(self, events: list[Event]) -> None:
        """Fan one committed batch of engine events out to the public subscribers."""
        levels: dict[str, list[BookLevelChanged]] = defaultdict(list)
        trades: dict[str, list[PublicTrade]] = defaultdict(list)
        for event in events:
            if isinstance(event, BookLevelChanged):
                levels[event.pair].append(event)
            elif isinstance(event, PublicTrade):
                trades[event.pair].append(event)
        replayed = self.replay.market_keys if self.replay is not None else frozenset()
        for pair_key, changes in levels.items():
            if pair_key in replayed:  # the mirror stays current; the replay publishes the pair
                self.feeds[pair_key].apply(changes, ())
            else:
                self._publish_book(pair_key, changes)
        for pair_key, batch in trades.items():
            if pair_key not in replayed:
                self._publish_trades(pair_key, batch)
        for pair_key in (set(levels) | set(trades)) - replayed:
            self._publish_top(pair_key, traded=pair_key in trades)

    def _publish_book(self, pair_key: str, changes: list[BookLevelChanged]) -> None:
        feed = self.feeds[pair_key]
        wsname = feed.pair.wsname
        depths = [d for d in BOOK_DEPTHS if self._subscribers.get((f"book-{d}", wsname))]
        updates = feed.apply(changes, depths)
        if not updates:
            return
        checksum = feed.checksum()
        if wsname in self.corrupt_next:
            self.corrupt_next.discard(wsname)
            checksum = str((int(checksum) + 1) % 2**32)
        for depth, (asks, bids) in updates.items():
            key = (f"book-{depth}", wsname)
            channel_id = self._channel_id(key)
            if asks and bids:
                frame: list[Any] = [channel_id, {"a": asks}, {"b": bids, "c": checksum}, *key]
            elif asks:
                frame = [channel_id, {"a": asks, "c": checksum}, *key]
            else:
                frame = [channel_id, {"b": bids, "c": checksum}, *key]
            text = _ENCODE(frame).decode()
            for connection in self._subscribers[key]:
                connection.send_text(text)

    def _publish_trades(self, pair_key: str, batch: list[PublicTrade]) -> None:
        feed = self.feeds[pair_key]
        wsname = feed.pair.wsname
        if self._subscribers.get(("trade", wsname)):
            self._publish(("trade", wsname), trade_payload(feed.wire, batch))
        for interval in OHLC_INTERVALS:
            key = (f"ohlc-{interval}", wsname)
            if self._subscribers.get(key):
                candles = self.market_data.candles(pair_key, interval)
                if candles:
                    self._publish(key, ohlc_payload(feed.wire, candles[-1], interval))

    def _publish_top(self, pair_key: str, *, traded: bool) -> None:
        feed = self.feeds[pair_key]
        pair = feed.pair
        bid, ask = feed.best("bid"), feed.best("ask")
        best = (bid, ask)
        changed = self._last_best.get(pair_key) != best
        self._last_best[pair_key] = best
        if changed and bid and ask and self._subscribers.get(("spread", pair.wsname)):
            self._publish(
                ("spread", pair.wsname), spread_payload(feed.wire, bid, ask, self.exchange.now())
            )
        if (changed or traded) and self._subscribers.get(("ticker", pair.wsname)):
            self._publish(("ticker", pair.wsname), self._ticker(pair))

    # --- faults and status ---------------------------------------------------------------------

    def broadcast_status(self) -> None:
        """Send ``systemStatus`` to every connection (after a status change)."""
        status = self.exchange.engine.system_status()
        for connection in list(self.connections):
            connection.send_json(
                {
                    "connectionID": connection.connection_id,
                    "event": "systemStatus",
                    "status": status,
                    "version": SERVER_VERSION,
                }
            )

    async def drop_connections(
        self, *, code: int = 1006, which: Iterable[int] | None = None
    ) -> int:
        """Close connections (all, or those whose connectionID is in ``which``)."""
        chosen = set(which) if which is not None else None
        victims = [c for c in list(self.connections) if chosen is None or c.connection_id in chosen]
        for connection in victims:
            connection.closed = True
            with contextlib.suppress(Exception):
                if code == 1006 and isinstance(connection.transport, asyncio.Transport):
                    # An abnormal close: no close frame, the transport just goes away.
                    connection.transport.abort()
                else:
                    await connection.ws.close(code=code, message=b"fault injection")
        return len(victims)

    def inject(
        self,
        frames: Iterable[str],
        *,
        private: bool | None = None,
        which: Iterable[int] | None = None,
    ) -> int:
        """Queue raw text ``frames``, as they are, on connections (all, only the private or only
        the public ones, or those whose connectionID is in ``which``) after what they already
        have queued; returns how many connections got them. For testing how a client copes
        with frames it cannot use."""
        texts = list(frames)
        chosen = set(which) if which is not None else None
        targets = [
            c
            for c in list(self.connections)
            if (private is None or c.private == private)
            and (chosen is None or c.connection_id in chosen)
            and not c.closed
        ]
        for connection in targets:
            for text in texts:
                connection.send_text(text)
        return len(targets)

    def set_heartbeats(self, enabled: bool) -> None:
        """Stop (or resume) heartbeats on every current connection."""
        for connection in self.connections:
            connection.heartbeats = enabled

    def set_delay(self, seconds: float) -> None:
        """Delay every outgoing batch of frames by ``seconds`` (0 to stop)."""
        for connection in self.connections:
            connection.delay = seconds


def _rate_error(text: str) -> dict[str, Any]:
    """``Exceeded msg rate`` as an error event, echoing the request's reqid when it has one."""
    reply: dict[str, Any] = {"errorMessage": "Exceeded msg rate", "event": "error"}
    with contextlib.suppress(ValueError, RecursionError):
        request = json.loads(text)
        if isinstance(request, dict) and type(request.get("reqid")) is int:
            reply["reqid"] = request["reqid"]
    return reply
