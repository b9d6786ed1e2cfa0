"""Errors of the IMAP protocol core."""

from __future__ import annotations

from mailwire.errors import MailwireError


class ImapError(MailwireError):
    """Root of the IMAP core's errors."""

    code = "ImapError"


class ProtocolError(ImapError):
    """The server sent bytes that are not valid IMAP; the connection cannot go on."""

    code = "ImapProtocolError"


class LimitExceededError(ProtocolError):
    """The server exceeded one of the parser's named limits (`limit` names it)."""

    code = "ImapLimitExceeded"

    def __init__(self, limit: str, message: str) -> None:
        self.limit = limit
        super().__init__(message)


class CommandError(ImapError):
    """A command cannot be encoded as asked (e.g. a NUL byte, or a literal the server refuses)."""

    code = "ImapCommandError"
