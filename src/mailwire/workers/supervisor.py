"""`Supervisor`: runs one `AccountWorker` task per account this process holds a lease on.

Theory of operation. Every `poll_interval` the supervisor does one round:
heartbeat its node row, renew its leases, compare what it holds with its fair
share (`LeaseStore.fair_share`) and claim or give back the difference, then
reconcile its workers with the accounts it owns:

- an account newly owned gets a worker;
- a worker whose account is gone (deleted, or its lease taken) is stopped;
- a changed `revision` (configuration update, reconnect request) replaces the
  worker: the connection closes and a new one opens at once, with a fresh
  backoff and a closed authentication breaker;
- a changed `sync_seq` sets the worker's `wakeup` event, which the session
  sees (see `workers.session`).

Accounts given back above the fair share are stopped before their lease is
released, so the node taking them over never overlaps with this one.

Every worker task lives in the supervisor's TaskGroup, wrapped so that a
crashing worker is logged and restarted at the next round instead of taking
the group down. `stop()` starts the ordered shutdown: no more claiming,
workers cancelled (each closes its connection with a bounded LOGOUT) and
awaited up to `stop_timeout`, protocol logs flushed, leases released, node
row removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from mailwire.domain.accounts import Account
from mailwire.errors import StoreError
from mailwire.logs import get_logger
from mailwire.store.account_states import AccountStateStore
from mailwire.store.leases import LeaseStore
from mailwire.store.store import Store
from mailwire.types import Clock, now_ms
from mailwire.workers.account import AccountWorker, ConnectTimeouts, WorkerContext
from mailwire.workers.backoff import BackoffPolicy
from mailwire.workers.commands import POOL_SIZE, CommandPool
from mailwire.workers.limits import (
    HOST_BURST,
    HOST_RATE_PER_S,
    MAX_CONNECTIONS_PER_ACCOUNT,
    ConnectionCap,
    HostRateLimiter,
)
from mailwire.workers.protocol_log import FLUSH_INTERVAL_S, ProtocolLogFlusher
from mailwire.workers.session import Session, idle_session

log = get_logger(__name__)

#: Seconds between rounds (heartbeat, leases, reconcile).
POLL_INTERVAL_S = 1.0
#: How long stopping waits for workers to close their connections (seconds).
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class SupervisorOptions:
    """Tunables; the defaults are the production values, tests pass short ones."""

    poll_interval: float = POLL_INTERVAL_S
    stop_timeout: float = STOP_TIMEOUT_S
    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    timeouts: ConnectTimeouts = field(default_factory=ConnectTimeouts)
    host_burst: int = HOST_BURST
    host_rate: float = HOST_RATE_PER_S
    connections_per_account: int = MAX_CONNECTIONS_PER_ACCOUNT
    #: Of those, how many an account's command pool may hold (API requests).
    command_connections: int = POOL_SIZE
    log_flush_interval: float = FLUSH_INTERVAL_S


@dataclass(slots=True)
class _Running:
    worker: AccountWorker
    task: asyncio.Task[None]
    revision: int
    sync_seq: int


class Supervisor:
    """Owns this process's accounts; `await run()` until `stop()`."""

    def __init__(
        self,
        store: Store,
        *,
        session: Session = idle_session,
        node_id: str | None = None,
        clock: Clock = now_ms,
        options: SupervisorOptions | None = None,
        leases: LeaseStore | None = None,
        address: str | None = None,
    ) -> None:
        self.node_id = node_id or secrets.token_hex(8)
        #: Base URL of this process's internal listener, recorded with the node row.
        self.address = address
        self.options = options or SupervisorOptions()
        self.leases = leases or LeaseStore(store.database, clock=clock)
        self.states = AccountStateStore(store.database, self.node_id, clock=clock)
        self.protocol_logs = ProtocolLogFlusher(
            store.account_logs.append,
            clock=clock,
            interval=self.options.log_flush_interval,
        )
        self.context = WorkerContext(
            states=self.states,
            secrets=store.secrets,
            session=session,
            limiter=HostRateLimiter(burst=self.options.host_burst, rate=self.options.host_rate),
            caps=ConnectionCap(self.options.connections_per_account),
            protocol_logs=self.protocol_logs,
            policy=self.options.policy,
            timeouts=self.options.timeouts,
            command_connections=self.options.command_connections,
        )
        #: Set once the node is registered and the first round ran.
        self.started = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running: dict[str, _Running] = {}
        self._group: asyncio.TaskGroup | None = None

    @property
    def workers(self) -> dict[str, AccountWorker]:
        """The running workers by account id (a snapshot)."""
        return {account_id: run.worker for account_id, run in self._running.items()}

    def commands(self, account_id: str) -> CommandPool | None:
        """The account's command connections, when this process runs its worker."""
        running = self._running.get(account_id)
        return None if running is None else running.worker.commands

    def stop(self) -> None:
        """Ask `run()` to shut down in order and return."""
        self._stopping.set()

    async def run(self) -> None:
        """Register the node, run rounds until `stop()`, then shut down in order."""
        await self._register()
        log.info("supervisor.started", node=self.node_id)
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                flusher = group.create_task(self.protocol_logs.run(), name="protocol-log-flush")
                await self._loop()
                await self._stop_workers(list(self._running))
                flusher.cancel()
        finally:
            self._group = None
            await self._shutdown()

    async def _register(self) -> None:
        await self.leases.register(
            self.node_id, host=socket.gethostname(), pid=os.getpid(), address=self.address
        )

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._round()
            except StoreError as error:
                log.warning("supervisor.round_failed", error=str(error))
            self.started.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.options.poll_interval):
                    await self._stopping.wait()

    async def _shutdown(self) -> None:
        # Runs after a cancellation too: each step is bounded and best-effort.
        with contextlib.suppress(StoreError, TimeoutError):
            async with asyncio.timeout(self.options.stop_timeout):
                await self.protocol_logs.flush()
                await self.leases.unregister(self.node_id)
        log.info("supervisor.stopped", node=self.node_id)

    # ------------------------------------------------------------------ one round

    async def _round(self) -> None:
        try:
            await self.leases.heartbeat(self.node_id)
        except LookupError:
            # Forgotten after a long stall (suspend, partition): register again.
            await self._register()
        await self.leases.renew(self.node_id)
        share = await self.leases.fair_share()
        owned = await self.leases.list_owned(self.node_id)
        if len(owned) > share:
            excess = [account.id for account in owned[share:]]
            await self._stop_workers(excess)
            await self.leases.release(self.node_id, excess)
            log.info("supervisor.released", accounts=len(excess), share=share)
            owned = owned[:share]
        elif len(owned) < share and await self.leases.claim(self.node_id, share - len(owned)):
            owned = await self.leases.list_owned(self.node_id)
        await self._reconcile(owned)

    async def _reconcile(self, owned: list[Account]) -> None:
        by_id = {account.id: account for account in owned}
        gone = [account_id for account_id in self._running if account_id not in by_id]
        changed = [
            account.id
            for account in owned
            if account.id in self._running
            and (
                self._running[account.id].revision != account.revision
                or self._running[account.id].task.done()
            )
        ]
        await self._stop_workers(gone + changed)
        for account in owned:
            running = self._running.get(account.id)
            if running is None:
                self._start_worker(account)
            elif running.sync_seq != account.sync_seq:
                running.sync_seq = account.sync_seq
                running.worker.wakeup.set()

    def _start_worker(self, account: Account) -> None:
        assert self._group is not None
        worker = AccountWorker(account, self.context)
        task = self._group.create_task(_guarded(worker), name=f"account:{account.id}")
        self._running[account.id] = _Running(worker, task, account.revision, account.sync_seq)

    async def _stop_workers(self, account_ids: Iterable[str]) -> None:
        tasks = []
        for account_id in account_ids:
            running = self._running.pop(account_id, None)
            if running is not None:
                running.task.cancel()
                tasks.append(running.task)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.options.stop_timeout)
            if pending:
                log.warning("supervisor.workers_slow_to_stop", count=len(pending))


async def _guarded(worker: AccountWorker) -> None:
    """Run a worker; a crash is logged (the next round restarts it), never propagated."""
    try:
        await worker.run()
    except Exception:
        log.exception("supervisor.worker_crashed", account=worker.account.id)
