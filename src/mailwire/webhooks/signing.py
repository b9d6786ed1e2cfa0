"""The signature and the headers of one webhook request.

The signature is HMAC-SHA256 over the exact body bytes, keyed with the
service secret as UTF-8, in base64url without padding. Nothing else is
signed (no timestamp, URL or header), so a receiver verifies the raw body.

Headers are set in a fixed order and a later one replaces an earlier one of
the same name (case-insensitively): custom headers may therefore override
everything before them, `Authorization` included, but not the event id,
the length or the signature, which come after them.

Deviation: `User-Agent` names Mailwire (`mailwire/<version>`) rather than
EmailEngine; receivers that check it for EmailEngine's name must be told.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from mailwire import __version__
from mailwire.webhooks.config import Header

USER_AGENT = f"mailwire/{__version__}"

EVENT_ID_HEADER = "X-EE-Wh-Event-Id"
SIGNATURE_HEADER = "X-EE-Wh-Signature"


def signature(body: bytes, secret: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _entities(value: str) -> str:
    """Decode then re-encode HTML entities as the reference does for userinfo.

    Everything outside printable ASCII, and `& < > " ' \\``, becomes `&#xHEX;`.
    """
    decoded = html.unescape(value)
    return "".join(
        f"&#x{ord(char):X};" if not (0x20 <= ord(char) < 0x7F) or char in "&<>\"'`" else char
        for char in decoded
    )


@dataclass(frozen=True, slots=True)
class SplitUrl:
    """A target URL without its userinfo, and the Basic credentials it held."""

    url: str
    authorization: str | None


def split_userinfo(url: str) -> SplitUrl:
    """Take `user:pass@` out of `url`; percent-encoding is kept as written."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return SplitUrl(url, None)
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = f"{_entities(user)}:{_entities(password)}".encode()
    authorization = "Basic " + base64.b64encode(token).decode("ascii")
    return SplitUrl(urlunsplit(parts._replace(netloc=host)), authorization)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the headers of one attempt are made of."""

    job_id: str
    attempts_made: int
    queued_seconds: int
    event_id: str | None
    authorization: str | None = None
    route_id: str | None = None
    #: Route headers for a route, otherwise the global custom headers.
    custom: tuple[Header, ...] = ()
    #: The account's own custom headers, applied after `custom`.
    account: tuple[Header, ...] = ()


class _Headers:
    """Ordered headers where setting a name again replaces it in place."""

    def __init__(self) -> None:
        self._items: dict[str, Header] = {}

    def set(self, name: str, value: str) -> None:
        # A replaced name keeps its first position (dict order), as a Headers object does.
        self._items[name.lower()] = (name, value)

    def update(self, pairs: Iterable[Header]) -> None:
        for name, value in pairs:
            self.set(name, value)

    def items(self) -> list[Header]:
        return list(self._items.values())


def request_headers(body: bytes, secret: str, facts: RequestFacts) -> list[Header]:
    """Every header of one webhook request, in the order they are set."""
    headers = _Headers()
    headers.set("Content-Type", "application/json")
    headers.set("User-Agent", USER_AGENT)
    headers.set("X-EE-Wh-Id", facts.job_id)
    headers.set("X-EE-Wh-Attempts-Made", str(facts.attempts_made))
    headers.set("X-EE-Wh-Queued-Time", f"{max(0, facts.queued_seconds)}s")
    if facts.authorization is not None:
        headers.set("Authorization", facts.authorization)
    if facts.route_id is not None:
        headers.set("X-EE-Wh-Custom-Route", facts.route_id)
    headers.update(facts.custom)
    headers.update(facts.account)
    if facts.event_id is not None:
        headers.set(EVENT_ID_HEADER, facts.event_id)
    headers.set("Content-Length", str(len(body)))
    headers.set(SIGNATURE_HEADER, signature(body, secret))
    return headers.items()
