"""The client's mirror of Kraken's per-pair trading counter (spec 7.6), against a sandbox that
enforces the Starter tier: with the mirror, the client waits instead of being refused;
without it, Kraken's ``EOrder:Rate limit exceeded`` comes back as OrderRateLimitError."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from krakenws.client import Client
from krakenws.errors import KrakenTimeoutError, OrderRateLimitError
from krakenws.rest import RestClient
from krakenws.testing import run_sandbox
from tests.client.support import client_for, run

# 7 adds (+1 each) and 7 cancels under 5 s (+8 each; a cancel may cross the threshold) leave
# the Starter counter at 63: the next add (+1) must wait until it has decayed to 59 (4 s).
ORDERS = 7


async def churn(client: Client) -> None:
    for _ in range(ORDERS):
        order = await client.add_order("XBT/USD", "buy", "limit", "0.01", price="1000", track=False)
        await client.cancel_order(order.txid)


def test_without_the_mirror_kraken_refuses_the_order() -> None:
    with run_sandbox(simulator=False, tier="starter") as sandbox:

        async def body() -> None:
            async with client_for(sandbox, rate_limit=False) as client:
                await churn(client)
                with pytest.raises(OrderRateLimitError) as caught:
                    await client.add_order("XBT/USD", "buy", "limit", "0.01", price="1000")
                assert caught.value.kraken_error == "EOrder:Rate limit exceeded"

        run(body)


def test_with_the_mirror_the_client_waits_instead() -> None:
    with run_sandbox(simulator=False, tier="starter") as sandbox:

        async def body() -> float:
            async with client_for(sandbox, tier="starter") as client:
                await churn(client)
                loop = asyncio.get_running_loop()
                started = loop.time()
                order = await client.add_order(
                    "XBT/USD", "buy", "limit", "0.01", price="1000", track=False
                )
                waited = loop.time() - started
                await client.cancel_all()
                assert order.txid
                return waited

        waited = run(body)
        assert 2.0 < waited < 8.0, waited


def test_a_cancel_by_userref_or_cl_ord_id_is_charged_for_every_order_it_closes() -> None:
    """Three orders under one userref and one with a cl_ord_id, cancelled by those references
    in one call: the mirror books a brand-new order's cancel (+8) for each of the four, as
    Kraken does, not nothing (it used to know only txids)."""
    with run_sandbox(simulator=False, tier="starter") as sandbox:

        async def body() -> None:
            async with client_for(sandbox, tier="starter") as client:
                for _ in range(3):
                    await client.add_order(
                        "XBT/USD", "buy", "limit", "0.01", price="1000", userref=77, track=False
                    )
                await client.add_order(
                    "XBT/USD", "buy", "limit", "0.01", price="1000", cl_ord_id="mine-1", track=False
                )
                mirror = client.rest.trading_mirror
                key = "XXBTZUSD"  # the mirror counts under the REST key, as ratecount does
                before = mirror.value(key, now())
                assert before > 3
                await client.cancel_order("77", cl_ord_ids=["mine-1"])
                after = mirror.value(key, now())
                assert 4 * 8 - 1 < after - before <= 4 * 8, (before, after)
                assert mirror.orders_named(["77"], ["mine-1"]) == []  # forgotten once cancelled
                assert await client.rest.open_orders() == {}

        run(body)


def now() -> int:
    return time.monotonic_ns() // 1000  # the mirrors' clock


def test_a_wait_for_the_counter_keeps_to_the_timeout_and_books_nothing_until_sent() -> None:
    """A call whose charge cannot fit before its timeout fails at once; callers cancelled while
    waiting leave no charge behind, so the next call waits only for what was really spent."""
    with run_sandbox(simulator=False, tier="starter") as sandbox:

        async def body() -> None:
            async with client_for(sandbox, tier="starter") as client:
                await churn(client)  # the next add must wait about 4 s
                mirror = client.rest.trading_mirror
                before = mirror.value("XXBTZUSD", now())
                loop = asyncio.get_running_loop()
                started = loop.time()
                with pytest.raises(KrakenTimeoutError, match="trading rate counter"):
                    await client.add_order(
                        "XBT/USD", "buy", "limit", "0.01", price="1000", track=False, timeout=1.0
                    )
                assert loop.time() - started < 0.5  # failed at once, not after the timeout
                waiting = [
                    asyncio.ensure_future(
                        client.add_order(
                            "XBT/USD", "buy", "limit", "0.01", price="1000", track=False
                        )
                    )
                    for _ in range(10)
                ]
                await asyncio.sleep(0.2)
                for task in waiting:
                    task.cancel()
                await asyncio.gather(*waiting, return_exceptions=True)
                assert mirror.value("XXBTZUSD", now()) <= before  # nothing booked by them
                started = loop.time()
                await client.add_order("XBT/USD", "buy", "limit", "0.01", price="1000", track=False)
                assert loop.time() - started < 5.0  # not 10 phantom orders' worth more
                await client.cancel_all()

        run(body)


@pytest.mark.parametrize("by", ["userref", "cl_ord_id"])
def test_a_rest_cancel_by_userref_or_cl_ord_id_is_charged_for_every_order(by: str) -> None:
    """REST CancelOrder naming orders by userref or cl_ord_id costs +8 for each young order on
    the server; the mirror books the same, so the next AddOrder waits instead of being
    refused (it used to cost nothing here)."""
    with run_sandbox(simulator=False, tier="starter") as sandbox:

        async def body() -> None:
            async with RestClient(
                url=sandbox.rest_url, api_key=sandbox.api_key, api_secret=sandbox.api_secret
            ) as rest:
                for n in range(ORDERS):
                    named: dict[str, Any] = (
                        {"userref": 7} if by == "userref" else {"cl_ord_id": f"c{n}"}
                    )
                    await rest.add_order(
                        pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="1000",
                        **named,
                    )  # fmt: skip
                if by == "userref":
                    assert (await rest.cancel_order(7)).count == ORDERS
                else:
                    for n in range(ORDERS):
                        await rest.cancel_order(cl_ord_id=f"c{n}")
                assert rest.trading_mirror.value("XXBTZUSD", now()) > 8 * ORDERS
                for _ in range(3):  # waits for the counter, and is not refused
                    await rest.add_order(
                        pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price="1000"
                    )
                await rest.cancel_all()

        run(body)
