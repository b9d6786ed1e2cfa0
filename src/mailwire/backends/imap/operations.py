"""`MailboxOperations`: what an API request does to a mailbox over one command connection.

Theory of operation. Every operation takes the connection's lock, selects the
folder it needs unless it is selected already (`selection`), checks which of
the addressed UIDs exist, then sends its commands and returns a typed result
built from the server's answers: resulting flags from the untagged FETCH of a
non-silent STORE, destination UIDs from COPYUID, the new UID from APPENDUID
(RFC 4315 section 3). Moves prefer UID MOVE (RFC 6851); without it a move is
UID COPY, \\Deleted and UID EXPUNGE (RFC 4315 section 2.1); without UIDPLUS
either, only a plain EXPUNGE remains, which removes every \\Deleted message of
the folder (RFC 3501 section 6.4.3), so it runs only when no other message is
marked. Every operation that addresses messages by UID takes an optional
`uid_validity`: the one the caller's message ids were made under; when the
folder's differs, nothing is done (`UidValidityChangedError`, RFC 3501
section 2.3.1.1). Reading and streaming messages live in `reading` (`MessageReader`,
which this class extends). Errors: `operation_errors`, plus `CommandFailedError`
for a NO whose cause is not established, and the connection's own errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mailwire.backends.imap.connection import CommandResult, ImapConnection
from mailwire.backends.imap.errors import CommandFailedError
from mailwire.backends.imap.folder import _searched_uids
from mailwire.backends.imap.operation_errors import (
    FolderExistsError,
    OperationInputError,
    ProtectedFolderError,
    UnsafeExpungeError,
    UnsupportedOperationError,
)
from mailwire.backends.imap.reading import MessageReader
from mailwire.backends.imap.search import SearchCriteria, search_keys
from mailwire.backends.imap.selection import absent, check_path, check_uids, same_folder
from mailwire.domain.messages import FlagState
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.errors import CommandError
from mailwire.protocols.imap.responses import Fetch, ListMailbox, ResponseCode, UntaggedStatus

#: Most path segments of one folder to create (nesting depth).
MAX_PATH_SEGMENTS = 32


@dataclass(frozen=True, slots=True)
class FolderCreated:
    """A folder created at `path` (an existing one raises `FolderExistsError`)."""

    path: str
    delimiter: str | None
    subscribed: bool


@dataclass(frozen=True, slots=True)
class FolderRenamed:
    """A folder renamed from `path` to `new_path`."""

    path: str
    new_path: str


@dataclass(frozen=True, slots=True)
class FlagsResult:
    """Resulting flags (and MODSEQ, RFC 7162) per UID; `missing` UIDs do not exist."""

    messages: dict[int, FlagState]
    missing: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Moved:
    """Where messages went. `uid_map` maps source to destination UID when the server
    said (COPYUID, RFC 4315 section 3), with the destination's `uid_validity`."""

    path: str
    destination: str
    uids: tuple[int, ...]
    missing: tuple[int, ...]
    uid_validity: int | None
    uid_map: dict[int, int]


@dataclass(frozen=True, slots=True)
class Deleted:
    """Messages deleted for good (`moved` is None) or moved to the Trash folder."""

    path: str
    uids: tuple[int, ...]
    missing: tuple[int, ...]
    moved: Moved | None


@dataclass(frozen=True, slots=True)
class Appended:
    """An APPEND; `uid` and `uid_validity` come from APPENDUID (RFC 4315) when sent."""

    path: str
    uid_validity: int | None
    uid: int | None


class MailboxOperations(MessageReader):
    """Operations on one logged-in connection; see the module docstring."""

    def __init__(self, conn: ImapConnection) -> None:
        super().__init__(conn)
        self._delimiter: str | None = None
        self._delimiter_known = False

    # ------------------------------------------------------------------ folders

    async def delimiter(self) -> str | None:
        """The hierarchy delimiter, from `LIST "" ""` (RFC 3501 section 6.3.8); cached."""
        if not self._delimiter_known:
            result = await self.conn.execute(commands.list_("", ""))
            for event in result.untagged:
                if isinstance(event, ListMailbox) and event.delimiter:
                    self._delimiter = event.delimiter.decode("ascii", "replace")
            self._delimiter_known = True
        return self._delimiter

    async def join_path(self, path: str | Sequence[str]) -> str:
        """A path given as segments joined with the server's delimiter (or a path as is)."""
        if isinstance(path, str):
            return check_path(path)
        segments = list(path)
        if not segments or len(segments) > MAX_PATH_SEGMENTS:
            raise OperationInputError(f"a path has 1 to {MAX_PATH_SEGMENTS} segments", key="path")
        delimiter = await self.delimiter()
        for segment in segments:
            if not segment or (delimiter and delimiter in segment):
                raise OperationInputError(
                    "a path segment is not empty and holds no delimiter", key="path"
                )
        if len(segments) > 1 and delimiter is None:
            raise OperationInputError("the server has a flat namespace", key="path")
        return check_path((delimiter or "").join(segments))

    async def create_folder(self, path: str | Sequence[str]) -> FolderCreated:
        """CREATE (RFC 3501 section 6.3.3) then SUBSCRIBE; parents come with it."""
        async with self.lock:
            full = await self.join_path(path)
            try:
                await self.conn.execute(commands.create(full))
            except CommandFailedError:
                if await self.exists(full):
                    raise FolderExistsError(full) from None
                raise
            subscribed = await self._subscribe_quietly(full)
            return FolderCreated(full, await self.delimiter(), subscribed)

    async def rename_folder(self, path: str, new_path: str | Sequence[str]) -> FolderRenamed:
        """RENAME (RFC 3501 section 6.3.5); the subscription follows the folder.

        Renaming INBOX is allowed: the server moves its messages to the new
        folder and leaves INBOX empty (same section).
        """
        async with self.lock:
            path = check_path(path)
            target = await self.join_path(new_path)
            if self.selected is not None and same_folder(self.selected, path):
                await self._unselect()
            try:
                await self.conn.execute(commands.rename(path, target))
            except CommandFailedError:
                await self.raise_if_missing(path)
                if await self.exists(target):
                    raise FolderExistsError(target) from None
                raise
            await self._unsubscribe_quietly(path)
            await self._subscribe_quietly(target)
            return FolderRenamed(path, target)

    async def delete_folder(self, path: str) -> None:
        """DELETE (RFC 3501 section 6.3.4) and UNSUBSCRIBE; INBOX is refused here."""
        path = check_path(path)
        if path.upper() == "INBOX":
            raise ProtectedFolderError(path)
        async with self.lock:
            if self.selected is not None and same_folder(self.selected, path):
                await self._unselect()
            try:
                await self.conn.execute(commands.delete(path))
            except CommandFailedError:
                await self.raise_if_missing(path)
                raise
            await self._unsubscribe_quietly(path)

    async def _unselect(self) -> None:
        # Without UNSELECT (RFC 3691), CLOSE would expunge; the server copes with
        # a DELETE or RENAME of the selected folder, so just forget the selection.
        if "UNSELECT" in self.conn.capabilities:
            await self.conn.execute(commands.unselect())
        self._selected = None

    async def _subscribe_quietly(self, path: str) -> bool:
        # The folder exists either way; a server refusing subscriptions is no reason
        # to report the CREATE or RENAME as failed.
        try:
            await self.conn.execute(commands.subscribe(path))
        except CommandFailedError:
            return False
        return True

    async def _unsubscribe_quietly(self, path: str) -> None:
        # Not subscribed, or the server dropped the subscription itself: both fine.
        with contextlib.suppress(CommandFailedError):
            await self.conn.execute(commands.unsubscribe(path))

    # ------------------------------------------------------------------ flags and labels

    async def store_flags(
        self,
        path: str,
        uids: Iterable[int],
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        replace: Sequence[str] | None = None,
        uid_validity: int | None = None,
    ) -> FlagsResult:
        """UID STORE +FLAGS/-FLAGS, or FLAGS to `replace` (RFC 3501 section 6.4.6).

        Never .SILENT: the untagged FETCH answers give each message's flags (and
        MODSEQ with CONDSTORE); messages the server did not report are fetched.
        """
        wanted = check_uids(uids)
        steps = [("", list(replace))] if replace is not None else []
        steps += [(mode, list(flags)) for mode, flags in (("+", add), ("-", remove)) if flags]
        if not steps:
            raise OperationInputError("nothing to change", key="flags")
        for mode, flags in steps:
            _store(commands.SequenceSet.of(wanted[:1]), mode, flags)  # all checked before any
        async with self.lock:
            await self.ensure_selected(path, write=True, uid_validity=uid_validity)
            present = await self.present(path, wanted)
            states: dict[int, FlagState] = {}
            for mode, flags in steps:
                for chunk in commands.split_sequence_set(present):
                    result = await self.conn.execute(_store(chunk, mode, flags))
                    states.update(_flag_states(result, present))
            await self._complete(present, states, labels=False)
            return FlagsResult(states, absent(wanted, list(states)))

    async def store_labels(
        self,
        path: str,
        uids: Iterable[int],
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        replace: Sequence[str] | None = None,
        uid_validity: int | None = None,
    ) -> FlagsResult:
        """Gmail labels with UID STORE X-GM-LABELS (X-GM-EXT-1); `labels` in the result."""
        if "X-GM-EXT-1" not in self.conn.capabilities:
            raise UnsupportedOperationError(
                "the server has no Gmail labels (X-GM-EXT-1)", capability="X-GM-EXT-1"
            )
        wanted = check_uids(uids)
        steps = [("", list(replace))] if replace is not None else []
        steps += [(mode, list(labels)) for mode, labels in (("+", add), ("-", remove)) if labels]
        if not steps:
            raise OperationInputError("nothing to change", key="labels")
        for mode, labels in steps:
            _store_labels(commands.SequenceSet.of(wanted[:1]), mode, labels)
        async with self.lock:
            await self.ensure_selected(path, write=True, uid_validity=uid_validity)
            present = await self.present(path, wanted)
            states: dict[int, FlagState] = {}
            for mode, labels in steps:
                for chunk in commands.split_sequence_set(present):
                    result = await self.conn.execute(_store_labels(chunk, mode, labels))
                    states.update(_flag_states(result, present))
            await self._complete(present, states, labels=True)
            return FlagsResult(states, absent(wanted, list(states)))

    async def _complete(
        self, uids: Sequence[int], states: dict[int, FlagState], *, labels: bool
    ) -> None:
        """Fetch the state of messages the STORE answers did not describe."""
        items = ["UID", "FLAGS"] + (["MODSEQ"] if self.condstore else [])
        items += ["X-GM-LABELS"] if labels else []
        unseen = [uid for uid in uids if uid not in states or (labels and not states[uid].labels)]
        for chunk in commands.split_sequence_set(unseen):
            result = await self.conn.execute(commands.uid_fetch(chunk, items))
            states.update(_flag_states(result, uids))

    # ------------------------------------------------------------------ move, delete, append

    async def move(
        self,
        path: str,
        uids: Iterable[int],
        destination: str,
        *,
        uid_validity: int | None = None,
    ) -> Moved:
        """UID MOVE (RFC 6851), else UID COPY + \\Deleted + UID EXPUNGE (RFC 4315).

        Without UIDPLUS, a plain EXPUNGE is used only when no other message of
        the folder is \\Deleted; otherwise `UnsafeExpungeError` before anything
        changes. (Another client could still mark one between that check and the
        EXPUNGE; IMAP offers no way to close that window without UIDPLUS.)
        """
        wanted = check_uids(uids)
        destination = check_path(destination)
        async with self.lock:
            await self.ensure_selected(path, write=True, uid_validity=uid_validity)
            present = await self.present(path, wanted)
            use_move = "MOVE" in self.conn.capabilities
            if not use_move and "UIDPLUS" not in self.conn.capabilities:
                await self._check_expunge_safe(path, present)
            target_validity, uid_map = None, {}
            for chunk in commands.split_sequence_set(present):
                build = commands.uid_move if use_move else commands.uid_copy
                try:
                    result = await self.conn.execute(build(chunk, destination))
                except CommandFailedError:
                    await self.raise_if_missing(destination)
                    raise
                validity, mapping = _copyuid(result)
                target_validity = validity or target_validity
                uid_map.update(mapping)
                if not use_move:
                    await self._expunge(chunk)
            return Moved(
                path, destination, tuple(present), absent(wanted, present), target_validity, uid_map
            )

    async def delete_messages(
        self,
        path: str,
        uids: Iterable[int],
        *,
        trash: str | None = None,
        uid_validity: int | None = None,
    ) -> Deleted:
        """Move to `trash` (unless already there), or \\Deleted + UID EXPUNGE for good."""
        if trash is not None and not same_folder(check_path(trash), check_path(path)):
            moved = await self.move(path, uids, trash, uid_validity=uid_validity)
            return Deleted(path, moved.uids, moved.missing, moved)
        wanted = check_uids(uids)
        async with self.lock:
            await self.ensure_selected(path, write=True, uid_validity=uid_validity)
            present = await self.present(path, wanted)
            if "UIDPLUS" not in self.conn.capabilities:
                await self._check_expunge_safe(path, present)
            for chunk in commands.split_sequence_set(present):
                await self._expunge(chunk)
            return Deleted(path, tuple(present), absent(wanted, present), None)

    async def _check_expunge_safe(self, path: str, uids: Sequence[int]) -> None:
        result = await self.conn.execute(commands.uid_search([commands.Atom("DELETED")]))
        others = sorted(set(_searched_uids(result)) - set(uids))
        if others:
            raise UnsafeExpungeError(path, others)

    async def _expunge(self, chunk: commands.SequenceSet) -> None:
        await self.conn.execute(commands.uid_store(chunk, "+", ["\\Deleted"], silent=True))
        if "UIDPLUS" in self.conn.capabilities:
            await self.conn.execute(commands.uid_expunge(chunk))
        else:
            await self.conn.execute(commands.expunge())

    async def append(
        self,
        path: str,
        message: bytes,
        *,
        flags: Sequence[str] = (),
        internal_date: datetime | None = None,
    ) -> Appended:
        """APPEND (RFC 3501 section 6.3.11); the encoder picks LITERAL+ or a synchronising literal.

        A server's APPENDLIMIT (RFC 7889) is checked before the message is sent.
        """
        path = check_path(path)
        limit = _append_limit(self.conn.capabilities)
        if limit is not None and len(message) > limit:
            raise OperationInputError(
                f"the server accepts messages up to {limit} octets", key="message"
            )
        try:
            command = commands.append(path, message, flags=list(flags), internal_date=internal_date)
        except CommandError as error:
            raise OperationInputError(str(error), key="message") from error
        async with self.lock:
            try:
                result = await self.conn.execute(command)
            except CommandFailedError:
                await self.raise_if_missing(path)
                raise
        code = result.tagged.code
        if code is not None and code.name == "APPENDUID" and code.destination is not None:
            uid = next(code.destination.expand(0), None)
            return Appended(path, code.uidvalidity, uid)
        return Appended(path, None, None)

    # ------------------------------------------------------------------ search

    async def search(self, path: str, criteria: SearchCriteria) -> list[int]:
        """UID SEARCH (ESEARCH RETURN (ALL) when offered, RFC 4731); sorted UIDs.

        Non-ASCII strings go with CHARSET UTF-8 (RFC 3501 section 6.4.4) unless
        UTF8=ACCEPT is enabled, which makes every string UTF-8 (RFC 6855 section 3).
        """
        keys = search_keys(criteria)
        charset = "UTF-8" if keys.non_ascii and "UTF8=ACCEPT" not in self.conn.enabled else None
        returns = ["ALL"] if "ESEARCH" in self.conn.capabilities else None
        command = commands.uid_search(keys.keys, return_options=returns, charset=charset)
        async with self.lock:
            await self.ensure_selected(path, write=False)
            result = await self.conn.execute(command)
        return sorted(set(_searched_uids(result)))


# --------------------------------------------------------------------------- helpers


def _store(chunk: commands.SequenceSet, mode: str, flags: Sequence[str]) -> commands.Command:
    try:
        return commands.uid_store(chunk, mode, flags)
    except CommandError as error:
        raise OperationInputError(str(error), key="flags") from error


def _store_labels(
    chunk: commands.SequenceSet, mode: str, labels: Sequence[str]
) -> commands.Command:
    try:
        return commands.uid_store_gmail_labels(chunk, mode, labels)
    except CommandError as error:
        raise OperationInputError(str(error), key="labels") from error


def _flag_states(result: CommandResult, uids: Sequence[int]) -> dict[int, FlagState]:
    wanted = set(uids)
    states = {}
    for event in result.untagged:
        if isinstance(event, Fetch) and event.uid in wanted and event.flags is not None:
            labels = None
            if event.x_gm_labels is not None:
                labels = tuple(label.decode("utf-8", "replace") for label in event.x_gm_labels)
            states[event.uid] = FlagState(event.uid, tuple(event.flags), event.modseq, labels)
    return states


def _copyuid(result: CommandResult) -> tuple[int | None, dict[int, int]]:
    """COPYUID from the tagged OK (COPY) or an untagged OK (MOVE, RFC 6851 section 4.3)."""
    codes: list[ResponseCode | None] = [result.tagged.code]
    codes += [e.code for e in result.untagged if isinstance(e, UntaggedStatus)]
    validity: int | None = None
    mapping: dict[int, int] = {}
    for code in codes:
        if code is None or code.name != "COPYUID" or code.source is None:
            continue
        if code.destination is None:
            continue
        # RFC 4315 section 3: the two sets list UIDs in corresponding order.
        sources = list(code.source.expand(0))
        targets = list(code.destination.expand(0))
        if len(sources) == len(targets):
            mapping.update(zip(sources, targets, strict=True))
            validity = code.uidvalidity
    return validity, mapping


def _append_limit(capabilities: frozenset[str]) -> int | None:
    for capability in capabilities:
        name, _, value = capability.partition("=")
        if name == "APPENDLIMIT" and value.isdigit():
            return int(value)
    return None
