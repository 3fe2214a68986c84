"""``krakenws record [-o FILE] FEED [params]``: write a subscription's raw frames to a capture.

A capture is JSON Lines, one raw server-to-client frame per line, exactly as received: what
``krakenws verify`` checks and ``krakenws sandbox --replay`` serves. Every frame of the public
connection is written (and of the private one, for ``openOrders``/``ownTrades``/``balances``):
the ``systemStatus``, the subscription acks, heartbeats, snapshots and updates. ``--count``
counts frames.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from krakenws.cli.feeds import (
    Output,
    add_common_arguments,
    discard,
    fail,
    follow_frames,
    open_feed,
    run_command,
)
from krakenws.cli.render import Renderer
from krakenws.cli.usage import PingCommand, TradingCall, parse_feed_command
from krakenws.errors import UsageError

if TYPE_CHECKING:
    from krakenws.client import Client

__all__ = ["CaptureWriter", "add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "record",
        help="record the raw frames of a feed to a capture file (for verify and --replay)",
        description="Subscribe a feed as the feed commands do and write every frame received "
        "to a JSON Lines capture, e.g. krakenws record --sandbox -o book.jsonl --duration 10 "
        "book XBT/USD 10",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=None,
        help="the capture file ('-': standard output; default: capture-<UTC time>.jsonl)",
    )
    parser.add_argument("feed", metavar="FEED", help="ticker, spread, trade, book, ohlc, ...")
    parser.add_argument(
        "params",
        nargs="*",
        metavar="PARAM",
        help="the feed's parameters; '+ FEED PARAM...' adds another feed to the same capture",
    )
    add_common_arguments(parser, output=False)
    parser.set_defaults(run=run)


class CaptureWriter(Renderer):
    """A renderer that writes raw frames, one per line, and counts them."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.frames = 0

    def message(self, message: Any) -> None:
        pass

    def raw(self, frame: str | bytes) -> None:
        text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
        if "\n" in text:  # never from a JSON encoder, but a capture line must stay one frame
            text = text.replace("\r", "").replace("\n", "")
        self.stream.write(text + "\n")
        self.stream.flush()
        self.frames += 1

    def close(self) -> None:
        self.stream.flush()


def _feeds(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """``FEED PARAM... [+ FEED PARAM...]`` as (name, params) pairs."""
    feeds: list[tuple[str, list[str]]] = [(args.feed, [])]
    for param in args.params:
        if param == "+":
            feeds.append(("", []))
        elif not feeds[-1][0]:
            feeds[-1] = (param, [])
        else:
            feeds[-1][1].append(param)
    if not feeds[-1][0]:
        raise UsageError("record: a feed name must follow '+'")
    return feeds


def run(args: argparse.Namespace) -> int:
    try:
        commands = [parse_feed_command(name, params) for name, params in _feeds(args)]
        for command in commands:
            if isinstance(command, PingCommand | TradingCall):
                raise UsageError(
                    f"record subscribes feeds (ticker, spread, trade, book, ohlc, openOrders, "
                    f"ownTrades, balances), not {command.endpoint}"
                )
    except UsageError as error:
        fail(str(error))
        return 2
    path = args.output or f"capture-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.jsonl"
    try:
        stream: TextIO = (
            sys.stdout if path == "-" else open(path, "w", encoding="utf-8")  # noqa: SIM115
        )
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}")
        return 2
    writer = CaptureWriter(stream)
    # The feed needing the most credentials goes first: its needs are checked before anything
    # is opened (a missing key is one clear error, whichever feed named it).
    commands.sort(key=lambda feed: (not feed.needs_api_key, not feed.needs_token))
    command, *more = commands
    private = any(command.needs_token for command in commands)

    async def frames(client: Client, output: Output) -> list[Awaitable[None]]:
        producers: list[Awaitable[None]] = [follow_frames(client.frames("public"), output)]
        if private:
            producers.append(follow_frames(client.frames("private"), output))
        try:
            for other in more:
                producers += await open_feed(client, other, output)
        except BaseException:
            discard(producers)
            raise
        return producers

    try:
        status = run_command(args, command, renderer=writer, extra=frames)
    finally:
        if stream is not sys.stdout:
            stream.close()
    if path != "-":
        if status != 0 and writer.frames == 0:
            Path(path).unlink(missing_ok=True)  # nothing was recorded: no empty capture left
        else:
            print(f"krakenws: recorded {writer.frames} frames to {path}", file=sys.stderr)
    return status
