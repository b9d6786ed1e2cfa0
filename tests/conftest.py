"""Fixtures that start real peers for tests whose behaviour crosses a wire.

`dovecot` is a private Dovecot (session-scoped: it starts in well under a
second but stops in about one) with one user, `dovecot_user`. `smtp_sink` is a
module-scoped aiosmtpd sink offering STARTTLS; tests sharing it call
`smtp_sink.clear()` first. Both present the session's `tls_cert`.

Dovecot is required, never skipped: CI installs it, so a missing binary is a
broken environment and fails loudly.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from mailwire.testing.dovecot import DOVECOT_BINARY, Dovecot, MailUser, scratch_directory
from mailwire.testing.smtp_sink import SmtpSink
from mailwire.testing.tls import TLSCertificate, generate_self_signed


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> TLSCertificate:
    """A self-signed certificate for localhost and 127.0.0.1, shared by every peer."""
    # Only root-run processes (and we) read these files, so pytest's private
    # tree is fine here, unlike for Dovecot's own directory.
    return generate_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def dovecot_user() -> MailUser:
    """The mailbox that exists on `dovecot` from the start (alice, random password)."""
    return MailUser("alice", secrets.token_urlsafe(16))


@pytest.fixture(scope="session")
def dovecot(tls_cert: TLSCertificate, dovecot_user: MailUser) -> Iterator[Dovecot]:
    """A running private Dovecot with `dovecot_user`; stopped by PID at session end."""
    if not DOVECOT_BINARY.is_file():
        pytest.fail(
            f"Dovecot is required for real-peer tests but {DOVECOT_BINARY} is missing; "
            "install it (Debian: apt-get install dovecot-imapd)",
            pytrace=False,
        )
    with scratch_directory() as root:
        server = Dovecot(root, tls=tls_cert)
        server.add_user(dovecot_user.name, dovecot_user.password)
        with server:
            yield server


@pytest.fixture(scope="module")
def smtp_sink(tls_cert: TLSCertificate) -> Iterator[SmtpSink]:
    """An SMTP sink on a free loopback port, offering (not requiring) STARTTLS, no AUTH."""
    with SmtpSink(tls=tls_cert) as sink:
        yield sink
