"""What a sandbox snapshot costs as the exchange's history grows.

The exchange snapshots its engine every ``snapshot_every`` commands, on the event loop (every
connection waits meanwhile). A snapshot pickles the live state only: ``Engine.detach_history``
takes ended orders, fills, ledger entries and issued ids out first (they are rows of the store
already, and the exchange lets the engine drop them); here ``attach_history`` puts them back
each time, so that the full pickle can be measured too. This script grows one account's history
in process (``--db :memory:``, tier ``unlimited``): resting limit orders, cancelled in fifties,
and at each checkpoint times (``time.perf_counter``, median of ``--repeat``):

* ``live_ms`` / ``live_bytes``: detach, pickle (what ``Exchange.snapshot`` does), attach;
* ``full_ms`` / ``full_bytes``: pickling the whole engine, history included (what a snapshot
  cost before).

The first should stay flat while the second grows with the history.

    python bench/sandbox_snapshot.py [--checkpoints 5000,20000,40000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import statistics
import time
from collections.abc import Callable
from decimal import Decimal

from krakenws.sandbox.engine import OrderRequest
from krakenws.sandbox.exchange import Exchange


def timed(action: Callable[[], bytes], repeat: int) -> tuple[float, int]:
    """Median milliseconds of ``action`` over ``repeat`` runs, and the size of what it made."""
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        size = len(action())
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="0,5000,20000,40000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    checkpoints = sorted(int(n) for n in args.checkpoints.split(","))

    exchange = Exchange.open(":memory:", seed=1, tier="unlimited", snapshot_every=10**9)
    account = exchange.create_account("bench")
    exchange.deposit(account, "ZUSD", Decimal("100000000"))
    exchange.set_last_price("XBT/USD", Decimal("30000"))
    order = OrderRequest(
        pair="XBT/USD", type="buy", ordertype="limit", volume="0.001", price="1000.0"
    )
    engine = exchange.engine

    def live() -> bytes:
        history = engine.detach_history()
        try:
            return pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            engine.attach_history(history)

    def full() -> bytes:
        return pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)

    rows = []
    placed = 0
    for checkpoint in checkpoints:
        while placed < checkpoint:
            exchange.add_order(account, order)
            placed += 1
            if placed % 50 == 0:
                exchange.cancel_all(account)
        live_ms, live_bytes = timed(live, args.repeat)
        full_ms, full_bytes = timed(full, args.repeat)
        rows.append(
            {
                "orders": placed,
                "live_ms": live_ms,
                "live_bytes": live_bytes,
                "full_ms": full_ms,
                "full_bytes": full_bytes,
            }
        )
    exchange.close(snapshot=False)
    print(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "repeat": args.repeat,
                "history": "one account: resting limit orders, cancelled in fifties",
                "checkpoints": rows,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
