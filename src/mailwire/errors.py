"""The exception tree. Every error Mailwire raises on purpose derives from `MailwireError`.

Third-party exceptions are translated where the library is used, so callers
only ever catch these. The REST API maps them to HTTP statuses in one table
(`mailwire.api.errors`); the CLI maps them to exit codes.

Messages are written for the person reading them and never carry a secret.
"""

from __future__ import annotations


class MailwireError(Exception):
    """Root of every error raised on purpose by Mailwire."""

    #: Machine-readable code, stable across releases (shown as `code` in API errors).
    code: str = "InternalError"


# --------------------------------------------------------------------------- start-up


class StartupError(MailwireError):
    """Mailwire cannot start; the message says what to fix, in one line."""

    code = "StartupError"


class ConfigError(StartupError):
    """A setting is missing or invalid. `setting` names it (e.g. `MAILWIRE_PORT`)."""

    code = "ConfigError"

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class DataDirError(StartupError):
    """The data directory is missing, unreadable, not writable or holds a corrupt store."""

    code = "DataDirError"


class ListenError(StartupError):
    """A listening socket cannot be opened (address in use, not permitted, unknown host)."""

    code = "ListenError"


class SecretMismatchError(StartupError):
    """The configured secret cannot decrypt the data already stored (never re-key silently)."""

    code = "SecretMismatch"


# --------------------------------------------------------------------------- store


class StoreError(MailwireError):
    """The store failed in a way the caller cannot fix by changing its input."""

    code = "StoreError"


class StoreUnavailableError(StoreError):
    """The database cannot be reached or refused the connection."""

    code = "StoreUnavailable"


class DecryptionError(StoreError):
    """A stored secret cannot be decrypted: unknown key id, tampered or truncated value."""

    code = "DecryptionError"


# --------------------------------------------------------------------------- requests


class InputError(MailwireError):
    """The caller sent something invalid. `key` names the offending field when known."""

    code = "InputError"

    def __init__(self, message: str, *, key: str | None = None) -> None:
        self.key = key
        super().__init__(message)


class NotFoundError(MailwireError):
    """The addressed entity does not exist."""

    code = "NotFound"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(message)


class AuthenticationError(MailwireError):
    """No credentials, or credentials that are unknown, expired or revoked (HTTP 401)."""

    code = "AuthenticationFailed"


class AccessDeniedError(MailwireError):
    """Valid credentials that do not grant this operation (HTTP 403).

    `reason` is a short tag for audit logs: scope, account, address, referrer,
    action, group.
    """

    code = "AccessDenied"

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class RateLimitedError(MailwireError):
    """Too many requests with one token; `retry_after` is in whole seconds (HTTP 429)."""

    code = "RateLimited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class ConflictError(MailwireError):
    """The request is valid but the mail server or the current state refuses it (HTTP 409)."""

    code = "Conflict"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(message)


class UpstreamError(MailwireError):
    """The mail server failed or could not be reached while serving a request (HTTP 502)."""

    code = "MailServerError"


class UnavailableError(MailwireError):
    """The account cannot be served right now: not connected, or every connection busy
    (HTTP 503). `retry_after` (seconds) is sent as Retry-After."""

    code = "Unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 5) -> None:
        if code is not None:
            self.code = code
        self.retry_after = retry_after
        super().__init__(message)
