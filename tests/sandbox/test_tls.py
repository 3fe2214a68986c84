"""Sandbox TLS: the generated CA and server certificate, their reuse, and real handshakes.

Handshakes use Python's default (strict, verifying) client context, as a user's client would;
the command test runs ``krakenws sandbox --tls-port`` as a real process.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import ssl
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from krakenws.sandbox.tls import (
    TlsFiles,
    client_ssl_context,
    make_certificates,
    server_ssl_context,
)
from krakenws.testing import RunningSandbox, run_sandbox


def load_chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def get_json(url: str, context: ssl.SSLContext) -> Any:
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def tls_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("tls")
    with run_sandbox(simulator=False, tls=True, tls_dir=str(directory)) as sandbox:
        yield sandbox


# -- the files ---------------------------------------------------------------------------------


def test_ca_is_a_real_authority(tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    (ca,) = load_chain(files.ca)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    ca.verify_directly_issued_by(ca)  # self-signed


def test_server_certificate_fields(tmp_path: Path) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    files = make_certificates(tmp_path, hosts=("127.0.0.1", "localhost", "sandbox.test"), now=now)
    server, ca = load_chain(files.certificate)
    assert load_chain(files.ca) == [ca]
    server.verify_directly_issued_by(ca)
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = server.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    extended = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(extended) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "sandbox.test"]
    authority = server.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert authority.key_identifier == ca_ski.digest
    assert server.not_valid_before_utc == now - timedelta(hours=1)
    assert server.not_valid_after_utc == now + timedelta(days=365)
    assert server.signature_hash_algorithm is not None
    assert server.signature_hash_algorithm.name == "sha256"


def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    files = make_certificates(tmp_path / "new")
    for secret in (files.key, files.ca_key):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    files.key.chmod(0o644)
    make_certificates(tmp_path / "new")  # reuse tightens a loosened key again
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600


def test_files_are_reused_while_valid(tmp_path: Path) -> None:
    first = make_certificates(tmp_path)
    contents = {path: path.read_bytes() for path in (first.ca, first.certificate, first.key)}
    second = make_certificates(tmp_path, now=datetime.now(UTC) + timedelta(days=300))
    assert second == first
    assert {path: path.read_bytes() for path in contents} == contents


def test_expired_server_certificate_is_renewed_by_the_same_ca(tmp_path: Path) -> None:
    first = make_certificates(tmp_path)
    ca, old_server = first.ca.read_bytes(), first.certificate.read_bytes()
    later = datetime.now(UTC) + timedelta(days=400)
    make_certificates(tmp_path, now=later)
    assert first.ca.read_bytes() == ca  # clients that imported ca.pem keep working
    server, issuer = load_chain(first.certificate)
    assert first.certificate.read_bytes() != old_server
    assert server.not_valid_before_utc <= later < server.not_valid_after_utc
    server.verify_directly_issued_by(issuer)


def test_expired_ca_regenerates_everything(tmp_path: Path) -> None:
    first = make_certificates(tmp_path)
    ca = first.ca.read_bytes()
    much_later = datetime.now(UTC) + timedelta(days=10 * 365)
    make_certificates(tmp_path, now=much_later)
    assert first.ca.read_bytes() != ca
    (new_ca,) = load_chain(first.ca)
    assert new_ca.not_valid_before_utc <= much_later < new_ca.not_valid_after_utc


def test_new_hosts_or_damaged_files_get_a_new_server_certificate(tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    make_certificates(tmp_path, hosts=("127.0.0.1", "localhost", "other.test"))
    san = load_chain(files.certificate)[0].extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "other.test" in san.value.get_values_for_type(x509.DNSName)
    files.key.write_bytes(b"not a key")
    make_certificates(tmp_path)
    server_ssl_context(files)  # loads: the key matches the certificate again


def test_naive_time_and_bad_hosts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone"):
        make_certificates(tmp_path, now=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="host"):
        make_certificates(tmp_path, hosts=("bad host",))


def test_files_in_directory() -> None:
    files = TlsFiles.in_directory(Path("d"))
    assert (files.ca.name, files.certificate.name, files.key.name) == (
        "ca.pem",
        "server.pem",
        "server.key",
    )


# -- real handshakes -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_strict_default_verification_accepts_the_sandbox(
    tls_sandbox: RunningSandbox, host: str
) -> None:
    assert tls_sandbox.rest_url_tls is not None and tls_sandbox.ca_pem is not None
    port = tls_sandbox.rest_url_tls.rsplit(":", 1)[1]
    context = ssl.create_default_context(cafile=tls_sandbox.ca_pem)
    # Python 3.13 turns this on by default; the certificates must pass it on every version.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    payload = get_json(f"https://{host}:{port}/0/public/Time", context)
    assert payload["error"] == [] and payload["result"]["unixtime"] > 0


def test_client_context_helper_and_plain_port_still_served(tls_sandbox: RunningSandbox) -> None:
    assert tls_sandbox.rest_url_tls is not None and tls_sandbox.ca_pem is not None
    context = client_ssl_context(tls_sandbox.ca_pem)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert get_json(f"{tls_sandbox.rest_url_tls}/0/public/Time", context)["error"] == []
    with urllib.request.urlopen(f"{tls_sandbox.rest_url}/0/public/Time", timeout=10) as response:
        assert json.loads(response.read())["error"] == []


def test_a_client_without_the_ca_refuses_the_sandbox(tls_sandbox: RunningSandbox) -> None:
    assert tls_sandbox.rest_url_tls is not None
    with pytest.raises(urllib.error.URLError) as caught:
        get_json(f"{tls_sandbox.rest_url_tls}/0/public/Time", ssl.create_default_context())
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)


def test_run_sandbox_without_tls_has_no_tls_urls() -> None:
    with run_sandbox(simulator=False) as sandbox:
        assert sandbox.rest_url_tls is None and sandbox.ca_pem is None


# -- the command -----------------------------------------------------------------------------


def test_command_serves_tls_on_port_zero(tmp_path: Path) -> None:
    tls_dir = tmp_path / "certs"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "krakenws.cli",
            "sandbox",
            "--port",
            "0",
            "--tls-port",
            "0",
            "--tls-dir",
            str(tls_dir),
            "--json",
            "--db",
            ":memory:",
            "--sim-levels",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, "sandbox did not start"
        info = json.loads(line)
        rest_port = int(info["rest_url"].rsplit(":", 1)[1])
        tls_port = int(info["rest_url_tls"].rsplit(":", 1)[1])
        assert info["rest_url_tls"] == f"https://127.0.0.1:{tls_port}"
        assert info["ws_url_tls"] == f"wss://127.0.0.1:{tls_port}/ws"
        assert info["ws_auth_url_tls"] == f"wss://127.0.0.1:{tls_port}/ws-auth"
        assert 0 not in (rest_port, tls_port) and rest_port != tls_port
        assert Path(info["ca_pem"]) == tls_dir / "ca.pem"
        context = ssl.create_default_context(cafile=info["ca_pem"])
        payload = get_json(f"{info['rest_url_tls']}/0/public/Time", context)
        assert payload["error"] == []
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_command_tls_dir_needs_tls_port() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "krakenws.cli", "sandbox", "--db", ":memory:", "--tls-dir", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "--tls-dir needs --tls-port" in result.stderr
