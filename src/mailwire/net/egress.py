"""The egress guard: every URL Mailwire calls on a user's behalf goes through here.

Theory of operation. A webhook URL, a route target (and later OAuth2
endpoints and proxies) is chosen by a user, not by the operator, so it could
aim Mailwire at the operator's own network: a database on loopback, an admin
port on a private address, a cloud metadata endpoint that hands out
credentials (server-side request forgery). The guard works in two steps:

1. `resolve(url, policy)` checks the URL (http or https only, a real host, a
   usable port, a bounded length), splits the user:password part out, looks
   the host name up in DNS *once* and judges every address it gets. One
   forbidden address refuses the whole name. The answer, a `Target`, carries
   the single address the request will use.
2. `post(target, ...)` connects to exactly that address. DNS is not asked
   again, so a name that answers a public address to the check and loopback to
   the connection (DNS rebinding) gets nowhere. The Host header, TLS SNI and
   the certificate check use the host name, so virtual hosting and
   verification work as with a plain request. Redirects are never followed: a
   3xx comes back as a status, since its Location was never checked.

Numeric hosts are taken only in their canonical spelling (four decimal parts,
or an IPv6 literal): the decimal, octal, hexadecimal and shortened forms
(`2130706433`, `0177.0.0.1`, `0x7f000001`, `127.1`) that C resolvers accept
are refused outright, since the guard and the resolver could read them
differently.

Layout: this module checks URLs and resolves them and is the guard's public
face (it re-exports the rest); `egress_policy` holds the errors, the policy
and `Target`; `egress_addresses` decides which addresses are public;
`egress_http` sends the request.

The policy (`EgressPolicy`) opens two doors, both off by default:
`allow_private` lets requests reach loopback, private (RFC 1918, RFC 6598,
unique-local) and link-local addresses, as a single-host or in-house
deployment needs; `allow` lists networks (CIDR) and host names an operator
trusts. Cloud metadata endpoints stay refused under `allow_private` and for
allowed host names; only an allow-list network containing the address itself
opens one (or any other refused address: multicast, broadcast, reserved ...).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal
from urllib.parse import unquote, urlsplit

from mailwire.net.egress_addresses import IPAddress
from mailwire.net.egress_http import MAX_RESPONSE_BODY, Response, new_client, post
from mailwire.net.egress_policy import (
    DEFAULT_PORTS,
    HOST_NAME,
    MAX_HOST_LENGTH,
    EgressError,
    EgressFailed,
    EgressPolicy,
    EgressRefused,
    FailureKind,
    Target,
    is_numeric,
    parse_allow_entry,
)

__all__ = [
    "BAD_PORTS",
    "DNS_TIMEOUT",
    "MAX_RESPONSE_BODY",
    "MAX_URL_LENGTH",
    "EgressError",
    "EgressFailed",
    "EgressPolicy",
    "EgressRefused",
    "FailureKind",
    "Resolver",
    "Response",
    "Target",
    "new_client",
    "parse_allow_entry",
    "post",
    "resolve",
    "system_resolver",
]

#: Longer URLs are refused; real webhook URLs are far shorter, and a bound keeps
#: logs and stored routes sane.
MAX_URL_LENGTH = 4096
#: Seconds a DNS lookup may take before the attempt counts as failed.
DNS_TIMEOUT = 10.0

#: Ports of services that speak other protocols (SMTP, IRC, X11 ...): an HTTP
#: request smuggled into one of them is an attack, never a webhook. This is the
#: "bad port" list of the WHATWG Fetch standard, which browsers enforce too.
BAD_PORTS = frozenset(
    {0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95}
    | {101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161}
    | {179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563}
    | {587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060}
    | {5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080}
)

#: Looks a host name up: `(host, port) -> addresses as text`. Tests inject one
#: that answers for made-up names; production uses `system_resolver`.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """Look `host` up with the system resolver (getaddrinfo, in a worker thread)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


async def resolve(url: str, policy: EgressPolicy, *, resolver: Resolver | None = None) -> Target:
    """Check `url`, resolve its host once and pin the request to an allowed address.

    Raises `EgressRefused` for a URL or an address the policy refuses, and
    `EgressFailed` (kind "dns") when the name cannot be resolved now. Call it
    again for every attempt: a retry must see the name's current records.
    """
    scheme, host, port, path, username, password = _split(url)
    literal = _ip_literal(host)
    if literal is not None:
        reason = policy.judge(literal)
        if reason is not None:
            raise EgressRefused(f"{literal} is {reason}")
        return Target(scheme, host, port, path, literal, username, password)
    addresses = await _lookup(host, port, resolver or system_resolver)
    name_allowed = policy.allows_name(host)
    for address in addresses:
        reason = policy.judge(address, name_allowed=name_allowed)
        if reason is not None:
            raise EgressRefused(f"{host} resolves to {address}, which is {reason}")
    return Target(scheme, host, port, path, addresses[0], username, password)


def _split(url: str) -> tuple[Literal["http", "https"], str, int, str, str | None, str | None]:
    if len(url) > MAX_URL_LENGTH:
        raise EgressRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F or char == "\\" for char in url):
        raise EgressRefused("the URL contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressRefused(f"the URL is malformed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme!r}" if scheme else "missing"
        raise EgressRefused(f"the URL scheme is {shown}; only http and https are allowed")
    host = _host(parts.hostname or "")
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if port in BAD_PORTS:
        raise EgressRefused(f"port {port} belongs to a non-web service and is not allowed")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return "https" if scheme == "https" else "http", host, port, path, username, password


def _host(host: str) -> str:
    """Validate the host of a URL (urlsplit lowercased it and removed IPv6 brackets)."""
    if not host:
        raise EgressRefused("the URL has no host")
    if "%" in host:
        raise EgressRefused("IPv6 zone identifiers (%) are not allowed in the host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise EgressRefused("the host is not a valid international domain name") from None
    if _ip_literal(host) is not None:
        return host
    name = host.rstrip(".")
    if is_numeric(name):
        raise EgressRefused(
            f"the host {host!r} is an IP address in a non-standard form (decimal, octal, hex "
            "or shortened); write IPv4 addresses as four decimal numbers"
        )
    if len(name) > MAX_HOST_LENGTH or not HOST_NAME.fullmatch(name):
        raise EgressRefused(f"the host {host!r} is not a valid host name")
    return name


def _ip_literal(host: str) -> IPAddress | None:
    """The address when `host` is an IP literal in canonical form, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _lookup(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        async with asyncio.timeout(DNS_TIMEOUT):
            found = await resolver(host, port)
    except TimeoutError:
        raise EgressFailed(f"looking up {host} timed out", kind="dns") from None
    except OSError as exc:  # socket.gaierror and friends
        raise EgressFailed(f"cannot resolve {host}: {exc.strerror or exc}", kind="dns") from None
    addresses: list[IPAddress] = []
    for text in found:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise EgressRefused(f"{host} resolves to {text!r}, not an IP address") from None
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            # A zone (fe80::1%eth0) only means something on this host; the URL cannot carry it.
            raise EgressRefused(f"{host} resolves to {text}, an address with a zone")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise EgressFailed(f"{host} has no addresses", kind="dns")
    return addresses
