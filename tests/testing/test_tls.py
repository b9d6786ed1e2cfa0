"""The self-signed certificate helper: contents, file modes and real handshakes."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from mailwire.testing.tls import TLSCertificate, generate_self_signed

_MAX_HANDSHAKE_ROUNDS = 10


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str) -> None:
    """Run a TLS handshake between two in-memory endpoints (raises what the client raises)."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server_end = server.wrap_bio(server_in, server_out, server_side=True)
    client_end = client.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    done = {"server": False, "client": False}
    for _ in range(_MAX_HANDSHAKE_ROUNDS):
        for name, end in (("client", client_end), ("server", server_end)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            return
    pytest.fail("TLS handshake did not finish")


def test_certificate_names_localhost_and_loopback(tls_cert: TLSCertificate) -> None:
    cert = x509.load_pem_x509_certificate(tls_cert.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc


def test_key_is_private_to_its_owner(tls_cert: TLSCertificate) -> None:
    assert stat.S_IMODE(tls_cert.key.stat().st_mode) == 0o600
    assert tls_cert.key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
def test_client_context_verifies_either_name(
    tls_cert: TLSCertificate, server_hostname: str
) -> None:
    _handshake(tls_cert.server_context(), tls_cert.client_context(), server_hostname)


def test_client_context_rejects_another_name(tls_cert: TLSCertificate) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch|doesn't match"):
        _handshake(tls_cert.server_context(), tls_cert.client_context(), "example.org")


def test_client_context_trusts_only_its_own_certificate(
    tls_cert: TLSCertificate, tmp_path: Path
) -> None:
    other = generate_self_signed(tmp_path / "other")
    assert other.cert.read_bytes() != tls_cert.cert.read_bytes()
    with pytest.raises(ssl.SSLCertVerificationError, match=r"self.signed|unable to get"):
        _handshake(other.server_context(), tls_cert.client_context(), "localhost")
