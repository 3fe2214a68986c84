"""Property tests of the sandbox's REST layer, in process: whatever arrives, the answer is
Kraken-shaped (``{"error": [...]}`` of ``E...`` strings, or ``{"error": [], "result": ...}``),
below HTTP 500, JSON-encodable, and never ``EGeneral:Internal error``.

Private calls are signed correctly (a counter nonce), so that they get past authentication and
reach parameter validation.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krakenws.auth import api_sign, sign_request
from krakenws.errors import ExchangeError
from krakenws.sandbox.engine import OrderRequest
from krakenws.sandbox.exchange import Exchange
from krakenws.sandbox.marketdata import MarketData
from krakenws.sandbox.rest_api import RestApi

PRIVATE = (
    "Balance",
    "BalanceEx",
    "TradeBalance",
    "OpenOrders",
    "ClosedOrders",
    "QueryOrders",
    "TradesHistory",
    "QueryTrades",
    "Ledgers",
    "QueryLedgers",
    "AddOrder",
    "AddOrderBatch",
    "EditOrder",
    "CancelOrder",
    "CancelAll",
    "CancelAllOrdersAfter",
    "GetWebSocketsToken",
)
PUBLIC = (
    "Time",
    "SystemStatus",
    "Assets",
    "AssetPairs",
    "Ticker",
    "Depth",
    "OHLC",
    "Trades",
    "Spread",
)
# Every field an order request may carry (AddOrder, EditOrder, AddOrderBatch entries).
ORDER_PARAMS = (
    "pair",
    "type",
    "ordertype",
    "volume",
    "price",
    "price2",
    "leverage",
    "oflags",
    "timeinforce",
    "starttm",
    "expiretm",
    "userref",
    "cl_ord_id",
    "validate",
    "deadline",
    "trigger",
    "displayvol",
    "stptype",
    "reduce_only",
    "margin",
    "close[ordertype]",
    "close[price]",
    "close[price2]",
    "txid",
)
PARAMS = (
    *ORDER_PARAMS,
    "trades",
    "start",
    "end",
    "ofs",
    "closetime",
    "without_count",
    "consolidate_taker",
    "asset",
    "aclass",
    "info",
    "count",
    "since",
    "interval",
    "id",
    "timeout",
    "newuserref",
    "orders",
    "ledgers",
    "nonce",
    "otp",
)
NASTY = (
    "",
    " ",
    "0",
    "-0",
    "1",
    "-1",
    "0.0001",
    "0.01",
    "1.5",
    "25000.0",
    "50000",
    "1e400",
    "-1e400",
    str(10**40),
    str(-(10**40)),
    str(2**63),
    str(2**64),
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "+5%",
    "-5",
    "#10",
    "1,2",
    ",",
    "true",
    "True",
    "false",
    "TRUE",
    "yes",
    "XBTUSD",
    "XBT/USD",
    "XXBTZUSD",
    "BTC/USD",
    "ETHXBT",
    "FOO/BAR",
    "buy",
    "sell",
    "limit",
    "market",
    "stop-loss",
    "stop-loss-limit",
    "take-profit-limit",
    "trailing-stop",
    "iceberg",
    "post",
    "fcib,post",
    "viqc",
    "GTC",
    "IOC",
    "GTD",
    "+0",
    "+60",
    "1700000000",
    "open",
    "close",
    "both",
    "all",
    "info",
    "leverage",
    "fees",
    "margin",
    "XBT,ZUSD",
    "ZUSD",
    "XXBT",
    "OAAAAA-AAAAA-AAAAAA",
    "TAAAAA-AAAAA-AAAAAA",
    "LAAAAA-AAAAA-AAAAAA",
    "index",
    "last",
    "cancel-newest",
    "2000-01-01T00:00:00Z",
    "2999-01-01T00:00:00Z",
    "2020-13-45",
    "5:1",
    "\u00e9\u00e8",
    "\U0001f600",
    "\x00",
    "a" * 300,
    "[]",
    "{}",
    "null",
    "1" * 400,
    "\u00b2",  # "²".isdigit() is True, int("²") fails
    "\u0661\u0662",
    "-6",
    str(2**31),
)

_nonces = itertools.count(1)


class Sandbox:
    def __init__(self, exchange: Exchange, api: RestApi, key: str, secret: str) -> None:
        self.exchange = exchange
        self.api = api
        self.key = key
        self.secret = secret


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    # A clock that moves 2 s per reading: the trading rate counter keeps decaying, timers fire.
    ticks = itertools.count(1_700_000_000_000_000, 2_000_000)
    exchange = Exchange.open(":memory:", seed=1, clock=lambda: next(ticks))
    try:
        account = exchange.create_account("fuzz")
        key = exchange.create_api_key(account)
        maker = exchange.create_account("maker")
        for who in (account, maker):
            for asset, amount in (("ZUSD", "1000000"), ("XXBT", "100"), ("XETH", "1000")):
                exchange.deposit(who, asset, Decimal(amount))
        exchange.set_last_price("XBT/USD", Decimal("30000"))
        for side, price in (("sell", "30010.0"), ("buy", "29990.0")):
            exchange.add_order(
                maker,
                OrderRequest(
                    pair="XBT/USD",
                    type=side,
                    ordertype="limit",
                    volume="5",
                    price=price,
                ),
            )
        mine = OrderRequest(pair="XBT/USD", type="buy", ordertype="market", volume="0.01")
        exchange.add_order(account, mine)
        api = RestApi(exchange, MarketData(), rest_limits=False)
        yield Sandbox(exchange, api, key.key, key.secret)
    finally:
        exchange.close()


def check(status: int, payload: dict[str, Any]) -> None:
    assert status < 500, payload
    msgspec.json.encode(payload)
    errors = payload["error"]
    assert isinstance(errors, list)
    assert "EGeneral:Internal error" not in errors, payload
    if errors:
        assert set(payload) == {"error"}, payload
        assert all(isinstance(e, str) and e.startswith("E") for e in errors), payload
    else:
        assert set(payload) == {"error", "result"}, payload


def call_signed(sandbox: Sandbox, name: str, body: str, content_type: str) -> None:
    nonce = next(_nonces)
    body = body.replace("NONCE", str(nonce))
    path = f"/0/private/{name}"
    headers = {
        "API-Key": sandbox.key,
        "API-Sign": api_sign(path, nonce, body, sandbox.secret),
        "Content-Type": content_type,
    }
    check(*sandbox.api.handle("POST", path, {}, headers, body.encode()))


# --- strategies ---------------------------------------------------------------------------------

texts = st.one_of(st.sampled_from(NASTY), st.text(max_size=30))
form_fields = st.dictionaries(
    st.one_of(st.sampled_from(PARAMS), st.text(max_size=10)), texts, max_size=8
)
json_scalars = st.one_of(
    st.just("\udcff"),  # a lone surrogate: JSON can carry it, UTF-8 cannot
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(PARAMS), inner, max_size=4)
    ),
    max_leaves=12,
)
batch_orders = st.lists(
    st.dictionaries(
        st.sampled_from(
            (
                "type",
                "ordertype",
                "volume",
                "price",
                "price2",
                "userref",
                "cl_ord_id",
                "oflags",
                "timeinforce",
                "close[ordertype]",
            )
        ),
        texts,
        max_size=6,
    ),
    max_size=4,
)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(name=st.sampled_from(PRIVATE), fields=form_fields, orders=batch_orders)
def test_form_bodies(sandbox: Sandbox, name: str, fields: dict[str, str], orders: Any) -> None:
    pairs = [("nonce", "NONCE"), *((k, v) for k, v in fields.items() if k != "nonce")]
    if name == "AddOrderBatch":
        for index, order in enumerate(orders):
            pairs.extend((f"orders[{index}][{k}]", v) for k, v in order.items())
    body = urlencode(pairs, errors="surrogatepass").replace("NONCE", "NONCE")
    call_signed(sandbox, name, body, "application/x-www-form-urlencoded")


@FUZZ
@given(
    name=st.sampled_from(PRIVATE),
    document=st.dictionaries(st.sampled_from(PARAMS), json_values, max_size=8),
    nonce_as_int=st.booleans(),
)
def test_json_bodies(
    sandbox: Sandbox, name: str, document: dict[str, Any], nonce_as_int: bool
) -> None:
    document.pop("nonce", None)
    text = json.dumps({"nonce": "NONCE", **document}, ensure_ascii=True)
    if nonce_as_int:
        text = text.replace('"NONCE"', "NONCE")
    call_signed(sandbox, name, text, "application/json")


@FUZZ
@given(name=st.sampled_from(PRIVATE), raw=st.binary(max_size=200), json_type=st.booleans())
def test_random_bytes_bodies(sandbox: Sandbox, name: str, raw: bytes, json_type: bool) -> None:
    path = f"/0/private/{name}"
    headers = {"API-Key": sandbox.key, "API-Sign": "AAAA"}
    if json_type:
        headers["Content-Type"] = "application/json"
    check(*sandbox.api.handle("POST", path, {}, headers, raw))


@FUZZ
@given(
    method=st.sampled_from(("GET", "POST", "HEAD", "PUT", "DELETE", "get", "OPTIONS")),
    path=st.one_of(
        st.sampled_from(
            [f"/0/public/{n}" for n in PUBLIC]
            + [f"/0/private/{n}" for n in PRIVATE]
            + ["/", "", "/0", "/0/public", "/0/public/", "/1/public/Time", "/0/x/Time"]
        ),
        st.text(max_size=30),
    ),
    query=form_fields,
    headers=st.dictionaries(
        st.sampled_from(("API-Key", "api-sign", "Content-Type", "X-Other", "API-KEY")),
        texts,
        max_size=4,
    ),
    body=st.binary(max_size=100),
)
def test_random_requests(
    sandbox: Sandbox,
    *,
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
) -> None:
    check(*sandbox.api.handle(method, path, query, headers, body))


@FUZZ
@given(name=st.sampled_from(PUBLIC), query=form_fields)
def test_public_queries(sandbox: Sandbox, name: str, query: dict[str, str]) -> None:
    check(*sandbox.api.handle("GET", f"/0/public/{name}", query, {}, b""))


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(PRIVATE),
    params=st.dictionaries(
        st.sampled_from([p for p in PARAMS if p not in ("nonce", "orders")]),
        st.one_of(texts, st.booleans(), st.integers(min_value=-(10**30), max_value=10**30)),
        max_size=6,
    ),
    json_body=st.booleans(),
)
def test_sign_request_bodies(
    sandbox: Sandbox, name: str, params: dict[str, Any], json_body: bool
) -> None:
    path = f"/0/private/{name}"
    headers, body = sign_request(
        path, params, sandbox.key, sandbox.secret, next(_nonces), json_body=json_body
    )
    check(*sandbox.api.handle("POST", path, {}, headers, body.encode()))


ORDER_BASE = {
    "pair": "XBTUSD",
    "type": "buy",
    "ordertype": "limit",
    "volume": "0.01",
    "price": "25000.0",
}
ORDER_FIELDS = (
    *ORDER_PARAMS,
    "newuserref",
)
near_values = st.one_of(
    texts, st.booleans(), st.integers(min_value=-(10**40), max_value=10**40), json_values
)


@FUZZ
@given(
    name=st.sampled_from(("AddOrder", "EditOrder", "AddOrderBatch", "CancelOrder")),
    changes=st.dictionaries(st.sampled_from(ORDER_FIELDS), near_values, min_size=1, max_size=3),
    json_body=st.booleans(),
    use_real_txid=st.booleans(),
)
def test_nearly_valid_orders(
    sandbox: Sandbox,
    *,
    name: str,
    changes: dict[str, Any],
    json_body: bool,
    use_real_txid: bool,
) -> None:
    params: dict[str, Any] = dict(ORDER_BASE)
    if name in ("EditOrder", "CancelOrder") and use_real_txid:
        account = sandbox.exchange.api_key(sandbox.key)
        assert account is not None
        with contextlib.suppress(ExchangeError):  # e.g. the open-order limit
            placed = sandbox.exchange.add_order(account.account, OrderRequest(**ORDER_BASE))
            params["txid"] = placed.txid
    params.update(changes)
    if name == "AddOrderBatch":
        order = {k: v for k, v in params.items() if k != "pair"}
        params = {"pair": params.get("pair"), "orders": [order, dict(order)]}
    if json_body:
        text = json.dumps({"nonce": "NONCE", **params}, ensure_ascii=True, default=str)
        call_signed(sandbox, name, text, "application/json")
    else:
        pairs = [("nonce", "NONCE")]
        for key, value in params.items():
            if key == "orders":
                for index, item in enumerate(value):
                    pairs.extend((f"orders[{index}][{k}]", str(v)) for k, v in item.items())
            else:
                pairs.append((key, str(value)))
        call_signed(
            sandbox,
            name,
            urlencode(pairs, errors="surrogatepass"),
            "application/x-www-form-urlencoded",
        )


@FUZZ
@given(
    name=st.sampled_from(
        (
            "QueryOrders",
            "QueryTrades",
            "QueryLedgers",
            "ClosedOrders",
            "OpenOrders",
            "TradesHistory",
            "Ledgers",
            "CancelOrder",
        )
    ),
    extra=st.dictionaries(st.sampled_from(PARAMS), near_values, max_size=4),
    json_body=st.booleans(),
)
def test_queries_with_real_ids(
    sandbox: Sandbox, name: str, extra: dict[str, Any], json_body: bool
) -> None:
    key = sandbox.exchange.api_key(sandbox.key)
    assert key is not None
    exchange = sandbox.exchange
    orders = [o.txid for o in exchange.orders(key.account)][:3]
    trades = [t.trade_id for t in exchange.trades(key.account)][:3]
    ledgers = [e.ledger_id for e in exchange.ledger(key.account)][:3]
    ids = {"QueryTrades": trades, "QueryLedgers": ledgers}.get(name, orders)
    params: dict[str, Any] = {"txid": ",".join(ids), "id": ",".join(ids)}
    params.update(extra)
    params.pop("nonce", None)
    if json_body:
        text = json.dumps({"nonce": "NONCE", **params}, ensure_ascii=True, default=str)
        call_signed(sandbox, name, text, "application/json")
    else:
        pairs = [("nonce", "NONCE"), *((k, str(v)) for k, v in params.items())]
        call_signed(
            sandbox,
            name,
            urlencode(pairs, errors="surrogatepass"),
            "application/x-www-form-urlencoded",
        )


KILLERS: tuple[object, ...] = (
    "\u00b2", "\udcff", "", "0", "-1", "-6", "1e400", "NaN", "Infinity", "a" * 300,
    str(2**31), str(2**64), 10**40, -(10**40), 1.5, True, None, [], ["x", 1], {}, {"a": [1]},
    "2999-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
)  # fmt: skip


ORDER_ENDPOINTS = ("AddOrder", "AddOrderBatch", "EditOrder", "CancelOrder")
QUERY_PARAMS = (
    "txid", "id", "trades", "userref", "cl_ord_id", "start", "end", "ofs", "closetime",
    "without_count", "consolidate_taker", "asset", "aclass", "type", "timeout", "ledgers",
    "count", "orders",
)  # fmt: skip


def _base(sandbox: Sandbox, name: str) -> dict[str, Any]:
    """Parameters that (mostly) succeed for ``name``, so that one bad field is what fails."""
    exchange = sandbox.exchange
    engine = exchange.engine
    key = exchange.api_key(sandbox.key)
    assert key is not None
    if name in ("AddOrder", "EditOrder", "CancelOrder"):
        params: dict[str, Any] = dict(ORDER_BASE)
        opened = engine.open_orders(key.account)
        if opened:
            params["txid"] = opened[0].txid
        return params
    if name == "AddOrderBatch":
        order = {k: v for k, v in ORDER_BASE.items() if k != "pair"}
        return {"pair": "XBTUSD", "orders": [order, dict(order)], "validate": True}
    if name == "QueryTrades":
        return {"txid": ",".join(t.trade_id for t in exchange.trades(key.account))}
    if name == "QueryLedgers":
        ids = [e.ledger_id for e in exchange.ledger(key.account)]
        return {"id": ",".join(ids[:5])}
    if name == "QueryOrders":
        return {"txid": ",".join(o.txid for o in exchange.orders(key.account)[:5])}
    if name == "CancelAllOrdersAfter":
        return {"timeout": 0}
    return {}


def _send(sandbox: Sandbox, name: str, params: dict[str, Any], *, json_body: bool) -> None:
    if json_body:
        text = json.dumps({"nonce": "NONCE", **params}, default=str)
        call_signed(sandbox, name, text, "application/json")
        return
    pairs = [("nonce", "NONCE")]
    for key, value in params.items():
        if key == "orders" and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    pairs.extend((f"orders[{index}][{k}]", str(v)) for k, v in item.items())
        elif value is not None:
            pairs.append((key, str(value)))
    call_signed(
        sandbox, name, urlencode(pairs, errors="surrogatepass"), "application/x-www-form-urlencoded"
    )


@pytest.mark.parametrize("name", PRIVATE)
def test_every_parameter_with_every_bad_value(sandbox: Sandbox, name: str) -> None:
    """Exhaustive, not random: each known parameter of each endpoint, each bad value, as a form
    and as JSON, on top of otherwise good parameters (and in an AddOrderBatch order)."""
    key = sandbox.exchange.api_key(sandbox.key)
    assert key is not None
    fields = PARAMS if name in ORDER_ENDPOINTS else QUERY_PARAMS
    for field in fields:
        if field == "nonce":
            continue
        if sandbox.exchange.engine.open_orders(key.account):
            sandbox.exchange.cancel_all(key.account)
        for value in KILLERS:
            params = {**_base(sandbox, name), field: value}
            for json_body in (False, True):
                _send(sandbox, name, params, json_body=json_body)
            if name == "AddOrderBatch":
                batch = _base(sandbox, name)
                batch["orders"][1][field] = value
                _send(sandbox, name, batch, json_body=True)


@pytest.mark.parametrize(
    "body",
    [
        b"nonce=\xc2\xb2",  # "²": str.isdigit() but not int()
        b"nonce=1&orders[\xc2\xb2][type]=buy",
        b'{"nonce": "\\udcff"}',
        b'{"nonce": 1, "txid": "\\udcff"}',
    ],
)
def test_unsigned_oddities(sandbox: Sandbox, body: bytes) -> None:
    headers = {"API-Key": sandbox.key, "API-Sign": "AAAA"}
    check(*sandbox.api.handle("POST", "/0/private/CancelOrder", {}, headers, body))
    check(*sandbox.api.handle("POST", "/0/private/Balance", {}, {"API-Key": "\udcff"}, body))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_parameter_with_every_bad_value(sandbox: Sandbox, name: str) -> None:
    for field in PARAMS:
        for value in KILLERS:
            if isinstance(value, str):
                query = {"pair": "XBTUSD", field: value}
                check(*sandbox.api.handle("GET", f"/0/public/{name}", query, {}, b""))
