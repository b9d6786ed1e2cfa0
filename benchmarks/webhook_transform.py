"""Route functions: what a map function costs per event, through the sandbox and without it.

A realistic map function (EmailEngine style: pick a few fields of a
`messageNew` envelope, reshape the recipients, cut a text preview, log a line)
runs over a ~5 KB payload with a 3.4 KB plain-text body:
- through `Sandbox.run` (the JSON encoding, the pipe to the child process and
  back, a fresh QuickJS context, the call), one call at a time;
- through `engine.run` in this process (fresh context and call only): the
  engine's cost without the process hop; and again with the context made
  beforehand by `engine.prepare`, outside the timing, as the sandbox child
  does between calls (what is left on the call's path);
- through a two-process `Sandbox` with 8 concurrent callers: calls per second.
The measured time is split evenly between the four loads (`--seconds`), each
after its own `--warmup`.

Figures:
- webhook_transform.payload_bytes           JSON size of the payload
- webhook_transform.sandbox_p50, .sandbox_p99   us per call through the sandbox process
- webhook_transform.engine_p50, .engine_p99     us per call, engine only (same process)
- webhook_transform.engine_warm_p50, .engine_warm_p99   the same with the context made ahead
- webhook_transform.hop_p50                 sandbox_p50 - engine_p50: the process hop (calls
                                            back to back leave the child no idle time to
                                            make the next context ahead, so cold is the
                                            fair baseline here)
- webhook_transform.parallel_per_s          calls/s, 2 processes, 8 concurrent callers
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from benchmarks.registry import Benchmark, Session
from mailwire.webhooks.sandbox import Sandbox, engine

MAP_FUNCTION = """
const data = payload.data || {};
if (payload.event !== 'messageNew') return null;
const addresses = (list) => (list || []).map((entry) => entry.address.toLowerCase());
const text = (data.text && data.text.plain) || '';
logger.info('mapping', payload.eventId);
return {
  id: payload.eventId,
  account: payload.account,
  mailbox: payload.path,
  received: data.date,
  from: data.from ? data.from.address : null,
  to: addresses(data.to),
  cc: addresses(data.cc),
  subject: (data.subject || '').trim(),
  preview: text.replace(/\\s+/g, ' ').slice(0, 280),
  attachments: (data.attachments || []).map((a) => ({ name: a.filename, type: a.contentType })),
  tags: env.tags,
};
"""

ENV = {"tags": ["crm", "inbound"]}
MEMORY = 128 * 1024 * 1024


def message_new_payload() -> dict[str, Any]:
    """A `messageNew` envelope shaped as the relay formats it, about 5 KB of JSON."""
    paragraph = "Hello Bob, here is the quarterly report you asked for, with the figures. "
    text = (paragraph * 60)[:3400]
    return {
        "serviceUrl": "https://mail.example.com",
        "account": "sales",
        "date": "2026-11-25T22:00:00.000Z",
        "path": "INBOX",
        "specialUse": "\\Inbox",
        "event": "messageNew",
        "eventId": "0b0f1c6e-9f6c-4d39-8d8e-6a7c3f0b1e25",
        "_route": {"id": "route-1"},
        "data": {
            "id": "AAAAAQAAAeE",
            "uid": 481,
            "emailId": "1743",
            "threadId": "1743",
            "date": "2026-11-25T21:59:00.000Z",
            "flags": [],
            "labels": ["\\Inbox"],
            "unseen": True,
            "size": 18123,
            "subject": "Quarterly report Q3 ",
            "messageId": "<report-q3@example.com>",
            "from": {"name": "Alice Example", "address": "Alice@example.com"},
            "to": [
                {"name": "Bob", "address": "bob@example.com"},
                {"name": "Carol", "address": "carol@example.com"},
            ],
            "cc": [{"name": "Dan", "address": "dan@example.com"}],
            "replyTo": [{"name": "Alice Example", "address": "alice@example.com"}],
            "headers": {
                "received": ["from mx.example.com by mail.example.com; Tue, 25 Nov 2026"],
                "x-mailer": ["Example Mailer 1.0"],
                "dkim-signature": ["v=1; a=rsa-sha256; d=example.com; s=s1; " + "b" * 344],
            },
            "text": {
                "id": "AAAAAQAAAeGTkaExkaEykA",
                "encodedSize": {"plain": len(text), "html": 0},
                "plain": text,
                "hasMore": False,
            },
            "attachments": [
                {
                    "id": "AAAAAQAAAeEyLjI",
                    "contentType": "application/pdf",
                    "encodedSize": 200000,
                    "filename": "q3.pdf",
                    "embedded": False,
                    "inline": False,
                }
            ],
        },
    }


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1e6, p99 * 1e6


def _time_engine(
    payload_json: str, env_json: str, seconds: float, *, warm: bool = False
) -> list[float]:
    """Calls in this process; `warm`: with the context made beforehand, as the child does."""
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        fresh = engine.prepare(MEMORY) if warm else None
        began = time.perf_counter()
        outcome = engine.run(
            MAP_FUNCTION, payload_json, env_json, timeout=2.0, memory_limit=MEMORY, fresh=fresh
        )
        samples.append(time.perf_counter() - began)
        if not outcome.ok:
            raise RuntimeError(f"the map function failed: {outcome.error}")
    return samples


async def _time_sandbox(payload: dict[str, Any], seconds: float) -> list[float]:
    samples: list[float] = []
    async with Sandbox() as sandbox:
        end = time.perf_counter() + seconds
        while (began := time.perf_counter()) < end:
            result = await sandbox.run(MAP_FUNCTION, payload, env=ENV)
            samples.append(time.perf_counter() - began)
            if not result.ok:
                raise RuntimeError(f"the map function failed: {result.error}")
    return samples


async def _parallel(payload: dict[str, Any], warmup: float, seconds: float) -> float:
    async with Sandbox(processes=2) as sandbox:
        calls = 0
        measuring = False

        async def caller(end: float) -> None:
            nonlocal calls
            while time.perf_counter() < end:
                result = await sandbox.run(MAP_FUNCTION, payload, env=ENV)
                if not result.ok:
                    raise RuntimeError(f"the map function failed: {result.error}")
                calls += measuring

        started = time.perf_counter()
        await asyncio.gather(*(caller(started + warmup) for _ in range(8)))
        measuring, began = True, time.perf_counter()
        await asyncio.gather(*(caller(began + seconds) for _ in range(8)))
        return calls / (time.perf_counter() - began)


def run_webhook_transform(session: Session) -> None:
    payload = message_new_payload()
    payload_json = json.dumps(payload)
    env_json = json.dumps(ENV)
    share = session.options.seconds / 4
    session.report("webhook_transform.payload_bytes", len(payload_json), "bytes")

    _time_engine(payload_json, env_json, session.options.warmup)
    engine_p50, engine_p99 = _percentiles(_time_engine(payload_json, env_json, share))
    warm_p50, warm_p99 = _percentiles(_time_engine(payload_json, env_json, share, warm=True))
    asyncio.run(_time_sandbox(payload, session.options.warmup))
    sandbox_p50, sandbox_p99 = _percentiles(asyncio.run(_time_sandbox(payload, share)))

    session.report("webhook_transform.sandbox_p50", sandbox_p50, "us")
    session.report("webhook_transform.engine_p50", engine_p50, "us")
    session.report("webhook_transform.sandbox_p99", sandbox_p99, "us")
    session.report("webhook_transform.engine_p99", engine_p99, "us")
    session.report("webhook_transform.engine_warm_p50", warm_p50, "us")
    session.report("webhook_transform.engine_warm_p99", warm_p99, "us")
    session.report("webhook_transform.hop_p50", sandbox_p50 - engine_p50, "us")
    rate = asyncio.run(_parallel(payload, session.options.warmup, share))
    session.report("webhook_transform.parallel_per_s", rate, "calls/s")


BENCHMARKS = (
    Benchmark(
        "webhook_transform",
        "a map function over a messageNew payload: sandbox process vs engine alone, p50/p99",
        run_webhook_transform,
    ),
)
