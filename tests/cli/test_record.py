"""``krakenws record`` -> ``krakenws verify`` -> ``krakenws sandbox --replay``, and ``krakenws
demo`` (JSON Lines and the terminal view)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from krakenws.cli import main
from tests.cli.test_feeds import clean_environment, krakenws, run_in_terminal
from tests.cli.test_sandbox_command import start, stop

__all__ = ["clean_environment"]  # the autouse fixture, shared


def test_record_verify_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "market.jsonl"
    status = main(
        ["record", "--sandbox", "-o", str(capture), "--duration", "2",
         "book", "XBT/USD", "10", "+", "trade", "XBT/USD"]
    )  # fmt: skip
    _, err = capsys.readouterr()
    assert status == 0, err
    frames = [json.loads(line) for line in capture.read_text().splitlines()]
    assert frames[0]["event"] == "systemStatus"
    channels = {frame[-2] for frame in frames if isinstance(frame, list)}
    assert channels == {"book-10", "trade"}
    assert f"recorded {len(frames)} frames to {capture}" in err

    assert main(["verify", "--json", str(capture)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["books"] == 1 and report["mismatches"] == 0 and report["checksums_ok"] > 0

    process, info = start("--db", ":memory:", "--replay", str(capture), "--replay-loop")
    try:
        run = krakenws(
            capsys, "book", "XBT/USD", "10", "--sandbox-url", info["rest_url"], "--count", "3"
        )
        assert run.status == 0, run.err
        books = run.of("book")
        assert [b["checksum_ok"] for b in books] == [None, True, True]
        recorded_prices = {
            level[0]
            for frame in frames
            if isinstance(frame, list) and frame[-2] == "book-10"
            for side in frame[1:-2]
            for key in ("as", "bs", "a", "b")
            for level in side.get(key, [])
        }
        assert {level[0] for level in books[0]["asks"]} <= recorded_prices
    finally:
        stop(process)


def test_record_refuses_trading_calls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "-o", "x.jsonl", "cancelAll"]) == 2
    assert "record subscribes feeds" in capsys.readouterr().err
    assert not Path("x.jsonl").exists()


def test_record_checks_the_credentials_of_every_feed_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A private feed after a public one: its missing key is the error, before any connection
    (the server here does not exist), and no empty capture is left behind."""
    argv = ["record", "-o", "x.jsonl", "book", "XBT/USD", "+", "openOrders"]
    assert main([*argv, "--sandbox-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("krakenws: error: openOrders needs an API key and secret"), err
    assert "recorded" not in err and not Path("x.jsonl").exists()


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    run = krakenws(capsys, "demo", "--duration", "3", "--json")
    assert run.status == 0, run.err
    books = run.of("book")
    assert books and {b["pair"] for b in books} == {"XBT/USD"}
    assert all(b["checksum_ok"] is not False for b in books)
    statuses = [o["status"] for o in run.of("order") if "status" in o]
    assert statuses[0] == "pending" and statuses[-1] in {"canceled", "closed"}


def test_demo_in_a_terminal() -> None:
    status, screen = run_in_terminal("demo", "--duration", "3")
    assert status == 0, screen
    assert "XBT/USD book-10" in screen and "checksum" in screen
    assert "placed O" in screen and "Orders" in screen
    assert "Traceback" not in screen
