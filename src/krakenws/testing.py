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

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Literal

__all__ = [
    "Direction",
    "RunningSandbox",
    "frames_from_cryptofeed_log",
    "frames_from_sdk_fixture",
    "read_capture",
    "run_sandbox",
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


class RunningSandbox:
    """A sandbox exchange serving on loopback from a background thread (see :func:`run_sandbox`).

    ``rest_url`` is its base URL; ``api_key``/``api_secret`` a key with every permission on a
    funded account. Talk to it only over its sockets (REST, admin endpoints): the exchange
    belongs to the server's thread.

    With ``run_sandbox(tls=True)``, ``rest_url_tls`` is the same server over TLS and ``ca_pem``
    the CA certificate to trust (``ssl.create_default_context(cafile=sandbox.ca_pem)``);
    both are None otherwise.
    """

    def __init__(
        self,
        rest_url: str,
        api_key: str,
        api_secret: str,
        account: str,
        *,
        rest_url_tls: str | None = None,
        ca_pem: str | None = None,
    ) -> None:
        self.rest_url = rest_url
        self.api_key = api_key
        self.api_secret = api_secret
        self.account = account
        self.rest_url_tls = rest_url_tls
        self.ca_pem = ca_pem

    def admin(self, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        """POST (or GET without body) to an admin endpoint; returns its ``result``."""
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.rest_url}/admin/{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="POST" if data is not None else "GET",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = json.loads(response.read())
        if payload["error"]:
            raise RuntimeError(f"admin {path}: {payload['error']}")
        result: dict[str, object] = payload["result"]
        return result


@contextlib.contextmanager
def run_sandbox(
    *,
    db: str = ":memory:",
    seed: int = 1,
    simulator: bool = True,
    sim_rate: float | None = None,
    funds: dict[str, str] | None = None,
    tier: str = "starter",
    rest_limits: bool = False,
    main_levels: int | None = None,
    tls: bool = False,
    tls_dir: str | None = None,
    replay: str | Path | None = None,
    replay_speed: float = 1.0,
    replay_loop: bool = False,
) -> Iterator[RunningSandbox]:
    """Run a sandbox on ``127.0.0.1`` (a free port) for the duration of a ``with`` block.

    ``funds`` credits the test account (default: 1,000,000 ZUSD, 100 XXBT, 1,000 XETH,
    1,000,000 ZEUR). ``rest_limits`` is off by default so tests are not throttled.
    ``tls`` also serves everything over TLS on a second free port, with certificates kept in
    ``tls_dir`` (default: a temporary folder removed afterwards).
    ``replay`` serves a capture's public market on ``/ws`` for its pairs, as
    ``krakenws sandbox --replay`` does, paced by ``replay_speed`` (0: as fast as possible) and
    started over at the end with ``replay_loop``.
    """
    import asyncio
    import tempfile
    import threading
    from decimal import Decimal

    from aiohttp import web

    from krakenws.sandbox.exchange import Exchange
    from krakenws.sandbox.market import SIMULATOR_ACCOUNTS, MarketSimulator
    from krakenws.sandbox.replay import ReplayFeed, ReplayMarket
    from krakenws.sandbox.server import SandboxServer

    # A capture that cannot be replayed is the caller's error, raised here rather than in the
    # server's thread.
    replay_market = ReplayMarket.from_file(replay) if replay is not None else None
    started = threading.Event()
    stopping: dict[str, object] = {}
    info: dict[str, object] = {}
    failure: list[BaseException] = []

    async def serve() -> None:
        exchange = Exchange.open(db, seed=seed, tier=tier, exempt_accounts=SIMULATOR_ACCOUNTS)
        try:
            account = exchange.create_account("test")
            key = exchange.create_api_key(account)
            for asset, amount in (
                funds or {"ZUSD": "1000000", "XXBT": "100", "XETH": "1000", "ZEUR": "1000000"}
            ).items():
                exchange.deposit(account, asset, Decimal(amount))
            feed = None
            if replay_market is not None:
                feed = ReplayFeed(replay_market, speed=replay_speed, loop=replay_loop)
            sim = None
            if simulator:
                options: dict[str, object] = {"seed": seed}
                if feed is not None:
                    options["pairs"] = [
                        p.wsname
                        for p in exchange.engine.markets
                        if p.status == "online" and p.wsname not in feed.wsnames
                    ]
                if sim_rate is not None:
                    options["rate"] = sim_rate
                if main_levels is not None:
                    options["main_levels"] = main_levels
                sim = MarketSimulator(exchange.engine.markets, **options)  # type: ignore[arg-type]
            server = SandboxServer(
                exchange, simulator=sim, tier=tier, rest_limits=rest_limits, replay=feed
            )
            runner = web.AppRunner(server.app, handle_signals=False, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            info.update(
                rest_url=f"http://127.0.0.1:{port}",
                api_key=key.key,
                api_secret=key.secret,
                account=account,
            )
            if tls_directory is not None:
                from krakenws.sandbox.tls import make_certificates, server_ssl_context

                files = make_certificates(tls_directory)
                plain_sockets = len(runner.addresses)
                tls_site = web.TCPSite(
                    runner, "127.0.0.1", 0, ssl_context=server_ssl_context(files)
                )
                await tls_site.start()
                tls_port = runner.addresses[plain_sockets][1]
                info.update(rest_url_tls=f"https://127.0.0.1:{tls_port}", ca_pem=str(files.ca))
            stop = asyncio.Event()
            stopping["event"] = stop
            stopping["loop"] = asyncio.get_running_loop()
            started.set()
            await stop.wait()
            await runner.cleanup()
        finally:
            exchange.close()

    def thread_main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            started.set()

    with contextlib.ExitStack() as cleanup:
        tls_directory: Path | None = None
        if tls:
            tls_directory = Path(
                tls_dir
                or cleanup.enter_context(tempfile.TemporaryDirectory(prefix="krakenws-tls-"))
            )
        thread = threading.Thread(target=thread_main, name="krakenws-sandbox", daemon=True)
        thread.start()
        if not started.wait(120) or failure:
            raise RuntimeError("sandbox did not start") from (failure[0] if failure else None)
        try:
            yield RunningSandbox(
                str(info["rest_url"]),
                str(info["api_key"]),
                str(info["api_secret"]),
                str(info["account"]),
                rest_url_tls=_optional_str(info.get("rest_url_tls")),
                ca_pem=_optional_str(info.get("ca_pem")),
            )
        finally:
            loop = stopping["loop"]
            event = stopping["event"]
            loop.call_soon_threadsafe(event.set)  # type: ignore[attr-defined]
            thread.join(60)
            if failure:
                raise failure[0]


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


if __name__ == "__main__":
    raise SystemExit(main())
