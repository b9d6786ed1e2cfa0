"""Bodies of the access token routes (`/v1/tokens`), field for field as in the reference."""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from mailwire.api.models.common import (
    RequestModel,
    ResponseModel,
    Single,
    epoch_ms,
    iso_time,
)
from mailwire.domain.tokens import (
    GRANTABLE_GROUPS,
    Action,
    Group,
    Permissions,
    RateLimit,
    Restrictions,
    Scope,
    TokenRecord,
    check_referrer_pattern,
    parse_network,
)
from mailwire.services.tokens import TokenRequest

MAX_METADATA_LENGTH = 1024 * 1024
#: Route body limit: room for the largest metadata plus the other fields.
CREATE_TOKEN_BODY_LIMIT = 2 * 1024 * 1024
MAX_ALLOWLIST_ENTRIES = 100


def _json_text(value: str) -> str:
    try:
        json.loads(value)
    except ValueError:
        raise ValueError("must be a JSON document") from None
    return value


def _network(value: str) -> str:
    return str(parse_network(value))


def _address(value: str) -> str:
    return str(ipaddress.ip_address(value))


def _grantable(value: Group) -> Group:
    if value not in GRANTABLE_GROUPS:
        raise ValueError(f"{value.value!r} cannot be granted")
    return value


Referrer = Annotated[str, AfterValidator(check_referrer_pattern)]
Network = Annotated[str, Field(max_length=64), AfterValidator(_network)]
Address = Annotated[str, Field(max_length=64), AfterValidator(_address)]
GrantableGroup = Annotated[Group, AfterValidator(_grantable)]


class RateLimitBody(RequestModel):
    maxRequests: int = Field(ge=1, le=1_000_000, description="Requests allowed per window")
    timeWindow: int = Field(ge=1, le=86_400, description="Window length in seconds")


class TokenRestrictionsBody(RequestModel):
    referrers: Single[Referrer] | None = Field(None, max_length=MAX_ALLOWLIST_ENTRIES)
    addresses: Single[Network] | None = Field(None, max_length=MAX_ALLOWLIST_ENTRIES)
    rateLimit: RateLimitBody | None = None

    def to_domain(self) -> Restrictions:
        return Restrictions(
            referrers=None if self.referrers is None else tuple(self.referrers),
            addresses=None
            if self.addresses is None
            else tuple(parse_network(a) for a in self.addresses),
            rate_limit=None
            if self.rateLimit is None
            else RateLimit(self.rateLimit.maxRequests, self.rateLimit.timeWindow),
        )


class TokenPermissionsBody(RequestModel):
    actions: Single[Action] | None = Field(None, min_length=1, max_length=len(Action))
    groups: Single[GrantableGroup] | None = Field(None, min_length=1, max_length=len(Group))

    @model_validator(mode="after")
    def _not_empty(self) -> TokenPermissionsBody:
        if self.actions is None and self.groups is None:
            raise ValueError("set at least one of actions and groups")
        return self

    def to_domain(self) -> Permissions:
        return Permissions(
            actions=None if self.actions is None else frozenset(self.actions),
            groups=None if self.groups is None else frozenset(self.groups),
        )


class CreateToken(RequestModel):
    account: str | None = Field(None, min_length=1, max_length=256)
    description: str = Field(min_length=1, max_length=1024)
    scopes: Single[Scope] = Field(min_length=1, max_length=len(Scope))
    metadata: Annotated[str, AfterValidator(_json_text)] | None = Field(
        None, max_length=MAX_METADATA_LENGTH
    )
    restrictions: TokenRestrictionsBody | None = None
    permissions: TokenPermissionsBody | None = None
    expires: AwareDatetime | None = Field(None, description="When the token stops working")
    ip: Address | None = Field(None, description="Address of the person who asked for it")

    def to_request(self) -> TokenRequest:
        return TokenRequest(
            description=self.description,
            scopes=frozenset(self.scopes),
            account=self.account,
            restrictions=None if self.restrictions is None else self.restrictions.to_domain(),
            permissions=None if self.permissions is None else self.permissions.to_domain(),
            metadata=self.metadata,
            ip=self.ip,
            expires_at=None if self.expires is None else epoch_ms(self.expires),
        )


class CreateTokenResponse(ResponseModel):
    token: str = Field(description="The token; shown this once only")
    id: str = Field(description="The token's public id (SHA-256 of the token)")


class RateLimitOut(ResponseModel):
    maxRequests: int
    timeWindow: int


class TokenRestrictionsOut(ResponseModel):
    referrers: list[str] | None = None
    addresses: list[str] | None = None
    rateLimit: RateLimitOut | None = None


class TokenPermissionsOut(ResponseModel):
    actions: list[Action] | None = None
    groups: list[Group] | None = None


class TokenAccess(ResponseModel):
    time: str | None = None
    ip: str | None = None


class TokenResponse(ResponseModel):
    account: str | None = None
    description: str
    metadata: str | None = None
    ip: str | None = None
    remoteAddress: str | None = None
    scopes: list[str]
    restrictions: TokenRestrictionsOut | None = None
    permissions: TokenPermissionsOut | None = None
    created: str
    expires: str | None = None
    access: TokenAccess
    id: str

    @classmethod
    def of(cls, record: TokenRecord) -> TokenResponse:
        """Unset optional fields are left out of the JSON; `account` is always present."""
        fields: dict[str, object] = {
            "account": record.account,
            "description": record.description,
            "scopes": sorted(scope.value for scope in record.scopes),
            "restrictions": _restrictions_out(record.restrictions),
            "permissions": _permissions_out(record.permissions),
            "created": iso_time(record.created_at),
            "access": TokenAccess(
                time=None if record.last_used_at is None else iso_time(record.last_used_at),
                ip=record.last_used_ip,
            ),
            "id": record.id,
        }
        optional = {
            "metadata": record.metadata,
            "ip": record.ip,
            "remoteAddress": record.remote_address,
            "expires": None if record.expires_at is None else iso_time(record.expires_at),
        }
        fields.update({key: value for key, value in optional.items() if value is not None})
        return cls.model_validate(fields)


class TokensResponse(ResponseModel):
    account: str | None
    total: int
    page: int
    pages: int
    tokens: list[TokenResponse]


class DeleteTokenResponse(ResponseModel):
    deleted: bool


def _restrictions_out(value: Restrictions | None) -> TokenRestrictionsOut | None:
    if value is None:
        return None
    rate = value.rate_limit
    return TokenRestrictionsOut(
        referrers=None if value.referrers is None else list(value.referrers),
        addresses=None if value.addresses is None else [str(n) for n in value.addresses],
        rateLimit=None
        if rate is None
        else RateLimitOut(maxRequests=rate.max_requests, timeWindow=rate.window_seconds),
    )


def _permissions_out(value: Permissions | None) -> TokenPermissionsOut | None:
    if value is None:
        return None
    return TokenPermissionsOut(
        actions=None if value.actions is None else sorted(value.actions),
        groups=None if value.groups is None else sorted(value.groups),
    )
