"""The mailbox, message and search models: the reference's examples go through, bad input
is refused with the offending field named as a client sees it (`validation_fields`), and
each answer model's published JSON schema accepts a realistic answer.

The examples are written out here (adapted only where the reference shows EmailEngine's
own id format, which Mailwire's ids do not follow).
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from mailwire.api.errors import validation_fields
from mailwire.api.models.common import MessageId
from mailwire.api.models.mailboxes import (
    MAX_PATH_SEGMENTS,
    CreateMailbox,
    CreateMailboxResponse,
    DeleteMailboxResponse,
    MailboxesQuery,
    MailboxesResponse,
    MailboxPathQuery,
    ModifyMailbox,
    ModifyMailboxResponse,
)
from mailwire.api.models.messages import (
    MAX_FLAGS,
    AttachmentId,
    BulkDeleteQuery,
    BulkQuery,
    BulkUpdateResponse,
    DeleteMessageQuery,
    MessageDeleteResponse,
    MessageDetails,
    MessageList,
    MessageListEntry,
    MessageMove,
    MessageMoveResponse,
    MessageQuery,
    MessagesDelete,
    MessagesDeleteResponse,
    MessagesMove,
    MessagesMoveResponse,
    MessagesQuery,
    MessagesUpdate,
    MessageUpdate,
    MessageUpdateResponse,
    TextQuery,
    TextResponse,
)
from mailwire.api.models.search import (
    MAX_EMAIL_IDS,
    MAX_HEADER_TERMS,
    SearchBody,
    SearchParams,
)
from mailwire.api.models.uploads import (
    MAX_RECIPIENTS,
    MAX_UPLOAD_ATTACHMENTS,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_HEADERS,
    MessageUpload,
    MessageUploadResponse,
    decoded_size,
)
from mailwire.domain.messages import MessageRecord, encode_message_id, message_summary

MESSAGE = encode_message_id(1, 481, 7)
OTHER = encode_message_id(3, 481, 360)
GIF = "R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs="
#: The reference's search example, whole.
SEARCH_EXAMPLE: dict[str, Any] = {
    "unseen": True,
    "flagged": True,
    "from": "nyan.cat@example.com",
    "body": "Hello world",
    "subject": "Hello world",
    "sentBefore": "2024-08-09",
    "sentSince": "2022-08-09",
    "emailId": "1278455344230334865",
    "threadId": "1266894439832287888",
    "header": {"Message-ID": "<12345@example.com>"},
    "gmailRaw": "has:attachment in:unread",
    "labels": {"has": ["Important"], "not": ["Horizon"]},
}


def refused(model: type[BaseModel], data: Any) -> set[str]:
    """The field keys a client would see in the 400 answer for `data`."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    # FastAPI puts where the value came from first; the error table expects it.
    errors = [{**error, "loc": ("body", *error["loc"])} for error in caught.value.errors()]
    return {field["key"] for field in validation_fields(errors)}


def search(**criteria: Any) -> dict[str, Any]:
    return {"search": criteria}


# ---------------------------------------------------------------- mailboxes


def test_create_mailbox_takes_segments_or_one_name() -> None:
    assert CreateMailbox.model_validate({"path": ["Parent folder", "Subfolder"]}).path == [
        "Parent folder",
        "Subfolder",
    ]
    assert CreateMailbox.model_validate({"path": "Kalender"}).path == ["Kalender"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({}, "path"),
        ({"path": []}, "path"),
        ({"path": ["x" * 257]}, "path.0"),
        ({"path": ["ok", "bad\r\nA1 DELETE INBOX"]}, "path.1"),
        ({"path": ["nul\x00"]}, "path.0"),
        ({"path": ["x"] * (MAX_PATH_SEGMENTS + 1)}, "path"),
        ({"path": ["x"], "parent": "y"}, "parent"),
    ],
)
def test_create_mailbox_refuses(body: dict[str, Any], key: str) -> None:
    assert key in refused(CreateMailbox, body)


def test_modify_mailbox() -> None:
    body = ModifyMailbox.model_validate(
        {"path": "Folder Name", "newPath": ["Parent folder", "Subfolder"], "subscribed": True}
    )
    assert body.newPath == ["Parent folder", "Subfolder"]
    assert "path" in refused(ModifyMailbox, {"newPath": "x"})
    assert "path" in refused(ModifyMailbox, {"path": "a\nb"})
    assert "newPath.0" in refused(ModifyMailbox, {"path": "a", "newPath": "x" * 257})


def test_mailbox_queries() -> None:
    assert MailboxesQuery.model_validate({}).counters is False
    assert MailboxesQuery.model_validate({"counters": "true"}).counters is True
    assert "counter" in refused(MailboxesQuery, {"counter": "true"})
    assert MailboxPathQuery.model_validate({"path": "My Outdated Mail"}).path == "My Outdated Mail"
    assert "path" in refused(MailboxPathQuery, {})
    assert "path" in refused(MailboxPathQuery, {"path": "x" * 1025})
    assert "path" in refused(MailboxPathQuery, {"path": ""})


# ---------------------------------------------------------------- ids


def test_message_ids_are_ours() -> None:
    ids = TypeAdapter(MessageId)
    assert ids.validate_python(MESSAGE) == MESSAGE
    for bad in ("AAAAAQAACnA", "", MESSAGE + "A", "AAAAAQAAAeEAAA==", "AAAAAQAAAeEAAA!H", "é" * 16):
        with pytest.raises(ValidationError):
            ids.validate_python(bad)


@pytest.mark.parametrize("part", ["1", "2", "1.2", "2.10.3", "999999"])
def test_attachment_ids_accepted(part: str) -> None:
    assert TypeAdapter(AttachmentId).validate_python(MESSAGE + part) == MESSAGE + part


@pytest.mark.parametrize(
    "value",
    [
        MESSAGE,  # no part
        MESSAGE + "0",
        MESSAGE + "1.",
        MESSAGE + "1..2",
        MESSAGE + "1.0",
        MESSAGE + "1\n",
        MESSAGE + "1234567",  # over MAX_PART_DIGITS
        MESSAGE + ".".join(["1"] * 33),  # deeper than MAX_PART_DEPTH
        "AAAAAQAACnAcde",  # the reference's example: not one of our ids
        "!" * 16 + "2",
    ],
)
def test_attachment_ids_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(AttachmentId).validate_python(value)


# ---------------------------------------------------------------- search


def test_search_takes_the_reference_example() -> None:
    body = SearchBody.model_validate({"search": SEARCH_EXAMPLE})
    query = body.search
    assert query.from_ == "nyan.cat@example.com"
    assert query.sentBefore == datetime(2024, 8, 9, tzinfo=UTC)
    assert query.labels is not None
    assert query.labels.not_ == ["Horizon"]
    assert query.gmailRaw == "has:attachment in:unread"
    assert body.model_dump(by_alias=True, exclude_none=True)["search"]["from"] == (
        "nyan.cat@example.com"
    )


def test_search_takes_every_criterion() -> None:
    query = SearchBody.model_validate(
        search(
            seq="1:10",
            uid="100:200,300,400:*",
            answered=True,
            deleted=False,
            draft=False,
            seen=False,
            to="support@example.com",
            cc="billing@example.com",
            bcc="archive@example.com",
            larger=1048576,
            smaller=102400,
            modseq=12345,
            before="2024-08-09T10:00:00+03:00",
            since=1660003200000,
            emailIds="1278455344230334865",
            header={"X-Priority": True, "List-Id": "<list.example.com>"},
        )
    ).search
    assert query.emailIds == ["1278455344230334865"]
    assert query.before == datetime(2024, 8, 9, 7, tzinfo=UTC)
    assert query.since == datetime(2022, 8, 9, tzinfo=UTC)
    assert query.header == {"X-Priority": "", "List-Id": "<list.example.com>"}


@pytest.mark.parametrize(
    "value",
    ["2024-08-09", "2024-08-09T00:00:00Z", "2024-08-09T00:00:00", 1723161600000, "1723161600000"],
)
def test_search_dates_iso_or_epoch_ms_in_utc(value: object) -> None:
    query = SearchBody.model_validate(search(since=value)).search
    assert query.since == datetime(2024, 8, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("criteria", "key"),
    [
        ({"seq": "1:10 OR 1"}, "search.seq"),
        ({"seq": "0"}, "search.seq"),
        ({"uid": "1:"}, "search.uid"),
        ({"uid": "1" * 8193}, "search.uid"),
        ({"from": "x" * 257}, "search.from"),
        ({"to": "a\r\nb"}, "search.to"),
        ({"body": "\x00"}, "search.body"),
        ({"subject": "x" * 2561}, "search.subject"),
        ({"larger": 1024**3 + 1}, "search.larger"),
        ({"smaller": -1}, "search.smaller"),
        ({"modseq": -1}, "search.modseq"),
        ({"modseq": 2**63}, "search.modseq"),
        ({"before": "yesterday"}, "search.before"),
        ({"since": -5}, "search.since"),
        ({"sentSince": True}, "search.sentSince"),
        ({"emailId": "has space"}, "search.emailId"),
        ({"threadId": "x" * 257}, "search.threadId"),
        ({"emailIds": []}, "search.emailIds"),
        ({"emailIds": ["1"] * (MAX_EMAIL_IDS + 1)}, "search.emailIds"),
        ({"header": {"Bad:Name": "x"}}, "search.header.Bad:Name.[key]"),
        ({"header": {"X-A": "a\r\nb"}}, "search.header.X-A"),
        ({"header": {"X-A": False}}, "search.header.X-A"),
        ({"header": {f"X-{n}": "v" for n in range(MAX_HEADER_TERMS + 1)}}, "search.header"),
        ({"gmailRaw": "x" * 1025}, "search.gmailRaw"),
        ({"labels": {"has": ["x" * 129]}}, "search.labels.has.0"),
        ({"labels": {"not": "tab\there"}}, "search.labels.not.0"),
        ({"unread": True}, "search.unread"),
    ],
)
def test_search_refuses(criteria: dict[str, Any], key: str) -> None:
    assert key in refused(SearchBody, {"search": criteria})


def test_search_body_needs_search() -> None:
    assert refused(SearchBody, {}) == {"search"}
    assert "search" in refused(SearchBody, {"search": "unseen"})


def test_search_params_paging() -> None:
    params = SearchParams.model_validate({})
    assert (params.page, params.pageSize, params.cursor, params.path) == (0, 20, None, None)
    params = SearchParams.model_validate(
        {"cursor": "imap_kcQIji3UobDDTxc", "pageSize": "1000", "useOutlookSearch": "true"}
    )
    assert params.pageSize == 1000
    assert params.useOutlookSearch is True
    assert "pageSize" in refused(SearchParams, {"pageSize": "1001"})
    assert "pageSize" in refused(SearchParams, {"pageSize": "0"})
    assert "page" in refused(SearchParams, {"page": str(1024 * 1024 + 1)})
    assert "cursor" in refused(SearchParams, {"cursor": "a b"})
    assert "path" in refused(SearchParams, {"path": "a\x00"})


# ---------------------------------------------------------------- message queries


def test_message_list_query() -> None:
    query = MessagesQuery.model_validate({"path": "INBOX"})
    assert (query.page, query.pageSize, query.cursor) == (0, 20, None)
    assert MessagesQuery.model_validate({"path": "INBOX", "page": "3"}).page == 3
    assert refused(MessagesQuery, {}) == {"path"}
    assert "pageSize" in refused(MessagesQuery, {"path": "INBOX", "pageSize": "5000"})
    assert "cursor" in refused(MessagesQuery, {"path": "INBOX", "cursor": "x" * (1024 * 1024 + 1)})
    assert "documentStore" in refused(MessagesQuery, {"path": "INBOX", "documentStore": "true"})


def test_message_read_queries() -> None:
    query = MessageQuery.model_validate({})
    assert (query.webSafeHtml, query.preProcessHtml, query.markAsSeen) == (False, False, False)
    assert query.textType is None
    assert query.embedAttachedImages is None
    query = MessageQuery.model_validate({"textType": "HTML", "maxBytes": "5248000"})
    assert (query.textType, query.maxBytes) == ("html", 5248000)
    assert "textType" in refused(MessageQuery, {"textType": "text"})
    assert "maxBytes" in refused(MessageQuery, {"maxBytes": str(1024**3 + 1)})
    assert TextQuery.model_validate({}).textType == "*"
    assert DeleteMessageQuery.model_validate({}).force is False
    assert BulkDeleteQuery.model_validate({"path": "INBOX", "force": "true"}).force is True
    assert refused(BulkQuery, {}) == {"path"}


# ---------------------------------------------------------------- flags, labels, moves


def test_message_update_takes_the_reference_example() -> None:
    update = MessageUpdate.model_validate({"flags": {"add": "\\Seen", "delete": "\\Flagged"}})
    assert update.flags is not None
    assert (update.flags.add, update.flags.delete) == (["\\Seen"], ["\\Flagged"])
    update = MessageUpdate.model_validate(
        {
            "flags": {"set": ["\\Seen", "\\Flagged", "$Forwarded", "Junk"]},
            "labels": {"add": ["Label_971539351003152516"], "delete": "\\Important"},
        }
    )
    assert update.labels is not None
    assert update.labels.delete == ["\\Important"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"flags": {"add": "\\Se en"}}, "flags.add.0"),
        ({"flags": {"add": ["\\Seen", "Seen)"]}}, "flags.add.1"),
        ({"flags": {"delete": 'a"b'}}, "flags.delete.0"),
        ({"flags": {"set": ["\\\\Seen"]}}, "flags.set.0"),
        ({"flags": {"set": ["\\*"]}}, "flags.set.0"),
        ({"flags": {"add": "\\Recent"}}, "flags.add.0"),
        ({"flags": {"add": "\\Seen\r\nA2 LOGOUT"}}, "flags.add.0"),
        ({"flags": {"add": "Ünïcode"}}, "flags.add.0"),
        ({"flags": {"add": ""}}, "flags.add.0"),
        ({"flags": {"add": "k" * 129}}, "flags.add.0"),
        ({"flags": {"add": ["k"] * (MAX_FLAGS + 1)}}, "flags.add"),
        ({"flags": {"toggle": "\\Seen"}}, "flags.toggle"),
        ({"labels": {"add": "line\nbreak"}}, "labels.add.0"),
        ({"labels": {"set": ["x"]}}, "labels.set"),
    ],
)
def test_message_update_refuses(body: dict[str, Any], key: str) -> None:
    assert key in refused(MessageUpdate, body)


def test_moves_and_bulk_bodies() -> None:
    assert MessageMove.model_validate({"path": "Target/Folder"}).source is None
    assert MessageMove.model_validate({"path": "Archive", "source": "INBOX"}).source == "INBOX"
    assert refused(MessageMove, {"source": "INBOX"}) == {"path"}
    moved = MessagesMove.model_validate({"search": {"seen": True}, "path": "Archive"})
    assert moved.search.seen is True
    assert refused(MessagesMove, {"search": {"seen": True}}) == {"path"}
    updated = MessagesUpdate.model_validate(
        {"search": {"unseen": True}, "update": {"flags": {"add": "\\Seen"}}}
    )
    assert updated.update is not None
    assert refused(MessagesUpdate, {"update": {}}) == {"search"}
    assert MessagesDelete.model_validate({"search": {"emailIds": ["1", "2"]}}).search.emailIds
    assert "search.from" in refused(MessagesDelete, {"search": {"from": "a\rb"}})


# ---------------------------------------------------------------- upload


def upload(**fields: Any) -> dict[str, Any]:
    return {"path": "INBOX", **fields}


def test_upload_takes_the_reference_example() -> None:
    body = MessageUpload.model_validate(
        {
            "path": "INBOX",
            "flags": ["\\Seen", "\\Draft"],
            "internalDate": "2021-07-08T07:06:34.336Z",
            "reference": {"message": MESSAGE, "action": "Reply-All", "inline": True},
            "from": {"name": "From Me", "address": "sender@example.com"},
            "to": [{"address": "recipient@example.com"}],
            "cc": {"name": "Some Name", "address": "user@example.com"},
            "subject": "What a wonderful message",
            "text": "Hello from myself!",
            "html": "<p>Hello from myself!</p>",
            "attachments": [
                {
                    "filename": "transparent.gif",
                    "contentType": "Image/GIF",
                    "contentDisposition": "INLINE",
                    "cid": "unique-image-id@localhost",
                    "content": GIF,
                }
            ],
            "messageId": "<test123@example.com>",
            "headers": {"X-My-Custom-Header": "Custom header value"},
            "locale": "fr",
            "tz": "Europe/Tallinn",
        }
    )
    assert body.internalDate == datetime(2021, 7, 8, 7, 6, 34, 336000, tzinfo=UTC)
    assert body.reference is not None
    assert (body.reference.action, body.reference.forwardAttachments) == ("reply-all", False)
    assert body.cc is not None
    assert body.cc[0].name == "Some Name"
    attachment = (body.attachments or [])[0]
    assert (attachment.contentType, attachment.contentDisposition) == ("image/gif", "inline")
    assert attachment.encoding == "base64"
    gif = len(base64.b64decode(GIF))
    assert body.size() == len("Hello from myself!") + len("<p>Hello from myself!</p>") + gif


def test_upload_keeps_body_text_as_given() -> None:
    body = MessageUpload.model_validate(
        upload(text="  Hi,\n\n-- \n", html="<p>x</p>\r\n", subject=" Hi ")
    )
    assert (body.text, body.html, body.subject) == ("  Hi,\n\n-- \n", "<p>x</p>\r\n", "Hi")


def test_upload_raw_and_attachment_sources() -> None:
    raw = "TUlNRS1WZXJzaW9uOiAxLjANClN1YmplY3Q6IGhlbGxvIHdvcmxkDQoNCkhlbGxvIQ0K"
    assert base64.b64decode(MessageUpload.model_validate(upload(raw=raw)).raw or "")
    wrapped = "\r\n".join(re.findall(".{1,20}", raw))
    assert MessageUpload.model_validate(upload(raw=wrapped)).raw == raw
    unpadded = MessageUpload.model_validate(upload(raw="aGk")).raw
    assert unpadded == "aGk="
    by_reference = MessageUpload.model_validate(
        upload(attachments=[{"reference": MESSAGE + "2"}, {"reference": False, "content": GIF}])
    )
    assert [a.reference for a in by_reference.attachments or []] == [MESSAGE + "2", None]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({}, "path"),
        (upload(path="IN\r\nBOX"), "path"),
        (upload(flags=["\\Seen", "(bad"]), "flags.1"),
        (upload(flags="\\Seen"), "flags"),  # a list in the reference, not "single"
        (upload(internalDate="last week"), "internalDate"),
        (upload(reference={"message": "AAAAAQAACnA"}), "reference.message"),
        (upload(reference={"message": MESSAGE, "action": "bounce"}), "reference.action"),
        (upload(reference={"inline": True}), "reference"),
        (upload(reference={"messageId": "<a@b>\r\nBcc: x@y"}), "reference.messageId"),
        (upload(raw="not base64!"), "raw"),
        (upload(raw="A"), "raw"),
        (upload(raw="A" * (5 * 1024 * 1024 + 1)), "raw"),
        (upload(**{"from": {"name": "x"}}), "from.address"),
        (upload(**{"from": {"address": "not an address"}}), "from.address"),
        (upload(**{"from": {"address": "a\x00@example.com"}}), "from.address"),
        (upload(**{"from": {"name": "A\r\nBcc: x@y", "address": "a@b.c"}}), "from.name"),
        (upload(to={"address": "a" * 250 + "@b.cd"}), "to.0.address"),
        (upload(to=[{"address": "a@b.c"}] * (MAX_RECIPIENTS + 1)), "to"),
        (upload(bcc=[{"address": "a@b.c", "group": "x"}]), "bcc.0.group"),
        (upload(subject="Hi\r\nBcc: victim@example.com"), "subject"),
        (upload(subject="x" * 10241), "subject"),
        (upload(text="x" * (5 * 1024 * 1024 + 1)), "text"),
        (upload(messageId="x" * 997), "messageId"),
        (upload(headers={"X-Evil": "a\nb"}), "headers.X-Evil"),
        (upload(headers={"X Evil": "a"}), "headers.X Evil.[key]"),
        (upload(headers={f"X-{n}": "v" for n in range(MAX_UPLOAD_HEADERS + 1)}), "headers"),
        (upload(attachments=[{"filename": "a.txt"}]), "attachments.0"),
        (upload(attachments=[{"content": GIF, "reference": MESSAGE + "2"}]), "attachments.0"),
        (upload(attachments=[{"reference": MESSAGE}]), "attachments.0.reference"),
        (upload(attachments=[{"content": "%%%"}]), "attachments.0.content"),
        (upload(attachments=[{"content": GIF, "encoding": "hex"}]), "attachments.0.encoding"),
        (
            upload(attachments=[{"content": GIF, "contentDisposition": "x"}]),
            "attachments.0.contentDisposition",
        ),
        (upload(attachments=[{"content": GIF, "contentType": "gif"}]), "attachments.0.contentType"),
        (upload(attachments=[{"content": GIF, "filename": "a\r\n.txt"}]), "attachments.0.filename"),
        (upload(attachments=[{"content": GIF}] * (MAX_UPLOAD_ATTACHMENTS + 1)), "attachments"),
        (upload(locale="fr\nx"), "locale"),
        (upload(tz="Europe/Tallinn; rm"), "tz"),
        (upload(sendAt="2024-01-01"), "sendAt"),
    ],
)
def test_upload_refuses(body: dict[str, Any], key: str) -> None:
    assert key in refused(MessageUpload, body)


def test_upload_total_decoded_size_is_bounded() -> None:
    # Each attachment is within its own limit; together they are over MAX_UPLOAD_BYTES.
    each = base64.b64encode(b"\0" * (3 * 1024 * 1024)).decode()
    count = MAX_UPLOAD_BYTES // (3 * 1024 * 1024) + 1
    attachments = [{"content": each}] * count
    assert refused(MessageUpload, upload(attachments=attachments)) == {"body"}
    accepted = MessageUpload.model_validate(upload(attachments=attachments[: count - 1]))
    assert accepted.size() == (count - 1) * 3 * 1024 * 1024


@given(st.binary(max_size=300))
def test_decoded_size_matches_base64(data: bytes) -> None:
    encoded = base64.b64encode(data).decode()
    for given_text in (encoded, encoded.rstrip("=")):
        body = MessageUpload.model_validate(upload(attachments=[{"content": given_text}]))
        content = (body.attachments or [])[0].content or ""
        assert base64.b64decode(content) == data
        assert decoded_size(content) == len(data)


# ---------------------------------------------------------------- answers and their schemas


def _type_ok(value: Any, kind: str) -> bool:
    checks: dict[str, Any] = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    return bool(checks[kind](value))


def schema_errors(
    value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "$"
) -> list[str]:
    """A small JSON Schema check of the keywords pydantic emits for these models."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return schema_errors(value, root["$defs"][name], root, at)
    if "anyOf" in schema:
        options = [schema_errors(value, option, root, at) for option in schema["anyOf"]]
        return [] if any(not found for found in options) else [f"{at}: no anyOf branch fits"]
    if "type" in schema and not _type_ok(value, schema["type"]):
        return [f"{at}: not {schema['type']}"]
    errors: list[str] = []
    if "const" in schema and value != schema["const"]:
        errors.append(f"{at}: not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: not one of {schema['enum']}")
    if isinstance(value, list):
        errors += _array_errors(value, schema, root, at)
    if isinstance(value, dict):
        errors += _object_errors(value, schema, root, at)
    return errors


def _array_errors(
    value: list[Any], schema: dict[str, Any], root: dict[str, Any], at: str
) -> list[str]:
    errors: list[str] = []
    if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
        errors.append(f"{at}: wrong number of items")
    for index, item in enumerate(value):
        errors += schema_errors(item, schema.get("items", {}), root, f"{at}[{index}]")
    return errors


def _object_errors(
    value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], at: str
) -> list[str]:
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    errors = [f"{at}.{key}: missing" for key in schema.get("required", ()) if key not in value]
    for key, item in value.items():
        if key in properties:
            errors += schema_errors(item, properties[key], root, f"{at}.{key}")
        elif isinstance(extra, dict):
            errors += schema_errors(item, extra, root, f"{at}.{key}")
        elif extra is False or properties:
            errors.append(f"{at}.{key}: not in the schema")
    return errors


def summary(**overrides: Any) -> dict[str, Any]:
    record = MessageRecord(
        mailbox_id=1,
        uid=7,
        flags=("\\Flagged",),
        size=1040,
        internal_date=1616418811000,
        date=1616418811000,
        subject="What a wonderful message",
        message_id="<test123@example.com>",
        in_reply_to="<7JBUMt0WOn+_==MOkaCOQ@mail.gmail.com>",
        email_id="1278455344230334865",
        thread_id="1694936993596975454",
        labels=("\\Important",),
        envelope={
            "from": {"name": "From Me", "address": "sender@example.com"},
            "to": [{"name": "Some Name", "address": "user@example.com"}],
            "replyTo": [{"address": "sender@example.com"}],
        },
        structure={
            "text": {"plain": 1013, "html": 1013},
            "attachments": [
                {
                    "part": "2",
                    "contentType": "image/gif",
                    "encodedSize": 48,
                    "embedded": True,
                    "inline": True,
                    "filename": "image.png",
                    "contentId": "<unique-image-id@localhost>",
                }
            ],
        },
    )
    data = message_summary(record, uid_validity=481, path="INBOX", special_use="\\Inbox")
    data.pop("seemsLikeNew")  # a webhook field, not part of a list entry
    return {**data, **overrides}


DETAILS = summary(
    sender={"address": "sender@example.com"},
    bcc=[],
    headers={"from": ["From Me <sender@example.com>"], "subject": ["What a wonderful message"]},
    text={
        "id": MESSAGE,
        "encodedSize": {"plain": 1013, "html": 1013},
        "plain": "Hello from myself!",
        "html": "<p>Hello from myself!</p>",
        "hasMore": False,
        "webSafe": True,
    },
    specialUse="\\Inbox",
    preview="Hello from myself!",
    category="primary",
    isAutoReply=False,
    bounces=[
        {
            "message": OTHER,
            "recipient": "recipient@example.com",
            "action": "failed",
            "response": {"message": "550 5.1.1 No such user", "status": "5.1.1"},
            "date": "2021-03-22T13:13:31.000Z",
        }
    ],
)

ANSWERS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (
        MailboxesResponse,
        {
            "mailboxes": [
                {
                    "path": "INBOX",
                    "delimiter": "/",
                    "name": "INBOX",
                    "listed": True,
                    "subscribed": True,
                    "specialUse": "\\Inbox",
                    "specialUseSource": "name",
                    "messages": 120,
                    "uidNext": 121,
                    "status": {"messages": 120, "unseen": 4},
                },
                {
                    "path": "Kalender/S&APw-nnip&AOQ-evad",
                    "delimiter": "/",
                    "parentPath": "Kalender",
                    "name": "Sünnipäevad",
                    "noInferiors": False,
                    "messages": False,
                    "uidNext": False,
                    "status": {"error": "Mailbox does not exist"},
                },
            ]
        },
    ),
    (CreateMailboxResponse, {"path": "Parent folder/Subfolder", "mailboxId": "7", "created": True}),
    (ModifyMailboxResponse, {"path": "Mail", "newPath": "Archive/Mail", "renamed": True}),
    (DeleteMailboxResponse, {"path": "My Outdated Mail", "mailboxId": "9", "deleted": True}),
    (MessageListEntry, summary()),
    (
        MessageList,
        {
            "total": 120,
            "page": 0,
            "pages": 6,
            "nextPageCursor": "imap_kcQIji3UobDDTxc",
            "prevPageCursor": None,
            "messages": [summary(), summary(id=OTHER, uid=360, unseen=True)],
        },
    ),
    (MessageDetails, DETAILS),
    (TextResponse, {"plain": "Hello world", "html": "<p>Hello world</p>", "hasMore": False}),
    (
        MessageUpdateResponse,
        {
            "flags": {"add": ["\\Seen"], "delete": False, "result": ["\\Seen", "\\Flagged"]},
            "labels": {"add": ["Label1"], "delete": ["Label3"], "result": ["Label1"]},
        },
    ),
    (BulkUpdateResponse, {"flags": {"add": True}, "emailIds": ["1278455344230334865"]}),
    (MessageMoveResponse, {"path": "Archive", "id": OTHER, "uid": 360}),
    (MessagesMoveResponse, {"path": "Archive", "idMap": [[MESSAGE, OTHER]], "emailIds": None}),
    (
        MessageDeleteResponse,
        {"deleted": False, "moved": {"destination": "Trash", "message": OTHER}},
    ),
    (
        MessagesDeleteResponse,
        {
            "deleted": False,
            "moved": {"destination": "Trash", "idMap": [[MESSAGE, OTHER]]},
            "deletedMessages": {"emailIds": []},
        },
    ),
    (
        MessageUploadResponse,
        {
            "id": MESSAGE,
            "path": "INBOX",
            "uid": 7,
            "uidValidity": "481",
            "seq": 120,
            "messageId": "<test123@example.com>",
            "reference": {"message": OTHER, "success": True},
        },
    ),
]


@pytest.mark.parametrize(("model", "sample"), ANSWERS, ids=[m.__name__ for m, _ in ANSWERS])
def test_answer_schema_accepts_a_realistic_answer(
    model: type[BaseModel], sample: dict[str, Any]
) -> None:
    schema = model.model_json_schema(mode="serialization")
    answer = model.model_validate(sample).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert schema_errors(answer, schema, schema) == []
    assert schema_errors(sample, schema, schema) == []
    # Nothing the sample said was lost on the way out (besides explicit nulls).
    assert answer == {key: value for key, value in sample.items() if value is not None}


def test_schema_check_can_fail() -> None:
    schema = MessageMoveResponse.model_json_schema(mode="serialization")
    assert schema_errors({"id": 5}, schema, schema) == [
        "$.path: missing",
        "$.id: no anyOf branch fits",
    ]
    schema = MessagesMoveResponse.model_json_schema(mode="serialization")
    assert schema_errors({"path": "x", "idMap": [["a"]]}, schema, schema)
    schema = MailboxesResponse.model_json_schema(mode="serialization")
    bad = {"mailboxes": [{"path": "x", "name": "x", "messages": True, "specialUse": "\\Bogus"}]}
    assert len(schema_errors(bad, schema, schema)) == 2


def test_list_entry_keeps_the_summary_shape() -> None:
    entry = MessageListEntry.model_validate(summary())
    assert entry.id == MESSAGE
    assert entry.attachments is not None
    assert entry.attachments[0].id == MESSAGE + "2"
    assert TypeAdapter(AttachmentId).validate_python(entry.attachments[0].id)
    assert entry.model_dump(by_alias=True, exclude_none=True)["from"]["address"] == (
        "sender@example.com"
    )
