"""Credentials: flags, then environment, then the config file, then ./WS_Token."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from krakenws.cli.credentials import (
    CONFIG_ENV,
    Credentials,
    CredentialsError,
    Origin,
    Source,
    default_config_path,
    resolve_credentials,
)
from krakenws.errors import UsageError

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def default_config(home: Path) -> Path:
    return home / ".config" / "krakenws" / "credentials"


CONFIG = 'api_key = "file-key"\napi_secret = "file-secret"\n'
ENV = {"KRAKEN_API_KEY": "env-key", "KRAKEN_API_SECRET": "env-secret"}


def test_nothing_found_is_fine_for_public_commands(home: Path, cwd: Path) -> None:
    found = resolve_credentials(env={}, cwd=cwd, home=home)
    assert found == Credentials(config_path=default_config(home))
    assert not found.has_api_key and not found.fetch_token
    found.require("ticker", token=False)


def test_flags_win_over_everything(home: Path, cwd: Path) -> None:
    write_config(default_config(home), CONFIG)
    (cwd / "WS_Token").write_text("file-token\n")
    found = resolve_credentials(
        api_key="flag-key",
        api_secret="flag-secret",
        token="flag-token",
        env=ENV,
        cwd=cwd,
        home=home,
    )
    assert (found.api_key, found.api_secret, found.token) == (
        "flag-key",
        "flag-secret",
        "flag-token",
    )
    assert found.key_origin == Origin(Source.FLAG, "--api-key/--api-secret")
    assert found.token_origin == Origin(Source.FLAG, "--token")
    assert not found.fetch_token  # a given token is used as is


def test_environment_wins_over_config_file(home: Path, cwd: Path) -> None:
    write_config(default_config(home), CONFIG)
    found = resolve_credentials(env=ENV, cwd=cwd, home=home)
    assert (found.api_key, found.api_secret) == ("env-key", "env-secret")
    assert found.key_origin == Origin(Source.ENVIRONMENT, "KRAKEN_API_KEY/KRAKEN_API_SECRET")
    assert str(found.key_origin) == "environment KRAKEN_API_KEY/KRAKEN_API_SECRET"
    assert found.fetch_token


def test_config_file(home: Path, cwd: Path) -> None:
    path = write_config(default_config(home), CONFIG)
    found = resolve_credentials(env={}, cwd=cwd, home=home)
    assert (found.api_key, found.api_secret) == ("file-key", "file-secret")
    assert found.key_origin == Origin(Source.CONFIG_FILE, str(path))
    assert found.token is None and found.fetch_token


def test_config_file_from_environment_variables(tmp_path: Path, home: Path, cwd: Path) -> None:
    path = write_config(tmp_path / "elsewhere.toml", CONFIG)
    found = resolve_credentials(env={CONFIG_ENV: str(path)}, cwd=cwd, home=home)
    assert found.api_key == "file-key" and found.config_path == path
    xdg = tmp_path / "xdg"
    write_config(xdg / "krakenws" / "credentials", CONFIG)
    assert default_config_path({"XDG_CONFIG_HOME": str(xdg)}) == xdg / "krakenws" / "credentials"
    assert resolve_credentials(env={"XDG_CONFIG_HOME": str(xdg)}, cwd=cwd).api_key == "file-key"


def test_ws_token_file_when_no_key(home: Path, cwd: Path) -> None:
    (cwd / "WS_Token").write_text("  abc/def+ghi==\n")
    found = resolve_credentials(env={}, cwd=cwd, home=home)
    assert found.token == "abc/def+ghi=="
    assert found.token_origin == Origin(Source.TOKEN_FILE, str(cwd / "WS_Token"))
    assert not found.fetch_token and not found.has_api_key
    found.require("openOrders")
    with pytest.raises(CredentialsError, match="balances needs an API key and secret"):
        found.require("balances", api_key=True)


def test_a_key_pair_means_a_fresh_token_rather_than_ws_token(home: Path, cwd: Path) -> None:
    (cwd / "WS_Token").write_text("stale")
    found = resolve_credentials(env=ENV, cwd=cwd, home=home)
    assert found.token is None and found.token_origin is None
    assert found.fetch_token


def test_secrets_stay_out_of_repr(home: Path, cwd: Path) -> None:
    found = resolve_credentials(
        api_key="k", api_secret="s3cr3t", token="t0k3n", env={}, cwd=cwd, home=home
    )
    assert "s3cr3t" not in repr(found) and "t0k3n" not in repr(found)
    assert "api_key='k'" in repr(found)


def test_missing_credentials_name_every_way(home: Path, cwd: Path) -> None:
    found = resolve_credentials(env={}, cwd=cwd, home=home)
    with pytest.raises(CredentialsError) as caught:
        found.require("openOrders")
    message = str(caught.value)
    assert isinstance(caught.value, UsageError)
    assert message.startswith("openOrders needs an API key and secret: give --api-key and")
    for way in ("--api-secret", "KRAKEN_API_KEY", "KRAKEN_API_SECRET", str(default_config(home))):
        assert way in message
    assert "WS_Token" in message and "--token" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("kwargs", "env", "expected"),
    [
        (
            {"api_key": "k"},
            {},
            "flag --api-key/--api-secret has the API key but not the API secret",
        ),
        ({"api_secret": "s"}, {}, "has the API secret but not the API key"),
        ({}, {"KRAKEN_API_KEY": "k"}, "environment KRAKEN_API_KEY/KRAKEN_API_SECRET has the API"),
        ({"token": "  "}, {}, "--token is empty"),
    ],
)
def test_half_given_credentials(
    kwargs: dict[str, str], env: dict[str, str], expected: str, home: Path, cwd: Path
) -> None:
    with pytest.raises(CredentialsError, match=expected):
        resolve_credentials(**kwargs, env=env, cwd=cwd, home=home)


def test_empty_environment_variables_count_as_unset(home: Path, cwd: Path) -> None:
    found = resolve_credentials(
        env={"KRAKEN_API_KEY": "", "KRAKEN_API_SECRET": " "}, cwd=cwd, home=home
    )
    assert not found.has_api_key


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o610])
def test_config_file_open_to_others_is_refused(mode: int, home: Path, cwd: Path) -> None:
    path = write_config(default_config(home), CONFIG, mode=mode)
    with pytest.raises(CredentialsError) as caught:
        resolve_credentials(env={}, cwd=cwd, home=home)
    assert str(caught.value) == (
        f"config file {path} is accessible by group or others (mode {mode:04o}); "
        f"it holds an API secret: run chmod 600 {path}"
    )


@posix_only
def test_config_file_mode_400_is_fine(home: Path, cwd: Path) -> None:
    write_config(default_config(home), CONFIG, mode=0o400)
    assert resolve_credentials(env={}, cwd=cwd, home=home).api_key == "file-key"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('api_key = "k"\n', "has the API key but not the API secret"),
        ("api_key = \n", "is not valid TOML"),
        ('api_key = "k"\napi_secret = 5\n', "api_secret must be a string"),
        ('api_key = "k"\napi_secret = "s"\napi_sekret = "x"\n', "unknown key 'api_sekret'"),
        ("", "has neither api_key nor api_secret"),
    ],
)
def test_bad_config_files(text: str, expected: str, home: Path, cwd: Path) -> None:
    write_config(default_config(home), text)
    with pytest.raises(CredentialsError, match=expected):
        resolve_credentials(env={}, cwd=cwd, home=home)


def test_explicit_config_path_must_exist(tmp_path: Path, home: Path, cwd: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(CredentialsError, match=r"nope\.toml \(from \$KRAKENWS_CONFIG\) does not"):
        resolve_credentials(env={CONFIG_ENV: str(missing)}, cwd=cwd, home=home)


def test_config_path_that_is_a_directory(home: Path, cwd: Path) -> None:
    default_config(home).mkdir(parents=True)
    with pytest.raises(CredentialsError, match="is not a regular file"):
        resolve_credentials(env={}, cwd=cwd, home=home)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("\n  \n", "is empty"), ("one two", "must hold one token and nothing else")],
)
def test_bad_ws_token_files(content: str, expected: str, home: Path, cwd: Path) -> None:
    (cwd / "WS_Token").write_text(content)
    with pytest.raises(CredentialsError, match=expected):
        resolve_credentials(env={}, cwd=cwd, home=home)


def test_defaults_read_the_real_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KRAKEN_API_KEY", "real-env-key")
    monkeypatch.setenv("KRAKEN_API_SECRET", "real-env-secret")
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "absent-is-fine-when-env-has-keys"))
    monkeypatch.chdir(tmp_path)
    found = resolve_credentials()
    assert found.api_key == "real-env-key"
    assert found.key_origin is not None and found.key_origin.source is Source.ENVIRONMENT
