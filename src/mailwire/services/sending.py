"""Delivering queued messages: the `submit` queue's job handler.

Theory of operation. A job names a queue entry (`store.send_queue`). Its
attempt marks the entry `sending`, resolves the route (the gateway the
submit named, else the account's SMTP server with its stored password), and
hands the stored message to `backends.smtp.delivery`. Then, in one
transaction each:

- accepted: the entry becomes `sent` with `messageSent`;
- refused for now (4xx, 503, connection or TLS failure, timeout) with
  attempts left: back to `queued` with `messageDeliveryError` (its
  `nextAttempt` is the retry time, which the job gets as its delay);
- refused for good (other 5xx), or no attempt left: `failed` with
  `messageDeliveryError` and `messageFailed`.

After a success, the message a reply or forward referenced is flagged
\\Answered or $Forwarded, a sent draft is removed from the Drafts folder, and a
copy goes to the Sent folder (`copy`, default on, to
`sentMailPath` or the folder with the \\Sent special use) on IMAP accounts
whose provider does not file sent mail itself (Gmail's and Microsoft's SMTP
servers do). The copy is best effort: the message is sent whatever happens to
it, and a failed copy is logged, not retried.

Connections. Deliveries to the same server with the same login reuse up to
two idle sessions (`backends.smtp.delivery.SmtpPool`), each checked with NOOP
before use and closed after 30 idle seconds or 100 messages.

Crashes. An entry found `sending` when its job runs again was being sent
when a process stopped: the server may or may not have accepted it. Such an
entry is sent again (at least once, with the same Message-ID, which lets
receiving systems discard a duplicate); the window is the time between the
end of DATA and the commit of `sent`, a few milliseconds per message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from mailwire.backends.smtp.delivery import (
    Dsn,
    SmtpDeliveryError,
    SmtpPool,
    SmtpRoute,
    deliver,
)
from mailwire.domain.accounts import Account
from mailwire.domain.sending import (
    QueuedSend,
    SendState,
    delivery_error,
    message_failed,
    message_sent,
)
from mailwire.errors import MailwireError
from mailwire.jobs.model import Done, Fail, Job, Outcome, Retry
from mailwire.jobs.runner import retry_delay_ms
from mailwire.logs import get_logger
from mailwire.services.uploads import Upload, UploadService
from mailwire.store.store import Store
from mailwire.types import Clock, now_ms

log = get_logger(__name__)

#: SMTP hosts whose provider files sent mail in the Sent folder itself.
SELF_FILING_HOSTS = ("gmail.com", "googlemail.com", "office365.com", "outlook.com", "hotmail.com")


class GatewayRoutes(Protocol):
    """The gateway store, as sending needs it."""

    async def route(self, gateway_id: str) -> SmtpRoute | None: ...

    async def record_delivery(
        self, gateway_id: str, *, ok: bool, error: Mapping[str, Any] | None = None
    ) -> None: ...


class Flagger(Protocol):
    """The message-change service, as sending needs it (`PUT`/`DELETE /message`)."""

    async def update(
        self, account_id: str, message_id: str, update: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def delete(self, account_id: str, message_id: str, *, force: bool) -> dict[str, Any]: ...


class SentCopier(Protocol):
    async def copy_to_sent(self, account: Account, entry: QueuedSend, raw: bytes) -> None: ...


class SendingService:
    """Handler of the `submit` queue; see the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        gateways: GatewayRoutes | None = None,
        sent_copies: SentCopier | None = None,
        flagger: Flagger | None = None,
        pool: SmtpPool | None = None,
        clock: Clock = now_ms,
    ) -> None:
        self._store = store
        self._pool = pool
        self._gateways = gateways
        self._sent_copies = sent_copies
        self._flagger = flagger
        self._clock = clock

    async def handle(self, job: Job) -> Outcome:
        queue_id = str(job.payload.get("queueId"))
        entry = await self._store.send_queue.start_attempt(queue_id)
        if entry is None:
            return Done()  # cancelled or finished meanwhile: nothing to send
        raw = await self._store.send_queue.raw(queue_id)
        account = await self._store.accounts.get(entry.account)
        if account is None or raw is None:
            return await self._give_up(entry, job, "the account or the message is gone", None)
        try:
            route = await self._route(account, entry)
            delivered = await deliver(
                route,
                entry.envelope.sender,
                entry.envelope.recipients,
                raw,
                dsn=_dsn(entry.options.get("dsn")),
                pool=self._pool,
            )
        except SmtpDeliveryError as error:
            await self._record_gateway(entry, error)
            if error.temporary and job.attempts_made < job.max_attempts:
                return await self._retry_later(entry, job, error)
            return await self._give_up(entry, job, str(error), error)
        except MailwireError as error:  # no route: settings or credentials missing
            return await self._give_up(entry, job, str(error), None)
        progress: dict[str, Any] = {
            "status": "smtp-completed",
            "response": delivered.answer.response,
            "messageId": entry.message_id,
        }
        if delivered.refused:
            progress["refused"] = dict(delivered.refused)
        await self._store.send_queue.finish(
            queue_id,
            SendState.SENT,
            progress=progress,
            events=[message_sent(entry, delivered.answer)],
        )
        await self._record_gateway(entry, None)
        log.info(
            "sending.sent",
            account=entry.account,
            queue_id=queue_id,
            recipients=len(entry.envelope.recipients),
            attempt=job.attempts_made,
        )
        await self._copy(account, entry, raw)
        await self._flag_reference(entry)
        await self._remove_draft(entry)
        return Done()

    async def aclose(self) -> None:
        """Close the pooled SMTP connections (on shutdown)."""
        if self._pool is not None:
            await self._pool.close()

    async def _route(self, account: Account, entry: QueuedSend) -> SmtpRoute:
        if entry.gateway is not None:
            route = None if self._gateways is None else await self._gateways.route(entry.gateway)
            if route is None:
                raise MailwireError(f"the gateway {entry.gateway!r} no longer exists")
            return route
        smtp = account.smtp()
        if smtp is None:
            raise MailwireError("the account has no SMTP server")
        credentials = await self._store.accounts.credentials(account.id)
        return SmtpRoute(
            host=smtp.host,
            port=smtp.port,
            secure=smtp.secure,
            user=smtp.user,
            password=credentials.get("smtp.pass"),
            access_token=credentials.get("smtp.accessToken"),
            reject_unauthorized=smtp.tls.reject_unauthorized,
            min_tls=smtp.tls.min_version,
        )

    async def _retry_later(self, entry: QueuedSend, job: Job, error: SmtpDeliveryError) -> Outcome:
        delay = retry_delay_ms(job.attempts_made)
        await self._store.send_queue.requeue(
            entry.queue_id,
            progress=_error_progress(error),
            events=[
                delivery_error(
                    entry,
                    str(error),
                    answer=error.answer,
                    error_code=error.error_code,
                    attempts_made=job.attempts_made,
                    next_attempt=self._clock() + delay,
                )
            ],
        )
        log.info(
            "sending.retry",
            account=entry.account,
            queue_id=entry.queue_id,
            attempt=job.attempts_made,
            error=str(error),
        )
        return Retry(str(error), delay_ms=delay)

    async def _give_up(
        self, entry: QueuedSend, job: Job, error: str, failure: SmtpDeliveryError | None
    ) -> Outcome:
        events = [
            delivery_error(
                entry,
                error,
                answer=None if failure is None else failure.answer,
                error_code=None if failure is None else failure.error_code,
                attempts_made=job.attempts_made,
                next_attempt=None,
            ),
            message_failed(entry, error),
        ]
        progress = {"status": "error", "error": {"message": error}}
        if failure is not None:
            progress = _error_progress(failure)
        await self._store.send_queue.finish(
            entry.queue_id, SendState.FAILED, progress=progress, events=events
        )
        log.warning("sending.failed", account=entry.account, queue_id=entry.queue_id, error=error)
        return Fail(error)

    async def _record_gateway(self, entry: QueuedSend, error: SmtpDeliveryError | None) -> None:
        if entry.gateway is None or self._gateways is None:
            return
        details = None
        if error is not None:
            details = {"message": str(error)}
            if error.answer is not None:
                details["response"] = error.answer.response
        try:
            await self._gateways.record_delivery(entry.gateway, ok=error is None, error=details)
        except MailwireError as failure:  # counters only: never fail a send for them
            log.warning("sending.gateway_record_failed", gateway=entry.gateway, error=str(failure))

    async def _copy(self, account: Account, entry: QueuedSend, raw: bytes) -> None:
        if self._sent_copies is None or not wants_sent_copy(account, entry):
            return
        try:
            await self._sent_copies.copy_to_sent(account, entry, raw)
        except MailwireError as error:
            log.warning(
                "sending.sent_copy_failed",
                account=entry.account,
                queue_id=entry.queue_id,
                error=str(error),
            )

    async def _flag_reference(self, entry: QueuedSend) -> None:
        """Mark the message this one answered (\\Answered) or forwarded ($Forwarded)."""
        reference = entry.options.get("reference")
        if self._flagger is None or not isinstance(reference, Mapping):
            return
        flag = "$Forwarded" if reference.get("action") == "forward" else "\\Answered"
        try:
            await self._flagger.update(
                entry.account, str(reference.get("message")), {"flags": {"add": [flag]}}
            )
        except MailwireError as error:
            log.warning(
                "sending.reference_flag_failed",
                account=entry.account,
                queue_id=entry.queue_id,
                error=str(error),
            )

    async def _remove_draft(self, entry: QueuedSend) -> None:
        """A sent draft leaves the Drafts folder (deleted for good, as it was sent)."""
        draft = entry.options.get("draft")
        if self._flagger is None or not isinstance(draft, str):
            return
        try:
            await self._flagger.delete(entry.account, draft, force=True)
        except MailwireError as error:
            log.warning(
                "sending.draft_removal_failed",
                account=entry.account,
                queue_id=entry.queue_id,
                error=str(error),
            )


def wants_sent_copy(account: Account, entry: QueuedSend) -> bool:
    """Copy to Sent: asked for (default yes), an IMAP account, a server that does not
    file sent mail itself (only when sending through the account's own server)."""
    if entry.options.get("copy") is False or account.imap() is None:
        return False
    smtp = account.smtp()
    if entry.gateway is None and smtp is not None:
        host = smtp.host.lower().rstrip(".")
        if any(host == known or host.endswith("." + known) for known in SELF_FILING_HOSTS):
            return False
    return True


def _dsn(value: object) -> Dsn | None:
    if not isinstance(value, Mapping):
        return None
    notify = value.get("notify") or ()
    return Dsn(
        ret=value.get("return"),
        envelope_id=value.get("id"),
        notify=tuple(str(n) for n in notify)
        if isinstance(notify, list | tuple)
        else (str(notify),),
        recipient=value.get("recipient"),
    )


def _error_progress(error: SmtpDeliveryError) -> dict[str, Any]:
    details: dict[str, Any] = {"message": str(error)}
    if error.error_code is not None:
        details["code"] = error.error_code
    if error.answer is not None:
        details["response"] = error.answer.response
        if error.answer.code is not None:
            details["statusCode"] = error.answer.code
    return {"status": "error", "error": details}


class StoreGateways:
    """`GatewayRoutes` and the submit check on the gateway store."""

    def __init__(self, store: Store) -> None:
        self._gateways = store.gateways

    async def exists(self, gateway_id: str) -> bool:
        return await self._gateways.get(gateway_id) is not None

    async def route(self, gateway_id: str) -> SmtpRoute | None:
        login = await self._gateways.get_with_password(gateway_id)
        if login is None:
            return None
        return SmtpRoute(
            host=login.host,
            port=login.port,
            secure=login.secure,
            user=login.user,
            password=login.password,
        )

    async def record_delivery(
        self, gateway_id: str, *, ok: bool, error: Mapping[str, Any] | None = None
    ) -> None:
        await self._gateways.record_delivery(gateway_id, ok=ok, error=error)


class UploadSentCopier:
    """Files a sent message in the account's Sent folder through the upload service
    (APPEND with \\Seen, indexed at once); needs the account's worker in this process."""

    def __init__(self, uploads: UploadService) -> None:
        self._uploads = uploads

    async def copy_to_sent(self, account: Account, entry: QueuedSend, raw: bytes) -> None:
        path = str(entry.options.get("sentMailPath") or "\\Sent")
        await self._uploads.upload(account.id, Upload(path=path, raw=raw, flags=("\\Seen",)))
