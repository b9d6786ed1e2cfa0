"""Secrets at rest as a use case: rotate the encryption key, report what each key holds."""

from __future__ import annotations

from mailwire.logs import get_logger
from mailwire.store import rotation
from mailwire.store.rotation import KeyStatus
from mailwire.store.secrets import RotationReport
from mailwire.store.store import Store

log = get_logger(__name__)


class KeyService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def rotate(self) -> tuple[str, RotationReport]:
        key_id, report = await rotation.rotate(self._store)
        log.info(
            "keys.rotated",
            key_id=key_id,
            rewritten=report.total,
            unreadable=report.unreadable,
        )
        return key_id, report

    async def status(self) -> KeyStatus:
        return await rotation.status(self._store)
