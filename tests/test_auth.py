"""API-Sign against Kraken's published vector, request building, and the nonce sources."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import logging
import multiprocessing
import os
import threading
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krakenws.auth import (
    MAX_NONCE,
    NonceSource,
    SharedNonceSource,
    api_sign,
    clock_microseconds,
    clock_milliseconds,
    next_nonce,
    nonce_source,
    sign_request,
    verify_api_sign,
)
from krakenws.errors import UsageError

# Kraken's published example (docs spot-rest-auth; spec 7.1)
SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
NONCE = 1616492376594
PAYLOAD = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
PATH = "/0/private/AddOrder"
SHA256_HEX = "23a1c1b34c6a11d641af0f24684896cb90f66fb991125c83dc357bdc3dc146f1"
SIGNATURE = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)
ORDER = {"ordertype": "limit", "pair": "XBTUSD", "price": "37500", "type": "buy", "volume": "1.25"}
FROZEN = 1_700_000_000_000_000  # µs


# --- API-Sign ----------------------------------------------------------------------------------


def test_published_vector_intermediate_sha256() -> None:
    assert hashlib.sha256((str(NONCE) + PAYLOAD).encode()).hexdigest() == SHA256_HEX


@pytest.mark.parametrize("nonce", [NONCE, str(NONCE)])
def test_published_vector_signature(nonce: int | str) -> None:
    assert api_sign(PATH, nonce, PAYLOAD, SECRET) == SIGNATURE


def test_sign_request_reproduces_the_published_vector() -> None:
    headers, body = sign_request(PATH, ORDER, key="public-key", secret=SECRET, nonce=NONCE)
    assert body == PAYLOAD
    assert headers == {
        "API-Key": "public-key",
        "API-Sign": SIGNATURE,
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    }


def _reference_sign(path: str, nonce: str, body: str, secret: str) -> str:
    """Spec 7.1 spelled out step by step, independent of the module under test."""
    digest = hashlib.sha256(nonce.encode() + body.encode()).digest()
    mac = hmac.new(base64.b64decode(secret), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def test_json_body_signature() -> None:
    body = '{"nonce":"1616492376594","ordertype":"limit","pair":"XBTUSD","price":"37500"}'
    expected = _reference_sign(PATH, str(NONCE), body, SECRET)
    assert api_sign(PATH, NONCE, body, SECRET) == expected
    assert expected != SIGNATURE


def test_sign_request_json_body() -> None:
    params = {"pair": "XBTUSD", "volume": Decimal("1.25"), "validate": True, "txid": ["A", "B"]}
    headers, body = sign_request(PATH, params, "k", SECRET, NONCE, json_body=True)
    assert json.loads(body) == {
        "nonce": "1616492376594",
        "pair": "XBTUSD",
        "volume": "1.25",
        "validate": True,
        "txid": ["A", "B"],
    }
    assert body.startswith('{"nonce":')
    assert headers["Content-Type"] == "application/json"
    assert headers["API-Sign"] == _reference_sign(PATH, str(NONCE), body, SECRET)


def test_sign_request_form_encoding_rules() -> None:
    params = {
        "validate": False,
        "txid": ["OAAAAA-1", "OBBBBB-2"],
        "price": Decimal("1E-8"),
        "userref": 7,
        "skip": None,
        "oflags": "post,fciq",
    }
    _, body = sign_request("/0/private/X", params, "k", SECRET, 5)
    assert parse_qsl(body) == [
        ("nonce", "5"),
        ("validate", "false"),
        ("txid", "OAAAAA-1,OBBBBB-2"),
        ("price", "0.00000001"),
        ("userref", "7"),
        ("oflags", "post,fciq"),
    ]


@pytest.mark.parametrize(
    ("params", "nonce"),
    [
        ({"price": 1.5}, 1),  # floats never carry money
        ({"nonce": 2}, 1),  # nonce goes in its own argument
        ({"price": Decimal("NaN")}, 1),
        ({"blob": b"bytes"}, 1),
        ({}, -1),
        ({}, "12a"),
        ({}, MAX_NONCE + 1),
    ],
)
def test_sign_request_refuses(params: dict[str, object], nonce: int | str) -> None:
    with pytest.raises(UsageError):
        sign_request(PATH, params, "k", SECRET, nonce)


@pytest.mark.parametrize("secret", ["not base64!", "abc", "", "   ", "a" * 5 + "==="])
def test_bad_secret_is_a_usage_error_not_binascii(secret: str) -> None:
    with pytest.raises(UsageError, match="secret") as info:
        api_sign(PATH, NONCE, PAYLOAD, secret)
    assert not isinstance(info.value, binascii.Error)
    assert info.value.__cause__ is None


@pytest.mark.parametrize("path", ["https://api.kraken.com/0/private/Balance", "0/private/Balance"])
def test_urlpath_must_be_a_path(path: str) -> None:
    with pytest.raises(UsageError, match="urlpath"):
        api_sign(path, NONCE, PAYLOAD, SECRET)


def test_verify_api_sign() -> None:
    assert verify_api_sign(PATH, NONCE, PAYLOAD, SECRET, SIGNATURE)
    assert not verify_api_sign(PATH, NONCE + 1, PAYLOAD, SECRET, SIGNATURE)
    assert not verify_api_sign(PATH, NONCE, PAYLOAD, SECRET, "garbage é")


# --- the pure nonce rule -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "last", "expected"),
    [(1000, 0, 1000), (1000, 999, 1000), (1000, 1000, 1001), (1000, 5000, 5001)],
)
def test_next_nonce(now: int, last: int, expected: int) -> None:
    assert next_nonce(now, last) == expected


@given(now=st.integers(0, 2**62), last=st.integers(0, 2**62))
def test_next_nonce_exceeds_last_and_never_runs_ahead_needlessly(now: int, last: int) -> None:
    nonce = next_nonce(now, last)
    assert nonce > last
    assert nonce >= now
    assert nonce in (now, last + 1)


def test_next_nonce_refuses_to_leave_u64() -> None:
    with pytest.raises(UsageError):
        next_nonce(0, MAX_NONCE)


def test_clocks_count_microseconds_and_milliseconds() -> None:
    seconds = time.time()
    assert abs(clock_microseconds() / 1e6 - seconds) < 5
    assert abs(clock_milliseconds() / 1e3 - seconds) < 5


# --- in-process source -------------------------------------------------------------------------


def test_frozen_clock_tight_loop_strictly_increasing() -> None:
    source = NonceSource(clock=lambda: FROZEN)
    nonces = [source() for _ in range(10_000)]
    assert nonces == list(range(FROZEN, FROZEN + 10_000))
    assert source.last == nonces[-1]
    assert source.shared is False


def test_clock_going_backwards_never_lowers_the_nonce() -> None:
    readings = iter([100, 200, 50, 60, 300])
    source = NonceSource(clock=lambda: next(readings))
    assert [source() for _ in range(5)] == [100, 200, 201, 202, 300]


def test_threads_share_one_strictly_increasing_sequence() -> None:
    source = NonceSource(clock=lambda: FROZEN)
    results: list[list[int]] = [[] for _ in range(8)]

    def work(out: list[int]) -> None:
        for _ in range(1000):
            out.append(source())

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    every = [n for out in results for n in out]
    assert sorted(every) == list(range(FROZEN, FROZEN + 8000))
    for out in results:
        assert out == sorted(out)


# --- file-coordinated source -------------------------------------------------------------------


def test_lock_file_is_named_by_a_hash_not_the_key(tmp_path: Path) -> None:
    key = "MY-SECRET-LOOKING-PUBLIC-KEY+/="
    source = SharedNonceSource(key, directory=tmp_path, clock=lambda: FROZEN)
    assert source.shared is True
    nonce = source()
    [path] = list(tmp_path.iterdir())
    assert path == source.path
    assert key not in path.name and "MY-SECRET" not in path.name
    assert int(path.read_text()) == nonce
    assert path.stat().st_mode & 0o077 == 0


def test_two_sources_on_one_key_interleave_without_repeats(tmp_path: Path) -> None:
    first = SharedNonceSource("key", directory=tmp_path, clock=lambda: FROZEN)
    second = SharedNonceSource("key", directory=tmp_path, clock=lambda: FROZEN)
    other_key = SharedNonceSource("other", directory=tmp_path, clock=lambda: FROZEN)
    taken = [first(), second(), second(), first(), other_key(), first()]
    assert taken == [FROZEN, FROZEN + 1, FROZEN + 2, FROZEN + 3, FROZEN, FROZEN + 4]


def test_stored_nonce_ahead_of_the_clock_is_respected(tmp_path: Path) -> None:
    seed = SharedNonceSource("key", directory=tmp_path, clock=lambda: FROZEN + 1000)
    seed()
    later = SharedNonceSource("key", directory=tmp_path, clock=lambda: FROZEN)
    assert later() == FROZEN + 1001


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"99999999999999999999999\n", b"\x00" * 21])
def test_corrupt_lock_file_is_tolerated(tmp_path: Path, content: bytes) -> None:
    source = SharedNonceSource("key", directory=tmp_path, clock=lambda: FROZEN)
    source.path.write_bytes(content)
    assert source() == FROZEN
    assert int(source.path.read_text()) == FROZEN


def test_deleted_lock_file_is_recreated(tmp_path: Path) -> None:
    source = SharedNonceSource("key", directory=tmp_path, clock=lambda: FROZEN)
    assert source() == FROZEN
    source.path.unlink()
    assert source() == FROZEN + 1
    assert int(source.path.read_text()) == FROZEN + 1
    newcomer = SharedNonceSource("key", directory=tmp_path, clock=lambda: FROZEN)
    assert newcomer() == FROZEN + 2


def test_unusable_directory_falls_back_to_in_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared_dir = tmp_path / "open"
    shared_dir.mkdir()
    shared_dir.chmod(0o777)  # writable by others: not trusted for the lock file
    with caplog.at_level(logging.WARNING, logger="krakenws.auth"):
        source = nonce_source("key", directory=shared_dir, clock=lambda: FROZEN)
    assert type(source) is NonceSource
    assert source.shared is False
    assert "in-process" in caplog.text
    assert [source(), source()] == [FROZEN, FROZEN + 1]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with caplog.at_level(logging.WARNING, logger="krakenws.auth"):
        assert nonce_source("key", directory=not_a_dir).shared is False


def test_nonce_source_defaults(tmp_path: Path) -> None:
    source = nonce_source("key", directory=tmp_path)
    assert isinstance(source, SharedNonceSource)
    assert abs(source() - clock_milliseconds()) < 10_000  # the default unit is milliseconds
    assert type(nonce_source("key", shared=False)) is NonceSource
    with pytest.raises(UsageError):
        nonce_source("")


def test_close_continues_in_process(tmp_path: Path) -> None:
    source = SharedNonceSource("key", directory=tmp_path, clock=lambda: FROZEN)
    assert source() == FROZEN
    source.close()
    assert source.shared is False
    assert source() == FROZEN + 1
    assert int(source.path.read_text()) == FROZEN  # no longer written


# --- across processes --------------------------------------------------------------------------


def _take_nonces(directory: str, frozen: bool, count: int, start: float) -> list[int]:
    """Worker for the spawn test (top level so that it can be pickled by name)."""
    clock = (lambda: FROZEN) if frozen else clock_microseconds
    source = SharedNonceSource("shared-key", directory=directory, clock=clock)
    while time.time() < start:  # all workers begin together, to really contend for the lock
        time.sleep(0.001)
    return [source() for _ in range(count)]


@pytest.mark.parametrize("frozen", [True, False], ids=["frozen-clock", "real-clock"])
def test_processes_sharing_a_key_never_collide(tmp_path: Path, frozen: bool) -> None:
    processes, count = 4, 500
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        start = time.time() + 3.0  # spawned interpreters need a moment to import
        pending = pool.starmap_async(
            _take_nonces, [(str(tmp_path), frozen, count, start)] * processes
        )
        sequences = pending.get(timeout=120)
    every = [n for sequence in sequences for n in sequence]
    assert len(every) == processes * count
    assert len(set(every)) == len(every), "duplicate nonces across processes"
    for sequence in sequences:
        assert all(a < b for a, b in itertools.pairwise(sequence))
    if frozen:  # a frozen clock makes the shared counter the only source: a dense range
        assert sorted(every) == list(range(FROZEN, FROZEN + processes * count))
    assert int(Path(SharedNonceSource("shared-key", directory=tmp_path).path).read_text()) == max(
        every
    )


def _forked_worker(
    source: NonceSource, count: int, queue: multiprocessing.Queue[list[int]]
) -> None:
    queue.put([source() for _ in range(count)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_children_reopen_the_lock_file(tmp_path: Path) -> None:
    source = SharedNonceSource("key", directory=tmp_path, clock=lambda: FROZEN)
    parent_first = source()
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[int]] = context.Queue()
    children = [context.Process(target=_forked_worker, args=(source, 300, queue)) for _ in range(3)]
    for child in children:
        child.start()
    parent_rest = [source() for _ in range(300)]
    results = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    every = [parent_first, *parent_rest, *(n for r in results for n in r)]
    assert sorted(every) == list(range(FROZEN, FROZEN + len(every)))
