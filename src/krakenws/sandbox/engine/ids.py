"""Kraken-style identifiers from an injected, seeded generator. Pure: no clock, no os entropy.

Kraken's ids are three dash-separated groups of 6, 5 and 6 upper-case letters and digits whose
first character says what they name: ``O`` orders (``OUF4EM-FRGI2-MQMWZD``), ``T`` trades and
amends, ``L`` ledger entries. :class:`SeededIds` makes them from a :class:`random.Random` seeded
by the caller, so a run is reproducible and ids never repeat within one generator.

>>> ids = SeededIds(seed=7)
>>> txid = ids.next("O")
>>> txid[0], [len(part) for part in txid.split("-")]
('O', [6, 5, 6])
>>> SeededIds(seed=7).next("O") == txid
True
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Protocol

__all__ = ["IdSource", "SeededIds"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # Kraken ids use base32-like characters
_SIZE = len(_ALPHABET)
_BITS = _SIZE.bit_length()  # what random.choice draws per attempt for this length


class IdSource(Protocol):
    """Anything that hands out unique ids given a one-letter prefix (``O``, ``T``, ``L``)."""

    def next(self, prefix: str) -> str:
        """A new id starting with ``prefix``; never returned before."""
        ...


class SeededIds:
    """Kraken-looking ids from a seeded :class:`random.Random`; unique per generator."""

    def __init__(self, seed: int | None = None, *, rng: random.Random | None = None) -> None:
        if rng is None:
            if seed is None:
                raise ValueError("give a seed or a seeded random.Random: ids must be reproducible")
            rng = random.Random(seed)
        self._rng = rng
        self._issued: set[str] = set()

    def next(self, prefix: str) -> str:
        """A fresh ``PXXXXX-XXXXX-XXXXXX`` id (``P`` = ``prefix``).

        Draws exactly what ``16 x rng.choice(_ALPHABET)`` draws (``choice`` takes
        ``getrandbits(len.bit_length())`` until it is below the length), without its two
        Python calls per character.
        """
        getrandbits = self._rng.getrandbits
        while True:
            chars: list[str] = []
            while len(chars) < 16:
                r = getrandbits(_BITS)
                if r < _SIZE:
                    chars.append(_ALPHABET[r])
            body = "".join(chars)
            text = f"{prefix}{body[:5]}-{body[5:10]}-{body[10:]}"
            if text not in self._issued:
                self._issued.add(text)
                return text

    def take_issued(self) -> set[str]:
        """Take out the ids issued so far (they grow with history): the generator forgets them
        until :meth:`put_issued` gives them back. For snapshots of live state."""
        issued, self._issued = self._issued, set()
        return issued

    def put_issued(self, issued: Iterable[str]) -> None:
        """Remember ``issued`` as issued (again): :meth:`next` never returns them. A set given
        back from :meth:`take_issued` is adopted, not copied."""
        if isinstance(issued, set) and len(issued) > len(self._issued):
            issued.update(self._issued)
            self._issued = issued
        else:
            self._issued.update(issued)
