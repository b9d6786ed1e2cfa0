"""Structured JSON logs that never carry a secret.

Every record becomes one JSON object on one line:
`{"time", "level", "logger", "event", ...context fields, ...call fields[, "exc"]}`.
Records from third-party libraries take the same shape, their formatted message
being the `event`.

Masking is the formatter's job, not the caller's, so an ordinary log call cannot
leak a credential. Three layers run on every line:

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

import json
import logging
import math
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

__all__ = [
    "StructLogger",
    "configure_logging",
    "get_logger",
    "log_context",
    "mask_text",
    "mask_value",
]

_MASK = "***"

_LEVELS: Mapping[str, int] = MappingProxyType(
    {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warning": logging.WARNING,
        "error": logging.ERROR,
    }
)

# Shorter configured secrets are ignored: masking every "admin" or "mail" would
# shred ordinary text while protecting nothing worth protecting.
_MIN_SECRET_LEN = 6

# Dicts nested deeper than this are rendered with str(); it also stops cycles.
_MAX_DEPTH = 8
# The formatter's cache of key verdicts: keys longer than this are not worth keeping.
_MAX_CACHED_KEY = 64
_KEY_CACHE_SIZE = 1024

_RESERVED = frozenset({"time", "level", "logger", "event", "exc", "stack"})
_FIELDS_ATTR = "_mailwire_fields"

# The task's bound fields. A ContextVar (not a global dict) so each asyncio task
# sees the fields of the context it was created in and its own changes only.
_context: ContextVar[Mapping[str, object]] = ContextVar(
    "mailwire_log_context", default=MappingProxyType({})
)

# ------------------------------------------------------------------ key names

_SECRET_WORD = re.compile(
    "password|passwd|passphrase|secret|token|authorization|cookie|credential|apikey|privatekey"
)
_SECRET_EXACT = frozenset({"pass", "auth"})
_ID_SUFFIX = re.compile(r"(?:(?:^|[_.\-])(?i:id)|(?<=[a-z0-9])(?:Id|ID))s?$")


def _is_secret_key(key: str) -> bool:
    norm = key.lower().replace("_", "").replace("-", "")
    if norm in _SECRET_EXACT or _SECRET_WORD.search(norm):
        return _ID_SUFFIX.search(key) is None
    return False


def mask_value(key: str, value: object) -> object:
    """Mask `value` by key name (rule 1 above), recursing into dicts, lists and tuples.

    Strings are returned unchanged; pattern masking is `mask_text`'s job.
    Containers nested deeper than `_MAX_DEPTH` (or cyclic) become "***" whole.
    """
    return _mask_value(key, value, 0)


def _mask_value(key: str, value: object, depth: int) -> object:
    if _is_secret_key(key):
        return _MASK
    if not isinstance(value, Mapping | list | tuple):
        return value
    if depth >= _MAX_DEPTH:
        return _MASK
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
    return text[m.start() : m.start("v")] + _MASK + text[m.end("v") : m.end()]


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
        value = _KEYED_VALUE.match(text, m.end()) if _is_secret_key(m["key"]) else None
        if value is None:
            # Innocent key: its value is scanned on, it may hold "token=..." itself.
            m = _KEYED.search(text, m.end())
            continue
        start, end, keep = _secret_value_span(m, value)
        parts += (text[done:start], keep, _MASK)
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


def _prepare_secrets(secrets: Iterable[str]) -> tuple[str, ...]:
    """Usable exact secrets with their URL-encoded forms, longest first."""
    found: set[str] = set()
    # A lone string is one secret, not an iterable of one-letter secrets.
    for secret in (secrets,) if isinstance(secrets, str) else secrets:
        if len(secret) >= _MIN_SECRET_LEN:
            found.update((secret, quote(secret, safe=""), quote_plus(secret, safe="")))
    return tuple(sorted(found, key=len, reverse=True))


def _replace_secrets(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


def _mask(text: str, secrets: tuple[str, ...]) -> str:
    text = _replace_secrets(text, secrets)
    # Every pattern needs a space, a tab, ":" or "=", and most log strings
    # (ids, names, folder names) have none.
    if " " in text or ":" in text or "=" in text or "\t" in text:
        return _mask_patterns(text)
    return text


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask credentials found by pattern (rule 2) and the exact `secrets` (rule 3) in `text`."""
    return _mask(text, _prepare_secrets(secrets))


# ------------------------------------------------------------------ formatting


def _rfc3339(created: float) -> str:
    secs = int(created)
    millis = int((created - secs) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


class _JsonFormatter(logging.Formatter):
    """Renders a record as one masked JSON line.

    Holds the configured secrets and two small caches (the current second's
    timestamp text and per-key masking verdicts), because keys and seconds
    repeat on nearly every line and this runs on every line.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = _prepare_secrets(secrets)
        # ensure_ascii keeps a line one line: U+2028 and friends split lines for some readers.
        self._encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        self._second: tuple[int, str] = (-1, "")
        self._keys: dict[str, tuple[str, bool]] = {}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": _mask(record.getMessage(), self._secrets),
        }
        self._put_fields(line, _context.get(), 0)
        fields = getattr(record, _FIELDS_ATTR, None)
        if fields:
            self._put_fields(line, fields, 0)
        if record.exc_info and record.exc_info[0] is not None:
            line["exc"] = _mask(self.formatException(record.exc_info), self._secrets)
        if record.stack_info:
            line["stack"] = _mask(self.formatStack(record.stack_info), self._secrets)
        return self._encoder.encode(line)

    def _timestamp(self, created: float) -> str:
        secs = int(created)
        second = self._second
        if second[0] != secs:
            second = (secs, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)))
            self._second = second
        return f"{second[1]}.{int((created - secs) * 1000):03d}Z"

    def _put_fields(self, out: dict[str, object], fields: Mapping[Any, object], depth: int) -> None:
        for key, value in fields.items():
            name, secret = self._keys.get(key) or self._key(str(key))
            if depth == 0 and name in _RESERVED:
                name += "_"  # a field may not overwrite the line's own keys
            if secret:
                out[name] = _MASK
            elif type(value) is str:  # the common case, first
                out[name] = _mask(value, self._secrets)
            else:
                out[name] = self._jsonable(value, depth)

    def _key(self, key: str) -> tuple[str, bool]:
        """The key as written (masked like any text) and whether its value is secret."""
        verdict = self._keys.get(key)
        if verdict is None:
            # An identifier can hold no pattern (each needs a space or punctuation).
            text = _replace_secrets(key, self._secrets) if key.isidentifier() else self._mask(key)
            verdict = (text, _is_secret_key(key))
            # Only short, unmasked keys are kept: the cache must never hold a secret.
            if text == key and len(key) <= _MAX_CACHED_KEY:
                if len(self._keys) >= _KEY_CACHE_SIZE:
                    self._keys.clear()
                self._keys[key] = verdict
        return verdict

    def _mask(self, text: str) -> str:
        return _mask(text, self._secrets)

    def _jsonable(self, value: object, depth: int) -> object:
        if isinstance(value, str):
            return _mask(value, self._secrets)
        # bool and int subclasses encode as themselves; JSON has no NaN or Infinity.
        if (
            value is None
            or isinstance(value, int)
            or (isinstance(value, float) and math.isfinite(value))
        ):
            return value
        if isinstance(value, Mapping) and depth < _MAX_DEPTH:
            out: dict[str, object] = {}
            self._put_fields(out, value, depth + 1)
            return out
        if isinstance(value, list | tuple | set | frozenset) and depth < _MAX_DEPTH:
            return [self._jsonable(v, depth + 1) for v in value]
        return _mask(str(value), self._secrets)


class _JsonLineHandler(logging.StreamHandler[TextIO]):
    """The one handler `configure_logging` installs; its class marks it for replacement."""

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's default prints the record's raw message and arguments to
        # stderr, unmasked. Report the failure as a line of our own instead.
        error = sys.exc_info()[0]
        line = {
            "time": _rfc3339(record.created),
            "level": "error",
            "logger": __name__,
            "event": "log record could not be formatted",
            "source_logger": record.name,
            "error": error.__name__ if error else "unknown",
        }
        if isinstance(record.msg, str):
            line["template"] = mask_text(record.msg)
        with suppress(OSError, ValueError):  # a closed or broken stream: nowhere left to say it
            self.stream.write(json.dumps(line, separators=(",", ":")) + self.terminator)
            self.flush()


# ------------------------------------------------------------------ public API


def _parse_level(level: str) -> int:
    try:
        return _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}"
        ) from None


def configure_logging(
    level: str = "info", *, stream: TextIO | None = None, secrets: Iterable[str] = ()
) -> None:
    """Send every record to `stream` (default stderr) as masked JSON lines.

    Replaces the handler a previous call installed, so calling twice never
    duplicates lines. Handlers installed by others are left alone. Uvicorn
    must be started with `log_config=None`, or it reinstalls its own handlers.
    """
    numeric = _parse_level(level)
    handler = _JsonLineHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(_JsonFormatter(secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _JsonLineHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error"):
        server_log = logging.getLogger(name)
        server_log.handlers.clear()
        server_log.propagate = True
        server_log.setLevel(logging.NOTSET)
    # Mailwire logs each request itself, with the query string masked; uvicorn's
    # access line would print the raw URL (OAuth callbacks carry codes there).
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.setLevel(logging.CRITICAL + 1)
    access.disabled = True


class StructLogger:
    """A `logging.Logger` taking an event name and keyword fields instead of %-args."""

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    @property
    def name(self) -> str:
        return self._logger.name

    def enabled(self, level: str) -> bool:
        return self._logger.isEnabledFor(_parse_level(level))

    def debug(self, event: str, /, **fields: object) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, /, **fields: object) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, /, **fields: object) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, /, **fields: object) -> None:
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, /, **fields: object) -> None:
        """Log at error level with the current exception's traceback (masked) as `exc`."""
        self._log(logging.ERROR, event, fields, exc_info=True)

    def _log(
        self, level: int, event: str, fields: dict[str, object], *, exc_info: bool = False
    ) -> None:
        if self._logger.isEnabledFor(level):
            # Fields travel in one namespaced attribute so they can never
            # collide with LogRecord's own attributes. stacklevel=3 points
            # the record's funcName/lineno at the caller, not at this wrapper.
            self._logger.log(
                level, event, exc_info=exc_info, extra={_FIELDS_ATTR: fields}, stacklevel=3
            )


def get_logger(name: str) -> StructLogger:
    return StructLogger(logging.getLogger(name))


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Bind `fields` to every line logged in this task until the block ends.

    Nested blocks merge (inner values win); leaving restores the outer fields.
    Tasks started inside the block inherit a copy, and their own bindings stay theirs.
    """
    token = _context.set(MappingProxyType({**_context.get(), **fields}))
    try:
        yield
    finally:
        _context.reset(token)
