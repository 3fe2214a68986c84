"""Kraken's request signing (API-Sign) and the nonce source that keeps a key's nonces increasing.

This module owns three things, all free of networking:

* :func:`api_sign` — the ``API-Sign`` header exactly as spec 7.1 defines it::

      message   = urlpath + SHA256(str(nonce) + body).digest()
      signature = base64(HMAC-SHA512(base64decode(secret), message))

  and :func:`verify_api_sign`, the constant-time check the sandbox uses on incoming requests;
* :func:`sign_request` — headers and body of one private REST call (form-encoded, or JSON);
* nonces (spec 7.2): Kraken wants them strictly increasing **per API key**, so every process
  using a key must draw from one counter. :func:`nonce_source` returns a
  :class:`SharedNonceSource` that coordinates through a tiny lock file per key, or, where no such
  file can be used, an in-process :class:`NonceSource`. Both apply one pure rule,
  :func:`next_nonce` (``max(now, last + 1)``), to an injectable clock that counts milliseconds,
  the unit of Kraken's own examples and of most other tools: a key's nonce can never go down, so
  a larger unit would lock every millisecond-based tool out of that key for good.

Kraken's published vector (docs "spot-rest-auth", spec 7.1):

>>> secret = (
...     "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
... )
>>> body = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
>>> api_sign("/0/private/AddOrder", 1616492376594, body, secret)
'4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=='

The same request built by :func:`sign_request` (parameters go after the nonce, in the order given):

>>> headers, body2 = sign_request(
...     "/0/private/AddOrder",
...     {"ordertype": "limit", "pair": "XBTUSD", "price": "37500", "type": "buy", "volume": "1.25"},
...     key="my-public-key", secret=secret, nonce=1616492376594,
... )
>>> body2 == body, headers["API-Sign"][:12]
(True, '4/dpxb3iT4tp')

A nonce source with a frozen clock still counts up:

>>> source = NonceSource(clock=lambda: 1_700_000_000_000_000)
>>> [source() for _ in range(3)]
[1700000000000000, 1700000000000001, 1700000000000002]

This module imports only the standard library and :mod:`krakenws.errors`; it never performs I/O
except on the nonce lock file.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import json
import logging
import os
import stat
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from krakenws.errors import UsageError

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows: only the in-process nonce source exists
    _fcntl = None  # type: ignore[assignment]

__all__ = [
    "MAX_NONCE",
    "Clock",
    "NonceSource",
    "SharedNonceSource",
    "api_sign",
    "clock_microseconds",
    "clock_milliseconds",
    "default_nonce_directory",
    "form_value",
    "next_nonce",
    "nonce_source",
    "sign_request",
    "verify_api_sign",
]

_log = logging.getLogger(__name__)

Clock = Callable[[], int]
"""A clock for nonces: returns an integer count (milliseconds by default) since the epoch."""

MAX_NONCE = 2**64 - 1
"""Kraken's nonce is an unsigned 64-bit integer (spec 7.2)."""


# --- API-Sign ----------------------------------------------------------------------------------


def _decode_secret(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret.strip():
        raise UsageError("API secret is empty; pass the base64 'Private key' Kraken showed")
    try:
        decoded = base64.b64decode(secret.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(
            "API secret is not valid base64; pass the 'Private key' exactly as Kraken showed it"
        ) from None
    if not decoded:
        raise UsageError("API secret decodes to no bytes; pass the base64 'Private key'")
    return decoded


def _check_urlpath(urlpath: str) -> None:
    if not isinstance(urlpath, str) or not urlpath.startswith("/"):
        raise UsageError(
            f"urlpath must be the path only, starting with '/', e.g. '/0/private/Balance'; "
            f"got {urlpath!r}"
        )


def api_sign(urlpath: str, nonce: int | str, body: str, secret: str) -> str:
    """The ``API-Sign`` header value for one private request (spec 7.1).

    ``urlpath`` is the path only (``/0/private/AddOrder``); ``body`` is exactly the text sent
    (form-encoded including ``nonce=``, or the JSON text); ``nonce`` is the same nonce that is
    inside ``body``. A ``secret`` that is not base64 raises :class:`~krakenws.errors.UsageError`.
    """
    _check_urlpath(urlpath)
    key = _decode_secret(secret)
    inner = hashlib.sha256((str(nonce) + body).encode("utf-8")).digest()
    mac = hmac.new(key, urlpath.encode("utf-8") + inner, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode("ascii")


def verify_api_sign(urlpath: str, nonce: int | str, body: str, secret: str, signature: str) -> bool:
    """Whether ``signature`` is the ``API-Sign`` of this request (constant-time comparison).

    The sandbox's side of :func:`api_sign`. A malformed ``secret`` still raises
    :class:`~krakenws.errors.UsageError` (that is the server's configuration, not the peer's);
    a malformed ``signature`` is simply not valid.
    """
    expected = api_sign(urlpath, nonce, body, secret)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))


# --- request bodies ----------------------------------------------------------------------------


def form_value(name: str, value: object) -> str | None:
    """One parameter as Kraken's form and query encodings want it; None means "leave the
    field out". Booleans are ``true``/``false``, Decimals plain, lists comma-separated;
    floats are refused (money travels as exact text)."""
    if value is None:
        return None
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, float):
        raise UsageError(
            f"parameter {name!r} is a float ({value!r}); pass a str, int or Decimal "
            "so the exact digits are sent"
        )
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise UsageError(f"parameter {name!r} is not a finite number: {value}")
        return format(value, "f")
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray | Mapping):
        # Kraken takes lists (txid, pair, ...) as comma-separated text.
        parts = [form_value(name, item) for item in value]
        return ",".join(part for part in parts if part is not None)
    raise UsageError(f"parameter {name!r} has unsupported type {type(value).__name__}")


def _json_value(name: str, value: object) -> object:
    if isinstance(value, float):
        raise UsageError(
            f"parameter {name!r} is a float ({value!r}); pass a str, int or Decimal "
            "so the exact digits are sent"
        )
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise UsageError(f"parameter {name!r} is not a finite number: {value}")
        return format(value, "f")  # Kraken takes decimals as strings
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(f"{name}.{k}", v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_json_value(name, item) for item in value]
    raise UsageError(f"parameter {name!r} has unsupported type {type(value).__name__}")


def sign_request(
    urlpath: str,
    params: Mapping[str, object],
    key: str,
    secret: str,
    nonce: int | str,
    *,
    json_body: bool = False,
) -> tuple[dict[str, str], str]:
    """Headers and body of one signed private REST request; pure (no clock, no HTTP).

    The body starts with ``nonce`` followed by ``params`` in their order. Form encoding (the
    default, ``application/x-www-form-urlencoded``) writes booleans as ``true``/``false``, lists
    as comma-separated values and Decimals in plain notation, and leaves out ``None`` values.
    With ``json_body=True`` the body is compact JSON (``nonce`` and Decimals as strings, ``None``
    kept as ``null``). Floats are refused: money travels as exact text.

    ``params`` must not contain ``nonce`` itself; pass it as ``nonce``.
    """
    _check_urlpath(urlpath)
    if "nonce" in params:
        raise UsageError("pass the nonce as the 'nonce' argument, not inside params")
    if not key:
        raise UsageError("API key is empty")
    nonce_text = str(nonce)
    if not nonce_text.isdigit() or not nonce_text.isascii() or int(nonce_text) > MAX_NONCE:
        raise UsageError(f"nonce must be an unsigned 64-bit integer, got {nonce!r}")
    if json_body:
        document: dict[str, object] = {"nonce": nonce_text}
        for name, value in params.items():
            document[name] = _json_value(name, value)
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        content_type = "application/json"
    else:
        fields = [("nonce", nonce_text)]
        for name, value in params.items():
            text = form_value(name, value)
            if text is not None:
                fields.append((name, text))
        body = urlencode(fields)
        content_type = "application/x-www-form-urlencoded; charset=utf-8"
    headers = {
        "API-Key": key,
        "API-Sign": api_sign(urlpath, nonce_text, body, secret),
        "Content-Type": content_type,
    }
    return headers, body


# --- nonces ------------------------------------------------------------------------------------


def clock_microseconds() -> int:
    """Microseconds since the epoch, for keys used only by tools that count in microseconds."""
    return time.time_ns() // 1000


def clock_milliseconds() -> int:
    """Milliseconds since the epoch: the default nonce clock, the unit of Kraken's examples.

    Bursts faster than one call per millisecond simply run ahead of the clock (``last + 1``);
    the clock catches up afterwards.
    """
    return time.time_ns() // 1_000_000


def next_nonce(now: int, last: int) -> int:
    """The pure nonce rule: the clock reading, unless that would not exceed the last nonce.

    >>> next_nonce(now=1000, last=0), next_nonce(now=1000, last=1000), next_nonce(now=5, last=9)
    (1000, 1001, 10)
    """
    nonce = max(now, last + 1)
    if nonce > MAX_NONCE:
        raise UsageError(f"nonce {nonce} exceeds Kraken's unsigned 64-bit range")
    return nonce


class NonceSource:
    """Strictly increasing nonces within this process; thread-safe.

    Call the source to get the next nonce. This class alone does **not** coordinate with other
    processes using the same key; :func:`nonce_source` gives a :class:`SharedNonceSource` that
    does, and returns this class only where the shared lock file cannot be used.
    """

    shared = False
    """Whether nonces are coordinated with other processes using the same key."""

    def __init__(self, *, clock: Clock = clock_milliseconds, last: int = 0) -> None:
        self._clock = clock
        self._last = last
        self._lock = threading.Lock()
        _FORK_SAFE.add(self)

    @property
    def last(self) -> int:
        """The last nonce this source issued (0 before the first)."""
        return self._last

    def __call__(self) -> int:
        with self._lock:
            self._last = next_nonce(self._clock(), self._last)
            return self._last

    def _after_fork_in_child(self) -> None:
        # A lock held by another thread at fork time would stay held forever in the child.
        self._lock = threading.Lock()


_FORK_SAFE: weakref.WeakSet[NonceSource] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for source in list(_FORK_SAFE):
        source._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


def default_nonce_directory() -> Path:
    """Where the per-key nonce files live: a private per-user directory.

    ``$XDG_RUNTIME_DIR/krakenws`` where that is set (cleared at logout/reboot), otherwise
    ``<tempdir>/krakenws-<uid>``. The directory is created with mode 0700.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "krakenws"
    owner = str(os.getuid()) if hasattr(os, "getuid") else getpass.getuser()
    return Path(tempfile.gettempdir()) / f"krakenws-{owner}"


def _key_file_name(api_key: str) -> str:
    # The public key is not secret, but it still has no business in a world-visible file name.
    digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:32]
    return f"nonce-{digest}.lock"


def _private_directory(directory: Path) -> Path:
    """Create (0700) or check the directory; refuse one another user could tamper with."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{directory} is not a directory")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise OSError(f"{directory} belongs to another user")
    if info.st_mode & 0o022:
        raise OSError(f"{directory} is writable by other users")
    return directory


_RECORD = 21  # 20 digits hold any u64, plus a newline: fixed width so rewrites never leave tails


class SharedNonceSource(NonceSource):
    """Nonces strictly increasing across every process of this user that uses the same key.

    The last nonce issued for the key lives in a 21-byte file named by a hash of the key
    (never the key itself) in :func:`default_nonce_directory`. Each call takes an exclusive
    ``fcntl.flock`` on that file, reads the last nonce, issues ``max(now, last + 1)``, writes it
    back and releases the lock, so processes interleave but never repeat or go backwards.
    A thread lock serialises threads of one process (``flock`` belongs to the open file, which
    all threads share); after ``fork`` the child reopens the file to get a lock of its own.

    If the file becomes unusable while running (deleted directory, full disk), the source logs
    a warning once and continues in-process only, still strictly increasing.

    Raises :class:`OSError` when the file cannot be set up (or without ``fcntl``);
    :func:`nonce_source` turns that into the in-process fallback.
    """

    shared = True

    def __init__(
        self,
        api_key: str,
        *,
        directory: str | os.PathLike[str] | None = None,
        clock: Clock = clock_milliseconds,
    ) -> None:
        if _fcntl is None:
            raise OSError("file locking (fcntl) is not available on this platform")
        if not api_key:
            raise UsageError("API key is empty")
        base = Path(directory) if directory is not None else default_nonce_directory()
        self.path = _private_directory(base) / _key_file_name(api_key)
        self._fd = -1
        self._pid = -1
        super().__init__(clock=clock)
        self._open()

    def _open(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self.path, flags, 0o600)
        self._pid = os.getpid()

    def close(self) -> None:
        """Close the lock file; later calls continue in-process only."""
        with self._lock:
            self._close_fd()
            self.shared = False

    def _close_fd(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            finally:
                self._fd = -1

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0 and getattr(self, "_pid", -1) == os.getpid():
            os.close(self._fd)

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        # The inherited descriptor shares the parent's open file, hence its flock: reopen.
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            if self.shared:
                try:
                    self._open()
                except OSError as exc:
                    self._degrade(exc)

    def _degrade(self, exc: OSError) -> None:
        _log.warning(
            "nonce file %s unusable (%s); nonces are now coordinated within this process only",
            self.path,
            exc,
        )
        self._close_fd()
        self.shared = False

    def __call__(self) -> int:
        with self._lock:
            if self._fd >= 0 and self._pid != os.getpid():  # forked without the hook
                self._close_fd()
                try:
                    self._open()
                except OSError as exc:
                    self._degrade(exc)
            if self._fd < 0:
                self._last = next_nonce(self._clock(), self._last)
                return self._last
            try:
                self._last = self._next_shared()
            except OSError as exc:
                self._degrade(exc)
                self._last = next_nonce(self._clock(), self._last)
            return self._last

    def _next_shared(self) -> int:
        assert _fcntl is not None  # checked in __init__
        _fcntl.flock(self._fd, _fcntl.LOCK_EX)
        if os.fstat(self._fd).st_nlink == 0:
            # Someone deleted the file (tmp cleaner, logout): others now lock a new one.
            _fcntl.flock(self._fd, _fcntl.LOCK_UN)
            self._close_fd()
            self._open()
            _fcntl.flock(self._fd, _fcntl.LOCK_EX)
        try:
            data = os.pread(self._fd, _RECORD + 1, 0)
            nonce = next_nonce(self._clock(), max(_parse_record(data), self._last))
            record = f"{nonce:020d}\n".encode("ascii")
            if os.pwrite(self._fd, record, 0) != len(record):
                raise OSError("short write to the nonce file")
            if len(data) > _RECORD:  # a foreign longer content: drop its tail
                os.ftruncate(self._fd, _RECORD)
            return nonce
        finally:
            _fcntl.flock(self._fd, _fcntl.LOCK_UN)


def _parse_record(data: bytes) -> int:
    """The last nonce in a lock file; 0 for an empty, foreign or corrupt file."""
    text = data.split(b"\n", 1)[0].strip()
    if not text.isdigit() or len(data) > _RECORD:
        return 0
    value = int(text)
    return value if value <= MAX_NONCE else 0


def nonce_source(
    api_key: str,
    *,
    directory: str | os.PathLike[str] | None = None,
    clock: Clock = clock_milliseconds,
    shared: bool = True,
) -> NonceSource:
    """The nonce source to use for one API key.

    By default a :class:`SharedNonceSource` (processes of this user that use the same key share
    one counter). Where that cannot work (no ``fcntl``, e.g. Windows; an unwritable or foreign
    directory) it logs a warning and returns an in-process :class:`NonceSource`, which is still
    strictly increasing within the process but may collide with other processes on the key;
    check ``source.shared``. ``shared=False`` asks for the in-process source directly.
    """
    if not api_key:
        raise UsageError("API key is empty")
    if shared:
        try:
            return SharedNonceSource(api_key, directory=directory, clock=clock)
        except OSError as exc:
            _log.warning(
                "cannot share nonces between processes (%s); using an in-process nonce source",
                exc,
            )
    return NonceSource(clock=clock)
