"""The webhook envelope of an outbox event, and the `messageNew` payload rules.

An envelope is `serviceUrl`, `account`, `date`, `path?`, `specialUse?`,
`event`, `data`, in that order; optional keys are left out rather than sent
as null. The event id (the outbox row's uuid) is never part of the body: it
travels in the `X-EE-Wh-Event-Id` header. The change stream (SSE) sends the
same envelope without `serviceUrl` (`envelope`).

`format_message_new` applies the settings that trim a `messageNew` payload
(text, headers, attachment content) after any enrichment added them, so what
a receiver gets never exceeds what the settings ask for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mailwire.domain.events import EventName, StoredEvent
from mailwire.domain.messages import iso_time
from mailwire.webhooks.config import WebhookSettings

INBOX = "\\Inbox"


def envelope(event: StoredEvent) -> dict[str, Any]:
    """The envelope of `event` without `serviceUrl` (the change stream's shape)."""
    body: dict[str, Any] = {"account": event.account, "date": iso_time(event.created_at)}
    if event.path is not None:
        body["path"] = event.path
    if event.special_use is not None:
        body["specialUse"] = event.special_use
    body["event"] = str(event.event)
    body["data"] = dict(event.data)
    return body


def webhook_envelope(event: StoredEvent, service_url: str | None) -> dict[str, Any]:
    """The envelope as a webhook body: `serviceUrl` (null when unset) first."""
    return {"serviceUrl": service_url, **envelope(event)}


def format_payload(payload: dict[str, Any], settings: WebhookSettings) -> dict[str, Any]:
    """Apply the `messageNew` rules of the settings to an envelope (a new dict)."""
    if payload.get("event") != EventName.MESSAGE_NEW or not isinstance(payload.get("data"), dict):
        return payload
    data = dict(payload["data"])
    _trim_text(data, settings)
    _trim_headers(data, settings)
    _trim_attachments(data, settings)
    return {**payload, "data": data}


def _trim_text(data: dict[str, Any], settings: WebhookSettings) -> None:
    text = data.get("text")
    if not isinstance(text, dict):
        return
    if settings.notify_text:
        data["text"] = dict(text)
        if not settings.notify_web_safe_html:
            data["text"].pop("webSafe", None)
        return
    data["text"] = {key: text[key] for key in ("id", "encodedSize") if key in text}


def _trim_headers(data: dict[str, Any], settings: WebhookSettings) -> None:
    headers = data.get("headers")
    if headers is None:
        return
    wanted = settings.notify_headers
    if not wanted or not isinstance(headers, Mapping):
        data.pop("headers", None)
        return
    if "*" in wanted:
        return
    data["headers"] = {name: value for name, value in headers.items() if name in wanted}


def _trim_attachments(data: dict[str, Any], settings: WebhookSettings) -> None:
    attachments = data.get("attachments")
    if not isinstance(attachments, list):
        return
    cap = settings.notify_attachment_size
    trimmed = []
    for attachment in attachments:
        if not isinstance(attachment, dict) or "content" not in attachment:
            trimmed.append(attachment)
            continue
        too_big = cap is not None and int(attachment.get("encodedSize") or 0) > cap
        if settings.notify_attachments and not too_big:
            trimmed.append(attachment)
        else:
            trimmed.append({key: val for key, val in attachment.items() if key != "content"})
    data["attachments"] = trimmed


def in_inbox(payload: Mapping[str, Any]) -> bool:
    """Whether a `messageNew` envelope is about a message in the Inbox (`inboxNewOnly`)."""
    if payload.get("path") == "INBOX" or payload.get("specialUse") == INBOX:
        return True
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return False
    labels = data.get("labels")
    return data.get("messageSpecialUse") == INBOX or (isinstance(labels, list) and INBOX in labels)


def body_bytes(body: Any) -> bytes:
    """A webhook body as sent: compact JSON, UTF-8, non-ASCII left as is.

    A top-level `eventId` is removed first (it is sent as a header).
    """
    if isinstance(body, dict) and "eventId" in body:
        body = {key: value for key, value in body.items() if key != "eventId"}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
