"""The egress guard's vocabulary: its errors, the operator's policy and the checked `Target`.

`mailwire.net.egress` is the public face of the guard and re-exports all of
this; import from there.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from mailwire.errors import MailwireError
from mailwire.net.egress_addresses import IPAddress, IPNetwork, Kind, classify, embedded_ipv4

if TYPE_CHECKING:
    from mailwire.config import Settings

#: A DNS name is at most 253 characters (RFC 1035 section 2.3.4, without the final dot).
MAX_HOST_LENGTH = 253
DEFAULT_PORTS = {"http": 80, "https": 443}

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
#: What a WHATWG URL parser (and inet_aton) would read as an IPv4 number: a last
#: label of digits, or of 0x and hex digits.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")

FailureKind = Literal["dns", "timeout", "connect", "tls", "protocol"]


class EgressError(MailwireError):
    """An outbound request was refused or failed; `reason` says why, in one line."""

    code = "EgressError"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class EgressRefused(EgressError):
    """The guard refuses the URL or where it leads. Retrying is pointless until the
    URL, its DNS records or the policy change."""

    code = "EgressRefused"


class EgressFailed(EgressError):
    """The request was allowed but did not complete (`kind`: dns, timeout, connect,
    tls, protocol); worth retrying later."""

    code = "EgressFailed"

    def __init__(self, reason: str, *, kind: FailureKind) -> None:
        self.kind = kind
        super().__init__(reason)


def is_numeric(name: str) -> bool:
    """Whether a resolver would read this host (no final dot) as an IPv4 number."""
    return bool(_NUMERIC_LABEL.fullmatch(name.rpartition(".")[2]))


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which non-public destinations the operator opened (see the module docstring).

    `allow` holds networks in CIDR notation (`10.1.0.0/16`, `::1`) and host
    names, exact (`hooks.internal`) or with a leading wildcard label
    (`*.corp.example`, which matches names below it, not itself). A bad entry
    raises ValueError.
    """

    allow_private: bool = False
    allow: tuple[str, ...] = ()
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks: list[IPNetwork] = []
        names: set[str] = set()
        suffixes: list[str] = []
        for entry in self.allow:
            kind, value = parse_allow_entry(entry)
            if kind == "network":
                networks.append(ipaddress.ip_network(value))
            elif kind == "suffix":
                suffixes.append(value)
            else:
                names.add(value)
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_suffixes", tuple(suffixes))

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        """The webhook policy: `MAILWIRE_WEBHOOK_ALLOW_PRIVATE` and `MAILWIRE_WEBHOOK_ALLOW`."""
        return cls(allow_private=settings.webhook_allow_private, allow=settings.webhook_allow)

    def allows_name(self, host: str) -> bool:
        """Whether the allow list names this host (lowercase, without a final dot)."""
        return host in self._names or any(host.endswith(s) for s in self._suffixes)

    def judge(self, address: IPAddress, *, name_allowed: bool = False) -> str | None:
        """Why `address` is refused, or None when a request may reach it.

        An IPv6 address carrying an IPv4 address (see `egress_addresses`) is
        allowed by a network containing either of them.
        """
        inner = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
        forms = (address,) if inner is None else (address, inner)
        if any(form in network for form in forms for network in self._networks):
            return None
        verdict = classify(address)
        if verdict is None:
            return None
        if verdict.kind is Kind.PRIVATE and (self.allow_private or name_allowed):
            return None
        return verdict.what if inner is None else f"{verdict.what} (it carries {inner})"


def parse_allow_entry(entry: str) -> tuple[Literal["network", "name", "suffix"], str]:
    """Read one allow-list entry: a network in CIDR notation or a host name.

    Returns the kind and the normalised value (`*.corp.example` gives the
    suffix `.corp.example`). Raises ValueError, naming the entry, when it is neither.
    """
    text = entry.strip().lower()
    try:
        return "network", str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        pass
    wildcard = text.startswith("*.")
    name = text.removeprefix("*.").rstrip(".")
    if 0 < len(name) <= MAX_HOST_LENGTH and HOST_NAME.fullmatch(name) and not is_numeric(name):
        return ("suffix", "." + name) if wildcard else ("name", name)
    raise ValueError(f"{entry!r} is neither a network (CIDR) nor a host name")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a checked request goes: the URL's parts and the one address it is pinned to."""

    scheme: Literal["http", "https"]
    #: The host as written (lowercase; IPv6 without brackets; IDNA A-label for names).
    host: str
    port: int
    #: Path and query as written, "/" when the URL has none (fragments are dropped).
    path: str
    #: The address the connection must use: the literal, or DNS's first answer.
    address: IPAddress
    #: From the URL's user:password part, percent-decoded; the caller sends Basic auth.
    username: str | None = None
    password: str | None = None

    @property
    def is_name(self) -> bool:
        """True when the host is a name (so TLS must check the certificate for it)."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return True
        return False

    @property
    def host_header(self) -> str:
        """The Host header value: host, bracketed if IPv6, with the port unless default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL without its user:password part (safe to show; the query is kept)."""
        return f"{self.scheme}://{self.host_header}{self.path}"

    @property
    def pinned_url(self) -> str:
        """The URL with the pinned address in place of the host: what is dialled."""
        address = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{address}:{self.port}{self.path}"
