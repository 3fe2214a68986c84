"""The private endpoint over real sockets (token, feeds, trading) and the fault endpoints."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from krakenws.protocol.book import OrderBook
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import BookSnapshot, BookUpdate, OpenOrders, OwnTrades
from krakenws.testing import RunningSandbox, run_sandbox
from tests.sandbox.test_rest_api import ok, private
from tests.sandbox.test_ws_public import Client, connect, is_event, run, subscribe


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(seed=9, main_levels=40, sim_rate=20) as running:
        yield running


def token(sandbox: RunningSandbox) -> str:
    return str(ok(private(sandbox, "GetWebSocketsToken"))["token"])


def test_private_feeds_and_trading_over_ws_auth(sandbox: RunningSandbox) -> None:
    ws_token = token(sandbox)

    async def scenario() -> None:
        client = await connect(sandbox, "/ws-auth")
        await client.receive()
        await client.send(
            {"event": "subscribe", "reqid": 1,
             "subscription": {"name": "openOrders", "token": ws_token, "ratecounter": True}}
        )  # fmt: skip
        ack = await client.receive_until(is_event("subscriptionStatus"))
        assert ack["status"] == "subscribed" and ack["subscription"]["maxratecount"] == 60
        snapshot = decode_server(json.dumps(await client.receive()))
        assert isinstance(snapshot, OpenOrders) and snapshot.sequence == 1
        await client.send(
            {"event": "subscribe", "subscription": {"name": "ownTrades", "token": ws_token}}
        )
        await client.receive_until(is_event("subscriptionStatus"))
        await client.send(
            {"event": "addOrder", "token": ws_token, "reqid": 2, "pair": "XBT/USD", "type": "buy",
             "ordertype": "limit", "volume": "0.01", "price": "10000.0"}
        )  # fmt: skip
        status = await client.receive_until(is_event("addOrderStatus"))
        assert status["status"] == "ok" and status["reqid"] == 2
        txid = status["txid"]
        assert status["descr"] == "buy 0.01000000 XBTUSD @ limit 10000.0"
        await client.send(
            {"event": "cancelOrder", "token": ws_token, "txid": [txid, "OAAAAA-AAAAA-AAAAAA"]}
        )
        statuses = [await client.receive_until(is_event("cancelOrderStatus")) for _ in range(2)]
        assert sorted(s["status"] for s in statuses) == ["error", "ok"]
        assert "reqid" not in statuses[0]
        await client.send(
            {"event": "addOrder", "token": ws_token, "pair": "XBT/USD", "type": "buy",
             "ordertype": "market", "volume": "0.01"}
        )  # fmt: skip
        trades = await client.receive_until(
            lambda f: isinstance(f, list) and f[1] == "ownTrades" and f[2]["sequence"] > 1
        )
        message = decode_server(json.dumps(trades))
        assert isinstance(message, OwnTrades) and message.trades[0][1].pair == "XBT/USD"
        await client.send({"event": "cancelAllOrdersAfter", "token": ws_token, "timeout": 60})
        armed = await client.receive_until(is_event("cancelAllOrdersAfterStatus"))
        assert armed["status"] == "ok" and armed["triggerTime"].endswith("Z")
        await client.send({"event": "addOrder", "token": "wrong", "pair": "XBT/USD"})
        refused = await client.receive_until(is_event("addOrderStatus"))
        assert (
            refused["errorMessage"] == "ESession:Invalid session" and refused["pair"] == "XBT/USD"
        )
        await client.close()

    run(scenario)


def test_a_bad_reqid_is_refused_with_what_identifies_the_request(sandbox: RunningSandbox) -> None:
    """Spec 1.6: the error echoes the reqid exactly as sent (null too) and the request's pair."""
    ws_token = token(sandbox)

    async def scenario() -> None:
        client = await connect(sandbox, "/ws-auth")
        await client.receive()
        await client.send(
            {"event": "addOrder", "token": ws_token, "reqid": None, "pair": "USDC/USD",
             "type": "buy", "ordertype": "limit", "price": "0.9", "volume": "10"}
        )  # fmt: skip
        message = await client.ws.receive(timeout=10)
        assert message.data == (
            '{"errorMessage":"Reqid field must be a positive integer less than '
            '18446744073709551616","event":"addOrderStatus","pair":"USDC/USD","reqid":null,'
            '"status":"error"}'
        )
        await client.send({"event": "cancelAll", "token": ws_token, "reqid": "a"})
        refused = await client.receive_until(is_event("cancelAllStatus"))
        assert refused["reqid"] == "a" and "pair" not in refused
        await client.send({"event": "cancelAll", "token": ws_token, "reqid": 4})
        counted = await client.receive_until(is_event("cancelAllStatus"))
        assert counted["status"] == "ok" and counted["reqid"] == 4 and "pair" not in counted
        await client.close()

    run(scenario)


def test_a_token_serves_many_connections(sandbox: RunningSandbox) -> None:
    ws_token = token(sandbox)

    async def scenario() -> None:
        for _ in range(3):
            client = await connect(sandbox, "/ws-auth")
            await client.receive()
            await client.send({"event": "cancelAll", "token": ws_token, "reqid": 3})
            status = await client.receive_until(is_event("cancelAllStatus"))
            assert status["status"] == "ok" and isinstance(status["count"], int)
            await client.close()

    run(scenario)


def test_private_channels_need_a_valid_token(sandbox: RunningSandbox) -> None:
    async def scenario() -> None:
        client = await connect(sandbox, "/ws-auth")
        await client.receive()
        await client.send(
            {"event": "subscribe", "subscription": {"name": "ownTrades", "token": "nope"}}
        )
        error = await client.receive_until(is_event("subscriptionStatus"))
        assert error["errorMessage"] == "ESession:Invalid session"
        await client.send(
            {"event": "subscribe", "pair": ["XBT/USD"],
             "subscription": {"name": "openOrders", "token": "nope"}}
        )  # fmt: skip
        error = await client.receive_until(is_event("subscriptionStatus"))
        assert error["errorMessage"] == "Pair field unsupported for this subscription type"
        await client.close()

    run(scenario)


def test_a_private_unsubscribe_needs_the_token_again(sandbox: RunningSandbox) -> None:
    """Spec 2.2: without a valid token the feed stays subscribed."""
    ws_token = token(sandbox)

    async def scenario() -> None:
        client = await connect(sandbox, "/ws-auth")
        await client.receive()
        await client.send(
            {"event": "subscribe", "subscription": {"name": "openOrders", "token": ws_token}}
        )
        await client.receive_until(is_event("subscriptionStatus"))
        for wrong in ({}, {"token": "nope"}):
            await client.send(
                {
                    "event": "unsubscribe",
                    "reqid": 3,
                    "subscription": {"name": "openOrders", **wrong},
                }
            )
            refused = await client.receive_until(is_event("subscriptionStatus"))
            assert refused == {
                "errorMessage": "ESession:Invalid session",
                "event": "subscriptionStatus",
                "reqid": 3,
                "subscription": {"name": "openOrders"},
                "status": "error",
            }
        await client.send(
            {"event": "unsubscribe", "subscription": {"name": "openOrders", "token": ws_token}}
        )
        done = await client.receive_until(is_event("subscriptionStatus"))
        assert done["status"] == "unsubscribed" and done["channelName"] == "openOrders"
        await client.close()

    run(scenario)


# --- faults --------------------------------------------------------------------------------------


async def book_client(sandbox: RunningSandbox) -> tuple[Client, OrderBook]:
    client = await connect(sandbox)
    await client.receive()
    await client.send(subscribe(["XBT/USD"], name="book", depth=10))
    book = OrderBook("XBT/USD", 10)
    while True:
        message = decode_server(json.dumps(await client.receive()))
        if isinstance(message, BookSnapshot):
            book.apply(message)
            return client, book


def test_corrupted_checksum_is_caught_by_our_book(sandbox: RunningSandbox) -> None:
    async def scenario() -> bool:
        client, book = await book_client(sandbox)
        await asyncio.to_thread(sandbox.admin, "faults/corrupt-checksum", {"pair": "XBT/USD"})
        try:
            while True:
                message = decode_server(json.dumps(await client.receive()))
                if isinstance(message, BookUpdate):
                    book.apply(message)
        except Exception as error:  # the mismatch
            from krakenws.errors import ChecksumMismatchError

            return isinstance(error, ChecksumMismatchError)
        finally:
            await client.close()

    assert run(scenario)


def test_drop_connections_with_a_chosen_code(sandbox: RunningSandbox) -> None:
    async def scenario() -> tuple[Any, int]:
        client, _ = await book_client(sandbox)
        result = await asyncio.to_thread(sandbox.admin, "faults/drop", {"code": 4001})
        while True:
            message = await client.ws.receive(timeout=10)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                await client.session.close()
                return result, message.data

    result, code = run(scenario)
    assert result["dropped"] >= 1 and code == 4001


def test_stopped_heartbeats_and_status_push(sandbox: RunningSandbox) -> None:
    async def scenario() -> None:
        client = await connect(sandbox)
        await client.receive()
        await asyncio.to_thread(sandbox.admin, "simulator", {"paused": True})  # a quiet market
        await client.send(subscribe(["USDC/USD"], name="ohlc", interval=21600))
        await client.receive_until(is_event("subscriptionStatus"))
        await client.receive_until(is_event("heartbeat"), timeout=5)
        await asyncio.to_thread(sandbox.admin, "faults/heartbeats", {"enabled": False})
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await asyncio.to_thread(sandbox.admin, "status", {"status": "maintenance"})
        status = await client.receive_until(is_event("systemStatus"), timeout=5)
        assert status["status"] == "maintenance"
        with pytest.raises(TimeoutError):
            await client.receive_until(is_event("heartbeat"), timeout=2.5)
        assert time.monotonic() - started >= 2
        await asyncio.to_thread(sandbox.admin, "status", {"status": "online"})
        await asyncio.to_thread(sandbox.admin, "faults/heartbeats", {"enabled": True})
        await asyncio.to_thread(sandbox.admin, "simulator", {"paused": False})
        await client.session.close()

    run(scenario)


def test_refuse_the_next_connections(sandbox: RunningSandbox) -> None:
    async def scenario() -> int:
        await asyncio.to_thread(sandbox.admin, "faults/refuse", {"count": 2})
        refused = 0
        async with aiohttp.ClientSession() as session:
            url = sandbox.rest_url.replace("http", "ws") + "/ws"
            for _ in range(3):
                try:
                    ws = await session.ws_connect(url)
                except aiohttp.WSServerHandshakeError:
                    refused += 1
                else:
                    await ws.close()
        return refused

    assert run(scenario) == 2


def test_delayed_messages(sandbox: RunningSandbox) -> None:
    async def scenario() -> float:
        client = await connect(sandbox)
        await client.receive()
        await asyncio.to_thread(sandbox.admin, "faults/delay", {"seconds": 0.5})
        started = time.monotonic()
        await client.send({"event": "ping", "reqid": 1})
        await client.receive_until(is_event("pong"))
        elapsed = time.monotonic() - started
        await asyncio.to_thread(sandbox.admin, "faults/delay", {"seconds": 0})
        await client.close()
        return elapsed

    assert run(scenario) >= 0.45


def test_idle_connections_without_subscriptions_are_closed(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from krakenws.sandbox import ws_api

    monkeypatch.setattr(ws_api, "IDLE_SECONDS", 1.0)  # Kraken's minute, shortened for the test

    async def scenario() -> tuple[Any, bool]:
        idle = await connect(sandbox)
        busy = await connect(sandbox)
        await idle.receive()
        await busy.receive()
        await busy.send(subscribe(["XBT/USD"], name="trade"))
        closing = await idle.ws.receive(timeout=5)
        await asyncio.sleep(1.5)
        still_open = not busy.ws.closed
        await idle.session.close()
        await busy.close()
        return closing.type, still_open

    kind, still_open = run(scenario)
    assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert still_open


def test_inject_sends_raw_frames_as_they_are_to_the_chosen_connections(
    sandbox: RunningSandbox,
) -> None:
    async def scenario() -> None:
        public, secret = await connect(sandbox), await connect(sandbox, "/ws-auth")
        greeting = await public.receive()
        await secret.receive()
        frames = ["not json", '{"event":"mystery"}', "[1,2]"]
        result = await asyncio.to_thread(
            sandbox.admin, "faults/inject", {"frames": frames, "private": False}
        )
        assert result == {"connections": 1}  # only the public one
        for expected in frames:
            message = await public.ws.receive(timeout=5)
            assert message.type == aiohttp.WSMsgType.TEXT and message.data == expected
        # by connectionID, whatever the endpoint
        result = await asyncio.to_thread(
            sandbox.admin,
            "faults/inject",
            {"frames": ["x"], "connections": [greeting["connectionID"]]},
        )
        assert result == {"connections": 1}
        assert (await public.ws.receive(timeout=5)).data == "x"
        await secret.send({"event": "ping", "reqid": 5})  # nothing injected went to it
        assert await secret.receive() == {"event": "pong", "reqid": 5}
        refusals: list[dict[str, object]] = [
            {},
            {"frames": []},
            {"frames": "text"},
            {"frames": [1]},
            {"frames": ["x"], "private": "yes"},
            {"frames": ["x"], "connections": ["1"]},
        ]
        for bad in refusals:
            with pytest.raises(urllib.error.HTTPError) as refused:
                await asyncio.to_thread(sandbox.admin, "faults/inject", bad)
            refused.value.close()
            assert refused.value.code == 400
        for client in (public, secret):
            await client.ws.close()
            await client.session.close()

    run(scenario)
