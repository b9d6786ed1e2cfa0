"""Shared fixtures: real peers for tests whose behaviour crosses a wire, and stores.

`dovecot` is a private Dovecot (session-scoped: it starts in well under a
second but stops in about one) with one user, `dovecot_user`. `smtp_sink` is a
module-scoped aiosmtpd sink offering STARTTLS; tests sharing it call
`smtp_sink.clear()` first. Both present the session's `tls_cert`.

Dovecot is required, never skipped: CI installs it, so a missing binary is a
broken environment and fails loudly.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from mailwire.config import Settings
from mailwire.store.store import Store, open_store
from mailwire.testing.dovecot import DOVECOT_BINARY, Dovecot, MailUser, scratch_directory
from mailwire.testing.postgres import postgres_schema, settings_for
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


SettingsFactory = Callable[..., Settings]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def make_settings(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SettingsFactory]:
    """Settings for this test's database, `make_settings(secret=...)`: SQLite, then PostgreSQL.

    PostgreSQL runs when `MAILWIRE_TEST_DATABASE_URL` is set (CI sets it); each
    test gets its own schema, dropped afterwards, so concurrent runs never collide.
    """
    if request.param == "sqlite":
        yield lambda **kw: settings_for(tmp_path / "data", **kw)
        return
    async with postgres_schema() as (url, schema):
        yield lambda **kw: settings_for(
            tmp_path / "data", database_url=url, database_schema=schema, **kw
        )


@pytest.fixture
async def store(make_settings: SettingsFactory) -> AsyncIterator[Store]:
    """An open store on each database of `make_settings`."""
    opened = await open_store(make_settings())
    yield opened
    await opened.close()
