"""The ``krakenws`` command: parse arguments, call the library, render the result.

No protocol logic lives here. Each command is a module with ``add_parser(subparsers)`` and
``run(args) -> int`` (the exit status): :mod:`~krakenws.cli.feeds` adds one subcommand per
endpoint of Kraken's reference script (``ping``, ``book``, ``addOrder`` ...), the others one
each (``demo``, ``record``, ``verify``, ``sandbox``).

Exit status: 0 done, 1 the exchange or the connection failed, 2 a usage problem, 130 Ctrl-C.
Argument errors are one line, ``krakenws: error: ...``, like every other error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from krakenws import __version__
from krakenws.cli import demo, feeds, record, sandbox, verify
from krakenws.cli.usage import ENDPOINTS, USAGE_EXAMPLES, resolve_endpoint
from krakenws.errors import UsageError

__all__ = ["main"]

_COMMANDS = (demo, feeds, record, verify, sandbox)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (and a pointer to --help) instead of the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"krakenws: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, with one subcommand per module in ``_COMMANDS``."""
    parser = _Parser(
        prog="krakenws",
        description="Kraken WebSocket API v1 toolkit: live feeds, trading, captures and a "
        "local sandbox exchange. Kraken production by default; --sandbox runs everything "
        "offline.",
        epilog="examples:\n  " + "\n  ".join(("krakenws demo", *USAGE_EXAMPLES)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"krakenws {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(subparsers)
    return parser


def _canonical_command(argv: list[str], commands: Sequence[str]) -> list[str]:
    """Kraken's spelling of an endpoint typed in another letter case (``openorders``); a
    :class:`UsageError` with a suggestion for a near miss (``openOrder``)."""
    by_lower = {name.lower(): name for name in ENDPOINTS}
    for index, arg in enumerate(argv):
        if arg.startswith("-"):
            continue
        found = by_lower.get(arg.lower())
        if found is not None and found != arg:
            return [*argv[:index], found, *argv[index + 1 :]]
        if found is None and arg not in commands:
            try:
                resolve_endpoint(arg)
            except UsageError as error:
                if "did you mean" in str(error):
                    raise
        break
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``krakenws`` script; returns the exit status."""
    parser = build_parser()
    commands = [command.__name__.rpartition(".")[2] for command in _COMMANDS]
    try:
        arguments = _canonical_command(list(sys.argv[1:] if argv is None else argv), commands)
    except UsageError as error:
        print(f"krakenws: error: {error}", file=sys.stderr)
        return 2
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`krakenws book XBT/USD | head -1`)
        # Nothing more can be written; leave Python's exit flush nothing to complain about.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status
