"""Masking and unmasking of credentials in settings values, and the key tables."""

from __future__ import annotations

import pytest

from mailwire.domain.events import EventName
from mailwire.domain.settings import (
    DEFAULTS,
    EVENT_TYPES,
    MASK,
    QUERY_ONLY_DEFAULTS,
    SECRET_KEYS,
    carries_mask,
    default,
    is_masked_echo,
    mask_url,
    origin,
    restore_masked_headers,
    shown,
)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.example/in", "https://hooks.example/in"),
        ("https://user:secret@hooks.example/in?a=1", f"https://user:{MASK}@hooks.example/in?a=1"),
        ("https://tokenonly@hooks.example/", f"https://{MASK}@hooks.example/"),
        ("https://user:p@ss@hooks.example:8443/x", f"https://user:{MASK}@hooks.example:8443/x"),
        ("https://hooks.example/path@with-at", "https://hooks.example/path@with-at"),
    ],
)
def test_mask_url_hides_the_userinfo_credential(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_origin_keeps_scheme_host_and_port_only() -> None:
    assert origin("https://u:p@mail.example:8443/a/b?c#d") == "https://mail.example:8443"


def test_shown_masks_urls_and_header_values_only() -> None:
    headers = [{"key": "Authorization", "value": "Bearer x"}, {"key": "X-Empty", "value": ""}]
    assert shown("webhooksCustomHeaders", headers) == [
        {"key": "Authorization", "value": MASK},
        {"key": "X-Empty", "value": ""},
    ]
    assert shown("proxyUrl", "socks5://u:p@proxy:1080") == f"socks5://u:{MASK}@proxy:1080"
    assert shown("openAiModel", "u:p@x") == "u:p@x"  # not a URL key
    assert shown("webhooks", None) is None


def test_a_masked_url_is_an_echo_only_of_the_same_url() -> None:
    stored = "https://u:secret@hooks.example/in"
    assert carries_mask("webhooks", f"https://u:{MASK}@hooks.example/in")
    assert is_masked_echo("webhooks", f"https://u:{MASK}@hooks.example/in", stored)
    assert not is_masked_echo("webhooks", f"https://u:{MASK}@other.example/in", stored)
    assert not is_masked_echo("webhooks", f"https://u:{MASK}@hooks.example/in", None)


def test_restore_masked_headers_matches_by_name_once() -> None:
    stored = [{"key": "Authorization", "value": "Bearer a"}, {"key": "X-Key", "value": "k"}]
    sent = [
        {"key": "x-key", "value": MASK},
        {"key": "X-New", "value": "n"},
        {"key": "authorization", "value": MASK},
    ]
    assert restore_masked_headers(sent, stored) == [
        {"key": "x-key", "value": "k"},
        {"key": "X-New", "value": "n"},
        {"key": "authorization", "value": "Bearer a"},
    ]
    twice = [{"key": "X-Key", "value": MASK}, {"key": "X-Key", "value": MASK}]
    assert restore_masked_headers(twice, stored) is None
    assert restore_masked_headers([{"key": "X-Other", "value": MASK}], stored) is None
    assert restore_masked_headers([{"key": "X-Key", "value": MASK}], None) is None


def test_key_tables() -> None:
    names = tuple(name.value for name in EventName)
    assert names == EVENT_TYPES
    queryable = set(DEFAULTS) | set(QUERY_ONLY_DEFAULTS)
    assert queryable >= SECRET_KEYS
    assert set(DEFAULTS).isdisjoint(QUERY_ONLY_DEFAULTS)
    first, second = default("webhookEvents"), default("webhookEvents")
    assert first == []
    assert first is not second
    assert default("logs") == {"all": False, "maxLogLines": 10000}
