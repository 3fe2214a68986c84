"""The reference script's command forms parse to the requests Kraken expects."""

from __future__ import annotations

import pytest

from krakenws.cli.usage import (
    ENDPOINTS,
    USAGE_EXAMPLES,
    BalancesCommand,
    PingCommand,
    PrivateFeed,
    PublicFeed,
    TradingCall,
    parse_feed_command,
    resolve_endpoint,
)
from krakenws.errors import UsageError
from krakenws.protocol.codec import decode_client, encode_client
from krakenws.protocol.messages import (
    AddOrder,
    CancelAll,
    CancelAllOrdersAfter,
    CancelOrder,
    EditOrder,
    Ping,
    Subscribe,
    Subscription,
)


def parse(line: str) -> object:
    name, *args = line.split()
    return parse_feed_command(name, args)


def usage_error(line: str) -> str:
    with pytest.raises(UsageError) as caught:
        parse(line)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- the forms of issue 7 ----------------------------------------------------------------------


def test_ping() -> None:
    command = parse("ping")
    assert command == PingCommand()
    assert isinstance(command, PingCommand)
    assert command.request() == Ping()
    assert not command.needs_token


def test_ticker_with_three_pairs() -> None:
    command = parse("ticker XBT/USD ETH/EUR XDG/XBT")
    assert command == PublicFeed("ticker", ("XBT/USD", "ETH/EUR", "XDG/XBT"))
    assert isinstance(command, PublicFeed)
    assert command.channel_name == "ticker"
    assert command.subscribe() == Subscribe(
        pair=["XBT/USD", "ETH/EUR", "XDG/XBT"], subscription=Subscription(name="ticker")
    )
    assert not command.needs_token and not command.needs_api_key


def test_spread_and_trade() -> None:
    assert parse("spread XBT/USD XBT/EUR") == PublicFeed("spread", ("XBT/USD", "XBT/EUR"))
    assert parse("trade XBT/USD") == PublicFeed("trade", ("XBT/USD",))


def test_book_with_depth() -> None:
    command = parse("book ETH/USD 10")
    assert command == PublicFeed("book", ("ETH/USD",), depth=10)
    assert isinstance(command, PublicFeed)
    assert command.channel_name == "book-10"
    assert encode_client(command.subscribe()) == (
        b'{"event":"subscribe","pair":["ETH/USD"],"subscription":{"name":"book","depth":10}}'
    )


def test_book_depth_defaults_to_10_and_may_come_anywhere() -> None:
    assert parse("book XBT/USD") == PublicFeed("book", ("XBT/USD",), depth=10)
    assert parse("book 1000 XBT/USD XBT/EUR") == PublicFeed(
        "book", ("XBT/USD", "XBT/EUR"), depth=1000
    )
    assert parse("book XBT/USD depth=25") == PublicFeed("book", ("XBT/USD",), depth=25)


def test_ohlc_with_interval() -> None:
    command = parse("ohlc LTC/EUR XBT/USD 60")
    assert command == PublicFeed("ohlc", ("LTC/EUR", "XBT/USD"), interval=60)
    assert isinstance(command, PublicFeed)
    assert command.channel_name == "ohlc-60"
    assert command.subscription() == Subscription(name="ohlc", interval=60)
    assert parse("ohlc XBT/USD") == PublicFeed("ohlc", ("XBT/USD",), interval=1)


def test_subscribe_can_take_resolved_pair_names() -> None:
    command = parse("ticker xbtusd")
    assert isinstance(command, PublicFeed)
    assert command.pairs == ("xbtusd",)  # kept as typed; the pair registry resolves it
    assert command.subscribe(["XBT/USD"]).pair == ["XBT/USD"]


def test_repeated_pairs_are_subscribed_once() -> None:
    assert parse("trade XBT/USD ETH/USD XBT/USD") == PublicFeed("trade", ("XBT/USD", "ETH/USD"))


def test_open_orders() -> None:
    command = parse("openOrders")
    assert command == PrivateFeed("openOrders")
    assert isinstance(command, PrivateFeed)
    assert command.needs_token and not command.needs_api_key
    assert command.subscribe("TOKEN") == Subscribe(
        subscription=Subscription(name="openOrders", token="TOKEN")
    )


def test_open_orders_with_ratecounter() -> None:
    command = parse("openOrders ratecounter=true")
    assert command == PrivateFeed("openOrders", ratecounter=True)
    assert isinstance(command, PrivateFeed)
    assert encode_client(command.subscribe("T")) == (
        b'{"event":"subscribe","subscription":{"name":"openOrders","token":"T","ratecounter":true}}'
    )


def test_own_trades_options() -> None:
    assert parse("ownTrades") == PrivateFeed("ownTrades")
    command = parse("ownTrades snapshot=false consolidate_taker=False")
    assert command == PrivateFeed("ownTrades", snapshot=False, consolidate_taker=False)
    assert isinstance(command, PrivateFeed)
    assert command.subscription("T") == Subscription(
        name="ownTrades", token="T", snapshot=False, consolidate_taker=False
    )


def test_add_order_market_with_leverage() -> None:
    command = parse("addOrder pair=XBT/USD type=buy ordertype=market volume=0.002 leverage=5")
    assert isinstance(command, TradingCall)
    assert command.endpoint == "addOrder"
    assert command.needs_token
    request = command.request("TOKEN")
    assert request == AddOrder(
        token="TOKEN", pair="XBT/USD", type="buy", ordertype="market", volume="0.002", leverage="5"
    )
    assert decode_client(encode_client(request)) == request


def test_add_order_with_every_parameter() -> None:
    command = parse(
        "addOrder pair=XBT/USD type=sell ordertype=stop-loss-limit volume=1.25000 price=#5% "
        "price2=-10 oflags=post,fciq starttm=0 expiretm=+3600 "
        "deadline=2024-01-01T12:00:00.000Z validate=true userref=8874657 timeinforce=gtd "
        "margin=false reduce_only=true stptype=cancel-oldest sender_sub_id=desk1 "
        "close[ordertype]=limit close[price]=9000 close_price2=+1 reqid=42"
    )
    assert isinstance(command, TradingCall)
    assert command.reqid == 42
    assert command.template == AddOrder(
        token="",
        reqid=42,
        pair="XBT/USD",
        type="sell",
        ordertype="stop-loss-limit",
        volume="1.25000",
        price="#5%",
        price2="-10",
        oflags="post,fciq",
        starttm="0",
        expiretm="+3600",
        deadline="2024-01-01T12:00:00.000Z",
        validate=True,
        userref="8874657",
        timeinforce="GTD",
        margin=False,
        reduce_only=True,
        stp_type="cancel_oldest",
        sender_sub_id="desk1",
        close_ordertype="limit",
        close_price="9000",
        close_price2="+1",
    )
    wire = encode_client(command.request("T"))
    assert b'"close[ordertype]":"limit","close[price]":"9000","close[price2]":"+1"' in wire
    assert b'"volume":"1.25000"' in wire  # the volume exactly as typed


def test_add_order_with_client_order_id() -> None:
    command = parse(
        "addOrder pair=XBT/USD type=buy ordertype=limit price=25000.1 volume=1 "
        "cl_ord_id=8a1f6c2e-0a7b-4d3c-9e2f-5b6a7c8d9e0f"
    )
    assert isinstance(command, TradingCall)
    request = command.request("T", reqid=7)
    assert isinstance(request, AddOrder)
    assert request.cl_ord_id == "8a1f6c2e-0a7b-4d3c-9e2f-5b6a7c8d9e0f"
    assert request.reqid == 7


def test_edit_order() -> None:
    command = parse(
        "editOrder orderid=OADMSD-7AGC3-IMB46A pair=XBT/USD price=9000 volume=0.5 "
        "newuserref=12 oflags=post validate=1"
    )
    assert isinstance(command, TradingCall)
    assert command.request("T") == EditOrder(
        token="T",
        orderid="OADMSD-7AGC3-IMB46A",
        pair="XBT/USD",
        price="9000",
        volume="0.5",
        newuserref="12",
        oflags="post",
        validate=True,
    )
    alias = parse("editOrder txid=OADMSD-7AGC3-IMB46A pair=XBT/USD price=9000")
    assert isinstance(alias, TradingCall)
    assert isinstance(alias.template, EditOrder)
    assert alias.template.orderid == "OADMSD-7AGC3-IMB46A"


def test_cancel_order_txid_list() -> None:
    command = parse("cancelOrder txid=OADMSD-7AGC3-IMB46A,OD6VRE-HCSPM-CKORER")
    assert isinstance(command, TradingCall)
    assert command.request("TOKEN") == CancelOrder(
        token="TOKEN", txid=["OADMSD-7AGC3-IMB46A", "OD6VRE-HCSPM-CKORER"]
    )
    repeated = parse("cancelOrder txid=OA txid=OB,8874657 cl_ord_id=my-order")
    assert isinstance(repeated, TradingCall)
    assert repeated.template == CancelOrder(
        token="", txid=["OA", "OB", "8874657"], cl_ord_id=["my-order"]
    )


def test_cancel_all() -> None:
    command = parse("cancelAll")
    assert isinstance(command, TradingCall)
    assert command.request("T", reqid=3) == CancelAll(token="T", reqid=3)


def test_cancel_all_orders_after() -> None:
    command = parse("cancelAllOrdersAfter timeout=60")
    assert isinstance(command, TradingCall)
    request = command.request("T")
    assert request == CancelAllOrdersAfter(token="T", timeout=60)
    assert encode_client(request) == (b'{"event":"cancelAllOrdersAfter","token":"T","timeout":60}')
    disabled = parse("cancelAllOrdersAfter timeout=0")
    assert isinstance(disabled, TradingCall)
    assert disabled.template == CancelAllOrdersAfter(token="", timeout=0)


def test_balances() -> None:
    command = parse("balances")
    assert command == BalancesCommand()
    assert isinstance(command, BalancesCommand)
    assert command.needs_api_key and command.needs_token


def test_every_usage_example_parses() -> None:
    for line in USAGE_EXAMPLES:
        _, name, *args = line.split()
        assert parse_feed_command(name, args).endpoint == name


def test_template_token_is_empty_until_request() -> None:
    command = parse("cancelAll")
    assert isinstance(command, TradingCall)
    assert command.template.token == ""
    assert command.request("X").token == "X"
    assert command.template.token == ""  # frozen: request() made a new value


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ENDPOINTS)
def test_endpoint_names_are_exact_and_case_insensitive(name: str) -> None:
    assert resolve_endpoint(name) == name
    assert resolve_endpoint(name.upper()) == name
    assert resolve_endpoint(name.lower()) == name


def test_case_insensitive_command() -> None:
    assert parse("OPENORDERS ratecounter=TRUE") == PrivateFeed("openOrders", ratecounter=True)
    assert parse("Ticker XBT/USD") == PublicFeed("ticker", ("XBT/USD",))


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("openOrder", "openOrders"),
        ("owntrade", "ownTrades"),
        ("tickers", "ticker"),
        ("addorders", "addOrder"),
        ("cancelOrders", "cancelOrder"),
        ("cancelAllOrderAfter", "cancelAllOrdersAfter"),
        ("balance", "balances"),
    ],
)
def test_near_misses_get_a_hint(name: str, suggestion: str) -> None:
    with pytest.raises(UsageError, match=f"did you mean '{suggestion}'"):
        resolve_endpoint(name)


def test_unknown_name_lists_the_known_ones() -> None:
    message = usage_error("frobnicate")
    assert message.startswith("unknown feed or endpoint 'frobnicate'; known: ping, ticker")


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ticker", "ticker needs at least one pair, e.g. krakenws ticker XBT/USD"),
        ("book 10", "book needs at least one pair, e.g. krakenws book ETH/USD 10"),
        ("book XBT/USD 42", "book depth 42 is not supported; use one of 10, 25, 100, 500, 1000"),
        ("book XBT/USD depth=5", "book depth 5 is not supported"),
        ("book XBT/USD 10 25", "book: give one depth, not 10 and 25"),
        ("ohlc XBT/USD 7", "ohlc interval 7 is not supported; use one of 1, 5, 15, 30, 60,"),
        ("ticker XBT/USD 10", "ticker takes pairs only, not the number '10'"),
        ("ticker XBT//USD", "ticker: 'XBT//USD' is not a pair name (write it like XBT/USD)"),
        ("ticker XBT/USD/EUR", "is not a pair name"),
        ("ticker /USD", "is not a pair name"),
        ("ticker --verbose", "ticker: unknown option '--verbose'"),
        ("trade XBT/USD dpeth=10", "trade: unknown parameter 'dpeth'"),
        ("book XBT/USD dpeth=10", "book: unknown parameter 'dpeth'; did you mean depth?"),
        ("openOrders ratecount=true", "did you mean ratecounter?"),
        ("openOrders ratecounter=maybe", "openOrders: ratecounter must be true or false"),
        ("openOrders true", "openOrders takes key=value parameters, got 'true'"),
        ("ownTrades snapshot=false snapshot=true", "ownTrades: snapshot given twice"),
        ("ping now", "ping takes key=value parameters, got 'now' (known: reqid)"),
        ("ping reqid=-1", "ping: reqid must be between 0 and 2**64 - 1"),
        ("ping reqid=abc", "ping: reqid must be a whole number, not 'abc'"),
        ("balances XBT", "balances takes no parameters, got 'XBT'"),
        ("cancelAll reqid=1 now", "cancelAll takes key=value parameters, got 'now'"),
    ],
)
def test_bad_feed_arguments(line: str, expected: str) -> None:
    assert expected in usage_error(line)


ADD = "addOrder pair=XBT/USD type=buy ordertype=limit price=100 volume=1"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("addOrder pair=XBT/USD type=buy", "addOrder: missing parameters ordertype, volume"),
        ("addOrder pair=XBT/USD type=buy ordertype=limit volume=1", "limit order needs price="),
        (
            "addOrder pair=XBT/USD type=buy ordertype=stop-loss-limit price=1 volume=1",
            "stop-loss-limit order needs price2=",
        ),
        (f"{ADD} volume=2", "addOrder: volume given twice"),
        ("addOrder pair=XBT/USD type=buy ordertype=market volume=1.5.0", "plain decimal number"),
        ("addOrder pair=XBT/USD type=buy ordertype=market volume=1e-3", "plain decimal number"),
        ("addOrder pair=XBT/USD type=buy ordertype=market volume=0.000", "greater than zero"),
        ("addOrder pair=XBT/USD type=buy ordertype=market volume=NaN", "plain decimal number"),
        ("addOrder pair=XBT/USD type=buy ordertype=market volume=", "plain decimal number"),
        ("addOrder pair=XBT/USD type=buy ordertype=limit price=abc volume=1", "decimal price"),
        ("addOrder pair=XBT/USD type=buy ordertype=limit price=5% volume=1", "needs a +, - or #"),
        ("addOrder pair=XBT/USD type=bye ordertype=limit price=1 volume=1", "did you mean buy?"),
        ("addOrder pair=XBT/USD type=buy ordertype=limt price=1 volume=1", "did you mean limit?"),
        ("addOrder pair=XBTUSD= type=buy ordertype=market volume=1", "is not a pair name"),
        (f"{ADD} oflags=post,ioc", "unknown order flag 'ioc' in oflags"),
        (f"{ADD} oflags=post,post", "oflags repeats a flag"),
        (f"{ADD} timeinforce=FOK", "timeinforce 'FOK' is not one of GTC, IOC, GTD"),
        (f"{ADD} timeinforce=GTD", "timeinforce=GTD needs expiretm="),
        (f"{ADD} expiretm=tomorrow", "expiretm must be 0 (now/none), +SECONDS or a unix time"),
        (f"{ADD} deadline=soon", "deadline must be an RFC 3339 time with a zone"),
        (f"{ADD} deadline=2024-01-01T12:00:00", "deadline must be an RFC 3339 time with a zone"),
        (f"{ADD} userref=1.5", "userref must be a whole number"),
        (f"{ADD} userref=9999999999", "userref must fit in a signed 32-bit integer"),
        (f"{ADD} userref=1 cl_ord_id=abc", "give userref or cl_ord_id, not both"),
        (f"{ADD} cl_ord_id=this-is-far-too-long-for-kraken", "cl_ord_id must be a UUID"),
        (f"{ADD} leverage=x", "leverage must be a whole number like 2 or 5"),
        (f"{ADD} stp_type=newest", "stp_type 'newest' is not one of cancel_newest"),
        (f"{ADD} close[price]=1", "a conditional close needs close[ordertype]="),
        (f"{ADD} validate=sure", "validate must be true or false"),
        (f"{ADD} ordretype=limit", "unknown parameter 'ordretype'; did you mean ordertype?"),
        (f"{ADD} trigger=index", "addOrder: unknown parameter 'trigger'"),
        ("addOrder XBT/USD type=buy", "got 'XBT/USD' (did you mean pair=XBT/USD?)"),
        ("addOrder =buy", "addOrder: a parameter has no name (write key=value)"),
    ],
)
def test_bad_add_order(line: str, expected: str) -> None:
    assert expected in usage_error(line)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("editOrder pair=XBT/USD price=1", "editOrder: missing parameter orderid"),
        ("editOrder orderid=OA pair=XBT/USD", "editOrder: nothing to change"),
        ("editOrder orderid=OA pair=XBT/USD newuserref=x", "newuserref must be a whole number"),
        ("cancelOrder", "cancelOrder: missing parameter txid"),
        ("cancelOrder txid=", "cancelOrder: txid needs comma-separated ids, got ''"),
        ("cancelOrder txid=OA,,OB", "cancelOrder: txid needs comma-separated ids"),
        ("cancelOrder OADMSD-7AGC3-IMB46A", "(did you mean txid=OADMSD-7AGC3-IMB46A?)"),
        ("cancelAll txid=OA", "cancelAll: unknown parameter 'txid'"),
        ("cancelAllOrdersAfter", "cancelAllOrdersAfter: missing parameter timeout"),
        ("cancelAllOrdersAfter 60", "(did you mean timeout=60?)"),
        ("cancelAllOrdersAfter timeout=1m", "timeout must be a whole number, not '1m'"),
        ("cancelAllOrdersAfter timeout=-1", "timeout must be between 0 (disable) and 86399"),
        ("cancelAllOrdersAfter timeout=86400", "timeout must be between 0 (disable) and 86399"),
        # Unicode digits other than ASCII ones are refused here, not sent to Kraken
        ("addOrder pair=XBT/USD type=buy ordertype=market volume=\u0661", "plain decimal"),
        ("cancelAllOrdersAfter timeout=\u0666\u0660", "timeout must be a whole number"),
    ],
)
def test_bad_trading_arguments(line: str, expected: str) -> None:
    assert expected in usage_error(line)


def test_parameter_names_are_case_insensitive() -> None:
    command = parse("cancelAllOrdersAfter TIMEOUT=30 ReqId=5")
    assert isinstance(command, TradingCall)
    assert command.template == CancelAllOrdersAfter(token="", timeout=30, reqid=5)


def test_numbers_are_never_floats() -> None:
    command = parse(
        "addOrder pair=XBT/USD type=buy ordertype=limit price=0.1 volume=0.30000000000000004"
    )
    assert isinstance(command, TradingCall)
    assert isinstance(command.template, AddOrder)
    assert command.template.volume == "0.30000000000000004"
    assert command.template.price == "0.1"
