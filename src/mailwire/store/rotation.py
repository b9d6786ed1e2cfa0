"""Key rotation: put a new secret in place, then re-encrypt every stored secret under it.

With a configured `MAILWIRE_SECRET` the operator has already put the new secret
in place (the old one in `MAILWIRE_PREVIOUS_SECRETS`), so only the re-encryption
runs. With the generated secret file, a new secret is written at the top of the
file (the old ones stay below it for reading) before re-encrypting; running
servers pick the change up by themselves (see `store.keys`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwire.store.cipher import generate_secret
from mailwire.store.secret_file import read_secret_file, write_secret_file
from mailwire.store.secrets import RotationReport
from mailwire.store.store import Store


@dataclass(frozen=True, slots=True)
class KeyStatus:
    current_key_id: str
    rows_by_key: dict[str, int]
    secret_file: str | None


async def rotate(store: Store) -> tuple[str, RotationReport]:
    """Rotate (see the module docstring); returns the new current key id and the report."""
    path = store.keys.path
    if path is not None:
        existing = read_secret_file(path) or []
        write_secret_file(path, [generate_secret(), *existing])
        store.keys.reload_if_changed()
    report = await store.secrets.rotate()
    return store.keys.current().current_key_id, report


async def status(store: Store) -> KeyStatus:
    path = store.keys.path
    return KeyStatus(
        current_key_id=store.keys.current().current_key_id,
        rows_by_key=await store.secrets.count_by_key(),
        secret_file=None if path is None else str(path),
    )
