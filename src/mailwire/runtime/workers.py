"""`mailwire serve --workers N`: N processes sharing one listening socket and one store.

The parent prepares the store once (migrations, key check, secret file) so the
workers never race on it, binds the socket, and spawns the workers with it. It
then supervises: a worker that dies is replaced (a bounded number of times),
and SIGTERM/SIGINT is forwarded to every worker, which drains its requests;
workers still alive after the shutdown timeout are killed.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from mailwire.config import Settings
from mailwire.logs import configure_logging, get_logger
from mailwire.runtime.serve import serve
from mailwire.store.store import open_store

log = get_logger(__name__)

#: Replacements allowed for crashed workers before the parent gives up.
MAX_RESTARTS = 10
_POLL_INTERVAL_S = 0.2


def run_workers(settings: Settings, on_ready: Callable[[str], None] | None = None) -> int:
    """Run `settings.workers` worker processes; return the exit code for the CLI."""
    asyncio.run(_prepare_store(settings))
    sock = _bind(settings)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def request_stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers = [_spawn(context, settings, sock) for _ in range(settings.workers)]
    host, port = sock.getsockname()[:2]
    if on_ready is not None:
        on_ready(f"http://{host}:{port}")
    restarts = 0
    try:
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
                workers[index] = _spawn(context, settings, sock)
    finally:
        _stop_all(workers, settings.shutdown_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return 0


async def _prepare_store(settings: Settings) -> None:
    store = await open_store(settings)
    await store.close()


def _bind(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _spawn(
    context: multiprocessing.context.SpawnContext, settings: Settings, sock: socket.socket
) -> BaseProcess:
    process = context.Process(target=_worker_main, args=(settings, sock), daemon=False)
    process.start()
    log.info("workers.started", pid=process.pid)
    return process


def _worker_main(settings: Settings, sock: socket.socket) -> None:
    configure_logging(settings.log_level, secrets=settings.secret_values())
    asyncio.run(serve(settings, sockets=[sock]))


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
