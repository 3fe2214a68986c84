"""Sandbox WebSocket fan-out under load: many clients, book-10 on 5 pairs plus trades each.

Starts ``krakenws sandbox`` as its own process (simulated markets on, persistence on), connects
N clients (default 200) from this process, each subscribing to ``book-10`` for 5 pairs and to
``trade``, and measures for a while:

* ``messages_per_s``: frames received by all clients together (what the sandbox sent out);
* ``lag_ms_p50`` / ``lag_ms_p99``: from an engine event to its delivery — the receive time
  minus the timestamp the sandbox put on each new book level and trade (the engine's clock is
  the wall clock), over every level and trade received.

Prints one JSON object.  python bench/sandbox_ws.py [--clients 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

PAIRS = ["XBT/USD", "ETH/USD", "XBT/EUR", "ETH/EUR", "LTC/USD"]


async def client(url: str, stop: asyncio.Event, lags: list[float], counts: list[int]) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_str(
            json.dumps({"event": "subscribe", "pair": PAIRS, "subscription": {"name": "book"}})
        )
        await ws.send_str(
            json.dumps({"event": "subscribe", "pair": PAIRS, "subscription": {"name": "trade"}})
        )
        received = 0
        while not stop.is_set():
            try:
                message = await ws.receive(timeout=0.5)
            except TimeoutError:
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.time()
            received += 1
            frame = json.loads(message.data)
            if not isinstance(frame, list):
                continue
            if frame[-2] == "trade":
                lags.extend(now - float(trade[2]) for trade in frame[1])
            else:
                for part in frame[1:-2]:
                    for side in ("a", "b"):
                        for level in part.get(side, ()):
                            if len(level) == 3:  # republished levels keep their old time
                                lags.append(now - float(level[2]))
        counts.append(received)


async def measure(url: str, clients: int, seconds: float) -> dict[str, Any]:
    stop = asyncio.Event()
    lags: list[float] = []
    counts: list[int] = []
    tasks = [asyncio.create_task(client(url, stop, lags, counts)) for _ in range(clients)]
    await asyncio.sleep(2)  # connect and receive snapshots
    lags.clear()
    started = time.monotonic()
    before = 0  # counts are only reported at the end; measure the whole window instead
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started + 2
    total = sum(counts) - before
    ordered = sorted(lags)
    return {
        "clients": clients,
        "connected": len(counts),
        "messages": total,
        "messages_per_s": round(total / elapsed, 1),
        "lag_samples": len(ordered),
        "lag_ms_p50": round(statistics.median(ordered) * 1000, 2) if ordered else None,
        "lag_ms_p99": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2) if ordered else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sim-rate", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "krakenws.cli",
                "sandbox",
                "--port",
                "0",
                "--json",
                "--db",
                str(Path(folder) / "bench.db"),
                "--sim-rate",
                str(args.sim_rate),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            info = json.loads(process.stdout.readline())
            result = asyncio.run(measure(info["ws_url"], args.clients, args.seconds))
        finally:
            process.terminate()
            process.wait(60)
    result.update(pairs=PAIRS, subscriptions="book-10 x5 pairs + trade x5 pairs per client")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
