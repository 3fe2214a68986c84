"""Accounts, balances, holds and the ledger of every movement. Pure.

:class:`Ledger` is the only place balances change. Money enters through :meth:`Ledger.deposit`
and leaves through :meth:`Ledger.withdraw`; everything else is a transfer, so the total of an
asset over all accounts (the house account included) only changes by deposits and withdrawals.
Trading fees are moved to the house account (:attr:`Ledger.house`) with a ``fee`` entry.

A *hold* reserves part of a balance for open orders; ``available = balance - held``. Holds are
bookkeeping only (no ledger entry): the engine sets them per order.

>>> from decimal import Decimal as D
>>> from krakenws.sandbox.engine.ids import SeededIds
>>> ledger = Ledger(decimals={"ZUSD": 4}, ids=SeededIds(seed=1))
>>> entry = ledger.deposit("alice", "ZUSD", D("100"), now=0)
>>> entry.type, entry.balance, ledger.available("alice", "ZUSD")
('deposit', Decimal('100.0000'), Decimal('100.0000'))
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal

from krakenws.errors import UsageError, error_from_kraken
from krakenws.sandbox.engine.events import LedgerEntry
from krakenws.sandbox.engine.ids import IdSource
from krakenws.sandbox.engine.markets import quantum

_ZEROS: dict[int, Decimal] = {}  # 0 at n decimals, by n

__all__ = ["HOUSE", "Ledger"]

HOUSE = "house"
"""The default id of the account that collects fees."""


class Ledger:
    """Balances and holds per account and asset, and the list of ledger entries."""

    def __init__(self, decimals: Mapping[str, int], ids: IdSource, *, house: str = HOUSE) -> None:
        self._decimals = dict(decimals)
        self._ids = ids
        self.house = house
        self._balances: dict[str, dict[str, Decimal]] = defaultdict(dict)
        self._held: dict[str, dict[str, Decimal]] = defaultdict(dict)
        self.entries: list[LedgerEntry] = []
        self.deposited: dict[str, Decimal] = defaultdict(Decimal)
        """Net deposits minus withdrawals per asset (the conservation reference)."""

    # --- reading -----------------------------------------------------------------------------

    def _zero(self, asset: str) -> Decimal:
        places = self._decimals[asset]
        zero = _ZEROS.get(places)
        if zero is None:
            zero = _ZEROS[places] = Decimal(0).quantize(quantum(places))
        return zero

    def balance(self, account: str, asset: str) -> Decimal:
        """Total balance (held included)."""
        self._check_asset(asset)
        found = self._balances[account].get(asset)
        return self._zero(asset) if found is None else found

    def held(self, account: str, asset: str) -> Decimal:
        """The part of the balance reserved for open orders."""
        self._check_asset(asset)
        found = self._held[account].get(asset)
        return self._zero(asset) if found is None else found

    def available(self, account: str, asset: str) -> Decimal:
        """Balance minus holds."""
        return self.balance(account, asset) - self.held(account, asset)

    def balances(self, account: str) -> dict[str, Decimal]:
        """Every asset the account ever held, with its balance (REST ``Balance``)."""
        return dict(self._balances.get(account, {}))

    def accounts(self) -> list[str]:
        """Every account with a balance entry, house included once it earned fees."""
        return list(self._balances)

    def total(self, asset: str) -> Decimal:
        """Sum of an asset over all accounts (equals ``deposited[asset]`` at all times)."""
        return sum(
            (balances.get(asset, Decimal(0)) for balances in self._balances.values()), Decimal(0)
        )

    def _check_asset(self, asset: str) -> None:
        if asset not in self._decimals:
            raise UsageError(f"unknown asset {asset!r}")

    def _amount(self, asset: str, amount: Decimal) -> Decimal:
        self._check_asset(asset)
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise UsageError(f"amount must be a finite Decimal, got {amount!r}")
        exact = amount.quantize(quantum(self._decimals[asset]))
        if exact != amount:
            raise UsageError(f"{amount} has more than {self._decimals[asset]} decimals for {asset}")
        return exact

    # --- movements ---------------------------------------------------------------------------

    def _post(
        self,
        account: str,
        asset: str,
        amount: Decimal,
        fee: Decimal,
        *,
        kind: str,
        refid: str,
        now: int,
    ) -> LedgerEntry:
        balance = self.balance(account, asset) + amount - fee
        self._balances[account][asset] = balance
        entry = LedgerEntry(
            ledger_id=self._ids.next("L"),
            refid=refid,
            time=now,
            type=kind,
            account=account,
            asset=asset,
            amount=amount,
            fee=fee,
            balance=balance,
        )
        self.entries.append(entry)
        return entry

    def deposit(
        self, account: str, asset: str, amount: Decimal, *, now: int, refid: str | None = None
    ) -> LedgerEntry:
        """Credit ``amount`` (> 0, at most the asset's decimals): new money enters."""
        amount = self._amount(asset, amount)
        if amount <= 0:
            raise UsageError("deposit amount must be positive")
        self.deposited[asset] += amount
        return self._post(
            account, asset, amount, self._zero(asset), kind="deposit",
            refid=refid or self._ids.next("Q"), now=now,
        )  # fmt: skip

    def withdraw(
        self, account: str, asset: str, amount: Decimal, *, now: int, refid: str | None = None
    ) -> LedgerEntry:
        """Debit ``amount`` of available funds (``EOrder:Insufficient funds`` otherwise)."""
        amount = self._amount(asset, amount)
        if amount <= 0:
            raise UsageError("withdrawal amount must be positive")
        if self.available(account, asset) < amount:
            raise error_from_kraken("EOrder:Insufficient funds")
        self.deposited[asset] -= amount
        return self._post(
            account, asset, -amount, self._zero(asset), kind="withdrawal",
            refid=refid or self._ids.next("Q"), now=now,
        )  # fmt: skip

    def trade(
        self, account: str, asset: str, amount: Decimal, fee: Decimal, *, refid: str, now: int
    ) -> list[LedgerEntry]:
        """A trade leg: ``amount`` (signed) and ``fee`` (>= 0) on ``account``; fee to the house.

        Returns the account's entry, then the house's ``fee`` entry if ``fee`` is not zero.
        """
        amount, fee = self._amount(asset, amount), self._amount(asset, fee)
        if fee < 0:
            raise UsageError("fee must not be negative")
        entries = [self._post(account, asset, amount, fee, kind="trade", refid=refid, now=now)]
        if fee:
            entries.append(
                self._post(self.house, asset, fee, self._zero(asset), kind="fee", refid=refid,
                           now=now)
            )  # fmt: skip
        return entries

    def hold(self, account: str, asset: str, delta: Decimal) -> None:
        """Change the held amount by ``delta`` (engine bookkeeping; never below zero)."""
        held = self.held(account, asset) + delta
        if held < 0:
            raise AssertionError(f"hold of {account} {asset} would go negative: {held}")
        self._held[account][asset] = held
