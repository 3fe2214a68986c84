"""A real third-party client, ccxt 4.4.82 (its Kraken code speaks REST + WS v1), unmodified.

Only its base URLs are pointed at the sandbox on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from krakenws.testing import RunningSandbox, run_sandbox

ccxt = pytest.importorskip("ccxt", reason="ccxt is in the dev extras")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(seed=11, main_levels=80) as running:
        yield running


@pytest.fixture(scope="module")
def kraken(sandbox: RunningSandbox) -> Any:
    exchange = ccxt.kraken(
        {"apiKey": sandbox.api_key, "secret": sandbox.api_secret, "enableRateLimit": False}
    )
    exchange.urls["api"]["public"] = sandbox.rest_url
    exchange.urls["api"]["private"] = sandbox.rest_url
    exchange.load_markets()
    return exchange


def test_markets_and_public_data(kraken: Any) -> None:
    assert "BTC/USD" in kraken.markets and "ETH/EUR" in kraken.markets
    market = kraken.market("BTC/USD")
    assert market["id"] == "XXBTZUSD" and market["limits"]["amount"]["min"] == 0.0001
    assert "BTC" in kraken.currencies and "USD" in kraken.currencies
    ticker = kraken.fetch_ticker("BTC/USD")
    assert ticker["bid"] < ticker["ask"]
    book = kraken.fetch_order_book("BTC/USD", 25)
    assert len(book["bids"]) == 25 and len(book["asks"]) == 25
    assert book["bids"][0][0] < book["asks"][0][0]
    assert isinstance(kraken.fetch_ohlcv("BTC/USD", "1m"), list)
    assert isinstance(kraken.fetch_trades("BTC/USD"), list)


def test_balance_orders_and_trades(kraken: Any) -> None:
    balance = kraken.fetch_balance()
    assert balance["USD"]["total"] == 1_000_000 and balance["BTC"]["total"] == 100
    book = kraken.fetch_order_book("BTC/USD", 5)
    best_ask = book["asks"][0][0]
    far_price = round(best_ask * 0.85, 1)

    limit = kraken.create_order("BTC/USD", "limit", "buy", 0.01, far_price)
    assert limit["id"]
    open_orders = kraken.fetch_open_orders("BTC/USD")
    assert limit["id"] in [o["id"] for o in open_orders]
    fetched = kraken.fetch_order(limit["id"])
    assert fetched["status"] == "open" and fetched["price"] == far_price
    assert fetched["amount"] == 0.01

    stop = kraken.create_order(
        "BTC/USD", "market", "sell", 0.01, None, {"stopLossPrice": round(best_ask * 0.8, 1)}
    )
    assert kraken.fetch_order(stop["id"])["status"] == "open"

    kraken.cancel_order(limit["id"])
    kraken.cancel_order(stop["id"])
    assert kraken.fetch_order(limit["id"])["status"] == "canceled"

    market = kraken.create_order("BTC/USD", "market", "buy", 0.05)
    filled = kraken.fetch_order(market["id"])
    assert filled["status"] == "closed" and filled["filled"] == 0.05
    assert filled["average"] >= best_ask * 0.99

    closed = kraken.fetch_closed_orders("BTC/USD")
    assert {limit["id"], market["id"]} <= {o["id"] for o in closed}

    trades = kraken.fetch_my_trades("BTC/USD")
    mine = [t for t in trades if t["order"] == market["id"]]
    assert mine and sum(t["amount"] for t in mine) == pytest.approx(0.05)
    after = kraken.fetch_balance()
    assert after["BTC"]["total"] == pytest.approx(100.05)
    assert after["USD"]["total"] < 1_000_000 - 0.05 * best_ask * 0.99
