"""`/v1/gateway...`: SMTP gateways, relays a send may use instead of the account's server.

Permission groups and actions are the reference's, operation by operation:
reading and removing belong to the `gateway` group, while registering and
changing a gateway need an admin token (the request carries a credential and
chooses where sends go). Passwords are never shown (see `models.gateways`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from mailwire.api.models.common import STANDARD_ERRORS, error_responses, pages
from mailwire.api.models.gateways import (
    CreateGateway,
    CreateGatewayResponse,
    DeleteGatewayResponse,
    GatewayDetails,
    GatewaysResponse,
    GatewaySummary,
    UpdateGateway,
    UpdateGatewayResponse,
)
from mailwire.api.routing import MailwireRoute, Svc, operation
from mailwire.domain.gateways import GATEWAY_ID_PATTERN, MAX_GATEWAY_ID_LENGTH
from mailwire.domain.tokens import Action, Group
from mailwire.store.gateways import GatewayValues

router = APIRouter(route_class=MailwireRoute, tags=["SMTP Gateway"])

GatewayId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_GATEWAY_ID_LENGTH,
        pattern=GATEWAY_ID_PATTERN,
        description="The gateway's id",
    ),
]
_WITH_404 = error_responses(*STANDARD_ERRORS, 404)


@router.get(
    "/v1/gateways",
    operation_id="getV1Gateways",
    summary="List gateways",
    description="The registered SMTP gateways, oldest first, a page at a time.",
    response_model=GatewaysResponse,
    response_model_exclude_unset=True,
    responses=error_responses(*STANDARD_ERRORS),
    openapi_extra=operation(Group.GATEWAY, Action.READ),
)
async def list_gateways(
    svc: Svc,
    page: Annotated[int, Query(ge=0, le=1_048_576, description="Zero-based page")] = 0,
    pageSize: Annotated[int, Query(ge=1, le=1000, description="Entries per page")] = 20,
) -> GatewaysResponse:
    found = await svc.gateways.list(page=page, page_size=pageSize)
    return GatewaysResponse(
        total=found.total,
        page=page,
        pages=pages(found.total, pageSize),
        gateways=[GatewaySummary.of(gateway) for gateway in found.gateways],
    )


@router.get(
    "/v1/gateway/{gateway}",
    operation_id="getV1GatewayGateway",
    summary="Show a gateway",
    description="The gateway's settings and delivery counters. A stored password reads "
    'as "******"; leave `pass` out of an update to keep it.',
    response_model=GatewayDetails,
    response_model_exclude_unset=True,
    responses=_WITH_404,
    openapi_extra=operation(Group.GATEWAY, Action.READ),
)
async def show_gateway(gateway: GatewayId, svc: Svc) -> GatewayDetails:
    return GatewayDetails.of(await svc.gateways.get(gateway))


@router.post(
    "/v1/gateway",
    operation_id="postV1Gateway",
    summary="Register a gateway",
    description="Registers a gateway, or replaces the whole configuration of the gateway "
    "with this id (its counters stay). Without an id a new one is generated.",
    response_model=CreateGatewayResponse,
    responses=error_responses(*STANDARD_ERRORS),
    openapi_extra=operation(Group.ADMIN, Action.WRITE),
)
async def create_gateway(body: CreateGateway, svc: Svc) -> CreateGatewayResponse:
    values = GatewayValues(
        name=body.name,
        host=body.host,
        port=body.port,
        secure=body.secure,
        user=body.user or None,
    )
    gateway_id, state = await svc.gateways.create(body.gateway, values, body.password or None)
    return CreateGatewayResponse(gateway=gateway_id, state=state)


@router.put(
    "/v1/gateway/edit/{gateway}",
    operation_id="putV1GatewayEditGateway",
    summary="Change a gateway",
    description="Only the fields sent change. `pass: null` removes the password; a "
    "left-out `pass` (or the mask as read) keeps it.",
    response_model=UpdateGatewayResponse,
    responses=_WITH_404,
    openapi_extra=operation(Group.ADMIN, Action.WRITE),
)
async def update_gateway(
    gateway: GatewayId, body: UpdateGateway, svc: Svc
) -> UpdateGatewayResponse:
    fields, password = body.changes()
    await svc.gateways.update(gateway, fields, password)
    return UpdateGatewayResponse(gateway=gateway)


@router.delete(
    "/v1/gateway/{gateway}",
    operation_id="deleteV1GatewayGateway",
    summary="Remove a gateway",
    description="Removes the gateway and its stored password.",
    response_model=DeleteGatewayResponse,
    responses=_WITH_404,
    openapi_extra=operation(Group.GATEWAY, Action.DESTRUCTIVE),
)
async def delete_gateway(gateway: GatewayId, svc: Svc) -> DeleteGatewayResponse:
    await svc.gateways.delete(gateway)
    return DeleteGatewayResponse(gateway=gateway, deleted=True)
