"""The one exception tree of krakenws, and the map from Kraken's error strings to it.

Everything krakenws raises on purpose derives from :class:`KrakenError`::

    KrakenError
    ├── UsageError (ValueError)            the caller asked for something impossible
    │   └── UnknownPairError               a pair name no registry knows
    ├── ProtocolError (ValueError)         bytes on the wire that are not Kraken v1
    ├── BookError                          a local book stopped agreeing with Kraken's
    │   ├── ChecksumMismatchError          CRC32 of the top 10 differs (pair, expected, computed)
    │   └── CrossedBookError               best bid >= best ask after a whole message
    ├── SequenceGapError                   openOrders/ownTrades sequence numbers skipped
    ├── SlowConsumerError                  a stream's reader fell too far behind; it closed
    ├── ExchangeError                      Kraken's error string (kept in .kraken_error)
    │   ├── GeneralError      EGeneral:*   InvalidArgumentsError, PermissionDeniedError, ...
    │   ├── APIError          EAPI:*       InvalidKeyError, InvalidSignatureError, ...
    │   ├── SessionError      ESession:*   InvalidSessionError
    │   ├── ServiceError      EService:*   ServiceUnavailableError, MarketStateError, ...
    │   ├── QueryError        EQuery:*     UnknownAssetPairError
    │   ├── OrderError        EOrder:*     InsufficientFundsError, OrderMinimumNotMetError, ...
    │   ├── AccountError      EAccount:*, EAuth:*, ETrade:*
    │   └── SubscriptionError              WebSocket subscribe/request errorMessage texts (spec 2.4)
    └── TransportError                     the connection itself failed
        ├── ConnectionClosedError
        └── KrakenTimeoutError (TimeoutError)

:func:`error_from_kraken` turns any string Kraken sends (``"EOrder:Insufficient funds"``,
``"EGeneral:Invalid arguments:timeinforce"``, ``"Currency pair not supported XBT/FOO"``) into the
most specific class above, keeping the original string untouched::

    >>> err = error_from_kraken("EGeneral:Invalid arguments:volume")
    >>> type(err).__name__, err.kraken_error, err.detail
    ('InvalidArgumentsError', 'EGeneral:Invalid arguments:volume', 'volume')
    >>> isinstance(error_from_kraken("EOrder:Insufficient funds"), OrderError)
    True

This module imports nothing from the rest of krakenws.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AccountError",
    "BookError",
    "BusyError",
    "ChecksumMismatchError",
    "ConnectionClosedError",
    "CostMinimumNotMetError",
    "CrossedBookError",
    "DeadlineElapsedError",
    "ExchangeError",
    "GeneralError",
    "InsufficientFundsError",
    "InternalError",
    "InvalidArgumentsError",
    "InvalidKeyError",
    "InvalidNonceError",
    "InvalidSessionError",
    "InvalidSignatureError",
    "KrakenError",
    "KrakenTimeoutError",
    "MarketStateError",
    "MessageRateError",
    "OrderError",
    "OrderMinimumNotMetError",
    "OrderRateLimitError",
    "OrdersLimitExceededError",
    "PermissionDeniedError",
    "ProtocolError",
    "QueryError",
    "RateLimitError",
    "RestRateLimitError",
    "SequenceGapError",
    "ServiceError",
    "ServiceUnavailableError",
    "SessionError",
    "SlowConsumerError",
    "SubscriptionError",
    "ThrottledError",
    "TickSizeError",
    "TransportError",
    "UnknownAssetPairError",
    "UnknownMethodError",
    "UnknownOrderError",
    "UnknownPairError",
    "UsageError",
    "error_from_kraken",
]


class KrakenError(Exception):
    """Root of everything krakenws raises on purpose."""


# --- the caller's side -------------------------------------------------------------------------


class UsageError(KrakenError, ValueError):
    """The caller asked for something that cannot be done (bad argument, unknown option)."""


class UnknownPairError(UsageError, KeyError):
    """A pair name that no spelling rule maps to a known pair."""

    def __init__(self, name: str, hint: str = "") -> None:
        self.name = name
        message = f"unknown pair {name!r}"
        super().__init__(f"{message}; {hint}" if hint else message)

    def __str__(self) -> str:  # KeyError would quote the whole message again
        return str(self.args[0])


# --- the wire ----------------------------------------------------------------------------------


class ProtocolError(KrakenError, ValueError):
    """Text that is not a well-formed Kraken v1 message; the message says what was wrong."""


class BookError(KrakenError):
    """A local order book no longer matches the exchange's; resubscribe to rebuild it."""

    def __init__(self, message: str, *, pair: str) -> None:
        super().__init__(message)
        self.pair = pair


class ChecksumMismatchError(BookError):
    """The CRC32 of the top 10 levels differs from the ``"c"`` Kraken sent."""

    def __init__(self, pair: str, expected: int, computed: int) -> None:
        super().__init__(
            f"{pair}: book checksum mismatch: expected {expected}, computed {computed}", pair=pair
        )
        self.expected = expected
        self.computed = computed


class CrossedBookError(BookError):
    """After a whole message the best bid is at or above the best ask."""

    def __init__(self, pair: str, best_bid: str, best_ask: str) -> None:
        super().__init__(
            f"{pair}: crossed book: best bid {best_bid} >= best ask {best_ask}", pair=pair
        )
        self.best_bid = best_bid
        self.best_ask = best_ask


class SequenceGapError(KrakenError):
    """A private channel skipped sequence numbers: messages were lost."""

    def __init__(self, channel: str, expected: int, received: int) -> None:
        super().__init__(f"{channel}: sequence gap: expected {expected}, received {received}")
        self.channel = channel
        self.expected = expected
        self.received = received


# --- what the exchange answered ----------------------------------------------------------------


class ExchangeError(KrakenError):
    """Kraken (or the sandbox) refused a request; ``kraken_error`` is its exact string.

    ``detail`` is whatever follows the known prefix, e.g. the field name in
    ``EGeneral:Invalid arguments:volume`` or the pair in ``Currency pair not supported XBT/FOO``.
    """

    def __init__(self, kraken_error: str, detail: str = "") -> None:
        super().__init__(kraken_error)
        self.kraken_error = kraken_error
        self.detail = detail


class GeneralError(ExchangeError):
    """``EGeneral:*``."""


class InvalidArgumentsError(GeneralError):
    """``EGeneral:Invalid arguments[:field]``."""


class PermissionDeniedError(GeneralError):
    """``EGeneral:Permission denied``: the API key lacks a permission."""


class InternalError(GeneralError):
    """``EGeneral:Internal error``."""


class UnknownMethodError(GeneralError):
    """``EGeneral:Unknown method``."""


class APIError(ExchangeError):
    """``EAPI:*``: authentication and REST call accounting."""


class InvalidKeyError(APIError):
    """``EAPI:Invalid key``."""


class InvalidSignatureError(APIError):
    """``EAPI:Invalid signature``."""


class InvalidNonceError(APIError):
    """``EAPI:Invalid nonce``."""


class RateLimitError(ExchangeError):
    """Any of Kraken's rate limits; the subclasses say which."""


class RestRateLimitError(RateLimitError, APIError):
    """``EAPI:Rate limit exceeded``: the REST call counter is full."""


class SessionError(ExchangeError):
    """``ESession:*``."""


class InvalidSessionError(SessionError):
    """``ESession:Invalid session``: the WebSocket token is unknown or expired."""


class ServiceError(ExchangeError):
    """``EService:*``: the exchange cannot serve the request now."""


class ServiceUnavailableError(ServiceError):
    """``EService:Unavailable``."""


class BusyError(ServiceError):
    """``EService:Busy``."""


class MarketStateError(ServiceError):
    """``EService:Market in cancel_only|post_only|limit_only mode``."""


class DeadlineElapsedError(ServiceError):
    """``EService:Deadline elapsed``."""


class ThrottledError(RateLimitError, ServiceError):
    """``EService: Throttled: <unix time>``: too many concurrent REST requests."""


class QueryError(ExchangeError):
    """``EQuery:*``."""


class UnknownAssetPairError(QueryError):
    """``EQuery:Unknown asset pair``."""


class OrderError(ExchangeError):
    """``EOrder:*``: the order itself was refused."""


class OrderMinimumNotMetError(OrderError):
    """``EOrder:Order minimum not met``."""


class CostMinimumNotMetError(OrderError):
    """``EOrder:Cost minimum not met``."""


class TickSizeError(OrderError):
    """``EOrder:Tick size check failed``."""


class InsufficientFundsError(OrderError):
    """``EOrder:Insufficient funds``."""


class UnknownOrderError(OrderError):
    """``EOrder:Unknown order``."""


class OrdersLimitExceededError(OrderError):
    """``EOrder:Orders limit exceeded`` (and the scheduled-orders variant)."""


class OrderRateLimitError(RateLimitError, OrderError):
    """``EOrder:Rate limit exceeded``: the per-pair trading counter is full."""


class AccountError(ExchangeError):
    """``EAccount:*``, ``EAuth:*``, ``ETrade:*``."""


class SubscriptionError(ExchangeError):
    """A WebSocket ``errorMessage`` without an ``E...:`` prefix (spec 2.4)."""


class MessageRateError(RateLimitError, SubscriptionError):
    """``Exceeded msg rate``: too many WebSocket messages on one connection."""


class SlowConsumerError(KrakenError):
    """A stream held more unread events than its limit; it was closed rather than lose some."""


# --- transport ---------------------------------------------------------------------------------


class TransportError(KrakenError):
    """The connection failed: refused, reset, closed, or timed out."""


class ConnectionClosedError(TransportError):
    """The connection (WebSocket or HTTP) closed while a request was outstanding."""


class KrakenTimeoutError(TransportError, TimeoutError):
    """A request got no answer within its deadline."""


# --- the string map ----------------------------------------------------------------------------

# Exact strings first; then prefixes, longest first, so "EGeneral:Invalid arguments:volume"
# finds the arguments class and keeps "volume" as detail.
_EXACT: dict[str, type[ExchangeError]] = {
    "EGeneral:Permission denied": PermissionDeniedError,
    "EGeneral:Unknown method": UnknownMethodError,
    "EAPI:Invalid key": InvalidKeyError,
    "EAPI:Invalid signature": InvalidSignatureError,
    "EAPI:Invalid nonce": InvalidNonceError,
    "EAPI:Rate limit exceeded": RestRateLimitError,
    "ESession:Invalid session": InvalidSessionError,
    "EService:Unavailable": ServiceUnavailableError,
    "EService:Busy": BusyError,
    "EService:Deadline elapsed": DeadlineElapsedError,
    "EQuery:Unknown asset pair": UnknownAssetPairError,
    "EOrder:Order minimum not met": OrderMinimumNotMetError,
    "EOrder:Cost minimum not met": CostMinimumNotMetError,
    "EOrder:Tick size check failed": TickSizeError,
    "EOrder:Insufficient funds": InsufficientFundsError,
    "EOrder:Unknown order": UnknownOrderError,
    "EOrder:Orders limit exceeded": OrdersLimitExceededError,
    "EOrder:Scheduled orders limit exceeded": OrdersLimitExceededError,
    "EOrder:Rate limit exceeded": OrderRateLimitError,
    "Exceeded msg rate": MessageRateError,
}

_PREFIXES: list[tuple[str, type[ExchangeError]]] = sorted(
    [
        ("EGeneral:Invalid arguments", InvalidArgumentsError),
        ("EGeneral:Internal error", InternalError),
        ("EService:Market in ", MarketStateError),
        ("EService: Throttled", ThrottledError),
        ("EService:Throttled", ThrottledError),
        ("EGeneral:", GeneralError),
        ("EAPI:", APIError),
        ("ESession:", SessionError),
        ("EService:", ServiceError),
        ("EQuery:", QueryError),
        ("EOrder:", OrderError),
        ("EAccount:", AccountError),
        ("EAuth:", AccountError),
        ("ETrade:", AccountError),
    ],
    key=lambda item: -len(item[0]),
)


def error_from_kraken(message: str) -> ExchangeError:
    """The most specific :class:`ExchangeError` for one of Kraken's error strings.

    The original string is kept verbatim in ``kraken_error`` (and is the exception's text);
    ``detail`` holds the part after a known prefix, without separating colons or spaces.
    Anything unrecognised still comes back as an :class:`ExchangeError` (or a
    :class:`SubscriptionError` for the WebSocket texts without an ``E...:`` category).

    >>> error_from_kraken("EService: Throttled: 1700000000").detail
    '1700000000'
    >>> type(error_from_kraken("Subscription depth not supported")).__name__
    'SubscriptionError'
    """
    exact = _EXACT.get(message)
    if exact is not None:
        return exact(message)
    for prefix, cls in _PREFIXES:
        if message.startswith(prefix):
            return cls(message, message[len(prefix) :].lstrip(": "))
    if message.startswith("E") and ":" in message.split(" ", 1)[0]:
        return ExchangeError(message, message.split(":", 1)[1])
    for prefix in ("Currency pair not supported ", "Currency pair not in ISO 4217-A3 format "):
        if message.startswith(prefix):
            return SubscriptionError(message, message[len(prefix) :])
    return SubscriptionError(message)
