"""SIGKILL the sandbox at random moments under load; nothing acknowledged may be lost.

A client places and cancels orders (and sends crossing market orders that trade) over REST while
the `krakenws sandbox` process is killed with SIGKILL at random moments and restarted on the
same database. Afterwards every acknowledged order is there in the state it was acknowledged in
(or a later one), and the account's balances equal its deposits plus what its trades moved, to
the last unit of each asset.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from krakenws.auth import sign_request

KEY = "crash-test-key"
SECRET = "c2VjcmV0LWZvci10aGUtY3Jhc2gtdGVzdC0wMTIzNDU2Nzg5YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo="
FUNDS = {"ZUSD": Decimal("1000000"), "XXBT": Decimal("50")}
CYCLES = 4

_nonces = itertools.count(int(time.time() * 1000))


class Sandbox:
    def __init__(self, db: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "krakenws.cli",
                "sandbox",
                "--port",
                "0",
                "--db",
                str(db),
                "--json",
                "--api-key",
                KEY,
                "--api-secret",
                SECRET,
                "--seed",
                "5",
                "--fund",
                ",".join(f"{a}={v}" for a, v in FUNDS.items()),
                "--sim-levels",
                "40",
                "--sim-rate",
                "5",
                "--tier",
                "pro",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.kill()
            raise AssertionError(f"sandbox did not start: {self.process.stderr.read()}")  # type: ignore[union-attr]
        self.url = json.loads(line)["rest_url"]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(60) == 0
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class RateLimitedError(Exception):
    """The exchange said EOrder:Rate limit exceeded: back off (nothing was acknowledged)."""


def acknowledged(url: str, name: str, params: dict[str, object]) -> dict[str, Any]:
    answer = call(url, name, params)
    if answer["error"] == ["EOrder:Rate limit exceeded"]:
        raise RateLimitedError
    assert answer["error"] == [], answer
    result: dict[str, Any] = answer["result"]
    return result


def call(url: str, name: str, params: dict[str, object] | None = None) -> dict[str, Any]:
    path = f"/0/private/{name}"
    headers, body = sign_request(path, params or {}, KEY, SECRET, next(_nonces))
    request = urllib.request.Request(url + path, data=body.encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        payload: dict[str, Any] = json.loads(response.read())
    return payload


def public(url: str, name: str, query: str) -> Any:
    with urllib.request.urlopen(f"{url}/0/public/{name}?{query}", timeout=10) as response:
        return json.loads(response.read())["result"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    rng = random.Random(20261122)
    placed: dict[str, str] = {}  # txid -> the last acknowledged state: "open" or "canceled"
    markets: list[str] = []
    for _cycle in range(CYCLES):
        sandbox = Sandbox(db)
        killer = threading.Timer(rng.uniform(0.4, 1.6), sandbox.kill)
        killer.start()
        try:
            best_ask = Decimal(
                public(sandbox.url, "Depth", "pair=XBTUSD&count=1")["XXBTZUSD"]["asks"][0][0]
            )
            far = (best_ask * Decimal("0.85")).quantize(Decimal("0.1"))
            while True:
                action = rng.random()
                open_now = [t for t, state in placed.items() if state == "open"]
                try:
                    if action < 0.55 or not open_now:
                        result = acknowledged(
                            sandbox.url,
                            "AddOrder",
                            {
                                "pair": "XBTUSD",
                                "type": "buy",
                                "ordertype": "limit",
                                "volume": "0.01",
                                "price": str(far),
                            },
                        )
                        placed[result["txid"][0]] = "open"
                    elif action < 0.85:
                        txid = rng.choice(open_now)
                        acknowledged(sandbox.url, "CancelOrder", {"txid": txid})
                        placed[txid] = "canceled"
                    else:
                        side = rng.choice(["buy", "sell"])
                        result = acknowledged(
                            sandbox.url,
                            "AddOrder",
                            {
                                "pair": "XBTUSD",
                                "type": side,
                                "ordertype": "market",
                                "volume": "0.002",
                            },
                        )
                        markets.append(result["txid"][0])
                except RateLimitedError:
                    time.sleep(0.2)
        except (urllib.error.URLError, ConnectionError, OSError):
            pass  # killed mid-request: that request was never acknowledged
        finally:
            killer.join()
            if sandbox.process.poll() is None:
                sandbox.kill()

    sandbox = Sandbox(db)
    try:
        assert len(placed) > 10 and markets, "the client must have done real work"
        txids = list(placed) + markets
        found: dict[str, Any] = {}
        for start in range(0, len(txids), 50):
            answer = call(sandbox.url, "QueryOrders", {"txid": ",".join(txids[start : start + 50])})
            assert answer["error"] == [], answer
            found.update(answer["result"])
        for txid, state in placed.items():
            assert txid in found, f"acknowledged order {txid} lost"
            if state == "canceled":
                assert found[txid]["status"] == "canceled", (txid, found[txid]["status"])
            else:
                assert found[txid]["status"] in ("open", "canceled"), found[txid]
        for txid in markets:
            assert found[txid]["status"] == "closed", found[txid]
            assert Decimal(found[txid]["vol_exec"]) == Decimal("0.002")

        # Balances reconcile with deposits plus every trade in the account's history.
        trades: dict[str, Any] = {}
        offset = 0
        while True:
            page = call(sandbox.url, "TradesHistory", {"ofs": offset})["result"]
            trades.update(page["trades"])
            offset += 50
            if offset >= page["count"]:
                break
        expected = dict(FUNDS)
        for trade in trades.values():
            vol, cost, fee = (Decimal(trade[k]) for k in ("vol", "cost", "fee"))
            sign = 1 if trade["type"] == "buy" else -1
            expected["XXBT"] += sign * vol
            expected["ZUSD"] -= sign * cost + fee
        market_fills = {t["ordertxid"] for t in trades.values()}
        assert set(markets) <= market_fills
        balance = call(sandbox.url, "Balance")["result"]
        assert Decimal(balance["XXBT"]) == expected["XXBT"]
        assert Decimal(balance["ZUSD"]) == expected["ZUSD"]
        # And the open orders hold exactly what they need (nothing leaked by a crash).
        open_orders = call(sandbox.url, "OpenOrders")["result"]["open"]
        held = call(sandbox.url, "BalanceEx")["result"]["ZUSD"]["hold_trade"]
        assert Decimal(held) >= sum(
            Decimal(o["vol"]) * Decimal(o["descr"]["price"]) for o in open_orders.values()
        )
    finally:
        sandbox.stop()
    assert not os.path.exists(str(db) + "-journal")
