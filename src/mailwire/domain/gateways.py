"""SMTP gateways: relays a send may go through instead of the account's own SMTP server.

A gateway is a name, a host, a port, whether to start with TLS, and an optional
login. Its password is a credential like an account's: it lives encrypted in
the secrets table under (`GATEWAY_SCOPE`, gateway id, `PASSWORD_NAME`), never in
the gateway's row, and reads back only as `MASK`.

Limits are the reference's where it states one (ids and names up to 256
characters, user and password up to 1024) and the DNS's for host names
(RFC 1035 section 2.3.4: 255 octets, labels of 63). Every text field refuses
CR, LF and NUL: the user and password end up in SMTP AUTH exchanges and the
host in a connection target, where a line break would start a new command.

Delivery bookkeeping follows the reference: a successful delivery adds one to
`deliveries`, stamps `last_use` and clears the last error; a failed attempt
only records its error (`delivery_error`), in the reference's shape, with the
arguments of an AUTH command cut off so that no credential can reach it.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Where a gateway's password lives in the secrets table: (GATEWAY_SCOPE, id, PASSWORD_NAME).
GATEWAY_SCOPE = "gateway"
PASSWORD_NAME = "pass"  # noqa: S105  (a field name in the vault, not a password)
#: What a stored password reads as (the reference's marker, as for settings).
MASK = "******"

MAX_GATEWAY_ID_LENGTH = 256
MAX_NAME_LENGTH = 256
MAX_USER_LENGTH = 1024
MAX_PASSWORD_LENGTH = 1024
#: RFC 1035 section 2.3.4: a domain name is at most 255 octets, a label 63.
MAX_HOST_LENGTH = 255
MAX_LABEL_LENGTH = 63
MIN_PORT = 1
MAX_PORT = 65535
#: Characters of each text field of a recorded delivery error.
MAX_ERROR_TEXT = 2000

#: Gateway ids: letters, digits, dot, underscore and hyphen, not only dots (so an
#: id can never read as a path step such as `..`). Also the API's pattern.
GATEWAY_ID_PATTERN = r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$"
_GATEWAY_ID = re.compile(GATEWAY_ID_PATTERN)
#: A host name label. Underscores are allowed: RFC 2181 section 11 lets DNS labels
#: hold any octet and internal relays (container names) often carry one.
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_LINE_BREAKS = frozenset("\r\n\x00")

#: Text fields of a delivery error kept as they come (cut to MAX_ERROR_TEXT).
_ERROR_TEXT_FIELDS = ("response", "code", "command", "description")
_ROUTING_FIELDS = ("localAddress", "name")


@dataclass(frozen=True, slots=True)
class Gateway:
    """A stored gateway as the API shows it: whether a password is set, never which."""

    id: str
    name: str
    host: str
    port: int
    secure: bool
    user: str | None
    has_password: bool
    deliveries: int
    last_use: int | None
    #: The last failed delivery, in the reference's `lastError` shape, or None.
    last_error: Mapping[str, Any] | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class GatewayLogin:
    """What the sender needs to connect through a gateway. The password is left out
    of `repr`, so logging this value by mistake shows no credential."""

    id: str
    host: str
    port: int
    secure: bool
    user: str | None
    password: str | None = field(repr=False)


def new_gateway_id() -> str:
    """An id for a gateway created without one."""
    return secrets.token_hex(8)


def is_gateway_id(text: str) -> bool:
    return len(text) <= MAX_GATEWAY_ID_LENGTH and _GATEWAY_ID.fullmatch(text) is not None


def check_gateway_id(text: str) -> str:
    if not is_gateway_id(text):
        raise ValueError(
            f"must be 1 to {MAX_GATEWAY_ID_LENGTH} letters, digits, '.', '_' or '-' "
            "and not only dots"
        )
    return text


def check_one_line(text: str) -> str:
    """Refuse CR, LF and NUL (see the module docstring)."""
    if not _LINE_BREAKS.isdisjoint(text):
        raise ValueError("must not contain CR, LF or NUL characters")
    return text


def check_text(text: str, max_length: int) -> str:
    """A name, user or password: at most `max_length` characters on one line."""
    if len(text) > max_length:
        raise ValueError(f"must be at most {max_length} characters long")
    return check_one_line(text)


def check_host(text: str) -> str:
    """A host name or an IP address literal, as a connection target; ValueError otherwise.

    A bracketed IPv6 literal (`[2001:db8::1]`) is accepted and returned bare. A
    name whose last label is all digits is refused: resolvers read `1.2.3` or
    `3232235777` as IPv4 addresses in legacy notations (RFC 3696 section 2).
    """
    if not text or len(text) > MAX_HOST_LENGTH:
        raise ValueError(f"must be 1 to {MAX_HOST_LENGTH} characters long")
    bracketed = text.startswith("[") and text.endswith("]")
    try:
        address = ipaddress.ip_address(text[1:-1] if bracketed else text)
    except ValueError:
        address = None
    if address is not None and (not bracketed or address.version == 6):
        return str(address)
    if bracketed:
        raise ValueError("is not an IPv6 address literal")
    labels = text.removesuffix(".").split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("must be a host name or an IP address (no scheme, port or path)")
    if labels[-1].isdigit():
        raise ValueError("is neither a valid IP address nor a host name")
    return text


def check_port(port: int) -> int:
    if not MIN_PORT <= port <= MAX_PORT:
        raise ValueError(f"must be between {MIN_PORT} and {MAX_PORT}")
    return port


def delivery_error(error: Mapping[str, Any] | None, *, at: int) -> dict[str, Any]:
    """A failed delivery's `lastError` entry from what the sender reported: only the
    reference's fields, texts cut to `MAX_ERROR_TEXT`, AUTH arguments removed."""
    entry: dict[str, Any] = {"created": at, "status": "error"}
    given = error or {}
    for name in _ERROR_TEXT_FIELDS:
        value = given.get(name)
        if isinstance(value, str):
            entry[name] = value[:MAX_ERROR_TEXT]
    if "command" in entry:
        entry["command"] = _without_auth_arguments(entry["command"])
    code = given.get("responseCode")
    if isinstance(code, int) and not isinstance(code, bool):
        entry["responseCode"] = code
    routing = given.get("networkRouting")
    if isinstance(routing, Mapping):
        entry["networkRouting"] = {
            key: str(routing[key])[:MAX_ERROR_TEXT] for key in _ROUTING_FIELDS if key in routing
        }
    return entry


def _without_auth_arguments(command: str) -> str:
    # `AUTH PLAIN <base64 of user and password>` (RFC 4954 section 4): keep the
    # verb and the mechanism, drop the initial response.
    words = command.split()
    if words and words[0].upper() == "AUTH":
        return " ".join(words[:2])
    return command
