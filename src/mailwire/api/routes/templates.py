"""`/v1/templates...`: stored message templates (group `template`).

As in the reference: list one owner's templates, create, show, change and
remove one, and flush all of an account's. A template addressed by its id
answers 404 when there is none (the reference answers an unknown id's removal
with `deleted: false`; Mailwire keeps 404 for every unknown id).

Account-bound tokens: the route class authorises such a token only for
operations whose path names its account, so of these routes it reaches only
`DELETE /v1/templates/account/{account}` for its own account; it can neither
read nor change templates through the others (global or any account's).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from mailwire.api.models.common import STANDARD_ERRORS, error_responses, pages
from mailwire.api.models.templates import (
    TEMPLATE_BODY_LIMIT,
    CreateTemplate,
    CreateTemplateResponse,
    DeleteTemplateResponse,
    FlushTemplatesResponse,
    TemplateDetails,
    TemplatesResponse,
    TemplateSummary,
    UpdateTemplate,
    UpdateTemplateResponse,
)
from mailwire.api.routing import AccountId, MailwireRoute, Svc, operation
from mailwire.domain.accounts import MAX_ACCOUNT_ID_LENGTH
from mailwire.domain.templates import MAX_TEMPLATE_ID_LENGTH
from mailwire.domain.tokens import Action, Group
from mailwire.errors import InputError

router = APIRouter(route_class=MailwireRoute, tags=["Templates"])

TemplateId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_TEMPLATE_ID_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The template's id",
    ),
]
_WITH_404 = error_responses(*STANDARD_ERRORS, 404)


@router.get(
    "/v1/templates",
    operation_id="getV1Templates",
    summary="List templates",
    description="One page of an account's templates, or of the global templates when no "
    "account is given (an account's list does not include the global ones). Newest first.",
    response_model=TemplatesResponse,
    response_model_exclude_unset=True,
    responses=_WITH_404,
    openapi_extra=operation(Group.TEMPLATE, Action.READ),
)
async def list_templates(
    svc: Svc,
    account: Annotated[
        str | None,
        Query(max_length=MAX_ACCOUNT_ID_LENGTH, description="Whose templates to list"),
    ] = None,
    page: Annotated[int, Query(ge=0, le=1_048_576, description="Zero-based page")] = 0,
    pageSize: Annotated[int, Query(ge=1, le=1000, description="Entries per page")] = 20,
) -> TemplatesResponse:
    owner = (account or "").strip() or None
    found = await svc.templates.list(account=owner, page=page, page_size=pageSize)
    return TemplatesResponse(
        account=owner,
        total=found.total,
        page=page,
        pages=pages(found.total, pageSize),
        templates=[TemplateSummary.of(template) for template in found.templates],
    )


@router.post(
    "/v1/templates/template",
    operation_id="postV1TemplatesTemplate",
    summary="Create a template",
    description="Stores a template for one account (which must exist) or, with a null "
    "account, for every account. Sources are Handlebars; they are checked when rendered.",
    response_model=CreateTemplateResponse,
    responses=error_responses(*STANDARD_ERRORS, 404, 413),
    openapi_extra=operation(Group.TEMPLATE, Action.WRITE, body_limit=TEMPLATE_BODY_LIMIT),
)
async def create_template(body: CreateTemplate, svc: Svc) -> CreateTemplateResponse:
    created = await svc.templates.create(**body.to_fields())
    return CreateTemplateResponse(created=True, account=created.account, id=created.id)


@router.get(
    "/v1/templates/template/{template}",
    operation_id="getV1TemplatesTemplateTemplate",
    summary="Show a template",
    response_model=TemplateDetails,
    response_model_exclude_unset=True,
    responses=_WITH_404,
    openapi_extra=operation(Group.TEMPLATE, Action.READ),
)
async def show_template(template: TemplateId, svc: Svc) -> TemplateDetails:
    return TemplateDetails.of(await svc.templates.get(template))


@router.put(
    "/v1/templates/template/{template}",
    operation_id="putV1TemplatesTemplateTemplate",
    summary="Change a template",
    description="Name, description and format change only when sent; `content`, when "
    "sent, replaces the stored content whole.",
    response_model=UpdateTemplateResponse,
    responses=error_responses(*STANDARD_ERRORS, 404, 413),
    openapi_extra=operation(Group.TEMPLATE, Action.WRITE, body_limit=TEMPLATE_BODY_LIMIT),
)
async def update_template(
    template: TemplateId, body: UpdateTemplate, svc: Svc
) -> UpdateTemplateResponse:
    updated = await svc.templates.update(template, body.to_fields())
    return UpdateTemplateResponse(updated=True, account=updated.account, id=updated.id)


@router.delete(
    "/v1/templates/template/{template}",
    operation_id="deleteV1TemplatesTemplateTemplate",
    summary="Remove a template",
    response_model=DeleteTemplateResponse,
    responses=_WITH_404,
    openapi_extra=operation(Group.TEMPLATE, Action.DESTRUCTIVE),
)
async def delete_template(template: TemplateId, svc: Svc) -> DeleteTemplateResponse:
    removed = await svc.templates.delete(template)
    return DeleteTemplateResponse(deleted=True, account=removed.account, id=removed.id)


@router.delete(
    "/v1/templates/account/{account}",
    operation_id="deleteV1TemplatesAccountAccount",
    summary="Flush an account's templates",
    description="Removes every template of the account. `force=true` is required.",
    response_model=FlushTemplatesResponse,
    responses=_WITH_404,
    openapi_extra=operation(Group.TEMPLATE, Action.DESTRUCTIVE),
)
async def flush_templates(
    account: AccountId,
    svc: Svc,
    force: Annotated[bool, Query(description="Must be true to flush the templates")] = False,
) -> FlushTemplatesResponse:
    if not force:
        raise InputError("Set force=true to remove every template of the account", key="force")
    await svc.templates.flush(account)
    return FlushTemplatesResponse(flushed=True, account=account)
