"""The ``krakenws`` command: parse arguments, call the library, render the result.

No protocol logic lives here. Each command is a module with ``add_parser(subparsers)`` and
``run(args) -> int`` (the exit status).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from krakenws import __version__
from krakenws.cli import sandbox, verify

__all__ = ["main"]

_COMMANDS = (verify, sandbox)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, with one subcommand per module in ``_COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="krakenws",
        description="Kraken WebSocket API v1 toolkit.",
    )
    parser.add_argument("--version", action="version", version=f"krakenws {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``krakenws`` script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    return status
