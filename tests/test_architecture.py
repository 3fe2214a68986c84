"""Import rules of the architecture, and the pinned public API."""

from __future__ import annotations

import ast
from pathlib import Path

import krakenws

SRC = Path(krakenws.__file__).resolve().parent

# protocol/ is sans-I/O: no sockets, no event loop, no HTTP, no clocks, no threads.
FORBIDDEN_IN_PROTOCOL = {
    "asyncio",
    "aiohttp",
    "socket",
    "ssl",
    "selectors",
    "threading",
    "time",
    "datetime",
    "websockets",
    "http",
    "urllib",
    "krakenws.sandbox",
    "krakenws.client",
    "krakenws.rest",
    "krakenws.cli",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _matches(name: str, forbidden: set[str]) -> str | None:
    for banned in forbidden:
        if name == banned or name.startswith(banned + "."):
            return banned
    return None


def test_protocol_is_sans_io() -> None:
    offenders = []
    for path in sorted((SRC / "protocol").rglob("*.py")):
        for name in _imports(path):
            if _matches(name, FORBIDDEN_IN_PROTOCOL):
                offenders.append(f"{path.relative_to(SRC)} imports {name}")
            elif name.split(".")[0] not in {"krakenws", "msgspec", "__future__"} and (
                name.split(".")[0] not in _STDLIB
            ):
                offenders.append(f"{path.relative_to(SRC)} imports third-party {name}")
    assert offenders == []


def test_client_side_never_imports_the_sandbox() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] in {"sandbox", "cli"} or relative.name == "testing.py":
            continue
        for name in _imports(path):
            if name == "krakenws.sandbox" or name.startswith("krakenws.sandbox."):
                offenders.append(f"{relative} imports {name}")
    assert offenders == []


_STDLIB = {
    "abc", "base64", "binascii", "bisect", "collections", "dataclasses", "decimal", "enum",
    "functools", "hashlib", "hmac", "itertools", "json", "math", "operator", "re", "string",
    "typing", "zlib", "difflib", "types",
}  # fmt: skip


def test_public_api_is_pinned() -> None:
    assert sorted(krakenws.__all__) == [
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
    for name in krakenws.__all__:
        assert hasattr(krakenws, name), name
