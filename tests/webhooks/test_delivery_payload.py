"""The `messageNew` payload rules of the settings (text, headers, attachment content)."""

from __future__ import annotations

from typing import Any

from mailwire.webhooks.config import WebhookSettings
from mailwire.webhooks.envelope import body_bytes, format_payload, in_inbox


def message_new(**data: Any) -> dict[str, Any]:
    return {"serviceUrl": None, "account": "a", "date": "x", "event": "messageNew", "data": data}


FULL = {
    "id": "M",
    "text": {"id": "M", "encodedSize": {"plain": 5}, "plain": "hello", "hasMore": False},
    "headers": {"subject": ["hi"], "x-custom": ["1"], "received": ["a", "b"]},
    "attachments": [
        {"id": "M1", "encodedSize": 10, "content": "AAAA"},
        {"id": "M2", "encodedSize": 5000, "content": "BBBB"},
        {"id": "M3", "encodedSize": 1},
    ],
}


def test_notify_text_off_keeps_only_id_and_encoded_size() -> None:
    settings = WebhookSettings.from_values({"notifyText": False})
    out = format_payload(message_new(**FULL), settings)
    assert out["data"]["text"] == {"id": "M", "encodedSize": {"plain": 5}}


def test_notify_text_on_is_the_default_and_keeps_the_text() -> None:
    out = format_payload(message_new(**FULL), WebhookSettings.from_values({}))
    assert out["data"]["text"]["plain"] == "hello"


def test_notify_headers_filters_by_lower_case_name() -> None:
    settings = WebhookSettings.from_values({"notifyHeaders": ["subject", "X-Custom"]})
    out = format_payload(message_new(**FULL), settings)
    # "X-Custom" as stored never matches the lower-case name (as the reference).
    assert out["data"]["headers"] == {"subject": ["hi"]}
    every = format_payload(
        message_new(**FULL), WebhookSettings.from_values({"notifyHeaders": ["*"]})
    )
    assert every["data"]["headers"] == FULL["headers"]
    none = format_payload(message_new(**FULL), WebhookSettings.from_values({}))
    assert "headers" not in none["data"]


def test_attachment_content_only_when_asked_and_within_the_size_cap() -> None:
    off = format_payload(message_new(**FULL), WebhookSettings.from_values({}))
    assert all("content" not in item for item in off["data"]["attachments"])
    capped = format_payload(
        message_new(**FULL),
        WebhookSettings.from_values({"notifyAttachments": True, "notifyAttachmentSize": 100}),
    )
    assert [item.get("content") for item in capped["data"]["attachments"]] == ["AAAA", None, None]


def test_other_events_are_untouched_and_the_input_is_not_changed() -> None:
    payload = {"event": "messageDeleted", "data": {"headers": {"a": ["b"]}}}
    assert format_payload(payload, WebhookSettings()) is payload
    original = message_new(**FULL)
    format_payload(original, WebhookSettings.from_values({"notifyText": False}))
    assert original["data"]["text"]["plain"] == "hello"


def test_inbox_is_recognised_by_path_special_use_labels_or_message_special_use() -> None:
    assert in_inbox({"path": "INBOX", "data": {}})
    assert in_inbox({"path": "X", "specialUse": "\\Inbox", "data": {}})
    assert in_inbox({"path": "X", "data": {"labels": ["\\Inbox"]}})
    assert in_inbox({"path": "X", "data": {"messageSpecialUse": "\\Inbox"}})
    assert not in_inbox({"path": "Archive", "data": {"labels": ["\\Sent"]}})


def test_body_is_compact_utf8_json_without_event_id() -> None:
    body = body_bytes({"eventId": "e", "data": {"subject": "Grüße"}})
    assert body == '{"data":{"subject":"Grüße"}}'.encode()
    assert body_bytes("text") == b'"text"'
