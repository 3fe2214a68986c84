"""Kraken's error strings map to the exception tree and keep the original text."""

from __future__ import annotations

import pytest

from krakenws import errors
from krakenws.errors import (
    APIError,
    ExchangeError,
    KrakenError,
    KrakenTimeoutError,
    RateLimitError,
    error_from_kraken,
)

CASES = [
    ("EGeneral:Invalid arguments", errors.InvalidArgumentsError, ""),
    ("EGeneral:Invalid arguments:timeinforce", errors.InvalidArgumentsError, "timeinforce"),
    (
        "EGeneral:Invalid arguments:Index unavailable",
        errors.InvalidArgumentsError,
        "Index unavailable",
    ),
    ("EGeneral:Permission denied", errors.PermissionDeniedError, ""),
    ("EGeneral:Temporary lockout", errors.GeneralError, "Temporary lockout"),
    ("EGeneral:Internal error", errors.InternalError, ""),
    ("EGeneral:Internal error:12", errors.InternalError, "12"),
    ("EGeneral:Unknown method", errors.UnknownMethodError, ""),
    ("EAPI:Invalid key", errors.InvalidKeyError, ""),
    ("EAPI:Invalid signature", errors.InvalidSignatureError, ""),
    ("EAPI:Invalid nonce", errors.InvalidNonceError, ""),
    ("EAPI:Rate limit exceeded", errors.RestRateLimitError, ""),
    ("EAPI:Bad request", errors.APIError, "Bad request"),
    ("EAPI:Feature disabled", errors.APIError, "Feature disabled"),
    ("ESession:Invalid session", errors.InvalidSessionError, ""),
    ("EService:Unavailable", errors.ServiceUnavailableError, ""),
    ("EService:Busy", errors.BusyError, ""),
    ("EService:Market in cancel_only mode", errors.MarketStateError, "cancel_only mode"),
    ("EService:Market in post_only mode", errors.MarketStateError, "post_only mode"),
    ("EService:Market in limit_only mode", errors.MarketStateError, "limit_only mode"),
    ("EService:Deadline elapsed", errors.DeadlineElapsedError, ""),
    ("EService: Throttled: 1700000000", errors.ThrottledError, "1700000000"),
    ("EQuery:Unknown asset pair", errors.UnknownAssetPairError, ""),
    ("EOrder:Order minimum not met", errors.OrderMinimumNotMetError, ""),
    ("EOrder:Cost minimum not met", errors.CostMinimumNotMetError, ""),
    ("EOrder:Tick size check failed", errors.TickSizeError, ""),
    ("EOrder:Insufficient funds", errors.InsufficientFundsError, ""),
    ("EOrder:Insufficient margin", errors.OrderError, "Insufficient margin"),
    ("EOrder:Rate limit exceeded", errors.OrderRateLimitError, ""),
    ("EOrder:Domain rate limit exceeded", errors.OrderError, "Domain rate limit exceeded"),
    ("EOrder:Orders limit exceeded", errors.OrdersLimitExceededError, ""),
    ("EOrder:Scheduled orders limit exceeded", errors.OrdersLimitExceededError, ""),
    ("EOrder:Unknown order", errors.UnknownOrderError, ""),
    ("EOrder:Reduce only:Non-PC", errors.OrderError, "Reduce only:Non-PC"),
    ("EAccount:Invalid permissions", errors.AccountError, "Invalid permissions"),
    ("EAuth:Account temporary disabled", errors.AccountError, "Account temporary disabled"),
    ("ETrade:Locked", errors.AccountError, "Locked"),
    ("EFoo:Something new", errors.ExchangeError, "Something new"),
    ("Currency pair not supported LSK/XBT", errors.SubscriptionError, "LSK/XBT"),
    ("Currency pair not in ISO 4217-A3 format XBTUSDT", errors.SubscriptionError, "XBTUSDT"),
    ("Subscription depth not supported", errors.SubscriptionError, ""),
    ("Subscription Not Found", errors.SubscriptionError, ""),
    ("Exceeded msg rate", errors.MessageRateError, ""),
    ("Malformed request", errors.SubscriptionError, ""),
]


@pytest.mark.parametrize(("text", "cls", "detail"), CASES)
def test_error_strings_map_to_classes(text: str, cls: type[ExchangeError], detail: str) -> None:
    error = error_from_kraken(text)
    assert type(error) is cls
    assert error.kraken_error == text
    assert str(error) == text
    assert error.detail == detail
    assert isinstance(error, KrakenError)


def test_rate_limits_share_a_base() -> None:
    for text in ("EAPI:Rate limit exceeded", "EOrder:Rate limit exceeded", "Exceeded msg rate"):
        assert isinstance(error_from_kraken(text), RateLimitError)
    assert isinstance(error_from_kraken("EAPI:Rate limit exceeded"), APIError)


def test_timeout_is_a_builtin_timeout() -> None:
    assert issubclass(KrakenTimeoutError, TimeoutError)
    assert issubclass(errors.ProtocolError, ValueError)


def test_every_public_error_derives_from_the_root() -> None:
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert issubclass(value, KrakenError), name


def test_book_errors_carry_their_facts() -> None:
    mismatch = errors.ChecksumMismatchError("XBT/USD", 1, 2)
    assert (mismatch.pair, mismatch.expected, mismatch.computed) == ("XBT/USD", 1, 2)
    gap = errors.SequenceGapError("openOrders", 3, 5)
    assert (gap.channel, gap.expected, gap.received) == ("openOrders", 3, 5)
    unknown = errors.UnknownPairError("FOO/BAR", "did you mean XBT/USD?")
    assert str(unknown) == "unknown pair 'FOO/BAR'; did you mean XBT/USD?"
