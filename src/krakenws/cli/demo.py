"""``krakenws demo``: the main job in a few seconds, offline.

Starts an embedded sandbox exchange, shows the live XBT/USD book ladder with its checksum
status, places a limit buy a few levels down the book (it shows up in the ladder and in the
order status lines: pending, open), cancels it (canceled), and stops by itself. In a pipe, or
with ``--json``, the same as JSON Lines (``book`` and ``order`` objects).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from krakenws.cli.feeds import (
    Output,
    add_common_arguments,
    follow_status,
    follow_stream,
    run_command,
)
from krakenws.cli.usage import PublicFeed
from krakenws.errors import ExchangeError

if TYPE_CHECKING:
    from krakenws.client import Client

__all__ = ["add_parser", "run"]

PAIR = "XBT/USD"
VOLUME = "0.01"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="offline demo: live book from an embedded sandbox, an order placed and cancelled",
        description="Run an embedded sandbox; show the XBT/USD book with its checksum status, "
        "place a limit order, cancel it, and exit after --duration seconds (default 8).",
    )
    parser.add_argument("--pair", default=PAIR, help=f"the pair (default {PAIR})")
    add_common_arguments(parser)
    parser.set_defaults(run=run, sandbox=True, sandbox_url=None)


def run(args: argparse.Namespace) -> int:
    args.sandbox = True
    args.sandbox_url = None
    if args.duration is None:
        args.duration = 8.0
    command = PublicFeed("book", (args.pair,), depth=10)
    return run_command(args, command, extra=_Demo(args.pair, args.duration))


class _Demo:
    """The demo's script, run beside the book: subscribe orders, place, wait, cancel."""

    def __init__(self, pair: str, duration: float) -> None:
        self.pair = pair
        self.duration = duration

    async def __call__(self, client: Client, output: Output) -> list[Awaitable[None]]:
        output.count_frames = False
        status = [follow_status(client.frames(name), output) for name in ("public", "private")]
        orders = await client.open_orders()
        return [
            *status,
            follow_stream(orders, output),
            self.trade(client, output),
        ]

    async def trade(self, client: Client, output: Output) -> None:
        pause = max(self.duration / 4, 0.5)
        book = await client.book(self.pair, 10)
        try:
            await asyncio.sleep(pause)
            bids = book.bids(5)
            price = bids[-1].price if bids else (book.mid() or Decimal(1)) * Decimal("0.99")
            output.note(f"placing: buy {VOLUME} {self.pair} limit {price}", "bold")
            order = await client.add_order(self.pair, "buy", "limit", VOLUME, price=price)
            output.note(f"placed {order.txid}: {order.descr}", "bold green")
            await order.wait_status("open", "closed", "canceled", timeout=5)
            await asyncio.sleep(pause)
            try:
                await order.cancel()
            except ExchangeError as error:  # the simulated market may have filled it
                output.note(f"cancel {order.txid}: {error.kraken_error}", "yellow")
            else:
                state = await order.wait_done(timeout=5)
                output.note(f"{order.txid} {state.status}", "bold")
            await asyncio.Event().wait()  # keep showing the book until the duration is up
        finally:
            book.close()
