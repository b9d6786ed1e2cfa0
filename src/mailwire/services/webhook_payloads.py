"""`messageNew` enrichment: the text, headers and attachment content the settings ask for.

The sync engine's `messageNew` carries what the index knows (envelope, flags,
attachment list, text sizes). When `notifyText`, `notifyHeaders` or
`notifyAttachments` ask for more, the relay calls `enrich` once per event,
before routes are evaluated, so the default route and every custom route get
the same payload from one fetch: one FETCH of the details (headers and text,
cut at `notifyTextSize`, sanitised with `notifyWebSafeHtml`) and one streamed
read per wanted attachment within `notifyAttachmentSize`.

A fetch that fails (the message is already gone, the account has no worker in
this process, the server is down) is logged and the event goes out with what
it had: a webhook late by a mail-server outage would be worse than one
without its text. The relay applies the trimming rules afterwards
(`webhooks.envelope.format_payload`).
"""

from __future__ import annotations

import base64
from typing import Any

from mailwire.domain.events import EventName, StoredEvent
from mailwire.errors import MailwireError
from mailwire.logs import get_logger
from mailwire.services.message_content import MessageContentService
from mailwire.webhooks.config import WebhookSettings

log = get_logger(__name__)

#: Text keys the details answer adds to `text` (`id` and `encodedSize` are already there).
_TEXT_KEYS = ("plain", "html", "hasMore", "webSafe")


class WebhookPayloads:
    """The relay's `Enricher`, reading through the message content service."""

    def __init__(self, content: MessageContentService) -> None:
        self._content = content

    async def enrich(
        self, event: StoredEvent, payload: dict[str, Any], settings: WebhookSettings
    ) -> dict[str, Any]:
        data = payload.get("data")
        if event.event != EventName.MESSAGE_NEW or not isinstance(data, dict):
            return payload
        message_id = data.get("id")
        if not isinstance(message_id, str):
            return payload
        wants_text = settings.notify_text and isinstance(data.get("text"), dict)
        wants_headers = bool(settings.notify_headers)
        attachments = [a for a in data.get("attachments") or () if _fits(a, settings)]
        if not (wants_text or wants_headers or attachments):
            return payload
        enriched = dict(data)
        try:
            if wants_text or wants_headers:
                details = await self._content.details(
                    event.account,
                    message_id,
                    text_type="*" if wants_text else None,
                    max_bytes=settings.notify_text_size,
                    web_safe=wants_text and settings.notify_web_safe_html,
                )
                if wants_text:
                    text = details.get("text") or {}
                    enriched["text"] = {
                        **data["text"],
                        **{key: text[key] for key in _TEXT_KEYS if key in text},
                    }
                if wants_headers and isinstance(details.get("headers"), dict):
                    enriched["headers"] = details["headers"]
            if attachments:
                enriched["attachments"] = await self._attachments(event.account, data, settings)
        except MailwireError as error:
            log.warning(
                "webhooks.enrich_failed",
                account=event.account,
                event_id=event.event_id,
                error=str(error),
            )
            return payload
        return {**payload, "data": enriched}

    async def _attachments(
        self, account: str, data: dict[str, Any], settings: WebhookSettings
    ) -> list[Any]:
        found = []
        for attachment in data.get("attachments") or ():
            if not _fits(attachment, settings):
                found.append(attachment)
                continue
            download = await self._content.attachment(account, str(attachment["id"]))
            raw = b"".join([chunk async for chunk in download.chunks])
            found.append({**attachment, "content": base64.b64encode(raw).decode("ascii")})
        return found


def _fits(attachment: object, settings: WebhookSettings) -> bool:
    """Whether this attachment's content is wanted: asked for and within the cap."""
    if not settings.notify_attachments or not isinstance(attachment, dict):
        return False
    if not isinstance(attachment.get("id"), str):
        return False
    cap = settings.notify_attachment_size
    return cap is None or int(attachment.get("encodedSize") or 0) <= cap
