"""Order-book throughput on real captures: decode + apply + checksum, against decode alone.

Prints one JSON object. For each capture (cryptofeed's book-1000 session, python-kraken-sdk's
book-10 session), every server frame is processed as a client would: ``decode_server``, then for
book frames ``OrderBook.apply`` (which verifies the checksum of every update). The floor is
``msgspec.json.decode`` of the same frames, without types: the least any Python client must do.
Rounds alternate floor and pipeline so both see the same machine; medians are reported.

    python bench/book.py [--rounds 15] [--fixtures ../shared/kraken-fixtures]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import msgspec

from krakenws.protocol.book import OrderBook, depth_from_channel_name
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import BookSnapshot, BookUpdate
from krakenws.testing import frames_from_cryptofeed_log, frames_from_sdk_fixture

CAPTURES = {
    "book1000": "cryptofeed__KRAKEN.ws.50.0.book1000-v1.txt",
    "book10": "python-kraken-sdk__orderbook-v1.json",
}
TARGET_RATIO = 1 / 8


def load_frames(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as source:
        if path.suffix == ".json":
            return list(frames_from_sdk_fixture(source))
        return [
            text for direction, text in frames_from_cryptofeed_log(source) if direction == "recv"
        ]


def floor(frames: list[str]) -> float:
    decode = msgspec.json.decode
    start = time.perf_counter()
    for text in frames:
        decode(text)
    return time.perf_counter() - start


def decode_only(frames: list[str]) -> float:
    start = time.perf_counter()
    for text in frames:
        decode_server(text)
    return time.perf_counter() - start


def pipeline(frames: list[str]) -> tuple[float, int]:
    books: dict[tuple[str, str], OrderBook] = {}
    verified = 0
    start = time.perf_counter()
    for text in frames:
        message = decode_server(text)
        if type(message) is BookUpdate:
            books[message.channel_name, message.pair].apply(message)
            verified += message.checksum is not None
        elif type(message) is BookSnapshot:
            key = (message.channel_name, message.pair)
            book = books.get(key)
            if book is None:
                book = books[key] = OrderBook(
                    message.pair, depth_from_channel_name(message.channel_name)
                )
            book.apply(message)
    return time.perf_counter() - start, verified


def measure(frames: list[str], rounds: int) -> dict[str, object]:
    floors, decodes, pipelines = [], [], []
    verified = 0
    gc.collect()
    for _ in range(rounds):
        floors.append(floor(frames))
        decodes.append(decode_only(frames))
        elapsed, verified = pipeline(frames)
        pipelines.append(elapsed)
    n = len(frames)
    floor_rate = n / statistics.median(floors)
    pipeline_rate = n / statistics.median(pipelines)
    ratios = [f / p for f, p in zip(floors, pipelines, strict=True)]
    return {
        "frames": n,
        "checksums_verified": verified,
        "decode_floor_frames_per_s": round(floor_rate),
        "decode_server_frames_per_s": round(n / statistics.median(decodes)),
        "decode_apply_verify_frames_per_s": round(pipeline_rate),
        "ratio_to_floor_median": round(statistics.median(ratios), 4),
        "ratio_to_floor_min": round(min(ratios), 4),
        "target_ratio": TARGET_RATIO,
        "meets_target": statistics.median(ratios) >= TARGET_RATIO,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "kraken-fixtures",
    )
    args = parser.parse_args()
    result: dict[str, object] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rounds": args.rounds,
    }
    for label, name in CAPTURES.items():
        path = args.fixtures / name
        if not path.exists():
            print(f"missing capture {path}", file=sys.stderr)
            return 2
        result[label] = measure(load_frames(path), args.rounds)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
