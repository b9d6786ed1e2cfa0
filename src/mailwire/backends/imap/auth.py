"""SASL payloads and the decisions taken around IMAP authentication.

Pure functions, kept apart from the I/O loop so each rule has a unit test.
"""

from __future__ import annotations

import base64
import binascii

from mailwire.backends.imap.errors import ImapAuthenticationError


def plain_payload(user: str, password: str) -> bytes:
    """SASL PLAIN (RFC 4616 section 2): [authzid] NUL authcid NUL passwd, authzid empty."""
    if "\x00" in user or "\x00" in password:
        raise ImapAuthenticationError("user name and password must not contain NUL")
    return b"\x00" + user.encode("utf-8") + b"\x00" + password.encode("utf-8")


def xoauth2_payload(user: str, access_token: str) -> bytes:
    """Google's XOAUTH2: `user={user}^Aauth=Bearer {token}^A^A` (^A is 0x01)."""
    if "\x01" in user or "\x01" in access_token:
        raise ImapAuthenticationError("user name and token must not contain 0x01")
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01".encode()


def decode_challenge(text: str) -> str:
    """A server challenge in readable form: base64-decoded when it is, else as sent.

    On XOAUTH2 failure the server sends a base64 JSON document such as
    `{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`.
    """
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return text


def login_allowed(capabilities: frozenset[str]) -> bool:
    """LOGIN is refused when the server says LOGINDISABLED (RFC 3501 section 6.2.3)."""
    return "LOGINDISABLED" not in capabilities


def should_enable_rev2(capabilities: frozenset[str], *, disable_rev2: bool) -> bool:
    """Whether to send ENABLE IMAP4rev2 (RFC 9051 section 2.3, RFC 5161).

    Only when the server offers both IMAP4rev2 and ENABLE, and the account
    has not opted out (some servers advertise rev2 but implement it badly).
    """
    return not disable_rev2 and {"IMAP4REV2", "ENABLE"} <= capabilities
