"""Custom webhook headers refuse what could split an HTTP request (header injection)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailwire.api.models.accounts import CustomHeader


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("X-Ok\r\nX-Injected", "1"),
        ("X-Ok", "a\r\nX-Injected: 1"),
        ("X-Ok", "a\nb"),
        ("X-Ok", "a\x00b"),
        ("X Space", "1"),
        ("X:Colon", "1"),
        ("", "1"),
        ("X-Ok", "del\x7f"),
    ],
)
def test_header_injection_is_refused(key: str, value: str) -> None:
    with pytest.raises(ValidationError):
        CustomHeader(key=key, value=value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("Authorization", "Bearer abc.def"), ("X-Tab", "a\tb"), ("X-Utf8", "café ✓"), ("x", "")],
)
def test_ordinary_headers_pass(key: str, value: str) -> None:
    header = CustomHeader(key=key, value=value)
    assert (header.key, header.value) == (key, value.strip())
