"""krakenws: a Kraken WebSocket API v1 toolkit.

:class:`Client` is the entry point: an asyncio client of Kraken's public and private WebSocket
feeds, trading requests and REST API (:mod:`krakenws.client`, :mod:`krakenws.rest`). The
sans-I/O protocol core lives in :mod:`krakenws.protocol` (messages, codec, order book,
session state); request signing in :mod:`krakenws.auth`; pair metadata in :mod:`krakenws.pairs`;
the exception tree in :mod:`krakenws.errors`.

>>> from krakenws import OrderBook, decode_server
>>> book = OrderBook("XBT/USD", depth=10)
>>> book.apply(decode_server(
...     '[336,{"as":[["27120.00000","4.28732553","1693415327.935623"]],'
...     '"bs":[["27119.90000","13.54067548","1693415328.088361"]]},"book-10","XBT/USD"]'))
>>> book.spread()
Decimal('0.10000')
"""

from __future__ import annotations

from krakenws.auth import api_sign, nonce_source
from krakenws.client import Backoff, Client, ClientEvent, LiveBook, OrderHandle, Stream
from krakenws.errors import (
    ChecksumMismatchError,
    ExchangeError,
    KrakenError,
    KrakenTimeoutError,
    ProtocolError,
    TransportError,
    UsageError,
    error_from_kraken,
)
from krakenws.orders import OrderState
from krakenws.pairs import Pair, PairRegistry
from krakenws.protocol.book import Level, OrderBook
from krakenws.protocol.codec import decode_client, decode_server, encode_client, encode_server
from krakenws.rest import RestClient

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "ChecksumMismatchError",
    "Client",
    "ClientEvent",
    "ExchangeError",
    "KrakenError",
    "KrakenTimeoutError",
    "Level",
    "LiveBook",
    "OrderBook",
    "OrderHandle",
    "OrderState",
    "Pair",
    "PairRegistry",
    "ProtocolError",
    "RestClient",
    "Stream",
    "TransportError",
    "UsageError",
    "__version__",
    "api_sign",
    "decode_client",
    "decode_server",
    "encode_client",
    "encode_server",
    "error_from_kraken",
    "nonce_source",
]
