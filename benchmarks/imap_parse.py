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

import time

from benchmarks.mailgen import fill
from benchmarks.rawimap import raw_fetch
from benchmarks.registry import Benchmark, Session
from mailwire.protocols.imap.parser import NEED_DATA, ResponseParser
from mailwire.protocols.imap.responses import Fetch
from mailwire.testing.dovecot import Dovecot, scratch_directory

MESSAGES = 20_000
CHUNK = 64 * 1024
USER, PASSWORD = "bench", "bench-password"


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
        began = time.perf_counter()
        fill(dovecot, USER, MESSAGES)
        session.note(
            f"imap_parse: {MESSAGES} messages written in {time.perf_counter() - began:.1f} s"
        )
        raw_fetch(dovecot.host, dovecot.imap_port, USER, PASSWORD)  # warm Dovecot's cache
        data, fetch_seconds = raw_fetch(dovecot.host, dovecot.imap_port, USER, PASSWORD)
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
