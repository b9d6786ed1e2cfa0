"""Webhook requests through the egress guard (`net.egress`).

Each attempt resolves the URL again (a retry must see the name's current DNS
records), refuses what the policy refuses, and POSTs to the pinned address on
one shared client, so plain-http connections to a receiver are reused.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from mailwire.errors import MailwireError
from mailwire.net.egress import (
    EgressFailed,
    EgressPolicy,
    EgressRefused,
    Resolver,
    Target,
    new_client,
    post,
    resolve,
)
from mailwire.webhooks.config import Header
from mailwire.webhooks.delivery import Refused, origin


class SendFailed(MailwireError):
    """The request was allowed but did not complete (timeout, connection, TLS...)."""


class GuardedSender:
    """`Sender` for `webhooks.delivery`: the egress guard, then one POST."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        client: httpx.AsyncClient | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._policy = policy
        self._client = client or new_client()
        self._own_client = client is None
        self._resolver = resolver

    async def send(
        self, url: str, body: bytes, headers: Sequence[Header], time_limit: float
    ) -> int:
        target = None
        try:
            target = await resolve(url, self._policy, resolver=self._resolver)
            response = await post(
                target, body=body, headers=dict(headers), timeout=time_limit, client=self._client
            )
        except EgressRefused as refused:
            raise Refused(_shown(refused.reason, target)) from None
        except EgressFailed as failed:
            raise SendFailed(f"{failed.kind}: {_shown(failed.reason, target)}") from None
        return response.status

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


def _shown(reason: str, target: Target | None) -> str:
    """A failure's text with the URL cut to its origin: the path or query of a webhook
    URL may carry a token, and this text is logged and shown by the queue API."""
    if target is None:
        return reason
    return reason.replace(target.url, origin(target.url))
