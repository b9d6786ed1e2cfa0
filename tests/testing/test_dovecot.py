"""The Dovecot launcher, proved against the real server over loopback sockets."""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import os
import re
import ssl
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwire.testing.dovecot import Dovecot, MailUser, scratch_directory
from mailwire.testing.dovecot_files import SPECIAL_USE_FOLDERS
from mailwire.testing.errors import PeerError, PeerStartError
from mailwire.testing.tls import TLSCertificate

# A LIST response line: (attributes) "delimiter" name
_LIST_LINE = re.compile(rb'^\((?P<attrs>[^)]*)\) "(?P<sep>[^"]*)" (?P<name>.+)$')


@contextlib.contextmanager
def _session(client: imaplib.IMAP4) -> Iterator[imaplib.IMAP4]:
    try:
        yield client
    finally:
        client.shutdown()


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def test_login_over_plain_port(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    with _session(imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=5)) as imap:
        assert "STARTTLS" in imap.capabilities
        typ, _ = imap.login(dovecot_user.name, dovecot_user.password)
        assert typ == "OK"


def test_starttls_then_login_verifies_certificate(
    dovecot: Dovecot, dovecot_user: MailUser, tls_cert: TLSCertificate
) -> None:
    with _session(imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=5)) as imap:
        typ, _ = imap.starttls(ssl_context=tls_cert.client_context())
        assert typ == "OK"
        assert isinstance(imap.sock, ssl.SSLSocket)
        assert imap.sock.getpeercert(binary_form=True) == _der(tls_cert)
        typ, _ = imap.login(dovecot_user.name, dovecot_user.password)
        assert typ == "OK"


def test_starttls_fails_without_trusting_the_test_certificate(dovecot: Dovecot) -> None:
    # The system trust store does not hold our self-signed certificate, so
    # verification must fail: proof that the passing test above really verifies.
    imap = imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=5)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            imap.starttls(ssl_context=ssl.create_default_context())
    finally:
        # The failed handshake already closed the socket under imaplib.
        with contextlib.suppress(OSError):
            imap.shutdown()


def test_implicit_tls_login(
    dovecot: Dovecot, dovecot_user: MailUser, tls_cert: TLSCertificate
) -> None:
    client = imaplib.IMAP4_SSL(
        dovecot.host, dovecot.imaps_port, ssl_context=tls_cert.client_context(), timeout=5
    )
    with _session(client) as imap:
        assert isinstance(imap.sock, ssl.SSLSocket)
        assert imap.sock.getpeercert(binary_form=True) == _der(tls_cert)
        typ, _ = imap.login(dovecot_user.name, dovecot_user.password)
        assert typ == "OK"


def test_wrong_password_is_refused(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    with (
        _session(imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=5)) as imap,
        pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"),
    ):
        imap.login(dovecot_user.name, dovecot_user.password + "-wrong")


def test_delivered_message_is_visible_with_flags_and_internaldate(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    folder = _unique("Delivered")
    raw = b"From: a@example.org\r\nSubject: placed on disk\r\n\r\nHello.\r\n"
    when = dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    path = dovecot.deliver(dovecot_user.name, raw, folder=folder, flags="SF", internaldate=when)
    assert path.name.endswith(":2,FS")

    with _session(imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=5)) as imap:
        imap.login(dovecot_user.name, dovecot_user.password)
        typ, data = imap.select(folder, readonly=True)
        assert (typ, data) == ("OK", [b"1"])
        typ, fetched = imap.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK"
    item = fetched[0]
    assert isinstance(item, tuple)  # a literal comes back as a (prefix, bytes) pair
    envelope, body = item
    assert isinstance(envelope, bytes)
    assert body == raw
    assert set(imaplib.ParseFlags(envelope)) >= {b"\\Seen", b"\\Flagged"}
    assert b"\\Deleted" not in imaplib.ParseFlags(envelope)
    stamp = imaplib.Internaldate2tuple(envelope)  # local time, as a struct_time
    assert stamp is not None
    assert time.mktime(stamp) == when.timestamp()


def test_delivery_to_inbox_appears_in_a_running_session(dovecot: Dovecot) -> None:
    user = dovecot.add_user(_unique("inbox"), "secret-inbox")
    with _session(imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=5)) as imap:
        imap.login(user.name, user.password)
        assert imap.select("INBOX") == ("OK", [b"0"])
        for n in range(3):
            dovecot.deliver(user.name, b"Subject: %d\r\n\r\nx\r\n" % n)
        imap.noop()  # a sync point: Dovecot rescans cur/ and announces EXISTS
        typ, data = imap.search(None, "UNSEEN")
    assert typ == "OK"
    assert data == [b"1 2 3"]


def test_special_use_folders_are_listed(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    with _session(imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=5)) as imap:
        imap.login(dovecot_user.name, dovecot_user.password)
        typ, lines = imap.list()
    assert typ == "OK"
    listed: dict[str, set[str]] = {}
    for line in lines:
        assert isinstance(line, bytes)
        match = _LIST_LINE.match(line)
        assert match is not None, line
        assert match["sep"] == b"/"
        listed[match["name"].decode()] = set(match["attrs"].decode().split())
    for name, flag in SPECIAL_USE_FOLDERS:
        assert flag in listed[name], (name, listed.get(name))


def test_user_added_after_start_can_log_in(dovecot: Dovecot) -> None:
    user = dovecot.add_user(_unique("late"), "late-password")
    with _session(imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=5)) as imap:
        typ, _ = imap.login(user.name, user.password)
        assert typ == "OK"


def test_more_sessions_than_dovecots_default_per_user_limit(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    # Dovecot allows 10 sessions per user and IP by default.
    with contextlib.ExitStack() as stack:
        for _ in range(25):
            client = imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=5)
            stack.enter_context(_session(client))
            assert client.login(dovecot_user.name, dovecot_user.password)[0] == "OK"
            assert client.select("INBOX", readonly=True)[0] == "OK"


def test_deliver_rejects_unknown_user_and_bad_flags(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    with pytest.raises(PeerError, match="unknown Dovecot user"):
        dovecot.deliver("nobody-here", b"x\r\n")
    with pytest.raises(ValueError, match="unknown Maildir flags"):
        dovecot.deliver(dovecot_user.name, b"x\r\n", flags="S!")
    with pytest.raises(ValueError, match="timezone-aware"):
        dovecot.deliver(dovecot_user.name, b"x\r\n", internaldate=dt.datetime(2020, 1, 1))


def test_start_and_stop_as_context_manager(shared_dir: Path, tls_cert: TLSCertificate) -> None:
    server = Dovecot(shared_dir, tls=tls_cert)
    server.add_user("dave", "dave-password")
    with server:
        pid_file = server.paths.pid_file
        pid = int(pid_file.read_text())
        assert _proc_state(pid) in {"S", "R"}
        # Another launcher on the same root finds the master by its PID file.
        twin = Dovecot(shared_dir, tls=tls_cert)
        assert twin.running
        with pytest.raises(PeerStartError, match="already running"):
            twin.start()
        with _session(imaplib.IMAP4(server.host, server.imap_port, timeout=5)) as imap:
            assert imap.login("dave", "dave-password")[0] == "OK"
    assert not server.running
    assert not Path(f"/proc/{pid}").exists() or "Z" in _proc_state(pid)
    assert not pid_file.exists()
    server.stop()  # a second stop is a no-op


def test_stop_finds_a_master_whose_pid_file_is_gone(
    shared_dir: Path, tls_cert: TLSCertificate
) -> None:
    server = Dovecot(shared_dir, tls=tls_cert)
    server.start()
    try:
        pid = int(server.paths.pid_file.read_text())
        server.paths.pid_file.unlink()
        stranger = Dovecot(shared_dir, tls=tls_cert)
        assert not stranger.running
        stranger.stop()
        assert _proc_state(pid) in {"gone", "Z"}
    finally:
        server.stop()


def test_start_failure_reports_dovecots_own_words(shared_dir: Path) -> None:
    server = Dovecot(shared_dir, binary=Path("/bin/false"))
    with pytest.raises(PeerStartError, match="exited with 1"):
        server.start()
    with pytest.raises(PeerError, match="no ports"):
        _ = Dovecot(shared_dir).imap_port


def test_missing_binary_is_a_start_error(shared_dir: Path) -> None:
    with pytest.raises(PeerStartError, match="not found"):
        Dovecot(shared_dir, binary=shared_dir / "no-such-dovecot").start()


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root-run Dovecot drops privileges")
def test_unreachable_root_is_reported(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    if stat.S_IMODE(private.stat().st_mode) & stat.S_IXOTH:
        pytest.fail("umask left the private directory searchable")
    with pytest.raises(PeerStartError, match="not searchable"):
        Dovecot(private / "dovecot").start()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    with scratch_directory() as path:
        yield path


def _der(cert: TLSCertificate) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert.read_text())


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"
