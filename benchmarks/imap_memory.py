"""Resident memory of Mailwire per idle connected IMAP account, with 1,000 accounts.

`imap_sync.memory`: a private Dovecot with 1,000 users; 1,000 accounts on them
run under the account supervisor exactly as `mailwire serve` runs them (sync
session, SQLite store, STARTTLS with the test server's self-signed
certificate), with the per-host connection limiter raised through
`SupervisorOptions` as an operator would (the defaults, a burst of 10 then 5
a second, would take 200 s to connect them all).

How memory is measured. The supervisor runs in a spawned child process of its
own, so nothing of the benchmark harness, of Dovecot's launcher or of the
parent's imports is counted. The child reads its own `VmRSS` from
`/proc/self/status` twice, each time after `gc.collect()`:

1. baseline: the store open and the supervisor running its rounds with no
   account at all (every module the product needs is imported by then);
2. after: the 1,000 accounts created through the store (as the API would),
   every one `connected` (initial sync done, the session IDLEs on INBOX and
   sweeps the other folders with STATUS), then `IDLE_SECONDS` of idling so
   that every account has been through at least one sweep.

Per account = (after - baseline) / accounts connected at the second reading.
It counts everything an account costs the process: its worker task and
session, the connection's buffers and TLS state (OpenSSL's allocations too,
which `tracemalloc` would not see), the index rows it caused SQLite to cache,
and the allocator's fragmentation. `VmHWM` (the peak) shows what connecting
all of them at once cost on top.

Figures:
- imap_sync.memory_per_account  KiB per idle connected account (goal: under 1 MiB)
- imap_sync.memory_total        MiB of the whole child process at the second reading
- imap_sync.memory_baseline     MiB of the child with the supervisor and no account
- imap_sync.memory_peak         MiB, the child's peak resident memory (VmHWM)
- imap_sync.memory_connect_all  seconds from creating the accounts to all connected
"""

from __future__ import annotations

import asyncio
import functools
import gc
import multiprocessing
import resource
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from benchmarks.registry import Benchmark, Session
from mailwire.backends.imap.sync import sync_session
from mailwire.config import Settings
from mailwire.domain.accounts import AccountState
from mailwire.logs import configure_logging
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store, open_store
from mailwire.testing.dovecot import Dovecot, scratch_directory
from mailwire.workers.supervisor import Supervisor, SupervisorOptions

ACCOUNTS = 1000
PASSWORD = "bench-password"
SECRET = "benchmark-secret-0123456789"
#: The operator's limiter settings for one big local server: 100 opens at once,
#: then 100 a second (about 10 s for 1,000 accounts if the machine keeps up).
HOST_BURST = 100
HOST_RATE = 100.0
#: Wanted soft limit on open files: 1,000 sockets here, and Dovecot (started
#: from this process, so inheriting it) holds several descriptors per session.
WANTED_NOFILE = 16384
#: Bounds: the supervisor's first round, the settling before the baseline, all
#: accounts connected, the idle time before the second reading, the whole child.
MAX_START_SECONDS = 30.0
SETTLE_SECONDS = 3.0
MAX_CONNECT_SECONDS = 300.0
IDLE_SECONDS = 15.0
POLL_SECONDS = 1.0
MAX_CHILD_SECONDS = MAX_START_SECONDS + MAX_CONNECT_SECONDS + IDLE_SECONDS + 120.0
JOIN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Memory:
    """Readings of `/proc/self/status`, in KiB."""

    rss: int
    peak: int


@dataclass(slots=True)
class Outcome:
    """What the child measured; sent back to the parent over a pipe."""

    baseline: Memory | None = None
    after: Memory | None = None
    connected: int = 0
    connect_seconds: float | None = None
    states: dict[str, int] = field(default_factory=dict)
    sample_error: str | None = None
    crash: str | None = None


def _memory() -> Memory:
    fields: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            fields[key] = int(value.split()[0])  # "123456 kB"
    return Memory(rss=fields["VmRSS"], peak=fields["VmHWM"])


def _settled_memory() -> Memory:
    gc.collect()
    return _memory()


async def _create_accounts(store: Store, host: str, port: int) -> None:
    now = int(time.time() * 1000)
    for n in range(ACCOUNTS):
        user = f"mem{n}"
        imap = {
            "host": host,
            "port": port,
            "auth": {"user": user},
            # The private Dovecot offers STARTTLS with a self-signed certificate.
            "tls": {"rejectUnauthorized": False},
        }
        values = AccountValues(name=user, email=None, settings={"imap": imap}, notify_from=now)
        await store.accounts.create_or_update(user, values, {"imap.pass": PASSWORD})


async def _count(store: Store, state: AccountState) -> int:
    return (await store.accounts.list(page=0, page_size=1, state=state)).total


async def _wait_connected(store: Store) -> int:
    """Poll until every account is connected or the bound passes; the count connected."""
    connected = 0
    deadline = time.monotonic() + MAX_CONNECT_SECONDS
    for _ in range(int(MAX_CONNECT_SECONDS / POLL_SECONDS) + 1):
        connected = await _count(store, AccountState.CONNECTED)
        if connected >= ACCOUNTS or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    return connected


async def _explain(store: Store, outcome: Outcome) -> None:
    """Accounts per state, and one stored error, for the note on a shortfall."""
    for state in AccountState:
        count = await _count(store, state)
        if count:
            outcome.states[str(state)] = count
    page = await store.accounts.list(page=0, page_size=ACCOUNTS)
    errors = [a.last_error for a in page.accounts if a.state != AccountState.CONNECTED]
    outcome.sample_error = next((str(e) for e in errors if e), None)


async def _measure(host: str, port: int, data_dir: Path, outcome: Outcome) -> None:
    store = await open_store(Settings(data_dir=data_dir, secret=SECRET))
    options = SupervisorOptions(host_burst=HOST_BURST, host_rate=HOST_RATE)
    supervisor = Supervisor(
        store, session=functools.partial(sync_session, store.index), options=options
    )
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(supervisor.run())
            try:
                async with asyncio.timeout(MAX_START_SECONDS):
                    await supervisor.started.wait()
                await asyncio.sleep(SETTLE_SECONDS)  # a few empty rounds
                outcome.baseline = _settled_memory()
                began = time.perf_counter()
                await _create_accounts(store, host, port)
                outcome.connected = await _wait_connected(store)
                if outcome.connected >= ACCOUNTS:
                    outcome.connect_seconds = time.perf_counter() - began
                await asyncio.sleep(IDLE_SECONDS)
                outcome.after = _settled_memory()
                outcome.connected = await _count(store, AccountState.CONNECTED)
                await _explain(store, outcome)
            finally:
                supervisor.stop()
    finally:
        await store.close()


def _child(pipe: Connection, host: str, port: int, data_dir: str) -> None:
    """The measured process: run the supervisor, send the `Outcome` back, exit."""
    configure_logging("warning")
    outcome = Outcome()
    try:
        asyncio.run(_measure(host, port, Path(data_dir), outcome))
    except BaseException:  # noqa: BLE001 - whatever happened, the parent hears of it
        outcome.crash = traceback.format_exc()
    pipe.send(outcome)
    pipe.close()


def _run_child(dovecot: Dovecot, data_dir: str) -> Outcome:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child,
        args=(sender, dovecot.host, dovecot.imap_port, data_dir),
        name="imap-memory",
        daemon=True,
    )
    process.start()
    sender.close()
    try:
        if not receiver.poll(MAX_CHILD_SECONDS):
            return Outcome(crash=f"no answer from the child within {MAX_CHILD_SECONDS:g} s")
        outcome: Outcome = receiver.recv()
        return outcome
    except EOFError:
        return Outcome(crash=f"the child exited with code {process.exitcode} and said nothing")
    finally:
        receiver.close()
        process.join(JOIN_SECONDS)
        if process.is_alive():
            process.kill()
            process.join(JOIN_SECONDS)


def _raise_nofile(session: Session) -> None:
    """Raise this process's soft limit on open files toward `WANTED_NOFILE` (children inherit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = WANTED_NOFILE if hard == resource.RLIM_INFINITY else min(WANTED_NOFILE, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        session.note(f"imap_sync.memory: open-file soft limit raised from {soft} to {ceiling}")
    else:
        session.note(f"imap_sync.memory: open-file soft limit {soft} (hard {hard}) kept")


def _report(session: Session, outcome: Outcome) -> None:
    if outcome.crash is not None:
        session.note(f"imap_sync.memory: measurement failed:\n{outcome.crash}")
    if outcome.connected < ACCOUNTS:
        session.note(
            f"imap_sync.memory: {outcome.connected} of {ACCOUNTS} accounts connected "
            f"(states {outcome.states or 'unknown'}; an error: {outcome.sample_error})"
        )
    if outcome.connect_seconds is not None:
        session.report("imap_sync.memory_connect_all", outcome.connect_seconds, "s")
    if outcome.baseline is None or outcome.after is None or outcome.connected == 0:
        return
    per_account = (outcome.after.rss - outcome.baseline.rss) / outcome.connected
    session.report("imap_sync.memory_per_account", per_account, "KiB")
    session.report("imap_sync.memory_total", outcome.after.rss / 1024, "MiB")
    session.report("imap_sync.memory_baseline", outcome.baseline.rss / 1024, "MiB")
    session.report("imap_sync.memory_peak", outcome.after.peak / 1024, "MiB")


def run_memory(session: Session) -> None:
    configure_logging("warning")
    _raise_nofile(session)
    with scratch_directory() as root:
        dovecot = Dovecot(root)
        began = time.perf_counter()
        for n in range(ACCOUNTS):
            dovecot.add_user(f"mem{n}", PASSWORD)  # before start: no reload wait per user
        session.note(
            f"imap_sync.memory: {ACCOUNTS} users written in {time.perf_counter() - began:.1f} s"
        )
        with dovecot, tempfile.TemporaryDirectory() as data_dir:
            outcome = _run_child(dovecot, data_dir)
    _report(session, outcome)


BENCHMARKS = (
    Benchmark(
        "imap_sync.memory",
        "resident memory per idle connected account with 1,000 accounts",
        run_memory,
    ),
)
