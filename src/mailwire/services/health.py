"""Health: can this process reach its store right now?"""

from __future__ import annotations

from dataclasses import dataclass

from mailwire.errors import StoreError
from mailwire.logs import get_logger
from mailwire.store.store import Store

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class HealthReport:
    store_ok: bool
    store_latency_ms: float | None

    @property
    def healthy(self) -> bool:
        return self.store_ok


class HealthService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def check(self) -> HealthReport:
        try:
            latency = await self._store.ping()
        except StoreError as exc:
            log.warning("health.store_unreachable", error=str(exc))
            return HealthReport(store_ok=False, store_latency_ms=None)
        return HealthReport(store_ok=True, store_latency_ms=round(latency, 3))
