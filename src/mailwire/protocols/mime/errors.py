"""Errors of the MIME core.

Parsing never raises: broken input yields what can be read plus a list of
defects. Only composing a message refuses input, and every refusal is an
`InputError` so the API answers it with a 400 naming the offending field.
"""

from __future__ import annotations

from mailwire.errors import InputError


class MimeBuildError(InputError):
    """The fields given cannot be turned into a message (`key` names the field)."""

    code = "MimeBuildError"


class HeaderInjectionError(MimeBuildError):
    """A header name or value holds CR, LF or NUL, which would start a new header or body."""

    code = "HeaderInjection"


class MimeLimitError(MimeBuildError):
    """A field exceeds one of the builder's named limits (`limit` names it)."""

    code = "MimeLimitExceeded"

    def __init__(self, limit: str, message: str, *, key: str | None = None) -> None:
        self.limit = limit
        super().__init__(message, key=key)
