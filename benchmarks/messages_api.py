"""messages_api: message lists from the index vs the same page fetched live from Dovecot.

`messages_api.list` fills a private Dovecot user's INBOX with 20,000 messages
(`mailgen`), starts `mailwire serve` on SQLite, registers the account through
the API and waits until it is `connected` (initial index done). Then:

- `messages_api.list.*`: `GET /v1/account/bench/messages?pageSize=20` by
  `Options.clients` concurrent keep-alive clients (see `load.py`): the page is
  one index query, no mail server involved;
- `messages_api.live.*`: the same page fetched live, as a server-backed API
  would: as many raw IMAP connections as clients, each logged in with INBOX
  selected, each sending `UID FETCH <the 20 newest UIDs> (UID FLAGS ENVELOPE
  BODYSTRUCTURE RFC822.SIZE INTERNALDATE)` over a plain socket and reading to
  the tagged OK, in a closed loop (no parsing: the live figure is a floor);
- `messages_api.live_vs_index_p50` (and `_p99`): live latency over index
  latency; the goal is at least 10.

Both loads run in a process of their own on the same 2-core machine as the
server and Dovecot, for the same warm-up and window.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

from benchmarks.load import LoadPlan, run_load
from benchmarks.mailgen import fill
from benchmarks.registry import Benchmark, Session
from mailwire.testing.dovecot import Dovecot, scratch_directory
from mailwire.testing.server import MailwireServer

MESSAGES = 20_000
PAGE_SIZE = 20
USER, PASSWORD = "bench", "bench-password"
LIST_PATH = f"/v1/account/{USER}/messages?path=INBOX&pageSize={PAGE_SIZE}"
FIELDS = b"(UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)"
#: Bounds: the initial index, and the live load's child process on top of its window.
MAX_INDEX_SECONDS = 300.0
LIVE_OVERHEAD_S = 60.0
MAX_LIVE_REQUESTS = 1_000_000


def _register(server: MailwireServer, dovecot: Dovecot) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    body = {
        "account": USER,
        "name": USER,
        "imap": {
            "host": dovecot.host,
            "port": dovecot.imap_port,
            "secure": False,
            "tls": {"rejectUnauthorized": False},
            "auth": {"user": USER, "pass": PASSWORD},
        },
    }
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        client.post("/v1/account", json=body).raise_for_status()
        deadline = time.monotonic() + MAX_INDEX_SECONDS
        while time.monotonic() < deadline:
            state = client.get(f"/v1/account/{USER}").json().get("state")
            if state == "connected":
                return
            time.sleep(0.2)
    raise TimeoutError(f"the account was not connected within {MAX_INDEX_SECONDS} s")


@dataclass(frozen=True, slots=True)
class LivePlan:
    host: str
    port: int
    clients: int
    warmup: float
    seconds: float


def run_live(plan: LivePlan) -> list[float]:
    """Latencies (ms) of live page fetches in the window, from a child process."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_live_child, args=(plan, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(plan.warmup + plan.seconds + LIVE_OVERHEAD_S):
            raise TimeoutError("the live load did not finish in time")
        result: list[float] | str = receiver.recv()
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
    if isinstance(result, str):
        raise RuntimeError(f"live load failed: {result}")
    return result


def _live_child(plan: LivePlan, sender: Connection) -> None:
    try:
        sender.send(asyncio.run(_live(plan)))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
        sender.send(repr(error))


async def _live(plan: LivePlan) -> list[float]:
    loop = asyncio.get_running_loop()
    start = loop.time() + plan.warmup
    stop = start + plan.seconds
    samples = await asyncio.gather(*(_live_client(plan, start, stop) for _ in range(plan.clients)))
    return [latency for client in samples for latency in client]


async def _live_client(plan: LivePlan, start: float, stop: float) -> list[float]:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(plan.host, plan.port)
    try:
        await _exchange(reader, writer, b"", b"* ")
        await _exchange(reader, writer, f"a LOGIN {USER} {PASSWORD}\r\n".encode(), b"a ")
        selected = await _exchange(reader, writer, b"b SELECT INBOX\r\n", b"b ")
        uid_next = int(selected.split(b"[UIDNEXT ", 1)[1].split(b"]", 1)[0])
        command = b"c UID FETCH %d:%d " % (max(uid_next - PAGE_SIZE, 1), uid_next - 1)
        latencies = []
        for _ in range(MAX_LIVE_REQUESTS):
            began = loop.time()
            if began >= stop:
                break
            await _exchange(reader, writer, command + FIELDS + b"\r\n", b"c ")
            if began >= start:
                latencies.append((loop.time() - began) * 1000)
        return latencies
    finally:
        writer.close()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: bytes, tag: bytes
) -> bytes:
    if command:
        writer.write(command)
        await writer.drain()
    received = bytearray()
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        received += line
        if line.startswith(tag):
            return bytes(received)


def run_list(session: Session) -> None:
    options = session.options
    with scratch_directory() as root, Dovecot(root) as dovecot:
        dovecot.add_user(USER, PASSWORD)
        began = time.perf_counter()
        fill(dovecot, USER, MESSAGES)
        session.note(
            f"messages_api: {MESSAGES} messages written in {time.perf_counter() - began:.1f} s"
        )
        with tempfile.TemporaryDirectory() as tmp, MailwireServer(Path(tmp) / "data") as server:
            began = time.perf_counter()
            _register(server, dovecot)
            session.note(
                f"messages_api: indexed and connected in {time.perf_counter() - began:.1f} s"
            )
            indexed = run_load(
                LoadPlan(
                    base_url=server.url,
                    path=LIST_PATH,
                    headers=(("Authorization", f"Bearer {server.token}"),),
                    clients=options.clients,
                    warmup=options.warmup,
                    seconds=options.seconds,
                    server_pid=server.process.pid,
                )
            )
        live = sorted(
            run_live(
                LivePlan(
                    dovecot.host,
                    dovecot.imap_port,
                    options.clients,
                    options.warmup,
                    options.seconds,
                )
            )
        )
    if indexed.errors:
        session.note(f"messages_api: {indexed.errors} failed requests: {indexed.error_kinds}")
    live_p50 = statistics.median(live)
    live_p99 = statistics.quantiles(live, n=100)[98]
    session.report("messages_api.list.rps", indexed.rps, "req/s")
    session.report("messages_api.list.p50", indexed.p50_ms, "ms")
    session.report("messages_api.list.p99", indexed.p99_ms, "ms")
    session.report(
        "messages_api.list.server_cpu_per_req",
        indexed.cpu_per_request_us(indexed.server_cpu_s),
        "us",
    )
    session.report("messages_api.live.rps", len(live) / options.seconds, "req/s")
    session.report("messages_api.live.p50", live_p50, "ms")
    session.report("messages_api.live.p99", live_p99, "ms")
    session.report("messages_api.live_vs_index_p50", live_p50 / indexed.p50_ms, "x")
    session.report("messages_api.live_vs_index_p99", live_p99 / indexed.p99_ms, "x")


BENCHMARKS = (
    Benchmark(
        "messages_api.list",
        "GET messages?pageSize=20 from the index vs the same page fetched live from Dovecot",
        run_list,
    ),
)
