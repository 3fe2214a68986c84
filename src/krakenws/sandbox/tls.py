"""TLS for the sandbox: a local certificate authority, a server certificate, SSL contexts.

Owns the files in a TLS directory and the rules for keeping them:

* ``ca.pem`` / ``ca.key`` -- a self-signed CA (basicConstraints CA:TRUE) that clients trust;
* ``server.pem`` / ``server.key`` -- a certificate for the sandbox's hosts (subjectAltName
  ``127.0.0.1`` and ``localhost`` by default) signed by that CA; ``server.pem`` holds the chain
  (server certificate, then the CA).

All cryptography is done by the ``cryptography`` package (RSA 2048 keys, SHA-256 signatures);
this module only chooses names, extensions and lifetimes, and checks that existing files still
fit. Files that still fit are reused, so a client that trusts an exported ``ca.pem`` keeps working
across restarts; when only the server certificate no longer fits (expired, other hosts), a new
one is issued by the same CA. Private keys are written with mode 0600.

It must not import aiohttp or anything of the sandbox's exchange: the server and the command
wire the contexts into their sites.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_LIFETIME",
    "DEFAULT_HOSTS",
    "SERVER_LIFETIME",
    "TlsFiles",
    "client_ssl_context",
    "make_certificates",
    "server_ssl_context",
]

DEFAULT_HOSTS = ("127.0.0.1", "localhost")
SERVER_LIFETIME = timedelta(days=365)
# The CA outlives several server certificates, so that renewing one does not make clients
# re-import ca.pem.
CA_LIFETIME = timedelta(days=5 * 365)
# Backdated against clock skew between the sandbox and its clients.
BACKDATE = timedelta(hours=1)
# Files closer than this to expiry are renewed rather than served until they lapse mid-run.
RENEW_BEFORE = timedelta(days=1)
KEY_SIZE = 2048

CA_NAME = "ca.pem"
CA_KEY_NAME = "ca.key"
SERVER_NAME = "server.pem"
SERVER_KEY_NAME = "server.key"


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the TLS files in one directory (see the module docstring)."""

    ca: Path
    """``ca.pem``: the certificate clients trust (e.g. ``cafile=`` of ``ssl``)."""
    certificate: Path
    """``server.pem``: the server certificate followed by the CA certificate."""
    key: Path
    """``server.key``: the server's private key (PKCS#8 PEM, mode 0600)."""
    ca_key: Path
    """``ca.key``: the CA's private key (mode 0600), kept to renew the server certificate."""

    @classmethod
    def in_directory(cls, directory: Path) -> TlsFiles:
        """The file paths inside ``directory`` (nothing is read or written)."""
        return cls(
            ca=directory / CA_NAME,
            certificate=directory / SERVER_NAME,
            key=directory / SERVER_KEY_NAME,
            ca_key=directory / CA_KEY_NAME,
        )


def make_certificates(
    directory: Path,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    now: datetime | None = None,
) -> TlsFiles:
    """Make (or reuse) a CA and a server certificate for ``hosts`` in ``directory``.

    ``hosts`` are IP addresses or DNS names; all go into the server certificate's
    subjectAltName. ``now`` (timezone-aware) defaults to the current time; tests pass it to
    age the files. Existing files are reused when they are still valid at ``now`` (with a day
    to spare), belong together and cover ``hosts``.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not hosts:
        raise ValueError("at least one host is needed")
    names = [_general_name(host) for host in hosts]
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = TlsFiles.in_directory(directory)

    authority = _load_authority(files, now)
    if authority is not None and _server_fits(files, authority[0], names, now):
        for secret in (files.key, files.ca_key):
            secret.chmod(0o600)
        return files
    if authority is None:
        authority = _new_authority(now)
        _write(files.ca_key, _private_pem(authority[1]), secret=True)
        _write(files.ca, authority[0].public_bytes(serialization.Encoding.PEM))
    ca_cert, ca_key = authority
    server_key = _new_key()
    server_cert = _new_server_certificate(server_key, ca_cert, ca_key, names, now)
    _write(files.key, _private_pem(server_key), secret=True)
    _write(
        files.certificate,
        server_cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM),
    )
    return files


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A server-side context serving ``files``' certificate chain; TLS 1.2 at least."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.certificate, files.key)
    return context


def client_ssl_context(ca_path: str | os.PathLike[str]) -> ssl.SSLContext:
    """Python's default (verifying) client context, trusting the sandbox CA at ``ca_path``."""
    return ssl.create_default_context(cafile=os.fspath(ca_path))


# -- building ---------------------------------------------------------------------------------


def _new_key() -> rsa.RSAPrivateKey:
    # RSA rather than ECDSA: keyEncipherment is meaningful for it, and every TLS client that
    # might talk to the sandbox accepts it.
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise ValueError(f"not a host name or IP address: {host!r}")
    return x509.DNSName(host.lower())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "krakenws"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_authority(now: datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _new_key()
    name = _name("krakenws sandbox CA")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _new_server_certificate(
    key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    names: list[x509.GeneralName],
    now: datetime,
) -> x509.Certificate:
    # Never outlive the issuer: a chain is only as valid as its shortest link.
    not_after = min(now + SERVER_LIFETIME, ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(_name("krakenws sandbox"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    """Replace ``path`` atomically; a secret is 0600 from its first byte."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, 0o600 if secret else 0o644)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# -- checking existing files ------------------------------------------------------------------


def _current(certificate: x509.Certificate, now: datetime) -> bool:
    return (
        certificate.not_valid_before_utc <= now
        and now + RENEW_BEFORE < certificate.not_valid_after_utc
    )


def _same_public_key(key: object, certificate: x509.Certificate) -> bool:
    if not isinstance(key, rsa.RSAPrivateKey):
        return False
    encoding, format_ = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(
        encoding, format_
    ) == certificate.public_key().public_bytes(encoding, format_)


def _load_authority(
    files: TlsFiles, now: datetime
) -> tuple[x509.Certificate, rsa.RSAPrivateKey] | None:
    """The CA in ``files`` if it is whole, a CA, current and matches its key; else None."""
    try:
        certificate = x509.load_pem_x509_certificate(files.ca.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        return None
    if not constraints.value.ca or not _current(certificate, now):
        return None
    if not isinstance(key, rsa.RSAPrivateKey) or not _same_public_key(key, certificate):
        return None
    return certificate, key


def _server_fits(
    files: TlsFiles,
    ca_cert: x509.Certificate,
    names: list[x509.GeneralName],
    now: datetime,
) -> bool:
    """Whether ``server.pem``/``server.key`` are current, issued by ``ca_cert``, cover ``names``."""
    try:
        chain = x509.load_pem_x509_certificates(files.certificate.read_bytes())
        key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
        certificate = chain[0]
        certificate.verify_directly_issued_by(ca_cert)
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return (
        chain[1:] == [ca_cert]
        and _current(certificate, now)
        and _same_public_key(key, certificate)
        and all(name in san for name in names)
    )
