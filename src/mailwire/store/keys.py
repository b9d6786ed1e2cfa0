"""Where the encryption keys come from, and how a running process notices a rotation.

Two sources:
- `MAILWIRE_SECRET` (plus `MAILWIRE_PREVIOUS_SECRETS`): fixed for the life of
  the process; the operator rotates by restarting with the new secret and the
  old one listed as previous, then running `mailwire encrypt --rotate`;
- the secret file in the data directory, when no secret is configured.
  `mailwire encrypt --rotate` writes a new current secret at the top of the
  file, keeping the old ones below it. A running server notices the file has
  changed (by its modification time and size, checked at most once a second)
  before it encrypts, and whenever it meets a key id it does not know, so reads
  never fail during a rotation.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from mailwire.errors import DataDirError
from mailwire.store.cipher import Keyring
from mailwire.store.secret_file import read_secret_file

#: How often a file-backed source looks at the file for a rotation (seconds).
RELOAD_CHECK_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class _FileStamp:
    mtime_ns: int
    size: int


class KeySource:
    """Hands out the current keyring; file-backed sources follow the file."""

    def __init__(
        self, keyring: Keyring, *, path: Path | None = None, previous: tuple[str, ...] = ()
    ) -> None:
        self._keyring = keyring
        self._path = path
        self._previous = previous
        self._stamp = _stamp(path) if path is not None else None
        self._checked_at = time.monotonic()

    @classmethod
    def from_file(cls, path: Path, *, previous: tuple[str, ...] = ()) -> KeySource:
        secrets = read_secret_file(path)
        if not secrets:
            raise DataDirError(f"secret file {path} is missing or holds no secret")
        keyring = Keyring.from_secrets(secrets[0], [*secrets[1:], *previous])
        return cls(keyring, path=path, previous=previous)

    @property
    def path(self) -> Path | None:
        return self._path

    def current(self) -> Keyring:
        return self._keyring

    def for_writing(self) -> Keyring:
        """The keyring to encrypt with: picks up a rotation done by another process."""
        if time.monotonic() - self._checked_at >= RELOAD_CHECK_INTERVAL_S:
            self.reload_if_changed()
        return self._keyring

    def reload_if_changed(self) -> Keyring | None:
        """Re-read the secret file if it changed; return the new keyring, else None."""
        self._checked_at = time.monotonic()
        if self._path is None:
            return None
        stamp = _stamp(self._path)
        if stamp == self._stamp:
            return None
        replacement = KeySource.from_file(self._path, previous=self._previous)
        self._keyring = replacement.current()
        self._stamp = stamp
        return self._keyring


def _stamp(path: Path) -> _FileStamp | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataDirError(f"cannot read secret file {path}: {exc.strerror}") from None
    return _FileStamp(info.st_mtime_ns, info.st_size)
