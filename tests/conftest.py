"""Shared test fixtures: where the real recorded Kraken traffic lives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from krakenws.testing import frames_from_cryptofeed_log, frames_from_sdk_fixture

# CI explores the same examples every run, so that a landing never depends on luck; locally
# hypothesis keeps searching (and remembers what it found in .hypothesis/).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "kraken-fixtures"

BOOK1000 = "cryptofeed__KRAKEN.ws.50.0.book1000-v1.txt"
TRADES = "cryptofeed__KRAKEN.ws.48.0.trade-v1.txt"
TICKERS = "cryptofeed__KRAKEN.ws.49.0.ticker-v1.txt"
ASSET_PAIRS = "cryptofeed__KRAKEN.0.assetpairs-rest.txt"
SDK_BOOK10 = "python-kraken-sdk__orderbook-v1.json"
CHECKSUM_VECTORS = "orderbook__kraken_checksum_vectors.json"
CRYPTOFEED_LOGS = (BOOK1000, TRADES, TICKERS)


def fixture_path(name: str) -> Path:
    """Path of one real-traffic fixture, skipping the test where ../shared is absent."""
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"real Kraken fixtures not found at {FIXTURES} (CI always has them)")
    return path


def server_frames(name: str) -> list[str]:
    """Every server-to-client frame text of a fixture file, in order."""
    path = fixture_path(name)
    with open(path, encoding="utf-8") as source:
        if name.endswith(".json"):
            return list(frames_from_sdk_fixture(source))
        return [
            text for direction, text in frames_from_cryptofeed_log(source) if direction == "recv"
        ]


def client_frames(name: str) -> list[str]:
    """Every client-to-server frame text of a cryptofeed log."""
    with open(fixture_path(name), encoding="utf-8") as source:
        return [
            text for direction, text in frames_from_cryptofeed_log(source) if direction == "send"
        ]


def iter_all_server_frames() -> Iterator[tuple[str, str]]:
    for name in (*CRYPTOFEED_LOGS, SDK_BOOK10):
        for text in server_frames(name):
            yield name, text
