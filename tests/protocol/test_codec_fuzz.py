"""Property tests: whatever arrives, a decoder returns a message or raises ProtocolError.

Every message a decoder does return must survive encode -> decode unchanged, and the book fast
path in ``decode_server`` must agree exactly with the fully checked path it short-cuts.
Each test is bounded (a few hundred examples, no example database) to keep the suite fast.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krakenws.errors import ProtocolError
from krakenws.protocol import codec
from krakenws.protocol.codec import decode_client, decode_server, encode_client, encode_server
from tests.conftest import BOOK1000, SDK_BOOK10, TICKERS, TRADES, server_frames
from tests.protocol.test_codec_fixtures import SPEC_CLIENT_EXAMPLES, SPEC_SERVER_EXAMPLES

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

SERVER_EVENTS = sorted(codec._SERVER_EVENT_NAMES)
CLIENT_EVENTS = sorted(codec._CLIENT_EVENT_NAMES)
CHANNELS = [
    "ticker",
    "trade",
    "spread",
    "ohlc-5",
    "ohlc-x",
    "book-10",
    "book-1000",
    "book-7",
    "book-",
    "openOrders",
    "ownTrades",
]
KEYS = [
    "event",
    "reqid",
    "status",
    "errorMessage",
    "channelID",
    "channelName",
    "connectionID",
    "pair",
    "subscription",
    "name",
    "depth",
    "token",
    "txid",
    "sequence",
    "a",
    "b",
    "c",
    "as",
    "bs",
    "Error",
]


def outcome(decode: Callable[[Any], Any], data: str | bytes) -> Any:
    """The decoded message, or None for a ProtocolError; anything else propagates and fails."""
    try:
        return decode(data)
    except ProtocolError:
        return None


def assert_server_outcome_is_sound(data: str | bytes) -> None:
    message = outcome(decode_server, data)
    if message is not None:
        assert decode_server(encode_server(message)) == message


def assert_client_outcome_is_sound(data: str | bytes) -> None:
    message = outcome(decode_client, data)
    if message is not None:
        assert decode_client(encode_client(message)) == message


# --- strategies --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from([*SERVER_EVENTS, *CLIENT_EVENTS, *CHANNELS, "r", "0.00000000", "123"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=25,
)

# Cheaper to generate than json_values; enough to exercise every field's type check.
shallow_values = (
    json_scalars
    | st.lists(json_scalars, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS), json_scalars, max_size=3)
)

decimal_text = st.builds("{}.{:08d}".format, st.integers(0, 99_999), st.integers(0, 10**8 - 1))
good_level = st.lists(decimal_text, min_size=3, max_size=3) | st.tuples(
    decimal_text, decimal_text, decimal_text, st.just("r")
).map(list)
any_level = good_level | st.lists(st.text(max_size=3) | st.integers() | st.none(), max_size=5)
level_lists = st.lists(good_level, max_size=4) | st.lists(any_level, max_size=4)
checksums = st.integers(0, 2**32 - 1).map(str) | json_scalars
# Half well-formed one-sided updates (the fast path's diet), half anything book-like.
book_bodies = st.sampled_from(["a", "b"]).flatmap(
    lambda side: st.fixed_dictionaries(
        {side: st.lists(good_level, max_size=4), "c": st.integers(0, 2**32 - 1).map(str)}
    )
) | st.dictionaries(
    st.sampled_from(["a", "b", "c", "as", "bs", "x"]), level_lists | checksums, max_size=4
)
book_frames = st.one_of(
    st.tuples(
        st.integers(0, 5000) | json_scalars,
        book_bodies,
        st.sampled_from(["book-10", "book-25", "book-1000", "book-42", "book-x"]) | json_scalars,
        st.just("XBT/USD") | json_scalars,
    ).map(list),
    st.tuples(
        st.integers(0, 5000),
        book_bodies,
        book_bodies,
        st.sampled_from(["book-10", "book-1000"]),
        st.just("SC/EUR"),
    ).map(list),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    return found


def _mutate(data: st.DataObject, document: Any) -> Any:
    """Drop, replace or duplicate one node somewhere in a parsed JSON document."""
    path = data.draw(st.sampled_from(_paths(document)))
    if not path:
        return data.draw(json_values)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = data.draw(st.sampled_from(["drop", "replace", "duplicate", "retype"]))
    if action == "drop":
        del parent[last]
    elif action == "replace":
        parent[last] = data.draw(json_values)
    elif action == "duplicate" and isinstance(parent, list):
        parent.insert(last, parent[last])
    else:
        node = parent[last]
        parent[last] = str(node) if not isinstance(node, str) else [node]
    return document


@functools.cache
def _real_frame_samples() -> list[str]:
    samples = [text for _, _, text in SPEC_SERVER_EXAMPLES]
    for name in (BOOK1000, SDK_BOOK10, TRADES, TICKERS):
        frames = server_frames(name)
        samples += frames[:12] + frames[-12:]
    return samples


# --- garbage in ---------------------------------------------------------------------------------


@FUZZ
@given(st.text())
def test_random_text(text: str) -> None:
    assert_server_outcome_is_sound(text)
    assert_client_outcome_is_sound(text)


@FUZZ
@given(st.binary())
def test_random_bytes(data: bytes) -> None:
    assert_server_outcome_is_sound(data)
    assert_client_outcome_is_sound(data)


@FUZZ
@given(json_values)
def test_random_json_values(value: Any) -> None:
    text = json.dumps(value)
    assert_server_outcome_is_sound(text)
    assert_client_outcome_is_sound(text.encode())


@FUZZ
@given(
    st.fixed_dictionaries(
        {"event": st.sampled_from(SERVER_EVENTS + CLIENT_EVENTS)},
        optional={key: shallow_values for key in KEYS if key != "event"},
    )
)
def test_random_event_objects(value: dict[str, Any]) -> None:
    text = json.dumps(value)
    assert_server_outcome_is_sound(text)
    assert_client_outcome_is_sound(text)


@FUZZ
@given(st.lists(shallow_values, max_size=3), st.sampled_from(CHANNELS), shallow_values)
def test_random_channel_shaped_arrays(head: list[Any], channel: str, tail: Any) -> None:
    assert_server_outcome_is_sound(json.dumps([*head, channel, tail]))


def test_absurd_nesting_is_refused() -> None:
    for depth in (100, 1000, 100_000):
        for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
            assert outcome(decode_server, text) is None
            assert outcome(decode_client, text) is None


# --- real frames, damaged ------------------------------------------------------------------------


@FUZZ
@given(st.data())
def test_mutated_real_server_frames(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(_real_frame_samples()))
    mutated = json.dumps(_mutate(data, json.loads(original)))
    assert_server_outcome_is_sound(mutated)


@FUZZ
@given(st.data())
def test_mutated_client_requests(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from([text for _, _, text in SPEC_CLIENT_EXAMPLES]))
    mutated = json.dumps(_mutate(data, json.loads(original)))
    assert_client_outcome_is_sound(mutated)


@FUZZ
@given(st.data())
def test_truncated_and_byte_dropped_real_frames(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(_real_frame_samples())).encode()
    cut = data.draw(st.integers(0, len(original)))
    assert_server_outcome_is_sound(original[:cut])
    assert_server_outcome_is_sound(original[:cut] + original[cut + 1 :])


# --- the book fast path agrees with the checked path ---------------------------------------------


@functools.cache
def _real_book_frames() -> list[str]:
    return [t for t in server_frames(SDK_BOOK10) if t.startswith("[")][:40]


def _checked(text: str) -> Any:
    try:
        return codec._decode_server_loosely(text)
    except ProtocolError:
        return None


@FUZZ
@given(book_frames)
def test_book_fast_path_matches_checked_path(frame: list[Any]) -> None:
    text = json.dumps(frame)
    assert outcome(decode_server, text) == _checked(text)
    assert_server_outcome_is_sound(text)


@FUZZ
@given(st.data())
def test_book_fast_path_matches_checked_path_on_damaged_real_frames(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(_real_book_frames()))
    mutated = json.dumps(_mutate(data, json.loads(original)))
    assert outcome(decode_server, mutated) == _checked(mutated)


def test_book_fast_path_matches_checked_path_on_every_real_frame() -> None:
    for name in (BOOK1000, SDK_BOOK10):
        for text in server_frames(name):
            if text.startswith("["):
                assert decode_server(text) == codec._decode_server_loosely(text)
