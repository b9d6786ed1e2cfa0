"""`mailwire serve --workers 2`: several processes answer, and SIGTERM stops them all."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mailwire.testing.server import MailwireServer

StartServer = Callable[..., MailwireServer]


def children_of(pid: int) -> dict[int, str]:
    """Live (not zombie) processes whose parent is `pid`: pid -> start time in ticks."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid, start_time = fields[0], int(fields[1]), fields[19]
        if ppid == pid and state != "Z":
            found[int(entry.name)] = start_time
    return found


def still_running(processes: dict[int, str]) -> list[int]:
    """Those of `processes` that still exist as the same process (same start time)."""
    alive = []
    for pid, start_time in processes.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[19] == start_time and fields[0] != "Z":
            alive.append(pid)
    return alive


def wait_for_children(pid: int, count: int, timeout: float = 20.0) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        children = children_of(pid)
        if len(children) >= count:
            return children
        assert time.monotonic() < deadline, f"expected {count} worker processes: {children}"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_workers_serve_in_parallel_and_stop_together(start_server: StartServer) -> None:
    server = start_server(args=("--workers", "2"))
    parent = server.process.pid
    workers = wait_for_children(parent, 2)
    # The parent announces the socket at once; each worker logs when it serves.
    deadline = time.monotonic() + 30
    while server.logs().count('"runtime.listening"') < 2:
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)

    def list_tokens(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            response = client.get("/v1/tokens", headers={"Authorization": f"Bearer {server.token}"})
        return response.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(list_tokens, range(48)))
    health = httpx.get(f"{server.url}/health", timeout=10)

    assert statuses == [200] * 48
    assert health.json()["store"] == "ok"
    assert len(still_running(workers)) >= 2

    code = server.stop()

    assert code == 0
    deadline = time.monotonic() + 10
    while still_running(workers):
        assert time.monotonic() < deadline, f"left running: {still_running(workers)}"
        time.sleep(0.05)
    logs = server.logs()
    started = [json.loads(line)["pid"] for line in logs.splitlines() if '"workers.started"' in line]
    assert len(started) == 2
    assert set(started) <= set(workers)
    for pid in started:
        assert f"Finished server process [{pid}]" in logs
    # Each worker drained and closed its store: one "stopped" line per worker.
    assert logs.count('"runtime.stopped"') == 2
    assert '"workers.killed"' not in logs
