"""The asyncio client maintaining 10 book-1000 books, next to a bare receive-and-decode floor.

Starts ``krakenws sandbox`` as its own process (persistence off), so that this process only
consumes, with one of two sources of book-1000 traffic (``--source``):

* ``replay`` (default): a real Kraken capture of 10 book-1000 pairs (cryptofeed's
  ``book1000`` sample, from ``--fixtures``) replayed as fast as the sandbox can
  (``--replay-speed 0 --replay-loop``; each loop re-sends the opening snapshots);
* ``simulator``: the simulated markets at ``--sim-rate`` events a second a pair. The sandbox
  batches a pair's changes into one frame per 0.1 s tick, so this stream tops out near
  100 frames/s for 10 books however high the rate (a higher rate makes frames larger and, past
  a point, starves the sandbox). The simulator keeps 1000+ levels a side only on its 5 main
  pairs (XBT/USD, ETH/USD, XBT/EUR, ETH/EUR, LTC/USD) and about 20 on the others; the 10
  subscriptions are ``book-1000`` on the 5 main pairs and 5 others.

It then alternates rounds over the same stream:

* ``floor``: a bare aiohttp WebSocket that subscribes the same books and does nothing per frame
  but ``await ws.receive()`` and ``krakenws.protocol.codec.decode_server``;
* ``client``: :class:`krakenws.client.Client` keeping 10 :class:`~krakenws.client.LiveBook`
  current (apply every update, verify every checksum); frames are counted from the books'
  ``update_count`` and ``snapshot_count``, so nothing is added to the client's work.

Each round connects, subscribes, waits for every snapshot and a short warm-up, then counts book
frames and this process's CPU time (``time.process_time``) over ``--seconds``. Reported: book
frames per second (median over rounds) and the client/floor ratio (target: at least 0.5), and
CPU microseconds per frame with its client/floor ratio. When both sides keep up with what the
sandbox produces, the frame rates are the sandbox's output rate and their ratio says little;
the CPU cost per frame is then the honest comparison (``cpu_busy`` shows how busy this process
was: near 1.0 means the consumer itself was the bottleneck). ``resyncs`` counts checksum
mismatches and other book failures in the client (must be 0).

    python bench/client_books.py [--seconds 5] [--rounds 3] [--source replay|simulator]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from krakenws.client import Client
from krakenws.pairs import PairRegistry
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import BookSnapshot, BookUpdate
from krakenws.testing import frames_from_cryptofeed_log, write_capture

DEEP_PAIRS = ["XBT/USD", "ETH/USD", "XBT/EUR", "ETH/EUR", "LTC/USD"]
SHALLOW_PAIRS = ["ETH/XBT", "LTC/EUR", "SOL/USD", "XDG/USD", "XDG/XBT"]
SIMULATED_PAIRS = DEEP_PAIRS + SHALLOW_PAIRS
CAPTURE = "cryptofeed__KRAKEN.ws.50.0.book1000-v1.txt"
ASSET_PAIRS = "cryptofeed__KRAKEN.0.assetpairs-rest.txt"
DEPTH = 1000
SANDBOX = [
    sys.executable,
    "-m",
    "krakenws.cli",
    "sandbox",
    "--port",
    "0",
    "--json",
    "--db",
    ":memory:",
]
TARGET_RATIO = 0.5


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def window(frames: int, seconds: float, cpu: float) -> dict[str, float]:
    return {
        "frames": frames,
        "seconds": seconds,
        "frames_per_s": frames / seconds,
        "cpu_us_per_frame": cpu / frames * 1e6 if frames else float("nan"),
        "cpu_busy": cpu / seconds,
    }


async def floor_round(
    ws_url: str, pairs: list[str], warmup: float, seconds: float
) -> dict[str, Any]:
    """Receive and decode only; counts book frames (snapshots and updates)."""
    book_types = (BookUpdate, BookSnapshot)
    counter = {"book": 0, "snapshots": 0}
    stop = asyncio.Event()

    async def consume(ws: aiohttp.ClientWebSocketResponse) -> None:
        text = aiohttp.WSMsgType.TEXT
        count = 0
        while True:
            message = await ws.receive()
            if message.type is not text:
                break
            decoded = decode_server(message.data)
            if type(decoded) in book_types:
                count += 1
                counter["book"] = count
                if type(decoded) is BookSnapshot:
                    counter["snapshots"] += 1

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, max_msg_size=0) as ws,
    ):
        await ws.send_str(
            json.dumps(
                {
                    "event": "subscribe",
                    "pair": pairs,
                    "subscription": {"name": "book", "depth": DEPTH},
                }
            )
        )
        reader = asyncio.create_task(consume(ws))
        deadline = time.monotonic() + 30
        while counter["snapshots"] < len(pairs):
            if time.monotonic() > deadline or reader.done():
                raise RuntimeError(f"floor: {counter['snapshots']} snapshots of {len(pairs)}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(warmup)
        frames0, wall0, cpu0 = counter["book"], time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        frames1, wall1, cpu1 = counter["book"], time.perf_counter(), time.process_time()
        stop.set()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    return window(frames1 - frames0, wall1 - wall0, cpu1 - cpu0)


async def client_round(
    rest_url: str,
    pairs: list[str],
    registry: PairRegistry | None,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    """The client keeps every book current; frames counted from the books' own counters."""
    async with Client(sandbox=rest_url, pairs=registry) as client:
        books = await asyncio.gather(*(client.book(pair, DEPTH, timeout=30) for pair in pairs))

        def frames() -> int:
            return sum(book.update_count + book.snapshot_count for book in books)

        await asyncio.sleep(warmup)
        frames0, wall0, cpu0 = frames(), time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        frames1, wall1, cpu1 = frames(), time.perf_counter(), time.process_time()
        result: dict[str, Any] = window(frames1 - frames0, wall1 - wall0, cpu1 - cpu0)
        result["resyncs"] = sum(book.resync_count for book in books)
        result["levels"] = {
            book.pair: len(book.bids()) + len(book.asks()) for book in books if book.synced
        }
        result["all_synced"] = all(book.synced for book in books)
    return result


def _median(rounds: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rounds))


async def measure(
    info: dict[str, Any],
    pairs: list[str],
    registry: PairRegistry | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    floors: list[dict[str, Any]] = []
    clients: list[dict[str, Any]] = []
    for index in range(args.rounds):
        floors.append(await floor_round(info["ws_url"], pairs, args.warmup, args.seconds))
        log(
            f"round {index + 1} floor: {floors[-1]['frames_per_s']:.0f} frames/s, "
            f"{floors[-1]['cpu_us_per_frame']:.1f} us CPU/frame"
        )
        clients.append(
            await client_round(info["rest_url"], pairs, registry, args.warmup, args.seconds)
        )
        log(
            f"round {index + 1} client: {clients[-1]['frames_per_s']:.0f} frames/s, "
            f"{clients[-1]['cpu_us_per_frame']:.1f} us CPU/frame, "
            f"resyncs {clients[-1]['resyncs']}"
        )
    floor_rate = _median(floors, "frames_per_s")
    client_rate = _median(clients, "frames_per_s")
    floor_cpu = _median(floors, "cpu_us_per_frame")
    client_cpu = _median(clients, "cpu_us_per_frame")
    rate_ratio = client_rate / floor_rate
    # A consumer spending c us of CPU per frame can take at most 1e6 / c frames per second.
    floor_capacity = 1e6 / floor_cpu
    client_capacity = 1e6 / client_cpu
    capacity_ratio = client_capacity / floor_capacity
    return {
        "floor": {
            "frames_per_s": round(floor_rate, 1),
            "cpu_us_per_frame": round(floor_cpu, 2),
            "cpu_busy": round(_median(floors, "cpu_busy"), 3),
            "capacity_frames_per_s": round(floor_capacity),
            "rounds_frames_per_s": [round(r["frames_per_s"], 1) for r in floors],
        },
        "client": {
            "frames_per_s": round(client_rate, 1),
            "cpu_us_per_frame": round(client_cpu, 2),
            "cpu_busy": round(_median(clients, "cpu_busy"), 3),
            "capacity_frames_per_s": round(client_capacity),
            "rounds_frames_per_s": [round(r["frames_per_s"], 1) for r in clients],
            "resyncs": sum(r["resyncs"] for r in clients),
            "all_synced": all(r["all_synced"] for r in clients),
            "levels_per_book_last_round": clients[-1]["levels"],
        },
        "rate_ratio_client_to_floor": round(rate_ratio, 3),
        "cpu_per_frame_ratio_client_to_floor": round(client_cpu / floor_cpu, 3),
        "capacity_ratio_client_to_floor": round(capacity_ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": capacity_ratio >= TARGET_RATIO and rate_ratio >= TARGET_RATIO,
    }


def replay_setup(fixtures: Path, folder: str) -> tuple[list[str], PairRegistry]:
    """The capture as a JSON Lines file, the pairs it holds and a registry that knows them."""
    with open(fixtures / CAPTURE, encoding="utf-8") as source:
        frames = [text for way, text in frames_from_cryptofeed_log(source) if way == "recv"]
    capture = str(Path(folder) / "book1000.jsonl")
    write_capture(capture, frames)
    text = (fixtures / ASSET_PAIRS).read_text(encoding="utf-8")
    payload = json.loads(text[text.index("{") :].splitlines()[0])
    registry = PairRegistry.from_asset_pairs(payload["result"])
    options = ["--no-simulator", "--replay", capture, "--replay-speed", "0", "--replay-loop"]
    return options, registry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per round")
    parser.add_argument("--rounds", type=int, default=3, help="floor/client round pairs")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds after the snapshots")
    parser.add_argument("--source", choices=("replay", "simulator"), default="replay")
    parser.add_argument(
        "--sim-rate", type=float, default=20.0, help="simulated events per second per pair"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "kraken-fixtures",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        registry: PairRegistry | None = None
        if args.source == "replay":
            if not (args.fixtures / CAPTURE).exists():
                log(f"missing capture {args.fixtures / CAPTURE}")
                return 2
            options, registry = replay_setup(args.fixtures, folder)
            source = f"replay of {CAPTURE}, as fast as possible, looped"
        else:
            options = ["--seed", str(args.seed), "--sim-rate", str(args.sim_rate)]
            source = f"simulator, {args.sim_rate} events/s per pair"
        log(f"starting the sandbox: {source}")
        process = subprocess.Popen(
            [*SANDBOX, *options],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            info = json.loads(process.stdout.readline())
            pairs = list(info["replay_pairs"]) if args.source == "replay" else SIMULATED_PAIRS
            result = asyncio.run(measure(info, pairs, registry, args))
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    output: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "source": source,
        "subscriptions": f"book-{DEPTH} x {len(pairs)} pairs",
        "pairs": pairs,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "sandbox": "separate process, db :memory:",
        **result,
    }
    if args.source == "simulator":
        output["pairs_with_1000_levels"] = DEEP_PAIRS
    print(json.dumps(output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
