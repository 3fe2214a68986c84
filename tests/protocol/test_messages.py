"""The typed v1 messages: exact wire JSON when built in Python, exact values when decoded,
and a precise ProtocolError for every malformed frame."""

from __future__ import annotations

import doctest
import json
import re
from decimal import Decimal

import msgspec
import pytest
from msgspec import UNSET

from krakenws.errors import ProtocolError
from krakenws.protocol import codec, messages
from krakenws.protocol.codec import decode_client, decode_server, encode_client, encode_server
from krakenws.protocol.messages import (
    DECIMAL_TEXT,
    AddOrder,
    AddOrderStatus,
    AmendOrder,
    BookSnapshot,
    BookUpdate,
    CancelAll,
    CancelAllOrdersAfter,
    CancelAllStatus,
    CancelOrder,
    EditOrder,
    ErrorEvent,
    Heartbeat,
    LegacyErrorMessage,
    Ohlc,
    OpenOrders,
    OrderDescr,
    OrderInfo,
    OwnTrade,
    OwnTrades,
    Ping,
    PingStatus,
    Pong,
    Spread,
    Subscribe,
    Subscription,
    SubscriptionStatus,
    SystemStatus,
    Ticker,
    Trade,
    TradeEntry,
    Unsubscribe,
)

BIG_CONNECTION_ID = 18239578009413566319  # a real one, above 2**63


def test_codec_docstring_examples_run() -> None:
    result = doctest.testmod(codec)
    assert result.attempted >= 4
    assert result.failed == 0


def test_every_public_name_exists() -> None:
    for name in messages.__all__:
        assert hasattr(messages, name), name
    assert codec.__all__ == ["decode_client", "decode_server", "encode_client", "encode_server"]


# --- requests built in Python encode to the exact wire text ------------------------------------


def test_ping() -> None:
    assert encode_client(Ping()) == b'{"event":"ping"}'
    assert encode_client(Ping(reqid=42)) == b'{"event":"ping","reqid":42}'


def test_subscribe_book_depth_25() -> None:
    request = Subscribe(
        reqid=7, pair=["XBT/USD", "ETH/USD"], subscription=Subscription(name="book", depth=25)
    )
    assert encode_client(request) == (
        b'{"event":"subscribe","reqid":7,"pair":["XBT/USD","ETH/USD"],'
        b'"subscription":{"name":"book","depth":25}}'
    )


def test_subscribe_ohlc_interval() -> None:
    request = Subscribe(pair=["XBT/EUR"], subscription=Subscription(name="ohlc", interval=5))
    assert encode_client(request) == (
        b'{"event":"subscribe","pair":["XBT/EUR"],"subscription":{"name":"ohlc","interval":5}}'
    )


def test_private_subscribe_has_no_pair() -> None:
    open_orders = Subscribe(
        subscription=Subscription(name="openOrders", token="WW91ciB0b2tlbg", ratecounter=True)
    )
    own_trades = Subscribe(
        subscription=Subscription(
            name="ownTrades", token="WW91ciB0b2tlbg", snapshot=False, consolidate_taker=False
        )
    )
    assert encode_client(open_orders) == (
        b'{"event":"subscribe","subscription":'
        b'{"name":"openOrders","token":"WW91ciB0b2tlbg","ratecounter":true}}'
    )
    assert encode_client(own_trades) == (
        b'{"event":"subscribe","subscription":{"name":"ownTrades","token":"WW91ciB0b2tlbg",'
        b'"snapshot":false,"consolidate_taker":false}}'
    )


@pytest.mark.parametrize("name", ["openOrders", "ownTrades"])
def test_private_unsubscribe_carries_the_token_and_no_pair(name: str) -> None:
    request = Unsubscribe(subscription=Subscription(name=name, token="T"))
    assert encode_client(request) == (
        b'{"event":"unsubscribe","subscription":{"name":"%s","token":"T"}}' % name.encode()
    )
    assert decode_client(encode_client(request)) == request


@pytest.mark.parametrize("name", ["ticker", "ohlc", "trade", "spread", "book"])
def test_subscribe_and_unsubscribe_every_public_channel(name: str) -> None:
    for kind in (Subscribe, Unsubscribe):
        request = kind(pair=["XBT/USD"], subscription=Subscription(name=name))
        text = encode_client(request)
        assert json.loads(text) == {
            "event": kind.__struct_config__.tag,
            "pair": ["XBT/USD"],
            "subscription": {"name": name},
        }
        assert decode_client(text) == request


def test_unsubscribe_by_legacy_channel_id() -> None:
    assert encode_client(Unsubscribe(channel_id=1664)) == (
        b'{"event":"unsubscribe","channelID":1664}'
    )


def test_add_order_with_conditional_close() -> None:
    order = AddOrder(
        reqid=7,
        token="T",
        ordertype="limit",
        type="buy",
        pair="XBT/USD",
        volume="1.25000000",
        price="37000.0",
        userref="8874657",
        close_ordertype="stop-loss",
        close_price="-5%",
        close_price2="#2",
    )
    assert encode_client(order) == (
        b'{"event":"addOrder","reqid":7,"token":"T","ordertype":"limit","type":"buy",'
        b'"pair":"XBT/USD","volume":"1.25000000","price":"37000.0","userref":"8874657",'
        b'"close[ordertype]":"stop-loss","close[price]":"-5%","close[price2]":"#2"}'
    )
    assert decode_client(encode_client(order)) == order


def test_add_order_every_field() -> None:
    order = AddOrder(
        token="T",
        ordertype="stop-loss-limit",
        type="sell",
        pair="XBT/USD",
        volume="0.5",
        price="+10",
        price2="-1%",
        leverage="2",
        margin=True,
        reduce_only=False,
        oflags="post,fciq",
        starttm="0",
        expiretm="+3600",
        deadline="2026-11-22T10:00:00.000Z",
        cl_ord_id="my-order-1",
        stp_type="cancel_oldest",
        sender_sub_id="desk-1",
        validate=True,
        timeinforce="GTD",
    )
    wire = json.loads(encode_client(order))
    assert wire["margin"] is True and wire["reduce_only"] is False
    assert wire["stp_type"] == "cancel_oldest" and wire["timeinforce"] == "GTD"
    assert "close[ordertype]" not in wire and "userref" not in wire
    assert decode_client(encode_client(order)) == order


@pytest.mark.parametrize("validate", [True, False, "true", "True", "false", "False"])
def test_validate_keeps_what_was_sent(validate: bool | str) -> None:
    order = AddOrder(
        token="T", ordertype="market", type="buy", pair="XBT/USD", volume="1", validate=validate
    )
    wire = encode_client(order)
    assert json.loads(wire)["validate"] == validate
    decoded = decode_client(wire)
    assert isinstance(decoded, AddOrder)
    assert decoded.validate == validate
    assert type(decoded.validate) is type(validate)


def test_edit_amend_cancel_requests() -> None:
    edit = EditOrder(
        token="T",
        reqid=3,
        orderid="O65KZW-J4AW3-VFS74A",
        pair="XBT/USD",
        price="9000.0",
        newuserref="42",
        validate=False,
    )
    assert json.loads(encode_client(edit)) == {
        "event": "editOrder",
        "reqid": 3,
        "token": "T",
        "orderid": "O65KZW-J4AW3-VFS74A",
        "pair": "XBT/USD",
        "price": "9000.0",
        "newuserref": "42",
        "validate": False,
    }
    amend = AmendOrder(token="T", cl_ord_id="c1", limit_price="9001.0", post_only=True)
    assert json.loads(encode_client(amend)) == {
        "event": "amendOrder",
        "token": "T",
        "cl_ord_id": "c1",
        "limit_price": "9001.0",
        "post_only": True,
    }
    cancel = CancelOrder(token="T", txid=["OGTT3Y-C6I3P-XRI6HX", "8874657"], cl_ord_id=["c1"])
    assert encode_client(cancel) == (
        b'{"event":"cancelOrder","token":"T","txid":["OGTT3Y-C6I3P-XRI6HX","8874657"],'
        b'"cl_ord_id":["c1"]}'
    )
    assert encode_client(CancelAll(token="T", reqid=6)) == (
        b'{"event":"cancelAll","reqid":6,"token":"T"}'
    )
    assert encode_client(CancelAllOrdersAfter(token="T", timeout=0)) == (
        b'{"event":"cancelAllOrdersAfter","token":"T","timeout":0}'
    )
    for request in (edit, amend, cancel):
        assert decode_client(encode_client(request)) == request


def test_encoders_refuse_the_other_direction() -> None:
    with pytest.raises(TypeError, match="not a client request"):
        encode_client(Heartbeat())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a server message"):
        encode_server(Ping())  # type: ignore[arg-type]


# --- exact values ------------------------------------------------------------------------------


def test_connection_id_above_2_to_the_63_is_exact() -> None:
    text = (
        '{"connectionID":18239578009413566319,"event":"systemStatus","status":"online",'
        '"version":"1.8.3"}'
    )
    status = decode_server(text)
    assert status == SystemStatus(connection_id=BIG_CONNECTION_ID, status="online", version="1.8.3")
    assert b"18239578009413566319" in encode_server(status)


def test_reqid_up_to_2_to_the_64_is_exact() -> None:
    reqid = 2**64 - 1
    assert decode_client(encode_client(Ping(reqid=reqid))) == Ping(reqid=reqid)
    assert decode_server(f'{{"event":"pong","reqid":{reqid}}}') == Pong(reqid=reqid)


def test_null_reqid_and_absent_reqid_are_distinct() -> None:
    echoed_null = decode_server(
        '{"errorMessage":"Reqid field must be a positive integer less than 18446744073709551616",'
        '"event":"addOrderStatus","pair":"USDC/USD","reqid":null,"status":"error"}'
    )
    absent = decode_server(
        '{"errorMessage":"EOrder:Order minimum not met","event":"addOrderStatus","status":"error"}'
    )
    assert isinstance(echoed_null, AddOrderStatus) and isinstance(absent, AddOrderStatus)
    assert echoed_null.reqid is None
    assert absent.reqid is UNSET
    assert echoed_null.is_error and absent.is_error
    assert b'"reqid":null' in encode_server(echoed_null)
    assert b"reqid" not in encode_server(absent)
    assert encode_server(Pong()) == b'{"event":"pong"}'


def test_string_reqid_is_echoed_as_sent() -> None:
    status = decode_server(
        '{"errorMessage":"Reqid field must be a positive integer less than 18446744073709551616",'
        '"event":"pingStatus","reqid":"a","status":"error"}'
    )
    assert isinstance(status, PingStatus)
    assert status.reqid == "a"


def test_camel_case_wire_names_map_to_snake_case() -> None:
    ack = decode_server(
        '{"channelID":1664,"channelName":"book-1000","event":"subscriptionStatus",'
        '"pair":"WAVES/EUR","status":"subscribed","subscription":{"depth":1000,"name":"book"}}'
    )
    assert ack == SubscriptionStatus(
        status="subscribed",
        channel_id=1664,
        channel_name="book-1000",
        pair="WAVES/EUR",
        subscription=Subscription(name="book", depth=1000),
    )
    assert not ack.is_error
    error = decode_server('{"errorMessage":"Malformed request","event":"error"}')
    assert error == ErrorEvent(error_message="Malformed request")


def test_legacy_error_shape() -> None:
    message = decode_server('{"Error":"Exceeded msg rate"}')
    assert message == LegacyErrorMessage(error="Exceeded msg rate")
    assert encode_server(message) == b'{"Error":"Exceeded msg rate"}'


def test_cancel_all_count_keeps_its_json_type() -> None:
    for text, count in (
        ('{"count":2,"event":"cancelAllStatus","status":"ok"}', 2),
        ('{"count":"2","event":"cancelAllStatus","status":"ok"}', "2"),
    ):
        message = decode_server(text)
        assert isinstance(message, CancelAllStatus)
        assert message.count == count
        assert json.loads(encode_server(message)) == json.loads(text)


def test_ratecount_may_be_a_string_or_an_int() -> None:
    for value in ('"3"', "3"):
        frame = f'[[{{"O1":{{"ratecount":{value},"userref":0}}}}],"openOrders",{{"sequence":7}}]'
        message = decode_server(frame)
        assert isinstance(message, OpenOrders)
        assert message.orders[0][1].ratecount == json.loads(value)
        assert json.loads(encode_server(message)) == json.loads(frame)


def test_userref_is_a_string_in_add_order_and_an_int_in_open_orders() -> None:
    order = decode_client(
        '{"event":"addOrder","token":"T","ordertype":"limit","type":"buy","pair":"XBT/USD",'
        '"volume":"1","price":"1","userref":"8874657"}'
    )
    assert isinstance(order, AddOrder) and order.userref == "8874657"
    with pytest.raises(ProtocolError, match=r"invalid 'addOrder' message: .*userref"):
        decode_client(
            '{"event":"addOrder","token":"T","ordertype":"limit","type":"buy","pair":"XBT/USD",'
            '"volume":"1","userref":8874657}'
        )
    update = decode_server('[[{"O1":{"userref":8874657}}],"openOrders",{"sequence":2}]')
    assert isinstance(update, OpenOrders) and update.orders[0][1].userref == 8874657


def test_open_orders_keep_null_apart_from_absent() -> None:
    frame = (
        '[[{"O7AIWV-HEBBH-COCEUU":{"descr":{"close":null,"leverage":null,"pair":"SOL/USD"},'
        '"expiretm":null,"refid":null,"starttm":null,"status":"pending","userref":0}},'
        '{"OX6J4U-3FWTH-NPST2W":{"vol_exec":"0.01000000","cost":"19.67680"}}],'
        '"openOrders",{"sequence":2}]'
    )
    message = decode_server(frame)
    assert isinstance(message, OpenOrders)
    assert message.sequence == 2
    (first_id, first), (second_id, second) = message.orders
    assert (first_id, second_id) == ("O7AIWV-HEBBH-COCEUU", "OX6J4U-3FWTH-NPST2W")
    assert first.refid is None and first.expiretm is None and first.starttm is None
    assert first.descr == OrderDescr(close=None, leverage=None, pair="SOL/USD")
    assert second.refid is UNSET and second.status is UNSET
    assert second == OrderInfo(vol_exec="0.01000000", cost="19.67680")
    assert json.loads(encode_server(message)) == json.loads(frame)


def test_own_trades() -> None:
    frame = (
        '[[{"TROWH4-DD6XR-2O7DPH":{"cost":"19.67680","fee":"0.03148","margin":"0.00000",'
        '"ordertxid":"OX6J4U-3FWTH-NPST2W","ordertype":"limit","pair":"ETH/USD",'
        '"postxid":"TKH2SE-M7IF5-CFI7LT","price":"1967.68000","time":"1700220761.062896",'
        '"type":"buy","vol":"0.01000000","userref":0}}],"ownTrades",{"sequence":2}]'
    )
    message = decode_server(frame)
    assert isinstance(message, OwnTrades)
    ((trade_id, trade),) = message.trades
    assert trade_id == "TROWH4-DD6XR-2O7DPH"
    assert isinstance(trade, OwnTrade)
    assert trade.price == "1967.68000"
    assert trade.price_decimal == Decimal("1967.68000")
    assert trade.vol_decimal == Decimal("0.01")
    assert trade.userref == 0


def test_decimal_views_keep_the_strings() -> None:
    ticker = decode_server(
        '[996,{"a":["355.24000000",27,"27.19106411"],"b":["354.32000000",6,"6.87748868"],'
        '"c":["355.23000000","1.20454360"],"v":["17858.85261084","33470.74135600"],'
        '"p":["355.33503706","349.16721624"],"t":[6481,10283],'
        '"l":["340.88000000","333.87000000"],"h":["368.00000000","368.00000000"],'
        '"o":["340.88000000","335.21000000"]},"ticker","XMR/USD"]'
    )
    assert isinstance(ticker, Ticker)
    assert ticker.a == ("355.24000000", 27, "27.19106411")
    assert ticker.t == (6481, 10283)
    assert ticker.ask_price_decimal == Decimal("355.24")
    assert ticker.bid_price_decimal == Decimal("354.32")
    assert ticker.last_price_decimal == Decimal("355.23")
    spread = decode_server(
        '[0,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],'
        '"spread","XBT/USD"]'
    )
    assert isinstance(spread, Spread)
    assert (spread.bid, spread.ask_decimal) == ("5698.40000", Decimal("5700"))
    assert spread.bid_decimal == Decimal("5698.4")
    trade = decode_server(
        '[993,[["354.55000000","1.25690315","1618678145.715785","b","m",""],'
        '["354.56000000","0.00000000","1618678145.715790","s","l",""]],"trade","XMR/USD"]'
    )
    assert isinstance(trade, Trade)
    assert trade.trades[0] == TradeEntry(
        price="354.55000000",
        volume="1.25690315",
        time="1618678145.715785",
        side="b",
        order_type="m",
        misc="",
    )
    assert trade.trades[0].price_decimal == Decimal("354.55")
    # A zero that str(Decimal) would spell "0E-8" stays the wire text.
    assert trade.trades[1].volume == "0.00000000"
    assert trade.trades[1].volume_decimal == 0
    candle = decode_server(
        '[42,["1542057314.748456","1542057360.435743","3586.70000","3586.70000","3586.60000",'
        '"3586.60000","3586.68894","0.03373000",2],"ohlc-5","XBT/USD"]'
    )
    assert isinstance(candle, Ohlc)
    assert (candle.interval, candle.count, candle.close_decimal) == (5, 2, Decimal("3586.6"))


def test_ohlc_count_may_be_a_string() -> None:
    frame = '[42,["1","2","3","4","5","6","7","8","9"],"ohlc-1","XBT/USD"]'
    candle = decode_server(frame)
    assert isinstance(candle, Ohlc) and candle.count == "9"
    assert json.loads(encode_server(candle)) == json.loads(frame)


# --- unknown extra fields are ignored ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"connectionID":1,"event":"systemStatus","status":"online","version":"1.9.2",'
            '"region":"eu","flags":{"x":[1,2]}}',
            SystemStatus(connection_id=1, status="online", version="1.9.2"),
        ),
        ('{"event":"heartbeat","time":"2026-11-22T00:00:00Z"}', Heartbeat()),
        (
            '{"event":"subscriptionStatus","status":"subscribed","channelName":"trade",'
            '"subscription":{"name":"trade","future_option":true}}',
            SubscriptionStatus(
                status="subscribed", channel_name="trade", subscription=Subscription(name="trade")
            ),
        ),
        (
            '[7,{"a":[["1.0","2.0","3.0"]],"c":"12","seq":99},"book-10","XBT/USD"]',
            BookUpdate(
                channel_id=7,
                asks=[["1.0", "2.0", "3.0"]],
                bids=[],
                checksum="12",
                channel_name="book-10",
                pair="XBT/USD",
            ),
        ),
        (
            '[7,{"as":[],"bs":[["1.0","2.0","3.0"]],"depth":10},"book-10","XBT/USD"]',
            BookSnapshot(
                channel_id=7,
                asks=[],
                bids=[["1.0", "2.0", "3.0"]],
                channel_name="book-10",
                pair="XBT/USD",
            ),
        ),
        (
            '[[{"O1":{"status":"open","new_field":[1]}}],"openOrders",{"sequence":3,"x":1}]',
            OpenOrders(orders=[("O1", OrderInfo(status="open"))], sequence=3),
        ),
    ],
)
def test_unknown_extra_fields_are_ignored(text: str, expected: object) -> None:
    assert decode_server(text) == expected


def test_unknown_extra_request_fields_are_ignored() -> None:
    request = decode_client('{"event":"ping","reqid":1,"client":"krakenws"}')
    assert request == Ping(reqid=1)


# --- book frames: the shape the order book consumes --------------------------------------------


def test_book_update_shapes() -> None:
    asks = [["5541.30000", "2.50700000", "1534614248.456738"]]
    bids = [["5541.20000", "0.00000000", "1534614335.345903"], ["5539.90000", "1.0", "1.0", "r"]]

    def update(**fields: object) -> BookUpdate:
        return BookUpdate(
            channel_id=1234,
            channel_name="book-10",
            pair="XBT/USD",
            **fields,  # type: ignore[arg-type]
        )

    ask_only = update(asks=asks, bids=[], checksum="974942666")
    assert json.loads(encode_server(ask_only)) == [
        1234,
        {"a": asks, "c": "974942666"},
        "book-10",
        "XBT/USD",
    ]
    split = update(asks=asks, bids=bids, checksum="1", split=True)
    assert json.loads(encode_server(split)) == [
        1234,
        {"a": asks},
        {"b": bids, "c": "1"},
        "book-10",
        "XBT/USD",
    ]
    # Never sent by Kraken, but still one valid object carrying both sides.
    both = update(asks=asks, bids=bids, checksum="1")
    assert json.loads(encode_server(both)) == [
        1234,
        {"a": asks, "b": bids, "c": "1"},
        "book-10",
        "XBT/USD",
    ]
    no_checksum = update(asks=[], bids=bids, checksum=None)
    assert json.loads(encode_server(no_checksum)) == [1234, {"b": bids}, "book-10", "XBT/USD"]
    for message in (ask_only, split, both, no_checksum):
        assert decode_server(encode_server(message)) == message


def test_book_update_with_an_empty_side_list_decodes_to_the_same_value_again() -> None:
    # "a": [] is never sent by Kraken; it decodes and re-encodes to an equal value.
    message = decode_server('[1,{"b":[],"c":"0"},"book-10","XBT/USD"]')
    assert isinstance(message, BookUpdate)
    assert (message.asks, message.bids, message.checksum) == ([], [], "0")
    assert decode_server(encode_server(message)) == message


def test_non_standard_book_depth_is_still_a_book() -> None:
    message = decode_server('[1,{"a":[["1","2","3"]],"c":"5"},"book-42","XBT/USD"]')
    assert isinstance(message, BookUpdate)
    assert message.channel_name == "book-42"


def test_str_and_bytes_decode_alike() -> None:
    text = '[1,{"b":[["1","2","3"]],"c":"5"},"book-10","XBT/USD"]'
    from_bytes = decode_server(text.encode())
    from_bytearray = decode_server(bytearray(text, "utf-8"))  # type: ignore[arg-type]
    assert decode_server(text) == from_bytes == from_bytearray


def test_repr_leaves_out_absent_fields() -> None:
    assert repr(Subscription(name="book", depth=10)) == "Subscription(name='book', depth=10)"
    assert repr(Pong()) == "Pong()"


def test_messages_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Pong(reqid=1).reqid = 2  # type: ignore[misc]


# --- malformed frames --------------------------------------------------------------------------

MALFORMED_SERVER_FRAMES: list[tuple[str | bytes, str]] = [
    ("", "not valid JSON"),
    ("not json", "not valid JSON: JSON is malformed"),
    ('{"event":"heartbeat"', "not valid JSON: Input data was truncated"),
    (b'["\xff"]', "not valid UTF-8"),
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ("42", "a server message is a JSON object or array, got integer"),
    ("null", "got null"),
    ('{"event":"foo"}', "unknown event 'foo'"),
    ('{"event":"addOrder"}', "event 'addOrder' is not a server message"),
    ('{"event":5}', "'event' must be a string, got integer"),
    ('{"status":"online"}', "object has no 'event' field"),
    ('{"Error":5}', "'Error' must be a string, got integer"),
    ('{"event":"pong","reqid":1.5}', "invalid 'pong' message: Expected `int | str | null`"),
    (
        '{"event":"systemStatus","status":"online","version":"1"}',
        "invalid 'systemStatus' message: Object missing required field `connectionID`",
    ),
    (
        '{"event":"systemStatus","connectionID":"1","status":"online","version":"1"}',
        "at `$.connectionID`",
    ),
    (
        '{"event":"subscriptionStatus","status":"ok","subscription":{"depth":10}}',
        "Object missing required field `name` - at `$.subscription`",
    ),
    ("[]", "channel frame has 0 elements"),
    ("[1,2]", "channel frame has 2 elements"),
    ('[1,{"a":[]},5,"X"]', "element 2 must be the channel name, got integer"),
    ('[1,["1","2","3","4","5"],"spreadz","X"]', "unknown channel 'spreadz'"),
    (
        '[1,{"a":[["1","2","3"],["1","2","3"],["1","2"]],"c":"1"},"book-10","X"]',
        "book update level 2 of 'a' has 2 elements, expected 3 or 4",
    ),
    (
        '[1,{"b":[["1","2","3"],["1","2","3","x"]],"c":"1"},"book-10","X"]',
        "book update level 1 of 'b': 4th element must be 'r'",
    ),
    (
        '[1,{"b":[["1",2,"3"]],"c":"1"},"book-10","X"]',
        "book update level 0 of 'b': volume must be a string, got integer",
    ),
    ('[1,{"b":[5],"c":"1"},"book-10","X"]', "level 0 of 'b' must be an array, got integer"),
    ('[1,{"b":{},"c":"1"},"book-10","X"]', "book update 'b' must be an array, got object"),
    ('[1,{"b":[],"c":1},"book-10","X"]', "checksum 'c' must be a string of digits, got 1"),
    ('[1,{"b":[],"c":"12a"},"book-10","X"]', "checksum 'c' must be a string of digits"),
    ('[1,{"c":"12"},"book-10","X"]', "book update has neither 'a' nor 'b'"),
    (
        '[1,{"as":[["1","2","3","r"]],"bs":[]},"book-10","X"]',
        "book snapshot level 0 of 'as' has 4 elements, expected 3",
    ),
    ('[1,{"as":[],"bs":[],"c":"1"},"book-10","X"]', "mixes snapshot keys"),
    (
        '[1,{"b":[]},{"a":[],"c":"1"},"book-10","X"]',
        "five-element book-10 update: the first object must carry 'a' only",
    ),
    (
        '[1,{"a":[]},{"c":"1"},"book-10","X"]',
        "five-element book-10 update: the second object must carry 'b'",
    ),
    ('[1,{"a":[]},[],"book-10","X"]', "must carry two objects, got object and array"),
    ('[1,{"a":[]},"book-x","X"]', "channel name 'book-x' must be 'book-<integer>'"),
    ('["1",{"a":[]},"book-10","X"]', "element 0 (channelID) must be an integer, got string"),
    ('[true,{"a":[]},"book-10","X"]', "element 0 (channelID) must be an integer, got boolean"),
    ('[1,{"a":[]},"book-10",5]', "last element (pair) must be a string, got integer"),
    ('[0,{"a":[]},{"b":[]},"X","book-10","X"]', "book-10 frame has 6 elements, expected 4"),
    ('[0,{"a":[]},"X","book-10","X"]', "must carry two objects, got object and string"),
    ('[1,[],"book-10","X"]', "book-10 payload must be an object, got array"),
    (
        '[1,{"a":["1","2",3],"b":["1",2,"3"],"c":["1","2"],"v":["1","2"],"p":["1","2"],'
        '"t":[1,2],"l":["1","2"],"h":["1","2"],"o":["1","2"]},"ticker","X"]',
        "ticker 'a' must be [price, whole_lot_volume, lot_volume]",
    ),
    (
        '[1,{"a":["1",2,"3"],"b":["1",2,"3"],"c":["1","2"],"v":["1","2"],"p":["1","2"],'
        '"t":["1",2],"l":["1","2"],"h":["1","2"],"o":["1","2"]},"ticker","X"]',
        "ticker 't' must be [today, last_24h] integers",
    ),
    (
        '[1,{"a":["1",2,"3"],"b":["1",2,"3"],"c":["1","2"],"v":["1","2"],"p":["1","2"],'
        '"t":[1,2],"l":["1","2"],"h":["1","2"]},"ticker","X"]',
        "ticker payload has no 'o'",
    ),
    ('[1,["1","2","3","4","5","6","7","8"],"ohlc-5","X"]', "ohlc payload must be [time, etime"),
    ('[1,["1","2","3","4","5","6","7","8",9],"ohlc-x","X"]', "must be 'ohlc-<integer>'"),
    ('[1,[["1","2","3","b","m"]],"trade","X"]', "trade entry 0 must be [price, volume, time"),
    ('[1,{"price":"1"},"trade","X"]', "trade payload must be an array of trades, got object"),
    ('[1,["1","2","3","4"],"spread","X"]', "spread payload must be [bid, ask, timestamp"),
    (
        '[[{"O1":{"status":5}}],"openOrders",{"sequence":1}]',
        "openOrders order 'O1': Expected `str`, got `int` - at `$.status`",
    ),
    (
        '[[{"O1":{},"O2":{}}],"openOrders",{"sequence":1}]',
        "openOrders entry 0 must be an object holding exactly one order id",
    ),
    ('[[],"openOrders",{"seq":1}]', 'must end with {"sequence": <integer>}'),
    ('[[],"openOrders",{"sequence":"1"}]', 'must end with {"sequence": <integer>}'),
    ('[{},"openOrders",{"sequence":1}]', "openOrders frame element 0 must be an array"),
    ('[[],"openOrders"]', "channel frame has 2 elements"),
    ('[1,[],"openOrders",{"sequence":1}]', "openOrders frame has 4 elements, expected 3"),
    (
        '[[{"T1":{"pair":"X"}}],"ownTrades",{"sequence":1}]',
        "ownTrades trade 'T1': Object missing required field `ordertxid`",
    ),
    # numbers that are not numbers never reach a message (its *_decimal readings cannot fail)
    ('[1,[["abc","0.1","1.0","b","l",""]],"trade","X"]', 'trade entry 0: "abc" is not a decimal'),
    ('[1,[["1.0","0.1","1e9","b","l",""]],"trade","X"]', 'trade entry 0: "1e9" is not a decimal'),
    ('[1,["1","2","3","NaN","5"],"spread","X"]', 'spread: "NaN" is not a decimal number'),
    (
        '[1,["1","2","3","4","5","6","7","8 ",9],"ohlc-5","X"]',
        'ohlc: "8 " is not a decimal number',
    ),
    (
        '[1,{"a":["1",2,"3"],"b":["1",2,"3"],"c":["1","2"],"v":["1","2"],"p":["1","2"],'
        '"t":[1,2],"l":["1","2"],"h":["1",""],"o":["1","2"]},"ticker","X"]',
        "ticker 'h': \"\" is not a decimal number",
    ),
    (
        '[[{"O1":{"vol":"1.5\\n"}}],"openOrders",{"sequence":1}]',
        "openOrders order 'O1': vol \"1.5\\n\" is not a decimal number",
    ),
    (
        '[[{"T1":{"ordertxid":"O","pair":"X","time":"1","type":"buy","ordertype":"limit",'
        '"price":"1","cost":"1","fee":"-","vol":"1"}}],"ownTrades",{"sequence":1}]',
        "ownTrades trade 'T1': fee \"-\" is not a decimal number",
    ),
]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", True),
        ("60002.40000", True),
        ("1700000000.123456", True),
        ("-0.5", True),  # margin and ledger-like amounts may be negative
        ("", False),
        ("1.", False),
        (".5", False),
        ("+1", False),
        ("1e-05", False),
        ("1,5", False),
        ("1.5\n", False),
        (" 1", False),
        ("\u0661", False),  # ARABIC-INDIC DIGIT ONE: not an ASCII digit
        ("NaN", False),
        ("Infinity", False),
    ],
)
def test_what_a_wire_number_is(text: str, number: bool) -> None:
    assert bool(re.match(DECIMAL_TEXT, text)) is number


@pytest.mark.parametrize(("frame", "message"), MALFORMED_SERVER_FRAMES)
def test_malformed_server_frame_says_what_is_wrong(frame: str | bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_server(frame)
    assert message in str(caught.value)


MALFORMED_CLIENT_FRAMES: list[tuple[str | bytes, str]] = [
    ("", "not valid JSON"),
    ("[1]", "a client request is a JSON object, got array"),
    ('{"event":"heartbeat"}', "event 'heartbeat' is not a client message"),
    ('{"event":"nope"}', "unknown event 'nope'"),
    ('{"reqid":1}', "object has no 'event' field"),
    ('{"event":"ping","reqid":"a"}', "invalid 'ping' message: Expected `int`, got `str`"),
    ('{"event":"subscribe"}', "Object missing required field `subscription`"),
    ('{"event":"subscribe","subscription":{"name":"book","depth":"10"}}', "$.subscription.depth"),
    ('{"event":"cancelOrder","token":"T","txid":"O1"}', "Expected `array`, got `str`"),
    ('{"event":"cancelAll"}', "Object missing required field `token`"),
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ('"\ud800"', "not valid UTF-8"),
]


@pytest.mark.parametrize(("frame", "message"), MALFORMED_CLIENT_FRAMES)
def test_malformed_client_frame_says_what_is_wrong(frame: str | bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_client(frame)
    assert message in str(caught.value)


def test_protocol_errors_chain_the_underlying_cause() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_server('{"event":"pong","reqid":1.5}')
    assert isinstance(caught.value.__cause__, msgspec.ValidationError)


def test_non_text_input_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="must be str or bytes"):
        decode_server(12)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="must be str or bytes"):
        decode_client(None)  # type: ignore[arg-type]
