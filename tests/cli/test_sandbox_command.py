"""``krakenws sandbox`` as a real process: start info, credentials, restarts, clean shutdown."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from krakenws.auth import sign_request

SECRET = "dGhlLXNhbmRib3gtY29tbWFuZC10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVmZ2hpams="
_nonces = itertools.count(int(time.time() * 1000))


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "krakenws.cli",
            "sandbox",
            "--port",
            "0",
            "--sim-levels",
            "20",
            "--json",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        _, err = process.communicate(timeout=30)
        raise AssertionError(f"sandbox did not start: {err}")
    return process, json.loads(line)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return err


def private(info: dict[str, Any], name: str, params: dict[str, object] | None = None) -> Any:
    path = f"/0/private/{name}"
    headers, body = sign_request(
        path, params or {}, info["api_key"], info["api_secret"], next(_nonces)
    )
    request = urllib.request.Request(info["rest_url"] + path, data=body.encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_key_funds_restart_and_shutdown(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    args = ("--db", db, "--api-key", "cli-key", "--api-secret", SECRET, "--fund", "ZUSD=500,XXBT=2")
    process, info = start(*args)
    try:
        assert info["api_key"] == "cli-key" and info["api_secret"] == SECRET
        assert info["rest_url"].startswith("http://127.0.0.1:")
        assert info["ws_url"].endswith("/ws") and info["ws_auth_url"].endswith("/ws-auth")
        assert "create_orders" in info["permissions"]
        balance = private(info, "Balance")["result"]
        assert balance["ZUSD"] == "500.0000" and balance["XXBT"] == "2.0000000000"
    finally:
        err = stop(process)
    assert "Traceback" not in err
    process, info = start(*args)  # the same key on the same database: not credited again
    try:
        assert private(info, "Balance")["result"]["ZUSD"] == "500.0000"
    finally:
        stop(process)


def test_permissions_limit_the_key(tmp_path: Path) -> None:
    process, info = start(
        "--db",
        ":memory:",
        "--api-key",
        "ro",
        "--api-secret",
        SECRET,
        "--api-permissions",
        "query_funds,query_open_orders",
    )
    try:
        assert info["permissions"] == ["query_funds", "query_open_orders"]
        assert private(info, "Balance")["error"] == []
        denied = private(
            info,
            "AddOrder",
            {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "1"},
        )
        assert denied["error"] == ["EGeneral:Permission denied"]
    finally:
        stop(process)


def test_demo_key_is_made_once_per_database(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    process, first = start("--db", db)
    try:
        balance = private(first, "Balance")["result"]
        assert float(balance["ZUSD"]) > 0 and float(balance["XXBT"]) > 0
    finally:
        stop(process)
    process, second = start("--db", db)
    try:
        assert second["api_key"] == first["api_key"]
        assert private(second, "Balance")["result"]["ZUSD"] == balance["ZUSD"]
    finally:
        stop(process)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fund", "ZUSD"], "ASSET=AMOUNT"),
        (["--fund", "ZUSD=-5"], "positive"),
        (["--api-key", "k"], "go together"),
        (
            ["--api-key", "k", "--api-secret", SECRET, "--api-permissions", "fly"],
            "unknown permissions",
        ),
        (["--api-key", "k", "--api-secret", "not base64!"], "secret"),
        (["--port", "99999"], "not a TCP port"),
    ],
)
def test_bad_arguments_are_clear_errors(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "krakenws.cli", "sandbox", "--db", ":memory:", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a sandbox database\n" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "krakenws.cli", "sandbox", "--db", str(garbage), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot open the database" in result.stderr and "Traceback" not in result.stderr


def test_a_connected_client_does_not_hold_up_shutdown() -> None:
    """SIGINT with a WebSocket client subscribed: the sandbox closes it and exits at once
    (aiohttp waited up to 2 x 60 s for the client's handler to end)."""
    process, info = start("--db", ":memory:")

    async def subscribed_then_wait_for_close() -> int | None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(info["ws_url"]) as ws,
        ):
            await ws.send_json(
                {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "book"}}
            )
            await ws.receive(timeout=10)  # systemStatus: connected
            process.send_signal(signal.SIGINT)
            started = time.monotonic()
            async for _ in ws:  # book frames until the sandbox closes the socket
                assert time.monotonic() - started < 10, "the sandbox kept the client open"
            return ws.close_code

    try:
        code = asyncio.run(subscribed_then_wait_for_close())
        process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert code == 1001 and process.returncode == 0


def test_human_start_banner(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "krakenws.cli",
            "sandbox",
            "--db",
            ":memory:",
            "--port",
            "0",
            "--sim-levels",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    try:
        assert banner.startswith("krakenws sandbox on http://127.0.0.1:")
        lines = [process.stdout.readline() for _ in range(3)]
        assert any("rest_url" in line for line in lines)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert process.returncode == 0
