"""Self-signed TLS material for loopback test peers.

One certificate names both `localhost` (DNS) and `127.0.0.1` (IP) in its
subjectAltName, so a client may verify it whichever way it addresses the
server. Clients trust exactly this certificate (it is its own trust anchor), so
verification is real: hostname checks and the chain are enforced as they would
be against a public server, only the anchor differs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILENAME = "cert.pem"
KEY_FILENAME = "key.pem"

#: Names the certificate is valid for; the test peers listen on loopback only.
DNS_NAMES: tuple[str, ...] = ("localhost",)
IP_ADDRESSES: tuple[str, ...] = ("127.0.0.1",)

# Backdating covers clock skew between the test process and a peer that checks
# notBefore; a test run never outlives the validity window.
_BACKDATE = dt.timedelta(hours=1)
_DEFAULT_VALIDITY = dt.timedelta(days=7)

# An (EC)DHE server key only signs the handshake.
_SERVER_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True, slots=True)
class TLSCertificate:
    """Paths of a PEM certificate and its unencrypted PEM private key."""

    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """Build a client context that trusts this certificate and nothing else.

        Hostname checking stays on, so connect with `server_hostname` set to
        `localhost` or `127.0.0.1`.
        """
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.cert))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def server_context(self) -> ssl.SSLContext:
        """Build a server context presenting this certificate (no client certificates)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile=self.cert, keyfile=self.key)
        return context


def generate_self_signed(
    directory: Path, *, validity: dt.timedelta = _DEFAULT_VALIDITY
) -> TLSCertificate:
    """Write a fresh self-signed certificate and key for loopback into `directory`.

    The directory is created if needed. The key is an EC P-256 key (fast to
    generate, accepted by OpenSSL-based servers such as Dovecot); its file is
    readable by the owner only. Existing files of the same name are replaced.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _build_certificate(key, validity)

    cert_path = directory / CERT_FILENAME
    key_path = directory / KEY_FILENAME
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_path, key_pem)
    return TLSCertificate(cert=cert_path, key=key_path)


def _build_certificate(key: ec.EllipticCurvePrivateKey, validity: dt.timedelta) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DNS_NAMES[0])])
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in DNS_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in IP_ADDRESSES]
    now = dt.datetime.now(dt.UTC)
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_SERVER_KEY_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Key identifiers keep OpenSSL's strict verification mode (the default
        # from Python 3.13) happy with a self-issued certificate.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
    )
    return builder.sign(key, hashes.SHA256())


def _write_private(path: Path, data: bytes) -> None:
    # Create with mode 0600 from the start rather than chmod afterwards, so the
    # key is never briefly world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)
