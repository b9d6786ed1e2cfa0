"""What `MailboxOperations` raises when the server or the caller's input says no.

Each error names what it is about (`path`, `uids`) so that a service can answer
with the right status without parsing text. Not-found errors derive from
`mailwire.errors.NotFoundError`, bad input from `InputError`; refusals that are
neither (a folder already there, INBOX, an expunge that would take other
people's deleted mail with it) derive from `OperationRefusedError`.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailwire.errors import InputError, MailwireError, NotFoundError


class FolderNotFoundError(NotFoundError):
    """The folder does not exist (the server refused it and LIST confirms it is absent)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no folder {path!r}", code="MailboxNotFound")


class MessageNotFoundError(NotFoundError):
    """None of the addressed UIDs exists in the folder (or a part number does not)."""

    def __init__(self, path: str, uids: Iterable[int], *, detail: str = "") -> None:
        self.path = path
        self.uids = tuple(uids)
        listed = ",".join(str(uid) for uid in self.uids[:10])
        super().__init__(
            f"no message with UID {listed} in {path!r}" + (f": {detail}" if detail else ""),
            code="MessageNotFound",
        )


class UidValidityChangedError(NotFoundError):
    """The folder's UIDVALIDITY is not the one the caller's message ids were made under.

    UIDs from another UIDVALIDITY name other messages or none (RFC 3501 section
    2.3.1.1), so nothing is done with them.
    """

    def __init__(self, path: str, expected: int, actual: int | None) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{path!r} has UIDVALIDITY {actual}, not {expected}: the message ids are stale",
            code="MessageNotFound",
        )


class OperationRefusedError(MailwireError):
    """The operation is refused as asked; `reason` is a short machine-readable tag."""

    code = "OperationRefused"

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class FolderExistsError(OperationRefusedError):
    """CREATE or RENAME names a folder that already exists."""

    code = "MailboxExists"

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"folder {path!r} already exists", reason="exists")


class ProtectedFolderError(OperationRefusedError):
    """The folder may not be deleted (INBOX, RFC 3501 section 6.3.4)."""

    code = "MailboxProtected"

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"folder {path!r} cannot be deleted", reason="protected")


class UnsafeExpungeError(OperationRefusedError):
    """Without UIDPLUS only a plain EXPUNGE is possible, and other messages are \\Deleted.

    EXPUNGE removes every \\Deleted message of the folder (RFC 3501 section
    6.4.3), so running it would destroy mail someone else marked but chose not
    to expunge yet. `others` are those messages' UIDs.
    """

    code = "UnsafeExpunge"

    def __init__(self, path: str, others: Iterable[int]) -> None:
        self.path = path
        self.others = tuple(others)
        super().__init__(
            f"{path!r}: the server lacks UIDPLUS and {len(self.others)} other message(s)"
            " are marked \\Deleted; an EXPUNGE would remove them too",
            reason="unsafe_expunge",
        )


class UnsupportedOperationError(OperationRefusedError):
    """The server does not offer the extension the operation needs (`capability`)."""

    code = "UnsupportedOperation"

    def __init__(self, message: str, *, capability: str) -> None:
        self.capability = capability
        super().__init__(message, reason="unsupported")


class OperationInputError(InputError):
    """An argument cannot be sent safely (CR/LF/NUL, too long, not valid IMAP syntax)."""

    code = "InvalidInput"
