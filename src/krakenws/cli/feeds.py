"""The reference script's commands: ``krakenws ping``, ``ticker``, ``book``, ``addOrder`` ...

One subcommand per endpoint of Kraken's ``krakenws.py``, spelled as Kraken spells them
(``openOrders``, ``cancelAllOrdersAfter``), taking the same positional and ``key=value``
parameters (read by :func:`krakenws.cli.usage.parse_feed_command`). Every command shares the
flags of :func:`add_common_arguments`: where to connect (Kraken by default, ``--sandbox`` for an
embedded sandbox, ``--sandbox-url``/``$KRAKENWS_SANDBOX_URL`` for a running one), credentials,
output (:mod:`krakenws.cli.render`) and when to stop (``--duration``, ``--count``).

Exit status: 0 done; 1 the exchange refused (Kraken's error string is printed) or the connection
failed; 2 a usage problem (bad arguments, unknown pair, missing credentials); 130 Ctrl-C. Errors
are one line on stderr, ``krakenws: error: ...``; never a traceback.

``balances``: v1 has no balance channel, so the command shows REST ``Balance`` and, subscribed to
``ownTrades``, queries it again after every fill of the account (simple and exact: the exchange
does the arithmetic). Trading commands send the request exactly as parsed (every field the
command line gave) and print each reply.

No protocol logic here: the client connects, subscribes, keeps books and matches replies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from krakenws.cli.credentials import CredentialsError, resolve_credentials
from krakenws.cli.render import Renderer, TerminalRenderer, select_renderer
from krakenws.cli.usage import (
    ENDPOINTS,
    BalancesCommand,
    FeedCommand,
    PingCommand,
    PrivateFeed,
    PublicFeed,
    TradingCall,
    parse_feed_command,
)
from krakenws.errors import (
    ConnectionClosedError,
    ExchangeError,
    KrakenError,
    KrakenTimeoutError,
    TransportError,
    UsageError,
)

if TYPE_CHECKING:
    from krakenws.client import Client
    from krakenws.events import ClientEvent
    from krakenws.protocol.messages import OwnTrades
    from krakenws.streams import LiveBook, Stream

__all__ = [
    "SANDBOX_URL_ENV",
    "Endpoint",
    "Output",
    "add_common_arguments",
    "add_parser",
    "connect",
    "drive",
    "fail",
    "follow_book",
    "follow_frames",
    "follow_status",
    "follow_stream",
    "open_feed",
    "run",
    "run_command",
]

SANDBOX_URL_ENV = "KRAKENWS_SANDBOX_URL"
_REFRESH_SECONDS = 0.25
_EMBEDDED_LEVELS = 100  # levels a side on the embedded sandbox's main pairs: starts in < 1 s

_HELP = {
    "ping": "ping the public endpoint",
    "ticker": "live ticker of pairs: ticker XBT/USD ETH/EUR",
    "spread": "best bid and ask of pairs: spread XBT/USD XBT/EUR",
    "trade": "trades tape: trade XBT/USD",
    "book": "live order book with checksum status: book ETH/USD 10",
    "ohlc": "running candles: ohlc LTC/EUR XBT/USD 60",
    "openOrders": "the account's orders (private): openOrders ratecounter=true",
    "ownTrades": "the account's fills (private): ownTrades snapshot=false",
    "balances": "the account's balances, kept current (REST + private feeds)",
    "addOrder": "place an order: addOrder pair=XBT/USD type=buy ordertype=limit "
    "volume=0.01 price=50000",
    "editOrder": "replace an order: editOrder orderid=O... pair=XBT/USD price=9000",
    "cancelOrder": "cancel orders: cancelOrder txid=O...,O...",
    "cancelAll": "cancel every open order",
    "cancelAllOrdersAfter": "dead man's switch: cancelAllOrdersAfter timeout=60 (0 disables)",
}


# --- arguments ---------------------------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def _positive(text: str) -> int:
    if not text.isdecimal() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number above zero")
    return int(text)


def add_common_arguments(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    """The flags every feed command takes: endpoint, credentials, output, stop conditions."""
    where = parser.add_argument_group("where to connect (default: Kraken production)")
    exclusive = where.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--sandbox",
        action="store_true",
        help="run an embedded sandbox exchange in this process (offline, funded test account)",
    )
    exclusive.add_argument(
        "--sandbox-url",
        metavar="URL",
        default=None,
        help=f"a running sandbox, e.g. http://127.0.0.1:8080 (default: ${SANDBOX_URL_ENV})",
    )
    where.add_argument(
        "--timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="give up on a connection or request after this long (default 10)",
    )
    keys = parser.add_argument_group(
        "credentials (default: $KRAKEN_API_KEY/$KRAKEN_API_SECRET, the config file, ./WS_Token)"
    )
    keys.add_argument("--api-key", metavar="KEY", default=None)
    keys.add_argument("--api-secret", metavar="SECRET", default=None)
    keys.add_argument("--token", metavar="TOKEN", default=None, help="a WebSocket token")
    stop = parser.add_argument_group("output")
    if output:
        stop.add_argument(
            "--json", action="store_true", help="one JSON object per line (default when piped)"
        )
        stop.add_argument("--raw", action="store_true", help="the frames exactly as received")
    stop.add_argument(
        "--duration", type=_seconds, metavar="SECONDS", help="stop after this many seconds"
    )
    stop.add_argument(
        "--count", type=_positive, metavar="N", help="stop after N messages (books, frames)"
    )
    stop.add_argument("-v", "--verbose", action="store_true", help="log connection events")


def add_parser(subparsers: Any) -> None:
    """One subcommand per endpoint name, e.g. ``krakenws book ETH/USD 10``."""
    for name in ENDPOINTS:
        parser = subparsers.add_parser(name, help=_HELP[name], description=_HELP[name])
        parser.add_argument(
            "params",
            nargs="*",
            metavar="PARAM",
            help="pairs, a depth or interval, or key=value parameters, as in Kraken's script",
        )
        add_common_arguments(parser)
        parser.set_defaults(run=run, endpoint=name)


# --- errors ------------------------------------------------------------------------------------


def fail(message: str) -> None:
    """Print the one-line error every command uses."""
    print(f"krakenws: error: {message}", file=sys.stderr)


def _error_status(error: BaseException, where: str) -> int:
    """Print ``error`` as one line; its exit status."""
    cause = error.__cause__
    if isinstance(error, ConnectionClosedError) and isinstance(cause, ExchangeError):
        error = cause
    if isinstance(error, UsageError):
        fail(str(error))
        return 2
    if isinstance(error, ExchangeError):
        fail(error.kraken_error or str(error))
        return 1
    if isinstance(error, TransportError):
        fail(f"cannot reach {where}: {error}")
        return 1
    fail(str(error) or type(error).__name__)
    return 1


# --- the endpoint ------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """Where a command connects and with which credentials."""

    sandbox_url: str | None
    """None: Kraken production."""
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    embedded: bool = False

    @property
    def name(self) -> str:
        """For messages: the URL, or "Kraken"."""
        return self.sandbox_url or "Kraken (ws.kraken.com)"


@contextlib.contextmanager
def connect(args: argparse.Namespace, command: FeedCommand | None) -> Iterator[Endpoint]:
    """The endpoint of ``args``; an embedded sandbox runs for the duration of the block.

    Credentials are checked against what ``command`` needs (:class:`CredentialsError`).
    """
    if args.sandbox:
        from krakenws.testing import run_sandbox

        with contextlib.ExitStack() as stack:
            try:
                sandbox = stack.enter_context(run_sandbox(main_levels=_EMBEDDED_LEVELS))
            except RuntimeError as error:
                raise ConnectionClosedError(
                    f"the embedded sandbox did not start: {error.__cause__ or error}"
                ) from None
            if sys.stderr.isatty():
                print(f"krakenws: embedded sandbox at {sandbox.rest_url}", file=sys.stderr)
            yield Endpoint(
                sandbox.rest_url,
                api_key=sandbox.api_key,
                api_secret=sandbox.api_secret,
                embedded=True,
            )
        return
    url = args.sandbox_url or os.environ.get(SANDBOX_URL_ENV) or None
    if url is not None and not url.startswith(("http://", "https://")):
        raise UsageError(f"the sandbox URL must start with http:// or https://, not {url!r}")
    credentials = resolve_credentials(
        api_key=args.api_key, api_secret=args.api_secret, token=args.token
    )
    if command is not None and command.needs_token:
        credentials.require(
            command.endpoint, token=command.needs_token, api_key=command.needs_api_key
        )
    yield Endpoint(
        url,
        api_key=credentials.api_key,
        api_secret=credentials.api_secret,
        token=credentials.token,
    )


def make_client(endpoint: Endpoint, timeout: float) -> Any:
    """A :class:`~krakenws.client.Client` for ``endpoint``."""
    from krakenws.client import Backoff, Client

    return Client(
        sandbox=endpoint.sandbox_url,
        api_key=endpoint.api_key,
        api_secret=endpoint.api_secret,
        token=endpoint.token,
        request_timeout=timeout,
        backoff=Backoff(initial=0.25, maximum=5.0),
    )


# --- output with a limit -----------------------------------------------------------------------


class Output:
    """The renderer, counting what it shows; :attr:`done` is set after ``count`` items."""

    def __init__(self, renderer: Renderer, count: int | None, *, count_frames: bool) -> None:
        self.renderer = renderer
        self.remaining = count
        self.count_frames = count_frames
        self.done = asyncio.Event()

    def _shown(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.done.set()

    def message(self, message: Any) -> None:
        if self.done.is_set():
            return
        self.renderer.message(message)
        if not self.count_frames:
            self._shown()

    def book(self, live: LiveBook, checksum_ok: bool | None) -> None:
        if self.done.is_set():
            return
        self.renderer.book(live.book, checksum_ok=checksum_ok)
        if not self.count_frames:
            self._shown()

    def balances(self, balances: Any) -> None:
        if self.done.is_set():
            return
        self.renderer.balances(balances)
        if not self.count_frames:
            self._shown()

    def raw(self, frame: str) -> None:
        if self.done.is_set():
            return
        self.renderer.raw(frame)
        if self.count_frames:
            self._shown()

    def note(self, text: str, style: str = "") -> None:
        """A status line for the terminal view (other renderers have no place for it)."""
        if isinstance(self.renderer, TerminalRenderer):
            self.renderer.state.note(text, style)
            self.renderer.refresh()

    def alert(self, text: str) -> None:
        """Something the reader must know (the data stopped): a status line in the terminal
        view, a line on stderr otherwise (stdout stays JSON Lines)."""
        if isinstance(self.renderer, TerminalRenderer):
            self.note(text, "yellow")
        else:
            print(f"krakenws: {text}", file=sys.stderr, flush=True)


# --- producers: each follows one source until cancelled ----------------------------------------


async def report_connection(events: Stream[ClientEvent], output: Output) -> None:
    """Connection trouble after startup, one line each: a lost connection, the reconnect
    attempts (1, 2, 4, 8...: an outage does not flood the screen), the way back, giving up."""
    from krakenws.events import Connected, Disconnected, GaveUp, Reconnecting

    down: set[str] = set()
    async for event in events:
        if isinstance(event, Disconnected):
            down.add(event.endpoint)
            output.alert(f"{event.endpoint} connection lost ({event.cause}); reconnecting")
        elif isinstance(event, Reconnecting) and event.attempt & (event.attempt - 1) == 0:
            output.alert(
                f"{event.endpoint} connection: attempt {event.attempt + 1} in "
                f"{event.delay:.1f} s ({event.cause})"
            )
        elif isinstance(event, Connected) and event.endpoint in down:
            down.discard(event.endpoint)
            output.alert(f"{event.endpoint} connection is back")
        elif isinstance(event, GaveUp):
            output.alert(f"{event.endpoint} connection gave up after {event.attempts} attempts")


async def follow_stream(stream: Stream[Any], output: Output) -> None:
    async for message in stream:
        output.message(message)
    raise ConnectionClosedError(f"{stream.name}: the subscription ended")


async def follow_frames(stream: Stream[str], output: Output) -> None:
    async for frame in stream:
        output.raw(frame)


async def follow_status(stream: Stream[str], output: Output) -> None:
    """The connection's own events (``systemStatus``, subscription acks), shown as the
    reference script shows them; not counted by ``--count``."""
    from krakenws.protocol.codec import decode_server
    from krakenws.protocol.messages import SubscriptionStatus, SystemStatus

    async for frame in stream:
        if not frame.startswith("{"):
            continue
        try:
            message = decode_server(frame)
        except KrakenError:
            continue
        if isinstance(message, SystemStatus | SubscriptionStatus) and not output.done.is_set():
            output.renderer.message(message)


async def follow_book(live: LiveBook, output: Output) -> None:
    snapshots, resyncs = live.snapshot_count, live.resync_count
    try:
        output.book(live, None)
        while True:
            await live.wait_update()
            if live.resync_count != resyncs:
                checksum_ok: bool | None = False
            elif live.snapshot_count != snapshots:
                checksum_ok = None
            else:
                checksum_ok = True
            snapshots, resyncs = live.snapshot_count, live.resync_count
            output.book(live, checksum_ok)
    finally:
        # Closed here, before the client closes: its pending update waiter then ends quietly
        # instead of holding the client's "closed" error that nobody would retrieve.
        live.close()


async def _follow_balances(client: Client, trades: Stream[OwnTrades], output: Output) -> None:
    latest = await client.rest.balance()
    output.balances(latest)
    async for message in trades:
        if not message.trades:
            continue
        balances = await client.rest.balance()
        if balances != latest:
            latest = balances
            output.balances(balances)
    raise ConnectionClosedError("ownTrades: the subscription ended")


async def _refresh(renderer: TerminalRenderer) -> None:
    while True:
        await asyncio.sleep(_REFRESH_SECONDS)
        renderer.refresh()


async def drive(producers: list[Awaitable[None]], output: Output, duration: float | None) -> None:
    """Run the producers until ``duration`` passes, ``output`` is done, or one fails."""
    tasks = [asyncio.ensure_future(producer) for producer in producers]
    if isinstance(output.renderer, TerminalRenderer):
        tasks.append(asyncio.ensure_future(_refresh(output.renderer)))
    finished = asyncio.ensure_future(output.done.wait())
    try:
        done, _ = await asyncio.wait(
            [*tasks, finished], timeout=duration, return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task is not finished and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error
    finally:
        for task in [*tasks, finished]:
            task.cancel()
        for task in [*tasks, finished]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


# --- opening a feed ----------------------------------------------------------------------------


async def open_feed(client: Client, command: FeedCommand, output: Output) -> list[Awaitable[None]]:
    """Subscribe what ``command`` needs; the producers that show it (none for one-shot calls,
    which are done and shown here)."""
    if isinstance(command, PingCommand):
        seconds = await client.ping(reqid=command.reqid)  # the reqid shown is the one sent
        from krakenws.protocol.messages import Pong

        output.message(Pong() if command.reqid is None else Pong(reqid=command.reqid))
        output.note(f"round trip {seconds * 1000:.1f} ms")
        return []
    if isinstance(command, PublicFeed):
        return await _open_public(client, command, output)
    if isinstance(command, PrivateFeed):
        stream: Stream[Any]
        if command.endpoint == "openOrders":
            stream = await client.open_orders(ratecounter=bool(command.ratecounter))
        else:
            stream = await client.own_trades(
                snapshot=command.snapshot is not False,
                consolidate_taker=command.consolidate_taker is not False,
            )
        return [follow_stream(stream, output)]
    if isinstance(command, BalancesCommand):
        trades = await client.own_trades(snapshot=False)
        return [_follow_balances(client, trades, output)]
    await _trading_call(client, command, output)
    return []


async def _open_public(
    client: Client, command: PublicFeed, output: Output
) -> list[Awaitable[None]]:
    pairs = await client.resolve_pairs(command.pairs)
    if command.endpoint == "book":
        depth = command.depth if command.depth is not None else 10
        books = [await client.book(pair, depth) for pair in pairs]
        return [follow_book(book, output) for book in books]
    opener: Callable[..., Any] = {
        "ticker": client.ticker,
        "spread": client.spreads,
        "trade": client.trades,
    }.get(command.endpoint, client.ohlc)
    if command.endpoint == "ohlc":
        interval = command.interval if command.interval is not None else 1
        stream = await client.ohlc(*pairs, interval=interval)
    else:
        stream = await opener(*pairs)
    return [follow_stream(stream, output)]


async def _trading_call(client: Client, command: TradingCall, output: Output) -> None:
    template = command.template
    pair = getattr(template, "pair", msgspec.UNSET)
    if isinstance(pair, str):
        [wsname] = await client.resolve_pairs([pair])
        template = msgspec.structs.replace(template, pair=wsname)
    prepared = TradingCall(command.endpoint, template)
    # The client's typed calls cover most fields; the command line may give any field of the
    # request (margin, validate, sender_sub_id ...), so the prepared request is sent as is.
    replies = await client.request(prepared.request("", command.reqid))
    for reply in replies:
        output.message(reply)
        txid = getattr(reply, "txid", None)
        if isinstance(txid, str):
            output.note(f"{command.endpoint}: {txid}", "green")


# --- the command -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """``krakenws <endpoint> [params]``."""
    try:
        command = parse_feed_command(args.endpoint, args.params)
    except UsageError as error:
        fail(str(error))
        return 2
    return run_command(args, command)


def run_command(
    args: argparse.Namespace,
    command: FeedCommand,
    *,
    renderer: Renderer | None = None,
    extra: Callable[[Any, Output], Awaitable[list[Awaitable[None]]]] | None = None,
) -> int:
    """Connect as ``args`` say, run ``command`` and show it; the exit status.

    ``renderer`` replaces the one ``--json``/``--raw``/the terminal would choose; ``extra``
    adds producers once the client is open (``record`` uses it for its capture file).
    """
    where = "the exchange"
    try:
        if renderer is None:
            renderer = select_renderer(
                json_lines=getattr(args, "json", False), raw=getattr(args, "raw", False)
            )
        count_frames = bool(getattr(args, "raw", False)) or extra is not None
        with _quiet_logging(args.verbose), connect(args, command) as endpoint:
            where = endpoint.name
            with renderer:
                return asyncio.run(
                    _main(
                        args,
                        endpoint=endpoint,
                        command=command,
                        renderer=renderer,
                        count_frames=count_frames,
                        extra=extra,
                    )
                )
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise  # the reader went away: main() ends quietly
    except CredentialsError as error:
        fail(str(error))
        return 2
    except (KrakenError, OSError) as error:
        if isinstance(error, OSError) and not isinstance(error, KrakenError):
            fail(f"{error.strerror or error}")
            return 1
        return _error_status(error, where)


async def _main(
    args: argparse.Namespace,
    *,
    endpoint: Endpoint,
    command: FeedCommand,
    renderer: Renderer,
    count_frames: bool,
    extra: Callable[[Any, Output], Awaitable[list[Awaitable[None]]]] | None,
) -> int:
    output = Output(renderer, args.count, count_frames=count_frames)
    async with make_client(endpoint, args.timeout) as client:
        events = client.events()
        side: list[Awaitable[None]] = []
        endpoints = ["public", "private"] if command.needs_token else ["public"]
        if extra is not None:
            side += await extra(client, output)
        elif getattr(args, "raw", False):
            side += [follow_frames(client.frames(name), output) for name in endpoints]
        else:
            side += [follow_status(client.frames(name), output) for name in endpoints]
        try:
            async with asyncio.timeout(args.timeout * 2):
                producers = await open_feed(client, command, output)
        except (TimeoutError, KrakenTimeoutError, ConnectionClosedError) as error:
            discard(side)
            raise await _unreachable(events, error) from None
        except BaseException:
            discard(side)
            raise
        if producers:
            watch = report_connection(client.events(), output)
            await drive([*side, *producers, watch], output, args.duration)
        elif count_frames:
            # a one-shot call: let the last frames of its reply reach the frame streams
            await drive([*side, asyncio.sleep(0.2)], output, None)
        else:
            discard(side)
        events.close()
    return 0


def discard(coroutines: list[Awaitable[None]]) -> None:
    """Close producers that were never started (no "coroutine was never awaited")."""
    for coroutine in coroutines:
        if asyncio.iscoroutine(coroutine):
            coroutine.close()


async def _unreachable(events: Stream[ClientEvent], error: BaseException) -> BaseException:
    """The connection failure behind a startup timeout, if the client saw one."""
    from krakenws.client import ConnectFailed

    if isinstance(error, ConnectionClosedError) and isinstance(error.__cause__, ExchangeError):
        return error.__cause__
    failure = None
    while events.pending():
        event = await events.get(0)
        if isinstance(event, ConnectFailed):
            failure = event
    if failure is not None:
        return ConnectionClosedError(failure.error)
    if isinstance(error, KrakenError):
        return error
    return KrakenTimeoutError("no answer in time")


@contextlib.contextmanager
def _quiet_logging(verbose: bool) -> Iterator[None]:
    """The client logs problems it handles (reconnects, a missing pair list) as warnings; the
    command shows what matters itself, so they stay out of the way unless ``--verbose``.
    The logger is as it was afterwards (``main`` also runs inside test sessions)."""
    logger = logging.getLogger("krakenws")
    handler: logging.Handler = logging.NullHandler()
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("krakenws: %(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    if verbose:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
