"""The reference script's usage lines, run through ``krakenws.cli.main`` against an embedded
sandbox (``--sandbox``) and a running one (``--sandbox-url``): JSON Lines and exit codes; the
errors (bad arguments, unknown pair, missing credentials, unreachable server); Ctrl-C; the
terminal view under a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from krakenws.auth import nonce_source, sign_request
from krakenws.cli import main
from krakenws.testing import RunningSandbox, run_sandbox

CANCEL_TXIDS = "txid=OADMSD-7AGC3-IMB46A,OD6VRE-HCSPM-CKORER"


@pytest.fixture(scope="module")
def running() -> Iterator[RunningSandbox]:
    with run_sandbox(main_levels=100) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or sandbox URL from the machine running the tests; no ./WS_Token."""
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "KRAKENWS_SANDBOX_URL", "KRAKENWS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)


class Run:
    """What one ``krakenws`` invocation printed and returned."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status = status
        self.out = out
        self.err = err
        self.lines: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["type"] == kind]


def krakenws(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return Run(status, out, err)


def where(mode: str, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The endpoint flags of ``mode``; for a running sandbox, its key in the environment."""
    if mode == "embedded":
        return ["--sandbox"]
    monkeypatch.setenv("KRAKEN_API_KEY", sandbox.api_key)
    monkeypatch.setenv("KRAKEN_API_SECRET", sandbox.api_secret)
    return ["--sandbox-url", sandbox.rest_url]


def rest_private(sandbox: RunningSandbox, name: str, params: dict[str, object]) -> Any:
    path = f"/0/private/{name}"
    nonce = nonce_source(sandbox.api_key)  # the counter the command's client draws from too
    headers, body = sign_request(path, params, sandbox.api_key, sandbox.api_secret, nonce())
    request = urllib.request.Request(sandbox.rest_url + path, data=body.encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        payload = json.loads(response.read())
    assert not payload["error"], payload
    return payload["result"]


MODES = ["embedded", "running"]


# --- the usage lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_public_usage_lines(
    mode: str,
    running: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = where(mode, running, monkeypatch)

    run = krakenws(capsys, "ping", *flags)
    assert (run.status, run.lines) == (0, [{"type": "pong"}])

    run = krakenws(capsys, "ticker", "XBT/USD", "ETH/EUR", "XDG/XBT", "--count", "3", *flags)
    assert run.status == 0
    tickers = run.of("ticker")
    assert len(tickers) == 3
    assert {t["pair"] for t in tickers} <= {"XBT/USD", "ETH/EUR", "XDG/XBT"}
    assert all(isinstance(t["bid"], str) and "." in t["bid"] for t in tickers)
    assert [s["channel"] for s in run.of("subscription")] == ["ticker"] * 3

    run = krakenws(capsys, "spread", "XBT/USD", "XBT/EUR", "--count", "2", *flags)
    assert run.status == 0 and len(run.of("spread")) == 2
    assert {s["pair"] for s in run.of("spread")} <= {"XBT/USD", "XBT/EUR"}

    run = krakenws(capsys, "trade", "XBT/USD", "--count", "1", *flags)
    assert run.status == 0 and run.of("trade")
    assert {t["pair"] for t in run.of("trade")} == {"XBT/USD"}
    assert {t["side"] for t in run.of("trade")} <= {"buy", "sell"}

    run = krakenws(capsys, "book", "ETH/USD", "10", "--count", "3", *flags)
    assert run.status == 0
    books = run.of("book")
    assert len(books) == 3
    assert all(b["pair"] == "ETH/USD" and b["depth"] == 10 for b in books)
    assert books[0]["checksum_ok"] is None  # the snapshot
    assert [b["checksum_ok"] for b in books[1:]] == [True, True]
    assert len(books[0]["asks"]) == 10 and len(books[0]["bids"]) == 10

    run = krakenws(capsys, "ohlc", "LTC/EUR", "XBT/USD", "60", "--count", "2", *flags)
    assert run.status == 0 and len(run.of("ohlc")) == 2
    assert {c["interval"] for c in run.of("ohlc")} == {60}


@pytest.mark.parametrize("mode", MODES)
def test_private_usage_lines(
    mode: str,
    running: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = where(mode, running, monkeypatch)
    for argv in (["openOrders"], ["openOrders", "ratecounter=true"]):
        run = krakenws(capsys, *argv, "--duration", "0.5", *flags)
        assert run.status == 0
        assert run.of("subscription") == [
            {"type": "subscription", "status": "subscribed", "channel": "openOrders", "reqid": 1}
        ]
    for argv in (["ownTrades"], ["ownTrades", "snapshot=false"]):
        run = krakenws(capsys, *argv, "--duration", "0.5", *flags)
        assert run.status == 0
        assert [s["channel"] for s in run.of("subscription")] == ["ownTrades"]

    run = krakenws(capsys, "balances", "--count", "1", *flags)
    assert run.status == 0
    [balances] = run.of("balances")
    assert set(balances["balances"]) >= {"ZUSD", "XXBT"}

    # The reference script's own example: the sandbox, like Kraken, refuses leverage here.
    run = krakenws(
        capsys,
        "addOrder",
        "pair=XBT/USD",
        "type=buy",
        "ordertype=market",
        "volume=0.002",
        "leverage=5",
        *flags,
    )
    assert (run.status, run.out) == (1, "")
    assert run.err == "krakenws: error: EOrder:Cannot open position\n"

    run = krakenws(capsys, "cancelOrder", CANCEL_TXIDS, *flags)
    assert (run.status, run.err) == (1, "krakenws: error: EOrder:Unknown order\n")

    run = krakenws(capsys, "editOrder", "orderid=OADMSD-7AGC3-IMB46A", "pair=XBT/USD",
                   "price=9000", *flags)  # fmt: skip
    assert run.status == 1 and run.err.startswith("krakenws: error: EOrder:")

    run = krakenws(capsys, "cancelAll", *flags)
    assert run.status == 0
    [reply] = run.of("reply")
    assert reply["event"] == "cancelAllStatus" and reply["status"] == "ok"

    run = krakenws(capsys, "cancelAllOrdersAfter", "timeout=60", *flags)
    assert run.status == 0
    [reply] = run.of("reply")
    assert reply["event"] == "cancelAllOrdersAfterStatus" and reply["trigger_time"]
    assert krakenws(capsys, "cancelAllOrdersAfter", "timeout=0", *flags).status == 0


def test_order_lifecycle_on_a_running_sandbox(
    running: RunningSandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """addOrder, openOrders showing it, editOrder, cancelOrder: the happy paths."""
    flags = where("running", running, monkeypatch)
    order = ["pair=XBT/USD", "type=buy", "ordertype=limit", "volume=0.01", "price=30000"]
    run = krakenws(capsys, "addOrder", *order, *flags)
    assert run.status == 0, run.err
    [placed] = run.of("reply")
    assert placed["event"] == "addOrderStatus" and placed["status"] == "ok"
    txid = placed["txid"]

    run = krakenws(capsys, "openOrders", "--count", "1", *flags)
    assert run.status == 0
    assert txid in {o["txid"] for o in run.of("order")}

    run = krakenws(capsys, "editOrder", f"orderid={txid}", "pair=XBT/USD", "price=31000", *flags)
    assert run.status == 0, run.err
    [edited] = run.of("reply")
    assert edited["event"] == "editOrderStatus" and edited["originaltxid"] == txid

    run = krakenws(capsys, "cancelOrder", f"txid={edited['txid']}", *flags)
    assert run.status == 0, run.err
    assert [r["event"] for r in run.of("reply")] == ["cancelOrderStatus"]


def test_balances_follow_the_accounts_fills(
    running: RunningSandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = where("running", running, monkeypatch)
    statuses: list[int] = []
    argv = ["balances", "--count", "2", "--duration", "20", *flags]
    watcher = threading.Thread(target=lambda: statuses.append(main(argv)))
    capsys.readouterr()
    watcher.start()
    time.sleep(1.5)
    rest_private(
        running,
        "AddOrder",
        {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.001"},
    )
    watcher.join(30)
    out, err = capsys.readouterr()
    assert statuses == [0], err
    tables = [json.loads(line) for line in out.splitlines()]
    before, after = (t["balances"] for t in tables if t["type"] == "balances")
    assert before["XXBT"] != after["XXBT"]  # bought: more XBT, less USD
    assert after == rest_private(running, "Balance", {})


def test_token_from_a_ws_token_file(
    running: RunningSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = rest_private(running, "GetWebSocketsToken", {})["token"]
    (tmp_path / "WS_Token").write_text(token + "\n")
    run = krakenws(capsys, "openOrders", "--sandbox-url", running.rest_url, "--duration", "0.5")
    assert run.status == 0
    assert [s["status"] for s in run.of("subscription")] == ["subscribed"]


def test_sandbox_url_from_the_environment_and_raw_frames(
    running: RunningSandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KRAKENWS_SANDBOX_URL", running.rest_url)
    run = krakenws(capsys, "book", "XBT/USD", "10", "--raw", "--count", "4")
    assert run.status == 0
    frames = run.lines
    assert len(frames) == 4
    assert frames[0]["event"] == "systemStatus"
    assert frames[1]["event"] == "subscriptionStatus" and frames[1]["channelName"] == "book-10"
    assert frames[2][1].keys() == {"as", "bs"}  # the snapshot, as Kraken sent it


def test_ping_sends_the_reqid_it_was_given(running: RunningSandbox, capsys: Any) -> None:
    run = krakenws(capsys, "ping", "reqid=5", "--sandbox-url", running.rest_url, "--raw")
    assert run.status == 0
    assert {"event": "pong", "reqid": 5} in run.lines  # the server's answer, not ours


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["book", "XBT/USD", "11"], "book depth 11 is not supported"),
        (["ticker"], "ticker needs at least one pair"),
        (["openOrder"], "did you mean 'openOrders'?"),
        (["addOrder", "pair=XBT/USD", "type=buy"], "missing parameters ordertype, volume"),
        (["book", "XBT/USD", "--count", "0"], "--count: '0'"),
        (["trade", "XBT/USD", "--json", "--raw"], "--json and --raw exclude each other"),
        (["ping", "--sandbox-url", "127.0.0.1:8080"], "must start with http://"),
    ],
)
def test_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_status = main(argv)
    _, err = capsys.readouterr()
    assert run_status == 2
    assert err.startswith("krakenws: error: ") and message in err
    assert err.count("\n") == 1


def test_unknown_pair(running: RunningSandbox, capsys: pytest.CaptureFixture[str]) -> None:
    run = krakenws(capsys, "book", "FOO/BAR", "--sandbox-url", running.rest_url)
    assert run.status == 2 and run.out == ""
    assert run.err.startswith("krakenws: error: unknown pair 'FOO/BAR'")
    assert run.err.count("\n") == 1


@pytest.mark.parametrize("endpoint", ["openOrders", "balances", "cancelAll"])
def test_missing_credentials(
    endpoint: str, running: RunningSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    run = krakenws(capsys, endpoint, "--sandbox-url", running.rest_url)
    assert run.status == 2
    assert run.err.startswith(f"krakenws: error: {endpoint} needs an API key and secret")
    assert run.err.count("\n") == 1


@pytest.mark.parametrize("argv", [["ping"], ["book", "XBT/USD"], ["ticker", "XBT/USD"]])
def test_unreachable_server(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    run = krakenws(capsys, *argv, "--sandbox-url", "http://127.0.0.1:9", "--timeout", "1")
    assert run.status == 1 and run.out == ""
    assert run.err.startswith("krakenws: error: cannot reach http://127.0.0.1:9")
    assert run.err.count("\n") == 1


def cli_process(*argv: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "krakenws.cli", *argv], **kwargs)


def test_ctrl_c_exits_130(running: RunningSandbox) -> None:
    process = cli_process(
        "book", "XBT/USD", "--sandbox-url", running.rest_url, "--json",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline()  # running
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert b"Traceback" not in err


@pytest.mark.parametrize(
    "command",
    [["balances"], ["openOrders"], ["addOrder", "pair=XBT/USD", "type=buy", "ordertype=market",
                                    "volume=0.01"]],
    ids=["rest", "feed", "trading"],
)  # fmt: skip
def test_a_secret_that_is_not_base64_is_one_line_and_exit_2(
    running: RunningSandbox, command: list[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "krakenws.cli", *command, "--sandbox-url", running.rest_url,
         "--api-key", "foo", "--api-secret", "bar"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "krakenws: error: API secret is not valid base64; pass the 'Private key' exactly as "
        "Kraken showed it"
    ]  # nothing after it: the client closed its session


def test_a_lost_connection_is_said_on_stderr_while_stdout_stays_json() -> None:
    """Piped, the data just stops when the server goes: stderr says why and that the client is
    reconnecting (it said nothing without --verbose)."""
    from tests.cli.test_sandbox_command import start

    sandbox, info = start("--db", ":memory:")
    try:
        process = cli_process(
            "ticker", "XBT/USD", "--sandbox-url", info["rest_url"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        json.loads(process.stdout.readline())  # running
        sandbox.kill()
        sandbox.communicate(timeout=30)
        time.sleep(2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        for child in (sandbox, process):
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert process.returncode == 130
    assert b"krakenws: public connection lost" in err, err
    assert b"reconnecting" in err and b"Traceback" not in err
    for line in out.splitlines():
        json.loads(line)


def test_a_reader_that_goes_away_ends_the_feed_quietly(running: RunningSandbox) -> None:
    """``krakenws book XBT/USD | head -1``: exit 0 and nothing on stderr, not an error."""
    process = cli_process(
        "book", "XBT/USD", "--sandbox-url", running.rest_url, "--json",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline()  # running
    process.stdout.close()  # the reader is gone: the next write breaks the pipe
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = process.stderr.read()
    process.stderr.close()
    assert process.returncode == 0, err
    assert err == b""


# --- the terminal view -------------------------------------------------------------------------


def read_terminal(process: subprocess.Popen[bytes], master: int, timeout: float) -> bytes:
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed (Linux: EIO)
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    return output


def run_in_terminal(*argv: str) -> tuple[int, str]:
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "60"}
    env.pop("NO_COLOR", None)
    process = cli_process(*argv, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    try:
        output = read_terminal(process, master, 60)
        status = process.wait(30)
    finally:
        os.close(master)
    return status, output.decode("utf-8", errors="replace")


def test_terminal_book_ladder(running: RunningSandbox) -> None:
    status, screen = run_in_terminal(
        "book", "XBT/USD", "10", "--sandbox-url", running.rest_url, "--duration", "2"
    )
    assert status == 0, screen
    assert "\x1b[" in screen  # drawn with ANSI escapes, not JSON
    assert '"type"' not in screen
    assert "XBT/USD book-10" in screen
    assert "checksum ok" in screen and "verified" in screen
    assert "spread" in screen and "mid" in screen
    assert "subscribed book-10 XBT/USD" in screen
    assert "Traceback" not in screen


def test_terminal_ticker_and_orders(running: RunningSandbox) -> None:
    status, screen = run_in_terminal(
        "ticker", "XBT/USD", "ETH/EUR", "--sandbox-url", running.rest_url, "--duration", "1.5"
    )
    assert status == 0, screen
    assert "Ticker" in screen and "ETH/EUR" in screen and "\x1b[" in screen
