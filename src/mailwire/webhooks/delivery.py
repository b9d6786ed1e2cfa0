"""One delivery attempt of one webhook job: decide, sign, POST, classify.

A job (made by `webhooks.relay`) holds the event id, the account, the event
name, the formatted envelope, and for a custom route its id, target and
headers (and the mapped body, if its map function gave one). At delivery the
conditions are checked again, in the reference's order, and a job that fails
one ends as done without a request:

1. the account is gone (only `accountDeleted` is sent for a missing account);
2. `webhooksEnabled` is off (custom routes included);
3. a custom route is now disabled or has no target;
4. no target URL: route target, else the account's `webhooks`, else the global one;
5. default route: the event is not in `webhookEvents`, or `inboxNewOnly` hides it.

Then the request: the body as compact JSON (or the mapped body), headers as
`webhooks.signing` sets them, the URL through the egress guard. Outcomes:
2xx is done; a refused target or a 3xx fails the job at once (a redirect is
never followed); anything else (4xx, 5xx, timeout, connection error) fails
the attempt and the runner retries it with backoff, then dead-letters it.

Logs carry the job and event ids, the account, the status and the target's
origin; never the body, the URL's userinfo, the secret or header values.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from mailwire.domain.events import EventName
from mailwire.domain.webhook_routes import RouteError
from mailwire.jobs.model import Done, Fail, Job, Outcome, Retry
from mailwire.logs import get_logger
from mailwire.types import Clock, now_ms
from mailwire.webhooks.config import AccountHooks, Header, SettingsCache, custom_headers
from mailwire.webhooks.envelope import body_bytes
from mailwire.webhooks.relay import default_route_sends
from mailwire.webhooks.signing import RequestFacts, request_headers, split_userinfo

log = get_logger(__name__)

#: Per-attempt limit covering connect, response and body (the reference's 30 s).
DEFAULT_TIMEOUT_S = 30.0
#: How often the cached webhook settings of accounts are checked against the store
#: (one small query for all accounts), seconds: an account change reaches delivery
#: within this time.
ACCOUNT_TTL_S = 1.0
#: Accounts remembered at most; the memory is dropped whole when it is full.
MAX_CACHED_ACCOUNTS = 10_000


class Refused(Exception):
    """The egress guard refused the target: a permanent failure, never retried."""


class Sender(Protocol):
    """POSTs one request through the egress guard; returns the HTTP status.

    Raises `Refused` when the guard refuses the target; any other exception
    is a failed attempt (timeout, connection error...).
    """

    async def send(
        self, url: str, body: bytes, headers: Sequence[Header], time_limit: float
    ) -> int: ...


class DeliveryJob(Protocol):
    @property
    def id(self) -> int | str: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...
    @property
    def attempts_made(self) -> int: ...
    @property
    def created_at(self) -> int: ...


class AccountRecord(Protocol):
    @property
    def settings(self) -> Mapping[str, Any]: ...


class AccountLookup(Protocol):
    async def get(self, account_id: str) -> AccountRecord | None: ...

    async def config_signature(self) -> object:
        """A value that changes whenever any account is created, deleted or edited."""
        ...


class RouteRecord(Protocol):
    @property
    def enabled(self) -> bool: ...
    @property
    def target_url(self) -> str | None: ...
    @property
    def custom_headers(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def error(self) -> RouteError | None: ...


class RouteLookup(Protocol):
    """The route store: current route settings, and its error flag (`webhookErrorFlag`)."""

    async def get(self, route_id: str) -> RouteRecord | None: ...

    async def record_error(self, route_id: str, error: RouteError) -> None: ...

    async def clear_error(self, route_id: str) -> None: ...


Kind = Literal["sent", "skipped", "retry", "fail"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one attempt ended: sent (2xx), skipped (a check said no), retry, fail."""

    kind: Kind
    detail: str
    status: int | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    route_id: str | None
    custom: tuple[Header, ...]
    account: tuple[Header, ...]
    #: The route's error flag was set before this attempt.
    flagged: bool = False


def origin(url: str) -> str:
    """`scheme://host:port` of a URL, for logs (no userinfo, path or query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{parts.port}" if parts.port else "")


class Delivery:
    """Delivers webhook jobs; `attempt(job)` is one attempt (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: SettingsCache,
        accounts: AccountLookup,
        sender: Sender,
        routes: RouteLookup | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        clock: Clock = now_ms,
    ) -> None:
        self._settings = settings
        self._accounts = accounts
        self._sender = sender
        self._routes = routes
        self._timeout = timeout
        self._clock = clock
        self._hooks: dict[str, AccountHooks | None] = {}
        self._hooks_signature: object = None
        self._hooks_checked_at = float("-inf")
        self._hooks_checking = asyncio.Lock()

    async def handle(self, job: Job) -> Outcome:
        """The job runner's handler: one attempt, as the runner's outcome."""
        result = await self.attempt(job)
        if result.kind == "retry":
            return Retry(result.detail)
        if result.kind == "fail":
            return Fail(result.detail)
        return Done()

    async def attempt(self, job: DeliveryJob) -> Attempt:
        payload = job.payload
        target = await self._target(payload)
        if isinstance(target, Attempt):
            return target
        body = body_bytes(payload["body"] if "body" in payload else payload.get("payload"))
        split = split_userinfo(target.url)
        facts = RequestFacts(
            job_id=str(job.id),
            # The job store counts the current claim in `attempts_made`; the header
            # counts earlier attempts only ("0" on the first try).
            attempts_made=max(0, job.attempts_made - 1),
            queued_seconds=(self._clock() - job.created_at) // 1000,
            event_id=_event_id(payload),
            authorization=split.authorization,
            route_id=target.route_id,
            custom=target.custom,
            account=target.account,
        )
        headers = request_headers(body, await self._settings.secret(), facts)
        result = await self._post(split.url, body, headers)
        # A success per event is routine (debug); a failure is worth an operator's eye.
        report = log.debug if result.kind == "sent" else log.info
        report(
            "webhooks.attempt",
            job=str(job.id),
            event_id=payload.get("eventId"),
            account=payload.get("account"),
            webhook_event=payload.get("event"),
            route=target.route_id,
            target=origin(split.url),
            attempts_made=job.attempts_made,
            outcome=result.kind,
            status=result.status,
            detail=result.detail,
        )
        await self._flag_route(target, result)
        return result

    async def _flag_route(self, target: _Target, result: Attempt) -> None:
        """A route's delivery failure sets its error flag; a success clears it."""
        if self._routes is None or target.route_id is None:
            return
        if result.kind == "sent" and target.flagged:
            await self._routes.clear_error(target.route_id)
        elif result.kind in ("retry", "fail"):
            error = RouteError(kind="delivery", message=result.detail, at=self._clock())
            await self._routes.record_error(target.route_id, error)

    async def _post(self, url: str, body: bytes, headers: Sequence[Header]) -> Attempt:
        try:
            async with asyncio.timeout(self._timeout):
                status = await self._sender.send(url, body, headers, self._timeout)
        except Refused as error:
            return Attempt("fail", f"target refused: {error}")
        except TimeoutError:
            return Attempt("retry", f"no answer within {self._timeout:g} s")
        except Exception as error:  # noqa: BLE001 - any transport failure is a failed attempt
            return Attempt("retry", f"request failed: {type(error).__name__}: {error}")
        if 200 <= status < 300:
            return Attempt("sent", "delivered", status)
        if 300 <= status < 400:
            return Attempt("fail", f"redirect ({status}) not followed", status)
        return Attempt("retry", f"receiver answered {status}", status)

    async def _target(self, payload: Mapping[str, Any]) -> _Target | Attempt:
        """The URL and headers of this job, or the check that stops it (see module doc)."""
        account_id = str(payload.get("account"))
        hooks = AccountHooks()
        if payload.get("event") != EventName.ACCOUNT_DELETED:
            found = await self._account_hooks(account_id)
            if found is None:
                return Attempt("skipped", "account is gone")
            hooks = found
        settings = await self._settings.get()
        if not settings.enabled:
            return Attempt("skipped", "webhooks are disabled")
        route = payload.get("route")
        if isinstance(route, Mapping):
            return await self._route_target(route, hooks)
        url = hooks.url or settings.url
        if url is None:
            return Attempt("skipped", "no webhook URL is set")
        envelope = payload.get("payload")
        if not isinstance(envelope, Mapping) or not default_route_sends(settings, envelope):
            return Attempt("skipped", "the default route does not send this event")
        return _Target(url, None, settings.headers, hooks.headers)

    async def _account_hooks(self, account_id: str) -> AccountHooks | None:
        """The account's URL and headers, None when it is gone. Read once and kept
        while the accounts' signature stays the same (checked at most once per
        `ACCOUNT_TTL_S` for all accounts): a read per delivery was a third of an
        attempt's cost, and a per-account expiry missed whenever an account's events
        came less than once per expiry."""
        await self._check_accounts()
        if account_id in self._hooks:
            return self._hooks[account_id]
        account = await self._accounts.get(account_id)
        hooks = None if account is None else AccountHooks.from_settings(account.settings)
        if len(self._hooks) >= MAX_CACHED_ACCOUNTS:
            self._hooks.clear()
        self._hooks[account_id] = hooks
        return hooks

    async def _check_accounts(self) -> None:
        if time.monotonic() - self._hooks_checked_at < ACCOUNT_TTL_S:
            return
        async with self._hooks_checking:
            if time.monotonic() - self._hooks_checked_at < ACCOUNT_TTL_S:
                return  # another delivery checked while this one waited
            signature = await self._accounts.config_signature()
            if signature != self._hooks_signature:
                self._hooks.clear()
                self._hooks_signature = signature
            self._hooks_checked_at = time.monotonic()

    async def _route_target(
        self, route: Mapping[str, Any], hooks: AccountHooks
    ) -> _Target | Attempt:
        route_id = str(route.get("id"))
        url = route.get("url")
        flagged = False
        headers = custom_headers(
            [{"key": pair[0], "value": pair[1]} for pair in route.get("headers") or ()]
        )
        if self._routes is not None:
            current = await self._routes.get(route_id)
            if current is None or not current.enabled or not current.target_url:
                return Attempt("skipped", "the route is gone, disabled or has no target")
            url, headers = current.target_url, tuple(current.custom_headers)
            flagged = current.error is not None
        if not isinstance(url, str) or not url:
            return Attempt("skipped", "the route has no target")
        return _Target(url, route_id, headers, hooks.headers, flagged)


def _event_id(payload: Mapping[str, Any]) -> str | None:
    """The event id header: the job's, unless a mapped body left it out."""
    if "body" in payload:
        body = payload["body"]
        value = body.get("eventId") if isinstance(body, Mapping) else None
        return str(value) if value is not None else None
    value = payload.get("eventId")
    return str(value) if value is not None else None
