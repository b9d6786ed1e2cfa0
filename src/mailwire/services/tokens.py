"""Access tokens as a use case: issue, list, inspect, revoke, and authenticate a request.

A token is 32 random bytes (64 hex characters), shown once. Only its SHA-256
is stored and used as its public id: a leaked database grants nothing, and
lookups never compare secret material in SQL. The final comparison is done in
constant time all the same.
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass, replace

from mailwire.domain.tokens import (
    TOKEN_BYTES,
    Caller,
    Operation,
    Permissions,
    RateLimit,
    Restrictions,
    Scope,
    TokenRecord,
    authorize,
    is_well_formed,
    token_id,
)
from mailwire.errors import AuthenticationError, InputError, NotFoundError, RateLimitedError
from mailwire.logs import get_logger
from mailwire.store.store import Store
from mailwire.store.tokens import TokenPage
from mailwire.types import Clock, now_ms

log = get_logger(__name__)

MAX_DESCRIPTION_LENGTH = 1024
MAX_ACCOUNT_LENGTH = 256


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What a caller asks for when issuing a token."""

    description: str
    scopes: frozenset[Scope]
    account: str | None = None
    restrictions: Restrictions | None = None
    permissions: Permissions | None = None
    metadata: str | None = None
    ip: str | None = None
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    record: TokenRecord


class TokenService:
    def __init__(self, store: Store, *, clock: Clock = now_ms) -> None:
        self._tokens = store.tokens
        self._clock = clock

    async def issue(
        self,
        request: TokenRequest,
        *,
        remote_address: str | None = None,
        allow_unrestricted: bool = False,
    ) -> IssuedToken:
        """Mint a token. An instance-wide token with no `permissions` can reach every
        account and every endpoint; only the operator (the CLI) may mint one."""
        now = self._clock()
        _validate(request, now=now, allow_unrestricted=allow_unrestricted)
        token = secrets.token_hex(TOKEN_BYTES)
        record = TokenRecord(
            id=token_id(token),
            description=request.description,
            scopes=request.scopes,
            account=request.account,
            restrictions=request.restrictions,
            permissions=request.permissions,
            metadata=request.metadata,
            ip=request.ip,
            remote_address=remote_address,
            created_at=now,
            expires_at=request.expires_at,
        )
        await self._tokens.insert(record)
        log.info("token.issued", token_id=record.id, account=record.account)
        return IssuedToken(token=token, record=record)

    async def list(
        self, *, account: str | None, query: str | None, page: int, page_size: int
    ) -> TokenPage:
        return await self._tokens.list(
            account=account, query=query, offset=page * page_size, limit=page_size
        )

    async def get(self, token_id_: str) -> TokenRecord:
        record = await self._tokens.get(token_id_)
        if record is None:
            raise NotFoundError("No access token has this id", code="TokenNotFound")
        return record

    async def revoke(self, token_or_id: str) -> bool:
        """Delete by id, or by the token itself (both are 64 hex characters)."""
        deleted = await self._tokens.delete(token_or_id)
        if not deleted and is_well_formed(token_or_id):
            deleted = await self._tokens.delete(token_id(token_or_id))
        if deleted:
            log.info("token.revoked")
        return deleted

    async def authenticate(
        self, token: str | None, operation: Operation, caller: Caller
    ) -> TokenRecord:
        """Resolve a presented token and check it may run `operation`; raise otherwise."""
        if not token:
            raise AuthenticationError("No access token was provided")
        if not is_well_formed(token):
            raise AuthenticationError("The access token is not valid")
        expected = token_id(token)
        record = await self._tokens.get(expected)
        if record is None or not hmac.compare_digest(record.id, expected):
            raise AuthenticationError("The access token is not valid")
        now = self._clock()
        authorize(record, operation, caller, now_ms=now)
        if record.restrictions is not None and record.restrictions.rate_limit is not None:
            await self._count_request(record.id, record.restrictions.rate_limit, now)
        address = None if caller.address is None else str(caller.address)
        await self._tokens.touch(record, now_ms=now, address=address)
        return replace(record, last_used_at=now, last_used_ip=address)

    async def _count_request(self, token_id_: str, limit: RateLimit, now: int) -> None:
        window_ms = limit.window_seconds * 1000
        window_start = now - now % window_ms
        hits = await self._tokens.hit(token_id_, window_start=window_start)
        if hits > limit.max_requests:
            retry_after = max(1, math.ceil((window_start + window_ms - now) / 1000))
            raise RateLimitedError(
                f"This token allows {limit.max_requests} requests per "
                f"{limit.window_seconds} s; try again in {retry_after} s",
                retry_after=retry_after,
            )


def _validate(request: TokenRequest, *, now: int, allow_unrestricted: bool) -> None:
    if not request.description.strip():
        raise InputError("A description is required", key="description")
    if len(request.description) > MAX_DESCRIPTION_LENGTH:
        raise InputError(
            f"The description may be at most {MAX_DESCRIPTION_LENGTH} characters",
            key="description",
        )
    if not request.scopes:
        raise InputError("At least one scope is required", key="scopes")
    if request.account is not None and not 0 < len(request.account) <= MAX_ACCOUNT_LENGTH:
        raise InputError(
            f"The account id must be 1 to {MAX_ACCOUNT_LENGTH} characters", key="account"
        )
    if request.expires_at is not None and request.expires_at <= now:
        raise InputError("The expiry time must be in the future", key="expires")
    if request.account is None and request.permissions is None and not allow_unrestricted:
        raise InputError(
            "An instance-wide token must be narrowed with permissions, or bound to an account",
            key="permissions",
        )
