"""Which IP addresses outbound requests may reach: the address table behind `net.egress`.

`classify(address)` names the kind of a non-public address, or answers None
for a public one. The table is ours rather than `ipaddress.is_global` alone,
because that property's lists changed between Python patch releases and do not
say *why* an address is refused; `is_global` stays as a backstop for anything
the table misses.

IPv6 forms that carry an IPv4 address inside them (IPv4-mapped and
IPv4-compatible, NAT64 and 6to4) are judged as the IPv4 address they carry:
a packet to `::ffff:127.0.0.1` reaches loopback on a dual-stack host, and one
to `64:ff9b::a00:1` reaches 10.0.0.1 through a NAT64 gateway. Teredo
addresses are refused outright: the IPv4 peer they name sits behind a relay
the guard cannot see.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Kind(Enum):
    """Why an address is not public, and which policy switch may open it."""

    #: Loopback, RFC 1918, RFC 6598 shared (CGNAT), unique-local and link-local
    #: space: an operator's own network. `allow_private` opens these.
    PRIVATE = "private"
    #: Cloud instance metadata endpoints: they hand out credentials, so only an
    #: explicit allow-list entry naming the address opens them.
    METADATA = "metadata"
    #: Everything no request should ever reach (multicast, broadcast, unspecified,
    #: documentation, reserved ...): only an explicit allow-list entry opens these.
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A non-public address: its kind and a phrase for the refusal message."""

    kind: Kind
    what: str


def _table(rows: list[tuple[str, Kind, str]]) -> list[tuple[IPNetwork, Verdict]]:
    return [(ipaddress.ip_network(net), Verdict(kind, what)) for net, kind, what in rows]


# Order matters: the first network containing the address names it, so the
# specific rows (metadata, broadcast) come before the ranges holding them.
_IPV4 = _table(
    [
        ("169.254.169.254/32", Kind.METADATA, "a cloud metadata endpoint"),
        ("169.254.170.2/32", Kind.METADATA, "a cloud metadata endpoint (container credentials)"),
        ("169.254.170.23/32", Kind.METADATA, "a cloud metadata endpoint (pod identity)"),
        ("100.100.100.200/32", Kind.METADATA, "a cloud metadata endpoint"),
        ("0.0.0.0/8", Kind.NEVER, "in 0.0.0.0/8 ('this network', RFC 1122)"),
        ("127.0.0.0/8", Kind.PRIVATE, "a loopback address"),
        ("10.0.0.0/8", Kind.PRIVATE, "a private address (RFC 1918)"),
        ("172.16.0.0/12", Kind.PRIVATE, "a private address (RFC 1918)"),
        ("192.168.0.0/16", Kind.PRIVATE, "a private address (RFC 1918)"),
        ("100.64.0.0/10", Kind.PRIVATE, "a shared carrier-grade NAT address (RFC 6598)"),
        ("169.254.0.0/16", Kind.PRIVATE, "a link-local address"),
        ("192.0.0.0/24", Kind.NEVER, "an IETF protocol assignment (RFC 6890)"),
        ("192.0.2.0/24", Kind.NEVER, "a documentation address (RFC 5737)"),
        ("198.51.100.0/24", Kind.NEVER, "a documentation address (RFC 5737)"),
        ("203.0.113.0/24", Kind.NEVER, "a documentation address (RFC 5737)"),
        ("198.18.0.0/15", Kind.NEVER, "a benchmarking address (RFC 2544)"),
        ("192.88.99.0/24", Kind.NEVER, "a deprecated 6to4 relay address (RFC 7526)"),
        ("224.0.0.0/4", Kind.NEVER, "a multicast address"),
        ("255.255.255.255/32", Kind.NEVER, "the broadcast address"),
        ("240.0.0.0/4", Kind.NEVER, "a reserved address (240.0.0.0/4)"),
    ]
)
_IPV6 = _table(
    [
        ("fd00:ec2::254/128", Kind.METADATA, "a cloud metadata endpoint"),
        ("fd00:ec2::23/128", Kind.METADATA, "a cloud metadata endpoint (pod identity)"),
        ("::/128", Kind.NEVER, "the unspecified address"),
        ("::1/128", Kind.PRIVATE, "a loopback address"),
        ("64:ff9b:1::/48", Kind.NEVER, "a local-use NAT64 address (RFC 8215)"),
        ("100::/64", Kind.NEVER, "a discard-only address (RFC 6666)"),
        ("2001::/32", Kind.NEVER, "a Teredo tunnelling address"),
        ("2001:db8::/32", Kind.NEVER, "a documentation address (RFC 3849)"),
        ("3fff::/20", Kind.NEVER, "a documentation address (RFC 9637)"),
        ("2001::/23", Kind.NEVER, "an IETF protocol assignment (RFC 2928)"),
        ("fc00::/7", Kind.PRIVATE, "a unique local address (RFC 4193)"),
        ("fe80::/10", Kind.PRIVATE, "a link-local address"),
        ("fec0::/10", Kind.PRIVATE, "a site-local address (deprecated, RFC 3879)"),
        ("ff00::/8", Kind.NEVER, "a multicast address"),
    ]
)

_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NOT_PUBLIC = Verdict(Kind.NEVER, "not a public address")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and would be routed to, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        # Both put the IPv4 address in the low 32 bits (RFC 6052 with a /96
        # prefix; RFC 4291 section 2.5.5.1 for the deprecated compatible form).
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> Verdict | None:
    """Name what kind of non-public address this is, or None for a public one.

    An IPv6 address carrying an IPv4 address is judged as that IPv4 address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return classify(inner)
    table = _IPV4 if isinstance(address, ipaddress.IPv4Address) else _IPV6
    for network, verdict in table:
        if address in network:
            return verdict
    if address.is_reserved or address.is_multicast or not address.is_global:
        return _NOT_PUBLIC
    return None
