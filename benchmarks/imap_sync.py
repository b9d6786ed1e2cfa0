"""The sync engine against a private Dovecot: initial index cost, change latency, memory.

`imap_sync.index`: a 20,000-message INBOX (see `mailgen`) is indexed from
scratch by the product's own session (`AccountSync`: LIST, SELECT, UID SEARCH,
batched UID FETCH, parse, SQLite writes) on a fresh store, and compared with a
raw `UID FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)`
over a plain socket. Both run after one warm-up fetch, so Dovecot's cache is
warm for both.

Figures:
- imap_sync.raw_fetch         seconds for the raw FETCH (server time, no parsing)
- imap_sync.index             seconds from login to "initial sync done"
- imap_sync.index_vs_raw      index / raw (goal: at most 1.3)
- imap_sync.index_msgs_per_s  messages indexed per second
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks.mailgen import fill
from benchmarks.rawimap import raw_fetch
from benchmarks.registry import Benchmark, Session
from mailwire.backends.imap.connection import ImapConnection
from mailwire.backends.imap.sync import AccountSync
from mailwire.config import Settings
from mailwire.logs import configure_logging
from mailwire.store.accounts import AccountValues
from mailwire.store.store import open_store
from mailwire.testing.dovecot import Dovecot, scratch_directory

MESSAGES = 20_000
USER, PASSWORD = "bench", "bench-password"
#: Longest an initial index may take before the benchmark gives up.
MAX_INDEX_SECONDS = 600.0


async def _index(dovecot: Dovecot, data_dir: Path) -> tuple[float, int]:
    store = await open_store(Settings(data_dir=data_dir, secret="benchmark-secret-0123456789"))
    try:
        settings = {
            "imap": {"host": dovecot.host, "port": dovecot.imap_port, "auth": {"user": USER}}
        }
        # Created now, as a user would: the existing mail is indexed without events.
        values = AccountValues(
            name=USER, email=None, settings=settings, notify_from=int(time.time() * 1000)
        )
        await store.accounts.create_or_update(USER, values, {"imap.pass": PASSWORD})
        account = await store.accounts.get(USER)
        assert account is not None
        began = time.perf_counter()
        conn = await ImapConnection.open(dovecot.host, dovecot.imap_port, security="none")
        await conn.login(USER, PASSWORD)
        done = asyncio.Event()

        async def ready() -> None:
            done.set()

        task = asyncio.create_task(
            AccountSync(account, conn, store.index).run(ready, asyncio.Event())
        )
        async with asyncio.timeout(MAX_INDEX_SECONDS):
            waiter = asyncio.create_task(done.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        elapsed = time.perf_counter() - began
        task.cancel()
        await asyncio.gather(task, waiter, return_exceptions=True)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        await conn.close()
        inbox = next(m for m in await store.index.mailboxes(USER) if m.path == "INBOX")
        return elapsed, inbox.messages
    finally:
        await store.close()


def run_index(session: Session) -> None:
    configure_logging("warning")
    with scratch_directory() as root, Dovecot(root) as dovecot:
        dovecot.add_user(USER, PASSWORD)
        began = time.perf_counter()
        fill(dovecot, USER, MESSAGES)
        session.note(
            f"imap_sync: {MESSAGES} messages written in {time.perf_counter() - began:.1f} s"
        )
        raw_fetch(dovecot.host, dovecot.imap_port, USER, PASSWORD)  # warm the server's cache
        data, raw_seconds = raw_fetch(dovecot.host, dovecot.imap_port, USER, PASSWORD)
        with tempfile.TemporaryDirectory() as data_dir:
            index_seconds, indexed = asyncio.run(_index(dovecot, Path(data_dir)))
    if indexed != MESSAGES:
        session.note(f"imap_sync: indexed {indexed} messages, expected {MESSAGES}")
    session.note(f"imap_sync: raw FETCH returned {len(data) / 1e6:.1f} MB")
    session.report("imap_sync.raw_fetch", raw_seconds, "s")
    session.report("imap_sync.index", index_seconds, "s")
    session.report("imap_sync.index_vs_raw", index_seconds / raw_seconds, "x")
    session.report("imap_sync.index_msgs_per_s", indexed / index_seconds, "msg/s")


BENCHMARKS = (
    Benchmark(
        "imap_sync.index",
        "initial index of a 20,000-message INBOX by the sync engine vs a raw FETCH",
        run_index,
    ),
)
