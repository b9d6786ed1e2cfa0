"""JSON-lines output: the formatter, the handler, and the logging API used everywhere.

Every record becomes one JSON object on one line:
`{"time", "level", "logger", "event", ...context fields, ...call fields[, "exc"]}`.
Records from third-party libraries take the same shape, their formatted message
being the `event`. Masking (`mailwire.logs.masking`) is the formatter's job, not
the caller's, so an ordinary log call cannot leak a credential.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TextIO

from mailwire.logs.masking import (
    MASK,
    MAX_DEPTH,
    is_secret_key,
    mask_all,
    mask_text,
    prepare_secrets,
    replace_secrets,
)

_LEVELS: Mapping[str, int] = MappingProxyType(
    {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warning": logging.WARNING,
        "error": logging.ERROR,
    }
)

# The formatter's cache of key verdicts: keys longer than this are not worth keeping.
_MAX_CACHED_KEY = 64
_KEY_CACHE_SIZE = 1024

#: Libraries whose info lines (Alembic's "Context impl SQLiteImpl" on every start)
#: are noise outside debugging.
_URL_LOGGING_LIBRARIES = ("httpx", "httpcore")
_CHATTY_LIBRARIES = ("alembic", "aiosqlite", "asyncio")

_RESERVED = frozenset({"time", "level", "logger", "event", "exc", "stack"})
_FIELDS_ATTR = "_mailwire_fields"

# The task's bound fields. A ContextVar (not a global dict) so each asyncio task
# sees the fields of the context it was created in and its own changes only.
_context: ContextVar[Mapping[str, object]] = ContextVar(
    "mailwire_log_context", default=MappingProxyType({})
)


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
        self._secrets = prepare_secrets(secrets)
        # ensure_ascii keeps a line one line: U+2028 and friends split lines for some readers.
        self._encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        self._second: tuple[int, str] = (-1, "")
        self._keys: dict[str, tuple[str, bool]] = {}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": mask_all(record.getMessage(), self._secrets),
        }
        self._put_fields(line, _context.get(), 0)
        fields = getattr(record, _FIELDS_ATTR, None)
        if fields:
            self._put_fields(line, fields, 0)
        if record.exc_info and record.exc_info[0] is not None:
            line["exc"] = mask_all(self.formatException(record.exc_info), self._secrets)
        if record.stack_info:
            line["stack"] = mask_all(self.formatStack(record.stack_info), self._secrets)
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
                out[name] = MASK
            elif type(value) is str:  # the common case, first
                out[name] = mask_all(value, self._secrets)
            else:
                out[name] = self._jsonable(value, depth)

    def _key(self, key: str) -> tuple[str, bool]:
        """The key as written (masked like any text) and whether its value is secret."""
        verdict = self._keys.get(key)
        if verdict is None:
            # An identifier can hold no pattern (each needs a space or punctuation).
            text = replace_secrets(key, self._secrets) if key.isidentifier() else self._mask(key)
            verdict = (text, is_secret_key(key))
            # Only short, unmasked keys are kept: the cache must never hold a secret.
            if text == key and len(key) <= _MAX_CACHED_KEY:
                if len(self._keys) >= _KEY_CACHE_SIZE:
                    self._keys.clear()
                self._keys[key] = verdict
        return verdict

    def _mask(self, text: str) -> str:
        return mask_all(text, self._secrets)

    def _jsonable(self, value: object, depth: int) -> object:
        if isinstance(value, str):
            return mask_all(value, self._secrets)
        # bool and int subclasses encode as themselves; JSON has no NaN or Infinity.
        if (
            value is None
            or isinstance(value, int)
            or (isinstance(value, float) and math.isfinite(value))
        ):
            return value
        if isinstance(value, Mapping) and depth < MAX_DEPTH:
            out: dict[str, object] = {}
            self._put_fields(out, value, depth + 1)
            return out
        if isinstance(value, list | tuple | set | frozenset) and depth < MAX_DEPTH:
            return [self._jsonable(v, depth + 1) for v in value]
        return mask_all(str(value), self._secrets)


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
    # Chatty libraries speak at info on every start; keep them to warnings unless debugging.
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(
            logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING
        )
    # HTTP clients log each request's full URL (webhook and OAuth URLs may carry
    # tokens in their query) at info and debug: warnings only, at every level.
    for name in _URL_LOGGING_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


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
