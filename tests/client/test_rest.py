"""RestClient against a real sandbox on loopback: every endpoint, every failure, rate limits."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from krakenws import errors
from krakenws.auth import NonceSource, clock_microseconds
from krakenws.pairs import PairRegistry
from krakenws.rest import ENDPOINTS, RestClient
from krakenws.testing import RunningSandbox, run_sandbox

T = TypeVar("T")

# One nonce source for every key of this module: strictly increasing for all of them.
NONCES = NonceSource(clock=clock_microseconds)
XBTUSD = "XBTUSD"
FAR_BID = {"type": "buy", "ordertype": "limit", "volume": "0.001", "price": "10000.0"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(seed=11, main_levels=40) as running:
        yield running


@pytest.fixture(scope="module")
def limited() -> Iterator[RunningSandbox]:
    """REST call counter on, Pro tier (20 calls, -1/s), no market simulator."""
    with run_sandbox(seed=12, simulator=False, tier="pro", rest_limits=True) as running:
        yield running


def run(factory: Callable[[], Awaitable[T]], limit: float = 60) -> T:
    async def main() -> T:
        return await asyncio.wait_for(factory(), limit)

    return asyncio.run(main())


def client_for(sb: RunningSandbox, **options: Any) -> RestClient:
    settings: dict[str, Any] = {
        "url": sb.rest_url,
        "api_key": sb.api_key,
        "api_secret": sb.api_secret,
        "nonce": NONCES,
    }
    settings.update(options)
    return RestClient(**settings)


def new_key(
    sb: RunningSandbox, permissions: list[str] | None = None, **funds: str
) -> dict[str, Any]:
    """A key on a new account (own rate counters), funded with ``funds``."""
    account = sb.admin("accounts", {"name": f"acct-{time.monotonic_ns()}"})["account"]
    body: dict[str, object] = {"account": account}
    if permissions is not None:
        body["permissions"] = permissions
    key = sb.admin("keys", body)
    for asset, amount in funds.items():
        sb.admin("fund", {"account": account, "asset": asset, "amount": amount})
    return key


def raw_public(sb: RunningSandbox, path: str) -> Any:
    with urllib.request.urlopen(f"{sb.rest_url}/0/public/{path}", timeout=10) as response:
        return json.loads(response.read())["result"]


def assert_no_float(value: Any) -> None:
    assert not isinstance(value, float), value
    if isinstance(value, dict):
        for item in value.values():
            assert_no_float(item)
    elif isinstance(value, list | tuple):
        for item in value:
            assert_no_float(item)


# --- the endpoint table --------------------------------------------------------------------------


def _sandbox_endpoints() -> list[str]:
    from krakenws.sandbox.exchange import Exchange
    from krakenws.sandbox.marketdata import MarketData
    from krakenws.sandbox.rest_api import RestApi

    exchange = Exchange.open(":memory:")
    try:
        api = RestApi(exchange, MarketData())
        return sorted([*api._public, *api._private])
    finally:
        exchange.close()


@pytest.mark.parametrize("endpoint", _sandbox_endpoints())
def test_every_sandbox_endpoint_has_a_method(endpoint: str) -> None:
    assert endpoint in ENDPOINTS, f"RestClient has no method for {endpoint}"
    assert callable(getattr(RestClient, ENDPOINTS[endpoint]))


def test_no_method_for_an_endpoint_the_sandbox_lacks() -> None:
    assert sorted(ENDPOINTS) == _sandbox_endpoints()


# --- public endpoints ----------------------------------------------------------------------------


def test_public_endpoints(sandbox: RunningSandbox) -> None:
    async def main() -> None:
        async with client_for(sandbox) as rest:
            # a trade of our own, so that Trades and OHLC have rows
            await rest.add_order(pair=XBTUSD, type="buy", ordertype="market", volume="0.001")
            now = await rest.time()
            assert now.unixtime > 1_600_000_000
            assert now.rfc1123.endswith("+0000")
            assert (await rest.system_status()).status == "online"

            assets = await rest.assets()
            assert assets["XXBT"].altname == "XBT"
            assert assets["XXBT"].decimals == 10
            assert list(await rest.assets("XBT")) == ["XXBT"]

            pairs = await rest.asset_pairs()
            assert pairs["XXBTZUSD"]["altname"] == "XBTUSD"
            assert_no_float(pairs)
            registry = await rest.pair_registry()
            assert isinstance(registry, PairRegistry)
            assert registry.resolve("BTC/USD").key == "XXBTZUSD"
            assert registry.resolve("BTC/USD").tick_size == Decimal("0.1")
            assert list(await rest.asset_pairs("XBT/USD", info="leverage")) == ["XXBTZUSD"]

            tickers = await rest.ticker("XBT/USD")
            ticker = tickers["XXBTZUSD"]
            assert ticker.ask.price > ticker.bid.price > 0
            assert isinstance(ticker.open, Decimal)
            assert ticker.trades.today >= 1
            assert len(await rest.ticker()) == len(pairs)

            book = await rest.depth("xbt/usd", count=5)
            assert book.pair == "XXBTZUSD"
            assert 0 < len(book.asks) <= 5 and 0 < len(book.bids) <= 5
            assert [a.price for a in book.asks] == sorted(a.price for a in book.asks)
            assert book.bids[0].price < book.asks[0].price

            ohlc = await rest.ohlc(XBTUSD, interval=1)
            assert ohlc.pair == "XXBTZUSD" and ohlc.candles
            candle = ohlc.candles[-1]
            assert candle.low <= candle.close <= candle.high and candle.count >= 1

            trades = await rest.trades(XBTUSD)
            assert trades.trades and trades.last.isdigit()
            trade = trades.trades[-1]
            assert trade.side in ("b", "s") and isinstance(trade.time, Decimal)
            assert isinstance(trade.trade_id, int)
            assert (await rest.trades(XBTUSD, since=trades.last)).trades == []

            spread = await rest.spread(XBTUSD)
            assert spread.spreads and all(s.bid < s.ask for s in spread.spreads)

            raw = await rest.public("Ticker", pair="XBTUSD")
            assert_no_float(raw)

    run(main)


def test_decimals_are_exact_wire_text(sandbox: RunningSandbox) -> None:
    sandbox.admin("simulator", {"paused": True})
    try:

        async def main() -> Any:
            async with client_for(sandbox) as rest:
                return await rest.depth(XBTUSD, count=10), await rest.ticker(XBTUSD)

        book, tickers = run(main)
        raw_book = raw_public(sandbox, "Depth?pair=XBTUSD&count=10")["XXBTZUSD"]
        raw_ticker = raw_public(sandbox, "Ticker?pair=XBTUSD")["XXBTZUSD"]
    finally:
        sandbox.admin("simulator", {"paused": False})
    # str() of each Decimal is the wire text, trailing zeros included
    assert [[str(level.price), str(level.volume), level.timestamp] for level in book.asks] == (
        raw_book["asks"]
    )
    assert [[str(level.price), str(level.volume), level.timestamp] for level in book.bids] == (
        raw_book["bids"]
    )
    ticker = tickers["XXBTZUSD"]
    assert [
        str(ticker.ask.price),
        str(ticker.ask.whole_lot_volume),
        str(ticker.ask.lot_volume),
    ] == (raw_ticker["a"])
    assert str(ticker.open) == raw_ticker["o"]


# --- private endpoints ---------------------------------------------------------------------------


def test_private_endpoints(sandbox: RunningSandbox) -> None:
    key = new_key(sandbox, ZUSD="100000", XXBT="2")

    async def main() -> None:
        async with client_for(sandbox, api_key=key["key"], api_secret=key["secret"]) as rest:
            balance = await rest.balance()
            assert balance == {"XXBT": Decimal(2), "ZUSD": Decimal(100000)}
            assert str(balance["ZUSD"]) == "100000.0000"  # exact text, 4 decimals
            extended = await rest.balance_ex()
            assert extended["ZUSD"].balance == Decimal(100000)
            assert extended["ZUSD"].hold_trade == 0
            assert (await rest.trade_balance()).equivalent_balance > 100000

            checked = await rest.add_order(pair=XBTUSD, **FAR_BID, validate=True)
            assert checked.txid == [] and "10000.0" in checked.descr.order

            placed = await rest.add_order(pair="XBT/USD", **FAR_BID, userref=7)
            (txid,) = placed.txid
            assert placed.descr.order == "buy 0.00100000 XBTUSD @ limit 10000.0"
            assert (await rest.balance_ex())["ZUSD"].hold_trade > 0
            open_orders = await rest.open_orders()
            assert list(open_orders) == [txid]
            order = open_orders[txid]
            assert order.status == "open" and order.userref == 7
            assert order.vol == Decimal("0.001") and str(order.vol) == "0.00100000"
            assert order.descr.price == "10000.0"
            assert order.descr.price_value == Decimal("10000.0")
            assert isinstance(order.opentm, Decimal)

            edited = await rest.edit_order(txid=txid, pair=XBTUSD, price="10001.0")
            assert edited.originaltxid == txid and edited.txid
            assert edited.price == Decimal("10001.0")
            queried = await rest.query_orders([edited.txid])
            assert queried[edited.txid].descr.price_value == Decimal("10001.0")
            assert (await rest.cancel_order(edited.txid)).count == 1

            batch = await rest.add_order_batch(
                [FAR_BID, {**FAR_BID, "price": "10000.1"}], pair="XBT/USD"
            )
            assert [bool(o.txid) for o in batch.orders] == [True, True]
            assert (await rest.cancel_all()).count == 2

            market = await rest.add_order(
                pair=XBTUSD, type="buy", ordertype="market", volume="0.01"
            )
            closed = await rest.closed_orders()
            assert market.txid[0] in closed.closed and closed.count is not None
            assert closed.closed[market.txid[0]].vol_exec == Decimal("0.01")
            assert closed.closed[txid].reason == "Order replaced"
            assert closed.closed[edited.txid].reason == "User requested"

            history = await rest.trades_history()
            fills = list(history.trades.values())
            assert history.count == len(fills) >= 1  # the market order may walk the book
            assert {fill.ordertxid for fill in fills} == {market.txid[0]}
            assert {fill.pair for fill in fills} == {"XXBTZUSD"}
            assert sum(fill.vol for fill in fills) == Decimal("0.01")
            trade_id = next(iter(history.trades))
            assert (await rest.query_trades(trade_id))[trade_id] == history.trades[trade_id]

            ledger = await rest.ledgers()
            assert ledger.count >= 4  # two deposits, two legs of the trade
            entry_id = next(i for i, e in ledger.ledger.items() if e.type == "trade")
            assert (await rest.query_ledgers(entry_id))[entry_id] == ledger.ledger[entry_id]
            assert (await rest.ledgers(asset="XBT", type="deposit")).count == 1

            armed = await rest.cancel_all_orders_after(60)
            assert armed.trigger_time > armed.current_time
            assert (await rest.cancel_all_orders_after(0)).trigger_time == "0"

            token = await rest.get_websockets_token()
            assert token.expires == 900 and len(token.token) > 20

            raw = await rest.private("Balance")
            assert raw["ZUSD"] == str((await rest.balance())["ZUSD"])
            assert Decimal(raw["XXBT"]) == 2 + Decimal("0.01")

    run(main)


def test_tls_with_the_sandbox_ca() -> None:
    import ssl

    with run_sandbox(simulator=False, tls=True) as sb:
        assert sb.rest_url_tls is not None and sb.ca_pem is not None
        context = ssl.create_default_context(cafile=sb.ca_pem)

        async def main() -> Any:
            async with client_for(sb, url=sb.rest_url_tls, ssl=context) as rest:
                return await rest.system_status(), await rest.balance()

        status, balance = run(main)
    assert status.status == "online" and balance["XXBT"] == 100


# --- failures from the exchange ------------------------------------------------------------------


def _raises(
    expected: type[errors.ExchangeError], text: str, call: Callable[[RestClient], Awaitable[Any]]
) -> Callable[[RestClient], Awaitable[None]]:
    async def check(rest: RestClient) -> None:
        with pytest.raises(expected) as caught:
            await call(rest)
        assert caught.value.kraken_error == text

    return check


EXCHANGE_FAILURES = {
    "ticker-bad-pair": _raises(
        errors.UnknownAssetPairError,
        "EQuery:Unknown asset pair",
        lambda rest: rest.ticker("FOOBAR"),
    ),
    "depth-bad-pair": _raises(
        errors.UnknownAssetPairError,
        "EQuery:Unknown asset pair",
        lambda rest: rest.depth("XBT/FOO"),
    ),
    "add-order-bad-pair": _raises(
        errors.UnknownAssetPairError,
        "EQuery:Unknown asset pair",
        lambda rest: rest.add_order(pair="FOOBAR", **FAR_BID),
    ),
    "insufficient-funds": _raises(
        errors.InsufficientFundsError,
        "EOrder:Insufficient funds",
        lambda rest: rest.add_order(
            pair=XBTUSD, type="buy", ordertype="limit", volume="1000", price="50000.0"
        ),
    ),
    "order-minimum": _raises(
        errors.OrderMinimumNotMetError,
        "EOrder:Order minimum not met",
        lambda rest: rest.add_order(pair=XBTUSD, **{**FAR_BID, "volume": "0.00000001"}),
    ),
    "cancel-unknown-order": _raises(
        errors.UnknownOrderError,
        "EOrder:Unknown order",
        lambda rest: rest.cancel_order("OAAAAA-AAAAA-AAAAAA"),
    ),
    "edit-unknown-order": _raises(
        errors.UnknownOrderError,
        "EOrder:Unknown order",
        lambda rest: rest.edit_order(txid="OAAAAA-AAAAA-AAAAAA", pair=XBTUSD, price="10.0"),
    ),
    "query-unknown-order": _raises(
        errors.OrderError, "EOrder:Invalid order", lambda rest: rest.query_orders("OAAAAA")
    ),
    "bad-interval": _raises(
        errors.InvalidArgumentsError,
        "EGeneral:Invalid arguments:interval",
        lambda rest: rest.ohlc(XBTUSD, interval=7),
    ),
    "bad-dead-man-timeout": _raises(
        errors.InvalidArgumentsError,
        "EGeneral:Invalid arguments:timeout",
        lambda rest: rest.cancel_all_orders_after(86400),
    ),
    "unknown-method": _raises(
        errors.UnknownMethodError, "EGeneral:Unknown method", lambda rest: rest.public("Nope")
    ),
}


@pytest.mark.parametrize("case", sorted(EXCHANGE_FAILURES))
def test_exchange_failures(sandbox: RunningSandbox, case: str) -> None:
    async def main() -> None:
        async with client_for(sandbox) as rest:
            await EXCHANGE_FAILURES[case](rest)

    run(main)


def test_invalid_key_signature_and_nonce(sandbox: RunningSandbox) -> None:
    wrong_secret = base64.b64encode(b"\x00" * 64).decode()

    async def main() -> None:
        async with client_for(sandbox, api_key="not-a-key") as rest:
            with pytest.raises(errors.InvalidKeyError, match=r"^EAPI:Invalid key$"):
                await rest.balance()
        async with client_for(sandbox, api_secret=wrong_secret) as rest:
            with pytest.raises(errors.InvalidSignatureError, match=r"^EAPI:Invalid signature$"):
                await rest.balance()
        async with client_for(sandbox, nonce=lambda: 1) as rest:
            with pytest.raises(errors.InvalidNonceError, match=r"^EAPI:Invalid nonce$"):
                await rest.balance()
            with pytest.raises(errors.InvalidNonceError):
                await rest.add_order(pair=XBTUSD, **FAR_BID)

    run(main)


def test_clients_sharing_a_key_send_their_nonces_in_order(sandbox: RunningSandbox) -> None:
    """Several RestClients on one key (a Client's ``rest`` beside the user's own) draw from one
    nonce counter; their private calls reach Kraken in nonce order, so none is refused."""

    async def main() -> None:
        clients = [client_for(sandbox, rate_limit=False) for _ in range(8)]

        async def calls(rest: RestClient) -> None:
            for _ in range(60):
                await rest.balance()

        try:
            await asyncio.gather(*(calls(rest) for rest in clients))
        finally:
            for rest in clients:
                await rest.close()

    run(main)


def test_permission_denied(sandbox: RunningSandbox) -> None:
    key = new_key(sandbox, ["query_funds"])

    async def main() -> None:
        async with client_for(sandbox, api_key=key["key"], api_secret=key["secret"]) as rest:
            assert await rest.balance() == {}
            for call in (
                rest.open_orders(),
                rest.ledgers(),
                rest.get_websockets_token(),
                rest.add_order(pair=XBTUSD, **FAR_BID),
                rest.cancel_all(),
            ):
                with pytest.raises(errors.PermissionDeniedError) as caught:
                    await call
                assert caught.value.kraken_error == "EGeneral:Permission denied"

    run(main)


def test_usage_errors_need_no_network() -> None:
    async def main() -> None:
        async with RestClient(url="http://127.0.0.1:9") as rest:
            with pytest.raises(errors.UsageError, match="api_key and api_secret"):
                await rest.balance()
        async with RestClient(
            url="http://127.0.0.1:9", api_key="k", api_secret="c2VjcmV0", nonce=NONCES
        ) as rest:
            with pytest.raises(errors.UsageError, match="float"):
                await rest.private("Balance", asset=1.5)
            with pytest.raises(errors.UsageError, match="float"):
                await rest.ticker(1.5)  # type: ignore[arg-type]
            with pytest.raises(errors.UsageError):
                await rest.cancel_order()
        with pytest.raises(errors.UsageError, match="closed"):
            await rest.time()
        with pytest.raises(errors.UsageError):
            RestClient(timeout=0)

    run(main)


# --- failures of the transport ------------------------------------------------------------------

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def fake_server(behaviour: Behaviour) -> AsyncIterator[str]:
    """An HTTP-ish server on 127.0.0.1 that answers with ``behaviour``."""
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            await behaviour(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def answer(status: str, body: bytes, content_type: str = "application/json") -> Behaviour:
    async def behaviour(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    return behaviour


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


@pytest.mark.parametrize(
    ("behaviour", "expected", "text"),
    [
        (silent, errors.KrakenTimeoutError, "no answer within 0.3 s"),
        (hang_up, errors.ConnectionClosedError, "SystemStatus: connection lost"),
        (answer("200 OK", b"<html>hello</html>", "text/html"), errors.ProtocolError, "not JSON"),
        (answer("502 Bad Gateway", b"<html>bad</html>", "text/html"), errors.TransportError, "502"),
        (answer("200 OK", b'{"result": {}}'), errors.ProtocolError, "no 'error' list"),
        (answer("200 OK", b'{"error": []}'), errors.ProtocolError, "neither"),
        (answer("200 OK", b'{"error": [], "result": {"status": 1}}'), errors.ProtocolError, "$"),
        (
            answer("200 OK", b'{"error": ["EService:Unavailable"]}'),
            errors.ServiceUnavailableError,
            "EService:Unavailable",
        ),
    ],
    ids=["timeout", "hang-up", "html", "http-502", "no-error-list", "no-result", "shape", "busy"],
)
def test_transport_and_protocol_failures(behaviour: Behaviour, expected: type, text: str) -> None:
    async def main() -> BaseException:
        async with fake_server(behaviour) as url, RestClient(url=url, timeout=0.3) as rest:
            with pytest.raises(expected, match=text) as caught:
                await rest.system_status()
            return caught.value

    error = run(main, limit=10)
    if expected is errors.KrakenTimeoutError:
        assert isinstance(error, TimeoutError) and isinstance(error, errors.TransportError)


def test_warnings_alone_are_not_errors() -> None:
    body = b'{"error": ["WGeneral:Something"], "result": {"status": "online", "timestamp": "t"}}'

    async def main() -> str:
        async with fake_server(answer("200 OK", body)) as url, RestClient(url=url) as rest:
            return (await rest.system_status()).status

    assert run(main, limit=10) == "online"


def test_a_trailing_stop_in_open_orders_keeps_its_relative_prices() -> None:
    """Kraken writes a trailing stop's descr prices relative to the market (``+50.0000%``):
    the whole OpenOrders answer still decodes, with the text kept and no absolute value."""
    order = {
        "refid": None, "userref": 0, "status": "open", "opentm": 1700000000.1234,
        "starttm": 0, "expiretm": 0, "vol": "0.50000000", "vol_exec": "0.00000000",
        "cost": "0.00000", "fee": "0.00000", "price": "0.00000", "stopprice": "0.00000",
        "limitprice": "0.00000", "misc": "", "oflags": "fciq",
        "descr": {
            "pair": "XBTUSD", "type": "sell", "ordertype": "trailing-stop-limit",
            "price": "+50.0000%", "price2": "-4.0000%", "leverage": "none",
            "order": "sell 0.50000000 XBTUSD @ trailing stop +50.0000% -> limit -4.0000%",
            "close": "",
        },
    }  # fmt: skip
    body = json.dumps({"error": [], "result": {"open": {"OTRAIL-AAAAA-BBBBBB": order}}})
    secret = base64.b64encode(b"s" * 64).decode()

    async def main() -> Any:
        async with (
            fake_server(answer("200 OK", body.encode())) as url,
            RestClient(url=url, api_key="k", api_secret=secret) as rest,
        ):
            return await rest.open_orders()

    [(txid, found)] = run(main, limit=10).items()
    assert txid == "OTRAIL-AAAAA-BBBBBB"
    assert (found.descr.price, found.descr.price2) == ("+50.0000%", "-4.0000%")
    assert found.descr.price_value is None and found.descr.price2_value is None
    assert found.vol == Decimal("0.5")


def test_a_trades_answer_without_its_cursor_is_refused() -> None:
    """``last`` is what the next page starts from: an answer without it is malformed, not a
    cursor spelled "None"."""
    row = ["30000.0", "0.1", 1700000000.5, "b", "l", "", 1]
    body = json.dumps({"error": [], "result": {"XXBTZUSD": [row]}}).encode()

    async def main() -> None:
        async with fake_server(answer("200 OK", body)) as url, RestClient(url=url) as rest:
            with pytest.raises(errors.ProtocolError, match="last"):
                await rest.trades("XBTUSD")

    run(main, limit=10)


def test_unreachable_server_is_a_transport_error() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    async def main() -> None:
        async with RestClient(url=url, timeout=5) as rest:
            with pytest.raises(errors.TransportError, match="Time") as caught:
                await rest.time()
            assert not isinstance(caught.value, errors.KrakenTimeoutError)
        async with RestClient(url=url, api_key="k", api_secret="c2VjcmV0", nonce=NONCES) as rest:
            with pytest.raises(errors.TransportError, match="Balance"):
                await rest.balance()

    run(main, limit=15)


def test_a_lent_session_stays_open(sandbox: RunningSandbox) -> None:
    import aiohttp

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            async with client_for(sandbox, session=session) as rest:
                assert (await rest.system_status()).status == "online"
            assert not session.closed
            async with client_for(sandbox, session=session) as rest:
                assert (await rest.time()).unixtime > 0

    run(main)


# --- rate limits ---------------------------------------------------------------------------------


def test_rest_counter_refuses_without_the_mirror(limited: RunningSandbox) -> None:
    key = new_key(limited)

    async def main() -> int:
        async with client_for(
            limited, api_key=key["key"], api_secret=key["secret"], rate_limit=False, read_retries=0
        ) as rest:
            for call in range(30):
                try:
                    await rest.balance()
                except errors.RestRateLimitError as error:
                    assert error.kraken_error == "EAPI:Rate limit exceeded"
                    return call
        raise AssertionError("the sandbox never refused")

    refused_at = run(main)
    assert 20 <= refused_at < 30  # Pro: 20 calls, decaying 1/s


def test_rest_mirror_waits_instead(limited: RunningSandbox) -> None:
    key = new_key(limited)

    async def main() -> float:
        async with client_for(
            limited, api_key=key["key"], api_secret=key["secret"], tier="pro", read_retries=0
        ) as rest:
            start = time.monotonic()
            for _ in range(20):
                await rest.balance()
            await rest.ledgers()  # +2: waits for the counter to make room
            await rest.balance()
            assert rest.rest_mirror.value(rest._clock()) > 19
            return time.monotonic() - start

    elapsed = run(main)
    assert 1.5 < elapsed < 10


def test_read_only_calls_retry_with_backoff(limited: RunningSandbox) -> None:
    key = new_key(limited)

    async def main() -> float:
        async with client_for(
            limited,
            api_key=key["key"],
            api_secret=key["secret"],
            rate_limit=False,
            read_retries=2,
            backoff=lambda: iter([1.1, 1.1]),
        ) as rest:
            start = time.monotonic()
            for _ in range(22):
                await rest.balance()  # the 21st and 22nd are refused once, then retried
            return time.monotonic() - start

    assert 1 < run(main) < 10


def test_trading_counter_refuses_without_the_mirror(sandbox: RunningSandbox) -> None:
    key = new_key(sandbox, ZUSD="100000")
    ioc = {**FAR_BID, "timeinforce": "IOC"}  # expires at once: no open-order cap

    async def main() -> int:
        async with client_for(
            sandbox, api_key=key["key"], api_secret=key["secret"], rate_limit=False
        ) as rest:
            for call in range(80):
                try:
                    await rest.add_order(pair=XBTUSD, **ioc)
                except errors.OrderRateLimitError as error:
                    assert error.kraken_error == "EOrder:Rate limit exceeded"
                    return call
        raise AssertionError("the sandbox never refused")

    refused_at = run(main)
    assert 60 <= refused_at < 80  # Starter: 60, decaying 1/s


def test_trading_mirror_waits_instead(sandbox: RunningSandbox) -> None:
    key = new_key(sandbox, ZUSD="100000")
    ioc = {**FAR_BID, "timeinforce": "IOC"}

    async def main() -> float:
        async with client_for(sandbox, api_key=key["key"], api_secret=key["secret"]) as rest:
            start = time.monotonic()
            for _ in range(63):
                await rest.add_order(pair="XBT/USD", **ioc)  # all counted on XXBTZUSD
            placed = await rest.add_order(pair=XBTUSD, **FAR_BID)
            # a cancel of a fresh order costs 8 and may cross the threshold
            await rest.cancel_order(placed.txid[0])
            assert rest.trading_mirror.value("XXBTZUSD", rest._clock()) > 60
            return time.monotonic() - start

    elapsed = run(main)
    assert 2 < elapsed < 15
