"""Access tokens: their parts and the rule that decides whether one may run an operation.

A token grants *scopes* (which surface: REST API, SMTP submission, IMAP proxy,
metrics). Within the API, an *operation* belongs to a *group* (account,
message, ..., or admin) and performs an *action* (read, write, send,
destructive). A token may be narrowed three ways, all of which must pass:

- bound to one account: it reaches only operations addressing that account;
- `permissions`: allowlists of actions and groups; a narrowed token never
  reaches the admin group (token management, settings, credentials);
- `restrictions`: client addresses, HTTP referrers, and a request rate.

`authorize` applies every rule but the rate limit (which needs shared state and
lives in the service). It is pure: the caller supplies the time.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum

from mailwire.errors import AccessDeniedError, AuthenticationError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Tokens are 32 random bytes written as 64 lowercase hex characters.
TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"^[0-9a-f]{64}$")
#: Referrer patterns: `*` is the only wildcard. Bounds keep matching linear enough.
MAX_REFERRER_PATTERN_LENGTH = 512
MAX_REFERRER_WILDCARDS = 8
MAX_REFERRER_LENGTH = 2048


class Scope(StrEnum):
    ALL = "*"
    API = "api"
    SMTP = "smtp"
    IMAP_PROXY = "imap-proxy"
    METRICS = "metrics"


class Action(StrEnum):
    READ = "read"
    WRITE = "write"
    SEND = "send"
    DESTRUCTIVE = "destructive"


class Group(StrEnum):
    ACCOUNT = "account"
    MAILBOX = "mailbox"
    MESSAGE = "message"
    SUBMIT = "submit"
    OUTBOX = "outbox"
    EXPORT = "export"
    TEMPLATE = "template"
    BLOCKLIST = "blocklist"
    WEBHOOK = "webhook"
    GATEWAY = "gateway"
    EVENTS = "events"
    DIAGNOSTICS = "diagnostics"
    LOGS = "logs"
    #: Instance administration: tokens, settings, credentials. Never reachable by
    #: a token that sets `permissions`, and not listed among grantable groups.
    ADMIN = "admin"


GRANTABLE_GROUPS = frozenset(group for group in Group if group is not Group.ADMIN)


@dataclass(frozen=True, slots=True)
class RateLimit:
    max_requests: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class Restrictions:
    referrers: tuple[str, ...] | None = None
    addresses: tuple[IPNetwork, ...] | None = None
    rate_limit: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class Permissions:
    actions: frozenset[Action] | None = None
    groups: frozenset[Group] | None = None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the store keeps about a token (never the token itself)."""

    id: str
    description: str
    scopes: frozenset[Scope]
    account: str | None = None
    restrictions: Restrictions | None = None
    permissions: Permissions | None = None
    metadata: str | None = None
    ip: str | None = None
    remote_address: str | None = None
    created_at: int = 0
    expires_at: int | None = None
    last_used_at: int | None = None
    last_used_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """What a request wants to do, as declared by the route that serves it."""

    scope: Scope
    group: Group
    action: Action
    #: The account the request addresses (its `{account}` path value), if any.
    account: str | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Facts about the client that the restrictions test."""

    address: IPAddress | None = None
    referrer: str | None = None


def token_id(token: str) -> str:
    """The public identifier of a token: the hex SHA-256 of its text."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def is_well_formed(token: str) -> bool:
    return TOKEN_PATTERN.fullmatch(token) is not None


def authorize(record: TokenRecord, operation: Operation, caller: Caller, *, now_ms: int) -> None:
    """Raise `AuthenticationError` (expired) or `AccessDeniedError`; return when allowed."""
    if record.expires_at is not None and record.expires_at <= now_ms:
        raise AuthenticationError("The access token has expired")
    if Scope.ALL not in record.scopes and operation.scope not in record.scopes:
        raise AccessDeniedError(
            f"This token does not have the {operation.scope.value!r} scope", reason="scope"
        )
    if record.restrictions is not None:
        _check_restrictions(record.restrictions, caller)
    if record.account is not None and operation.account != record.account:
        raise AccessDeniedError(
            "This token is bound to a single account and cannot reach this resource",
            reason="account",
        )
    if record.permissions is not None:
        _check_permissions(record.permissions, operation)


def _check_restrictions(restrictions: Restrictions, caller: Caller) -> None:
    if restrictions.addresses is not None and not _address_allowed(
        restrictions.addresses, caller.address
    ):
        raise AccessDeniedError("This token may not be used from this address", reason="address")
    if restrictions.referrers is not None and not referrer_allowed(
        restrictions.referrers, caller.referrer
    ):
        raise AccessDeniedError("This token may not be used from this referrer", reason="referrer")


def _address_allowed(networks: tuple[IPNetwork, ...], address: IPAddress | None) -> bool:
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


def referrer_allowed(patterns: tuple[str, ...], referrer: str | None) -> bool:
    """Match the Referer header against `*` wildcard patterns, case-insensitively."""
    if not referrer or len(referrer) > MAX_REFERRER_LENGTH:
        return False
    return any(_wildcard(pattern).fullmatch(referrer) for pattern in patterns)


def check_referrer_pattern(pattern: str) -> str:
    """Validate a referrer pattern at the edge; ValueError names the problem."""
    if not pattern or len(pattern) > MAX_REFERRER_PATTERN_LENGTH:
        raise ValueError(f"must be 1 to {MAX_REFERRER_PATTERN_LENGTH} characters long")
    if pattern.count("*") > MAX_REFERRER_WILDCARDS:
        raise ValueError(f"may hold at most {MAX_REFERRER_WILDCARDS} wildcards")
    return pattern


@functools.lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> re.Pattern[str]:
    """Compile a referrer pattern. A `*` in the scheme-and-host part matches host
    characters only, so `https://*.example.com/*` cannot be satisfied by a page
    on another site whose path or query merely contains `.example.com/`; a `*` in
    the path matches anything. A leading `*` without a scheme also covers one."""
    scheme_end = pattern.find("://")
    slash = pattern.find("/", scheme_end + 3 if scheme_end >= 0 else 0)
    host_end = len(pattern) if slash < 0 else slash
    pieces: list[str] = []
    for position, char in enumerate(pattern):
        if char != "*":
            pieces.append(re.escape(char))
        elif position >= host_end:
            pieces.append(".*")
        elif position == 0 and scheme_end < 0:
            pieces.append(r"(?:[a-z][a-z0-9+.-]*://)?[^/?#]*")
        else:
            pieces.append(r"[^/?#]*")
    return re.compile("".join(pieces), re.IGNORECASE | re.DOTALL)


def _check_permissions(permissions: Permissions, operation: Operation) -> None:
    if operation.group is Group.ADMIN:
        raise AccessDeniedError(
            "Tokens with permissions cannot reach administrative endpoints", reason="group"
        )
    if permissions.actions is not None and operation.action not in permissions.actions:
        raise AccessDeniedError(
            f"This token may not perform {operation.action.value!r} operations",
            reason="action",
        )
    if permissions.groups is not None and operation.group not in permissions.groups:
        raise AccessDeniedError(
            f"This token may not reach the {operation.group.value!r} endpoints",
            reason="group",
        )


def parse_network(text: str) -> IPNetwork:
    """An address or CIDR range; ValueError on anything else."""
    return ipaddress.ip_network(text.strip(), strict=False)
