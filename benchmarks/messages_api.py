"""messages_api: lists and searches from the index, and a streamed 25 MB attachment.

`messages_api` fills a private Dovecot user's INBOX with 20,000 messages
(`mailgen`) plus one with a 25 MB attachment, starts `mailwire serve` on
SQLite, registers the account through the API and waits until it is
`connected` (initial index done). Then:

- `messages_api.list.*`: `GET /v1/account/bench/messages?pageSize=20` by
  `Options.clients` concurrent keep-alive clients (see `load.py`): the page is
  one index query, no mail server involved;
- `messages_api.live.*`: the same page fetched live, as a server-backed API
  would: as many raw IMAP connections as clients, each logged in with INBOX
  selected, each sending `UID FETCH <the 20 newest UIDs> (UID FLAGS ENVELOPE
  BODYSTRUCTURE RFC822.SIZE INTERNALDATE)` over a plain socket and reading to
  the tagged OK, in a closed loop (no parsing: the live figure is a floor);
- `messages_api.live_vs_index_p50` (and `_p99`): live latency over index
  latency; the goal is at least 10;
- `messages_api.search_from.*`, `messages_api.search_unseen.*`: `POST
  /search` by sender address (about 200 matches) and by `unseen` (about 6,700),
  first page of 20, same load;
- `messages_api.attachment.*`: the 25 MB attachment downloaded
  `ATTACHMENT_ROUNDS` times, one after another: MB/s of decoded bytes, and the
  server's resident memory at its peak during the downloads over what it was
  before (`rss_growth`; streaming means it must stay far below the
  attachment's size, printed as `rss_growth_vs_size`).

Both loads run in a process of their own on the same 2-core machine as the
server and Dovecot, for the same warm-up and window.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

from benchmarks.load import LoadPlan, LoadResult, run_load
from benchmarks.mailgen import LAST_DATE, fill
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
SEARCHES = {
    "search_from": {"search": {"from": "sender5@example.com"}},
    "search_unseen": {"search": {"unseen": True}},
}
ATTACHMENT_BYTES = 25 * 1000 * 1000
ATTACHMENT_ROUNDS = 3
#: How often the server's RSS is sampled during downloads (seconds).
RSS_SAMPLE_S = 0.005


def _big_message() -> bytes:
    """A message with a `ATTACHMENT_BYTES` attachment (base64, 76-column lines)."""
    payload = bytes(range(256)) * (ATTACHMENT_BYTES // 256 + 1)
    encoded = base64.encodebytes(payload[:ATTACHMENT_BYTES]).replace(b"\n", b"\r\n")
    head = (
        b"From: Big <big@example.com>\r\nTo: bench@example.com\r\nSubject: the big one\r\n"
        b"Message-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b'--b\r\nContent-Type: application/octet-stream; name="big.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head + encoded + b"--b--\r\n"


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _download(session: Session, server: MailwireServer) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
        listed = client.get(
            f"/v1/account/{USER}/messages", params={"path": "INBOX", "pageSize": 1}
        ).json()
        newest = listed["messages"][0]
        attachment = next(a for a in newest.get("attachments", []) if a.get("filename"))
        pid = server.process.pid
        before = _rss_kib(pid)
        peak = before
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.wait(RSS_SAMPLE_S):
                peak = max(peak, _rss_kib(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        received = 0
        began = time.perf_counter()
        try:
            for _ in range(ATTACHMENT_ROUNDS):
                with client.stream("GET", f"/v1/account/{USER}/attachment/{attachment['id']}") as r:
                    r.raise_for_status()
                    for chunk in r.iter_bytes():
                        received += len(chunk)
        finally:
            elapsed = time.perf_counter() - began
            stop.set()
            sampler.join()
    expected = ATTACHMENT_BYTES * ATTACHMENT_ROUNDS
    if received != expected:
        session.note(f"messages_api: received {received} bytes, expected {expected}")
    growth_mb = (peak - before) / 1024
    session.report("messages_api.attachment.mb_per_s", received / 1e6 / elapsed, "MB/s")
    session.report("messages_api.attachment.rss_growth", growth_mb, "MiB")
    session.report(
        "messages_api.attachment.rss_growth_vs_size",
        growth_mb * 1024 * 1024 / ATTACHMENT_BYTES,
        "x",
    )


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


def _load(
    session: Session, server: MailwireServer, path: str, *, body: bytes | None = None
) -> LoadResult:
    options = session.options
    return run_load(
        LoadPlan(
            base_url=server.url,
            path=path,
            headers=(("Authorization", f"Bearer {server.token}"),),
            clients=options.clients,
            warmup=options.warmup,
            seconds=options.seconds,
            server_pid=server.process.pid,
            method="GET" if body is None else "POST",
            body=body,
        )
    )


def _report(session: Session, name: str, result: LoadResult) -> None:
    if result.errors:
        session.note(f"messages_api: {name}: {result.errors} failed: {result.error_kinds}")
    session.report(f"messages_api.{name}.rps", result.rps, "req/s")
    session.report(f"messages_api.{name}.p50", result.p50_ms, "ms")
    session.report(f"messages_api.{name}.p99", result.p99_ms, "ms")
    session.report(
        f"messages_api.{name}.server_cpu_per_req",
        result.cpu_per_request_us(result.server_cpu_s),
        "us",
    )


def run(session: Session) -> None:
    options = session.options
    with scratch_directory() as root, Dovecot(root) as dovecot:
        dovecot.add_user(USER, PASSWORD)
        began = time.perf_counter()
        fill(dovecot, USER, MESSAGES)
        dovecot.deliver(USER, _big_message(), internaldate=LAST_DATE)
        session.note(
            f"messages_api: {MESSAGES + 1} messages written in {time.perf_counter() - began:.1f} s"
        )
        with tempfile.TemporaryDirectory() as tmp, MailwireServer(Path(tmp) / "data") as server:
            began = time.perf_counter()
            _register(server, dovecot)
            session.note(
                f"messages_api: indexed and connected in {time.perf_counter() - began:.1f} s"
            )
            indexed = _load(session, server, LIST_PATH)
            searched = {
                name: _load(
                    session,
                    server,
                    f"/v1/account/{USER}/search?path=INBOX&pageSize={PAGE_SIZE}",
                    body=json.dumps(body).encode(),
                )
                for name, body in SEARCHES.items()
            }
            _download(session, server)
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
    _report(session, "list", indexed)
    live_p50 = statistics.median(live)
    live_p99 = statistics.quantiles(live, n=100)[98]
    session.report("messages_api.live.rps", len(live) / options.seconds, "req/s")
    session.report("messages_api.live.p50", live_p50, "ms")
    session.report("messages_api.live.p99", live_p99, "ms")
    session.report("messages_api.live_vs_index_p50", live_p50 / indexed.p50_ms, "x")
    session.report("messages_api.live_vs_index_p99", live_p99 / indexed.p99_ms, "x")
    for name, result in searched.items():
        _report(session, name, result)


BENCHMARKS = (
    Benchmark(
        "messages_api",
        "lists and searches from the index (32 clients) vs live pages, and a streamed 25 MB"
        " attachment with the server's RSS growth",
        run,
    ),
)
