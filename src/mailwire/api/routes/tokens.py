"""`/v1/tokens`: issue, list, inspect and revoke access tokens (admin operations)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from mailwire.api.models.common import STANDARD_ERRORS, error_responses, pages
from mailwire.api.models.tokens import (
    CREATE_TOKEN_BODY_LIMIT,
    CreateToken,
    CreateTokenResponse,
    DeleteTokenResponse,
    TokenResponse,
    TokensResponse,
)
from mailwire.api.routing import MailwireRoute, Svc, client_address, operation
from mailwire.domain.tokens import Action, Group

TokenId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-fA-F]{64}$",
        description="The token's id (64 hex characters), as listed",
    ),
]

router = APIRouter(route_class=MailwireRoute, tags=["Access Tokens"])


@router.get(
    "/v1/tokens",
    operation_id="getV1Tokens",
    summary="List access tokens",
    response_model=TokensResponse,
    response_model_exclude_unset=True,
    responses=error_responses(*STANDARD_ERRORS),
    openapi_extra=operation(Group.ADMIN, Action.READ),
)
async def list_tokens(
    svc: Svc,
    page: Annotated[int, Query(ge=0, le=1_048_576, description="Zero-based page")] = 0,
    pageSize: Annotated[int, Query(ge=1, le=1000, description="Entries per page")] = 20,
    query: Annotated[
        str | None, Query(max_length=1024, description="Match description, account or id")
    ] = None,
    account: Annotated[
        str | None, Query(max_length=256, description="Only tokens bound to this account")
    ] = None,
) -> TokensResponse:
    account, query = _trimmed(account), _trimmed(query)
    found = await svc.tokens.list(account=account, query=query, page=page, page_size=pageSize)
    return TokensResponse(
        account=account,
        total=found.total,
        page=page,
        pages=pages(found.total, pageSize),
        tokens=[TokenResponse.of(record) for record in found.records],
    )


@router.post(
    "/v1/tokens",
    operation_id="postV1Tokens",
    summary="Issue an access token",
    description="Returns the token once. An instance-wide token must set `permissions`; "
    "otherwise bind it to an account, which must already be registered.",
    response_model=CreateTokenResponse,
    responses=error_responses(*STANDARD_ERRORS, 404, 413),
    openapi_extra=operation(Group.ADMIN, Action.WRITE, body_limit=CREATE_TOKEN_BODY_LIMIT),
)
async def create_token(body: CreateToken, request: Request, svc: Svc) -> CreateTokenResponse:
    if body.account is not None:
        # A token for an account that does not exist would reach nothing; say so now.
        await svc.accounts.require(body.account)
    address = client_address(request)
    issued = await svc.tokens.issue(
        body.to_request(), remote_address=None if address is None else str(address)
    )
    return CreateTokenResponse(token=issued.token, id=issued.record.id)


@router.get(
    "/v1/tokens/{token}",
    operation_id="getV1TokensToken",
    summary="Show one access token",
    response_model=TokenResponse,
    response_model_exclude_unset=True,
    responses=error_responses(*STANDARD_ERRORS, 404),
    openapi_extra=operation(Group.ADMIN, Action.READ),
)
async def get_token(token: TokenId, svc: Svc) -> TokenResponse:
    return TokenResponse.of(await svc.tokens.get(token.lower()))


@router.delete(
    "/v1/tokens/{token}",
    operation_id="deleteV1TokensToken",
    summary="Revoke an access token",
    description="Accepts the token's id or the token itself. Revocation is immediate.",
    response_model=DeleteTokenResponse,
    responses=error_responses(*STANDARD_ERRORS),
    openapi_extra=operation(Group.ADMIN, Action.DESTRUCTIVE),
)
async def delete_token(token: TokenId, svc: Svc) -> DeleteTokenResponse:
    return DeleteTokenResponse(deleted=await svc.tokens.revoke(token.lower()))


def _trimmed(value: str | None) -> str | None:
    """Query arguments are trimmed; an empty one counts as absent."""
    return (value.strip() or None) if value is not None else None
