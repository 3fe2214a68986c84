"""Where the ``krakenws`` command finds the API key, secret and WebSocket token.

Looked up in this order; the first place that has a key pair provides both halves (a key from
one place and a secret from another is refused, it is almost always a mistake):

1. the flags ``--api-key``/``--api-secret`` and ``--token``;
2. the environment variables ``KRAKEN_API_KEY``/``KRAKEN_API_SECRET``;
3. a TOML config file, ``$KRAKENWS_CONFIG`` or else ``$XDG_CONFIG_HOME/krakenws/credentials``
   (``~/.config/krakenws/credentials``), with ``api_key`` and ``api_secret``. Like ssh with a
   private key, it is refused when group or others have any permission on it;
4. a ``WS_Token`` file in the working directory (Kraken's reference script), token only.

A token given by ``--token`` is used as is. Otherwise, with a key pair, the command fetches a
fresh token itself (:attr:`Credentials.fetch_token`) and ``WS_Token`` is not read; without one,
the ``WS_Token`` file's token is used as is.

Only :func:`resolve_credentials` reads anything (environment, files); the environment, working
directory and home directory can be passed in, so tests need no monkeypatching. Secrets never
appear in a ``repr`` or an error message.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from krakenws.errors import UsageError

__all__ = [
    "CONFIG_ENV",
    "KEY_ENV",
    "SECRET_ENV",
    "TOKEN_FILE",
    "Credentials",
    "CredentialsError",
    "Origin",
    "Source",
    "default_config_path",
    "resolve_credentials",
]

KEY_ENV = "KRAKEN_API_KEY"
SECRET_ENV = "KRAKEN_API_SECRET"
CONFIG_ENV = "KRAKENWS_CONFIG"
TOKEN_FILE = "WS_Token"
_CONFIG_KEYS = ("api_key", "api_secret")

_HOW_TO_PROVIDE = (
    f"give --api-key and --api-secret, set {KEY_ENV} and {SECRET_ENV}, "
    "or write api_key and api_secret to the config file {config} (chmod 600)"
)


class CredentialsError(UsageError):
    """Credentials are missing, half given, unreadable, or too widely readable."""


class Source(Enum):
    """Kinds of place a credential can come from, in lookup order."""

    FLAG = "flag"
    ENVIRONMENT = "environment"
    CONFIG_FILE = "config file"
    TOKEN_FILE = "token file"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one credential came from: the kind of place and its name (flag, variable, path)."""

    source: Source
    name: str

    def __str__(self) -> str:
        return f"{self.source.value} {self.name}"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What was found, and where. Secrets and the token are left out of ``repr``."""

    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    key_origin: Origin | None = None
    token_origin: Origin | None = None
    config_path: Path | None = None
    """The config file that was (or would have been) read; for messages."""

    @property
    def has_api_key(self) -> bool:
        """Whether a key and its secret were found."""
        return self.api_key is not None and self.api_secret is not None

    @property
    def fetch_token(self) -> bool:
        """Whether the command should fetch a token with the key (no token was given)."""
        return self.token is None and self.has_api_key

    def require(self, endpoint: str, *, token: bool = True, api_key: bool = False) -> None:
        """Raise :class:`CredentialsError` unless what ``endpoint`` needs is available.

        ``token``: a WebSocket token, given or fetchable with the key. ``api_key``: the key
        pair itself (e.g. for REST balances).
        """
        how = _HOW_TO_PROVIDE.format(config=self.config_path or default_config_path({}))
        if api_key and not self.has_api_key:
            raise CredentialsError(f"{endpoint} needs an API key and secret: {how}")
        if token and self.token is None and not self.has_api_key:
            raise CredentialsError(
                f"{endpoint} needs an API key and secret: {how}; "
                f"or put a WebSocket token in ./{TOKEN_FILE} or give --token"
            )


def default_config_path(env: Mapping[str, str], home: Path | None = None) -> Path:
    """``$KRAKENWS_CONFIG``, else ``krakenws/credentials`` in ``$XDG_CONFIG_HOME`` or ~/.config."""
    explicit = env.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else (home if home is not None else Path.home()) / ".config"
    return base / "krakenws" / "credentials"


def resolve_credentials(
    *,
    api_key: str | None = None,
    api_secret: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
) -> Credentials:
    """Find credentials in flags, environment, config file and ``WS_Token``, in that order.

    ``api_key``/``api_secret``/``token`` are the command-line flags (None when absent). ``env``
    defaults to ``os.environ``, ``cwd`` to the working directory, ``home`` to the user's home.
    Nothing missing is an error here (public commands need nothing); see
    :meth:`Credentials.require`. A half-given pair, an unreadable or badly formed config
    file, a config file open to group/others, or an empty ``WS_Token`` are errors.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    config_path = default_config_path(env, home)

    key_pair = _pair_from(
        _clean(api_key), _clean(api_secret), Origin(Source.FLAG, "--api-key/--api-secret")
    )
    if key_pair is None:
        key_pair = _pair_from(
            _clean(env.get(KEY_ENV)),
            _clean(env.get(SECRET_ENV)),
            Origin(Source.ENVIRONMENT, f"{KEY_ENV}/{SECRET_ENV}"),
        )
    if key_pair is None:
        key_pair = _read_config(config_path, explicit=bool(env.get(CONFIG_ENV)))

    key, secret, key_origin = key_pair if key_pair is not None else (None, None, None)

    token_value = _clean(token)
    token_origin: Origin | None = None
    if token is not None and token_value is None:
        raise CredentialsError("--token is empty")
    if token_value is not None:
        token_origin = Origin(Source.FLAG, "--token")
    elif key_pair is None:
        token_value = _read_token_file(cwd / TOKEN_FILE)
        if token_value is not None:
            token_origin = Origin(Source.TOKEN_FILE, str(cwd / TOKEN_FILE))

    return Credentials(
        api_key=key,
        api_secret=secret,
        token=token_value,
        key_origin=key_origin,
        token_origin=token_origin,
        config_path=config_path,
    )


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _pair_from(
    key: str | None, secret: str | None, origin: Origin
) -> tuple[str, str, Origin] | None:
    if key is None and secret is None:
        return None
    if key is None or secret is None:
        given, missing = ("key", "secret") if secret is None else ("secret", "key")
        raise CredentialsError(
            f"{origin} has the API {given} but not the API {missing}; give both from one place"
        )
    return key, secret, origin


def _read_config(path: Path, *, explicit: bool) -> tuple[str, str, Origin] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        if explicit:
            raise CredentialsError(
                f"config file {path} (from ${CONFIG_ENV}) does not exist"
            ) from None
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CredentialsError(f"config file {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if os.name == "posix" and mode & 0o077:
        raise CredentialsError(
            f"config file {path} is accessible by group or others (mode {mode:04o}); "
            f"it holds an API secret: run chmod 600 {path}"
        )
    try:
        with open(path, "rb") as source:
            document = tomllib.load(source)
    except OSError as exc:
        raise CredentialsError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CredentialsError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(document) - set(_CONFIG_KEYS))
    if unknown:
        raise CredentialsError(
            f"config file {path}: unknown key {unknown[0]!r} (known: {', '.join(_CONFIG_KEYS)})"
        )
    values: dict[str, str | None] = {}
    for name in _CONFIG_KEYS:
        value = document.get(name)
        if value is not None and not isinstance(value, str):
            raise CredentialsError(f"config file {path}: {name} must be a string")
        values[name] = _clean(value)
    pair = _pair_from(
        values["api_key"], values["api_secret"], Origin(Source.CONFIG_FILE, str(path))
    )
    if pair is None:
        raise CredentialsError(f"config file {path} has neither api_key nor api_secret")
    return pair


def _read_token_file(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CredentialsError(f"cannot read the token file {path}: {reason}") from None
    token = text.strip()
    if not token:
        raise CredentialsError(f"the token file {path} is empty")
    if any(char.isspace() for char in token):
        raise CredentialsError(f"the token file {path} must hold one token and nothing else")
    return token
