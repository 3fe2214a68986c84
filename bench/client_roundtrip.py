"""addOrder -> addOrderStatus round trips through the asyncio client, next to two floors.

Starts two processes on loopback: ``krakenws sandbox`` (``--tier unlimited``, simulator off,
``--db :memory:`` unless ``--db file``, a SQLite file in WAL mode) and a tiny aiohttp echo
server (this script with ``--echo-server``). Then, interleaved request by request so every
variant sees the same machine, it times (``time.perf_counter``) ``--count`` round trips of:

* ``echo``: a bare aiohttp WebSocket sending a text frame the size of an addOrder request and
  awaiting its echo (the transport floor);
* ``bare_protocol``: a bare aiohttp WebSocket on ``/ws-auth`` sending addOrder JSON (with a
  token and reqid) and awaiting the matching addOrderStatus, decoded with ``msgspec`` (the
  floor including the exchange's own work per order);
* ``client``: ``Client.add_order(..., track=False)``: only the addOrder -> addOrderStatus
  round trip;
* ``client_track``: ``Client.add_order(...)`` with the default ``track=True`` (a second client,
  subscribed to openOrders and ownTrades, whose feed frames arrive around the reply);
* ``bare_ping`` and ``client_ping``: ``{"event": "ping"}`` -> ``pong`` over a bare aiohttp
  WebSocket and through ``Client.ping()`` (the request path with next to no exchange work).

The order of the variants is shuffled (seeded) in every round so none always follows another.

Every order is a limit buy of XBT/USD far below the market (it rests); all are cancelled with
``cancel_all`` every 50 rounds and at the end. The sandbox's ``unlimited`` tier lifts its
per-connection message limit (50 a second on Kraken's tiers), so by default the requests follow
each other without a pause; ``--gap`` adds one after each request (0.02 kept every connection
under 50 a second). The client's own outgoing pacer is raised out of the way
(``message_rate``/``message_burst``) so that it never waits inside a timed call.

Reported: p50/p99 (ms) of each variant, client p50 / echo p50 against the target 1.5, and
client p50 / bare-protocol p50 and client ping / bare ping (what the client itself adds).

    python bench/client_roundtrip.py [--count 300] [--gap 0] [--db memory|file]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from krakenws.client import Client

TARGET_RATIO = 1.5
PAIR = "XBT/USD"
PRICE = "1000.0"
VOLUME = "0.001"
SANDBOX = [sys.executable, "-m", "krakenws.cli", "sandbox", "--port", "0", "--json"]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the echo server (its own process) -------------------------------------------------------


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT:
            await ws.send_str(message.data)
    return ws


async def _serve_echo() -> None:
    app = web.Application()
    app.router.add_get("/echo", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(json.dumps({"url": f"ws://127.0.0.1:{runner.addresses[0][1]}/echo"}), flush=True)
    # Until the parent closes our stdin (or goes away).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


# --- the variants ------------------------------------------------------------------------------


class BareProtocol:
    """addOrder over a bare aiohttp WebSocket: send JSON, await the matching addOrderStatus."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
        self.ws = ws
        self.token = token
        self.reqids = itertools.count(1)
        self.errors = 0

    async def ping(self) -> None:
        reqid = next(self.reqids)
        await self.ws.send_str(json.dumps({"event": "ping", "reqid": reqid}))
        await self._reply("pong", reqid)

    async def _reply(self, event: str, reqid: int) -> dict[str, Any]:
        while True:
            message = await self.ws.receive()
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"bare protocol connection ended: {message.type}")
            reply = msgspec.json.decode(message.data)
            if (
                isinstance(reply, dict)
                and reply.get("event") == event
                and reply.get("reqid") == reqid
            ):
                return reply

    async def add_order(self) -> None:
        reqid = next(self.reqids)
        await self.ws.send_str(
            json.dumps(
                {
                    "event": "addOrder",
                    "token": self.token,
                    "reqid": reqid,
                    "pair": PAIR,
                    "type": "buy",
                    "ordertype": "limit",
                    "price": PRICE,
                    "volume": VOLUME,
                }
            )
        )
        reply = await self._reply("addOrderStatus", reqid)
        if reply.get("status") != "ok":
            self.errors += 1


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 4),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 4),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 4),
    }


async def measure(
    sandbox: dict[str, Any], echo_url: str, count: int, gap: float, warmup: int
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "sandbox": sandbox["rest_url"],
        "api_key": sandbox["api_key"],
        "api_secret": sandbox["api_secret"],
        "tier": "pro",
        "rate_limit": False,
        "message_rate": 10_000.0,
        "message_burst": 10_000.0,
    }
    async with (
        Client(**options) as plain,
        Client(**options) as tracked,
        aiohttp.ClientSession() as session,
        session.ws_connect(echo_url) as echo_ws,
        session.ws_connect(sandbox["ws_auth_url"]) as bare_ws,
    ):
        token = (await plain.rest.get_websockets_token()).token
        bare = BareProtocol(bare_ws, token)
        request_size = len(
            json.dumps(
                {
                    "event": "addOrder",
                    "token": token,
                    "reqid": 1,
                    "pair": PAIR,
                    "type": "buy",
                    "ordertype": "limit",
                    "price": PRICE,
                    "volume": VOLUME,
                }
            )
        )
        payload = "x" * request_size

        async def echo() -> None:
            await echo_ws.send_str(payload)
            message = await echo_ws.receive()
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"echo connection ended: {message.type}")

        async def client() -> None:
            await plain.add_order(PAIR, "buy", "limit", VOLUME, price=PRICE, track=False)

        async def client_track() -> None:
            await tracked.add_order(PAIR, "buy", "limit", VOLUME, price=PRICE)

        async def client_ping() -> None:
            await plain.ping(endpoint="private")

        variants: dict[str, Callable[[], Awaitable[None]]] = {
            "echo": echo,
            "bare_protocol": bare.add_order,
            "client": client,
            "client_track": client_track,
            "bare_ping": bare.ping,
            "client_ping": client_ping,
        }
        order = list(variants)
        shuffle = random.Random(1).shuffle
        # Connect everything and run the first (subscribing) calls untimed.
        for run in variants.values():
            for _ in range(warmup):
                await run()
                await asyncio.sleep(gap)
        await plain.cancel_all()
        samples: dict[str, list[float]] = {name: [] for name in variants}
        clock = time.perf_counter
        for index in range(count):
            shuffle(order)
            for name in order:
                run = variants[name]
                started = clock()
                await run()
                samples[name].append(clock() - started)
                await asyncio.sleep(gap)
            if (index + 1) % 50 == 0:
                await plain.cancel_all()
                log(f"{index + 1}/{count} rounds")
        cancelled = (await plain.cancel_all()).count
        figures = {name: percentiles(values) for name, values in samples.items()}
        bare_errors = bare.errors
    return {
        **figures,
        "bare_protocol_refusals": bare_errors,
        "request_frame_bytes": request_size,
        "left_open_cancelled_at_end": cancelled,
    }


def start(command: list[str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError(f"{command[2:4]} did not start")
    return process, json.loads(line)


def stop(process: subprocess.Popen[str]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="timed round trips per variant")
    parser.add_argument("--gap", type=float, default=0.0, help="pause after each request (s)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per variant first")
    parser.add_argument("--db", choices=("memory", "file"), default="memory")
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        asyncio.run(_serve_echo())
        return 0
    processes: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as folder:
        db = ":memory:" if args.db == "memory" else str(Path(folder) / "bench.db")
        try:
            sandbox_process, sandbox = start(
                [*SANDBOX, "--db", db, "--tier", "unlimited", "--no-simulator"]
            )
            processes.append(sandbox_process)
            echo_process, echo = start([sys.executable, __file__, "--echo-server"])
            processes.append(echo_process)
            log(f"sandbox {sandbox['rest_url']} (db {db}), echo {echo['url']}")
            result = asyncio.run(measure(sandbox, echo["url"], args.count, args.gap, args.warmup))
        finally:
            for process in processes:
                stop(process)
    p50 = {name: result[name]["p50_ms"] for name in ("echo", "bare_protocol", "client")}
    output: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "count": args.count,
        "gap_s": args.gap,
        "sandbox": f"separate process, tier unlimited, simulator off, db {db}",
        "order": f"limit buy {VOLUME} {PAIR} @ {PRICE} (rests)",
        **result,
        "client_p50_over_echo_p50": round(p50["client"] / p50["echo"], 3),
        "client_p50_over_bare_protocol_p50": round(p50["client"] / p50["bare_protocol"], 3),
        "bare_protocol_p50_over_echo_p50": round(p50["bare_protocol"] / p50["echo"], 3),
        "client_track_p50_over_echo_p50": round(result["client_track"]["p50_ms"] / p50["echo"], 3),
        "client_ping_p50_over_bare_ping_p50": round(
            result["client_ping"]["p50_ms"] / result["bare_ping"]["p50_ms"], 3
        ),
        "target_ratio": TARGET_RATIO,
        "meets_target": p50["client"] / p50["echo"] <= TARGET_RATIO,
    }
    print(json.dumps(output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
