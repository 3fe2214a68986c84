"""The sandbox's public WebSocket v1 endpoint over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest

from krakenws.protocol.book import OrderBook, depth_from_channel_name
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import (
    BookSnapshot,
    BookUpdate,
    Heartbeat,
    SubscriptionStatus,
    SystemStatus,
)
from krakenws.testing import RunningSandbox, run_sandbox

T = TypeVar("T")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(seed=3, main_levels=1000, sim_rate=20) as running:
        yield running


def run(coroutine_factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        limit = 120 + float(os.environ.get("KRAKENWS_SOAK_SECONDS", "0"))
        return await asyncio.wait_for(coroutine_factory(), limit)

    return asyncio.run(main())


class Client:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session, self.ws = session, ws

    async def send(self, payload: Any) -> None:
        await self.ws.send_str(payload if isinstance(payload, str) else json.dumps(payload))

    async def receive(self, timeout: float = 10) -> Any:
        message = await self.ws.receive(timeout=timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    async def receive_until(self, predicate: Callable[[Any], bool], timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.receive(max(0.1, deadline - time.monotonic()))
            if predicate(frame):
                return frame

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


async def connect(sandbox: RunningSandbox, path: str = "/ws") -> Client:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(sandbox.rest_url.replace("http", "ws") + path)
    return Client(session, ws)


def subscribe(pairs: list[str], **subscription: Any) -> dict[str, Any]:
    return {"event": "subscribe", "pair": pairs, "subscription": subscription}


def is_error(frame: Any) -> bool:
    return isinstance(frame, dict) and "errorMessage" in frame


def is_event(name: str) -> Callable[[Any], bool]:
    return lambda frame: isinstance(frame, dict) and frame.get("event") == name


def test_system_status_first_and_ping(sandbox: RunningSandbox) -> None:
    async def scenario() -> None:
        client = await connect(sandbox)
        first = await client.receive()
        status = decode_server(json.dumps(first))
        assert isinstance(status, SystemStatus) and status.status == "online"
        assert isinstance(first["connectionID"], int) and 0 <= first["connectionID"] < 2**64
        await client.send({"event": "ping", "reqid": 42})
        assert await client.receive() == {"event": "pong", "reqid": 42}
        await client.send({"event": "ping"})
        assert await client.receive() == {"event": "pong"}
        await client.close()

    run(scenario)


def test_one_ack_per_pair_and_ticker_snapshot(sandbox: RunningSandbox) -> None:
    async def scenario() -> None:
        client = await connect(sandbox)
        await client.receive()
        await client.send(
            {"event": "subscribe", "reqid": 7, "pair": ["XBT/USD", "ETH/EUR", "XDG/XBT"],
             "subscription": {"name": "ticker"}}
        )  # fmt: skip
        acks, tickers = [], []
        while len(acks) < 3 or len(tickers) < 3:
            frame = await client.receive()
            if isinstance(frame, dict) and frame.get("event") == "subscriptionStatus":
                acks.append(frame)
            elif isinstance(frame, list) and frame[-2] == "ticker":
                tickers.append(frame)
        assert {a["pair"] for a in acks} == {"XBT/USD", "ETH/EUR", "XDG/XBT"}
        assert all(a["reqid"] == 7 and a["status"] == "subscribed" for a in acks)
        assert len({a["channelID"] for a in acks}) == 3
        for frame in tickers:
            decoded = decode_server(json.dumps(frame))
            assert type(decoded).__name__ == "Ticker"
        await client.close()

    run(scenario)


def test_every_depth_verifies_every_checksum_while_users_sweep(sandbox: RunningSandbox) -> None:
    """Over a busy market with user orders sweeping levels, every checksum at every depth
    verifies; then, with the market paused, each maintained book equals a fresh snapshot."""

    async def scenario() -> dict[str, int]:
        client = await connect(sandbox)
        await client.receive()
        for depth in (10, 25, 100, 500, 1000):
            await client.send(
                {"event": "subscribe", "pair": ["XBT/USD", "ETH/USD"],
                 "subscription": {"name": "book", "depth": depth}}
            )  # fmt: skip
        books: dict[tuple[str, str], OrderBook] = {}
        verified: dict[str, int] = {}

        def take(frame: Any) -> None:
            message = decode_server(json.dumps(frame))
            if isinstance(message, BookSnapshot):
                key = (message.channel_name, message.pair)
                assert key not in books, "one snapshot per subscription"
                books[key] = OrderBook(message.pair, depth_from_channel_name(message.channel_name))
                books[key].apply(message)
            elif isinstance(message, BookUpdate):
                books[(message.channel_name, message.pair)].apply(message)  # raises on mismatch
                verified[message.channel_name] = verified.get(message.channel_name, 0) + 1

        # KRAKENWS_SOAK_SECONDS=600 makes this the long soak run; the suite keeps it short.
        seconds = float(os.environ.get("KRAKENWS_SOAK_SECONDS", "8"))
        deadline = time.monotonic() + seconds
        sweeps_left = max(1, int(seconds // 4))
        next_sweep = time.monotonic() + 2
        while time.monotonic() < deadline:
            take(await client.receive())
            if sweeps_left and len(books) == 10 and time.monotonic() > next_sweep:
                sweeps_left -= 1
                next_sweep = time.monotonic() + 4
                await asyncio.to_thread(_sweep, sandbox)
        await asyncio.to_thread(sandbox.admin, "simulator", {"paused": True})
        try:
            with contextlib.suppress(TimeoutError):
                while True:
                    take(await client.receive(timeout=1.0))
            fresh = await connect(sandbox)
            await fresh.receive()
            for depth in (10, 25, 100, 500, 1000):
                await fresh.send(
                    {"event": "subscribe", "pair": ["XBT/USD", "ETH/USD"],
                     "subscription": {"name": "book", "depth": depth}}
                )  # fmt: skip
            snapshots = 0
            while snapshots < 10:
                message = decode_server(json.dumps(await fresh.receive()))
                if isinstance(message, BookSnapshot):
                    snapshots += 1
                    book = books[(message.channel_name, message.pair)]
                    assert [list(level[:2]) for level in book.iter_wire_asks()] == [
                        level[:2] for level in message.asks
                    ]
                    assert [list(level[:2]) for level in book.iter_wire_bids()] == [
                        level[:2] for level in message.bids
                    ]
            await fresh.close()
        finally:
            await asyncio.to_thread(sandbox.admin, "simulator", {"paused": False})
        await client.close()
        return verified

    verified = run(scenario)
    print(f"checksums verified per depth: {verified}")
    assert set(verified) == {"book-10", "book-25", "book-100", "book-500", "book-1000"}
    assert all(count > 5 for count in verified.values()), verified


def _sweep(sandbox: RunningSandbox) -> None:
    from tests.sandbox.test_rest_api import ok, private

    for side in ("buy", "sell"):
        ok(private(sandbox, "AddOrder", {"pair": "XBTUSD", "type": side, "ordertype": "market",
                                         "volume": "0.3"}))  # fmt: skip


def test_a_bad_depth_or_interval_is_answered_per_pair_with_the_pair(
    sandbox: RunningSandbox,
) -> None:
    """Spec 2.3's example: one error per pair, carrying the pair and the subscription; a pair
    Kraken does not know still gets its own error; a badly typed option is left out of the
    echo (a client decodes depth and interval as integers)."""
    spec_example = {
        "errorMessage": "Subscription depth not supported",
        "event": "subscriptionStatus",
        "pair": "XBT/USD",
        "status": "error",
        "subscription": {"depth": 42, "name": "book"},
    }

    async def errors(client: Client, request: dict[str, Any], count: int) -> list[Any]:
        await client.send(request)
        frames = [await client.receive() for _ in range(count)]
        assert all(is_error(frame) for frame in frames), frames  # and nothing subscribed
        return frames

    async def scenario() -> None:
        client = await connect(sandbox)
        await client.receive()
        [alone] = await errors(client, subscribe(["XBT/USD"], name="book", depth=42), 1)
        assert alone == spec_example
        both = await errors(
            client, {**subscribe(["XBT/USD", "ETH/USD"], name="book", depth=42), "reqid": 7}, 2
        )
        assert [(e["pair"], e["reqid"], e["errorMessage"]) for e in both] == [
            ("XBT/USD", 7, "Subscription depth not supported"),
            ("ETH/USD", 7, "Subscription depth not supported"),
        ]
        mixed = await errors(client, subscribe(["FOO/BAR", "XBT/USD"], name="ohlc", interval=7), 2)
        assert [(e["pair"], e["errorMessage"]) for e in mixed] == [
            ("FOO/BAR", "Currency pair not supported FOO/BAR"),
            ("XBT/USD", "Subscription ohlc interval not supported"),
        ]
        assert mixed[1]["subscription"] == {"interval": 7, "name": "ohlc"}
        [typed] = await errors(client, subscribe(["XBT/USD"], name="book", depth="10"), 1)
        assert typed["pair"] == "XBT/USD" and typed["subscription"] == {"name": "book"}
        [unknown] = await errors(client, subscribe(["XBT/USD"], name="nope"), 1)
        assert unknown["errorMessage"] == "Subscription name invalid"
        assert unknown["subscription"] == {"name": "nope"}
        for frame in [alone, *both, *mixed, typed, unknown]:
            decode_server(json.dumps(frame))
        await client.close()

    run(scenario)


def test_unsubscribe_by_channel_id(sandbox: RunningSandbox) -> None:
    """The legacy form (spec 2.2): a channelID instead of the pairs and subscription."""

    async def scenario() -> None:
        client = await connect(sandbox)
        await client.receive()
        await client.send(subscribe(["XBT/USD"], name="book", depth=25))
        ack = await client.receive_until(is_event("subscriptionStatus"))
        await client.send({"event": "unsubscribe", "reqid": 5, "channelID": ack["channelID"]})
        done = await client.receive_until(is_event("subscriptionStatus"))
        assert done == {
            "channelID": ack["channelID"],
            "channelName": "book-25",
            "event": "subscriptionStatus",
            "pair": "XBT/USD",
            "reqid": 5,
            "status": "unsubscribed",
            "subscription": {"depth": 25, "name": "book"},
        }
        decode_server(json.dumps(done))
        await client.send({"event": "unsubscribe", "channelID": ack["channelID"]})
        again = await client.receive_until(is_error)
        assert again["errorMessage"] == "Subscription Not Found"
        assert again["channelID"] == ack["channelID"]
        decode_server(json.dumps(again))
        await client.close()

    run(scenario)


ERRORS = [
    ({"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "book", "depth": 42}},
     "Subscription depth not supported"),
    ({"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "book", "depth": "10"}},
     "Subscription book depth must be an integer"),
    ({"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "ohlc", "interval": 7}},
     "Subscription ohlc interval not supported"),
    ({"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "ohlc", "interval": "5"}},
     "Subscription ohlc interval must be an integer"),
    ({"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "nope"}},
     "Subscription name invalid"),
    ({"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "ticker", "x": 1}},
     "Subscription object unsupported field"),
    ({"event": "subscribe", "pair": ["XBT/USD"], "subscription": "ticker"},
     "Subscription field must be an object"),
    ({"event": "subscribe", "pair": "XBT/USD", "subscription": {"name": "ticker"}},
     "Pair field must be an array"),
    ({"event": "subscribe", "pair": ["LSK/XBT"], "subscription": {"name": "ticker"}},
     "Currency pair not supported LSK/XBT"),
    ({"event": "subscribe", "pair": ["XBTUSDT"], "subscription": {"name": "ticker"}},
     "Currency pair not in ISO 4217-A3 format XBTUSDT"),
    ({"event": "unsubscribe", "pair": ["XBT/USD"], "subscription": {"name": "spread"}},
     "Subscription Not Found"),
    ({"event": "subscribe", "subscription": {"name": "openOrders", "token": "x"}},
     "Private data and trading are unavailable on this endpoint. Try ws-auth.kraken.com"),
    ({"reqid": 1, "pair": ["XBT/USD"]}, "Event(s) not found"),
    ({"event": "ping ", "reqid": 1}, "Unsupported event"),
    ({"event": "ping", "reqid": "a"},
     "Reqid field must be a positive integer less than 18446744073709551616"),
]  # fmt: skip


def test_error_strings(sandbox: RunningSandbox) -> None:
    async def scenario() -> None:
        client = await connect(sandbox)
        await client.receive()
        for request, message in ERRORS:
            await client.send(request)
            frame = await client.receive_until(
                lambda f: isinstance(f, dict) and "errorMessage" in f
            )
            assert frame["errorMessage"] == message, (request, frame)
            assert frame["status"] == "error"
            if "reqid" in request:
                assert frame["reqid"] == request["reqid"]
            else:
                assert "reqid" not in frame
            decode_server(json.dumps(frame))  # every error reply is a valid v1 message
        await client.send("{not json")
        assert await client.receive() == {"errorMessage": "Malformed request", "event": "error"}
        await client.send(
            {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "trade"}}
        )
        await client.receive_until(is_event("subscriptionStatus"))
        await client.send(
            {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "trade"}}
        )
        frame = await client.receive_until(is_error)
        assert frame["errorMessage"] == "Already subscribed" and frame["pair"] == "XBT/USD"
        await client.close()

    run(scenario)


def test_btc_spelling_is_normalised_and_unsubscribe(sandbox: RunningSandbox) -> None:
    async def scenario() -> None:
        client = await connect(sandbox)
        await client.receive()
        await client.send(
            {"event": "subscribe", "pair": ["BTC/USD"], "subscription": {"name": "spread"}}
        )
        ack = await client.receive_until(is_event("subscriptionStatus"))
        assert ack["pair"] == "XBT/USD" and ack["channelName"] == "spread"
        await client.send(
            {"event": "unsubscribe", "pair": ["XBT/USD"], "subscription": {"name": "spread"}}
        )
        gone = await client.receive_until(
            lambda f: isinstance(f, dict) and f.get("status") == "unsubscribed"
        )
        assert gone["channelID"] == ack["channelID"]
        await client.close()

    run(scenario)


def test_public_channels_refused_on_the_private_endpoint(sandbox: RunningSandbox) -> None:
    async def scenario() -> None:
        client = await connect(sandbox, "/ws-auth")
        await client.receive()
        await client.send(
            {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "ticker"}}
        )
        frame = await client.receive_until(is_error)
        assert frame["errorMessage"] == "Public channels not available in this endpoint"
        await client.close()

    run(scenario)


def test_heartbeat_after_a_second_of_silence(sandbox: RunningSandbox) -> None:
    # The simulator trades every pair (ohlc frames included): pause it, so the subscription
    # below really falls silent.
    sandbox.admin("simulator", {"paused": True})
    try:
        _heartbeat_scenario(sandbox)
    finally:
        sandbox.admin("simulator", {"paused": False})


def _heartbeat_scenario(sandbox: RunningSandbox) -> None:
    async def scenario() -> None:
        client = await connect(sandbox)
        await client.receive()
        # No heartbeat before anything is subscribed: after 1.6 s of silence the next frame
        # is the answer to our ping.
        await asyncio.sleep(1.6)
        await client.send({"event": "ping", "reqid": 5})
        assert await client.receive() == {"event": "pong", "reqid": 5}
        await client.send(
            {
                "event": "subscribe",
                "pair": ["USDC/USD"],
                "subscription": {"name": "ohlc", "interval": 21600},
            }
        )
        await client.receive_until(is_event("subscriptionStatus"))
        beat = await client.receive_until(is_event("heartbeat"), timeout=5)
        assert isinstance(decode_server(json.dumps(beat)), Heartbeat)
        await client.close()

    run(scenario)


def test_two_hundred_connections_within_a_second(sandbox: RunningSandbox) -> None:
    async def scenario() -> int:
        # limit=0: aiohttp's default pool of 100 connections would queue the other hundred.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            url = sandbox.rest_url.replace("http", "ws") + "/ws"
            sockets = await asyncio.gather(*(session.ws_connect(url) for _ in range(200)))
            greeted = 0
            for ws in sockets:
                message = await ws.receive(timeout=10)
                greeted += json.loads(message.data)["event"] == "systemStatus"
            await asyncio.gather(*(ws.close() for ws in sockets))
            return greeted

    started = time.monotonic()
    assert run(scenario) == 200
    assert time.monotonic() - started < 30


def test_subscription_status_replies_decode(sandbox: RunningSandbox) -> None:
    async def scenario() -> None:
        client = await connect(sandbox)
        await client.receive()
        await client.send(
            {
                "event": "subscribe",
                "pair": ["ETH/XBT"],
                "subscription": {"name": "book", "depth": 25},
            }
        )
        ack = decode_server(json.dumps(await client.receive_until(is_event("subscriptionStatus"))))
        assert isinstance(ack, SubscriptionStatus) and ack.channel_name == "book-25"
        await client.close()

    run(scenario)


def test_the_same_flows_over_wss_with_the_exported_ca(tmp_path: Any) -> None:
    from krakenws.sandbox.tls import client_ssl_context

    async def scenario(running: RunningSandbox) -> None:
        assert running.rest_url_tls is not None and running.ca_pem is not None
        context = client_ssl_context(running.ca_pem)
        async with aiohttp.ClientSession() as session:
            url = running.rest_url_tls.replace("https", "wss") + "/ws"
            async with session.ws_connect(url, ssl=context) as ws:
                first = json.loads((await ws.receive(timeout=10)).data)
                assert first["event"] == "systemStatus"
                await ws.send_str(json.dumps(subscribe(["XBT/USD"], name="book", depth=10)))
                book = OrderBook("XBT/USD", 10)
                updates = 0
                while updates < 3:
                    message = decode_server((await ws.receive(timeout=10)).data)
                    if isinstance(message, BookSnapshot):
                        book.apply(message)
                    elif isinstance(message, BookUpdate):
                        book.apply(message)
                        updates += 1
        # aiohttp closes TLS transports a moment after the session (its documented graceful
        # shutdown): give them that moment, or a later test meets the unclosed socket.
        await asyncio.sleep(0.25)

    with run_sandbox(
        seed=4, main_levels=30, sim_rate=20, tls=True, tls_dir=str(tmp_path)
    ) as running:
        run(lambda: scenario(running))


def test_exceeded_message_rate(sandbox: RunningSandbox) -> None:
    async def scenario() -> list[Any]:
        client = await connect(sandbox)
        await client.receive()
        for reqid in range(1, 301):
            await client.send({"event": "ping", "reqid": reqid})
        replies = [await client.receive_until(lambda f: "reqid" in f) for _ in range(300)]
        await client.close()
        return replies

    replies = run(scenario)
    refused = [r for r in replies if r.get("errorMessage") == "Exceeded msg rate"]
    assert refused and len(refused) < 120
    assert all(r["event"] == "error" and isinstance(r["reqid"], int) for r in refused)
    decode_server(json.dumps(refused[0]))
    assert sum(r.get("event") == "pong" for r in replies) >= 200


def test_unlimited_tier_lifts_the_message_rate() -> None:
    """The sandbox's own load-test tier answers every message (Kraken's tiers keep the limit,
    see test_exceeded_message_rate)."""

    async def scenario(running: RunningSandbox) -> list[Any]:
        client = await connect(running)
        await client.receive()
        for reqid in range(1, 401):
            await client.send({"event": "ping", "reqid": reqid})
        replies = [await client.receive_until(lambda f: "reqid" in f) for _ in range(400)]
        await client.close()
        return replies

    with run_sandbox(simulator=False, tier="unlimited") as running:
        replies = run(lambda: scenario(running))
    assert [r.get("event") for r in replies] == ["pong"] * 400
    assert [r["reqid"] for r in replies] == list(range(1, 401))
