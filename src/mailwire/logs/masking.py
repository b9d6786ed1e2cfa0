"""Masking rules: what counts as a secret in a log line, and how it is hidden.

Three layers, applied by the log formatter (`mailwire.logs.output`) to every line:

1. Key names (`mask_value`). After lower-casing and dropping `-` and `_`, a key
   is secret if it contains password, passwd, passphrase, secret, token,
   authorization, cookie, credential, apikey or privatekey, or is exactly
   `pass` or `auth`. Its value becomes "***", at any depth of dicts and lists.
   Exception: identifiers. A key whose last word is `id`/`ids` (`token_id`,
   `tokenId`, `TOKEN_IDS`) is kept, because token ids are public SHA-256 hashes
   used for auditing. The `id` must be its own word (after `_`, `-`, `.` or a
   camelCase hump): `tokenid` and `token_valid` stay masked, erring towards
   hiding.
2. Patterns inside every string (`mask_text`): `Bearer x`/`Basic x`; `key=x`
   and `key: x` where `key` is secret by rule 1 (query strings, form bodies,
   logfmt, headers, JSON and Python-repr fragments, quoted or bare);
   `scheme://user:pass@host`; SASL initial responses (`AUTH PLAIN x`,
   `AUTHENTICATE XOAUTH2 x`, ...); IMAP `tag LOGIN user pass`.
3. Exact values given to `configure_logging(secrets=...)` (the service secret),
   with their URL-encoded forms, wherever they appear.

What pattern masking cannot see: a secret logged bare under an innocent key
(`log.info("x", note=pw)`), and SASL continuation lines (the base64 answers
to `334`/`+` prompts), which only the protocol layer can recognise by state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

MASK = "***"


# Shorter configured secrets are ignored: masking every "admin" or "mail" would
# shred ordinary text while protecting nothing worth protecting.
_MIN_SECRET_LEN = 6

# Dicts nested deeper than this are rendered with str(); it also stops cycles.
MAX_DEPTH = 8

# ------------------------------------------------------------------ key names

_SECRET_WORD = re.compile(
    "password|passwd|passphrase|secret|token|authorization|cookie|credential|apikey|privatekey"
)
_SECRET_EXACT = frozenset({"pass", "auth"})
_ID_SUFFIX = re.compile(r"(?:(?:^|[_.\-])(?i:id)|(?<=[a-z0-9])(?:Id|ID))s?$")


def is_secret_key(key: str) -> bool:
    norm = key.lower().replace("_", "").replace("-", "")
    if norm in _SECRET_EXACT or _SECRET_WORD.search(norm):
        return _ID_SUFFIX.search(key) is None
    return False


def mask_value(key: str, value: object) -> object:
    """Mask `value` by key name (rule 1 above), recursing into dicts, lists and tuples.

    Strings are returned unchanged; pattern masking is `mask_text`'s job.
    Containers nested deeper than `MAX_DEPTH` (or cyclic) become "***" whole.
    """
    return _mask_value(key, value, 0)


def _mask_value(key: str, value: object, depth: int) -> object:
    if is_secret_key(key):
        return MASK
    if not isinstance(value, Mapping | list | tuple):
        return value
    if depth >= MAX_DEPTH:
        return MASK
    if isinstance(value, Mapping):
        return {k: _mask_value(str(k), v, depth + 1) for k, v in value.items()}
    masked = [_mask_value(key, v, depth + 1) for v in value]
    return masked if isinstance(value, list) else tuple(masked)


# ------------------------------------------------------------------ patterns
#
# Theory of operation. Each construct has its own regex, run only when a cheap
# substring test says it could match: most log strings hold none, and Python's
# regex engine is slow on long case-insensitive alternations. Passes run in a
# fixed order, key=value first (the broadest). A pass only ever replaces a value
# with "***", which holds no space, quote or separator, so later passes still
# see the structure they need: passes can over-mask, never un-mask. Every
# repeat is bounded and most are possessive, so no input backtracks badly.

# Bounds on one match. Possessive repeats over simple classes cannot backtrack,
# so the bounds are generous: a value longer than _MAX_VALUE is masked only for
# its first _MAX_VALUE characters. A URL password backtracks to its last "@",
# hence its smaller bound.
_MAX_VALUE = 1 << 20
_MAX_URL_PASSWORD = 4096
# A quoted string with escapes. The closing quote is optional so that a
# truncated body ('{"access_token": "ya29...') is still masked to its end.
_QUOTED = rf"\"(?:[^\"\\\r\n]|\\.){{0,{_MAX_VALUE}}}+\"?|'(?:[^'\\\r\n]|\\.){{0,{_MAX_VALUE}}}+'?"
_LITERAL = r"\{[0-9]{1,10}\+?\}"  # RFC 9051 section 4.3: {n} or non-synchronising {n+}

# key=value and key: value; the key may be quoted (JSON, Python repr, or JSON
# escaped inside a JSON string). The value is matched apart, for secret keys only.
_KEYED = re.compile(
    r"(?<![A-Za-z0-9_.\-])(?P<q>\\?[\"']?)(?P<key>[A-Za-z][A-Za-z0-9_.\-]{0,63}+)(?P=q)"
    r"[ \t]{0,8}+(?P<sep>[:=])[ \t]{0,8}+"
)
# Bare values stop at "&", whitespace or a quote (query strings, form bodies, logfmt).
_KEYED_VALUE = re.compile(
    rf"{_QUOTED}|\\\"(?:[^\"\\\r\n]|\\[^\"\r\n]){{0,{_MAX_VALUE}}}+(?:\\\")?"
    rf"|[^\s&\"']{{1,{_MAX_VALUE}}}+"
)
# Every secret key name holds one of these (apikey and privatekey via "key").
_KEY_STEMS = ("pass", "secret", "token", "auth", "cookie", "credential", "key")
# Header values ("Bearer x", "a=b; c=d") hold spaces, so they run to the end of the line.
_HEADER_WORD = re.compile("authorization|cookie")
# Registered HTTP authentication schemes, kept in "Authorization: Bearer ***".
# Only these: an unknown first word may be the credential itself.
_AUTH_SCHEME = re.compile(
    r"(?i:bearer|basic|digest|token|negotiate|ntlm|dpop|hoba|mutual|vapid|hawk"
    r"|aws4-hmac-sha256|scram-sha-(?:1|256))[ \t]{1,8}(?=\S)"
)
_END_OF_LINE = re.compile(r"[\r\n]|$")

# In the passes below, group "v" is what becomes "***".
# scheme://user:pass@host: user may hold an unencoded "@", pass runs to the last "@".
_URL = re.compile(rf"://[^\s/?#:]{{0,256}}+:(?P<v>[^\s/?#]{{1,{_MAX_URL_PASSWORD}}})(?=@)")
# RFC 6750 and RFC 7617 credentials.
_SCHEME = re.compile(rf"\b(?i:bearer|basic)[ \t]{{1,8}}+(?P<v>[^\s\"'\\]{{1,{_MAX_VALUE}}}+)")
# SMTP AUTH (RFC 4954) and IMAP AUTHENTICATE (RFC 9051 section 6.2.2) initial
# responses. Other mechanisms must be upper case (RFC 4422 section 3.1), so that
# prose such as "auth failed for bob" is left alone.
_SASL = re.compile(
    r"\b(?i:auth(?:enticate)?)[ \t]{1,8}+"
    r"(?:(?i:plain|login|xoauth2?|oauthbearer|cram-md5|digest-md5|ntlm|gssapi|external"
    r"|scram-sha-[0-9]{1,3}(?:-plus)?)|[A-Z][A-Z0-9_\-]{0,19}+)[ \t]{1,8}+"
    rf"(?P<v>[^\s\"'\\]{{1,{_MAX_VALUE}}}+)"
)
# IMAP LOGIN (RFC 9051 section 6.2.3): tag LOGIN userid password, each of the
# last two an atom, a quoted string or a literal (whose data follows the CRLF).
_LOGIN = re.compile(
    r"(?<![^\s(){%*\"\\\]])[^\s(){%*\"\\\]+]{1,64}+[ \t]{1,8}+(?i:login)[ \t]{1,8}+"
    r"(?:\"(?:[^\"\\\r\n]|\\.){0,1024}+\"|"
    rf"{_LITERAL}(?:\r?\n\S{{0,1024}}+)?|[^\s\"{{]{{1,1024}}+)[ \t]{{1,8}}+"
    rf"(?P<v>{_QUOTED}|{_LITERAL}(?:\r?\n[^\r\n]{{0,{_MAX_VALUE}}}+)?|\S{{1,{_MAX_VALUE}}}+)"
)


def _mask_group_v(m: re.Match[str]) -> str:
    text = m.string
    return text[m.start() : m.start("v")] + MASK + text[m.end("v") : m.end()]


def _secret_value_span(m: re.Match[str], value: re.Match[str]) -> tuple[int, int, str]:
    """Where "***" goes for a secret key's value, and the prefix kept in front of it."""
    text, key = m.string, m["key"].lower()
    start, end = value.span()
    raw = value[0]
    opening = raw[:2] if raw.startswith('\\"') else raw[0] if raw[0] in "\"'" else ""
    if opening:
        start += len(opening)
        if len(raw) >= 2 * len(opening) and raw.endswith(opening):
            end -= len(opening)
    elif m["sep"] == ":" and _HEADER_WORD.search(key):
        eol = _END_OF_LINE.search(text, end)
        end = eol.start() if eol else len(text)
    # The scheme is no secret, and "Bearer ***" tells a reader which credential it was.
    scheme = _AUTH_SCHEME.match(text, start, end) if "authorization" in key else None
    return start, end, scheme[0] if scheme else ""


def _mask_keyed(text: str) -> str:
    parts: list[str] = []
    done = 0  # text[:done] is in parts already
    m = _KEYED.search(text)
    while m is not None:
        value = _KEYED_VALUE.match(text, m.end()) if is_secret_key(m["key"]) else None
        if value is None:
            # Innocent key: its value is scanned on, it may hold "token=..." itself.
            m = _KEYED.search(text, m.end())
            continue
        start, end, keep = _secret_value_span(m, value)
        parts += (text[done:start], keep, MASK)
        done = end
        m = _KEYED.search(text, max(end, value.end()))
    parts.append(text[done:])
    return "".join(parts)


def _mask_patterns(text: str) -> str:
    low = text.lower()
    if ("=" in text or ":" in text) and any(stem in low for stem in _KEY_STEMS):
        text = _mask_keyed(text)
    if "://" in text:
        text = _URL.sub(_mask_group_v, text)
    if "bearer" in low or "basic" in low:
        text = _SCHEME.sub(_mask_group_v, text)
    if "auth" in low:
        text = _SASL.sub(_mask_group_v, text)
    if "login" in low:
        text = _LOGIN.sub(_mask_group_v, text)
    return text


def prepare_secrets(secrets: Iterable[str]) -> tuple[str, ...]:
    """Usable exact secrets with their URL-encoded forms, longest first."""
    found: set[str] = set()
    # A lone string is one secret, not an iterable of one-letter secrets.
    for secret in (secrets,) if isinstance(secrets, str) else secrets:
        if len(secret) >= _MIN_SECRET_LEN:
            found.update((secret, quote(secret, safe=""), quote_plus(secret, safe="")))
    return tuple(sorted(found, key=len, reverse=True))


def replace_secrets(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_all(text: str, secrets: tuple[str, ...]) -> str:
    text = replace_secrets(text, secrets)
    # Every pattern needs a space, a tab, ":" or "=", and most log strings
    # (ids, names, folder names) have none.
    if " " in text or ":" in text or "=" in text or "\t" in text:
        return _mask_patterns(text)
    return text


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask credentials found by pattern (rule 2) and the exact `secrets` (rule 3) in `text`."""
    return mask_all(text, prepare_secrets(secrets))
