"""`mailwire serve --workers N`: N processes on one port and one store.

The parent prepares the store once (migrations, key check, secret file) so the
workers never race on it, then binds one listening socket per worker on the
same port with SO_REUSEPORT, and gives each worker its own. The kernel spreads
new connections over the sockets by hash; with one shared socket, whichever
worker woke first took most keep-alive connections (30 of 32 when measured)
and the others idled. A replacement worker inherits its predecessor's socket,
so connections queued on it are served, not dropped. It
announces the service only when every worker has reported that it is serving
(requests sent earlier would wait in the listen queue). It then supervises: a
worker that dies is replaced (a bounded number of times), and SIGTERM/SIGINT
is forwarded to every worker, which drains its requests; workers still alive
after the shutdown timeout are killed.

Each worker also runs its own internal node listener (see `runtime.serve`):
on a free port when `MAILWIRE_NODE_PORT` is 0, else on NODE_PORT + its index,
a replacement taking its predecessor's port.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue

from mailwire.config import Settings
from mailwire.logs import configure_logging, get_logger
from mailwire.net.listeners import bind_group
from mailwire.runtime.serve import serve
from mailwire.store.store import open_store

log = get_logger(__name__)

#: Replacements allowed for crashed workers before the parent gives up.
MAX_RESTARTS = 10
#: How long the parent waits for all workers to report ready before giving up.
READY_TIMEOUT_S = 60.0
_POLL_INTERVAL_S = 0.2


def run_workers(settings: Settings, on_ready: Callable[[str], None] | None = None) -> int:
    """Run `settings.workers` worker processes; return the exit code for the CLI."""
    asyncio.run(_prepare_store(settings))
    sockets = bind_group(settings.host, settings.port, settings.workers)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def request_stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    ready: Queue[int] = context.Queue()
    workers = [
        _spawn(context, worker_settings(settings, index), sock, ready)
        for index, sock in enumerate(sockets)
    ]
    restarts = 0
    try:
        if not _wait_until_ready(workers, ready, lambda: stopping):
            return 1
        host, port = sockets[0].getsockname()[:2]
        if on_ready is not None:
            on_ready(f"http://{host}:{port}")
        while not stopping:
            time.sleep(_POLL_INTERVAL_S)
            for index, worker in enumerate(workers):
                if worker.is_alive() or stopping:
                    continue
                restarts += 1
                log.error("workers.died", pid=worker.pid, exit_code=worker.exitcode)
                if restarts > MAX_RESTARTS:
                    log.error("workers.giving_up", restarts=restarts)
                    return 1
                replacement = worker_settings(settings, index)
                workers[index] = _spawn(context, replacement, sockets[index], ready)
    finally:
        _stop_all(workers, settings.shutdown_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in sockets:
            sock.close()
    return 0


def worker_settings(settings: Settings, index: int) -> Settings:
    """Worker `index`'s settings: its own node port (base + index), or 0 for any free one."""
    if settings.node_port == 0:
        return settings
    return settings.model_copy(update={"node_port": settings.node_port + index})


async def _prepare_store(settings: Settings) -> None:
    store = await open_store(settings)
    await store.close()


def _wait_until_ready(
    workers: list[BaseProcess], ready: Queue[int], stopping: Callable[[], bool]
) -> bool:
    """Block until every worker reported ready; False if one died or time ran out."""
    pending = {worker.pid for worker in workers}
    deadline = time.monotonic() + READY_TIMEOUT_S
    while pending and not stopping() and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            pending.discard(ready.get(timeout=_POLL_INTERVAL_S))
        dead = [w for w in workers if w.pid in pending and not w.is_alive()]
        if dead:
            log.error("workers.failed_to_start", pid=dead[0].pid, exit_code=dead[0].exitcode)
            return False
    if pending and not stopping():
        log.error("workers.not_ready", waiting=len(pending), timeout_s=READY_TIMEOUT_S)
        return False
    return True


def _spawn(
    context: multiprocessing.context.SpawnContext,
    settings: Settings,
    sock: socket.socket,
    ready: Queue[int],
) -> BaseProcess:
    process = context.Process(target=_worker_main, args=(settings, sock, ready), daemon=False)
    process.start()
    log.info("workers.started", pid=process.pid)
    return process


def _worker_main(settings: Settings, sock: socket.socket, ready: Queue[int]) -> None:
    configure_logging(settings.log_level, secrets=settings.secret_values())
    pid = os.getpid()
    asyncio.run(serve(settings, sockets=[sock], on_ready=lambda _url: ready.put(pid)))


def _stop_all(workers: list[BaseProcess], timeout: float) -> None:
    for worker in workers:
        if worker.is_alive() and worker.pid is not None:
            worker.terminate()  # SIGTERM: the worker drains, then exits
    deadline = time.monotonic() + timeout + 2
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            log.warning("workers.killed", pid=worker.pid)
            worker.kill()
            worker.join(5)
