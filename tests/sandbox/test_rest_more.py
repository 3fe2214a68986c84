"""The sandbox's REST API over real loopback sockets: every private endpoint and its parameters,
the exact result shapes of spec 7.4/7.5, paging, filters, limits and market states."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from krakenws.auth import sign_request
from krakenws.testing import RunningSandbox, run_sandbox

_nonces = itertools.count(1_700_000_000_000)

ORDER_FIELDS = {
    "refid",
    "userref",
    "status",
    "opentm",
    "starttm",
    "expiretm",
    "descr",
    "vol",
    "vol_exec",
    "cost",
    "fee",
    "price",
    "stopprice",
    "limitprice",
    "misc",
    "oflags",
}
DESCR_FIELDS = {"pair", "type", "ordertype", "price", "price2", "leverage", "order", "close"}
TRADE_FIELDS = {
    "ordertxid",
    "postxid",
    "pair",
    "time",
    "type",
    "ordertype",
    "price",
    "cost",
    "fee",
    "vol",
    "margin",
    "leverage",
    "misc",
    "ledgers",
    "trade_id",
    "maker",
}
LEDGER_FIELDS = {"refid", "time", "type", "subtype", "aclass", "asset", "amount", "fee", "balance"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(seed=5, main_levels=12) as running:
        yield running


class Client:
    """One API key of a running sandbox."""

    def __init__(self, sandbox: RunningSandbox, key: str, secret: str, account: str) -> None:
        self.sandbox = sandbox
        self.key = key
        self.secret = secret
        self.account = account

    def raw(
        self,
        name: str,
        params: dict[str, object] | None = None,
        *,
        nonce: int | None = None,
        json_body: bool = False,
    ) -> dict[str, Any]:
        path = f"/0/private/{name}"
        headers, body = sign_request(
            path,
            params or {},
            self.key,
            self.secret,
            nonce if nonce is not None else next(_nonces),
            json_body=json_body,
        )
        return _post(self.sandbox.rest_url + path, body.encode(), headers)

    def signed_body(self, name: str, body: str, nonce: int, content_type: str) -> dict[str, Any]:
        """Send a body built by hand (it must contain ``nonce``)."""
        from krakenws.auth import api_sign

        path = f"/0/private/{name}"
        headers = {
            "API-Key": self.key,
            "API-Sign": api_sign(path, nonce, body, self.secret),
            "Content-Type": content_type,
        }
        return _post(self.sandbox.rest_url + path, body.encode(), headers)

    def ok(self, name: str, params: dict[str, object] | None = None, **kw: Any) -> Any:
        return ok(self.raw(name, params, **kw))

    def error(self, name: str, params: dict[str, object] | None = None, **kw: Any) -> list[str]:
        payload = self.raw(name, params, **kw)
        assert "result" not in payload, payload
        errors: list[str] = payload["error"]
        return errors


def _post(url: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, payload = response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        status, payload = error.code, json.loads(error.read())
    assert status == 200, payload
    result: dict[str, Any] = payload
    return result


def public(sandbox: RunningSandbox, name: str, **query: str) -> dict[str, Any]:
    url = f"{sandbox.rest_url}/0/public/{name}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        payload: dict[str, Any] = json.loads(response.read())
    return payload


def ok(payload: dict[str, Any]) -> Any:
    assert payload["error"] == [], payload
    return payload["result"]


def new_client(
    sandbox: RunningSandbox, funds: dict[str, str] | None = None, **key_options: object
) -> Client:
    account = str(sandbox.admin("accounts", {"name": "more"})["account"])
    key = sandbox.admin("keys", {"account": account, **key_options})
    for asset, amount in (funds or {"ZUSD": "100000", "XXBT": "10"}).items():
        sandbox.admin("fund", {"account": account, "asset": asset, "amount": amount})
    return Client(sandbox, str(key["key"]), str(key["secret"]), account)


@pytest.fixture(scope="module")
def client(sandbox: RunningSandbox) -> Client:
    return Client(sandbox, sandbox.api_key, sandbox.api_secret, sandbox.account)


def best(sandbox: RunningSandbox, side: str = "asks", pair: str = "XBTUSD") -> float:
    depth = ok(public(sandbox, "Depth", pair=pair, count="1"))
    (book,) = depth.values()
    return float(book[side][0][0])


def far_bid(sandbox: RunningSandbox, factor: float = 0.8) -> str:
    return f"{best(sandbox) * factor:.1f}"


def limit_buy(price: str, volume: str = "0.01", **extra: object) -> dict[str, object]:
    return {
        "pair": "XBTUSD",
        "type": "buy",
        "ordertype": "limit",
        "volume": volume,
        "price": price,
        **extra,
    }


def check_order(order: dict[str, Any], *, closed: bool) -> None:
    assert set(order) >= ORDER_FIELDS, set(order)
    assert set(order["descr"]) >= DESCR_FIELDS, order["descr"]
    assert order["refid"] is None
    assert isinstance(order["opentm"], float | int)
    assert order["starttm"] == 0 or isinstance(order["starttm"], float)
    assert isinstance(order["userref"], int | None)
    assert order["descr"]["leverage"] == "none"
    for field in ("vol", "vol_exec", "cost", "fee", "price", "stopprice", "limitprice"):
        assert isinstance(order[field], str), field
    if closed:
        assert isinstance(order["closetm"], float) and isinstance(order["reason"], str | None)
    else:
        assert "closetm" not in order


def check_trade(trade: dict[str, Any]) -> None:
    assert set(trade) >= TRADE_FIELDS, set(trade)
    assert isinstance(trade["time"], float) and isinstance(trade["trade_id"], int)
    assert isinstance(trade["maker"], bool) and trade["type"] in ("buy", "sell")
    assert isinstance(trade["ledgers"], list)
    for field in ("price", "cost", "fee", "vol", "margin"):
        assert isinstance(trade[field], str), field


def check_ledger(entry: dict[str, Any]) -> None:
    assert set(entry) == LEDGER_FIELDS, set(entry)
    assert isinstance(entry["time"], float) and entry["aclass"] == "currency"
    for field in ("amount", "fee", "balance"):
        assert isinstance(entry[field], str), field


# --- orders: edit, batch, queries ---------------------------------------------------------------


def test_edit_order_replaces_the_order(sandbox: RunningSandbox, client: Client) -> None:
    price = far_bid(sandbox)
    old = client.ok("AddOrder", limit_buy(price, userref=77))["txid"][0]
    new_price = far_bid(sandbox, 0.79)
    edited = client.ok(
        "EditOrder", {"txid": old, "pair": "XBTUSD", "volume": "0.02", "price": new_price}
    )
    assert edited["status"] == "ok" and edited["originaltxid"] == old
    new = edited["txid"]
    assert isinstance(new, str) and new != old
    assert edited["volume"] == "0.02000000" and edited["price"] == new_price
    assert edited["descr"]["order"].startswith("buy 0.02000000 XBTUSD @ limit")
    queried = client.ok("QueryOrders", {"txid": f"{old},{new}"})
    assert queried[old]["status"] == "canceled" and queried[new]["status"] == "open"
    check_order(queried[old], closed=True)
    check_order(queried[new], closed=False)
    assert queried[new]["vol"] == "0.02000000" and queried[new]["descr"]["price"] == new_price
    assert queried[new]["userref"] == 77
    assert client.error("EditOrder", {"txid": old, "pair": "XBTUSD", "price": price}) == [
        "EOrder:Unknown order"
    ]
    assert client.error("EditOrder", {"pair": "XBTUSD", "price": price}) == [
        "EGeneral:Invalid arguments:txid"
    ]
    validated = client.ok(
        "EditOrder", {"txid": new, "pair": "XBTUSD", "price": price, "validate": "true"}
    )
    assert "txid" not in validated
    assert client.ok("QueryOrders", {"txid": new})[new]["status"] == "open"
    assert client.ok("CancelOrder", {"txid": new}) == {"count": 1}


def test_add_order_batch_form_and_json(sandbox: RunningSandbox, client: Client) -> None:
    price = far_bid(sandbox)
    form = (
        "nonce={n}&pair=XBTUSD"
        f"&orders[0][type]=buy&orders[0][ordertype]=limit&orders[0][volume]=0.01"
        f"&orders[0][price]={price}&orders[0][userref]=901"
        f"&orders[1][type]=buy&orders[1][ordertype]=limit&orders[1][volume]=0.00001"
        f"&orders[1][price]={price}"
    )
    nonce = next(_nonces)
    result = ok(
        client.signed_body(
            "AddOrderBatch", form.format(n=nonce), nonce, "application/x-www-form-urlencoded"
        )
    )
    first, second = result["orders"]
    assert isinstance(first["txid"], str) and first["descr"]["order"].startswith("buy 0.01")
    assert second == {"error": "EOrder:Order minimum not met"}
    assert client.ok("QueryOrders", {"txid": first["txid"]})[first["txid"]]["userref"] == 901

    orders = [
        {
            "type": "buy",
            "ordertype": "limit",
            "volume": "0.01",
            "price": price,
            "cl_ord_id": "batch-json-1",
        },
        {"type": "buy", "ordertype": "limit", "volume": "0.01", "price": "1.05"},
        {"type": "buy", "ordertype": "limit", "volume": "0.02", "price": price},
    ]
    result = client.ok("AddOrderBatch", {"pair": "XBT/USD", "orders": orders}, json_body=True)
    a, b, c = result["orders"]
    assert a["txid"] and c["txid"] and b == {"error": "EOrder:Tick size check failed"}
    assert client.ok("OpenOrders", {"cl_ord_id": "batch-json-1"})["open"].keys() == {a["txid"]}
    validated = client.ok(
        "AddOrderBatch", {"pair": "XBTUSD", "orders": orders[:1], "validate": True}, json_body=True
    )
    assert "txid" not in validated["orders"][0]

    assert client.error("AddOrderBatch", {"pair": "XBTUSD", "orders": []}, json_body=True) == [
        "EGeneral:Invalid arguments:orders"
    ]
    assert client.error("AddOrderBatch", {"orders": orders}, json_body=True) == [
        "EGeneral:Invalid arguments:pair"
    ]
    too_many = {"pair": "XBTUSD", "orders": orders[:1] * 16}
    assert client.error("AddOrderBatch", too_many, json_body=True) == [
        "EGeneral:Invalid arguments:orders"
    ]
    for txid in (first["txid"], a["txid"], c["txid"]):
        assert client.ok("CancelOrder", {"txid": txid}) == {"count": 1}


def test_userref_and_cl_ord_id(sandbox: RunningSandbox) -> None:
    client = new_client(sandbox)
    price = far_bid(sandbox)
    one = client.ok("AddOrder", limit_buy(price, userref=5))["txid"][0]
    two = client.ok("AddOrder", limit_buy(price, userref=5))["txid"][0]
    three = client.ok("AddOrder", limit_buy(price, cl_ord_id="my-id-3"))["txid"][0]
    assert client.error("AddOrder", limit_buy(price, userref=1, cl_ord_id="my-id-4")) == [
        "EGeneral:Invalid arguments:cl_ord_id"
    ]  # mutually exclusive
    assert client.error("AddOrder", limit_buy(price, cl_ord_id="my-id-3")) == [
        "EGeneral:Invalid arguments:cl_ord_id"
    ]  # already in use by an open order
    neg = client.ok("AddOrder", limit_buy(price, userref=-6))["txid"][0]
    four = client.ok("AddOrder", limit_buy(price))["txid"][0]
    opened = client.ok("OpenOrders")["open"]
    assert set(opened) == {one, two, three, four, neg}
    assert opened[one]["userref"] == 5 and opened[neg]["userref"] == -6
    assert opened[three]["cl_ord_id"] == "my-id-3" and "cl_ord_id" not in opened[one]
    assert opened[four]["userref"] in (0, None)
    assert set(client.ok("OpenOrders", {"userref": 5})["open"]) == {one, two}
    assert set(client.ok("OpenOrders", {"userref": -6})["open"]) == {neg}
    assert set(client.ok("OpenOrders", {"cl_ord_id": "my-id-3"})["open"]) == {three}
    assert client.ok("OpenOrders", {"cl_ord_id": "nope"})["open"] == {}
    assert set(client.ok("QueryOrders", {"txid": f"{one},{three}", "userref": 5})) == {one}
    edited = client.ok("EditOrder", {"txid": -6, "pair": "XBTUSD", "price": price})
    assert edited["originaltxid"] == neg
    neg = edited["txid"]
    assert client.ok("CancelOrder", {"txid": "-6"}) == {"count": 1}

    assert client.ok("CancelOrder", {"txid": 5}) == {"count": 2}
    assert client.ok("CancelOrder", {"cl_ord_id": "my-id-3"}) == {"count": 1}
    assert client.error("CancelOrder", {"cl_ord_id": "my-id-3"}) == ["EOrder:Unknown order"]
    closed = client.ok("ClosedOrders", {"userref": 5})
    assert set(closed["closed"]) == {one, two} and closed["count"] == 2
    assert set(client.ok("ClosedOrders", {"cl_ord_id": "my-id-3"})["closed"]) == {three}
    for order in closed["closed"].values():
        check_order(order, closed=True)
        assert order["status"] == "canceled" and order["reason"] == "User requested"
    assert client.ok("CancelAll") == {"count": 1}
    assert client.ok("CancelAll") == {"count": 0}


def test_trades_ledgers_and_their_queries(sandbox: RunningSandbox) -> None:
    client = new_client(sandbox)
    txid = client.ok(
        "AddOrder", {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.01"}
    )["txid"][0]
    order = client.ok("QueryOrders", {"txid": txid, "trades": "true"})[txid]
    check_order(order, closed=True)
    assert order["status"] == "closed" and order["vol_exec"] == "0.01000000"
    trade_ids = order["trades"]
    assert trade_ids and all(isinstance(t, str) for t in trade_ids)
    without = client.ok("QueryOrders", {"txid": txid})[txid]
    assert "trades" not in without

    history = client.ok("TradesHistory")
    assert set(history["trades"]) == set(trade_ids) and history["count"] == len(trade_ids)
    for trade in history["trades"].values():
        check_trade(trade)
        assert trade["ordertxid"] == txid and trade["pair"] == "XXBTZUSD"
        assert trade["maker"] is False
    queried = client.ok("QueryTrades", {"txid": ",".join(trade_ids)})
    assert queried == {t: history["trades"][t] for t in trade_ids}
    assert client.error("QueryTrades", {"txid": "TXXXXX-XXXXX-XXXXXX"}) == [
        "EGeneral:Invalid arguments:txid"
    ]
    assert client.error("QueryTrades") == ["EGeneral:Invalid arguments:txid"]

    ledger = client.ok("Ledgers")
    entries = ledger["ledger"]
    assert ledger["count"] == len(entries) >= 2 + 2 * len(trade_ids)
    for entry in entries.values():
        check_ledger(entry)
    kinds = {e["type"] for e in entries.values()}
    assert {"deposit", "trade"} <= kinds
    trade_ledgers = {lid for t in history["trades"].values() for lid in t["ledgers"]}
    assert trade_ledgers <= set(entries)
    usd = client.ok("Ledgers", {"asset": "ZUSD"})
    assert usd["ledger"] and all(e["asset"] == "ZUSD" for e in usd["ledger"].values())
    for spelling in ("USD", "zusd", "ZUSD,XBT"):
        assert client.ok("Ledgers", {"asset": spelling})["ledger"], spelling
    assert client.ok("TradesHistory", {"type": "no position"})["count"] == len(trade_ids)
    assert client.ok("TradesHistory", {"type": "any position"}) == {"trades": {}, "count": 0}
    deposits = client.ok("Ledgers", {"type": "deposit"})
    assert deposits["count"] == 2
    some = sorted(entries)[:2]
    assert client.ok("QueryLedgers", {"id": ",".join(some)}) == {i: entries[i] for i in some}
    assert client.error("QueryLedgers", {"id": "LXXXXX-XXXXX-XXXXXX"}) == [
        "EGeneral:Invalid arguments:id"
    ]


def test_paging_of_closed_orders_trades_and_ledgers(sandbox: RunningSandbox) -> None:
    client = new_client(sandbox)
    placed = [
        client.ok(
            "AddOrder", {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.0001"}
        )["txid"][0]
        for _ in range(55)
    ]
    for name, key in (
        ("ClosedOrders", "closed"),
        ("TradesHistory", "trades"),
        ("Ledgers", "ledger"),
    ):
        first = client.ok(name)
        total = first["count"]
        assert total >= 55 and len(first[key]) == 50, name
        second = client.ok(name, {"ofs": 50})
        assert second["count"] == total and len(second[key]) == min(50, total - 50)
        assert not set(first[key]) & set(second[key])
        rest = client.ok(name, {"ofs": 100})
        everything = set(first[key]) | set(second[key]) | set(rest[key])
        assert len(everything) == total
        assert client.ok(name, {"ofs": total})[key] == {}
        assert client.error(name, {"ofs": -1}) == ["EGeneral:Invalid arguments:ofs"]
    closed = client.ok("ClosedOrders")
    assert set(placed) == set(closed["closed"]) | set(
        client.ok("ClosedOrders", {"ofs": 50})["closed"]
    )
    times = [o["closetm"] for o in closed["closed"].values()]
    assert times == sorted(times, reverse=True)
    assert "count" not in client.ok("ClosedOrders", {"without_count": True})
    # start/end may name a record instead of a time (exclusive start, inclusive end); the cut
    # is at that record even among records of the same microsecond (test_rest_paging.py)
    newest, *older = list(closed["closed"])
    assert newest not in client.ok("ClosedOrders", {"end": older[0]})["closed"]
    assert set(client.ok("ClosedOrders", {"start": older[0]})["closed"]) == {newest}
    trades = list(client.ok("TradesHistory")["trades"])
    assert set(client.ok("TradesHistory", {"start": trades[1]})["trades"]) == {trades[0]}
    ledger = client.ok("Ledgers")["ledger"]
    pivot = list(ledger)[9]
    assert list(client.ok("Ledgers", {"start": pivot})["ledger"]) == list(ledger)[:9]


def test_closed_orders_times_and_reason(sandbox: RunningSandbox) -> None:
    client = new_client(sandbox)
    txid = client.ok("AddOrder", limit_buy(far_bid(sandbox)))["txid"][0]
    client.ok("CancelOrder", {"txid": txid})
    order = client.ok("ClosedOrders")["closed"][txid]
    check_order(order, closed=True)
    assert order["reason"] == "User requested" and order["closetm"] >= order["opentm"]
    closetm = order["closetm"]
    assert txid in client.ok("ClosedOrders", {"start": int(closetm) - 1})["closed"]
    assert client.ok("ClosedOrders", {"start": int(closetm) + 1})["closed"] == {}
    assert txid in client.ok("ClosedOrders", {"end": int(closetm) + 1})["closed"]
    for closetime in ("open", "close", "both"):
        assert txid in client.ok("ClosedOrders", {"closetime": closetime})["closed"]
    assert client.error("ClosedOrders", {"closetime": "never"}) == [
        "EGeneral:Invalid arguments:closetime"
    ]
    assert client.error("ClosedOrders", {"start": "soon"}) == ["EGeneral:Invalid arguments:start"]
    market = client.ok(
        "AddOrder", {"pair": "XBTUSD", "type": "sell", "ordertype": "market", "volume": "0.001"}
    )["txid"][0]
    filled = client.ok("QueryOrders", {"txid": market})[market]
    assert filled["status"] == "closed" and "closetm" in filled


def test_booleans_in_every_spelling(sandbox: RunningSandbox, client: Client) -> None:
    txid = client.ok(
        "AddOrder", {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.001"}
    )["txid"][0]
    for value in (True, "true", "True", "TRUE", "1"):
        assert client.ok("QueryOrders", {"txid": txid, "trades": value})[txid]["trades"]
    for value in (False, "false", "False", "0"):
        assert "trades" not in client.ok("QueryOrders", {"txid": txid, "trades": value})[txid]
    assert client.ok("QueryOrders", {"txid": txid, "trades": True}, json_body=True)[txid]["trades"]
    assert client.ok("QueryOrders", {"txid": txid, "trades": "true"}, json_body=True)[txid][
        "trades"
    ]
    assert client.error("QueryOrders", {"txid": txid, "trades": "maybe"}) == [
        "EGeneral:Invalid arguments:trades"
    ]
    for value in (True, "true", "True"):
        for json_body in (False, True):
            result = client.ok(
                "AddOrder", limit_buy(far_bid(sandbox), validate=value), json_body=json_body
            )
            assert "txid" not in result


def test_balances(sandbox: RunningSandbox) -> None:
    client = new_client(sandbox, {"ZUSD": "50000", "XXBT": "2"})
    assert client.ok("Balance") == {"XXBT": "2.0000000000", "ZUSD": "50000.0000"}
    txid = client.ok("AddOrder", limit_buy("10000.0", volume="1"))["txid"][0]
    extended = client.ok("BalanceEx")
    assert set(extended) == {"XXBT", "ZUSD"}
    assert extended["ZUSD"]["balance"] == "50000.0000"
    assert float(extended["ZUSD"]["hold_trade"]) >= 10000
    assert extended["XXBT"] == {"balance": "2.0000000000", "hold_trade": "0.0000000000"}
    trade_balance = client.ok("TradeBalance")
    assert set(trade_balance) == {"eb", "tb", "m", "n", "c", "v", "e", "mf", "uv"}
    assert all(isinstance(v, str) for v in trade_balance.values())
    assert float(trade_balance["eb"]) > 50000
    in_xbt = client.ok("TradeBalance", {"asset": "XBT"})
    assert 2 < float(in_xbt["eb"]) < float(trade_balance["eb"])
    assert client.ok("TradeBalance", {"asset": "ZUSD"}) == trade_balance
    assert client.error("TradeBalance", {"asset": "NOPE"}) == ["EGeneral:Invalid arguments:asset"]
    client.ok("CancelOrder", {"txid": txid})


# --- public endpoints -------------------------------------------------------------------------


def test_asset_pairs_info_and_pair_lists(sandbox: RunningSandbox) -> None:
    full = ok(public(sandbox, "AssetPairs", pair="XBTUSD"))["XXBTZUSD"]
    assert ok(public(sandbox, "AssetPairs", pair="XBTUSD", info="info"))["XXBTZUSD"] == full
    for field, kind in (
        ("altname", str),
        ("wsname", str),
        ("base", str),
        ("quote", str),
        ("cost_decimals", int),
        ("pair_decimals", int),
        ("lot_decimals", int),
        ("lot_multiplier", int),
        ("leverage_buy", list),
        ("leverage_sell", list),
        ("fees", list),
        ("fees_maker", list),
        ("ordermin", str),
        ("costmin", str),
        ("tick_size", str),
        ("status", str),
    ):
        assert isinstance(full[field], kind), field
    leverage = ok(public(sandbox, "AssetPairs", pair="XBTUSD", info="leverage"))["XXBTZUSD"]
    assert leverage == {
        "leverage_buy": full["leverage_buy"],
        "leverage_sell": full["leverage_sell"],
    }
    fees = ok(public(sandbox, "AssetPairs", pair="XBTUSD", info="fees"))["XXBTZUSD"]
    assert fees["fees"] == full["fees"] and isinstance(fees["fee_volume_currency"], str)
    margin = ok(public(sandbox, "AssetPairs", pair="XBTUSD", info="margin"))["XXBTZUSD"]
    assert set(margin) == {"margin_call", "margin_stop"}
    assert all(isinstance(v, int) for v in margin.values())
    assert public(sandbox, "AssetPairs", info="everything")["error"] == [
        "EGeneral:Invalid arguments:info"
    ]
    mixed = ok(public(sandbox, "AssetPairs", pair="XBT/USD,ETHUSD,XETHXXBT,BTC/EUR, LTC/USD"))
    assert set(mixed) == {"XXBTZUSD", "XETHZUSD", "XETHXXBT", "XXBTZEUR", "XLTCZUSD"}
    assert set(ok(public(sandbox, "AssetPairs", pair="XBTUSD,XBT/USD,XXBTZUSD"))) == {"XXBTZUSD"}
    assert public(sandbox, "AssetPairs", pair="XBTUSD,NOPE")["error"] == [
        "EQuery:Unknown asset pair"
    ]


def test_assets_filter(sandbox: RunningSandbox) -> None:
    assets = ok(public(sandbox, "Assets", asset="XBT,ZUSD"))
    assert set(assets) == {"XXBT", "ZUSD"}
    assert assets["XXBT"]["altname"] == "XBT" and assets["XXBT"]["decimals"] == 10
    assert set(ok(public(sandbox, "Assets", asset="BTC,USD"))) == {"XXBT", "ZUSD"}
    assert public(sandbox, "Assets", asset="NOPE")["error"] == ["EQuery:Unknown asset"]
    assert ok(public(sandbox, "Assets", aclass="currency"))
    assert ok(public(sandbox, "Assets", aclass="forex")) == {}


def test_depth_count(sandbox: RunningSandbox) -> None:
    for count in ("1", "5", "12"):
        book = ok(public(sandbox, "Depth", pair="XBTUSD", count=count))["XXBTZUSD"]
        assert len(book["asks"]) == len(book["bids"]) == int(count)
        for price, volume, stamp in book["asks"] + book["bids"]:
            assert isinstance(price, str) and isinstance(volume, str)
            assert isinstance(stamp, int)
    deep = ok(public(sandbox, "Depth", pair="XBTUSD", count="500"))["XXBTZUSD"]
    assert 12 <= len(deep["asks"]) <= 500
    default = ok(public(sandbox, "Depth", pair="XBTUSD"))["XXBTZUSD"]
    assert len(default["asks"]) <= 100
    for bad in ("0", "501", "-1", "x", "1.5"):
        assert public(sandbox, "Depth", pair="XBTUSD", count=bad)["error"] == [
            "EGeneral:Invalid arguments:count"
        ], bad
    assert public(sandbox, "Depth")["error"] == ["EGeneral:Invalid arguments:pair"]
    assert public(sandbox, "Depth", pair="XBTUSD,ETHUSD")["error"] == [
        "EGeneral:Invalid arguments:pair"
    ]


def test_ohlc_trades_spread_since_and_count(sandbox: RunningSandbox, client: Client) -> None:
    for _ in range(3):  # a few public trades on the pair
        client.ok(
            "AddOrder", {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.001"}
        )
    ohlc = ok(public(sandbox, "OHLC", pair="XBTUSD"))
    rows = ohlc["XXBTZUSD"]
    assert rows and len(rows) <= 720 and isinstance(ohlc["last"], int)
    for row in rows:
        assert len(row) == 8 and isinstance(row[0], int) and isinstance(row[7], int)
        assert all(isinstance(v, str) for v in row[1:7])
    later = ok(public(sandbox, "OHLC", pair="XBTUSD", since=str(rows[-1][0])))["XXBTZUSD"]
    assert later and all(r[0] >= rows[-1][0] for r in later)
    future = ok(public(sandbox, "OHLC", pair="XBTUSD", since=str(rows[-1][0] + 3600)))
    assert future["XXBTZUSD"] == []
    assert public(sandbox, "OHLC", pair="XBTUSD", since="x")["error"] == [
        "EGeneral:Invalid arguments:since"
    ]

    trades = ok(public(sandbox, "Trades", pair="XBTUSD"))
    rows = trades["XXBTZUSD"]
    assert len(rows) >= 3 and isinstance(trades["last"], str) and trades["last"].isdigit()
    for price, volume, when, side, kind, misc, trade_id in rows:
        assert isinstance(price, str) and isinstance(volume, str) and isinstance(when, float)
        assert side in ("b", "s") and kind in ("m", "l") and misc == ""
        assert isinstance(trade_id, int)
    assert ok(public(sandbox, "Trades", pair="XBTUSD", count="2"))["XXBTZUSD"] == rows[-2:]
    # with since, the oldest trades after it come first, and "last" pages on without a gap
    since = str(int(rows[-4][2] * 1e9) - 1000) if len(rows) >= 4 else "1"
    page = ok(public(sandbox, "Trades", pair="XBTUSD", since=since, count="1"))
    assert len(page["XXBTZUSD"]) == 1 and page["XXBTZUSD"][0][6] <= rows[-1][6]
    following = ok(public(sandbox, "Trades", pair="XBTUSD", since=page["last"], count="1"))
    assert following["XXBTZUSD"][0][6] > page["XXBTZUSD"][0][6]
    after = ok(public(sandbox, "Trades", pair="XBTUSD", since=trades["last"]))
    assert all(r[2] * 1e9 >= int(trades["last"]) - 1e6 for r in after["XXBTZUSD"])
    assert int(after["last"]) >= int(trades["last"])
    for bad in ("0", "1001", "x"):
        assert public(sandbox, "Trades", pair="XBTUSD", count=bad)["error"] == [
            "EGeneral:Invalid arguments:count"
        ]

    spread = ok(public(sandbox, "Spread", pair="XBT/USD"))
    points = spread["XXBTZUSD"]
    assert points and isinstance(spread["last"], int)
    for stamp, bid, ask in points:
        assert isinstance(stamp, int) and float(bid) < float(ask)
    recent = ok(public(sandbox, "Spread", pair="XBTUSD", since=str(spread["last"])))
    assert all(p[0] >= spread["last"] for p in recent["XXBTZUSD"])


# --- nonces, limits, add-order rules, market states --------------------------------------------


def test_nonce_up_to_two_to_the_64(sandbox: RunningSandbox) -> None:
    client = new_client(sandbox)
    for bad in (2**64, 0, 10**30):
        body = f"nonce={bad}"
        form = "application/x-www-form-urlencoded"
        assert client.signed_body("Balance", body, bad, form)["error"] == ["EAPI:Invalid nonce"]
    client.ok("Balance", nonce=2**64 - 2)
    client.ok("Balance", nonce=2**64 - 1, json_body=True)
    assert client.error("Balance", nonce=2**64 - 1) == ["EAPI:Invalid nonce"]


def test_add_order_deadline_trigger_and_margin(sandbox: RunningSandbox, client: Client) -> None:
    price = far_bid(sandbox)
    assert client.error("AddOrder", limit_buy(price, deadline="2020-01-01T00:00:00Z")) == [
        "EService:Deadline elapsed"
    ]
    assert client.error("AddOrder", limit_buy(price, deadline="2020-01-01T00:00:00.5+00:00")) == [
        "EService:Deadline elapsed"
    ]
    assert client.error("AddOrder", limit_buy(price, deadline="yesterday")) == [
        "EGeneral:Invalid arguments:deadline"
    ]
    too_far = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    assert client.error("AddOrder", limit_buy(price, deadline=too_far)) == [
        "EGeneral:Invalid arguments:deadline"
    ]
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30))
    placed = client.ok("AddOrder", limit_buy(price, deadline=future))
    client.ok("CancelOrder", {"txid": placed["txid"][0]})
    edit = {"txid": placed["txid"][0], "pair": "XBTUSD", "deadline": "2020-01-01T00:00:00Z"}
    assert client.error("EditOrder", edit) == ["EService:Deadline elapsed"]

    stop = {
        "pair": "XBTUSD",
        "type": "sell",
        "ordertype": "stop-loss",
        "volume": "0.01",
        "price": far_bid(sandbox, 0.7),
    }
    assert client.error("AddOrder", {**stop, "trigger": "index"}) == [
        "EGeneral:Invalid arguments:Index unavailable"
    ]
    assert client.error("AddOrder", {**stop, "trigger": "mark"}) == [
        "EGeneral:Invalid arguments:trigger"
    ]
    placed = client.ok("AddOrder", {**stop, "trigger": "last"})
    client.ok("CancelOrder", {"txid": placed["txid"][0]})

    margin = client.error("AddOrder", limit_buy(price, leverage="2"))
    assert len(margin) == 1 and margin[0].startswith("EOrder:"), margin
    assert client.error("AddOrder", limit_buy(price, margin=True)) == margin
    assert client.error("AddOrder", limit_buy(price, displayvol="0.001")) == [
        "EGeneral:Invalid arguments:displayvol"
    ]


def test_system_status_modes(sandbox: RunningSandbox) -> None:
    client = new_client(sandbox)
    price = far_bid(sandbox)
    resting = client.ok("AddOrder", limit_buy(price))["txid"][0]
    try:
        sandbox.admin("status", {"status": "cancel_only"})
        assert ok(public(sandbox, "SystemStatus"))["status"] == "cancel_only"
        assert client.error("AddOrder", limit_buy(price)) == ["EService:Market in cancel_only mode"]
        assert client.error("EditOrder", {"txid": resting, "pair": "XBTUSD", "price": price}) == [
            "EService:Market in cancel_only mode"
        ]
        batch = client.ok(
            "AddOrderBatch", {"pair": "XBTUSD", "orders": [limit_buy(price)]}, json_body=True
        )
        assert batch["orders"] == [{"error": "EService:Market in cancel_only mode"}]
        client.ok("Balance")
        assert client.ok("CancelOrder", {"txid": resting}) == {"count": 1}

        sandbox.admin("status", {"status": "maintenance"})
        assert ok(public(sandbox, "SystemStatus"))["status"] == "maintenance"
        assert client.error("AddOrder", limit_buy(price)) == ["EService:Unavailable"]
        assert client.error("CancelAll") == ["EService:Unavailable"]
    finally:
        sandbox.admin("status", {"status": "online"})
    assert ok(public(sandbox, "SystemStatus"))["status"] == "online"
    placed = client.ok("AddOrder", limit_buy(price))["txid"][0]
    assert client.ok("CancelOrder", {"txid": placed}) == {"count": 1}


def test_rest_call_counter() -> None:
    with run_sandbox(seed=3, simulator=False, rest_limits=True) as limited:
        client = Client(limited, limited.api_key, limited.api_secret, limited.account)
        answers = [client.raw("Balance")["error"] for _ in range(20)]
        assert answers[:15] == [[]] * 15
        assert ["EAPI:Rate limit exceeded"] in answers[15:]
        # history calls cost 2, trading calls use the trading limiter instead
        assert client.error("Ledgers") == ["EAPI:Rate limit exceeded"]
        assert client.raw("CancelAll")["error"] == []
        # the counter decays (0.33/s at starter tier)
        time.sleep(3.2)
        assert client.raw("Balance")["error"] == []
