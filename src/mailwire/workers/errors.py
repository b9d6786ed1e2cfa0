"""How connection failures are reported: the `serverResponseCode` of each error.

The reference reports network failures with Node.js-style codes
(`ECONNREFUSED`, `ETIMEDOUT`, ...); applications match on them, so Mailwire
uses the same names: the errno name for socket errors, and a fixed code for
each failure the IMAP connection reports.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from mailwire.backends.imap.errors import (
    CommandFailedError,
    ConnectionClosedError,
    ImapAuthenticationError,
    ImapProtocolError,
    ImapTimeoutError,
    ImapTlsError,
)

#: The code of a refused login; the IMAP response code RFC 5530 defines for it.
AUTHENTICATION_FAILED = "AUTHENTICATIONFAILED"
#: The code when an account has neither a password nor an access token.
NO_CREDENTIALS = "NoCredentials"


def connect_error_data(error: BaseException) -> dict[str, Any]:
    """`{response, serverResponseCode}` of a `connectError` event for `error`."""
    return {"response": str(error) or type(error).__name__, "serverResponseCode": error_code(error)}


def auth_error_data(error: ImapAuthenticationError) -> dict[str, Any]:
    """`{response, serverResponseCode}` of an `authenticationError` event."""
    return {
        "response": error.server_text or str(error),
        "serverResponseCode": AUTHENTICATION_FAILED,
    }


#: Fixed codes by error type, checked in order (subclasses before their bases).
_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (ImapTlsError, "ETLS"),
    (ImapTimeoutError, "ETIMEDOUT"),
    (TimeoutError, "ETIMEDOUT"),
    (ImapProtocolError, "EPROTO"),
    (ConnectionClosedError, "ECONNRESET"),
    (CommandFailedError, "ECOMMAND"),
)


def error_code(error: BaseException) -> str:
    """A short stable code for a failure to connect; see the module docstring."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    cause = error if isinstance(error, OSError) else error.__cause__
    if isinstance(cause, socket.gaierror):
        return "ENOTFOUND"
    if isinstance(cause, OSError) and cause.errno is not None:
        return errno.errorcode.get(cause.errno, "ECONNECTION")
    return "ECONNECTION"
