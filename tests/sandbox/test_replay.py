"""``sandbox --replay``: a capture's public market served on /ws, from real recorded traffic.

The pure :class:`ReplayMarket` is checked on the whole cryptofeed book-1000 session (every depth
re-derived, late subscribers, loop restarts); the sockets tests run a replaying sandbox on
loopback and check what a client receives: checksums that verify, the recorded trades in order,
the recorded book frames as they were (channelIDs rewritten), and a capture of it all that
``krakenws verify`` accepts.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import msgspec
import pytest

from krakenws.auth import sign_request
from krakenws.capture import CaptureVerifier, verify_capture_lines
from krakenws.cli import main as cli_main
from krakenws.errors import UsageError
from krakenws.protocol.book import OrderBook
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import BookSnapshot, BookUpdate, Trade
from krakenws.sandbox.replay import Publication, ReplayMarket
from krakenws.testing import RunningSandbox, frames_from_sdk_fixture, run_sandbox, write_capture
from tests.cli.test_sandbox_command import start, stop
from tests.conftest import BOOK1000, SDK_BOOK10, TRADES, fixture_path, server_frames
from tests.sandbox import test_ws_public as ws_public

T = TypeVar("T")
TRADED_PAIRS = ("XMR/USD", "SC/EUR")  # the two pairs the trade fixture has trades for
_encode = msgspec.json.Encoder().encode
_nonces = itertools.count(int(time.time() * 1000))


# --- captures made from the real fixtures ------------------------------------------------------


def timed_frames(name: str) -> Iterator[tuple[float, str]]:
    """``(receive time, frame)`` of every server frame of a cryptofeed log."""
    with open(fixture_path(name), encoding="utf-8") as log:
        for line in log:
            head, sep, body = line.rstrip("\n").partition(": ")
            if sep and " " not in head:
                yield float(head), body


def market_capture(path: Path, pairs: tuple[str, ...] = TRADED_PAIRS) -> list[str]:
    """The book-1000 and trade sessions (recorded side by side) merged by receive time, cut to
    ``pairs``; the sessions' own events (systemStatus, acks, heartbeats) are kept."""
    merged = sorted([*timed_frames(BOOK1000), *timed_frames(TRADES)], key=lambda timed: timed[0])
    frames = [
        text for _, text in merged if not text.startswith("[") or json.loads(text)[-1] in pairs
    ]
    write_capture(path, frames)
    return frames


def sdk_capture(path: Path) -> list[str]:
    """python-kraken-sdk's XBT/USD book-10 session as a capture."""
    with open(fixture_path(SDK_BOOK10), encoding="utf-8") as source:
        frames = list(frames_from_sdk_fixture(source))
    write_capture(path, frames)
    return frames


def book_frames(frames: list[str], channel: str, pair: str) -> list[Any]:
    decoded = [json.loads(text) for text in frames if text.startswith("[")]
    return [frame for frame in decoded if frame[-2] == channel and frame[-1] == pair]


# --- the pure timeline --------------------------------------------------------------------------


def publish_all(market: ReplayMarket, wanted: Callable[[str, str], bool]) -> list[Publication]:
    out = []
    while not market.done:
        out.extend(market.step(wanted)[1])
    return out


def as_text(publication: Publication, channel_id: int = 7) -> str:
    frame = [channel_id, *publication.payloads, publication.channel_name, publication.pair]
    return _encode(frame).decode()


def test_every_depth_is_derived_with_checksums_that_verify() -> None:
    market = ReplayMarket.from_lines(enumerate(server_frames(BOOK1000), start=1))
    assert set(market.book_depths.values()) == {1000} and len(market.wsnames) == 10
    publications = publish_all(market, lambda channel, pair: channel in ("book-10", "book-1000"))
    verifier = CaptureVerifier()
    for line, publication in enumerate(publications, start=1):
        verifier.feed(line, as_text(publication))
    report = verifier.report()
    assert report.ok, report.problems[:3]
    assert report.books == 20 and report.snapshots == 20
    by_channel = {name: 0 for name in ("book-10", "book-1000")}
    for publication in publications:
        by_channel[publication.channel_name] += 1
    # At the recorded depth every recorded frame goes out; at depth 10 only those that change
    # the top ten (and every one of them carries the recorded book's checksum).
    assert by_channel["book-1000"] == len(market.frames) == 4279
    assert 0 < by_channel["book-10"] < by_channel["book-1000"]


def test_recorded_depth_frames_go_out_as_recorded() -> None:
    recorded = server_frames(SDK_BOOK10)
    market = ReplayMarket.from_lines(enumerate(recorded, start=1))
    assert market.book_depths == {"XBT/USD": 10}
    publications = publish_all(market, lambda channel, pair: True)
    sent = [json.loads(as_text(p, channel_id=336)) for p in publications]
    assert sent == book_frames(recorded, "book-10", "XBT/USD")  # 336: the recorded channelID


@pytest.mark.parametrize("depth", [10, 25, 1000])
def test_a_late_subscriber_gets_a_snapshot_it_can_follow(depth: int) -> None:
    market = ReplayMarket.from_lines(enumerate(server_frames(BOOK1000), start=1))
    channel = f"book-{depth}"
    for _ in range(1500):
        market.step(lambda c, p: False)
    first = market.first_payloads(channel, "XMR/USD")
    assert first is not None and len(first[0]["as"]) <= depth
    verifier = CaptureVerifier()
    verifier.feed(0, _encode([1, *first, channel, "XMR/USD"]).decode())
    publications = publish_all(market, lambda c, p: c == channel and p == "XMR/USD")
    for line, publication in enumerate(publications, start=1):
        verifier.feed(line, as_text(publication, 1))
    report = verifier.report()
    assert report.ok and report.updates == len(publications) > 0


def test_a_loop_restart_sends_every_depth_a_fresh_snapshot() -> None:
    market = ReplayMarket.from_lines(enumerate(server_frames(SDK_BOOK10), start=1))
    wanted = lambda channel, pair: True  # noqa: E731
    first_pass = publish_all(market, wanted)
    market.rewind()
    assert market.first_payloads("book-10", "XBT/USD") is None  # until the snapshot is replayed
    second_pass = publish_all(market, wanted)
    assert second_pass == first_pass
    verifier = CaptureVerifier()
    for line, publication in enumerate(first_pass + second_pass, start=1):
        verifier.feed(line, as_text(publication))
    report = verifier.report()
    assert report.ok and report.snapshots == 2


def test_frames_are_paced_by_their_exchange_timestamps(tmp_path: Path) -> None:
    market_capture(tmp_path / "c.jsonl")
    market = ReplayMarket.from_file(tmp_path / "c.jsonl")
    trades = [f for f in market.frames if isinstance(f.message, Trade)]
    assert [t.message.pair for t in trades][:3] == ["XMR/USD", "XMR/USD", "SC/EUR"]
    assert trades[0].time == 1618678142_557535  # the trade's own time, not the receive time
    xmr = next(f for f in market.frames if isinstance(f.message, BookUpdate))
    assert xmr.time == max(
        int(Decimal(level[2]) * 1_000_000) for level in (*xmr.message.asks, *xmr.message.bids)
    )
    # events, heartbeats and the other eight pairs are not part of the replay
    assert market.wsnames == frozenset(TRADED_PAIRS)


def test_a_deeper_book_than_recorded_is_refused() -> None:
    market = ReplayMarket.from_lines(enumerate(server_frames(SDK_BOOK10), start=1))
    assert market.subscribe_error("book-10", "XBT/USD") is None
    assert market.subscribe_error("book-25", "XBT/USD") == "Subscription depth not supported"
    assert market.subscribe_error("trade", "XBT/USD") is None
    assert market.pair("BTC/USD") is not None and market.pair("BTC/USD").wsname == "XBT/USD"


def test_a_capture_that_cannot_be_replayed_is_refused(tmp_path: Path) -> None:
    frames = server_frames(SDK_BOOK10)
    broken = list(frames)
    index = next(i for i, text in enumerate(frames) if '"c":"' in text)
    broken[index] = broken[index].replace('"c":"', '"c":"1')
    with pytest.raises(UsageError, match=rf"capture:{index + 1}: the book cannot be replayed"):
        ReplayMarket.from_lines(enumerate(broken, start=1))
    with pytest.raises(UsageError, match="not a Kraken v1 frame"):
        ReplayMarket.from_lines([(1, "[1, 2")])
    with pytest.raises(UsageError, match="no public market frame"):
        ReplayMarket.from_lines([(1, '{"event":"heartbeat"}')])
    with pytest.raises(UsageError, match="cannot read capture"):
        ReplayMarket.from_file(tmp_path / "missing.jsonl")


# --- over sockets -------------------------------------------------------------------------------


def run(factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await asyncio.wait_for(factory(), 120)

    return asyncio.run(main())


class Client(ws_public.Client):
    """A /ws client that keeps every text frame it receives, raw, in order."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        super().__init__(session, ws)
        self.texts: list[str] = []
        self.times: list[float] = []

    @classmethod
    async def connect(cls, sandbox: RunningSandbox) -> Client:
        plain = await ws_public.connect(sandbox)
        return cls(plain.session, plain.ws)

    async def subscribe(self, pairs: list[str], **subscription: Any) -> None:
        await self.send(ws_public.subscribe(pairs, **subscription))

    async def receive(self, timeout: float = 10) -> Any:
        message = await self.ws.receive(timeout=timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        self.texts.append(message.data)
        self.times.append(time.monotonic())
        return json.loads(message.data)

    async def until(self, predicate: Callable[[Any], bool], timeout: float = 30) -> Any:
        return await self.receive_until(predicate, timeout)


def is_heartbeat(frame: Any) -> bool:
    return isinstance(frame, dict) and frame.get("event") == "heartbeat"


def channel_ids(texts: list[str]) -> dict[tuple[str, str], int]:
    acks = [json.loads(t) for t in texts if '"subscriptionStatus"' in t]
    return {
        (a["channelName"], a["pair"]): a["channelID"] for a in acks if a["status"] == "subscribed"
    }


def test_a_replaying_sandbox_serves_books_and_trades(tmp_path: Path) -> None:
    recorded = market_capture(tmp_path / "market.jsonl")
    recorded_times = [t for t, text in timed_frames(BOOK1000) if text.startswith("[")]
    speed = 20.0

    async def session(sandbox: RunningSandbox) -> Client:
        client = await Client.connect(sandbox)
        await client.receive()  # systemStatus
        # The trade subscription starts the replay: it is in place before the first frame.
        await client.subscribe(list(TRADED_PAIRS), name="trade")
        await client.subscribe(list(TRADED_PAIRS), name="book", depth=1000)
        await client.subscribe(list(TRADED_PAIRS), name="book", depth=10)
        trades, expected = 0, sum(len(book_frames(recorded, "trade", p)) for p in TRADED_PAIRS)
        while trades < expected:
            frame = await client.receive(30)
            trades += isinstance(frame, list) and frame[-2] == "trade"
        await client.until(is_heartbeat)  # a second of silence: the replay has ended
        await client.close()
        return client

    with run_sandbox(replay=tmp_path / "market.jsonl", replay_speed=speed, sim_rate=5) as sandbox:
        client = run(lambda: session(sandbox))

    texts = client.texts
    ids = channel_ids(texts)
    assert set(ids) == {(c, p) for c in ("trade", "book-1000", "book-10") for p in TRADED_PAIRS}
    frames = [json.loads(t) for t in texts if t.startswith("[")]
    assert all(frame[0] == ids[(frame[-2], frame[-1])] for frame in frames)

    # (a) every book checksum verifies, at the recorded depth and at depth 10
    report = verify_capture_lines(enumerate(texts, start=1))
    assert report.ok, report.problems[:3]
    assert report.books == 4 and report.checksums_ok == report.updates > 0
    for pair in TRADED_PAIRS:
        got = [f for f in frames if f[-2] == "book-1000" and f[-1] == pair]
        want = book_frames(recorded, "book-1000", pair)
        assert "as" in got[0][1] and "bs" in got[0][1]  # a snapshot first
        # after its snapshot the subscriber gets the recorded frames, as they were
        updates = [f[1:] for f in got[1:]]
        assert updates and updates == [f[1:] for f in want[len(want) - len(updates) :]]
        top = [f for f in frames if f[-2] == "book-10" and f[-1] == pair]
        assert len(top[0][1]["as"]) == 10 and len(top) > 1
        assert top[-1][-3]["c"] == want[-1][-3]["c"]  # both end on the recorded book

    # (b) the trades are the recorded ones, in order
    for pair in TRADED_PAIRS:
        got_trades = [f[1] for f in frames if f[-2] == "trade" and f[-1] == pair]
        assert got_trades == [f[1] for f in book_frames(recorded, "trade", pair)]

    # the recorded pace, sped up: the books' frames span at least span/speed seconds
    book_times = [t for t, text in zip(client.times, texts, strict=True) if '"book-1000"' in text]
    span = (recorded_times[-1] - recorded_times[0]) / speed
    assert book_times[-1] - book_times[0] >= 0.5 * span

    # (c) what the client received, as a capture, passes `krakenws verify`
    received = tmp_path / "received.jsonl"
    write_capture(received, texts)
    assert cli_main(["verify", str(received)]) == 0


def _add_order(sandbox: RunningSandbox, params: dict[str, object]) -> dict[str, Any]:
    path = "/0/private/AddOrder"
    headers, body = sign_request(path, params, sandbox.api_key, sandbox.api_secret, next(_nonces))
    request = urllib.request.Request(sandbox.rest_url + path, data=body.encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        payload: dict[str, Any] = json.loads(response.read())
    return payload


def test_a_replayed_exchange_pair_is_muted_from_the_engine(tmp_path: Path) -> None:
    """XBT/USD is both an exchange pair and in the capture: /ws serves only the capture's book
    (a user's resting order changes the engine's book, not the replayed one), the other pairs
    stay simulated, and a book deeper than recorded is refused."""
    recorded = sdk_capture(tmp_path / "xbt.jsonl")

    async def session(sandbox: RunningSandbox) -> tuple[Client, Client]:
        replayed = await Client.connect(sandbox)
        await replayed.receive()
        await replayed.subscribe(["XBT/USD"], name="book", depth=10)
        await replayed.until(lambda f: isinstance(f, dict) and f.get("status") == "subscribed")
        order = await asyncio.to_thread(
            _add_order,
            sandbox,
            {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "limit",
                "price": "25000.0",
                "volume": "0.01",
            },
        )
        assert order["error"] == [], order
        await replayed.subscribe(["XBT/USD"], name="book", depth=25)
        await replayed.subscribe(["btc/usd"], name="spread")
        await replayed.until(is_heartbeat)
        simulated = await Client.connect(sandbox)
        await simulated.receive()
        await simulated.subscribe(["ETH/USD"], name="book", depth=10)
        await simulated.until(lambda f: isinstance(f, list) and "as" in f[1])
        await simulated.close()
        await replayed.close()
        return replayed, simulated

    with run_sandbox(replay=tmp_path / "xbt.jsonl", replay_speed=0, sim_rate=20) as sandbox:
        replayed, simulated = run(lambda: session(sandbox))

    frames = [json.loads(t) for t in replayed.texts if t.startswith("[")]
    ids = channel_ids(replayed.texts)
    want = book_frames(recorded, "book-10", "XBT/USD")
    assert frames == [[ids[("book-10", "XBT/USD")], *f[1:]] for f in want]
    errors = [json.loads(t) for t in replayed.texts if '"errorMessage"' in t]
    assert [(e["errorMessage"], e["pair"]) for e in errors] == [
        ("Subscription depth not supported", "XBT/USD")
    ]
    assert ("spread", "XBT/USD") in ids  # acknowledged; the capture has no spread: silent
    snapshot = decode_server(next(t for t in simulated.texts if '"as"' in t))
    assert isinstance(snapshot, BookSnapshot) and snapshot.asks and snapshot.bids
    book = OrderBook("XBT/USD", 10)
    for frame in frames:
        message = decode_server(_encode(frame))
        assert isinstance(message, BookSnapshot | BookUpdate)
        book.apply(message)


def test_the_sandbox_command_replays_a_capture(tmp_path: Path) -> None:
    capture = tmp_path / "market.jsonl"
    recorded = market_capture(capture)
    process, info = start(
        "--db", str(tmp_path / "s.db"), "--replay", str(capture), "--replay-speed", "0"
    )
    try:
        assert info["replay_pairs"] == sorted(TRADED_PAIRS)

        async def first_trade() -> Any:
            async with aiohttp.ClientSession() as session, session.ws_connect(info["ws_url"]) as ws:
                await ws.send_str(
                    json.dumps(
                        {
                            "event": "subscribe",
                            "pair": ["SC/EUR"],
                            "subscription": {"name": "trade"},
                        }
                    )
                )
                while True:
                    frame = json.loads((await ws.receive(timeout=30)).data)
                    if isinstance(frame, list):
                        return frame

        frame = run(first_trade)
        assert frame[-2:] == ["trade", "SC/EUR"]
        assert frame[1] == book_frames(recorded, "trade", "SC/EUR")[0][1]
    finally:
        err = stop(process)
    assert "Traceback" not in err


def test_the_sandbox_command_refuses_a_broken_capture(tmp_path: Path) -> None:
    import subprocess
    import sys

    capture = tmp_path / "broken.jsonl"
    capture.write_text("[1, 2\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "krakenws.cli", "sandbox", "--port", "0", "--db", ":memory:",
         "--replay", str(capture)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "not a Kraken v1 frame" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "krakenws.cli", "sandbox", "--replay-loop"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "need --replay" in result.stderr
