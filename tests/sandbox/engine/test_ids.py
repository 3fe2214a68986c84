"""SeededIds draws exactly what ``random.choice`` over its alphabet would draw."""

from __future__ import annotations

import random

from krakenws.sandbox.engine.ids import _ALPHABET, SeededIds


def test_ids_are_the_characters_random_choice_draws() -> None:
    for seed in range(20):
        ids, reference = SeededIds(seed), random.Random(seed)
        for prefix in "OTL" * 30:
            body = "".join(reference.choice(_ALPHABET) for _ in range(16))
            assert ids.next(prefix) == f"{prefix}{body[:5]}-{body[5:10]}-{body[10:]}"
        assert ids._rng.getstate() == reference.getstate()
