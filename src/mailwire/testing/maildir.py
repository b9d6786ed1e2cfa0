"""Write messages straight into a Maildir++ tree that Dovecot serves.

Filling a mailbox through IMAP APPEND costs a round trip and an index update
per message; writing files the way a delivery agent does costs one `write` and
one `rename`, so tens of thousands of messages land in seconds. Dovecot picks
the files up on its next scan of `cur/`, exactly as it would after a delivery
by another program.

Layout (Dovecot's default Maildir++ with `separator = /` in the namespace):
INBOX is the Maildir root; folder `A/B` is the directory `.A.B`. Folder names
on disk are modified UTF-7 (RFC 3501 section 5.1.3); only printable ASCII is
accepted here, where the sole encoding step is writing `&` as `&-`.

A message is written to `tmp/` first and renamed into `cur/` so Dovecot never
sees a half-written file. Its name carries `S=<size>` (so Dovecot need not stat
it for RFC822.SIZE) and the `:2,<flags>` info suffix; its mtime is the
INTERNALDATE Dovecot reports.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Maildir info flags (https://cr.yp.to/proto/maildir.html) and the IMAP flags
#: they stand for: D=\Draft F=\Flagged P=$Forwarded(passed) R=\Answered
#: S=\Seen T=\Deleted.
MAILDIR_FLAGS = frozenset("DFPRST")

# Folder names are limited to what needs no modified-UTF-7 shifting; Dovecot
# forbids "." itself because it is the on-disk hierarchy separator.
_FORBIDDEN_IN_FOLDER = frozenset('.\\*%"')
_MAX_FOLDER_NAME = 255


@dataclass(frozen=True, slots=True)
class Owner:
    """The uid/gid Dovecot's mail processes run as; files must belong to them."""

    uid: int
    gid: int


def folder_dirname(folder: str) -> str:
    """Map an IMAP folder name to its Maildir++ directory name ("" for INBOX)."""
    if folder.upper() == "INBOX":
        return ""
    if not folder or len(folder) > _MAX_FOLDER_NAME:
        raise ValueError(f"folder name must be 1..{_MAX_FOLDER_NAME} characters: {folder!r}")
    if not all(0x20 <= ord(c) < 0x7F for c in folder):
        raise ValueError(f"folder name must be printable ASCII: {folder!r}")
    if _FORBIDDEN_IN_FOLDER.intersection(folder):
        raise ValueError(f"folder name contains a character Dovecot rejects: {folder!r}")
    parts = folder.split("/")
    if any(not part for part in parts):
        raise ValueError(f"folder name has an empty hierarchy level: {folder!r}")
    return "." + ".".join(part.replace("&", "&-") for part in parts)


def info_flags(flags: str) -> str:
    """Validate Maildir flag letters and return them sorted, as the spec requires."""
    unknown = set(flags) - MAILDIR_FLAGS
    if unknown:
        raise ValueError(f"unknown Maildir flags {sorted(unknown)}; use letters from DFPRST")
    return "".join(sorted(set(flags)))


@dataclass(slots=True)
class MaildirWriter:
    """Writes messages into Maildirs owned by `owner`, remembering folders it made.

    Not thread-safe: one writer fills mailboxes from one thread.
    """

    owner: Owner | None
    _made: set[Path] = field(default_factory=set)
    _sequence: itertools.count[int] = field(default_factory=itertools.count)

    def ensure_folder(self, maildir: Path, folder: str) -> Path:
        """Create (if needed) and return the directory holding `folder` under `maildir`."""
        path = maildir / folder_dirname(folder)
        if path in self._made:
            return path
        self._make_dir(maildir.parent)
        # The root is INBOX and must be a complete Maildir even when only a
        # subfolder is written to.
        for directory in dict.fromkeys((maildir, path)):
            self._make_dir(directory)
            for sub in ("cur", "new", "tmp"):
                self._make_dir(directory / sub)
        if path != maildir:
            # Dovecot (like Courier) marks a Maildir++ subfolder with this file.
            marker = path / "maildirfolder"
            marker.touch()
            self._chown(marker)
        self._made.add(path)
        return path

    def write(
        self,
        folder_path: Path,
        raw: bytes,
        *,
        flags: str = "",
        internaldate: dt.datetime | None = None,
    ) -> Path:
        """Write one message into `folder_path/cur` and return the final file path."""
        info = info_flags(flags)
        stamp = time.time() if internaldate is None else _timestamp(internaldate)
        name = self._unique_name(len(raw))
        staged = folder_path / "tmp" / name
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.utime(staged, (stamp, stamp))
        self._chown(staged)
        final = folder_path / "cur" / f"{name}:2,{info}"
        staged.rename(final)
        return final

    def _unique_name(self, size: int) -> str:
        # time.M<usec>P<pid>Q<n> is the maildir.html recipe; Q numbers the
        # deliveries of this writer so names never collide within a process.
        now = time.time_ns()
        sec, usec = now // 1_000_000_000, (now // 1000) % 1_000_000
        return f"{sec}.M{usec}P{os.getpid()}Q{next(self._sequence)}.mailwire,S={size}"

    def _make_dir(self, path: Path) -> None:
        if path.is_dir():
            return
        # exist_ok: Dovecot may create the same directory at the same moment.
        path.mkdir(mode=0o700, exist_ok=True)
        self._chown(path)

    def _chown(self, path: Path) -> None:
        if self.owner is not None:
            os.chown(path, self.owner.uid, self.owner.gid)


def _timestamp(moment: dt.datetime) -> float:
    # A naive datetime would silently mean local time; INTERNALDATE tests
    # compare instants, so the caller must say which zone it meant.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("internaldate must be timezone-aware")
    return moment.timestamp()
