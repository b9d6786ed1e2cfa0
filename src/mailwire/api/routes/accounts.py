"""`/v1/account...` and `/v1/verifyAccount`: register, show, list, change, remove and check
accounts, and ask their workers to reconnect, sync or rebuild the index.

Operation ids, groups and actions are the reference's. A token bound to one
account reaches only routes whose `{account}` is that account (the route class
checks it); registering, listing and verifying are instance-wide.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mailwire.api.models.accounts import (
    AccountIdResponse,
    AccountResponse,
    AccountsResponse,
    AccountSummary,
    CreateAccount,
    CreateAccountResponse,
    DeleteAccountResponse,
    FlushBody,
    FlushResponse,
    ReconnectBody,
    ReconnectResponse,
    SyncBody,
    SyncResponse,
    UpdateAccount,
    VerifyAccount,
    VerifyResponse,
)
from mailwire.api.models.common import STANDARD_ERRORS, epoch_ms, error_responses, pages
from mailwire.api.routing import AccountId, MailwireRoute, Svc, operation
from mailwire.domain.accounts import AccountState
from mailwire.domain.tokens import Action, Group

router = APIRouter(route_class=MailwireRoute, tags=["Account"])

_WITH_404 = error_responses(*STANDARD_ERRORS, 404)


@router.post(
    "/v1/account",
    operation_id="postV1Account",
    summary="Register an account",
    description="Creates the account, or updates it when the id is already registered.",
    response_model=CreateAccountResponse,
    responses=error_responses(*STANDARD_ERRORS, 413),
    openapi_extra=operation(Group.ADMIN, Action.WRITE),
)
async def create_account(body: CreateAccount, svc: Svc) -> CreateAccountResponse:
    document = body.to_document()
    account_id, state = await svc.accounts.create(document)
    return CreateAccountResponse(account=account_id, state=state)


@router.get(
    "/v1/accounts",
    operation_id="getV1Accounts",
    summary="List accounts",
    response_model=AccountsResponse,
    response_model_exclude_none=True,
    responses=error_responses(*STANDARD_ERRORS),
    openapi_extra=operation(Group.ACCOUNT, Action.READ),
)
async def list_accounts(
    svc: Svc,
    page: Annotated[int, Query(ge=0, le=1_048_576, description="Zero-based page")] = 0,
    pageSize: Annotated[int, Query(ge=1, le=1000, description="Entries per page")] = 20,
    state: Annotated[AccountState | None, Query(description="Only accounts in this state")] = None,
    query: Annotated[
        str | None, Query(max_length=256, description="Match id, name or email")
    ] = None,
) -> AccountsResponse:
    query = (query.strip() or None) if query is not None else None
    found = await svc.accounts.list(page=page, page_size=pageSize, state=state, query=query)
    return AccountsResponse(
        total=found.total,
        page=page,
        pages=pages(found.total, pageSize),
        accounts=[AccountSummary.of(account) for account in found.accounts],
    )


@router.get(
    "/v1/account/{account}",
    operation_id="getV1AccountAccount",
    summary="Show an account",
    description="Passwords and tokens are never shown.",
    response_model=AccountResponse,
    response_model_exclude_none=True,
    responses=_WITH_404,
    openapi_extra=operation(Group.ACCOUNT, Action.READ),
)
async def get_account(account: AccountId, svc: Svc) -> AccountResponse:
    return AccountResponse.of(await svc.accounts.get(account.strip()))


@router.put(
    "/v1/account/{account}",
    operation_id="putV1AccountAccount",
    summary="Change an account",
    description="Changes the given fields. An `imap`, `smtp` or `oauth2` object replaces the "
    "stored one unless it sets `partial: true`.",
    response_model=AccountIdResponse,
    responses=_WITH_404,
    openapi_extra=operation(Group.ADMIN, Action.WRITE),
)
async def update_account(account: AccountId, body: UpdateAccount, svc: Svc) -> AccountIdResponse:
    updated = await svc.accounts.update(account.strip(), body.to_document())
    return AccountIdResponse(account=updated.id)


@router.delete(
    "/v1/account/{account}",
    operation_id="deleteV1AccountAccount",
    summary="Remove an account",
    description="Removes the account, its credentials, its index and its logs.",
    response_model=DeleteAccountResponse,
    responses=_WITH_404,
    openapi_extra=operation(Group.ACCOUNT, Action.DESTRUCTIVE),
)
async def delete_account(account: AccountId, svc: Svc) -> DeleteAccountResponse:
    account = account.strip()
    await svc.accounts.delete(account)
    return DeleteAccountResponse(account=account, deleted=True)


@router.put(
    "/v1/account/{account}/reconnect",
    operation_id="putV1AccountAccountReconnect",
    summary="Reconnect an account",
    description="With `reconnect: true`, the account's connections are closed and reopened.",
    response_model=ReconnectResponse,
    responses=_WITH_404,
    openapi_extra=operation(Group.ACCOUNT, Action.WRITE),
)
async def reconnect_account(account: AccountId, body: ReconnectBody, svc: Svc) -> ReconnectResponse:
    account = account.strip()
    if body.reconnect:
        await svc.accounts.reconnect(account)
    else:
        await svc.accounts.require(account)
    return ReconnectResponse(reconnect=body.reconnect)


@router.put(
    "/v1/account/{account}/sync",
    operation_id="putV1AccountAccountSync",
    summary="Sync an account now",
    description="With `sync: true`, the account's folders are checked for changes at once.",
    response_model=SyncResponse,
    responses=_WITH_404,
    openapi_extra=operation(Group.ACCOUNT, Action.WRITE),
)
async def sync_account(account: AccountId, body: SyncBody, svc: Svc) -> SyncResponse:
    account = account.strip()
    if body.sync:
        await svc.accounts.sync(account)
    else:
        await svc.accounts.require(account)
    return SyncResponse(sync=body.sync)


@router.put(
    "/v1/account/{account}/flush",
    operation_id="putV1AccountAccountFlush",
    summary="Rebuild an account's index",
    description="With `flush: true`, the stored index is dropped and built again. No "
    "events are sent for messages older than `notifyFrom` (default: now).",
    response_model=FlushResponse,
    responses=_WITH_404,
    openapi_extra=operation(Group.ACCOUNT, Action.DESTRUCTIVE),
)
async def flush_account(account: AccountId, body: FlushBody, svc: Svc) -> FlushResponse:
    account = account.strip()
    if body.flush:
        await svc.accounts.flush(
            account,
            notify_from=None if body.notifyFrom is None else epoch_ms(body.notifyFrom),
            imap_indexer=body.imapIndexer,
        )
    else:
        await svc.accounts.require(account)
    return FlushResponse(flush=body.flush)


@router.post(
    "/v1/verifyAccount",
    operation_id="postV1Verifyaccount",
    summary="Check account settings",
    description="Connects and logs in with the given IMAP and SMTP settings without saving "
    "them. A failed check is an answer with `success: false`, not an error status.",
    response_model=VerifyResponse,
    response_model_exclude_none=True,
    responses=error_responses(*STANDARD_ERRORS),
    openapi_extra=operation(Group.ADMIN, Action.READ),
    tags=["Account"],
)
async def verify_account(body: VerifyAccount, svc: Svc) -> VerifyResponse:
    return VerifyResponse.model_validate(await svc.verify.verify(body.to_document()))
