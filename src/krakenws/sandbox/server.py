"""aiohttp wiring of the sandbox: routes, the market clock, admin endpoints, startup and shutdown.

Glue only: requests go to :class:`~.rest_api.RestApi` (Kraken's REST paths) or to the admin
handlers below; a background task drives time — every tick it lets the market simulator act,
fires the engine's timers (:meth:`~.exchange.Exchange.advance`) and records best bid/ask for
the ``Spread`` history. All exchange calls happen on the event loop's thread, one at a time.
With ``replay`` a second task plays a capture's public market on ``/ws`` (:mod:`.replay`).

Admin endpoints (JSON in and out; loopback clients only unless ``admin_anywhere``):

* ``POST /admin/accounts`` ``{"name": ...}`` → ``{"account": ...}``
* ``POST /admin/keys`` ``{"account", "permissions": [...], "key"?, "secret"?}`` → the key
* ``POST /admin/fund`` ``{"account" | "key", "asset", "amount"}``
* ``POST /admin/status`` ``{"status", "pair"?}``: online / maintenance / cancel_only / post_only
* ``POST /admin/simulator`` ``{"paused"?: bool, "speed"?: number}``
* ``GET /admin/health``
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import msgspec
from aiohttp import web

from krakenws.errors import ExchangeError, KrakenError
from krakenws.sandbox.engine.events import Event
from krakenws.sandbox.exchange import Exchange
from krakenws.sandbox.market import Cancel, Deposit, EngineView, MarketSimulator, Place, SimAction
from krakenws.sandbox.marketdata import MarketData, SpreadPoint
from krakenws.sandbox.replay import ReplayFeed
from krakenws.sandbox.rest_api import PERMISSIONS, RestApi
from krakenws.sandbox.ws_api import WsApi

__all__ = ["SandboxServer"]

log = logging.getLogger("krakenws.sandbox")

_ENCODER = msgspec.json.Encoder()
_TICK_SECONDS = 0.1


def _json_response(status: int, payload: Any) -> web.Response:
    return web.Response(
        status=status, body=_ENCODER.encode(payload), content_type="application/json"
    )


class SandboxServer:
    """The sandbox exchange as an aiohttp application, with its market clock."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        simulator: MarketSimulator | None = None,
        tier: str = "starter",
        rest_limits: bool = True,
        admin_anywhere: bool = False,
        replay: ReplayFeed | None = None,
    ) -> None:
        self.exchange = exchange
        self.market_data = MarketData()
        self.simulator = simulator
        self.rest = RestApi(exchange, self.market_data, tier=tier, rest_limits=rest_limits)
        self.admin_anywhere = admin_anywhere
        self.paused = False
        self.speed = 1.0
        self._base_rate = simulator.rate if simulator is not None else 0.0
        self._ticker: asyncio.Task[None] | None = None
        self.replay = replay
        self._replaying: asyncio.Task[None] | None = None
        self._unsubscribe = exchange.subscribe(self._on_events)
        self.app = web.Application(middlewares=[self._errors], client_max_size=1024 * 1024)
        self.app.router.add_route("*", "/0/{kind}/{name}", self._rest)
        self.app.router.add_get("/admin/health", self._health)
        self.app.router.add_post("/admin/accounts", self._admin(self._create_account))
        self.app.router.add_post("/admin/keys", self._admin(self._create_key))
        self.app.router.add_post("/admin/fund", self._admin(self._fund))
        self.app.router.add_post("/admin/status", self._admin(self._status))
        self.app.router.add_post("/admin/simulator", self._admin(self._simulator))
        self.ws = WsApi(exchange, self.market_data)
        if replay is not None:
            replay.attach(self.ws)
            self.ws.replay = replay
        self.app.router.add_get("/ws", self.ws.handle_public)
        self.app.router.add_get("/ws-auth", self.ws.handle_private)
        self.app.router.add_get("/ws/", self.ws.handle_public)
        self.app.router.add_get("/ws-auth/", self.ws.handle_private)
        self.app.router.add_post("/admin/faults/drop", self._admin_async(self._fault_drop))
        self.app.router.add_post("/admin/faults/heartbeats", self._admin(self._fault_heartbeats))
        self.app.router.add_post("/admin/faults/delay", self._admin(self._fault_delay))
        self.app.router.add_post("/admin/faults/corrupt-checksum", self._admin(self._fault_corrupt))
        self.app.router.add_post("/admin/faults/refuse", self._admin(self._fault_refuse))
        self.app.router.add_post(
            "/admin/faults/skip-sequence", self._admin(self._fault_skip_sequence)
        )
        self.app.router.add_post("/admin/faults/inject", self._admin(self._fault_inject))
        self.app.router.add_get("/admin/connections", self._admin_get(self._list_connections))
        self.app.cleanup_ctx.append(self._lifetime)
        # Before aiohttp waits for open handlers to finish (60 s by default, twice): a WebSocket
        # handler only finishes once its client is gone.
        # (cast: aiosignal 1.4's annotations of Signal.append disagree with aiohttp 3.10's.)
        cast(Any, self.app.on_shutdown).append(self._close_connections)

    # --- lifecycle ---------------------------------------------------------------------------

    async def _lifetime(self, app: web.Application) -> AsyncIterator[None]:
        await self._start()
        yield
        await self._stop()

    async def _start(self) -> None:
        if self.simulator is not None:
            self._base_rate = self.simulator.rate
            # The simulator's state lives in memory only: after a restart its old orders are
            # withdrawn and a fresh ladder is built (users' orders are untouched).
            for account in sorted(self.simulator.accounts):
                if self.exchange.engine.open_orders(account):
                    self.exchange.cancel_all(account)
            self._execute(self.simulator.bootstrap(self.exchange.now()))
            for wsname in self.simulator.pairs:
                if self.exchange.engine.last_price(wsname) is None:
                    self.exchange.set_last_price(wsname, self.simulator.mid_price(wsname))
        self._record_spreads()  # the Spread history starts with the opening book, not a tick later
        self._ticker = asyncio.create_task(self._tick_forever(), name="sandbox-clock")
        if self.replay is not None:
            self._replaying = asyncio.create_task(self._replay(self.replay), name="sandbox-replay")

    async def _close_connections(self, app: web.Application) -> None:
        await self.ws.drop_connections(code=1001)

    async def _stop(self) -> None:
        await self.ws.drop_connections(code=1001)
        self.ws.close()
        for task in (self._ticker, self._replaying):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._unsubscribe()

    @staticmethod
    async def _replay(replay: ReplayFeed) -> None:
        try:
            await replay.run()
        except Exception:  # the exchange keeps serving; the error is a bug to report
            log.exception("sandbox replay failed")

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            try:
                self.tick()
            except Exception:  # the clock must keep running; the error is a bug to report
                log.exception("sandbox tick failed")

    def tick(self) -> None:
        """One step of the market clock: simulator actions, engine timers, spread history."""
        if self.simulator is not None and not self.paused:
            view = EngineView(self.exchange.engine)
            self._execute(self.simulator.step(self.exchange.now(), view))
        self.exchange.advance()
        self._record_spreads()

    def _execute(self, actions: list[SimAction]) -> None:
        exchange = self.exchange
        with exchange.batch():
            self._apply_all(actions)

    def _apply_all(self, actions: list[SimAction]) -> None:
        exchange = self.exchange
        for action in actions:
            try:
                if isinstance(action, Place):
                    exchange.add_order(action.account, action.request)
                elif isinstance(action, Cancel):
                    exchange.cancel_order(action.account, action.txid)
                elif isinstance(action, Deposit):
                    exchange.deposit(action.account, action.asset, action.amount)
            except ExchangeError as error:
                log.debug("simulator action refused: %s", error)

    def _record_spreads(self) -> None:
        engine = self.exchange.engine
        now = self.exchange.now()
        for pair in engine.markets:
            book = engine.book(pair.key)
            bid, ask = book.depth("bid", 1), book.depth("ask", 1)
            if bid and ask:
                self.market_data.record_spread(
                    pair.key,
                    SpreadPoint(now, bid[0].price, ask[0].price, bid[0].volume, ask[0].volume),
                )

    def _on_events(self, events: list[Event]) -> None:
        self.market_data.on_events(events)

    # --- HTTP ----------------------------------------------------------------------------------

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status == 413:
                return _json_response(413, {"error": ["EGeneral:Invalid arguments:body too large"]})
            if exc.status in (404, 405):
                return _json_response(exc.status, {"error": ["EGeneral:Unknown method"]})
            return _json_response(min(exc.status, 499), {"error": [f"EGeneral:{exc.reason}"]})
        except Exception:
            log.exception("sandbox request failed: %s %s", request.method, request.path)
            return _json_response(500, {"error": ["EGeneral:Internal error"]})

    async def _rest(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, payload = self.rest.handle(
            request.method, request.path, dict(request.query), headers, body
        )
        return _json_response(status, payload)

    def _admin(
        self, handler: Callable[[dict[str, Any]], Any]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            if not self.admin_anywhere and not _is_loopback(request.remote):
                return _json_response(403, {"error": ["EGeneral:Permission denied"]})
            try:
                body = json.loads(await request.read() or b"{}", parse_float=Decimal)
            except ValueError:
                return _json_response(400, {"error": ["EGeneral:Invalid arguments:json"]})
            if not isinstance(body, dict):
                return _json_response(400, {"error": ["EGeneral:Invalid arguments:json"]})
            try:
                return _json_response(200, {"error": [], "result": handler(body)})
            except ExchangeError as error:
                return _json_response(400, {"error": [error.kraken_error]})
            except (KrakenError, KeyError, ValueError, TypeError, InvalidOperation) as error:
                return _json_response(400, {"error": [f"EGeneral:Invalid arguments:{error}"]})

        return wrapped

    def _admin_async(
        self, handler: Callable[[dict[str, Any]], Awaitable[Any]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            if not self.admin_anywhere and not _is_loopback(request.remote):
                return _json_response(403, {"error": ["EGeneral:Permission denied"]})
            try:
                body = json.loads(await request.read() or b"{}", parse_float=Decimal)
                if not isinstance(body, dict):
                    raise ValueError("a JSON object is expected")
                return _json_response(200, {"error": [], "result": await handler(body)})
            except (KrakenError, KeyError, ValueError, TypeError) as error:
                return _json_response(400, {"error": [f"EGeneral:Invalid arguments:{error}"]})

        return wrapped

    def _admin_get(
        self, handler: Callable[[], Any]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            if not self.admin_anywhere and not _is_loopback(request.remote):
                return _json_response(403, {"error": ["EGeneral:Permission denied"]})
            return _json_response(200, {"error": [], "result": handler()})

        return wrapped

    async def _fault_drop(self, body: dict[str, Any]) -> Any:
        code = int(body.get("code", 1006))
        if code != 1006 and not (1000 <= code <= 4999):
            raise ValueError(f"close code {code} is not valid")
        which = body.get("connections")
        ids = [int(i) for i in which] if which is not None else None
        return {"dropped": await self.ws.drop_connections(code=code, which=ids)}

    def _fault_heartbeats(self, body: dict[str, Any]) -> Any:
        enabled = bool(body.get("enabled", False))
        self.ws.set_heartbeats(enabled)
        return {"enabled": enabled}

    def _fault_delay(self, body: dict[str, Any]) -> Any:
        seconds = float(body.get("seconds", 0))
        if not 0 <= seconds <= 60:
            raise ValueError("seconds must be between 0 and 60")
        self.ws.set_delay(seconds)
        return {"seconds": seconds}

    def _fault_corrupt(self, body: dict[str, Any]) -> Any:
        pair = self.exchange.engine.markets.pair(str(body["pair"]))
        self.ws.corrupt_next.add(pair.wsname)
        return {"pair": pair.wsname}

    def _fault_refuse(self, body: dict[str, Any]) -> Any:
        count = int(body.get("count", 1))
        if not 0 <= count <= 10_000:
            raise ValueError("count must be between 0 and 10000")
        self.ws.refuse_next = count
        return {"refuse_next": count}

    def _fault_skip_sequence(self, body: dict[str, Any]) -> Any:
        channel = body.get("channel")
        if channel not in (None, "openOrders", "ownTrades"):
            raise ValueError("channel must be openOrders or ownTrades")
        return {"skipped": self.ws.private.skip_sequence(channel)}

    def _fault_inject(self, body: dict[str, Any]) -> Any:
        frames = body.get("frames")
        if (
            not isinstance(frames, list)
            or not 1 <= len(frames) <= 1000
            or not all(isinstance(f, str) and len(f) <= 1 << 20 for f in frames)
        ):
            raise ValueError("frames must be a list of 1 to 1000 texts of at most 1 MiB")
        private = body.get("private")
        if private not in (None, True, False):
            raise ValueError("private must be true, false or absent (both)")
        which = body.get("connections")
        if which is not None and not (
            isinstance(which, list) and all(type(c) is int for c in which)
        ):
            raise ValueError("connections must be a list of connectionIDs")
        return {"connections": self.ws.inject(frames, private=private, which=which)}

    def _list_connections(self) -> Any:
        return [
            {
                "connection_id": c.connection_id,
                "private": c.private,
                "subscriptions": sorted(f"{name} {pair}" for name, pair in c.subscriptions),
                "private_channels": sorted(c.private_channels),
            }
            for c in self.ws.connections
        ]

    async def _health(self, request: web.Request) -> web.Response:
        engine = self.exchange.engine
        return _json_response(
            200,
            {
                "error": [],
                "result": {
                    "status": engine.system_status(),
                    "time": self.exchange.now(),
                    "paused": self.paused,
                    "speed": self.speed,
                },
            },
        )

    def _create_account(self, body: dict[str, Any]) -> Any:
        return {"account": self.exchange.create_account(body.get("name"))}

    def _create_key(self, body: dict[str, Any]) -> Any:
        permissions = body.get("permissions")
        if permissions is not None:
            unknown = set(permissions) - set(PERMISSIONS)
            if unknown:
                raise ValueError(f"unknown permissions {sorted(unknown)}")
        key = self.exchange.create_api_key(
            body["account"],
            permissions=permissions,
            key=body.get("key"),
            secret=body.get("secret"),
            nonce_window=int(body.get("nonce_window", 0)),
        )
        return {
            "key": key.key,
            "secret": key.secret,
            "account": key.account,
            "permissions": sorted(key.permissions),
        }

    def _fund(self, body: dict[str, Any]) -> Any:
        account = body.get("account")
        if account is None:
            key = self.exchange.api_key(str(body["key"]))
            if key is None:
                raise ValueError("unknown key")
            account = key.account
        amount = Decimal(str(body["amount"]))
        self.exchange.deposit(str(account), str(body["asset"]), amount)
        return {"account": account}

    def _status(self, body: dict[str, Any]) -> Any:
        status = str(body["status"])
        if status not in ("online", "maintenance", "cancel_only", "post_only", "limit_only"):
            raise ValueError(f"unknown status {status!r}")
        if body.get("pair"):
            self.exchange.set_pair_status(str(body["pair"]), status)
        else:
            self.exchange.set_system_status(status)
            self.ws.broadcast_status()
        return {"status": status}

    def _simulator(self, body: dict[str, Any]) -> Any:
        if "paused" in body:
            self.paused = bool(body["paused"])
        if "speed" in body:
            speed = float(body["speed"])
            if not 0 < speed <= 100:
                raise ValueError("speed must be in (0, 100]")
            self.speed = speed
            if self.simulator is not None:
                self.simulator.rate = self._base_rate * speed
        return {"paused": self.paused, "speed": self.speed}


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False
