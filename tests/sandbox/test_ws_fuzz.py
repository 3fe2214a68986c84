"""Random client frames into the sandbox's WebSocket request handling: always a v1 answer.

In-process (no sockets): a real exchange, a :class:`WsApi`, and connections whose outbox is
inspected. Whatever arrives — junk text, wrong types, huge numbers, unknown fields, trading
requests with a valid token — the handler never raises, every reply is JSON that the v1 codec
decodes, and ``EGeneral:Internal error`` is never the answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krakenws.protocol.codec import decode_server
from krakenws.sandbox.exchange import Exchange
from krakenws.sandbox.marketdata import MarketData
from krakenws.sandbox.ws_api import Connection, WsApi

EVENTS = [
    "ping",
    "subscribe",
    "unsubscribe",
    "addOrder",
    "editOrder",
    "amendOrder",
    "cancelOrder",
    "cancelAll",
    "cancelAllOrdersAfter",
    "heartbeat",
    "pong",
    "bogus",
]
FIELDS = [
    "reqid",
    "pair",
    "subscription",
    "token",
    "ordertype",
    "type",
    "volume",
    "price",
    "price2",
    "txid",
    "orderid",
    "timeout",
    "validate",
    "oflags",
    "userref",
    "cl_ord_id",
    "deadline",
    "leverage",
    "starttm",
    "expiretm",
    "timeinforce",
    "close[ordertype]",
    "close[price]",
    "newuserref",
    "limit_price",
    "trigger_price",
    "post_only",
]
SUBSCRIPTION_FIELDS = [
    "name",
    "depth",
    "interval",
    "token",
    "snapshot",
    "ratecounter",
    "consolidate_taker",
    "rebased",
    "extra",
]
NAMES = ["book", "ticker", "ohlc", "trade", "spread", "openOrders", "ownTrades", "*", ""]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "1e400",
            "NaN",
            "XBT/USD",
            "BTC/USD",
            "xbtusd",
            "+5",
            "true",
            "True",
            "0.0001",
            "9" * 60,
            "²",
            "\u00e9",
            "limit",
            "market",
            "buy",
            "sell",
            "2020-01-01T00:00:00Z",
        ]
    ),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[WsApi, str]]:
    exchange = Exchange.open(":memory:", seed=1)
    account = exchange.create_account("fuzz")
    key = exchange.create_api_key(account)
    exchange.deposit(account, "ZUSD", Decimal(100000))
    exchange.deposit(account, "XXBT", Decimal(10))
    token = exchange.issue_ws_token(account, key.key)
    api = WsApi(exchange, MarketData())
    try:
        yield api, token
    finally:
        api.close()
        exchange.close()


def _connection(private: bool) -> Connection:
    return Connection(None, private=private, transport=None)  # type: ignore[arg-type]


def _replies(connection: Connection) -> list[Any]:
    frames = []
    while connection._outbox:
        frames.append(json.loads(connection._outbox.popleft()))
    return frames


def _check(frames: list[Any]) -> None:
    for frame in frames:
        assert "EGeneral:Internal error" not in json.dumps(frame), frame
        decode_server(json.dumps(frame))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    event=st.sampled_from(EVENTS),
    fields=st.dictionaries(st.sampled_from(FIELDS), values, max_size=5),
    subscription=st.dictionaries(st.sampled_from(SUBSCRIPTION_FIELDS), values, max_size=4),
    name=st.sampled_from(NAMES),
    private=st.booleans(),
    use_token=st.booleans(),
)
def test_structured_requests_always_get_a_v1_answer(
    setup: tuple[WsApi, str],
    event: str,
    fields: dict[str, Any],
    subscription: dict[str, Any],
    name: str,
    private: bool,
    use_token: bool,
) -> None:
    api, token = setup
    connection = _connection(private)
    request: dict[str, Any] = {"event": event, **fields}
    if event in ("subscribe", "unsubscribe") and "subscription" not in fields:
        request["subscription"] = {"name": name, **subscription}
        if use_token:
            request["subscription"]["token"] = token
    elif use_token:
        request["token"] = token
    api.handle_text(connection, json.dumps(request))
    frames = _replies(connection)
    assert frames, request
    _check(frames)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.one_of(st.text(max_size=60), st.builds(json.dumps, values)))
def test_junk_text_gets_malformed_request_or_an_event_error(
    setup: tuple[WsApi, str], text: str
) -> None:
    api, _ = setup
    connection = _connection(private=False)
    api.handle_text(connection, text)
    frames = _replies(connection)
    assert frames
    _check(frames)
