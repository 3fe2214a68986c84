"""The sandbox's pure matching engine: no I/O, no clock, no unseeded randomness.

Times are integer microseconds since the Unix epoch, passed in by the caller; ids come from an
injected seeded :class:`SeededIds`. Every state change comes back as typed events (see
:mod:`.events`). Modules: :mod:`.markets` (assets, pairs, rounding), :mod:`.requests` (order
requests and argument parsing), :mod:`.book` (price-time book), :mod:`.ledger` (balances, holds,
ledger), :mod:`.ratelimit` (spec 7.6 counter), :mod:`.core` (the :class:`Engine`).

>>> from decimal import Decimal
>>> engine = Engine(ids=SeededIds(seed=1))
>>> _ = engine.deposit("alice", "ZUSD", Decimal("1000"), now=0)
>>> _ = engine.deposit("bob", "XXBT", Decimal("1"), now=0)
>>> ask = engine.add_order("bob", OrderRequest(pair="XBT/USD", type="sell", ordertype="limit",
...                                            volume="0.01", price="30000.0"), now=1)
>>> ask.descr
'sell 0.01000000 XBTUSD @ limit 30000.0'
>>> bid = engine.add_order("alice", OrderRequest(pair="XBT/USD", type="buy", ordertype="market",
...                                              volume="0.01"), now=2)
>>> engine.order(bid.txid).status, engine.order(bid.txid).cost, engine.order(bid.txid).fee
('closed', Decimal('300.0000'), Decimal('1.2000'))
>>> engine.balance("alice", "XBT"), engine.balance("house", "USD")
(Decimal('0.0100000000'), Decimal('1.9500'))
"""

from krakenws.sandbox.engine.book import BookLevel, OrderBook
from krakenws.sandbox.engine.core import (
    AddOrderResult,
    AmendOrderResult,
    CancelResult,
    ContingentRejected,
    DeadManSwitchResult,
    EditOrderResult,
    Engine,
    EngineHistory,
    Outcome,
)
from krakenws.sandbox.engine.events import (
    BookLevelChanged,
    Contingent,
    DeadManSwitchFired,
    Event,
    LedgerEntry,
    LedgerEntryAdded,
    OrderAmended,
    OrderCanceled,
    OrderClosed,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderOpened,
    OrderPlaced,
    OrderTriggered,
    OrderView,
    PublicTrade,
    TradeExecuted,
    TradeView,
    format_time,
)
from krakenws.sandbox.engine.ids import IdSource, SeededIds
from krakenws.sandbox.engine.ledger import HOUSE, Ledger
from krakenws.sandbox.engine.markets import SANDBOX_WS_PRICE_DECIMALS, Asset, Markets
from krakenws.sandbox.engine.ratelimit import RATE_TIERS, RateTier, TradingRateCounter
from krakenws.sandbox.engine.requests import OrderRequest, PriceSpec

__all__ = [
    "HOUSE",
    "RATE_TIERS",
    "SANDBOX_WS_PRICE_DECIMALS",
    "AddOrderResult",
    "AmendOrderResult",
    "Asset",
    "BookLevel",
    "BookLevelChanged",
    "CancelResult",
    "Contingent",
    "ContingentRejected",
    "DeadManSwitchFired",
    "DeadManSwitchResult",
    "EditOrderResult",
    "Engine",
    "EngineHistory",
    "Event",
    "IdSource",
    "Ledger",
    "LedgerEntry",
    "LedgerEntryAdded",
    "Markets",
    "OrderAmended",
    "OrderBook",
    "OrderCanceled",
    "OrderClosed",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderOpened",
    "OrderPlaced",
    "OrderRequest",
    "OrderTriggered",
    "OrderView",
    "Outcome",
    "PriceSpec",
    "PublicTrade",
    "RateTier",
    "SeededIds",
    "TradeExecuted",
    "TradeView",
    "TradingRateCounter",
    "format_time",
]
