"""Submitting a message for delivery (`POST /v1/account/{account}/submit`).

Theory of operation. The message is built now, once: from fields with the
MIME builder after `services.compose` completed them (stored attachments,
the `reference` answered or forwarded, a Message-ID), or taken whole from
`raw` with the fields sent beside it replacing its header's. It is queued
with its SMTP envelope and a `submit` job (`store.send_queue`); the job
runner delivers it later (`services.sending`). A 200 answer means queued,
not sent.

Envelope. MAIL FROM is `envelope.from`, else the From address; RCPT TO is
`envelope.to`, else every To, Cc and Bcc address once. Bcc never appears in
the sent header (RFC 5322 section 3.6.3 leaves it to the sender; recipients
must not see each other's blind copies).

Checks that end in 400 with nothing queued: no sender, no recipient, a
`sendAt` more than `PAST_TOLERANCE_MS` in the past or more than
`MAX_SCHEDULE_AHEAD_MS` ahead, an unknown gateway, an account with no SMTP
server and no gateway, and everything the builder refuses (header
injection, sizes).

Idempotency. With an Idempotency-Key, the first submit's answer is stored
with the entry; a later submit of the same account with the same key and the
same request gets that answer back (`idempotency.status: HIT`) and queues
nothing; the same key with a different request is refused (409), since
replaying an answer for another message would hide that it was never sent.

`dryRun` builds the message and returns it (base64 `preview`) without
queueing anything.

Content. With `template`, the stored template's subject, text, html and
previewText are the content, each replaced by the request's own field when
it gives one; with a template or `render.params`, the content is rendered
with Handlebars (`services.templates`; `render: false` sends it as written).
`previewText` goes at the top of the html in a hidden block. `mailMerge`
queues one message per entry, each to its own recipient, rendered with its
own `params`, with its own Message-ID and send time when given; an entry that
fails (a render error, a bad address) is reported in its place and the others
are queued all the same.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from html import escape
from typing import Any, Protocol

from mailwire.domain.messages import iso_time
from mailwire.domain.sending import (
    DEFAULT_DELIVERY_ATTEMPTS,
    MAX_SCHEDULE_AHEAD_MS,
    PENDING_STATES,
    Envelope,
    NewSend,
    QueuedSend,
    recipients_of,
)
from mailwire.domain.templates import TemplateContent
from mailwire.errors import ConflictError, InputError, NotFoundError
from mailwire.protocols.mime.build import Draft, build_message, generate_message_id
from mailwire.protocols.mime.headers import Address
from mailwire.services.compose import (
    MessageComposer,
    Reference,
    StoredAttachment,
    overridden,
    without_fields,
)
from mailwire.services.templates import ContentSource, TemplateService
from mailwire.store.send_queue import Attempts, QueuePage
from mailwire.store.store import Store
from mailwire.types import Clock, now_ms

#: A `sendAt` this far in the past (ms) is taken as "now" (clocks differ a little).
PAST_TOLERANCE_MS = 5 * 60 * 1000
#: Bytes of a queue id, in hex twice as many characters.
QUEUE_ID_BYTES = 10


class GatewayLookup(Protocol):
    async def exists(self, gateway_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Submission:
    """What `POST /submit` asks for, in the service's terms."""

    draft: Draft = field(default_factory=Draft)
    raw: bytes | None = None
    stored_attachments: tuple[StoredAttachment, ...] = ()
    reference: Reference | None = None
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()
    send_at: int | None = None
    delivery_attempts: int | None = None
    gateway: str | None = None
    copy: bool | None = None
    sent_mail_path: str | None = None
    dsn: Mapping[str, Any] | None = None
    dry_run: bool = False
    idempotency_key: str | None = None
    #: A digest of the request, to tell a replay from another request with the same key.
    request_hash: str | None = None
    #: A stored template to take the content from (the request's own fields win).
    template: str | None = None
    #: Render the content with Handlebars (None: only when a template or params are given).
    render: bool | None = None
    params: Mapping[str, Any] | None = None
    preview_text: str | None = None
    mail_merge: tuple[MergeEntry, ...] = ()
    #: The stored draft this message is (removed from Drafts once sent).
    draft_message: str | None = None


@dataclass(frozen=True, slots=True)
class MergeEntry:
    """One recipient of a mail merge: its own address, values and optionally
    Message-ID and send time."""

    to: Address
    params: Mapping[str, Any] | None = None
    message_id: str | None = None
    send_at: int | None = None


@dataclass(frozen=True, slots=True)
class _Built:
    message: bytes
    message_id: str
    sender: str | None
    recipients: tuple[str, ...]
    subject: str | None
    referenced: dict[str, Any] | None = None


class SubmitService:
    def __init__(
        self,
        store: Store,
        composer: MessageComposer,
        *,
        gateways: GatewayLookup | None = None,
        templates: TemplateService | None = None,
        clock: Clock = now_ms,
    ) -> None:
        self._store = store
        self._composer = composer
        self._gateways = gateways
        self._templates = templates
        self._clock = clock

    async def submit(self, account_id: str, submission: Submission) -> dict[str, Any]:
        account = await self._store.accounts.get(account_id)
        if account is None:
            raise NotFoundError("No account has this id", code="AccountNotFound")
        if submission.idempotency_key is not None:
            replayed = await self._replay(account_id, submission)
            if replayed is not None:
                return replayed
        await self._check_route(account.settings, submission.gateway)
        now = self._clock()
        content = await self._content(account_id, submission)
        if not submission.mail_merge:
            draft = await _filled(submission.draft, content, submission.params, submission)
            return await self._queue_one(
                account_id,
                account.email,
                account.name,
                dataclasses.replace(submission, draft=draft),
                _send_at(submission.send_at, now),
            )
        results = []
        for entry in submission.mail_merge:
            one = dataclasses.replace(submission.draft, to=(entry.to,), message_id=entry.message_id)
            shown = {"address": entry.to.address}
            if entry.to.name:
                shown["name"] = entry.to.name
            try:
                draft = await _filled(one, content, entry.params, submission)
                send_at = _send_at(entry.send_at or submission.send_at, now)
                answer = await self._queue_one(
                    account_id,
                    account.email,
                    account.name,
                    dataclasses.replace(submission, draft=draft, idempotency_key=None),
                    send_at,
                )
            except InputError as error:
                results.append({"success": False, "to": shown, "error": str(error)})
                continue
            merged = {"success": True, "to": shown, "messageId": answer.get("messageId")}
            for key in ("queueId", "sendAt", "preview"):
                if key in answer:
                    merged[key] = answer[key]
            results.append(merged)
        return {"response": "Queued for delivery", "mailMerge": results}

    async def _content(self, account_id: str, submission: Submission) -> ContentSource | None:
        """The Handlebars content of the request, or None when nothing is rendered."""
        wants_render = submission.render
        if wants_render is None:
            wants_render = submission.template is not None or submission.params is not None
        if submission.template is None and not wants_render:
            return None
        if self._templates is None:
            raise InputError("Templates are not available here", key="template")
        draft = submission.draft
        own = TemplateContent(draft.subject, draft.text, draft.html, submission.preview_text)
        return await self._templates.for_sending(
            account_id, own, template_id=submission.template, render=wants_render
        )

    async def _queue_one(
        self,
        account_id: str,
        email: str | None,
        name: str | None,
        submission: Submission,
        send_at: int,
    ) -> dict[str, Any]:
        """Build one message and queue it (or, for a dry run, return it)."""
        built = await self._build(account_id, email, name, submission)
        answer: dict[str, Any] = {}
        if built.referenced is not None:
            answer["reference"] = built.referenced
        message, message_id = built.message, built.message_id
        envelope = Envelope(
            submission.envelope_from or built.sender or "",
            tuple(submission.envelope_to) or built.recipients,
        )
        if not envelope.sender:
            raise InputError("The message has no sender: give from or envelope.from", key="from")
        if not envelope.recipients:
            raise InputError(
                "The message has no recipients: give to, cc, bcc or envelope.to", key="to"
            )
        answer.update(messageId=message_id)
        if submission.dry_run:
            answer.update(
                response="Message built, not queued (dry run)",
                preview=base64.b64encode(message).decode(),
                envelope=envelope.as_dict(),
            )
            return answer
        queue_id = secrets.token_hex(QUEUE_ID_BYTES)
        answer.update(response="Queued for delivery", queueId=queue_id, sendAt=iso_time(send_at))
        if submission.idempotency_key is not None:
            answer["idempotency"] = {"key": submission.idempotency_key, "status": "MISS"}
        queued = await self._store.send_queue.enqueue(
            NewSend(
                queue_id=queue_id,
                account=account_id,
                message_id=message_id,
                subject=built.subject,
                envelope=envelope,
                raw=message,
                send_at=send_at,
                max_attempts=submission.delivery_attempts or DEFAULT_DELIVERY_ATTEMPTS,
                gateway=submission.gateway,
                options=_options(submission, built.referenced),
                idempotency_key=submission.idempotency_key,
                request_hash=submission.request_hash,
            ),
            answer=answer,
        )
        if not queued.created:  # another submit with this key won the race
            return _replayed(queued.entry.answer, queued.entry.request_hash, submission)
        return answer

    async def submit_draft(
        self, account_id: str, message_id: str, submission: Submission
    ) -> dict[str, Any]:
        """Queue a stored draft (in the Drafts folder, or flagged \\Draft) as it is;
        once sent it leaves the Drafts folder (`services.sending`)."""
        found = await self._composer.content.locate(account_id, message_id)
        is_draft = (found.folder.special_use or "").lower() == "\\drafts" or any(
            flag.lower() == "\\draft" for flag in found.record.flags
        )
        if not is_draft:
            raise InputError(
                "The message is not a draft (not in Drafts, not flagged \\Draft)", key="message"
            )
        raw = await self._composer.read_source(account_id, message_id)
        answer = await self.submit(
            account_id, dataclasses.replace(submission, raw=raw, draft_message=message_id)
        )
        answer.pop("reference", None)
        return answer

    async def pending(self, *, page: int, page_size: int) -> QueuePage:
        """Messages still waiting for delivery (`GET /v1/outbox`)."""
        return await self._store.send_queue.pending(page=page, page_size=page_size)

    async def entry(self, queue_id: str) -> tuple[QueuedSend, Attempts] | None:
        """One message of the queue, while it waits or is being sent."""
        found = await self._store.send_queue.get(queue_id)
        if found is None or found.state not in PENDING_STATES:
            return None
        return found, await self._store.send_queue.attempts(queue_id)

    async def cancel(self, queue_id: str) -> bool:
        """Take a message out of the queue before it is sent (`DELETE /v1/outbox/...`)."""
        return await self._store.send_queue.cancel(queue_id)

    async def _build(
        self, account_id: str, email: str | None, name: str | None, submission: Submission
    ) -> _Built:
        if submission.raw is not None:
            message = overridden(submission.raw, _without_bcc(submission.draft))
            header = _header(message)
            message = without_fields(message, ["bcc"])  # its addresses go in the envelope
            message_id = header.get("message-id")
            if not message_id:
                message_id = generate_message_id(submission.draft.from_)
                message = f"Message-ID: {message_id}\r\n".encode() + message
            sender, recipients = _raw_addresses(header, submission.draft)
            return _Built(message, message_id, sender, recipients, header.get("subject"))
        draft, referenced = await self._composer.compose(
            account_id,
            _with_sender(submission.draft, email, name),
            stored_attachments=submission.stored_attachments,
            reference=submission.reference,
        )
        return _Built(
            build_message(draft, include_bcc=False),
            draft.message_id or "",
            draft.from_.address if draft.from_ else None,
            recipients_of(*(_addresses(group) for group in (draft.to, draft.cc, draft.bcc))),
            draft.subject,
            referenced,
        )

    async def _replay(self, account_id: str, submission: Submission) -> dict[str, Any] | None:
        earlier = await self._store.send_queue.find_by_key(account_id, submission.idempotency_key)
        if earlier is None:
            return None
        return _replayed(earlier.answer, earlier.request_hash, submission)

    async def _check_route(self, settings: Mapping[str, Any], gateway: str | None) -> None:
        if gateway is not None:
            if self._gateways is None or not await self._gateways.exists(gateway):
                raise NotFoundError("No gateway has this id", code="GatewayNotFound")
            return
        if not isinstance(settings.get("smtp"), Mapping):
            raise InputError(
                "The account has no SMTP server to send with; give a gateway", key="gateway"
            )


def _replayed(
    answer: Mapping[str, Any] | None, stored_hash: str | None, submission: Submission
) -> dict[str, Any]:
    if answer is None or stored_hash != submission.request_hash:
        raise ConflictError(
            "This Idempotency-Key was used for a different request",
            code="IdempotencyKeyReused",
        )
    replay = dict(answer)
    replay["idempotency"] = {"key": submission.idempotency_key, "status": "HIT"}
    return replay


async def _filled(
    draft: Draft,
    content: ContentSource | None,
    params: Mapping[str, Any] | None,
    submission: Submission,
) -> Draft:
    """`draft` with its subject, text and html from the rendered content, and the
    preview text hidden at the top of the html."""
    preview = submission.preview_text
    if content is not None:
        rendered = await content.render(params)
        draft = dataclasses.replace(
            draft, subject=rendered.subject, text=rendered.text, html=rendered.html
        )
        preview = rendered.preview_text
    if preview and draft.html is not None:
        draft = dataclasses.replace(draft, html=with_preview(draft.html, preview))
    return draft


#: Hidden in the body, shown by mail clients beside the subject in the list.
_PREVIEW = (
    '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all"'
    ' aria-hidden="true">{}</div>'
)
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def with_preview(html: str, preview: str) -> str:
    """`html` with `preview` (escaped) in a hidden block right after `<body>`, or
    first when there is no body tag."""
    block = _PREVIEW.format(escape(preview))
    found = _BODY_TAG.search(html)
    if found is None:
        return block + html
    return html[: found.end()] + block + html[found.end() :]


def _options(submission: Submission, referenced: Mapping[str, Any] | None) -> dict[str, Any]:
    """How the send and its Sent copy go, stored with the entry; and the message it
    answers or forwards, to be flagged once it is sent."""
    options: dict[str, Any] = {}
    reference = submission.reference
    if reference is not None and referenced is not None and referenced.get("success"):
        options["reference"] = {"message": reference.message, "action": reference.action}
    if submission.copy is not None:
        options["copy"] = submission.copy
    if submission.sent_mail_path:
        options["sentMailPath"] = submission.sent_mail_path
    if submission.dsn:
        options["dsn"] = dict(submission.dsn)
    if submission.draft_message:
        options["draft"] = submission.draft_message
    return options


def _send_at(requested: int | None, now: int) -> int:
    if requested is None:
        return now
    if requested < now - PAST_TOLERANCE_MS:
        raise InputError("sendAt is in the past", key="sendAt")
    if requested > now + MAX_SCHEDULE_AHEAD_MS:
        raise InputError("sendAt is more than a year ahead", key="sendAt")
    return max(requested, now)


def _with_sender(draft: Draft, email: str | None, name: str | None) -> Draft:
    """The account's own address as From when the draft names none."""
    if draft.from_ is not None or not email:
        return draft
    return dataclasses.replace(draft, from_=Address(email, name or None))


def _without_bcc(draft: Draft) -> Draft:
    return dataclasses.replace(draft, bcc=())


def _addresses(group: tuple[Address, ...]) -> list[str]:
    return [address.address for address in group]


def _header(message: bytes) -> Mapping[str, str]:
    parsed = BytesHeaderParser().parsebytes(message)
    return {name.lower(): str(value) for name, value in parsed.items()}


def _raw_addresses(header: Mapping[str, str], draft: Draft) -> tuple[str | None, tuple[str, ...]]:
    """Sender and recipients of a raw message: its own header fields, plus any Bcc
    sent beside it (which `_without_bcc` kept out of the header)."""
    senders = [address for _, address in getaddresses([header.get("from", "")]) if address]
    groups = [
        [address for _, address in getaddresses([header.get(name, "")]) if address]
        for name in ("to", "cc", "bcc")
    ]
    return (senders[0] if senders else None), recipients_of(*groups, _addresses(draft.bcc))
