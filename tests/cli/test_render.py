"""Renderers: exact JSON Lines, raw frames, and the rich terminal view rendered to text."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from rich.console import Console, RenderableType

from krakenws.cli.render import (
    BookView,
    JsonLinesRenderer,
    RawRenderer,
    ScreenState,
    TerminalRenderer,
    balances_json,
    book_json,
    message_json,
    render_book,
    render_screen,
    render_tickers,
    render_trades,
    select_renderer,
)
from krakenws.errors import ChecksumMismatchError, UsageError
from krakenws.protocol.book import OrderBook, depth_from_channel_name
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import BookSnapshot, BookUpdate, ServerMessage, Ticker
from tests.conftest import SDK_BOOK10, TICKERS, server_frames
from tests.protocol.test_book import SPEC_4_3_ASKS, SPEC_4_3_BIDS

TICKER = (
    '[996,{"a":["355.24000000",27,"27.19106411"],"b":["354.32000000",6,"6.87748868"],'
    '"c":["355.23000000","1.20454360"],"v":["17858.85261084","33470.74135600"],'
    '"p":["355.33503706","349.16721624"],"t":[6481,10283],"l":["340.88000000","333.87000000"],'
    '"h":["368.00000000","368.00000000"],"o":["340.88000000","335.21000000"]},"ticker","XMR/USD"]'
)
TRADES = (
    '[993,[["354.55000000","1.25690315","1618678145.715785","b","m",""],'
    '["354.54000000","0.10000000","1618678146.000001","s","l",""]],"trade","XMR/USD"]'
)
SPREAD = (
    '[0,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],'
    '"spread","XBT/USD"]'
)
OHLC = (
    '[42,["1542057314.748456","1542057360.435743","3586.70000","3586.70000","3586.60000",'
    '"3586.60000","3586.68894","0.03373000",2],"ohlc-5","XBT/USD"]'
)
ORDER_PENDING = (
    '[[{"O7AIWV-HEBBH-COCEUU":{"avg_price":"0.00000","cost":"0.00000","descr":{"close":null,'
    '"leverage":null,"order":"buy 1.00000000 SOL/USD @ limit 25.00000","ordertype":"limit",'
    '"pair":"SOL/USD","price":"25.00000","price2":"0.00000","type":"buy"},"expiretm":null,'
    '"fee":"0.00000","limitprice":"0.00000","misc":"","oflags":"fciq",'
    '"opentm":"1700220661.985020","refid":null,"starttm":null,"status":"pending",'
    '"stopprice":"0.00000","timeinforce":"GTC","userref":0,"vol":"1.00000000",'
    '"vol_exec":"0.00000000"}}],"openOrders",{"sequence":2}]'
)
ORDER_OPEN = '[[{"O7AIWV-HEBBH-COCEUU":{"status":"open","userref":0}}],"openOrders",{"sequence":3}]'
ORDER_CANCELED = (
    '[[{"O7AIWV-HEBBH-COCEUU":{"lastupdated":"1700220675.012776","status":"canceled",'
    '"vol_exec":"0.00000000","cost":"0.00000","fee":"0.00000","avg_price":"0.00000",'
    '"userref":0,"cancel_reason":"User requested"}}],"openOrders",{"sequence":4}]'
)
OWN_TRADE = (
    '[[{"TROWH4-DD6XR-2O7DPH":{"cost":"19.67680","fee":"0.03148","margin":"0.00000",'
    '"ordertxid":"OX6J4U-3FWTH-NPST2W","ordertype":"limit","pair":"ETH/USD",'
    '"postxid":"TKH2SE-M7IF5-CFI7LT","price":"1967.68000","time":"1700220761.062896",'
    '"type":"buy","vol":"0.01000000"}}],"ownTrades",{"sequence":2}]'
)
ADD_OK = (
    '{"descr":"buy 10.00000000 USDCUSD @ limit 0.9000","event":"addOrderStatus",'
    '"status":"ok","txid":"OA7JUX-OKLO3-M6IEVL"}'
)
ADD_ERROR = (
    '{"errorMessage":"EOrder:Insufficient funds","event":"addOrderStatus","reqid":4,'
    '"status":"error"}'
)


def lines_of(*texts: str) -> list[str]:
    stream = io.StringIO()
    renderer = JsonLinesRenderer(stream)
    for text in texts:
        renderer.message(decode_server(text))
    return stream.getvalue().splitlines()


def text_of(renderable: RenderableType, width: int = 160) -> str:
    stream = io.StringIO()
    console = Console(file=stream, width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    output = stream.getvalue()
    return "\n".join(line.rstrip() for line in output.splitlines())


def ansi_of(renderable: RenderableType, width: int = 160) -> str:
    stream = io.StringIO()
    console = Console(file=stream, width=width, color_system="standard", force_terminal=True)
    console.print(renderable)
    return stream.getvalue()


def spec_book() -> OrderBook:
    book = OrderBook("XBT/USD", depth=10)
    book.apply_snapshot(SPEC_4_3_ASKS, SPEC_4_3_BIDS)
    return book


def replayed_books(name: str) -> Iterator[tuple[OrderBook, bool | None]]:
    """Every book state of a real capture, as the client would hand it over (one book object
    per pair, changed in place between yields)."""
    books: dict[str, OrderBook] = {}
    for text in server_frames(name):
        message = decode_server(text)
        if isinstance(message, BookSnapshot):
            book = books[message.pair] = OrderBook(
                message.pair, depth_from_channel_name(message.channel_name)
            )
            book.apply(message)
            yield book, None
        elif isinstance(message, BookUpdate):
            books[message.pair].apply(message)
            yield books[message.pair], True


# --- JSON Lines: exact text --------------------------------------------------------------------


def test_ticker_json() -> None:
    assert lines_of(TICKER) == [
        '{"type":"ticker","pair":"XMR/USD","ask":"355.24000000","ask_volume":"27.19106411",'
        '"bid":"354.32000000","bid_volume":"6.87748868","last":"355.23000000",'
        '"last_volume":"1.20454360","volume_today":"17858.85261084",'
        '"volume_24h":"33470.74135600","vwap_today":"355.33503706","vwap_24h":"349.16721624",'
        '"trades_today":6481,"trades_24h":10283,"low_today":"340.88000000",'
        '"low_24h":"333.87000000","high_today":"368.00000000","high_24h":"368.00000000",'
        '"open_today":"340.88000000","open_24h":"335.21000000"}'
    ]


def test_one_json_line_per_trade() -> None:
    assert lines_of(TRADES) == [
        '{"type":"trade","pair":"XMR/USD","price":"354.55000000","volume":"1.25690315",'
        '"time":"1618678145.715785","side":"buy","order_type":"market","misc":""}',
        '{"type":"trade","pair":"XMR/USD","price":"354.54000000","volume":"0.10000000",'
        '"time":"1618678146.000001","side":"sell","order_type":"limit","misc":""}',
    ]


def test_spread_and_ohlc_json() -> None:
    assert lines_of(SPREAD, OHLC) == [
        '{"type":"spread","pair":"XBT/USD","bid":"5698.40000","ask":"5700.00000",'
        '"time":"1542057299.545897","bid_volume":"1.01234567","ask_volume":"0.98765432"}',
        '{"type":"ohlc","pair":"XBT/USD","interval":5,"time":"1542057314.748456",'
        '"etime":"1542057360.435743","open":"3586.70000","high":"3586.70000",'
        '"low":"3586.60000","close":"3586.60000","vwap":"3586.68894","volume":"0.03373000",'
        '"count":2}',
    ]


def test_order_and_own_trade_json() -> None:
    lines = lines_of(ORDER_OPEN, ORDER_CANCELED, OWN_TRADE)
    assert lines == [
        '{"type":"order","txid":"O7AIWV-HEBBH-COCEUU","sequence":3,"userref":0,"status":"open"}',
        '{"type":"order","txid":"O7AIWV-HEBBH-COCEUU","sequence":4,"userref":0,'
        '"status":"canceled","lastupdated":"1700220675.012776","vol_exec":"0.00000000",'
        '"cost":"0.00000","fee":"0.00000","avg_price":"0.00000",'
        '"cancel_reason":"User requested"}',
        '{"type":"own_trade","trade_id":"TROWH4-DD6XR-2O7DPH","sequence":2,'
        '"ordertxid":"OX6J4U-3FWTH-NPST2W","pair":"ETH/USD","time":"1700220761.062896",'
        '"side":"buy","ordertype":"limit","price":"1967.68000","cost":"19.67680",'
        '"fee":"0.03148","vol":"0.01000000","postxid":"TKH2SE-M7IF5-CFI7LT",'
        '"margin":"0.00000"}',
    ]


def test_a_full_order_keeps_its_nulls_and_nested_descr() -> None:
    (line,) = lines_of(ORDER_PENDING)
    order = json.loads(line)
    assert order["refid"] is None and order["starttm"] is None
    assert order["descr"]["pair"] == "SOL/USD" and order["descr"]["leverage"] is None
    assert order["vol"] == "1.00000000"


def test_own_trade_side_does_not_clash_with_the_event_type() -> None:
    # A fill's wire "type" (buy/sell) would overwrite the event's "type": it becomes "side".
    (line,) = lines_of(OWN_TRADE)
    assert json.loads(line)["type"] == "own_trade"
    assert json.loads(line)["side"] == "buy"


def test_replies_and_statuses_json() -> None:
    assert lines_of(
        '{"connectionID":13688620010177543517,"event":"systemStatus","status":"online",'
        '"version":"1.9.1"}',
        '{"event":"pong","reqid":1693415329704}',
        '{"event":"heartbeat"}',
        '{"channelID":336,"channelName":"book-10","event":"subscriptionStatus",'
        '"pair":"XBT/USD","status":"subscribed","subscription":{"depth":10,"name":"book"}}',
        '{"errorMessage":"Subscription depth not supported","event":"subscriptionStatus",'
        '"pair":"XBT/USD","status":"error","subscription":{"depth":42,"name":"book"}}',
        ADD_OK,
        ADD_ERROR,
        '{"currentTime":"2020-12-21T09:37:09Z","event":"cancelAllOrdersAfterStatus",'
        '"reqid":1608543428050,"status":"ok","triggerTime":"2020-12-21T09:38:09Z"}',
        '{"count":2,"event":"cancelAllStatus","status":"ok"}',
        '{"errorMessage":"Malformed request","event":"error"}',
        '{"Error":"Exceeded msg rate"}',
    ) == [
        '{"type":"system_status","status":"online","version":"1.9.1",'
        '"connection_id":13688620010177543517}',
        '{"type":"pong","reqid":1693415329704}',
        '{"type":"subscription","status":"subscribed","channel":"book-10","pair":"XBT/USD"}',
        '{"type":"subscription","status":"error","pair":"XBT/USD",'
        '"error":"Subscription depth not supported"}',
        '{"type":"reply","event":"addOrderStatus","status":"ok","txid":"OA7JUX-OKLO3-M6IEVL",'
        '"descr":"buy 10.00000000 USDCUSD @ limit 0.9000"}',
        '{"type":"reply","event":"addOrderStatus","reqid":4,"status":"error",'
        '"error":"EOrder:Insufficient funds"}',
        '{"type":"reply","event":"cancelAllOrdersAfterStatus","reqid":1608543428050,'
        '"status":"ok","current_time":"2020-12-21T09:37:09Z",'
        '"trigger_time":"2020-12-21T09:38:09Z"}',
        '{"type":"reply","event":"cancelAllStatus","status":"ok","count":2}',
        '{"type":"error","error":"Malformed request"}',
        '{"type":"error","error":"Exceeded msg rate"}',
    ]


def test_book_json_exact() -> None:
    book = OrderBook("XBT/USD", depth=10)
    book.apply_snapshot(
        [["5541.30000", "2.50700000", "1534614248.123678"]],
        [["5541.20000", "1.52900000", "1534614248.765567"]],
    )
    stream = io.StringIO()
    JsonLinesRenderer(stream).book(book)
    assert stream.getvalue() == (
        '{"type":"book","pair":"XBT/USD","depth":10,"asks":[["5541.30000","2.50700000"]],'
        f'"bids":[["5541.20000","1.52900000"]],"checksum":{book.checksum()},'
        '"checksum_ok":null,"updates":0}\n'
    )


def test_book_json_levels_cap() -> None:
    as_json = book_json(spec_book(), checksum_ok=True, levels=2)
    assert as_json["asks"] == [["5711.80000", "8.13439401"], ["5712.20000", "2.00000000"]]
    assert as_json["bids"] == [["5711.70000", "0.00749800"], ["5709.20000", "3.30000000"]]
    assert as_json["checksum_ok"] is True


def test_book_json_of_a_real_capture() -> None:
    stream = io.StringIO()
    renderer = JsonLinesRenderer(stream, book_levels=3)
    for book, verdict in replayed_books(SDK_BOOK10):
        renderer.book(book, checksum_ok=verdict)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 980
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    assert first["checksum_ok"] is None and first["updates"] == 0
    assert first["asks"][0] == ["27120.00000", "4.28732553"]
    assert first["bids"][0] == ["27119.90000", "13.54067548"]
    last_checksum = next(
        message.checksum
        for message in map(decode_server, reversed(server_frames(SDK_BOOK10)))
        if isinstance(message, BookUpdate)
    )
    assert last["checksum"] == int(last_checksum or "")
    assert last["checksum_ok"] is True and last["updates"] == 979
    assert all(isinstance(level[0], str) for level in last["asks"] + last["bids"])


def test_balances_json_keeps_decimals_exact() -> None:
    assert balances_json({"XXBT": Decimal("0.00010000"), "ZUSD": "100.0000"}) == {
        "type": "balances",
        "balances": {"XXBT": "0.00010000", "ZUSD": "100.0000"},
    }
    stream = io.StringIO()
    JsonLinesRenderer(stream).balances({"XXBT": Decimal("1E-8")})
    assert stream.getvalue() == '{"type":"balances","balances":{"XXBT":"0.00000001"}}\n'


def test_book_frames_given_as_messages_are_not_json_events() -> None:
    frames = server_frames(SDK_BOOK10)
    snapshot = next(text for text in frames if '"as"' in text)
    assert message_json(decode_server(snapshot)) == []


# --- raw ---------------------------------------------------------------------------------------


def test_raw_renderer_writes_frames_as_received() -> None:
    stream = io.StringIO()
    with RawRenderer(stream) as renderer:
        renderer.message(decode_server(TICKER))  # ignored
        renderer.raw(TICKER)
        renderer.raw(b'{"event":"heartbeat"}')
    assert stream.getvalue() == TICKER + '\n{"event":"heartbeat"}\n'


def test_json_renderer_ignores_raw_frames() -> None:
    stream = io.StringIO()
    JsonLinesRenderer(stream).raw(TICKER)
    assert stream.getvalue() == ""


# --- choosing ----------------------------------------------------------------------------------


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_select_renderer() -> None:
    assert isinstance(select_renderer(stream=io.StringIO()), JsonLinesRenderer)
    assert isinstance(select_renderer(stream=FakeTty()), TerminalRenderer)
    assert isinstance(select_renderer(stream=FakeTty(), json_lines=True), JsonLinesRenderer)
    assert isinstance(select_renderer(stream=FakeTty(), raw=True), RawRenderer)
    assert isinstance(select_renderer(stream=io.StringIO(), is_terminal=True), TerminalRenderer)
    with pytest.raises(UsageError, match="--json and --raw exclude each other"):
        select_renderer(json_lines=True, raw=True)


# --- terminal: pure rendering ------------------------------------------------------------------


def test_book_ladder_asks_above_spread_above_bids() -> None:
    text = text_of(render_book(BookView(spec_book(), checksum_ok=True, verified=3), rows=3))
    lines = text.splitlines()
    assert "XBT/USD book-10" in lines[0]
    body = [line for line in lines if "│" in line]
    assert [line.split("│")[1].strip() for line in body] == [
        "5712.80000",
        "5712.20000",
        "5711.80000",
        "spread 0.10000",
        "5711.70000",
        "5709.20000",
        "5708.30000",
    ]
    assert "mid 5711.75000" in text
    # cumulative volume from the best level outwards
    assert "10.43439401" in body[0] and "8.13439401" in body[2]
    assert "4.06233707" in body[6]
    assert f"checksum ok ({spec_book().checksum()})\n3 verified" in text


def test_book_ladder_colours() -> None:
    output = ansi_of(render_book(BookView(spec_book()), rows=1))
    ask_line = next(line for line in output.splitlines() if "5711.80000" in line)
    bid_line = next(line for line in output.splitlines() if "5711.70000" in line)
    assert "\x1b[31m" in ask_line and "\x1b[32m" in bid_line


def test_book_ladder_from_a_real_capture() -> None:
    state = ScreenState()
    for book, verdict in replayed_books(SDK_BOOK10):
        state.apply_book(book, verdict)
    (view,) = state.books.values()
    assert view.verified == 979 and view.mismatches == 0 and view.checksum_ok is True
    text = text_of(render_screen(state))
    best_ask, best_bid = view.book.best_ask(), view.book.best_bid()
    assert best_ask is not None and best_bid is not None
    ask_at = text.index(f"{best_ask.price:f}")
    spread_at = text.index(f"spread {best_ask.price - best_bid.price:f}")
    bid_at = text.index(f"{best_bid.price:f}")
    assert ask_at < spread_at < bid_at
    assert f"checksum ok ({view.book.checksum()})\n979 verified" in text


def test_book_mismatch_is_shown() -> None:
    book = spec_book()
    state = ScreenState()
    state.apply_book(book, None)
    assert f"checksum {book.checksum()} (snapshot)\n0 verified" in text_of(render_screen(state))
    with pytest.raises(ChecksumMismatchError):
        book.apply_update(bids=[["5709.20000", "3.00000000", "1557070784.000000"]], checksum="1")
    state.apply_book(book, False)
    text = text_of(render_screen(state))
    assert f"checksum MISMATCH ({book.checksum()})\n0 verified, 1 mismatched" in text


def test_ticker_table_one_row_per_pair_updated_in_place() -> None:
    state = ScreenState()
    tickers = [
        message
        for message in map(decode_server, server_frames(TICKERS))
        if isinstance(message, Ticker)
    ]
    for ticker in tickers:
        state.apply(ticker)
    pairs = {ticker.pair for ticker in tickers}
    assert len(tickers) > len(pairs) > 1
    text = text_of(render_tickers(state.tickers), width=200)
    for pair in pairs:
        assert sum(line.startswith(f"│ {pair} ") for line in text.splitlines()) == 1
    last = tickers[-1]
    row = next(line for line in text.splitlines() if line.startswith(f"│ {last.pair} "))
    assert last.b[0] in row and last.a[0] in row and last.c[0] in row


def test_a_narrow_terminal_folds_numbers_but_never_cuts_them() -> None:
    """At 80 columns the ticker table is too wide: a price may wrap onto a second line, but no
    digit is replaced by an ellipsis."""
    state = ScreenState()
    state.apply(decode_server(TICKER))
    narrow = text_of(render_tickers(state.tickers), width=80)
    assert "…" not in narrow
    wide = text_of(render_tickers(state.tickers), width=250)
    assert sorted(ch for ch in narrow if ch.isdigit()) == sorted(
        ch for ch in wide if ch.isdigit()
    )  # every digit still there (a folded cell reads down its lines)


def test_ticker_change_over_24h() -> None:
    state = ScreenState()
    state.apply(decode_server(TICKER))
    text = text_of(render_tickers(state.tickers))
    # (355.23 - 335.21) / 335.21 = +5.97 %
    assert "+5.97%" in text and "10283" in text


def test_trades_tape_newest_first_and_coloured() -> None:
    state = ScreenState(trade_rows=3)
    state.apply(decode_server(TRADES))
    text = text_of(render_trades(state.trades))
    rows = [line for line in text.splitlines() if "XMR/USD" in line]
    assert "16:49:06.000" in rows[0] and "sell" in rows[0] and "limit" in rows[0]
    assert "16:49:05.715" in rows[1] and "buy" in rows[1] and "market" in rows[1]
    output = ansi_of(render_trades(state.trades))
    sell = next(line for line in output.splitlines() if "354.54000000" in line)
    buy = next(line for line in output.splitlines() if "354.55000000" in line)
    assert "\x1b[31m" in sell and "\x1b[32m" in buy
    state.apply(decode_server(TRADES))
    assert len(state.trades) == 3  # the tape keeps trade_rows


def test_orders_merge_updates_and_status_lines() -> None:
    state = ScreenState()
    for text in (ORDER_PENDING, ORDER_OPEN, ADD_OK, ADD_ERROR):
        state.apply(decode_server(text))
    output = text_of(render_screen(state))
    row = next(line for line in output.splitlines() if "O7AIWV-HEBBH-COCEUU" in line)
    assert "open" in row and "SOL/USD" in row and "buy" in row and "25.00000" in row
    assert (
        "addOrder ok txid=OA7JUX-OKLO3-M6IEVL descr=buy 10.00000000 USDCUSD @ limit 0.9000"
        in output
    )
    assert "addOrder error: EOrder:Insufficient funds" in output
    state.apply(decode_server(ORDER_CANCELED))
    output = text_of(render_screen(state))
    row = next(line for line in output.splitlines() if "O7AIWV-HEBBH-COCEUU" in line)
    assert "canceled" in row and "User requested" in row and "SOL/USD" in row


def test_other_tables_render() -> None:
    state = ScreenState()
    for text in (SPREAD, OHLC, OWN_TRADE):
        state.apply(decode_server(text))
    state.apply_balances({"XXBT": Decimal("0.50000000"), "ZUSD": "1000.0000"})
    output = text_of(render_screen(state), width=200)
    assert "Spread" in output and "1.60000" in output  # 5700.00000 - 5698.40000
    assert "OHLC" in output and "5m" in output and "3586.68894" in output
    assert "Own trades" in output and "TROWH4-DD6XR-2O7DPH" in output
    assert "Balances" in output and "0.50000000" in output and "1000.0000" in output


def test_empty_screen_and_status_log() -> None:
    state = ScreenState(log_rows=2)
    assert "waiting for data" in text_of(render_screen(state))
    for text in (
        '{"connectionID":1,"event":"systemStatus","status":"online","version":"1.9.1"}',
        '{"event":"pong","reqid":1}',
        '{"errorMessage":"Currency pair not supported XBT/FOO","event":"subscriptionStatus",'
        '"pair":"XBT/FOO","status":"error","subscription":{"name":"ticker"}}',
    ):
        state.apply(decode_server(text))
    output = text_of(render_screen(state))
    assert "system online" not in output  # only the last log_rows lines stay
    assert "pong" in output
    assert "subscription error: Currency pair not supported XBT/FOO XBT/FOO" in output


# --- terminal: the live wrapper ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_terminal_renderer_draws_live_and_throttles() -> None:
    stream = io.StringIO()
    clock = Clock()
    console = Console(file=stream, width=200, force_terminal=True, color_system=None)
    renderer = TerminalRenderer(console, min_interval=0.5, clock=clock)
    messages: list[ServerMessage] = [decode_server(TICKER), decode_server(TRADES)]
    with renderer:
        renderer.message(messages[0])
        drawn = stream.getvalue()
        assert "XMR/USD" in drawn and "354.32000000" in drawn
        renderer.message(messages[1])  # too soon: not drawn yet
        assert stream.getvalue() == drawn
        renderer.refresh()  # a periodic timer would call this
        assert "1.25690315" in stream.getvalue()
        clock.now += 1
        renderer.book(spec_book(), checksum_ok=None)
        assert "XBT/USD book-10" in stream.getvalue()
        renderer.balances({"ZUSD": "5.0000"})
        renderer.message(decode_server('{"event":"heartbeat"}'))
    assert "Balances" in stream.getvalue()  # close() draws what was pending


def test_terminal_renderer_without_events_prints_nothing() -> None:
    stream = io.StringIO()
    with TerminalRenderer(Console(file=stream, force_terminal=True)):
        pass
    assert stream.getvalue() == ""
