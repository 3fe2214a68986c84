"""The sandbox's REST API over real loopback sockets: shapes, auth, errors, bad input."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from krakenws.auth import sign_request
from krakenws.testing import RunningSandbox, run_sandbox

_nonces = itertools.count(1_700_000_000_000)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(seed=7, main_levels=60) as running:
        yield running


def _http(
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def public(sandbox: RunningSandbox, name: str, **query: str) -> dict[str, Any]:
    url = f"{sandbox.rest_url}/0/public/{name}"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    status, payload = _http(url)
    assert status == 200
    return payload


def private(
    sandbox: RunningSandbox,
    name: str,
    params: dict[str, object] | None = None,
    *,
    key: str | None = None,
    secret: str | None = None,
    nonce: int | None = None,
    json_body: bool = False,
) -> dict[str, Any]:
    path = f"/0/private/{name}"
    headers, body = sign_request(
        path,
        params or {},
        key or sandbox.api_key,
        secret or sandbox.api_secret,
        nonce if nonce is not None else next(_nonces),
        json_body=json_body,
    )
    status, payload = _http(sandbox.rest_url + path, data=body.encode(), headers=headers)
    assert status == 200, payload
    return payload


def ok(payload: dict[str, Any]) -> Any:
    assert payload["error"] == [], payload
    return payload["result"]


# --- public ------------------------------------------------------------------------------------


def test_time_and_status(sandbox: RunningSandbox) -> None:
    time = ok(public(sandbox, "Time"))
    assert isinstance(time["unixtime"], int) and time["rfc1123"].endswith("+0000")
    assert ok(public(sandbox, "SystemStatus"))["status"] == "online"


def test_assets_and_asset_pairs(sandbox: RunningSandbox) -> None:
    assets = ok(public(sandbox, "Assets"))
    assert assets["XXBT"]["altname"] == "XBT" and assets["ZUSD"]["decimals"] == 4
    pairs = ok(public(sandbox, "AssetPairs"))
    for wsname in (
        "XBT/USD",
        "XBT/EUR",
        "ETH/USD",
        "ETH/EUR",
        "ETH/XBT",
        "LTC/USD",
        "LTC/EUR",
        "SOL/USD",
        "XDG/USD",
        "XDG/XBT",
        "USDC/USD",
    ):
        assert any(p["wsname"] == wsname for p in pairs.values()), wsname
    xbt = pairs["XXBTZUSD"]
    assert (xbt["altname"], xbt["base"], xbt["quote"], xbt["pair_decimals"]) == (
        "XBTUSD",
        "XXBT",
        "ZUSD",
        1,
    )
    assert xbt["ordermin"] == "0.0001" and xbt["tick_size"] == "0.1"
    assert isinstance(xbt["fees"][0][1], float | int)
    for spelling in ("XBT/USD", "XBTUSD", "XXBTZUSD", "BTC/USD"):
        assert list(ok(public(sandbox, "AssetPairs", pair=spelling))) == ["XXBTZUSD"]
    fees = ok(public(sandbox, "AssetPairs", pair="ETHUSD", info="fees"))
    assert set(fees["XETHZUSD"]) == {"fees", "fee_volume_currency"}
    assert public(sandbox, "AssetPairs", pair="FOO/BAR")["error"] == ["EQuery:Unknown asset pair"]


def test_ticker_depth_ohlc_trades_spread(sandbox: RunningSandbox) -> None:
    ticker = ok(public(sandbox, "Ticker", pair="XBTUSD"))["XXBTZUSD"]
    assert set(ticker) == {"a", "b", "c", "v", "p", "t", "l", "h", "o"}
    assert isinstance(ticker["o"], str) and isinstance(ticker["a"][1], str)
    assert isinstance(ticker["t"][0], int)
    assert len(ticker["a"][0].split(".")[1]) == 5  # XBT/USD's v1 wire width
    depth = ok(public(sandbox, "Depth", pair="XBT/USD", count="10"))["XXBTZUSD"]
    assert len(depth["asks"]) == 10 and len(depth["bids"]) == 10
    assert isinstance(depth["asks"][0][2], int)
    assert float(depth["asks"][0][0]) > float(depth["bids"][0][0])
    ohlc = ok(public(sandbox, "OHLC", pair="XBTUSD", interval="5"))
    assert "last" in ohlc and isinstance(ohlc["XXBTZUSD"], list)
    trades = ok(public(sandbox, "Trades", pair="XBTUSD"))
    assert isinstance(trades["last"], str)
    spread = ok(public(sandbox, "Spread", pair="XBTUSD"))
    assert isinstance(spread["last"], int)
    assert public(sandbox, "OHLC", pair="XBTUSD", interval="7")["error"] == [
        "EGeneral:Invalid arguments:interval"
    ]


def test_post_to_public_and_unknown_paths_are_kraken_errors(sandbox: RunningSandbox) -> None:
    status, payload = _http(f"{sandbox.rest_url}/0/public/Time", data=b"x=1")
    assert 400 <= status < 500 and payload["error"]
    status, payload = _http(f"{sandbox.rest_url}/0/public/Nope")
    assert status == 404 and payload["error"] == ["EGeneral:Unknown method"]
    status, payload = _http(f"{sandbox.rest_url}/whatever")
    assert status == 404 and payload["error"] == ["EGeneral:Unknown method"]
    status, payload = _http(f"{sandbox.rest_url}/0/private/Balance")
    assert 400 <= status < 500 and payload["error"]


# --- private -----------------------------------------------------------------------------------


def test_balance_and_order_lifecycle(sandbox: RunningSandbox) -> None:
    balance = ok(private(sandbox, "Balance"))
    assert balance["ZUSD"] == "1000000.0000"
    ask = ok(public(sandbox, "Depth", pair="XBTUSD", count="1"))["XXBTZUSD"]["asks"][0][0]
    far = f"{float(ask) * 0.85:.1f}"
    placed = ok(
        private(
            sandbox,
            "AddOrder",
            {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "limit",
                "volume": "0.01",
                "price": far,
                "userref": 42,
            },
        )
    )
    assert isinstance(placed["txid"], list) and len(placed["txid"]) == 1
    assert placed["descr"]["order"].startswith("buy 0.01000000 XBTUSD @ limit ")
    txid = placed["txid"][0]
    open_orders = ok(private(sandbox, "OpenOrders"))["open"]
    assert open_orders[txid]["userref"] == 42
    assert open_orders[txid]["descr"]["pair"] == "XBTUSD"
    assert open_orders[txid]["status"] == "open"
    held = ok(private(sandbox, "BalanceEx"))["ZUSD"]
    assert float(held["hold_trade"]) > 0
    assert ok(private(sandbox, "CancelOrder", {"txid": txid})) == {"count": 1}
    closed = ok(private(sandbox, "ClosedOrders"))
    assert txid in closed["closed"] and closed["count"] >= 1
    assert closed["closed"][txid]["status"] == "canceled"
    assert "closetm" in closed["closed"][txid]
    queried = ok(private(sandbox, "QueryOrders", {"txid": txid, "trades": True}))
    assert queried[txid]["status"] == "canceled"


def test_crossing_order_fills_and_shows_in_trades_and_balances(sandbox: RunningSandbox) -> None:
    before = ok(private(sandbox, "Balance"))
    placed = ok(
        private(
            sandbox,
            "AddOrder",
            {
                "pair": "XBT/USD",
                "type": "buy",
                "ordertype": "market",
                "volume": "0.02",
            },
        )
    )
    txid = placed["txid"][0]
    order = ok(private(sandbox, "QueryOrders", {"txid": txid, "trades": True}))[txid]
    assert order["status"] == "closed" and order["vol_exec"] == "0.02000000"
    assert order["trades"]
    trades = ok(private(sandbox, "TradesHistory"))
    mine = [t for t in trades["trades"].values() if t["ordertxid"] == txid]
    assert mine and sum(float(t["vol"]) for t in mine) == pytest.approx(0.02)
    assert all(t["pair"] == "XXBTZUSD" for t in mine)
    after = ok(private(sandbox, "Balance"))
    assert float(after["XXBT"]) == pytest.approx(float(before["XXBT"]) + 0.02)
    assert float(after["ZUSD"]) < float(before["ZUSD"])
    ledger = ok(private(sandbox, "Ledgers"))
    assert ledger["count"] >= 2


def test_validate_and_errors_of_add_order(sandbox: RunningSandbox) -> None:
    validated = ok(
        private(
            sandbox,
            "AddOrder",
            {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "limit",
                "volume": "0.01",
                "price": "1000.0",
                "validate": True,
            },
        )
    )
    assert "txid" not in validated and validated["descr"]["order"]
    cases = [
        ({"volume": "0.00001", "price": "1000.0"}, "EOrder:Order minimum not met"),
        ({"volume": "0.01", "price": "1000.05"}, "EOrder:Tick size check failed"),
        ({"volume": "1000", "price": "50000.0"}, "EOrder:Insufficient funds"),
        ({"volume": "abc", "price": "1000.0"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "-1", "price": "1000.0"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "1e999999", "price": "1000.0"}, "EGeneral:Invalid arguments:volume"),
    ]
    for fields, error in cases:
        params = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", **fields}
        assert private(sandbox, "AddOrder", params)["error"] == [error], fields
    unknown = {"pair": "NOPE", "type": "buy", "ordertype": "market", "volume": "1"}
    assert private(sandbox, "AddOrder", unknown)["error"] == ["EQuery:Unknown asset pair"]
    assert private(sandbox, "CancelOrder", {"txid": "OAAAAA-AAAAA-AAAAAA"})["error"] == [
        "EOrder:Unknown order"
    ]


def test_authentication_errors(sandbox: RunningSandbox) -> None:
    assert private(sandbox, "Balance", key="nope")["error"] == ["EAPI:Invalid key"]
    wrong_secret = "a" * 86 + "=="
    assert private(sandbox, "Balance", secret=wrong_secret)["error"] == ["EAPI:Invalid signature"]
    nonce = next(_nonces)
    ok(private(sandbox, "Balance", nonce=nonce))
    assert private(sandbox, "Balance", nonce=nonce)["error"] == ["EAPI:Invalid nonce"]
    assert private(sandbox, "Balance", nonce=nonce - 5)["error"] == ["EAPI:Invalid nonce"]


def test_permissions_are_enforced(sandbox: RunningSandbox) -> None:
    key = sandbox.admin("keys", {"account": sandbox.account, "permissions": ["query_funds"]})
    readonly = {"key": str(key["key"]), "secret": str(key["secret"])}
    ok(private(sandbox, "Balance", **readonly))
    denied = private(
        sandbox,
        "AddOrder",
        {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.01"},
        **readonly,
    )
    assert denied["error"] == ["EGeneral:Permission denied"]
    assert private(sandbox, "GetWebSocketsToken", **readonly)["error"] == [
        "EGeneral:Permission denied"
    ]


def test_json_bodies_and_websocket_token(sandbox: RunningSandbox) -> None:
    token = ok(private(sandbox, "GetWebSocketsToken", json_body=True))
    assert isinstance(token["token"], str) and token["expires"] == 900


def test_malformed_bodies_never_crash(sandbox: RunningSandbox) -> None:
    path = "/0/private/Balance"
    bodies = [b"", b"%%%", b"{not json", b"nonce=abc", b"\xff\xfe", b"[1,2]", b"nonce=" + b"9" * 40]
    for body in bodies:
        status, payload = _http(
            sandbox.rest_url + path,
            data=body,
            headers={"API-Key": sandbox.api_key, "API-Sign": "AAAA"},
        )
        assert status < 500 and payload["error"], body
    status, payload = _http(
        sandbox.rest_url + path, data=b"x" * (2 * 1024 * 1024), headers={"API-Key": sandbox.api_key}
    )
    assert status < 500 and payload["error"]


def test_cancel_all_and_dead_man_switch(sandbox: RunningSandbox) -> None:
    ask = ok(public(sandbox, "Depth", pair="XBTUSD", count="1"))["XXBTZUSD"]["asks"][0][0]
    far = f"{float(ask) * 0.86:.1f}"
    for _ in range(2):
        ok(
            private(
                sandbox,
                "AddOrder",
                {
                    "pair": "XBTUSD",
                    "type": "buy",
                    "ordertype": "limit",
                    "volume": "0.01",
                    "price": far,
                },
            )
        )
    assert ok(private(sandbox, "CancelAll"))["count"] >= 2
    armed = ok(private(sandbox, "CancelAllOrdersAfter", {"timeout": 60}))
    assert armed["currentTime"].endswith("Z") and armed["triggerTime"].endswith("Z")
    current, trigger = (datetime.fromisoformat(armed[k]) for k in ("currentTime", "triggerTime"))
    assert (trigger - current).total_seconds() == 60  # both rounded up (spec 6.6)
    assert ok(private(sandbox, "CancelAllOrdersAfter", {"timeout": 0}))["triggerTime"] == "0"
