"""The access rule for tokens, as a pure function."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwire.domain.tokens import (
    Action,
    Caller,
    Group,
    Operation,
    Permissions,
    Restrictions,
    Scope,
    TokenRecord,
    authorize,
    check_referrer_pattern,
    is_well_formed,
    referrer_allowed,
    token_id,
)
from mailwire.errors import AccessDeniedError, AuthenticationError

NOW = 1_700_000_000_000
LOCAL = Caller(address=ipaddress.ip_address("127.0.0.1"))
READ_MESSAGES = Operation(Scope.API, Group.MESSAGE, Action.READ, account="alice")
LIST_TOKENS = Operation(Scope.API, Group.ADMIN, Action.READ)


def token(**fields: object) -> TokenRecord:
    values: dict[str, object] = {
        "id": "a" * 64,
        "description": "t",
        "scopes": frozenset({Scope.API}),
    }
    values.update(fields)
    return TokenRecord(**values)  # type: ignore[arg-type]


def denied_reason(record: TokenRecord, operation: Operation, caller: Caller = LOCAL) -> str:
    with pytest.raises(AccessDeniedError) as caught:
        authorize(record, operation, caller, now_ms=NOW)
    return caught.value.reason


def test_root_token_reaches_everything() -> None:
    authorize(token(scopes=frozenset({Scope.ALL})), LIST_TOKENS, LOCAL, now_ms=NOW)
    authorize(token(), READ_MESSAGES, LOCAL, now_ms=NOW)


def test_expired_token_is_an_authentication_failure() -> None:
    with pytest.raises(AuthenticationError):
        authorize(token(expires_at=NOW), LIST_TOKENS, LOCAL, now_ms=NOW)
    authorize(token(expires_at=NOW + 1), LIST_TOKENS, LOCAL, now_ms=NOW)


def test_scope_is_required() -> None:
    assert denied_reason(token(scopes=frozenset({Scope.SMTP})), LIST_TOKENS) == "scope"


def test_account_binding() -> None:
    bound = token(account="alice")
    authorize(bound, READ_MESSAGES, LOCAL, now_ms=NOW)
    other = Operation(Scope.API, Group.MESSAGE, Action.READ, account="bob")
    assert denied_reason(bound, other) == "account"
    assert denied_reason(bound, LIST_TOKENS) == "account"  # no account addressed


def test_permissions_narrow_by_action_and_group_and_never_reach_admin() -> None:
    readers = token(permissions=Permissions(actions=frozenset({Action.READ})))
    authorize(readers, READ_MESSAGES, LOCAL, now_ms=NOW)
    write = Operation(Scope.API, Group.MESSAGE, Action.WRITE, account="alice")
    assert denied_reason(readers, write) == "action"
    mailboxes = token(permissions=Permissions(groups=frozenset({Group.MAILBOX})))
    assert denied_reason(mailboxes, READ_MESSAGES) == "group"
    everything = token(permissions=Permissions(actions=frozenset(Action), groups=frozenset(Group)))
    assert denied_reason(everything, LIST_TOKENS) == "group"


def test_address_allowlist() -> None:
    restricted = token(restrictions=Restrictions(addresses=(ipaddress.ip_network("10.0.0.0/8"),)))
    assert denied_reason(restricted, LIST_TOKENS) == "address"
    inside = Caller(address=ipaddress.ip_address("10.1.2.3"))
    authorize(restricted, LIST_TOKENS, inside, now_ms=NOW)
    mapped = Caller(address=ipaddress.ip_address("::ffff:10.1.2.3"))
    authorize(restricted, LIST_TOKENS, mapped, now_ms=NOW)
    assert denied_reason(restricted, LIST_TOKENS, Caller(address=None)) == "address"


def test_referrer_allowlist() -> None:
    restricted = token(restrictions=Restrictions(referrers=("https://*.example.com/*",)))
    assert denied_reason(restricted, LIST_TOKENS) == "referrer"
    good = Caller(address=LOCAL.address, referrer="https://app.Example.com/page")
    authorize(restricted, LIST_TOKENS, good, now_ms=NOW)
    evil = Caller(address=LOCAL.address, referrer="https://evil.com/?x=.example.com/")
    assert denied_reason(restricted, LIST_TOKENS, evil) == "referrer"


@pytest.mark.parametrize(
    ("pattern", "referrer", "allowed"),
    [
        ("*web.domain.org/*", "https://web.domain.org/app", True),
        ("*web.domain.org/*", "https://www.web.domain.org/app", True),
        ("*.domain.org/*", "http://a.b.domain.org/", True),
        ("https://domain.org/*", "https://domain.org/a/b?c=d", True),
        ("https://domain.org/*", "http://domain.org/a", False),
        ("https://*.example.com/*", "https://evil.com/.example.com/", False),
        ("*.example.com/*", "https://evil.com/x.example.com/", False),
        ("https://*.example.com/*", "https://evil.com#.example.com/", False),
    ],
)
def test_host_wildcards_stay_inside_the_host(pattern: str, referrer: str, allowed: bool) -> None:
    assert referrer_allowed((pattern,), referrer) is allowed


def test_referrer_patterns_are_literal_except_for_stars() -> None:
    assert referrer_allowed(("https://a.com/[x]?",), "https://a.com/[x]?")
    assert not referrer_allowed(("https://a.com/?",), "https://a.com/x")
    assert not referrer_allowed(("*",), "x" * 5000)  # over the length bound
    with pytest.raises(ValueError, match="wildcards"):
        check_referrer_pattern("*" * 20)


@given(st.text(max_size=300))
def test_referrer_matching_never_raises(referrer: str) -> None:
    referrer_allowed(("*a*b*c*",), referrer)


def test_token_id_is_sha256_and_format_check() -> None:
    assert token_id("0" * 64) == "60e05bd1b195af2f94112fa7197a5c88289058840ce7c6df9693756bc6250f55"
    assert is_well_formed("ab" * 32)
    assert not is_well_formed("AB" * 32)
    assert not is_well_formed("ab" * 31)
