"""SIGKILL during a batch of 200 sends, ten times, restarting each time: every message arrives.

Messages are queued through the API, then the server is killed at random
moments while it delivers them to an SMTP sink. A send is recorded as done
after the server's 250 reply; a kill between that reply and the commit leaves
the entry `sending`, and the next attempt (after the job's lease expires)
sends it again with the same Message-ID. So the test asserts that every
message arrived, that a message that arrived twice was being sent at a kill,
and that every entry ended `sent` with one `messageSent`; it prints how many
arrived twice.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mailwire.config import Settings
from mailwire.domain.events import EventName
from mailwire.domain.sending import SendState
from mailwire.store.store import open_store
from mailwire.testing.server import MailwireServer
from mailwire.testing.smtp_sink import SmtpSink

ACCOUNTS = 4
MESSAGES = 200
KILLS = 10
#: Jobs of a killed process wait for their lease (60 s) before another takes them.
DRAIN_S = 240.0
#: A message counts as being sent at a kill when it first arrived this close before it.
IN_FLIGHT_S = 5.0

StartServer = Callable[..., MailwireServer]
RegisterAccount = Callable[..., str]


async def final_states(data_dir: Path, queue_ids: list[str]) -> tuple[Counter[str], int]:
    settings = Settings(
        data_dir=data_dir, database_url=None, database_schema=None, secret=None, previous_secrets=()
    )
    store = await open_store(settings)
    try:
        states: Counter[str] = Counter()
        for queue_id in queue_ids:
            entry = await store.send_queue.get(queue_id)
            states[str(entry.state if entry else "missing")] += 1
        events = await store.outbox.read_after(0, limit=10_000)
        sent = sum(
            1
            for event in events
            if event.event == EventName.MESSAGE_SENT and event.data.get("queueId") in queue_ids
        )
        return states, sent
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_during_sending_loses_nothing(
    start_server: StartServer, register_account: RegisterAccount
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed {seed}")
    with SmtpSink() as sink:
        server = start_server()
        api = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30
        )
        accounts = [f"burst-{n}" for n in range(ACCOUNTS)]
        for account in accounts:
            register_account(
                server, account, smtp={"host": sink.host, "port": sink.port, "secure": False}
            )
        queued: dict[str, str] = {}  # queue id -> Message-ID
        for n in range(MESSAGES):
            response = api.post(
                f"/v1/account/{accounts[n % ACCOUNTS]}/submit",
                json={
                    "from": {"address": "burst@example.com"},
                    "to": [{"address": f"rcpt-{n}@example.org"}],
                    "subject": f"burst {n}",
                    "text": "x",
                },
            )
            assert response.status_code == 200, response.text
            queued[response.json()["queueId"]] = response.json()["messageId"]
        api.close()

        kills: list[float] = []
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.05, 1.0))
            kills.append(time.monotonic())
            server.kill()
            server.start()

        wanted = set(queued.values())
        deadline = time.monotonic() + DRAIN_S
        arrivals: dict[str, list[float]] = {}
        while time.monotonic() < deadline:
            seen = Counter(_message_id(m.raw) for m in sink.messages)
            if wanted <= set(seen):
                break
            time.sleep(0.5)
        time.sleep(2.0)  # let the last completions be written
        server.stop()
        received = sink.messages

    counts = Counter(_message_id(m.raw) for m in received)
    missing = wanted - set(counts)
    assert not missing, f"{len(missing)} messages never arrived"
    duplicates = {mid: n for mid, n in counts.items() if mid in wanted and n > 1}
    for message in received:
        arrivals.setdefault(_message_id(message.raw), []).append(message.at)
    for mid in duplicates:
        first = arrivals[mid][0]
        assert any(0 <= kill - first < IN_FLIGHT_S for kill in kills), (
            f"{mid} arrived {counts[mid]} times but was not being sent at any kill"
        )
    states, sent_events = asyncio.run(final_states(server.data_dir, list(queued)))
    assert states == Counter({str(SendState.SENT): MESSAGES}), states
    assert sent_events == MESSAGES
    print(f"{MESSAGES} messages, {KILLS} kills: {len(duplicates)} arrived twice")


def _message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
        if not line:
            break
    return ""
