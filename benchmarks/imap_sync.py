"""The sync engine against a private Dovecot: initial index cost, change latency, memory.

`imap_sync.index`: a 20,000-message INBOX (see `mailgen`) is indexed from
scratch by the product's own session (`AccountSync`: LIST, SELECT, UID SEARCH,
batched UID FETCH, parse, SQLite writes) on a fresh store, and compared with a
raw `UID FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)`
over a plain socket. Both run after one warm-up fetch, so Dovecot's cache is
warm for both.

`imap_sync.latency`: 100 accounts on 100 Dovecot users run under the account
supervisor exactly as `mailwire serve` runs them (sync session, SQLite store).
Once all are connected, 100 messages are appended one after another to one of
them by another client; each latency is from the APPEND's tagged OK to the
`messageNew` row being readable in the outbox (polled every 5 ms).

`imap_sync.idle_floor` measures the same latency for a bare IDLE client on a
plain socket (the time from the APPEND's OK to Dovecot's `* n EXISTS`): Dovecot
holds every IDLE notification back by 500 ms to coalesce changes
(`NOTIFY_DELAY_MSECS` in its mailbox watcher), so no IDLE client can see a new
message sooner. The difference between the two is Mailwire's own share.

Figures:
- imap_sync.raw_fetch         seconds for the raw FETCH (server time, no parsing)
- imap_sync.index             seconds from login to "initial sync done"
- imap_sync.index_vs_raw      index / raw (goal: at most 1.3)
- imap_sync.index_msgs_per_s  messages indexed per second
- imap_sync.connect_all       seconds until all 100 accounts were connected
- imap_sync.latency_p50, _p99 APPEND -> messageNew visible, milliseconds (goal p99 < 500)
- imap_sync.idle_floor_p50, _p99  APPEND -> `* n EXISTS` on a bare IDLE socket, milliseconds
- imap_sync.latency_over_floor_p50  Mailwire's p50 minus the bare client's p50
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import imaplib
import socket
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.mailgen import fill
from benchmarks.rawimap import exchange, raw_fetch
from benchmarks.registry import Benchmark, Session
from mailwire.backends.imap.connection import ImapConnection
from mailwire.backends.imap.sync import AccountSync, sync_session
from mailwire.config import Settings
from mailwire.domain.events import EventName
from mailwire.logs import configure_logging
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store, open_store
from mailwire.testing.dovecot import Dovecot, scratch_directory
from mailwire.workers.supervisor import Supervisor

MESSAGES = 20_000
USER, PASSWORD = "bench", "bench-password"
#: Longest an initial index may take before the benchmark gives up.
MAX_INDEX_SECONDS = 600.0
IDLE_ACCOUNTS = 100
APPENDS = 100
#: Bounds on the latency run: time to connect everything, and to see one event.
MAX_CONNECT_SECONDS = 120.0
MAX_EVENT_SECONDS = 30.0
#: The bare IDLE client's user and how many appends it times.
FLOOR_USER, FLOOR_APPENDS = "floor", 30


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


async def _connect_all(store: Store, dovecot: Dovecot) -> None:
    now = int(time.time() * 1000)
    for n in range(IDLE_ACCOUNTS):
        user = f"idle{n}"
        imap = {
            "host": dovecot.host,
            "port": dovecot.imap_port,
            "auth": {"user": user},
            # The private Dovecot offers STARTTLS with a self-signed certificate.
            "tls": {"rejectUnauthorized": False},
        }
        values = AccountValues(name=user, email=None, settings={"imap": imap}, notify_from=now)
        await store.accounts.create_or_update(user, values, {"imap.pass": PASSWORD})


async def _all_connected(store: Store) -> bool:
    page = await store.accounts.list(page=0, page_size=IDLE_ACCOUNTS)
    return sum(account.state == "connected" for account in page.accounts) == IDLE_ACCOUNTS


def _append(dovecot: Dovecot, subject: str, *, user: str = "idle0") -> float:
    """APPEND one message as another client; returns the moment the server confirmed it."""
    client = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    try:
        client.login(user, PASSWORD)
        raw = f"From: a@example.com\r\nSubject: {subject}\r\n\r\nhello\r\n".encode()
        client.append("INBOX", "", imaplib.Time2Internaldate(dt.datetime.now(dt.UTC)), raw)
        return time.perf_counter()
    finally:
        client.logout()


async def _latencies(store: Store, dovecot: Dovecot) -> list[float]:
    seen = await store.outbox.last_seq()
    latencies = []
    for n in range(APPENDS):
        appended = await asyncio.to_thread(_append, dovecot, f"latency {n}")
        async with asyncio.timeout(MAX_EVENT_SECONDS):
            while True:
                events = await store.outbox.read_after(seen)
                if events:
                    seen = events[-1].seq
                if any(e.event == EventName.MESSAGE_NEW and e.account == "idle0" for e in events):
                    break
                await asyncio.sleep(0.005)
        latencies.append((time.perf_counter() - appended) * 1000)
    return latencies


async def _latency_run(dovecot: Dovecot, data_dir: Path, session: Session) -> None:
    store = await open_store(Settings(data_dir=data_dir, secret="benchmark-secret-0123456789"))
    supervisor = Supervisor(store, session=functools.partial(sync_session, store.index))
    try:
        async with asyncio.TaskGroup() as group:
            await _connect_all(store, dovecot)
            began = time.perf_counter()
            group.create_task(supervisor.run())
            async with asyncio.timeout(MAX_CONNECT_SECONDS):
                while not await _all_connected(store):  # noqa: ASYNC110 - state is in the store
                    await asyncio.sleep(0.1)
            session.report("imap_sync.connect_all", time.perf_counter() - began, "s")
            try:
                latencies = await _latencies(store, dovecot)
            finally:
                supervisor.stop()
    finally:
        await store.close()
    cuts = statistics.quantiles(latencies, n=100)
    session.report("imap_sync.latency_p50", statistics.median(latencies), "ms")
    session.report("imap_sync.latency_p99", cuts[98], "ms")


def _idle_floor(dovecot: Dovecot, user: str, appends: int) -> list[float]:
    """APPEND -> `* n EXISTS` for a bare IDLE client on a plain socket, in milliseconds."""
    latencies = []
    with socket.create_connection((dovecot.host, dovecot.imap_port), timeout=30) as sock:
        exchange(sock, b"", b"* ")
        exchange(sock, f"a LOGIN {user} {PASSWORD}\r\n".encode(), b"a ")
        exchange(sock, b"b SELECT INBOX\r\n", b"b ")
        sock.sendall(b"c IDLE\r\n")
        _read_until(sock, b"+ ")
        for n in range(appends):
            appended = _append(dovecot, f"floor {n}", user=user)
            _read_until(sock, b" EXISTS\r\n")
            latencies.append((time.perf_counter() - appended) * 1000)
        sock.sendall(b"DONE\r\n")
        _read_until(sock, b"c OK")
    return latencies


def _read_until(sock: socket.socket, marker: bytes) -> None:
    """Read until `marker` arrives (bounded by the socket's timeout and MAX_EVENT_SECONDS)."""
    received = b""
    deadline = time.monotonic() + MAX_EVENT_SECONDS
    while marker not in received:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {marker!r} from the server")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        received = received[-len(marker) :] + chunk


def run_latency(session: Session) -> None:
    configure_logging("warning")
    with scratch_directory() as root:
        dovecot = Dovecot(root)
        for n in range(IDLE_ACCOUNTS):
            dovecot.add_user(f"idle{n}", PASSWORD)  # before start: no reload wait per user
        dovecot.add_user(FLOOR_USER, PASSWORD)
        with dovecot, tempfile.TemporaryDirectory() as data_dir:
            floor = _idle_floor(dovecot, FLOOR_USER, FLOOR_APPENDS)
            session.report("imap_sync.idle_floor_p50", statistics.median(floor), "ms")
            session.report("imap_sync.idle_floor_p99", statistics.quantiles(floor, n=100)[98], "ms")
            asyncio.run(_latency_run(dovecot, Path(data_dir), session))
    ours = session.figures.get("imap_sync.latency_p50")
    if ours is not None:
        over = ours - statistics.median(floor)
        session.report("imap_sync.latency_over_floor_p50", over, "ms")


BENCHMARKS = (
    Benchmark(
        "imap_sync.index",
        "initial index of a 20,000-message INBOX by the sync engine vs a raw FETCH",
        run_index,
    ),
    Benchmark(
        "imap_sync.latency",
        "APPEND -> messageNew p50/p99 with 100 accounts connected under the supervisor",
        run_latency,
    ),
)
