"""The egress guard's decisions: which URLs it refuses, and why, before any connection.

No test here sends a packet: literal and numeric hosts are judged without a
lookup (the resolver below fails the test if asked), and names are answered
by a stub resolver, except `localhost`, which the system resolves locally.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwire.config import load_settings
from mailwire.errors import ConfigError
from mailwire.net.egress import (
    EgressFailed,
    EgressPolicy,
    EgressRefused,
    Resolver,
    Target,
    parse_allow_entry,
    resolve,
)

STRICT = EgressPolicy()
PRIVATE_OK = EgressPolicy(allow_private=True)
PUBLIC = "93.184.215.14"  # a public address; never dialled here


async def no_lookup(host: str, port: int) -> Sequence[str]:
    raise AssertionError(f"the guard looked up {host!r}; it must decide without DNS")


def stub(answers: dict[str, list[str]]) -> Resolver:
    """A resolver for made-up names; unknown names fail as getaddrinfo would."""

    async def lookup(host: str, port: int) -> Sequence[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return lookup


async def refused(
    url: str, policy: EgressPolicy = STRICT, resolver: Resolver | None = no_lookup
) -> str:
    with pytest.raises(EgressRefused) as caught:
        await resolve(url, policy, resolver=resolver)
    assert "\n" not in caught.value.reason
    return caught.value.reason


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.8.9.10:8080/hook", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.1.2.3/", "RFC 1918"),
        ("http://172.16.0.1/", "RFC 1918"),
        ("http://172.31.255.254/", "RFC 1918"),
        ("http://192.168.1.1/", "RFC 1918"),
        ("http://100.64.0.1/", "RFC 6598"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fc00::1]/", "unique local"),
        ("http://[fd12:3456::1]/", "unique local"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "metadata"),
        ("http://[::127.0.0.1]/", "loopback"),  # IPv4-compatible (deprecated) form
        ("http://[64:ff9b::a00:1]/", "RFC 1918"),  # NAT64 of 10.0.0.1
        ("http://[64:ff9b::7f00:1]/", "loopback"),
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
        ("http://[2002:a9fe:a9fe::1]/", "metadata"),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"),
        ("http://0.0.0.0/", "this network"),
        ("http://0.1.2.3/", "this network"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://192.0.2.10/", "documentation"),
        ("http://198.51.100.10/", "documentation"),
        ("http://203.0.113.10/", "documentation"),
        ("http://[2001:db8::1]/", "documentation"),
        ("http://198.18.0.1/", "benchmarking"),
    ],
)
async def test_non_public_addresses_are_refused_with_the_reason(url: str, why: str) -> None:
    assert why in await refused(url)


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",  # 127.0.0.1 as one decimal number
        "0177.0.0.1",  # octal first part
        "0x7f000001",  # one hexadecimal number
        "0x7f.0.0.1",
        "127.1",  # shortened: a.d
        "127.0.1",  # shortened: a.b.d
        "017700000001",  # one octal number
        "0",
        "127.0.0.1.",  # a final dot makes it no longer canonical
        "134744072",  # 8.8.8.8: refused for its form, whatever the value
        "1.2.3.0x4",
    ],
)
async def test_numeric_hosts_in_non_standard_forms_are_refused_without_a_lookup(host: str) -> None:
    assert "non-standard form" in await refused(f"http://{host}/")


async def test_a_public_literal_is_pinned_to_itself() -> None:
    target = await resolve(f"https://{PUBLIC}:8443/in?x=1#part", STRICT, resolver=no_lookup)
    assert target.address == ipaddress.ip_address(PUBLIC)
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        PUBLIC,
        8443,
        "/in?x=1",
    )
    assert target.pinned_url == f"https://{PUBLIC}:8443/in?x=1"
    assert not target.is_name
    v6 = await resolve("http://[2606:4700::1111]/", STRICT, resolver=no_lookup)
    assert v6.host_header == "[2606:4700::1111]"
    assert v6.pinned_url == "http://[2606:4700::1111]:80/"


# --------------------------------------------------------------------------- names


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    reason = await refused("http://rebind.test/", resolver=stub({"rebind.test": ["127.0.0.1"]}))
    assert reason == "rebind.test resolves to 127.0.0.1, which is a loopback address"


async def test_localhost_through_the_system_resolver_is_refused() -> None:
    reason = await refused("http://localhost:8080/", resolver=None)
    assert "loopback" in reason


@pytest.mark.parametrize("answers", [[PUBLIC, "10.0.0.5"], ["10.0.0.5", PUBLIC], [PUBLIC, "::1"]])
async def test_one_forbidden_address_among_several_refuses_the_name(answers: list[str]) -> None:
    reason = await refused("https://mixed.test/", resolver=stub({"mixed.test": answers}))
    assert reason.startswith("mixed.test resolves to ")


async def test_a_public_name_is_pinned_to_its_first_address() -> None:
    resolver = stub({"hooks.example": [PUBLIC, "2606:4700::1111", PUBLIC]})
    target = await resolve("https://Hooks.Example/in", STRICT, resolver=resolver)
    assert target.host == "hooks.example"
    assert target.address == ipaddress.ip_address(PUBLIC)
    assert target.is_name
    assert target.host_header == "hooks.example"
    assert target.pinned_url == f"https://{PUBLIC}:443/in"
    assert target.url == "https://hooks.example/in"


async def test_the_name_is_resolved_once_per_resolve() -> None:
    calls: list[tuple[str, int]] = []

    async def counting(host: str, port: int) -> Sequence[str]:
        calls.append((host, port))
        return [PUBLIC]

    await resolve("http://hooks.example:8080/", STRICT, resolver=counting)
    assert calls == [("hooks.example", 8080)]


async def test_lookup_failures_are_retryable_dns_failures() -> None:
    with pytest.raises(EgressFailed) as caught:
        await resolve("http://nowhere.test/", STRICT, resolver=stub({}))
    assert caught.value.kind == "dns"
    assert "nowhere.test" in caught.value.reason
    with pytest.raises(EgressFailed) as empty:
        await resolve("http://empty.test/", STRICT, resolver=stub({"empty.test": []}))
    assert empty.value.kind == "dns"


async def test_a_link_local_answer_with_a_zone_is_refused_even_when_allowed() -> None:
    resolver = stub({"scoped.test": ["fe80::1%lo"]})
    assert "zone" in await refused("http://scoped.test/", PRIVATE_OK, resolver)


async def test_a_resolver_answer_that_is_not_an_address_is_refused() -> None:
    assert "not an IP address" in await refused(
        "http://odd.test/", resolver=stub({"odd.test": ["x"]})
    )


# --------------------------------------------------------------------------- URL shape


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://files.example/x", "'ftp'"),
        ("file:///etc/passwd", "'file'"),
        ("javascript:alert(1)", "'javascript'"),
        ("gopher://hooks.example:70/", "'gopher'"),
        ("//hooks.example/in", "missing"),
        ("hooks.example/in", "missing"),
        ("http:///in", "no host"),
        ("http://", "no host"),
        ("http://user@/in", "no host"),
        ("http://:8080/in", "no host"),
        ("http://hooks.example:25/", "port 25"),
        ("http://hooks.example:6667/", "port 6667"),
        ("http://hooks.example:0/", "port 0"),
        ("http://hooks.example:65536/", "malformed"),
        ("http://hooks.example:http/", "malformed"),
        ("http://[::1/", "malformed"),
        ("http://hooks.example/a b", "spaces"),
        ("http://hooks.example/\r\nX-Injected: 1", "control"),
        ("http://evil.example\\@127.0.0.1/", "backslash"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://-bad-.example/", "not a valid host name"),
        ("http://a..b/", "not a valid host name"),
        ("http://" + "a" * 64 + ".example/", "not a valid host name"),
        ("http://hooks.example/" + "a" * 5000, "longer than 4096"),
    ],
)
async def test_malformed_or_unsupported_urls_are_refused(url: str, why: str) -> None:
    assert why in await refused(url, resolver=stub({"hooks.example": [PUBLIC]}))


async def test_userinfo_is_split_out_and_percent_decoded() -> None:
    resolver = stub({"hooks.example": [PUBLIC]})
    target = await resolve(
        "https://us%40er:p%3Ass%20w@hooks.example/x?y=1#f", STRICT, resolver=resolver
    )
    assert (target.username, target.password) == ("us@er", "p:ss w")
    assert target.url == "https://hooks.example/x?y=1"
    assert "p:ss" not in target.pinned_url
    bare = await resolve("http://hooks.example/", STRICT, resolver=resolver)
    assert (bare.username, bare.password) == (None, None)
    user_only = await resolve("http://token@hooks.example/", STRICT, resolver=resolver)
    assert (user_only.username, user_only.password) == ("token", None)


@pytest.mark.parametrize(
    "host", ["127\u30020\u30020\u30021", "\u2460\u2461\u2466.0.0.1", "0x7f\uff0e1"]
)
async def test_unicode_spellings_of_addresses_are_judged_after_normalising(host: str) -> None:
    # IDNA maps full-width and ideographic dots to "." and circled digits to digits.
    await refused(f"http://{host}/")


async def test_a_unicode_spelling_of_localhost_is_looked_up_as_localhost() -> None:
    resolver = stub({"localhost": ["127.0.0.1"]})
    assert "loopback" in await refused(
        "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/", resolver=resolver
    )


async def test_an_international_name_is_looked_up_in_its_ascii_form() -> None:
    resolver = stub({"xn--bcher-kva.example": [PUBLIC]})
    target = await resolve("http://bücher.example/", STRICT, resolver=resolver)
    assert target.host == "xn--bcher-kva.example"


# --------------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://192.168.0.10/",
        "http://100.64.1.1/",
        "http://169.254.10.10/",
        "http://[fd12::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://rebind.test/",
    ],
)
async def test_allow_private_opens_loopback_private_and_link_local(url: str) -> None:
    with pytest.raises(EgressRefused):
        await resolve(url, STRICT, resolver=stub({"rebind.test": ["127.0.0.1"]}))
    target = await resolve(url, PRIVATE_OK, resolver=stub({"rebind.test": ["127.0.0.1"]}))
    assert not target.address.is_global


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://2130706433/",
    ],
)
async def test_allow_private_keeps_metadata_and_special_addresses_closed(url: str) -> None:
    await refused(url, PRIVATE_OK)


async def test_an_allow_list_network_opens_exactly_that_network() -> None:
    policy = EgressPolicy(allow=("127.0.0.0/8", "169.254.169.254"))
    for url in ("http://127.0.0.1/", "http://[::ffff:127.0.0.2]/", "http://169.254.169.254/"):
        await resolve(url, policy, resolver=no_lookup)
    await refused("http://10.0.0.1/", policy)
    await refused("http://169.254.169.253/", policy)


async def test_an_allowed_name_may_reach_private_addresses_but_not_metadata() -> None:
    policy = EgressPolicy(allow=("hooks.internal", "*.corp.example"))
    answers = {
        "hooks.internal": ["10.0.0.7"],
        "a.b.corp.example": ["192.168.3.4"],
        "corp.example": ["192.168.3.5"],
        "other.internal": ["10.0.0.8"],
        "evil.corp.example": ["169.254.169.254"],
    }
    resolver = stub(answers)
    assert (await resolve("http://hooks.internal/", policy, resolver=resolver)).port == 80
    await resolve("http://a.b.corp.example/", policy, resolver=resolver)
    await refused("http://corp.example/", policy, resolver)
    await refused("http://other.internal/", policy, resolver)
    assert "metadata" in await refused("http://evil.corp.example/", policy, resolver)
    # The allow list names hosts, not the addresses they happen to resolve to.
    await refused("http://10.0.0.7/", policy)


@pytest.mark.parametrize(
    "entry", ["", "not a host", "10.0.0.0/33", "127.1", "-x-.example", "*.", "a*.b"]
)
def test_bad_allow_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a network"):
        parse_allow_entry(entry)
    with pytest.raises(ValueError, match="neither a network"):
        EgressPolicy(allow=(entry,))


def test_allow_entries_are_normalised() -> None:
    assert parse_allow_entry("10.1.2.3/8") == ("network", "10.0.0.0/8")
    assert parse_allow_entry("::1") == ("network", "::1/128")
    assert parse_allow_entry("Hooks.Internal.") == ("name", "hooks.internal")
    assert parse_allow_entry("*.Corp.Example") == ("suffix", ".corp.example")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any MAILWIRE_ setting of the person running the tests."""
    for name in list(os.environ):
        if name.upper().startswith("MAILWIRE_") and not name.upper().startswith("MAILWIRE_TEST_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_the_policy_comes_from_settings(environment: pytest.MonkeyPatch) -> None:
    assert EgressPolicy.from_settings(load_settings()) == EgressPolicy()
    environment.setenv("MAILWIRE_WEBHOOK_ALLOW_PRIVATE", "true")
    environment.setenv("MAILWIRE_WEBHOOK_ALLOW", "10.1.0.0/8, Hooks.Internal *.corp.example")
    policy = EgressPolicy.from_settings(load_settings())
    assert policy == EgressPolicy(True, ("10.0.0.0/8", "hooks.internal", "*.corp.example"))
    assert policy.allows_name("hooks.internal")
    assert policy.allows_name("x.corp.example")


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("MAILWIRE_WEBHOOK_ALLOW_PRIVATE", "perhaps", "valid boolean"),
        ("MAILWIRE_WEBHOOK_ALLOW", "10.0.0.0/8,not_a host!", "neither a network"),
        ("MAILWIRE_WEBHOOK_ALLOW", "127.1", "neither a network"),
        ("MAILWIRE_WEBHOOK_ALLOW", "10.0.0.0/40", "neither a network"),
    ],
)
def test_bad_egress_settings_name_the_variable(
    environment: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    environment.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.setting == variable
    assert fragment in str(caught.value)


# --------------------------------------------------------------------------- property


_PRIVATE_V4 = [
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "0.0.0.0/8",
    )
]


@st.composite
def private_ipv4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    network = draw(st.sampled_from(_PRIVATE_V4))
    offset = draw(st.integers(0, network.num_addresses - 1))
    return ipaddress.IPv4Address(int(network.network_address) + offset)


def _spellings(address: ipaddress.IPv4Address) -> list[str]:
    """Every way a URL host can name `address`, canonical or not."""
    a, b, c, d = address.packed
    value = int(address)
    high, low = value >> 16, value & 0xFFFF
    return [
        str(address),
        f"{value}",
        f"{value:#x}",
        f"0{value:o}",
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
        f"{a:#x}.{b:#x}.{c:#x}.{d:#x}",
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"{address}.",
        f"[::ffff:{address}]",
        f"[::ffff:{high:x}:{low:x}]",
        f"[0:0:0:0:0:ffff:{high:x}:{low:x}]",
        f"[64:ff9b::{high:x}:{low:x}]",
        f"[2002:{high:x}:{low:x}::1]",
    ]


@settings(max_examples=300, deadline=None)  # 14 event loops an example: slow on a busy CI
@given(address=private_ipv4())
def test_any_spelling_of_a_private_ipv4_address_is_refused(address: ipaddress.IPv4Address) -> None:
    for spelling in _spellings(address):
        with pytest.raises(EgressRefused):
            asyncio.run(resolve(f"http://{spelling}:8080/", STRICT, resolver=no_lookup))


def test_targets_are_plain_values() -> None:
    target = Target("http", "hooks.example", 8080, "/", ipaddress.ip_address(PUBLIC))
    assert target.host_header == "hooks.example:8080"
    assert target == Target("http", "hooks.example", 8080, "/", ipaddress.ip_address(PUBLIC))


async def _loopback_for_every_name(host: str, port: int) -> Sequence[str]:
    return ["127.0.0.1"]


_URLISH = st.builds(
    "".join,
    st.lists(
        st.sampled_from(
            [
                "http://",
                "https://",
                "ftp:",
                "//",
                "@",
                ":",
                "[",
                "]",
                "%",
                "%25",
                "/",
                "?",
                "#",
                ".",
                "0x",
                "0",
                "1",
                "127",
                "255",
                "::",
                "ffff",
                "localhost",
                "a",
                "-",
                "\\",
                " ",
            ]
        )
        | st.text(max_size=3),
        max_size=12,
    ),
)


@settings(max_examples=500)
@given(url=st.one_of(_URLISH, st.text(max_size=40)))
def test_any_text_is_refused_or_pinned_to_a_public_address(url: str) -> None:
    """Every name resolves to loopback here, so only a public literal may pass."""
    try:
        target = asyncio.run(resolve(url, STRICT, resolver=_loopback_for_every_name))
    except (EgressRefused, EgressFailed):
        return
    assert target.address.is_global
    assert not target.is_name
