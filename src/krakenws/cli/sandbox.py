"""``krakenws sandbox``: run the local Kraken look-alike exchange until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from krakenws.errors import KrakenError

DEFAULT_PERMISSIONS = (
    "query_funds",
    "query_open_orders",
    "query_closed_orders",
    "query_ledger",
    "export_data",
    "create_orders",
    "cancel_orders",
    "websocket",
)
DEMO_FUNDS = "ZUSD=100000,XXBT=10,XETH=100,ZEUR=100000"


def default_db() -> Path:
    """The sandbox database in the user's data directory (XDG)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "krakenws" / "sandbox.db"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run a local Kraken look-alike exchange (REST, simulated markets)",
        description="Run the sandbox exchange: Kraken's REST API over a matching engine with "
        "simulated markets and persistent accounts.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=_port, default=8080, help="REST (and WebSocket) port; 0: any"
    )
    parser.add_argument("--db", default=None, help="SQLite file (default: user data dir); :memory:")
    parser.add_argument("--api-key", help="ensure an account with this API key exists")
    parser.add_argument("--api-secret", help="the key's secret (base64)")
    parser.add_argument(
        "--api-permissions",
        help="comma list of Kraken permissions for the key (default: all)",
    )
    parser.add_argument("--fund", help="credit a new key's account, e.g. ZUSD=100000,XXBT=10")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated markets")
    parser.add_argument("--pairs", help="AssetPairs JSON file to trade instead of the defaults")
    parser.add_argument("--assets", help="Assets JSON file (with --pairs; default: built-in)")
    parser.add_argument(
        "--tier",
        default="starter",
        choices=("starter", "intermediate", "pro", "unlimited"),
        help="rate-limit tier (unlimited: the sandbox's own, for load tests)",
    )
    parser.add_argument(
        "--sim-rate", type=float, default=None, help="simulated orders per second per pair"
    )
    parser.add_argument(
        "--sim-levels",
        type=int,
        default=None,
        help="levels a side the simulator keeps on the main pairs (default 1000)",
    )
    parser.add_argument("--no-simulator", action="store_true", help="no simulated order flow")
    parser.add_argument(
        "--tls-port",
        type=int,
        default=None,
        metavar="PORT",
        help="also serve everything (REST, WebSockets) over TLS on PORT; 0: any",
    )
    parser.add_argument(
        "--tls-dir",
        default=None,
        metavar="DIR",
        help="where ca.pem, server.pem and server.key are kept (default: a tls folder next to "
        "the database; a temporary folder for :memory:)",
    )
    parser.add_argument(
        "--replay",
        metavar="CAPTURE",
        help="serve the public market of a JSON Lines capture (books, trades, tickers, spreads, "
        "ohlc) on /ws for its pairs, instead of simulating them; it starts with the first "
        "subscription to one of them",
    )
    parser.add_argument(
        "--replay-speed",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="pace relative to the recorded timestamps (default 1.0; 0: as fast as possible)",
    )
    parser.add_argument(
        "--replay-loop", action="store_true", help="start the replay over when it ends"
    )
    parser.add_argument("--json", action="store_true", help="print the start info as JSON")
    parser.set_defaults(run=run)


def _parse_funds(text: str) -> list[tuple[str, Decimal]]:
    funds = []
    for item in text.split(","):
        asset, sep, amount = item.strip().partition("=")
        if not sep or not asset:
            raise ValueError(f"--fund expects ASSET=AMOUNT, got {item!r}")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise ValueError(f"--fund: {amount!r} is not a number") from None
        if not value.is_finite() or value <= 0:
            raise ValueError(f"--fund: {amount!r} must be positive")
        funds.append((asset.strip(), value))
    return funds


def run(args: argparse.Namespace) -> int:
    try:
        funds = _parse_funds(args.fund or DEMO_FUNDS)
        permissions = (
            [p.strip() for p in args.api_permissions.split(",") if p.strip()]
            if args.api_permissions
            else None
        )
    except ValueError as exc:
        print(f"krakenws sandbox: {exc}", file=sys.stderr)
        return 2
    if bool(args.api_key) != bool(args.api_secret):
        print("krakenws sandbox: --api-key and --api-secret go together", file=sys.stderr)
        return 2
    if args.tls_dir and args.tls_port is None:
        print("krakenws sandbox: --tls-dir needs --tls-port", file=sys.stderr)
        return 2
    if not args.replay and (args.replay_loop or args.replay_speed != 1.0):
        print("krakenws sandbox: --replay-speed and --replay-loop need --replay", file=sys.stderr)
        return 2
    if not args.replay_speed >= 0:
        print("krakenws sandbox: --replay-speed must be 0 or more", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args, funds, permissions))
    except KrakenError as exc:
        print(f"krakenws sandbox: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"krakenws sandbox: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:  # e.g. --db names a file that is not a sandbox's
        print(f"krakenws sandbox: cannot open the database {args.db}: {exc}", file=sys.stderr)
        return 2


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0 to 65535)")
    return port


async def _serve(
    args: argparse.Namespace, funds: list[tuple[str, Decimal]], permissions: list[str] | None
) -> int:
    from aiohttp import web

    from krakenws.sandbox.engine.markets import Markets
    from krakenws.sandbox.exchange import Exchange
    from krakenws.sandbox.market import SIMULATOR_ACCOUNTS, MarketSimulator
    from krakenws.sandbox.replay import ReplayFeed, ReplayMarket
    from krakenws.sandbox.rest_api import PERMISSIONS
    from krakenws.sandbox.server import SandboxServer

    if permissions is not None:
        unknown = sorted(set(permissions) - set(PERMISSIONS))
        if unknown:
            print(f"krakenws sandbox: unknown permissions {unknown}", file=sys.stderr)
            return 2
    # The capture is read and checked before anything is opened or bound.
    replay = None
    if args.replay:
        market = ReplayMarket.from_file(args.replay)
        replay = ReplayFeed(market, speed=args.replay_speed, loop=args.replay_loop)
    db = args.db or str(default_db())
    if db != ":memory:":
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    markets = None
    if args.pairs:
        from importlib import resources

        default_assets = resources.files("krakenws.sandbox.engine") / "default_assets.json"
        with resources.as_file(default_assets) as builtin:
            markets = Markets.from_files(args.pairs, args.assets or builtin)
    exchange = Exchange.open(
        db, seed=args.seed, tier=args.tier, markets=markets, exempt_accounts=SIMULATOR_ACCOUNTS
    )
    async with contextlib.AsyncExitStack() as cleanup:
        cleanup.callback(exchange.close)
        if args.api_key:
            key, created = exchange.ensure_api_key(
                args.api_key, args.api_secret, permissions=permissions
            )
        else:
            key, created = _demo_key(exchange)
        if created:
            for asset, amount in funds:
                exchange.deposit(key.account, asset, amount)
        simulator = None
        if not args.no_simulator:
            options: dict[str, Any] = {"seed": args.seed}
            if args.sim_rate is not None:
                options["rate"] = args.sim_rate
            if args.sim_levels is not None:
                options["main_levels"] = args.sim_levels
            if replay is not None:  # the replayed pairs' books come from the capture
                options["pairs"] = [
                    pair.wsname
                    for pair in exchange.engine.markets
                    if pair.status == "online" and pair.wsname not in replay.wsnames
                ]
            simulator = MarketSimulator(exchange.engine.markets, **options)
        # Signals are caught before the start banner, so that a Ctrl-C right after it still
        # shuts down cleanly.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        # Certificates are made (or reused) before any port is bound, so that a TLS directory
        # that cannot be written is an error before the sandbox looks started.
        tls_files = None
        if args.tls_port is not None:
            from krakenws.sandbox.tls import make_certificates

            tls_files = make_certificates(
                _tls_directory(args.tls_dir, db, cleanup), hosts=_certificate_hosts(args.host)
            )
        server = SandboxServer(exchange, simulator=simulator, tier=args.tier, replay=replay)
        runner = web.AppRunner(server.app, handle_signals=False, access_log=None)
        await runner.setup()
        cleanup.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else args.port
        base = f"http://{args.host}:{port}"
        info: dict[str, Any] = {
            "rest_url": base,
            "ws_url": f"ws://{args.host}:{port}/ws",
            "ws_auth_url": f"ws://{args.host}:{port}/ws-auth",
        }
        if tls_files is not None:
            from krakenws.sandbox.tls import server_ssl_context

            plain_sockets = len(runner.addresses)
            # A second site on the same runner: every route (REST, both WebSocket endpoints,
            # admin) is served on both ports.
            tls_site = web.TCPSite(
                runner, args.host, args.tls_port, ssl_context=server_ssl_context(tls_files)
            )
            await tls_site.start()
            # The runner lists its sites' sockets in start order: the TLS ones come last.
            addresses = runner.addresses
            tls_port = addresses[plain_sockets][1] if len(addresses) > plain_sockets else 0
            tls_base = f"{args.host}:{tls_port or args.tls_port}"
            info.update(
                rest_url_tls=f"https://{tls_base}",
                ws_url_tls=f"wss://{tls_base}/ws",
                ws_auth_url_tls=f"wss://{tls_base}/ws-auth",
                ca_pem=str(tls_files.ca),
            )
        info.update(
            admin_url=f"{base}/admin",
            db=db,
            api_key=key.key,
            api_secret=key.secret,
            account=key.account,
            permissions=sorted(key.permissions),
        )
        if replay is not None:
            info.update(
                replay=args.replay,
                replay_pairs=sorted(replay.wsnames),
                replay_frames=len(replay.market.frames),
            )
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            print(f"krakenws sandbox on {base}", flush=True)
            for name, value in info.items():
                print(f"  {name:15} {value}", flush=True)
            print("Ctrl-C stops it.", flush=True)
        await stop.wait()
    return 0


def _tls_directory(tls_dir: str | None, db: str, cleanup: contextlib.AsyncExitStack) -> Path:
    """``--tls-dir``, else ``tls`` next to the database, else a folder removed at exit."""
    if tls_dir:
        return Path(tls_dir)
    if db != ":memory:":
        return Path(db).parent / "tls"
    import tempfile

    return Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="krakenws-tls-")))


def _certificate_hosts(host: str) -> tuple[str, ...]:
    """Loopback names always; the listening host too, unless it is a wildcard address."""
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    if host and host not in hosts and host not in {"0.0.0.0", "::"}:
        hosts += (host,)
    return hosts


def _demo_key(exchange: Any) -> tuple[Any, bool]:
    """The sandbox's own demo key: made once per database, reused on every restart."""
    existing = exchange.store.meta("demo_api_key")
    if existing:
        key = exchange.api_key(existing)
        if key is not None:
            return key, False
    account = exchange.create_account("demo")
    key = exchange.create_api_key(account)
    exchange.store.set_meta("demo_api_key", key.key)
    return key, True
