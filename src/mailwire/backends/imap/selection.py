"""The selected-folder state of one command connection, and the checks every operation shares.

Theory of operation. `SelectedConnection` wraps one logged-in `ImapConnection`
that nothing else drives while the wrapper is in use. It remembers which
folder is selected and how (SELECT read-write or EXAMINE read-only, RFC 3501
sections 6.3.1-2), so that an operation on the folder already selected sends
no SELECT: a read is happy with either, a write upgrades an EXAMINE to a
SELECT. A SELECT that fails leaves no folder selected (section 6.3.1), and so
does a broken connection. With CONDSTORE the SELECT asks for it (RFC 7162
section 3.1.8) so that FETCH answers carry MODSEQ.

`lock` serialises commands: every operation holds it for its own commands
only, never across a `yield`, so a body stream paused between chunks does not
block another request, which in turn may select another folder; the stream
then selects its own again before the next chunk.

Errors about a folder are told apart by asking, not by reading the server's
text: `CommandFailedError` carries the text, not the response code, and
servers do not send NONEXISTENT or TRYCREATE reliably (Dovecot 2.3 answers a
SELECT of a missing folder with a bare NO). After a NO, `LIST "" <name>` (RFC
3501 section 6.3.8) decides whether the folder exists. Missing UIDs are found
with `UID SEARCH UID <set>` before acting, since UID commands on absent UIDs
succeed silently (RFC 3501 section 6.4.8).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from mailwire.backends.imap.connection import ImapConnection
from mailwire.backends.imap.errors import CommandFailedError
from mailwire.backends.imap.folder import Selected, _searched_uids, selected_from
from mailwire.backends.imap.listing import decode_name
from mailwire.backends.imap.operation_errors import (
    FolderNotFoundError,
    MessageNotFoundError,
    OperationInputError,
    UidValidityChangedError,
)
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.arguments import MAX_NZ_NUMBER
from mailwire.protocols.imap.responses import ListMailbox

#: Longest folder path accepted, in UTF-8 octets: a name must fit one command
#: line with room to spare (RFC 7162 section 4 suggests 8192 octets per line).
MAX_PATH = 1024
#: Most UIDs one operation may address; sets are split to fit command lines.
MAX_UIDS = 50_000


class SelectedConnection:
    """One connection and the folder selected on it; see the module docstring."""

    def __init__(self, conn: ImapConnection) -> None:
        self.conn = conn
        self.lock = asyncio.Lock()
        self._selected: str | None = None
        self._writable = False
        self._uid_validity: int | None = None

    @property
    def selected(self) -> str | None:
        """The folder selected by this object, if any (None once the connection broke)."""
        return None if self.conn.broken else self._selected

    @property
    def condstore(self) -> bool:
        return bool({"CONDSTORE", "QRESYNC"} & self.conn.capabilities)

    def forget_selection(self) -> None:
        """Call after driving the connection directly: the next operation selects again."""
        self._selected = None

    async def ensure_selected(
        self, path: str, *, write: bool, uid_validity: int | None = None
    ) -> Selected | None:
        """SELECT `path` (EXAMINE when not `write`) unless it is already; None when skipped.

        Call with `lock` held. `FolderNotFoundError` when the folder is absent;
        `UidValidityChangedError` when `uid_validity` is given and the folder's
        differs (it cannot change while the folder stays selected: the server
        would have to end the session, RFC 3501 section 2.3.1.1).
        """
        path = check_path(path)
        selected = None
        if self.selected != path or (write and not self._writable):
            self._selected = None
            build = commands.select if write else commands.examine
            try:
                result = await self.conn.execute(build(path, condstore=self.condstore))
            except CommandFailedError:
                await self.raise_if_missing(path)
                raise
            selected = selected_from(result)
            self._selected, self._writable = path, write
            self._uid_validity = selected.uid_validity
        if uid_validity is not None and uid_validity != self._uid_validity:
            raise UidValidityChangedError(path, uid_validity, self._uid_validity)
        return selected

    async def exists(self, path: str) -> bool:
        """Whether LIST shows `path` as a folder (\\NonExistent and \\Noselect do not count)."""
        result = await self.conn.execute(commands.list_("", path))
        utf8 = "UTF8=ACCEPT" in self.conn.enabled
        for event in result.untagged:
            if isinstance(event, ListMailbox) and same_folder(
                decode_name(event.name, utf8=utf8), path
            ):
                attributes = {attribute.lower() for attribute in event.attributes}
                return not attributes & {"\\nonexistent", "\\noselect"}
        return False

    async def raise_if_missing(self, path: str) -> None:
        """After a NO about `path`: `FolderNotFoundError` if LIST does not show it."""
        if not self.conn.broken and not await self.exists(path):
            raise FolderNotFoundError(path) from None

    async def present(self, path: str, uids: Sequence[int]) -> list[int]:
        """Those of `uids` that exist in the selected folder; `MessageNotFoundError` if none."""
        found: set[int] = set()
        for chunk in commands.split_sequence_set(uids):
            result = await self.conn.execute(commands.uid_search([commands.Atom("UID"), chunk]))
            found.update(_searched_uids(result))
        present = sorted(found & set(uids))
        if not present:
            raise MessageNotFoundError(path, uids)
        return present


def check_path(path: object) -> str:
    """A folder path that can be sent (INBOX normalised); `OperationInputError` if not."""
    if not isinstance(path, str) or not path:
        raise OperationInputError("a folder path is non-empty text", key="path")
    if any(char in path for char in "\r\n\x00"):
        raise OperationInputError("a folder path cannot contain CR, LF or NUL", key="path")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise OperationInputError(f"a folder path is at most {MAX_PATH} octets", key="path")
    return "INBOX" if path.upper() == "INBOX" else path


def check_uids(uids: Iterable[int]) -> list[int]:
    """Sorted distinct UIDs, each a nz-number (RFC 3501 section 9); at most `MAX_UIDS`."""
    values = list(uids)
    if not values or len(values) > MAX_UIDS:
        raise OperationInputError(f"1 to {MAX_UIDS} UIDs", key="uids")
    for uid in values:
        if type(uid) is not int or not 1 <= uid <= MAX_NZ_NUMBER:
            raise OperationInputError(f"not a UID: {uid!r}", key="uids")
    return sorted(set(values))


def same_folder(a: str, b: str) -> bool:
    """Names compare exactly, except INBOX, which is case-insensitive (RFC 3501 section 5.1)."""
    return a == b or (a.upper() == "INBOX" and b.upper() == "INBOX")


def absent(wanted: Sequence[int], present: Sequence[int]) -> tuple[int, ...]:
    """The UIDs of `wanted` not in `present`, in order."""
    found = set(present)
    return tuple(uid for uid in wanted if uid not in found)
