"""The IMAP response parser, the hot path of an initial sync, against Dovecot's real output.

A private Dovecot is filled with generated messages written straight into its
Maildir (varied senders, subjects, sizes 2-50 KB, some multipart with an
attachment). One plain socket then runs the FETCH an initial index needs,
`UID FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)`,
and keeps the bytes. The parser is timed over those bytes, fed in 64 KiB
chunks as a socket would deliver them, so the figure is pure parsing cost.

Figures:
- imap_parse.fetch_bytes      MB of FETCH responses for the mailbox
- imap_parse.raw_fetch        seconds for the server to send them (plain socket, warm cache)
- imap_parse.parse            seconds for `ResponseParser` to turn them into events
- imap_parse.responses_per_s  FETCH responses parsed per second
- imap_parse.mb_per_s         MB parsed per second
- imap_parse.parse_vs_fetch   parse time / raw fetch time (below 1: the parser
                              keeps up with the server when both run pipelined)
"""

from __future__ import annotations

import random
import socket
import time
from datetime import UTC, datetime, timedelta

from benchmarks.registry import Benchmark, Session
from mailwire.protocols.imap.parser import NEED_DATA, ResponseParser
from mailwire.protocols.imap.responses import Fetch
from mailwire.testing.dovecot import Dovecot, scratch_directory

MESSAGES = 20_000
CHUNK = 64 * 1024
USER, PASSWORD = "bench", "bench-password"
FETCH_ITEMS = b"(UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)"
#: Bounds on the raw socket loop: bytes and seconds.
MAX_RESPONSE_BYTES = 512 * 1024 * 1024
MAX_FETCH_SECONDS = 300.0


def _message(rng: random.Random, n: int) -> bytes:
    size = rng.randint(2_000, 50_000)
    sender = f"Sender {n % 97} <sender{n % 97}@example.{('com', 'org', 'net')[n % 3]}>"
    headers = (
        f"From: {sender}\r\nTo: Alice <alice@example.com>, team{n % 13}@example.com\r\n"
        f"Subject: Report {n} about {rng.choice(['budget', 'launch', 'hiring', 'support'])}\r\n"
        f"Date: Tue, 3 Nov 2026 10:{n % 60:02d}:00 +0000\r\n"
        f"Message-ID: <m{n}@example.com>\r\n"
    )
    if n % 5:
        body = ("Lorem ipsum dolor sit amet. " * (size // 28 + 1))[:size]
        return (headers + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    attachment = ("QUJDRA==" * (size // 8 + 1))[:size]
    return (
        headers
        + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + "--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        + '--b\r\nContent-Type: application/pdf; name="r.pdf"\r\n'
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + attachment
        + "\r\n--b--\r\n"
    ).encode()


def _fill(dovecot: Dovecot, session: Session) -> None:
    rng = random.Random(20_000)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    for n in range(MESSAGES):
        flags = "S" if n % 3 else ""
        dovecot.deliver(USER, _message(rng, n), flags=flags, internaldate=start + timedelta(n))
    session.note(f"imap_parse: {MESSAGES} messages written in {time.perf_counter() - began:.1f} s")


def _raw_fetch(dovecot: Dovecot) -> tuple[bytes, float]:
    """Log in, select and fetch over a plain socket; return the FETCH bytes and seconds."""
    with socket.create_connection((dovecot.host, dovecot.imap_port), timeout=60) as sock:
        _exchange(sock, b"", b"* ")  # the greeting
        _exchange(sock, f"a LOGIN {USER} {PASSWORD}\r\n".encode(), b"a ")
        _exchange(sock, b"b SELECT INBOX\r\n", b"b ")
        began = time.perf_counter()
        data = _exchange(sock, b"c UID FETCH 1:* " + FETCH_ITEMS + b"\r\n", b"c ")
        elapsed = time.perf_counter() - began
        _exchange(sock, b"d LOGOUT\r\n", b"d ")
    return data, elapsed


def _exchange(sock: socket.socket, command: bytes, tag: bytes) -> bytes:
    """Send a command (if any) and read until a line starting with `tag` ends the reply."""
    if command:
        sock.sendall(command)
    received = bytearray()
    deadline = time.monotonic() + MAX_FETCH_SECONDS
    while time.monotonic() < deadline and len(received) < MAX_RESPONSE_BYTES:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        received += chunk
        if received.endswith(b"\r\n"):
            previous = received.rfind(b"\r\n", 0, len(received) - 2)
            if received.startswith(tag, 0 if previous < 0 else previous + 2):
                break
    return bytes(received)


def _parse(data: bytes) -> tuple[int, float]:
    parser = ResponseParser()
    parser.receive_data(b"* OK ready\r\n")
    fetches = 0
    began = time.perf_counter()
    for offset in range(0, len(data), CHUNK):
        parser.receive_data(data[offset : offset + CHUNK])
        while (event := parser.next_event()) is not NEED_DATA:
            fetches += isinstance(event, Fetch)
    return fetches, time.perf_counter() - began


def run_imap_parse(session: Session) -> None:
    with scratch_directory() as root, Dovecot(root) as dovecot:
        dovecot.add_user(USER, PASSWORD)
        _fill(dovecot, session)
        _raw_fetch(dovecot)  # warm Dovecot's cache and index, as in the notes
        data, fetch_seconds = _raw_fetch(dovecot)
    fetches, parse_seconds = _parse(data)
    if fetches != MESSAGES:
        session.note(f"imap_parse: parsed {fetches} FETCH responses, expected {MESSAGES}")
    megabytes = len(data) / 1e6
    session.report("imap_parse.fetch_bytes", megabytes, "MB")
    session.report("imap_parse.raw_fetch", fetch_seconds, "s")
    session.report("imap_parse.parse", parse_seconds, "s")
    session.report("imap_parse.responses_per_s", fetches / parse_seconds, "resp/s")
    session.report("imap_parse.mb_per_s", megabytes / parse_seconds, "MB/s")
    session.report("imap_parse.parse_vs_fetch", parse_seconds / fetch_seconds, "x")


BENCHMARKS = (
    Benchmark(
        "imap_parse",
        "ResponseParser over a real 20,000-message UID FETCH from Dovecot vs the raw fetch",
        run_imap_parse,
    ),
)
