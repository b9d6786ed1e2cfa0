"""Sending in a running process: the `submit` job runner and the queue's pruning.

Every process runs a runner; they share the queue through leases
(`jobs.runner`). Finished entries (sent, failed, cancelled) are kept
`KEEP_FINISHED_MS` for Idempotency-Key replays, then pruned.
"""

from __future__ import annotations

import asyncio
import contextlib

from mailwire.domain.sending import KEEP_FINISHED_MS, SUBMIT_QUEUE
from mailwire.errors import StoreError
from mailwire.jobs.runner import JobRunner, RunnerOptions
from mailwire.logs import get_logger
from mailwire.services.container import Services
from mailwire.store.store import Store
from mailwire.types import now_ms

log = get_logger(__name__)

#: How often finished queue entries are looked for (seconds).
PRUNE_INTERVAL_S = 600.0


class SendingPipeline:
    """`run()` delivers queued messages until `stop()`; running sends then drain."""

    def __init__(
        self,
        store: Store,
        services: Services,
        *,
        owner: str,
        options: RunnerOptions | None = None,
    ) -> None:
        self._store = store
        self._sending = services.sending
        self.runner = JobRunner(
            store.jobs, SUBMIT_QUEUE, services.sending.handle, owner=owner, options=options
        )
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.runner.run(), name="submit-runner")
                pruning = group.create_task(self._prune_loop(), name="send-queue-prune")
                await self._stopping.wait()
                pruning.cancel()
                self.runner.stop()
        finally:
            await self._sending.aclose()

    async def _prune_loop(self) -> None:
        while True:
            with contextlib.suppress(StoreError):
                pruned = await self._store.send_queue.prune(older_than=now_ms() - KEEP_FINISHED_MS)
                if pruned:
                    log.info("sending.pruned", entries=pruned)
            await asyncio.sleep(PRUNE_INTERVAL_S)
