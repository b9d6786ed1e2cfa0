"""Sending: 1,000 messages through `mailwire serve` to a local SMTP sink.

`sending.throughput`: an aiosmtpd sink runs in a process of its own and
records, for each message, its Message-ID and the moment it accepted it
(`time.monotonic()`, the same clock in every process of the machine). First
the sink's own ceiling is measured with a bare aiosmtplib loop in another
process: 1,000 messages over one connection (the best case, and what
Mailwire's session pool does for one account) and with a new connection each.
Then a
`mailwire serve` (one process, SQLite) gets the same 1,000 messages (20 KB of
text and one attachment each) through `POST /submit`, from 4 concurrent
clients, for one account and again spread over 10 accounts (its sends run at
the submit queue's default concurrency, 4 per process). End to end runs from
the first submit to the last acceptance at the sink; queue-to-accepted from
each submit's answer to that message's acceptance.

Figures:
- sending.sink_reuse_per_s, sink_connect_per_s   the bare aiosmtplib loop, messages/s
- sending.per_s_1, sending.per_s_10              Mailwire end to end, messages/s (1 and 10 accounts)
- sending.of_sink_1, of_sink_10                  Mailwire / the bare loop over one connection
- sending.latency_p50_1, p99_1, p50_10, p99_10   queue-to-accepted, ms
- sending.server_cpu_per_message                 server CPU per message, us
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import statistics
import tempfile
import time
from email.message import EmailMessage
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx

from benchmarks.cputime import tree_cpu_seconds
from benchmarks.registry import Benchmark, Session
from mailwire.testing.server import MailwireServer

MESSAGES = 1000
CLIENTS = 4
TEXT_BYTES = 20 * 1024
ATTACHMENT_BYTES = 4 * 1024
#: Longest one run may take before the benchmark gives up (seconds).
MAX_RUN_S = 600.0


# ---------------------------------------------------------------- the sink process


def _sink_main(conn: Connection) -> None:
    from aiosmtpd.controller import Controller

    arrivals: list[tuple[str, float]] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            raw: bytes = envelope.original_content or b""
            head = raw.split(b"\r\n\r\n", 1)[0]
            message_id = ""
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"message-id:"):
                    message_id = line.split(b":", 1)[1].strip().decode()
            arrivals.append((message_id, time.monotonic()))
            return "250 2.0.0 accepted"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, data_size_limit=64 << 20)
    controller.start()
    conn.send(port)
    while True:
        command = conn.recv()
        if command == "stats":
            conn.send(list(arrivals))
        elif command == "reset":
            arrivals.clear()
            conn.send(True)
        else:
            break
    controller.stop()


def _free_port() -> int:
    from mailwire.testing.ports import find_free_port

    return find_free_port()


class _Sink:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_sink_main, args=(child,), daemon=True)
        self.process.start()
        if not self._conn.poll(30):
            raise RuntimeError("the sink did not start")
        self.port = int(self._conn.recv())

    def arrivals(self) -> list[tuple[str, float]]:
        self._conn.send("stats")
        found: list[tuple[str, float]] = self._conn.recv()
        return found

    def reset(self) -> None:
        self._conn.send("reset")
        self._conn.recv()

    def close(self) -> None:
        self._conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


# ---------------------------------------------------------------- the bare client


def _message(n: int, tag: str) -> bytes:
    message = EmailMessage()
    message["From"] = "bench@example.com"
    message["To"] = f"rcpt-{n}@example.org"
    message["Subject"] = f"bench {tag} {n}"
    message["Message-ID"] = f"<bare-{tag}-{n}@example.com>"
    message.set_content("x" * TEXT_BYTES)
    message.add_attachment(b"a" * ATTACHMENT_BYTES, maintype="application", subtype="pdf")
    return message.as_bytes()


def _bare_main(port: int, reuse: bool, conn: Connection) -> None:
    async def main() -> float:
        messages = [_message(n, "r" if reuse else "c") for n in range(MESSAGES)]
        started = time.monotonic()
        if reuse:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
            await client.connect()
            for raw in messages:
                await client.sendmail("bench@example.com", ["r@example.org"], raw)
            await client.quit()
        else:
            for raw in messages:
                await aiosmtplib.send(
                    raw,
                    sender="bench@example.com",
                    recipients=["r@example.org"],
                    hostname="127.0.0.1",
                    port=port,
                    start_tls=False,
                )
        return MESSAGES / (time.monotonic() - started)

    conn.send(asyncio.run(main()))


def _bare_rate(port: int, *, reuse: bool) -> float:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_bare_main, args=(port, reuse, child), daemon=True)
    process.start()
    if not parent.poll(MAX_RUN_S):
        process.kill()
        raise TimeoutError("the bare client did not finish")
    rate = float(parent.recv())
    process.join(10)
    return rate


# ---------------------------------------------------------------- Mailwire


def _submit_body(n: int, attachment: str) -> dict[str, Any]:
    return {
        "from": {"address": "bench@example.com"},
        "to": [{"address": f"rcpt-{n}@example.org"}],
        "subject": f"bench {n}",
        "text": "x" * TEXT_BYTES,
        "attachments": [{"filename": "a.pdf", "content": attachment}],
    }


async def _submit_all(
    server: MailwireServer, accounts: list[str]
) -> tuple[dict[str, float], float]:
    """Submit MESSAGES from CLIENTS clients; returns Message-ID -> answer time, and the
    moment the first submit started."""
    attachment = base64.b64encode(b"a" * ATTACHMENT_BYTES).decode()
    answered: dict[str, float] = {}
    numbers = iter(range(MESSAGES))
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=60
    ) as api:

        async def client() -> None:
            for n in numbers:
                response = await api.post(
                    f"/v1/account/{accounts[n % len(accounts)]}/submit",
                    json=_submit_body(n, attachment),
                )
                response.raise_for_status()
                answered[response.json()["messageId"]] = time.monotonic()

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return answered, started


def _round(
    server: MailwireServer, sink: _Sink, accounts: list[str]
) -> tuple[float, list[float], float]:
    """One run of MESSAGES; returns (messages/s, latencies in ms, server CPU seconds)."""
    sink.reset()
    cpu_before = tree_cpu_seconds(server.process.pid)
    answered, started = asyncio.run(_submit_all(server, accounts))
    deadline = time.monotonic() + MAX_RUN_S
    while True:
        arrivals = dict(sink.arrivals())
        if all(message_id in arrivals for message_id in answered):
            break
        if time.monotonic() > deadline:
            missing = sum(1 for message_id in answered if message_id not in arrivals)
            raise TimeoutError(f"{missing} of {MESSAGES} messages never arrived")
        time.sleep(0.1)
    cpu = tree_cpu_seconds(server.process.pid) - cpu_before
    last = max(arrivals[message_id] for message_id in answered)
    latencies = [(arrivals[mid] - at) * 1000 for mid, at in answered.items()]
    return MESSAGES / (last - started), latencies, cpu


def run_throughput(session: Session) -> None:
    sink = _Sink()
    try:
        reuse = _bare_rate(sink.port, reuse=True)
        connect = _bare_rate(sink.port, reuse=False)
        session.report("sending.sink_reuse_per_s", reuse, "msg/s")
        session.report("sending.sink_connect_per_s", connect, "msg/s")
        with tempfile.TemporaryDirectory() as tmp:
            server = MailwireServer(Path(tmp) / "data")
            with server:
                smtp = {"host": "127.0.0.1", "port": sink.port, "secure": False}
                with httpx.Client(
                    base_url=server.url,
                    headers={"Authorization": f"Bearer {server.token}"},
                    timeout=30,
                ) as api:
                    for n in range(10):
                        api.post(
                            "/v1/account",
                            json={"account": f"send-{n}", "name": "bench", "smtp": smtp},
                        ).raise_for_status()
                cpu_total = 0.0
                for count in (1, 10):
                    accounts = [f"send-{n}" for n in range(count)]
                    rate, latencies, cpu = _round(server, sink, accounts)
                    cpu_total += cpu
                    cuts = statistics.quantiles(latencies, n=100)
                    session.report(f"sending.per_s_{count}", rate, "msg/s")
                    session.report(f"sending.of_sink_{count}", rate / reuse, "x")
                    session.report(
                        f"sending.latency_p50_{count}", statistics.median(latencies), "ms"
                    )
                    session.report(f"sending.latency_p99_{count}", cuts[98], "ms")
                session.report(
                    "sending.server_cpu_per_message", cpu_total / (2 * MESSAGES) * 1e6, "us"
                )
    finally:
        sink.close()


BENCHMARKS = (
    Benchmark(
        "sending.throughput",
        "1,000 messages (20 KB + attachment) submitted and delivered to a local SMTP sink",
        run_throughput,
    ),
)
