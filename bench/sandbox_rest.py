"""Sandbox REST throughput over loopback, persistence on (a SQLite file in WAL mode).

Prints one JSON object:

* ``add_cancel``: AddOrder then CancelOrder of the same order, by several concurrent clients;
  pairs per second and the latency of each call (p50/p99);
* ``crossing``: one account rests sell orders, another sends crossing market buys; matched
  trades per second.

The sandbox runs in-process on its own thread and event loop (``krakenws.testing.run_sandbox``)
with the ``unlimited`` tier so that Kraken's rate limits do not cap the measurement; the
clients are aiohttp sessions with keep-alive on the main thread.

    python bench/sandbox_rest.py [--seconds 5] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from krakenws.auth import sign_request
from krakenws.testing import RunningSandbox, run_sandbox

_nonces = itertools.count(int(time.time() * 1000))


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, key: str, secret: str) -> None:
        self.session, self.url, self.key, self.secret = session, url, key, secret

    async def call(self, name: str, params: dict[str, object]) -> Any:
        path = f"/0/private/{name}"
        headers, body = sign_request(path, params, self.key, self.secret, next(_nonces))
        async with self.session.post(self.url + path, data=body, headers=headers) as response:
            payload = await response.json(content_type=None)
        if payload["error"]:
            raise RuntimeError(f"{name}: {payload['error']}")
        return payload["result"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def add_cancel(client: Client, seconds: float, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        price = f"{20000 + index}.0"
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            placed = await client.call(
                "AddOrder",
                {
                    "pair": "XBTUSD",
                    "type": "buy",
                    "ordertype": "limit",
                    "volume": "0.01",
                    "price": price,
                },
            )
            middle = time.perf_counter()
            await client.call("CancelOrder", {"txid": placed["txid"][0]})
            end = time.perf_counter()
            latencies.extend((middle - start, end - middle))
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    return {
        "pairs": done,
        "add_cancel_pairs_per_s": round(done / elapsed, 1),
        "calls_per_s": round(2 * done / elapsed, 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 2),
        "latency_ms_p99": round(_percentile(latencies, 0.99) * 1000, 2),
    }


async def crossing(maker: Client, taker: Client, seconds: float, clients: int) -> dict[str, Any]:
    # Rest plenty of sells at one price, then sweep them with market buys.
    for _ in range(400):
        await maker.call(
            "AddOrder",
            {
                "pair": "ETHUSD",
                "type": "sell",
                "ordertype": "limit",
                "volume": "0.01",
                "price": "100.00",
            },
        )
    trades = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal trades
        while time.perf_counter() < deadline:
            placed = await taker.call(
                "AddOrder",
                {"pair": "ETHUSD", "type": "buy", "ordertype": "market", "volume": "0.03"},
            )
            order = await taker.call("QueryOrders", {"txid": placed["txid"][0], "trades": True})
            trades += len(order[placed["txid"][0]].get("trades", []))
            await maker.call(
                "AddOrder",
                {
                    "pair": "ETHUSD",
                    "type": "sell",
                    "ordertype": "limit",
                    "volume": "0.03",
                    "price": "100.00",
                },
            )

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - began
    return {"trades": trades, "matched_trades_per_s": round(trades / elapsed, 1)}


async def run(sandbox: RunningSandbox, seconds: float, clients: int) -> dict[str, Any]:
    other = sandbox.admin("accounts", {"name": "bench-maker"})
    key = sandbox.admin("keys", {"account": other["account"]})
    sandbox.admin("fund", {"account": other["account"], "asset": "XETH", "amount": "100000"})
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        user = Client(session, sandbox.rest_url, sandbox.api_key, sandbox.api_secret)
        maker = Client(session, sandbox.rest_url, str(key["key"]), str(key["secret"]))
        return {
            "add_cancel": await add_cancel(user, seconds, clients),
            "crossing": await crossing(maker, user, seconds, clients),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "bench.db")
        with run_sandbox(db=db, simulator=False, tier="unlimited") as sandbox:
            result = asyncio.run(run(sandbox, args.seconds, args.clients))
    result.update(persistence="sqlite file, WAL", clients=args.clients, seconds=args.seconds)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
