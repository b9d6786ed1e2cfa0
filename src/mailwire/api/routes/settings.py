"""`/v1/settings`: read and change the instance-wide settings.

GET takes one boolean flag per key (`?webhooks=true&notifyText=true`) and answers
only the keys asked for; `eventTypes=true` lists every webhook event name. POST
changes the keys it is sent and answers the list of keys written. Both belong to
the reference's admin group; what is shown and how credentials are masked is
described in `api/models/settings.py`.

Changes take effect at once on every node and worker: readers go to the store,
which is not cached in process memory.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from mailwire.api.models.common import STANDARD_ERRORS, error_responses
from mailwire.api.models.settings import (
    SETTINGS_BODY_LIMIT,
    SettingsBody,
    SettingsQueryFlags,
    SettingsQueryResponse,
    SettingsUpdatedResponse,
    query_parameters,
)
from mailwire.api.routing import MailwireRoute, Svc, operation
from mailwire.domain.tokens import Action, Group

router = APIRouter(route_class=MailwireRoute, tags=["Settings"])


@router.get(
    "/v1/settings",
    operation_id="getV1Settings",
    summary="Show settings",
    description="Answers the keys whose query flag is true. Secrets read as true or false "
    "(set or not); credentials in URLs and custom header values read as `******`.",
    response_model=None,
    responses={
        200: {"description": "The asked-for keys", "model": SettingsQueryResponse},
        **error_responses(*STANDARD_ERRORS),
    },
    openapi_extra={
        **operation(Group.ADMIN, Action.READ),
        "parameters": query_parameters(),
    },
)
async def get_settings(request: Request, svc: Svc) -> JSONResponse:
    try:
        flags = SettingsQueryFlags.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        ) from None
    wanted = [key for key, asked in flags.model_dump().items() if asked]
    return JSONResponse(await svc.settings.query(wanted))


@router.post(
    "/v1/settings",
    operation_id="postV1Settings",
    summary="Change settings",
    description="Sets the keys in the body and leaves the others alone; `null` resets a key "
    "to its default. A masked value sent back as read is skipped, any other masked value "
    "is refused.",
    response_model=SettingsUpdatedResponse,
    responses=error_responses(*STANDARD_ERRORS, 413),
    openapi_extra=operation(Group.ADMIN, Action.WRITE, body_limit=SETTINGS_BODY_LIMIT),
)
async def post_settings(body: SettingsBody, svc: Svc) -> SettingsUpdatedResponse:
    return SettingsUpdatedResponse(updated=await svc.settings.update(body.changes()))
