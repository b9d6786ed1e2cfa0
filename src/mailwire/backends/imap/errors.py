"""Errors raised by the IMAP connection. Messages never carry a password or a token."""

from __future__ import annotations

from mailwire.errors import MailwireError


class ImapConnectionError(MailwireError):
    """Root of the IMAP connection's errors."""

    code = "ImapConnectionError"


class ImapConnectError(ImapConnectionError):
    """The TCP connection could not be made (refused, unreachable, unknown host)."""

    code = "ImapConnectFailed"


class ImapTlsError(ImapConnectError):
    """TLS failed: handshake or verification, or STARTTLS required but unavailable."""

    code = "ImapTlsFailed"


class ImapAuthenticationError(ImapConnectionError):
    """The server refused the credentials (NO to LOGIN or AUTHENTICATE).

    `server_text` is the server's own explanation; for XOAUTH2, `detail` holds
    the decoded error the server sent in its challenge (e.g. Gmail's JSON).
    """

    code = "ImapAuthenticationFailed"

    def __init__(self, message: str, *, server_text: str = "", detail: str | None = None) -> None:
        self.server_text = server_text
        self.detail = detail
        super().__init__(message)


class CommandFailedError(ImapConnectionError):
    """The server answered a command with NO or BAD; `status` and `text` are its answer."""

    code = "ImapCommandFailed"

    def __init__(self, command: str, status: str, text: str) -> None:
        self.command = command
        self.status = status
        self.text = text
        super().__init__(f"{command} failed: {status} {text}")


class ImapTimeoutError(ImapConnectionError):
    """Connect, greeting or a command took longer than allowed; the connection is closed."""

    code = "ImapTimeout"


class ImapProtocolError(ImapConnectionError):
    """The server broke the protocol (wraps the core's `ProtocolError`); the connection closes."""

    code = "ImapProtocolError"


class ConnectionClosedError(ImapConnectionError):
    """The server closed the connection or said BYE; `text` is the BYE text if any."""

    code = "ImapConnectionClosed"

    def __init__(self, message: str, *, text: str = "") -> None:
        self.text = text
        super().__init__(message)
