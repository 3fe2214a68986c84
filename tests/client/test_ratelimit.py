"""The rate rules of spec 7.6 and the client-side mirrors: exact costs, waits, sync, backoff."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from krakenws.errors import UsageError
from krakenws.ratelimit import (
    ADD_COST,
    RATE_TIERS,
    REST_TIERS,
    TRADING_ENDPOINTS,
    RestRateMirror,
    TradingRateMirror,
    amend_cost,
    backoff_delays,
    batch_add_cost,
    cancel_cost,
    edit_cost,
    rest_cost,
)

S = 1_000_000  # µs per second
PAIR = "XXBTZUSD"


def no_decay(tier: str) -> TradingRateMirror:
    return TradingRateMirror(RATE_TIERS[tier]._replace(decay_per_second=Decimal(0)))


# --- tables --------------------------------------------------------------------------------------


def test_tier_tables_are_spec_7_6() -> None:
    assert {name: (t.threshold, t.decay_per_second) for name, t in RATE_TIERS.items()} == {
        "starter": (60, 1),
        "intermediate": (125, Decimal("2.34")),
        "pro": (180, Decimal("3.75")),
        "unlimited": (10**12, 10**12),
    }
    assert {name: (t.maximum, t.decay_per_second) for name, t in REST_TIERS.items()} == {
        "starter": (15, Decimal("0.33")),
        "intermediate": (20, Decimal("0.5")),
        "pro": (20, 1),
        "unlimited": (10**12, 10**12),
    }


def test_the_sandbox_uses_the_same_tables() -> None:
    from krakenws.sandbox import engine, rest_api
    from krakenws.sandbox.engine import ratelimit as engine_ratelimit

    assert engine.RATE_TIERS is RATE_TIERS
    assert rest_api.REST_TIERS is REST_TIERS
    assert engine_ratelimit.cancel_cost is cancel_cost
    assert engine_ratelimit.ADD_COST is ADD_COST
    assert rest_api.RestCounter("intermediate").maximum == 20


@pytest.mark.parametrize(
    ("age", "amend", "edit", "cancel"),
    [
        (0, 4, 7, 8),
        (Decimal("4.999999"), 4, 7, 8),
        (5, 3, 6, 6),
        (10, 2, 5, 5),
        (15, 1, 3, 4),
        (44, 1, 3, 4),
        (45, 1, 2, 2),
        (90, 1, 1, 1),
        (299, 1, 1, 1),
        (300, 1, 1, 0),
    ],
)
def test_age_costs(age: Decimal | int, amend: int, edit: int, cancel: int) -> None:
    assert (amend_cost(Decimal(age)), edit_cost(Decimal(age)), cancel_cost(Decimal(age))) == (
        amend,
        edit,
        cancel,
    )


def test_doc_example_add_amend_cancel_is_8() -> None:
    mirror = no_decay("starter")
    mirror.track_order("O1", PAIR, now=0)
    assert mirror.reserve(PAIR, ADD_COST, now=0) == 0.0
    assert mirror.order_cost("amend", "O1", now=7 * S) == 3  # +1 fixed, +2 under 10 s
    assert mirror.reserve(PAIR, mirror.order_cost("amend", "O1", 7 * S), now=7 * S) == 0.0
    mirror.order_amended("O1", now=7 * S)
    assert mirror.order_age("O1", now=43 * S) == 36
    assert mirror.order_cost("cancel", "O1", now=43 * S) == 4
    mirror.reserve(PAIR, mirror.order_cost("cancel", "O1", 43 * S), now=43 * S, cancel=True)
    assert mirror.value(PAIR, now=43 * S) == 8


def test_pro_20_orders_placed_and_cancelled_at_3_s_is_180() -> None:
    mirror = no_decay("pro")
    for n in range(20):
        mirror.track_order(f"O{n}", PAIR, now=0)
        assert mirror.reserve(PAIR, ADD_COST, now=0) == 0.0
    for n in range(20):
        cost = mirror.order_cost("cancel", f"O{n}", now=3 * S)
        assert cost == 8
        assert mirror.reserve(PAIR, cost, now=3 * S, cancel=True) == 0.0
    assert mirror.value(PAIR, now=3 * S) == 180 == 20 * (1 + 8) == mirror.tier.threshold
    assert mirror.would_exceed(PAIR, ADD_COST, now=3 * S)


def test_unknown_orders_cost_the_most() -> None:
    mirror = TradingRateMirror("starter")
    assert mirror.order_pair("nope") is None
    assert mirror.order_age("nope", now=0) is None
    assert [mirror.order_cost(kind, "nope", 10 * S) for kind in ("amend", "edit", "cancel")] == [
        4,
        7,
        8,
    ]


def test_batch_and_rest_costs() -> None:
    assert batch_add_cost(15) == 15
    assert rest_cost("Balance") == 1
    assert rest_cost("OpenOrders") == 1
    assert rest_cost("GetWebSocketsToken") == 1
    assert [rest_cost(n) for n in ("Ledgers", "QueryLedgers", "TradesHistory")] == [2, 2, 2]
    assert {rest_cost(name) for name in TRADING_ENDPOINTS} == {0}


# --- trading mirror waits ----------------------------------------------------------------------


def test_starter_61st_add_waits_exactly_one_second() -> None:
    mirror = TradingRateMirror("starter")
    waits = [mirror.reserve(PAIR, ADD_COST, now=0) for _ in range(62)]
    assert waits[:60] == [0.0] * 60
    # reservations queue: the 61st fits after 1 s, the 62nd after 2 s
    assert waits[60:] == [1.0, 2.0]
    assert mirror.value(PAIR, now=2 * S) == 60
    # other pairs have their own counter
    assert mirror.reserve("XETHZUSD", ADD_COST, now=0) == 0.0


def test_waits_are_rounded_up_to_the_microsecond() -> None:
    mirror = TradingRateMirror("intermediate")
    mirror.charge(PAIR, 125, now=0)
    # 1 / 2.34 s = 0.42735042... s -> 427351 µs
    assert mirror.wait(PAIR, ADD_COST, now=0) == 0.427351
    assert not mirror.would_exceed(PAIR, ADD_COST, now=427_351)
    assert mirror.would_exceed(PAIR, ADD_COST, now=427_350)
    assert mirror.value(PAIR, now=0) == 125  # wait and would_exceed book nothing

    pro = TradingRateMirror("pro")
    pro.charge(PAIR, 180, now=0)
    assert pro.reserve(PAIR, ADD_COST, now=0) == 0.266667  # 1 / 3.75 s
    assert pro.value(PAIR, now=266_667) == Decimal("179.99999875")  # 180 - 0.266667 x 3.75 + 1


def test_cancel_fits_below_the_threshold_and_may_cross_it() -> None:
    mirror = TradingRateMirror("starter")
    mirror.charge(PAIR, 59, now=0)
    assert mirror.reserve(PAIR, 8, now=0, cancel=True) == 0.0
    assert mirror.value(PAIR, now=0) == 67
    # at or above the threshold a cancel waits until the counter is strictly below it
    assert mirror.wait(PAIR, 8, now=0, cancel=True) == 7.000001
    mirror.sync(PAIR, 60, now=10 * S)
    assert mirror.wait(PAIR, 1, now=10 * S, cancel=True) == 0.000001


def test_adding_over_the_threshold_is_refused_as_impossible() -> None:
    with pytest.raises(UsageError):
        TradingRateMirror("starter").reserve(PAIR, 61, now=0)
    with pytest.raises(UsageError):
        RestRateMirror("starter").wait(-1, now=0)
    with pytest.raises(UsageError, match="unknown tier"):
        TradingRateMirror("gold")
    with pytest.raises(UsageError, match="unknown tier"):
        RestRateMirror("gold")


def test_sync_adopts_the_servers_ratecount() -> None:
    mirror = TradingRateMirror("starter")
    mirror.charge(PAIR, 10, now=0)
    mirror.sync(PAIR, "42", now=S)
    assert mirror.value(PAIR, now=S) == 42
    assert mirror.value(PAIR, now=3 * S) == 40  # then decays at 1/s
    mirror.sync(PAIR, Decimal("0"), now=3 * S)
    assert mirror.value(PAIR, now=3 * S) == 0
    with pytest.raises(UsageError):
        mirror.sync(PAIR, -1, now=3 * S)


def test_sync_keeps_reservations_booked_in_the_future() -> None:
    mirror = TradingRateMirror("starter")
    for _ in range(61):
        mirror.reserve(PAIR, ADD_COST, now=0)  # the last one is booked at 1 s
    mirror.sync(PAIR, 5, now=0)  # lower than the bookings: they stay
    assert mirror.value(PAIR, now=S) == 60
    mirror.sync(PAIR, 100, now=0)  # higher: the counter rises to 100 decayed by 1 s
    assert mirror.value(PAIR, now=S) == 99


def test_order_tracking_is_bounded_and_forgets() -> None:
    mirror = TradingRateMirror("starter", max_tracked=2)
    for n in range(3):
        mirror.track_order(f"O{n}", PAIR, now=n)
    assert [mirror.order_pair(f"O{n}") for n in range(3)] == [None, PAIR, PAIR]
    mirror.forget_order("O1")
    assert mirror.order_pair("O1") is None
    mirror.order_amended("O2", now=50 * S)
    assert mirror.order_age("O2", now=60 * S) == 10
    mirror.order_amended("unknown", now=0)  # ignored
    mirror.forget_all_orders()
    assert mirror.order_pair("O2") is None


def test_a_cancel_names_orders_by_txid_userref_or_cl_ord_id() -> None:
    mirror = TradingRateMirror("starter")
    mirror.track_order("OA", PAIR, now=0, userref=7)
    mirror.track_order("OB", PAIR, now=0, userref=7, cl_ord_id="mine-1")
    mirror.track_order("OC", PAIR, now=0, userref=-2147483648)
    mirror.track_order("OD", PAIR, now=0)
    assert mirror.orders_named(["7"]) == ["OA", "OB"]
    assert mirror.orders_named([7]) == ["OA", "OB"]
    assert mirror.orders_named(["-2147483648"]) == ["OC"]
    assert mirror.orders_named([], ["mine-1"]) == ["OB"]
    assert mirror.orders_named(["OD", "OB", "7"]) == ["OD", "OB", "OA"]
    # not userrefs: out of the 32-bit range, not digits, a bool; unknown txids name nothing
    assert mirror.orders_named(["2147483648", "7x", "", "OZ"]) == []
    assert mirror.orders_named([True]) == []  # type: ignore[list-item]
    # an amend keeps the references; forgetting drops them
    mirror.order_amended("OB", now=5 * S)
    assert mirror.order_userref("OB") == 7 and mirror.orders_named([], ["mine-1"]) == ["OB"]
    mirror.forget_order("OB")
    assert mirror.orders_named(["7"]) == ["OA"] and mirror.order_userref("OB") is None


# --- REST mirror -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "fits", "wait"),
    [("starter", 15, 3.030304), ("intermediate", 20, 2.0), ("pro", 20, 1.0)],
)
def test_rest_mirror_per_tier(tier: str, fits: int, wait: float) -> None:
    mirror = RestRateMirror(tier)
    waits = [mirror.reserve(1, now=0) for _ in range(fits + 1)]
    assert waits == [0.0] * fits + [wait]  # one more call waits 1 / decay, rounded up to µs


def test_rest_mirror_decays_and_counts_history_double() -> None:
    mirror = RestRateMirror("starter")
    for _ in range(7):
        mirror.reserve(rest_cost("Ledgers"), now=0)
    assert mirror.value(now=0) == 14
    assert mirror.value(now=10 * S) == Decimal("10.70")  # 14 - 10 x 0.33
    assert mirror.wait(rest_cost("TradesHistory"), now=10 * S) == 0.0
    assert mirror.would_exceed(rest_cost("Ledgers"), now=0)
    assert mirror.value(now=100 * S) == 0
    mirror.sync(15, now=100 * S)
    assert mirror.wait(1, now=100 * S) == 3.030304


# --- backoff -----------------------------------------------------------------------------------


def test_backoff_is_full_jitter_capped() -> None:
    draws = iter([0.5, 0.25, 1.0, 0.0, 0.5])
    delays = backoff_delays(1.0, 6.0, 2.0, jitter_random=lambda: next(draws))
    assert list(itertools.islice(delays, 5)) == [0.5, 0.5, 4.0, 0.0, 3.0]


def test_backoff_default_randomness_stays_in_bounds() -> None:
    delays = list(itertools.islice(backoff_delays(0.5, 8.0), 50))
    assert all(0 <= d <= 8.0 for d in delays)
    assert all(0 <= d <= 0.5 for d in delays[:1])


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(UsageError):
        next(backoff_delays(1.0, 5.0, 0.5))


def test_settle_counts_no_decay_before_the_answer() -> None:
    # A slow call (booked at 0, answered at 2 s) then a fast one: the server may have charged
    # the first as late as 2 s, so the mirror must not count the decay of 0..2 s.
    mirror = TradingRateMirror("starter")
    mirror.charge(PAIR, 59, now=0)
    mirror.settle(PAIR, now=2 * S)
    assert mirror.value(PAIR, now=2 * S) == 59
    assert mirror.value(PAIR, now=3 * S) == 58
    assert mirror.wait(PAIR, 2, now=2 * S) == 1.0
    mirror.settle("XETHZUSD", now=S)  # nothing booked there: nothing to do
    assert mirror.value("XETHZUSD", now=S) == 0

    rest = RestRateMirror("pro")
    rest.reserve(20, now=0)
    rest.settle(now=S)
    assert rest.value(now=S) == 20
    assert rest.wait(1, now=S) == 1.0
