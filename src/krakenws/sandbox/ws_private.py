"""The sandbox's private WebSocket v1 side: openOrders, ownTrades and the trading requests.

:class:`PrivateFeeds` owns, for every connection (an :class:`Outbox`), its private
subscriptions and their sequence counters; it listens to the exchange's committed events and
fans them out to the connections subscribed for the event's account (spec 5), and it answers
the trading requests ``addOrder``, ``editOrder``, ``amendOrder``, ``cancelOrder``,
``cancelAll`` and ``cancelAllOrdersAfter`` (spec 6) with Kraken's status messages and error
strings. It does no I/O and knows nothing of sockets or tokens: ``ws_api.py`` authenticates,
validates subscribe requests, and hands over decoded JSON objects; every frame produced here is
a plain ``dict``/``list`` that the caller encodes with msgspec.

Wire formatting choices (spec 9.2; where Kraken documents nothing, chosen here):

* Prices (``descr.price``, ``price2``, ``avg_price``, ``stopprice``, ``limitprice``, ownTrades
  ``price``) at the pair's v1 wire decimals (``Pair.ws_price_decimals``, ``pair_decimals`` if
  unknown), half-even rounded (only averages ever need it).
* Volumes at 8 decimals; times ``"sec.µs"``.
* ``cost`` and ``fee`` at ``max(wire price decimals, asset decimals)`` of the asset they are in
  (the quote asset, the base asset for ``viqc`` costs and ``fcib`` fees). For fiat-quoted pairs
  this gives the 5 decimals of real captures (``"19.67680"``) and never rounds money.
* ``ratecount`` (openOrders with ``ratecounter``) is the account's counter on the order's pair
  at the event's time, floored to an integer, sent as a string (or an int with
  ``ratecount_as_string=False``); ``maxratecount`` is the tier threshold.
* One openOrders frame per order event and one ownTrades frame per (consolidated) trade, in
  event order, emitted as the exchange commits; so the openOrders/ownTrades frames caused by a
  trading request reach the client *before* its status message.
* openOrders updates: placed -> full object (``pending``); opened -> ``{status, userref}``;
  filled -> ``{vol_exec, cost, fee, avg_price, userref}``; closed/canceled/expired ->
  ``{lastupdated, status, vol_exec, cost, fee, avg_price, userref[, cancel_reason]}``;
  triggered -> ``{lastupdated, misc, stopprice, limitprice, userref}`` and amended ->
  ``{lastupdated, amended, vol, descr, limitprice, userref}`` (sandbox shapes, spec silent).
* ``consolidate_taker`` merges the taker fills one order got at one moment (one command) into
  one entry: the first fill's id and time, summed ``vol``/``cost``/``fee``, volume-weighted
  ``price``. The snapshot (last 50 trades, newest first) is consolidated the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol

import msgspec

from krakenws.errors import ExchangeError, KrakenError, UnknownPairError, error_from_kraken
from krakenws.pairs import Pair
from krakenws.sandbox.engine.events import (
    Event,
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
    TradeExecuted,
    TradeView,
    format_time,
)
from krakenws.sandbox.engine.requests import OrderRequest, invalid
from krakenws.sandbox.exchange import Exchange
from krakenws.sandbox.rest_api import deadline_error, rfc3339

__all__ = ["OPEN_ORDERS", "OWN_TRADES", "POSTXID", "Outbox", "PrivateFeeds"]

_log = logging.getLogger(__name__)

OPEN_ORDERS = "openOrders"
OWN_TRADES = "ownTrades"
POSTXID = "TKH2SE-M7IF5-CFI7LT"
"""The position id every real spot ownTrades entry carries (spec 5.4)."""

_SNAPSHOT_TRADES = 50
_VOLUME_PLACES = 8
_FLAG_TEXTS: Mapping[object, bool] = {"true": True, "True": True, "false": False, "False": False}
_FINAL = (OrderClosed, OrderCanceled, OrderExpired)


class Outbox(Protocol):
    """One client connection, as far as this module is concerned."""

    def send_json(self, payload: Any) -> None:
        """Queue one frame (a dict or list) to the client; the caller encodes it."""


@dataclass(slots=True, eq=False)
class _Subscription:
    outbox: Outbox
    account: str
    channel: str
    ratecounter: bool = False
    consolidate_taker: bool = True
    sequence: int = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


# --- number formatting -------------------------------------------------------------------------


_QUANTA: dict[int, Decimal] = {}


def _quantum(places: int) -> Decimal:
    """``10**-places`` (one Decimal per ``places``)."""
    quantum = _QUANTA.get(places)
    if quantum is None:
        quantum = _QUANTA[places] = Decimal(1).scaleb(-places)
    return quantum


def _fixed(value: Decimal, places: int) -> str:
    """``value`` with exactly ``places`` decimals, half-even rounded."""
    return f"{value.quantize(_quantum(places), rounding=ROUND_HALF_EVEN):f}"


def _at(value: Decimal, quantum: Decimal) -> str:
    """``value`` at ``quantum`` (from :func:`_quantum`), half-even rounded: :func:`_fixed`."""
    return f"{value.quantize(quantum, rounding=ROUND_HALF_EVEN):f}"


def _price_places(pair: Pair) -> int:
    return pair.ws_price_decimals if pair.ws_price_decimals is not None else pair.pair_decimals


_VOLUME_QUANTUM = _quantum(_VOLUME_PLACES)


def _volume(value: Decimal) -> str:
    return _at(value, _VOLUME_QUANTUM)


# --- request field readers ---------------------------------------------------------------------


def _string(request: Mapping[str, Any], name: str) -> str | None:
    """A text field: absent/null -> None; anything but a string -> invalid arguments."""
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(name)
    return value


def _number(request: Mapping[str, Any], name: str) -> str | None:
    """A numeric field sent as text (Kraken's way) or a JSON integer; floats are refused."""
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(name)
    return str(value)


def _flag(request: Mapping[str, Any], name: str) -> bool | None:
    """A boolean field: JSON true/false or ``"true"``/``"True"``/``"false"``/``"False"``."""
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _FLAG_TEXTS:
        return _FLAG_TEXTS[value]
    raise invalid(name)


def _id_list(request: Mapping[str, Any], name: str) -> list[str] | None:
    """``txid``/``cl_ord_id`` of cancelOrder: a non-empty array of strings (ints tolerated)."""
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise invalid(name)
    out: list[str] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int) or item == "":
            raise invalid(name)
        out.append(str(item))
    return out


# --- the feeds -----------------------------------------------------------------------------


class PrivateFeeds:
    """Private subscriptions and trading requests of every connection, over one exchange.

    Subscribes itself to the exchange's events on creation; :meth:`close` unsubscribes.
    """

    def __init__(self, exchange: Exchange, *, ratecount_as_string: bool = True) -> None:
        self.exchange = exchange
        self.ratecount_as_string = ratecount_as_string
        self._by_outbox: dict[int, dict[str, _Subscription]] = {}
        # Formatting per pair, computed once: pairs by key, their price quantum, and the
        # money quantum per (pair key, asset) (see _money).
        self._pairs: dict[str, Pair] = {}
        self._price_quanta: dict[str, Decimal] = {}
        self._money_quanta: dict[tuple[str, str], Decimal] = {}
        self._by_account: dict[str, list[_Subscription]] = {}
        self._unsubscribe: Callable[[], None] | None = exchange.subscribe(self._on_events)
        self._handlers: dict[
            str, tuple[str, str, Callable[[Outbox, str, Mapping[str, Any]], None]]
        ] = {
            "addOrder": ("create_orders", "addOrderStatus", self._add_order),
            "editOrder": ("create_orders", "editOrderStatus", self._edit_order),
            "amendOrder": ("create_orders", "amendOrderStatus", self._amend_order),
            "cancelOrder": ("cancel_orders", "cancelOrderStatus", self._cancel_order),
            "cancelAll": ("cancel_orders", "cancelAllStatus", self._cancel_all),
            "cancelAllOrdersAfter": (
                "cancel_orders",
                "cancelAllOrdersAfterStatus",
                self._cancel_all_orders_after,
            ),
        }

    def close(self) -> None:
        """Stop listening to the exchange and forget every subscription. Idempotent."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._by_outbox.clear()
        self._by_account.clear()

    # --- subscriptions ------------------------------------------------------------------------

    def is_subscribed(self, outbox: Outbox, channel: str) -> bool:
        """Whether ``outbox`` holds a ``channel`` (``openOrders``/``ownTrades``) subscription."""
        return channel in self._by_outbox.get(id(outbox), {})

    def subscribe_open_orders(
        self, outbox: Outbox, account: str, *, ratecounter: bool, reqid: int | None
    ) -> None:
        """Ack, then the snapshot of the account's open orders (newest first) at sequence 1.

        If ``outbox`` is already subscribed, answers ``Already subscribed`` and changes nothing.
        """
        subscription: dict[str, Any] = {"name": OPEN_ORDERS}
        if ratecounter:
            subscription["maxratecount"] = int(self.exchange.engine.tier.threshold)
        sub = self._add(outbox, account, OPEN_ORDERS, subscription, reqid, ratecounter=ratecounter)
        if sub is None:
            return
        orders = sorted(
            self.exchange.engine.open_orders(account), key=lambda o: o.opentm, reverse=True
        )
        self._frame(sub, [{order.txid: self._order_full(order)} for order in orders])

    def subscribe_own_trades(
        self,
        outbox: Outbox,
        account: str,
        *,
        snapshot: bool,
        consolidate_taker: bool,
        reqid: int | None,
    ) -> None:
        """Ack, then (``snapshot``) the last 50 trades, newest first, at sequence 1.

        With ``snapshot=False`` the first trade update carries sequence 1. If ``outbox`` is
        already subscribed, answers ``Already subscribed`` and changes nothing.
        """
        sub = self._add(
            outbox,
            account,
            OWN_TRADES,
            {"name": OWN_TRADES},
            reqid,
            consolidate_taker=consolidate_taker,
        )
        if sub is None or not snapshot:
            return
        trades = _consolidated(self.exchange.trades(account), consolidate_taker)
        newest = sorted(enumerate(trades), key=lambda item: (item[1].time, item[0]), reverse=True)
        entries = [
            {trade.trade_id: self._trade_json(trade, update=False)}
            for _, trade in newest[:_SNAPSHOT_TRADES]
        ]
        self._frame(sub, entries)

    def unsubscribe(self, outbox: Outbox, channel: str, reqid: int | None) -> bool:
        """Drop one private subscription and send the ``unsubscribed`` ack.

        Returns False, sending nothing, if it was not subscribed (the caller then answers
        ``Subscription Not Found``).
        """
        subs = self._by_outbox.get(id(outbox), {})
        sub = subs.pop(channel, None)
        if sub is None:
            return False
        if not subs:
            del self._by_outbox[id(outbox)]
        self._forget(sub)
        ack: dict[str, Any] = {
            "channelName": channel,
            "event": "subscriptionStatus",
            "status": "unsubscribed",
            "subscription": {"name": channel},
        }
        if reqid is not None:
            ack["reqid"] = reqid
        outbox.send_json(ack)
        return True

    def skip_sequence(self, channel: str | None = None) -> int:
        """Fault injection: lose the next message of every private subscription (of
        ``channel`` if given) by skipping its sequence number; returns how many."""
        count = 0
        for subscriptions in self._by_outbox.values():
            for sub in subscriptions.values():
                if channel is None or sub.channel == channel:
                    sub.sequence += 1
                    count += 1
        return count

    def drop(self, outbox: Outbox) -> None:
        """The connection closed: forget all its subscriptions (sends nothing)."""
        for sub in self._by_outbox.pop(id(outbox), {}).values():
            self._forget(sub)

    def _add(
        self,
        outbox: Outbox,
        account: str,
        channel: str,
        subscription: dict[str, Any],
        reqid: int | None,
        *,
        ratecounter: bool = False,
        consolidate_taker: bool = True,
    ) -> _Subscription | None:
        ack: dict[str, Any] = {"event": "subscriptionStatus", "subscription": subscription}
        if reqid is not None:
            ack["reqid"] = reqid
        subs = self._by_outbox.setdefault(id(outbox), {})
        if channel in subs:
            ack.update(status="error", errorMessage="Already subscribed")
            outbox.send_json(ack)
            return None
        sub = _Subscription(
            outbox, account, channel, ratecounter=ratecounter, consolidate_taker=consolidate_taker
        )
        subs[channel] = sub
        self._by_account.setdefault(account, []).append(sub)
        ack.update(channelName=channel, status="subscribed")
        outbox.send_json(ack)
        return sub

    def _forget(self, sub: _Subscription) -> None:
        subs = self._by_account.get(sub.account, [])
        if sub in subs:
            subs.remove(sub)
        if not subs:
            self._by_account.pop(sub.account, None)

    def _frame(self, sub: _Subscription, entries: list[dict[str, Any]]) -> None:
        sub.outbox.send_json([entries, sub.channel, {"sequence": sub.next_sequence()}])

    # --- fan-out ------------------------------------------------------------------------------

    def _on_events(self, events: list[Event]) -> None:
        """Exchange listener: one committed batch of events, in order."""
        orders: dict[str, list[OrderEvent]] = {}
        trades: dict[str, list[TradeView]] = {}
        for event in events:
            if isinstance(event, OrderEvent) and event.order.account in self._by_account:
                orders.setdefault(event.order.account, []).append(event)
            elif isinstance(event, TradeExecuted) and event.trade.account in self._by_account:
                trades.setdefault(event.trade.account, []).append(event.trade)
        for account in {*orders, *trades}:
            # The openOrders entries of this batch, built once for every subscription alike.
            entries: dict[bool, list[tuple[str, dict[str, Any] | None]]] = {}
            for sub in list(self._by_account.get(account, [])):
                try:
                    if sub.channel == OPEN_ORDERS:
                        built = entries.get(sub.ratecounter)
                        if built is None:
                            built = entries[sub.ratecounter] = [
                                (e.order.txid, self._order_update(e, sub.ratecounter))
                                for e in orders.get(account, [])
                            ]
                        for txid, entry in built:
                            if entry is not None:
                                self._frame(sub, [{txid: entry}])
                    else:
                        for trade in _consolidated(trades.get(account, []), sub.consolidate_taker):
                            self._frame(sub, [{trade.trade_id: self._trade_json(trade)}])
                except Exception:  # a dead connection must not stop the others
                    _log.exception("dropping private subscriptions of a failing outbox")
                    self.drop(sub.outbox)

    # --- order and trade objects --------------------------------------------------------------

    def _pair(self, key: str) -> Pair:
        pair = self._pairs.get(key)
        if pair is None:  # unknown names raise here (and are not remembered)
            pair = self._pairs[key] = self.exchange.engine.markets.pair(key)
        return pair

    def _price_quantum(self, pair: Pair) -> Decimal:
        quantum = self._price_quanta.get(pair.key)
        if quantum is None:
            quantum = self._price_quanta[pair.key] = _quantum(_price_places(pair))
        return quantum

    def _money_quantum(self, pair: Pair, asset: str) -> Decimal:
        key = (pair.key, asset)
        quantum = self._money_quanta.get(key)
        if quantum is None:
            places = max(_price_places(pair), self.exchange.engine.markets.asset(asset).decimals)
            quantum = self._money_quanta[key] = _quantum(places)
        return quantum

    def _money(self, pair: Pair, value: Decimal, asset: str) -> str:
        return _at(value, self._money_quantum(pair, asset))

    def _cost_asset(self, order: OrderView, pair: Pair) -> str:
        return pair.base if "viqc" in order.oflags else pair.quote

    def _descr(self, order: OrderView, pair: Pair) -> dict[str, Any]:
        quantum = self._price_quantum(pair)
        price, price2 = _at(order.price, quantum), _at(order.price2, quantum)
        text = f"{order.type} {_volume(order.vol)} {order.wsname} @ {order.ordertype} {price}"
        if order.ordertype.endswith("-limit"):
            text += f", limit {price2}"
        close = None
        if order.contingent is not None:
            close = f"close position @ {order.contingent.ordertype}"
            if order.contingent.price is not None:
                close += f" {order.contingent.price}"
            if order.contingent.price2 is not None:
                close += f", limit {order.contingent.price2}"
        return {
            "pair": order.wsname,
            "type": order.type,
            "ordertype": order.ordertype,
            "price": price,
            "price2": price2,
            "leverage": None,
            "order": text,
            "close": close,
        }

    def _progress(self, order: OrderView, pair: Pair) -> dict[str, Any]:
        return {
            "vol_exec": _volume(order.vol_exec),
            "cost": self._money(pair, order.cost, self._cost_asset(order, pair)),
            "fee": self._money(pair, order.fee, order.fee_asset),
            "avg_price": _at(order.avg_price, self._price_quantum(pair)),
        }

    def _order_full(self, order: OrderView) -> dict[str, Any]:
        """The full openOrders object (snapshots and new orders)."""
        pair = self._pair(order.pair)
        quantum = self._price_quantum(pair)
        entry: dict[str, Any] = {
            "refid": None,
            "userref": order.userref,
            "status": order.status,
            "opentm": format_time(order.opentm),
            "starttm": None if order.starttm is None else format_time(order.starttm),
            "expiretm": None if order.expiretm is None else format_time(order.expiretm),
            "descr": self._descr(order, pair),
            "vol": _volume(order.vol),
            **self._progress(order, pair),
            "stopprice": _at(order.stopprice, quantum),
            "limitprice": _at(order.limitprice, quantum),
            "misc": ",".join(order.misc),
            "oflags": ",".join(order.oflags),
            "timeinforce": order.timeinforce,
        }
        if order.cl_ord_id is not None:
            entry["cl_ord_id"] = order.cl_ord_id
        if order.contingent is not None:
            contingent = {"ordertype": order.contingent.ordertype}
            if order.contingent.price is not None:
                contingent["price"] = order.contingent.price
            if order.contingent.price2 is not None:
                contingent["price2"] = order.contingent.price2
            entry["contingent"] = contingent
        return entry

    def _order_update(self, event: OrderEvent, ratecounter: bool) -> dict[str, Any] | None:
        """The openOrders entry for one order event (None for events the channel ignores)."""
        order = event.order
        pair = self._pair(order.pair)
        entry: dict[str, Any]
        if isinstance(event, OrderPlaced):
            entry = self._order_full(order)
        elif isinstance(event, OrderOpened):
            entry = {"status": "open", "userref": order.userref}
        elif isinstance(event, OrderFilled):
            entry = {**self._progress(order, pair), "userref": order.userref}
        elif isinstance(event, _FINAL):
            entry = {
                "lastupdated": format_time(order.lastupdated),
                "status": order.status,
                **self._progress(order, pair),
                "userref": order.userref,
            }
            if order.cancel_reason is not None:
                entry["cancel_reason"] = order.cancel_reason
        elif isinstance(event, OrderTriggered):
            places = _price_places(pair)
            entry = {
                "lastupdated": format_time(order.lastupdated),
                "misc": ",".join(order.misc),
                "stopprice": _fixed(order.stopprice, places),
                "limitprice": _fixed(order.limitprice, places),
                "userref": order.userref,
            }
        elif isinstance(event, OrderAmended):
            entry = {
                "lastupdated": format_time(order.lastupdated),
                "amended": True,
                "vol": _volume(order.vol),
                "descr": self._descr(order, pair),
                "limitprice": _fixed(order.limitprice, _price_places(pair)),
                "userref": order.userref,
            }
        else:  # pragma: no cover - every OrderEvent subclass is handled above
            return None
        if ratecounter:
            count = self.exchange.engine.rate_count(order.account, order.pair, event.time)
            whole = int(count.to_integral_value(rounding=ROUND_FLOOR))
            entry["ratecount"] = str(whole) if self.ratecount_as_string else whole
        return entry

    def _trade_json(self, trade: TradeView, *, update: bool = True) -> dict[str, Any]:
        pair = self._pair(trade.pair)
        entry: dict[str, Any] = {
            "ordertxid": trade.ordertxid,
            "postxid": POSTXID,
            "pair": trade.wsname,
            "time": format_time(trade.time),
            "type": trade.type,
            "ordertype": trade.ordertype,
            "price": _fixed(trade.price, _price_places(pair)),
            "cost": self._money(pair, trade.cost, pair.quote),
            "fee": self._money(pair, trade.fee, trade.fee_asset),
            "vol": _volume(trade.vol),
            "margin": "0.00000",
        }
        if update:
            entry["userref"] = trade.userref
            if trade.cl_ord_id is not None:
                entry["cl_ord_id"] = trade.cl_ord_id
        return entry

    # --- trading ------------------------------------------------------------------------------

    def handle_trading(
        self,
        outbox: Outbox,
        account: str,
        request: dict[str, Any],
        *,
        permissions: frozenset[str],
    ) -> None:
        """Answer one trading request (its token already checked) with its status message(s).

        ``request["event"]`` must be one of ``addOrder``, ``editOrder``, ``amendOrder``,
        ``cancelOrder``, ``cancelAll``, ``cancelAllOrdersAfter`` (anything else raises
        ``KeyError``: the caller routes only these here). ``permissions`` are the API key's
        (``create_orders`` for add/edit/amend, ``cancel_orders`` for the cancels), else
        ``EGeneral:Permission denied``.
        """
        permission, status_event, handler = self._handlers[request["event"]]
        try:
            if permission not in permissions:
                raise error_from_kraken("EGeneral:Permission denied")
            error = deadline_error(request.get("deadline"), self.exchange.now())
            if error is not None:
                raise error_from_kraken(error)
            handler(outbox, account, request)
        except ExchangeError as failure:
            outbox.send_json(self._error(status_event, request, failure.kraken_error))
        except UnknownPairError:
            outbox.send_json(self._error(status_event, request, "EQuery:Unknown asset pair"))
        except KrakenError:
            outbox.send_json(self._error(status_event, request, "EGeneral:Invalid arguments"))

    @staticmethod
    def _status(event: str, request: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
        reply: dict[str, Any] = {"event": event, "status": "ok", **fields}
        if "reqid" in request:
            reply["reqid"] = request["reqid"]
        return reply

    @staticmethod
    def _error(event: str, request: Mapping[str, Any], message: str) -> dict[str, Any]:
        reply: dict[str, Any] = {"errorMessage": message, "event": event, "status": "error"}
        if "reqid" in request:
            reply["reqid"] = request["reqid"]
        if isinstance(request.get("pair"), str):  # a client decodes it as a pair name
            reply["pair"] = request["pair"]
        return reply

    def _add_order(self, outbox: Outbox, account: str, request: Mapping[str, Any]) -> None:
        for name in ("ordertype", "type", "pair", "volume"):
            if request.get(name) in (None, ""):
                raise invalid(name)
        pair, kind, ordertype = (_string(request, n) for n in ("pair", "type", "ordertype"))
        assert pair is not None and kind is not None and ordertype is not None
        order = OrderRequest(
            pair=pair,
            type=kind,
            ordertype=ordertype,
            volume=_number(request, "volume"),
            price=_number(request, "price"),
            price2=_number(request, "price2"),
            oflags=_string(request, "oflags"),
            timeinforce=_string(request, "timeinforce"),
            starttm=_number(request, "starttm"),
            expiretm=_number(request, "expiretm"),
            userref=_number(request, "userref"),
            cl_ord_id=_string(request, "cl_ord_id"),
            stp_type=_string(request, "stp_type"),
            leverage=_number(request, "leverage"),
            margin=_flag(request, "margin"),
            reduce_only=_flag(request, "reduce_only"),
            close_ordertype=_string(request, "close[ordertype]"),
            close_price=_number(request, "close[price]"),
            close_price2=_number(request, "close[price2]"),
            validate=_flag(request, "validate"),
        )
        result = self.exchange.add_order(account, order)
        fields: dict[str, Any] = {"descr": result.descr}
        if result.txid is not None:
            fields["txid"] = result.txid
        if order.cl_ord_id is not None:
            fields["cl_ord_id"] = order.cl_ord_id
        outbox.send_json(self._status("addOrderStatus", request, **fields))

    def _edit_order(self, outbox: Outbox, account: str, request: Mapping[str, Any]) -> None:
        orderid = _number(request, "orderid")
        if not orderid:
            raise invalid("orderid")
        pair = _string(request, "pair")
        if not pair:
            raise invalid("pair")
        result = self.exchange.edit_order(
            account,
            orderid,
            pair,
            volume=_number(request, "volume"),
            price=_number(request, "price"),
            price2=_number(request, "price2"),
            oflags=_string(request, "oflags"),
            newuserref=_number(request, "newuserref"),
            validate=_flag(request, "validate"),
        )
        fields: dict[str, Any] = {"descr": result.descr, "originaltxid": result.originaltxid}
        if result.txid is not None:
            fields["txid"] = result.txid
        outbox.send_json(self._status("editOrderStatus", request, **fields))

    def _amend_order(self, outbox: Outbox, account: str, request: Mapping[str, Any]) -> None:
        txid, cl_ord_id = _string(request, "txid"), _string(request, "cl_ord_id")
        if (txid is None) == (cl_ord_id is None):
            raise invalid("txid")
        pair = _string(request, "pair")
        if pair is not None:
            self._pair(pair)  # an unknown pair is refused even though the order names it
        result = self.exchange.amend_order(
            account,
            txid=txid,
            cl_ord_id=cl_ord_id,
            volume=_number(request, "volume"),
            limit_price=_number(request, "limit_price"),
            trigger_price=_number(request, "trigger_price"),
            post_only=_flag(request, "post_only"),
            display_volume=_number(request, "display_volume"),
        )
        fields: dict[str, Any] = {"amend_id": result.amend_id}
        if txid is not None:
            fields["txid"] = result.txid
        if cl_ord_id is not None:
            fields["cl_ord_id"] = cl_ord_id
        outbox.send_json(self._status("amendOrderStatus", request, **fields))

    def _cancel_order(self, outbox: Outbox, account: str, request: Mapping[str, Any]) -> None:
        txids, cl_ord_ids = _id_list(request, "txid"), _id_list(request, "cl_ord_id")
        if txids is None and cl_ord_ids is None:
            raise invalid("txid")
        refs = [(False, ref) for ref in txids or ()] + [(True, ref) for ref in cl_ord_ids or ()]
        for by_cl_ord_id, ref in refs:
            try:
                if by_cl_ord_id:
                    count = self.exchange.cancel_by_cl_ord_id(account, ref).count
                else:
                    count = self.exchange.cancel_order(account, ref).count
            except ExchangeError as failure:
                outbox.send_json(self._error("cancelOrderStatus", request, failure.kraken_error))
                continue
            for _ in range(count):
                outbox.send_json(self._status("cancelOrderStatus", request))

    def _cancel_all(self, outbox: Outbox, account: str, request: Mapping[str, Any]) -> None:
        count = self.exchange.cancel_all(account).count
        outbox.send_json(self._status("cancelAllStatus", request, count=count))

    def _cancel_all_orders_after(
        self, outbox: Outbox, account: str, request: Mapping[str, Any]
    ) -> None:
        timeout = _number(request, "timeout")
        if timeout is None:
            raise invalid("timeout")
        result = self.exchange.cancel_all_orders_after(account, timeout)
        trigger = "0" if result.trigger_time is None else rfc3339(result.trigger_time)
        outbox.send_json(
            self._status(
                "cancelAllOrdersAfterStatus",
                request,
                currentTime=rfc3339(result.current_time),
                triggerTime=trigger,
            )
        )


def _consolidated(trades: Iterable[TradeView], consolidate_taker: bool) -> list[TradeView]:
    """Trades as ownTrades shows them: with ``consolidate_taker``, the taker fills of one order
    at one time (one command) merged into the first (summed vol/cost/fee, weighted price)."""
    if not consolidate_taker:
        return list(trades)
    merged: dict[tuple[str, int] | str, TradeView] = {}
    for trade in trades:
        key: tuple[str, int] | str = (
            trade.trade_id if trade.maker else (trade.ordertxid, trade.time)
        )
        first = merged.get(key)
        if first is None:
            merged[key] = trade
            continue
        vol = first.vol + trade.vol
        weighted = first.price * first.vol + trade.price * trade.vol
        merged[key] = _replace(
            first,
            vol=vol,
            price=weighted / vol,
            cost=first.cost + trade.cost,
            fee=first.fee + trade.fee,
        )
    return list(merged.values())


def _replace(trade: TradeView, **changes: Any) -> TradeView:
    return msgspec.structs.replace(trade, **changes)
