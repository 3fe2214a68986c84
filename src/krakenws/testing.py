"""Helpers for tests and for users' own test suites: reading captures of Kraken traffic.

A *capture* is JSON Lines: one raw server-to-client text frame per line, exactly as received
(``krakenws record`` writes them, ``krakenws verify`` reads them). This module also reads the
two foreign formats of the recorded traffic the project is checked against, so that they can be
turned into captures:

* cryptofeed's sample-data logs: ``<ts>: <json>`` lines are server frames,
  ``<url> <- <ts>: <json>`` lines are client frames, ``<url> <-> <ts>`` marks a connect;
* python-kraken-sdk's fixtures: a JSON object ``{"init": [...], "updates": [...]}`` of
  already-parsed frames (re-serialised compactly here; every number in them is an integer and
  every decimal a string, so nothing is lost).

>>> import io, json
>>> log = io.StringIO('wss://ws.kraken.com <-> 1.0\\n1.5: {"event":"heartbeat"}\\n')
>>> list(frames_from_cryptofeed_log(log))
[('recv', '{"event":"heartbeat"}')]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Literal

__all__ = [
    "Direction",
    "frames_from_cryptofeed_log",
    "frames_from_sdk_fixture",
    "read_capture",
    "write_capture",
]

Direction = Literal["recv", "send"]


def frames_from_cryptofeed_log(source: IO[str]) -> Iterator[tuple[Direction, str]]:
    """Yield ``(direction, frame_text)`` from a cryptofeed ``sample_data`` log."""
    for line in source:
        line = line.rstrip("\n")
        if not line or " <-> " in line:
            continue
        head, sep, body = line.partition(": ")
        if not sep:
            continue
        yield ("send" if " <- " in head else "recv"), body


def frames_from_sdk_fixture(source: IO[str]) -> Iterator[str]:
    """Yield the server frames of a python-kraken-sdk ``{"init", "updates"}`` fixture, in order."""
    document = json.load(source)
    for frame in [*document["init"], *document["updates"]]:
        yield json.dumps(frame, separators=(",", ":"))


def read_capture(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, frame_text)`` for every non-blank line of a JSON Lines capture."""
    with open(path, encoding="utf-8") as capture:
        for number, line in enumerate(capture, start=1):
            text = line.rstrip("\r\n")
            if text.strip():
                yield number, text


def write_capture(path: str | Path, frames: Iterable[str]) -> int:
    """Write server frames as a JSON Lines capture; returns how many were written."""
    count = 0
    with open(path, "w", encoding="utf-8") as capture:
        for frame in frames:
            if "\n" in frame:
                raise ValueError("a capture frame cannot contain a newline")
            capture.write(frame + "\n")
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    """``python -m krakenws.testing SOURCE``: print a recorded fixture as a JSON Lines capture.

    ``SOURCE`` is a python-kraken-sdk fixture (``.json``) or a cryptofeed sample-data log.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m krakenws.testing SOURCE > capture.jsonl", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as source:
        if args[0].endswith(".json"):
            frames: Iterable[str] = frames_from_sdk_fixture(source)
        else:
            frames = (text for way, text in frames_from_cryptofeed_log(source) if way == "recv")
        for frame in frames:
            print(frame)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
