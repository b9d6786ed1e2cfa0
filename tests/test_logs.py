"""Tests for `mailwire.logs`: JSON line shape, context binding, and masking.

Every masking test plants a secret, logs it, and then greps the whole captured
output (raw text and every decoded JSON string) for it, while checking that the
text around it survives.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import string
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mailwire.logs import (
    StructLogger,
    configure_logging,
    get_logger,
    log_context,
    mask_text,
    mask_value,
)

SERVICE_SECRET = "mw-service-secret-4f9a2c71"
ODD_SECRET = "s3cr3t/with+odd&chars"
PASSWORD = "hunter2-Correct-Horse"
TOKEN = "ya29.a0AfH6SMBx-token-value_1234"
_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@contextmanager
def _restored_logging() -> Iterator[None]:
    """Put back what configure_logging changes, whatever a test did."""
    saved = [
        (lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled)
        for lg in map(logging.getLogger, _LOGGERS)
    ]
    try:
        yield
    finally:
        # Reconfiguring replaces every handler configure_logging installed with
        # one whose stream we know; removing that one leaves none behind.
        sentinel = io.StringIO()
        configure_logging(stream=sentinel)
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "stream", None) is sentinel]:
            root.removeHandler(handler)
            handler.close()
        for lg, handlers, level, propagate, disabled in saved:
            if lg is not root:  # pytest attaches and detaches its own root handlers
                lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
            lg.disabled = disabled


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    with _restored_logging():
        out = io.StringIO()
        configure_logging("debug", stream=out, secrets=[SERVICE_SECRET])
        yield out


def lines(out: io.StringIO, logger: str | None = None) -> list[dict[str, object]]:
    """The captured lines, each parsed (and so checked to be JSON), optionally of one logger."""
    text = out.getvalue()
    assert text.endswith("\n") or not text
    parsed = [json.loads(line) for line in text.split("\n")[:-1]]
    return [line for line in parsed if logger is None or line["logger"] == logger]


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def assert_hidden(secret: str, out: io.StringIO) -> None:
    """The secret appears nowhere: not in the raw lines, not in any decoded string."""
    text = out.getvalue()
    assert text, "nothing was logged"
    assert secret not in text
    for line in lines(out):
        for value in _strings(line):
            assert secret not in value


# ------------------------------------------------------------------ shape


def test_line_is_one_json_object_with_stable_keys(stream: io.StringIO) -> None:
    before = datetime.now(UTC)
    with log_context(request_id="req_1", account="acct_1"):
        get_logger("mailwire.api").info("message fetched", uid=42, folder="INBOX")
    (line,) = lines(stream)
    assert list(line) == [
        "time",
        "level",
        "logger",
        "event",
        "request_id",
        "account",
        "uid",
        "folder",
    ]
    assert line["level"] == "info"
    assert line["logger"] == "mailwire.api"
    assert line["event"] == "message fetched"
    assert line["uid"] == 42
    assert isinstance(line["time"], str)
    assert _TIME.match(line["time"])
    logged = datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((logged - before).total_seconds()) < 5


def test_levels_and_enabled(stream: io.StringIO) -> None:
    configure_logging("INFO", stream=stream)
    log = get_logger("mailwire.x")
    log.debug("hidden")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [(ln["level"], ln["event"]) for ln in lines(stream)] == [
        ("info", "i"),
        ("warning", "w"),
        ("error", "e"),
    ]
    assert isinstance(log, StructLogger)
    assert log.name == "mailwire.x"
    assert not log.enabled("debug")
    assert log.enabled("Warning")


@pytest.mark.parametrize("level", ["verbose", "warn", "critical", "", "10"])
def test_invalid_level_is_rejected(stream: io.StringIO, level: str) -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(level, stream=stream)
    with pytest.raises(ValueError, match="unknown log level"):
        get_logger("x").enabled(level)


def test_configure_is_idempotent(stream: io.StringIO) -> None:
    second = io.StringIO()
    configure_logging("info", stream=second)
    configure_logging("info", stream=second)
    get_logger("x").info("once")
    assert stream.getvalue() == ""
    assert [ln["event"] for ln in lines(second)] == ["once"]
    ours = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is second]
    assert len(ours) == 1


def test_event_with_percent_and_newline_stays_one_line(stream: io.StringIO) -> None:
    get_logger("x").info("100% done\nsecond line\u2028third")
    (line,) = lines(stream)
    assert line["event"] == "100% done\nsecond line\u2028third"
    assert stream.getvalue().count("\n") == 1


def test_field_cannot_overwrite_line_keys(stream: io.StringIO) -> None:
    get_logger("x").info("real", level="fake", event="fake", time="fake")
    (line,) = lines(stream)
    assert (line["level"], line["event"]) == ("info", "real")
    assert (line["level_"], line["event_"], line["time_"]) == ("fake", "fake", "fake")


def test_values_that_are_not_json_become_masked_strings(stream: io.StringIO) -> None:
    class Opaque:
        def __str__(self) -> str:
            return f"Opaque(password={PASSWORD})"

    cycle: dict[str, object] = {}
    cycle["self"] = cycle
    get_logger("x").info(
        "values",
        obj=Opaque(),
        raw=b"\x00bytes",
        when=datetime(2024, 1, 2, tzinfo=UTC),
        ratio=float("nan"),
        tags=("a", 1),
        nothing=None,
        ok=True,
        cycle=cycle,
    )
    (line,) = lines(stream)
    assert line["obj"] == "Opaque(password=***"  # a bare value runs to whitespace
    assert line["raw"] == "b'\\x00bytes'"
    assert line["when"] == "2024-01-02 00:00:00+00:00"
    assert line["ratio"] == "nan"
    assert line["tags"] == ["a", 1]
    assert line["nothing"] is None
    assert line["ok"] is True
    assert "self" in json.dumps(line["cycle"])
    assert_hidden(PASSWORD, stream)


# ------------------------------------------------------------------ context


def test_nested_contexts_merge_and_restore(stream: io.StringIO) -> None:
    log = get_logger("x")
    with log_context(request_id="r1", account="a1"):
        log.info("outer")
        with log_context(connection="c1", account="a2"):
            log.info("inner", uid=7)
        log.info("outer again")
    log.info("outside")
    outer, inner, again, outside = lines(stream)
    assert (outer["request_id"], outer["account"]) == ("r1", "a1")
    assert list(inner)[4:] == ["request_id", "account", "connection", "uid"]
    assert (inner["account"], inner["connection"]) == ("a2", "c1")
    assert again["account"] == "a1"
    assert "connection" not in again
    assert list(outside) == ["time", "level", "logger", "event"]


async def test_context_is_per_task(stream: io.StringIO) -> None:
    log = get_logger("x")
    both_inside = asyncio.Barrier(2)

    async def worker(account: str) -> None:
        with log_context(account=account):
            await both_inside.wait()  # both tasks hold a binding from here on
            log.info("tick", worker=account)
            await asyncio.sleep(0)
            log.info("tock", worker=account)

    await asyncio.gather(worker("a1"), worker("a2"))
    got = lines(stream, "x")  # the event loop logs its selector at debug level
    assert len(got) == 4
    assert all(line["account"] == line["worker"] for line in got)


async def test_tasks_inherit_a_copy_of_the_context(stream: io.StringIO) -> None:
    log = get_logger("x")
    started, proceed = asyncio.Event(), asyncio.Event()

    async def child() -> None:
        with log_context(step="child"):
            log.info("in child")

    async def earlier() -> None:
        started.set()
        await proceed.wait()
        log.info("earlier task")

    early = asyncio.create_task(earlier())
    await started.wait()
    with log_context(request_id="r1"):
        await asyncio.create_task(child())
        log.info("after child")
        proceed.set()
        await early
    in_child, after, early_line = lines(stream, "x")
    assert (in_child["request_id"], in_child["step"]) == ("r1", "child")
    assert after["request_id"] == "r1"
    assert "step" not in after  # the child's binding stayed in the child
    assert "request_id" not in early_line  # bound after that task copied its context


# ------------------------------------------------------------------ masking by key


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "passwd",
        "pass",
        "pass_word",
        "secret",
        "client_secret",
        "access_token",
        "refreshToken",
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "set-cookie",
        "credentials",
        "api_key",
        "X-Api-Key",
        "private_key",
        "auth",
        "AUTH",
        "tokenid",  # no word boundary before "id": masked, erring towards hiding
    ],
)
def test_secret_keys_are_masked_at_any_depth(stream: io.StringIO, key: str) -> None:
    get_logger("x").info(
        "keys",
        **{key: PASSWORD},
        nested={"level1": {key: PASSWORD}, "items": [{key: PASSWORD}, "plain"]},
    )
    (line,) = lines(stream)
    assert line[key] == "***"
    assert line["nested"] == {
        "level1": {key: "***"},
        "items": [{key: "***"}, "plain"],
    }
    assert_hidden(PASSWORD, stream)


@pytest.mark.parametrize(
    "key", ["token_id", "tokenId", "TOKEN_ID", "token-id", "tokenIds", "author", "passage", "user"]
)
def test_identifiers_and_innocent_keys_are_kept(stream: io.StringIO, key: str) -> None:
    token_id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    get_logger("x").info("keys", **{key: token_id})
    (line,) = lines(stream)
    assert line[key] == token_id


def test_mask_value_is_recursive_and_keeps_types() -> None:
    value = {
        "user": "bob",
        "password": PASSWORD,
        "token_id": "abc",
        "list": [{"secret": 1}, ("x", {"apiKey": "k"})],
    }
    assert mask_value("payload", value) == {
        "user": "bob",
        "password": "***",
        "token_id": "abc",
        "list": [{"secret": "***"}, ("x", {"apiKey": "***"})],
    }
    assert mask_value("password", {"a": 1}) == "***"
    assert mask_value("note", "password=x") == "password=x"  # patterns are mask_text's job


def test_mask_value_survives_cycles() -> None:
    cycle: dict[str, object] = {"password": PASSWORD}
    cycle["self"] = cycle
    masked = mask_value("payload", cycle)
    assert isinstance(masked, dict)
    assert masked["password"] == "***"
    assert PASSWORD not in repr(masked)


# ------------------------------------------------------------------ masking by pattern

PATTERNS = [
    # (text with the secret, the secret, text that must survive)
    (f"Authorization: Bearer {TOKEN}", TOKEN, "Authorization: Bearer ***"),
    (f"sent bearer {TOKEN} upstream", TOKEN, "sent bearer *** upstream"),
    (
        "Authorization: Basic Ym9iOmh1bnRlcjItQ29ycmVjdA==",
        "Ym9iOmh1bnRlcjItQ29ycmVjdA",
        "Basic ***",
    ),
    (f"headers={{'Authorization': 'Bearer {TOKEN}', 'Host': 'x'}}", TOKEN, "'Host': 'x'"),
    (f"Cookie: session={TOKEN}; theme=dark", TOKEN, "Cookie: ***"),
    (f"Authorization: {TOKEN} (raw key, no scheme)", TOKEN, "Authorization: ***"),
    (f"GET /cb?state=s1&access_token={TOKEN}&x=1", TOKEN, "state=s1&access_token=***&x=1"),
    (f"refresh_token={TOKEN} next", TOKEN, "refresh_token=*** next"),
    (f"grant_type=password&password={PASSWORD}&scope=mail", PASSWORD, "&password=***&scope"),
    (f"client_secret={PASSWORD}'", PASSWORD, "client_secret=***'"),
    (f"token={TOKEN}", TOKEN, "token=***"),
    (f"secret = {PASSWORD}", PASSWORD, "secret = ***"),
    (f'body {{"password": "{PASSWORD}", "user": "bob"}}', PASSWORD, '"user": "bob"'),
    (f'{{"access_token":"{TOKEN}","expires_in":3599}}', TOKEN, '"expires_in":3599'),
    (f'body={{"refresh_token": "{TOKEN}', TOKEN, '{"refresh_token": "***'),  # truncated
    (f'{{\\"apiKey\\": \\"{TOKEN}\\"}}', TOKEN, '\\"apiKey\\": \\"***\\"'),
    (f"{{'passwd': '{PASSWORD}'}}", PASSWORD, "{'passwd': '***'}"),
    (f"dsn postgresql+asyncpg://mw:{PASSWORD}@db:5432/mw", PASSWORD, "mw:***@db:5432/mw"),
    (f"imaps://bob@example.com:{PASSWORD}@imap.example.com", PASSWORD, "bob@example.com:***@"),
    ("C: AUTH PLAIN AGJvYgBodW50ZXIyLUNvcnJlY3Q=", "AGJvYgBodW50ZXIyLUNvcnJlY3Q", "AUTH PLAIN ***"),
    ("C: auth login Ym9iQGV4YW1wbGUuY29t", "Ym9iQGV4YW1wbGUuY29t", "auth login ***"),
    ("a1 AUTHENTICATE XOAUTH2 dXNlcj1ib2IBYXV0aD1CZWFyZXIgeWEyOQEB", "dXNlcj1ib2IB", "XOAUTH2 ***"),
    (f"a2 LOGIN bob {PASSWORD}", PASSWORD, "a2 LOGIN bob ***"),
    (f'3 login "bob@example.com" "{PASSWORD}"', PASSWORD, '3 login "bob@example.com" ***'),
    (f"a4 LOGIN bob {{21}}\r\n{PASSWORD}", PASSWORD, "a4 LOGIN bob ***"),
    (f"b'a5 LOGIN bob {PASSWORD}\\r\\n'", PASSWORD, "a5 LOGIN bob ***"),
]


@pytest.mark.parametrize(("text", "secret", "kept"), PATTERNS)
def test_patterns_are_masked_in_events_and_fields(
    stream: io.StringIO, text: str, secret: str, kept: str
) -> None:
    masked = mask_text(text)
    assert secret not in masked
    assert kept in masked
    get_logger("x").info(text, note=text, items=[text])
    (line,) = lines(stream)
    assert line["event"] == line["note"] == masked
    assert line["items"] == [masked]
    assert_hidden(secret, stream)


@pytest.mark.parametrize(
    "text",
    [
        "status_code=200 url=https://example.com/x?y=1 note: fine",
        "token_id=9f86d081 fetched 12 messages in 0.4s",
        "https://host:443/x?u=a@b",
        "auth failed for bob@example.com: bad credentials",
        "a1 OK LOGIN completed",
        "author=ann, passage: 3",
    ],
)
def test_ordinary_text_is_preserved(text: str) -> None:
    assert mask_text(text) == text


def test_exact_secrets_are_masked_anywhere(stream: io.StringIO) -> None:
    configure_logging("debug", stream=stream, secrets=[SERVICE_SECRET, ODD_SECRET, "admin"])
    try:
        raise RuntimeError(f"cannot decrypt with {SERVICE_SECRET}")
    except RuntimeError:
        get_logger("x").exception(
            f"event {SERVICE_SECRET}",
            note=f"x{SERVICE_SECRET}y",
            deep={"a": [SERVICE_SECRET], SERVICE_SECRET: 1},
            encoded=f"q={quote(ODD_SECRET, safe='')} r={quote_plus(ODD_SECRET)}",
            role="admin",
        )
    for hidden in (SERVICE_SECRET, ODD_SECRET, quote(ODD_SECRET, safe=""), quote_plus(ODD_SECRET)):
        assert_hidden(hidden, stream)
    (line,) = lines(stream)
    assert line["note"] == "x***y"
    assert line["encoded"] == "q=*** r=***"
    assert line["role"] == "admin"  # shorter than 6 characters: not treated as a secret
    assert mask_text(f"a {PASSWORD} b", [PASSWORD]) == "a *** b"
    assert mask_text(f"a {PASSWORD} b", PASSWORD) == "a *** b"  # one string is one secret


def test_exception_traceback_is_masked(stream: io.StringIO) -> None:
    log = get_logger("mailwire.imap")
    try:
        try:
            raise OSError(f"refused imaps://bob:{PASSWORD}@imap.example.com")
        except OSError as err:
            raise ConnectionError(f"a1 LOGIN bob {PASSWORD} failed") from err
    except ConnectionError:
        log.exception("login failed", account="acct_1")
    (line,) = lines(stream)
    assert line["level"] == "error"
    assert line["account"] == "acct_1"
    exc = line["exc"]
    assert isinstance(exc, str)
    assert exc.startswith("Traceback")
    assert "ConnectionError: a1 LOGIN bob *** failed" in exc
    assert "OSError: refused imaps://bob:***@imap.example.com" in exc
    assert_hidden(PASSWORD, stream)


def test_third_party_records_take_the_same_shape_masked(stream: io.StringIO) -> None:
    url = f"https://oauth.example.com/token?client_id=abc&refresh_token={TOKEN}"
    with log_context(account="acct_1"):
        logging.getLogger("httpx").warning("HTTP Request: %s %s", "POST", url)
    logging.getLogger("x").warning("%s", f"imaps://bob:{PASSWORD}@imap.example.com")
    first, second = lines(stream)
    assert list(first) == ["time", "level", "logger", "event", "account"]
    assert first["logger"] == "httpx"
    assert first["event"] == (
        "HTTP Request: POST https://oauth.example.com/token?client_id=abc&refresh_token=***"
    )
    assert (second["level"], second["event"]) == ("warning", "imaps://bob:***@imap.example.com")
    assert_hidden(TOKEN, stream)
    assert_hidden(PASSWORD, stream)


def test_unformattable_record_reports_without_its_arguments(
    stream: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    # Attached directly, not through the root: pytest's own capture handler
    # on the root would fail the test on the broken record by design.
    lib = logging.getLogger("brokenlib")
    (ours,) = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is stream]
    lib.addHandler(ours)
    lib.propagate = False
    try:
        lib.info("%s and %s", f"password={PASSWORD}")
    finally:
        lib.removeHandler(ours)
        lib.propagate = True
    (line,) = lines(stream)
    assert line["event"] == "log record could not be formatted"
    assert (line["source_logger"], line["error"], line["template"]) == (
        "brokenlib",
        "TypeError",
        "%s and %s",
    )
    assert_hidden(PASSWORD, stream)
    assert PASSWORD not in capsys.readouterr().err


def test_uvicorn_loggers_go_through_the_root_and_access_is_silenced(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _restored_logging():
        own = io.StringIO()
        logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(own))
        logging.getLogger("uvicorn.access").addHandler(logging.StreamHandler(own))
        logging.getLogger("uvicorn").propagate = False
        out = io.StringIO()
        configure_logging("info", stream=out)
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 1)
        logging.getLogger("uvicorn").info("Uvicorn running")
        for level in (logging.INFO, logging.WARNING, logging.CRITICAL):
            logging.getLogger("uvicorn.access").log(
                level, '%s - "%s %s"', "1.2.3.4", "GET", f"/cb?code={TOKEN}"
            )
        assert [(ln["logger"], ln["event"]) for ln in lines(out)] == [
            ("uvicorn.error", "Started server process [1]"),
            ("uvicorn", "Uvicorn running"),
        ]
        assert own.getvalue() == ""
        assert TOKEN not in capsys.readouterr().err


def test_abusive_input_is_masked_in_bounded_time() -> None:
    junk = "a:" * 100_000 + "x=" * 100_000 + " LOGIN " * 10_000 + "://" + ":@" * 10_000
    assert mask_text(junk + f" password={PASSWORD}").endswith("password=***")
    long_token = "T" * 200_000
    masked = mask_text(f'{{"access_token": "{long_token}", "expires_in": 1}}')
    assert masked == '{"access_token": "***", "expires_in": 1}'


# ------------------------------------------------------------------ properties

# Printable ASCII without space: what a raw query or form value can hold, minus
# the characters that end it by rule ("&", quotes).
_VALUE_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="&\"'")
_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_NOT_SPACE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


def _logged_event(secret: str, event: str, masked: str) -> str:
    """Log `event` through a fresh configuration, grep for `secret`, return the event logged."""
    assume(secret not in masked)  # a "secret" that is part of the fixed text proves nothing
    out = io.StringIO()
    with _restored_logging():
        configure_logging("info", stream=out)
        get_logger("prop").info(event)
    assert_hidden(secret, out)
    (line,) = lines(out)
    assert isinstance(line["event"], str)
    return line["event"]


@given(secret=st.text(_VALUE_CHARS, min_size=8, max_size=64))
def test_property_password_parameter_never_leaks(secret: str) -> None:
    template = "POST /token grant_type=password&username=bob&password={}&scope=x y"
    masked = template.format("***")
    assert _logged_event(secret, template.format(secret), masked) == masked


@given(secret=st.text(_PRINTABLE, min_size=8, max_size=64))
def test_property_encoded_password_parameter_never_leaks(secret: str) -> None:
    encoded = quote_plus(secret)
    masked = "body username=bob&password=***"
    assume(encoded not in masked)
    assert _logged_event(secret, f"body username=bob&password={encoded}", masked) == masked
    assert _logged_event(encoded, f"body username=bob&password={encoded}", masked) == masked


@given(secret=st.builds(str.__add__, _NOT_SPACE, st.text(_PRINTABLE, min_size=7, max_size=64)))
def test_property_bearer_header_never_leaks(secret: str) -> None:
    template = "upstream headers\nAuthorization: Bearer {}\nAccept: text/plain"
    masked = template.format("***")
    assert _logged_event(secret, template.format(secret), masked) == masked


@given(secret=st.text(string.ascii_letters + string.digits + "-._~+/", min_size=8, max_size=64))
def test_property_bare_bearer_token_never_leaks(secret: str) -> None:
    masked = "retrying with Bearer *** after 401"
    event = _logged_event(secret, f"retrying with Bearer {secret}= after 401", masked)
    # The token may itself look like "x.token=", masking more than it needs to.
    assert event.startswith("retrying with Bearer ***")


@pytest.mark.parametrize("level", ["debug", "info"])
def test_http_client_request_lines_with_urls_are_not_logged(level: str) -> None:
    """httpx logs every request's URL at info; a webhook URL's query may hold a token."""
    out = io.StringIO()
    configure_logging(level, stream=out)
    try:
        logging.getLogger("httpx").info("HTTP Request: POST https://h.example/?token=planted")
        logging.getLogger("httpcore.http11").debug("send_request_headers.started planted")
        assert "planted" not in out.getvalue()
        logging.getLogger("httpx").warning("still shown")
        assert "still shown" in out.getvalue()
    finally:
        configure_logging("info", stream=io.StringIO())
