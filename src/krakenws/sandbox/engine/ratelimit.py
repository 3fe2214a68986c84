"""The per-pair trading rate counter of spec 7.6 (shared by REST and WS trading). Pure.

Each (account, pair) has a counter that decays linearly with time. Adding an order costs +1;
amend, edit and cancel cost a fixed part plus a part that depends on the order's age (seconds
since it was created or last amended). A request that would push the counter past the tier's
threshold is refused with ``EOrder:Rate limit exceeded``; cancels are refused only once the
counter already stands at the threshold (so a cancel can still cross it, like Kraken's batch
cancels). Times are integer microseconds. *Exempt* accounts (the sandbox's simulated market
makers, see :mod:`krakenws.sandbox.market`) are never counted nor refused.

The tiers and cost rules live in :mod:`krakenws.ratelimit`, shared with the client's mirror of
this counter; they are re-exported here.

>>> counter = TradingRateCounter(RATE_TIERS["starter"])
>>> counter.charge("acct", "XXBTZUSD", ADD_COST, now=0)
Decimal('1')
>>> cost = amend_cost(age_seconds=Decimal(7))
>>> counter.charge("acct", "XXBTZUSD", cost, now=7_000_000)  # 1 - 7 s decay, floored at 0
Decimal('3')
>>> cancel_cost(age_seconds=Decimal(43)), cancel_cost(age_seconds=Decimal(300))
(Decimal('4'), Decimal('0'))
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from krakenws.errors import error_from_kraken
from krakenws.ratelimit import (
    ADD_COST,
    RATE_TIERS,
    RateTier,
    amend_cost,
    cancel_cost,
    edit_cost,
)

__all__ = [
    "ADD_COST",
    "RATE_TIERS",
    "RateTier",
    "TradingRateCounter",
    "amend_cost",
    "cancel_cost",
    "edit_cost",
]


class TradingRateCounter:
    """Counters per (account, pair key) for one tier; ``exempt`` accounts are not counted."""

    def __init__(self, tier: RateTier, *, exempt: Iterable[str] = ()) -> None:
        self.tier = tier
        self._state: dict[tuple[str, str], tuple[Decimal, int]] = {}
        self._exempt: set[str] = set(exempt)

    def exempt(self, account: str) -> None:
        """Never count nor refuse ``account`` from now on (its counters are dropped)."""
        self._exempt.add(account)
        for key in [key for key in self._state if key[0] == account]:
            del self._state[key]

    def is_exempt(self, account: str) -> bool:
        """Whether ``account`` is exempt from the counter."""
        return account in self._exempt

    def value(self, account: str, pair: str, now: int) -> Decimal:
        """The decayed counter at ``now`` (always 0 for exempt accounts)."""
        count, at = self._state.get((account, pair), (Decimal(0), now))
        elapsed = Decimal(max(now - at, 0)) / 1_000_000
        return max(Decimal(0), count - elapsed * self.tier.decay_per_second)

    def check(
        self, account: str, pair: str, cost: Decimal, now: int, *, cancel: bool = False
    ) -> None:
        """Raise ``EOrder:Rate limit exceeded`` if ``cost`` may not be charged now."""
        if account in self._exempt:
            return
        current = self.value(account, pair, now)
        over = current >= self.tier.threshold if cancel else current + cost > self.tier.threshold
        if over:
            raise error_from_kraken("EOrder:Rate limit exceeded")

    def charge(self, account: str, pair: str, cost: Decimal, now: int) -> Decimal:
        """Add ``cost`` (no check) and return the new value (exempt accounts stay at 0)."""
        if account in self._exempt:
            return Decimal(0)
        value = self.value(account, pair, now) + cost
        self._state[(account, pair)] = (value, now)
        return value
