"""``krakenws verify``: the real captures converted to JSON Lines, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from krakenws.cli import main
from krakenws.testing import write_capture
from tests.conftest import BOOK1000, SDK_BOOK10, TICKERS, TRADES, server_frames


def _krakenws(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "krakenws.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "updates", "books"),
    [(BOOK1000, 4269, 10), (SDK_BOOK10, 979, 1), (TRADES, 0, 0), (TICKERS, 0, 0)],
)
def test_real_captures_verify_with_zero_mismatches(
    tmp_path: Path, name: str, updates: int, books: int
) -> None:
    capture = tmp_path / "capture.jsonl"
    frames = server_frames(name)
    write_capture(capture, frames)
    result = _krakenws("verify", str(capture), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == len(frames)
    assert summary["books"] == books
    assert summary["updates"] == updates
    assert summary["checksums_ok"] == updates
    assert summary["mismatches"] == 0
    assert summary["non_book_frames"] == len(frames) - updates - summary["snapshots"]
    assert summary["ok"] is True


def test_human_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "capture.jsonl"
    write_capture(capture, server_frames(SDK_BOOK10))
    assert main(["verify", str(capture)]) == 0
    out = capsys.readouterr().out
    assert "checksums ok 979, mismatches 0" in out
    assert out.rstrip().endswith("OK")


def test_a_corrupted_checksum_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = server_frames(SDK_BOOK10)
    index = next(i for i, text in enumerate(frames) if '"c":"' in text)
    frame = json.loads(frames[index])
    frame[-3]["c"] = str((int(frame[-3]["c"]) + 1) % 2**32)
    frames[index] = json.dumps(frame, separators=(",", ":"))
    capture = tmp_path / "capture.jsonl"
    write_capture(capture, frames)
    assert main(["verify", str(capture), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["mismatches"] == 1
    (problem,) = summary["problems"]
    assert problem["kind"] == "mismatch"
    assert problem["line"] == index + 1
    assert problem["pair"] == "XBT/USD"
    assert problem["expected"] == int(frame[-3]["c"])
    # The book is out of sync until a new snapshot: its later updates are not counted as ok.
    assert summary["unverified"] == 979 - 1
    assert summary["ok"] is False


def test_an_unparsable_line_is_reported_with_its_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = server_frames(SDK_BOOK10)[:10]
    frames.insert(5, "{not json")
    capture = tmp_path / "capture.jsonl"
    write_capture(capture, frames)
    assert main(["verify", str(capture)]) == 1
    out = capsys.readouterr().out
    assert "line 6: unparsable" in out
    assert out.rstrip().endswith("FAILED")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = _krakenws("verify", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_command_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: krakenws" in capsys.readouterr().err
