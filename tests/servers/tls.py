"""A throwaway certificate authority for test servers.

Everything is made fresh by each test session with ``cryptography``: nothing
is checked in, so nothing expires.  EC P-256 keys because they take
microseconds to generate (RSA keys would add noticeable startup time).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("localhost", "127.0.0.1")
# Backdated so a clock a little behind does not make the certificate "not yet valid".
_VALIDITY_START = datetime.timedelta(days=1)
_VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, common_name: str) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = (
            _base_builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
            )
        )
        return cls(builder.sign(key, hashes.SHA256()), key)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_server_cert(self, names: tuple[str, ...] = SERVER_NAMES) -> tuple[bytes, bytes]:
        """A server certificate for ``names`` (host names or IP addresses): (cert PEM, key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        builder = (
            _base_builder(subject, self.cert.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


@dataclass(frozen=True)
class TlsFiles:
    """PEM files on disk: what servers load and what clients trust."""

    ca_file: Path  # the CA that signed cert_file
    untrusted_ca_file: Path  # another CA, which did not: clients trusting only it must reject the server
    cert_file: Path
    key_file: Path


def write_tls_files(directory: Path, names: tuple[str, ...] = SERVER_NAMES) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.create("Postdesk test CA")
    untrusted = CertificateAuthority.create("Postdesk untrusted test CA")
    cert_pem, key_pem = ca.issue_server_cert(names)
    files = TlsFiles(
        ca_file=directory / "ca.pem",
        untrusted_ca_file=directory / "untrusted-ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
    )
    files.ca_file.write_bytes(ca.cert_pem())
    files.untrusted_ca_file.write_bytes(untrusted.cert_pem())
    files.cert_file.write_bytes(cert_pem)
    files.key_file.write_bytes(key_pem)
    files.key_file.chmod(0o600)
    return files


def _base_builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _VALIDITY_START)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
