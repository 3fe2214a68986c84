"""History paging when records share a microsecond: ``start``/``end`` given as a record id
must cut at exactly that record, not at its time (a fast client fills several orders within
one microsecond of the sandbox clock)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest

from krakenws.auth import api_sign
from krakenws.sandbox.engine import OrderRequest
from krakenws.sandbox.exchange import Exchange
from krakenws.sandbox.marketdata import MarketData
from krakenws.sandbox.rest_api import RestApi

FROZEN = 1_700_000_000_123_456  # µs: every command of this exchange happens at this instant
ORDERS = 6


class Frozen:
    def __init__(self) -> None:
        self.exchange = Exchange.open(":memory:", seed=1, clock=lambda: FROZEN)
        account = self.exchange.create_account("pager")
        key = self.exchange.create_api_key(account)
        self.key, self.secret = key.key, key.secret
        maker = self.exchange.create_account("maker")
        for who in (account, maker):
            self.exchange.deposit(who, "ZUSD", Decimal("1000000"))
            self.exchange.deposit(who, "XXBT", Decimal("100"))
        self.exchange.add_order(
            maker,
            OrderRequest(
                pair="XBT/USD", type="sell", ordertype="limit", volume="5", price="30000.0"
            ),
        )
        self.api = RestApi(self.exchange, MarketData(), rest_limits=False)
        self._nonces = itertools.count(1)

    def ok(self, name: str, params: dict[str, Any] | None = None) -> Any:
        nonce = next(self._nonces)
        body = urlencode({"nonce": nonce, **(params or {})})
        path = f"/0/private/{name}"
        headers = {"API-Key": self.key, "API-Sign": api_sign(path, nonce, body, self.secret)}
        status, payload = self.api.handle("POST", path, {}, headers, body.encode())
        assert status == 200 and payload["error"] == [], payload
        return payload["result"]


@pytest.fixture(scope="module")
def frozen() -> Iterator[Frozen]:
    sandbox = Frozen()
    for _ in range(ORDERS):
        sandbox.ok(
            "AddOrder", {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.01"}
        )
    try:
        yield sandbox
    finally:
        sandbox.exchange.close()


@pytest.mark.parametrize(
    ("name", "key", "count"),
    # the ledger: two deposits, then a currency and a base entry per fill
    [
        ("ClosedOrders", "closed", ORDERS),
        ("TradesHistory", "trades", ORDERS),
        ("Ledgers", "ledger", 2 + 2 * ORDERS),
    ],
)
def test_an_id_cuts_at_that_record_among_records_of_one_microsecond(
    frozen: Frozen, name: str, key: str, count: int
) -> None:
    records = list(frozen.ok(name)[key])  # newest first
    assert len(records) == count
    assert len(set(records)) == len(records)
    for n, record in enumerate(records):
        # exclusive start: only what came after; inclusive end: that record and what came before
        assert list(frozen.ok(name, {"start": record})[key]) == records[:n]
        assert list(frozen.ok(name, {"end": record})[key]) == records[n:]
        assert frozen.ok(name, {"start": record})["count"] == n
    # a time as start is exclusive of every record of that microsecond, as end inclusive of all
    instant = f"{FROZEN // 1_000_000}.{FROZEN % 1_000_000:06d}"
    assert frozen.ok(name, {"start": instant})[key] == {}
    assert list(frozen.ok(name, {"end": instant})[key]) == records
