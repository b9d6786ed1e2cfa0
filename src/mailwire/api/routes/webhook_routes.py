"""`/v1/webhookRoutes...`: custom webhook routes.

Listing and reading are the reference's (group `webhook`, action `read`).
Creating, changing and removing are Mailwire additions: a route's functions
see every event of every account, so editing routes needs an admin token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from mailwire.api.models.common import STANDARD_ERRORS, error_responses, pages
from mailwire.api.models.webhook_routes import (
    ROUTE_BODY_LIMIT,
    CreateRoute,
    DeleteRouteResponse,
    RouteDetails,
    RoutesResponse,
    RouteSummary,
    UpdateRoute,
)
from mailwire.api.routing import MailwireRoute, Svc, operation
from mailwire.domain.tokens import Action, Group
from mailwire.domain.webhook_routes import MAX_ROUTE_ID_LENGTH

router = APIRouter(route_class=MailwireRoute, tags=["Webhooks"])

RouteId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ROUTE_ID_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The route's id",
    ),
]
_WITH_404 = error_responses(*STANDARD_ERRORS, 404)


@router.get(
    "/v1/webhookRoutes",
    operation_id="getV1Webhookroutes",
    summary="List webhook routes",
    response_model=RoutesResponse,
    responses=error_responses(*STANDARD_ERRORS),
    openapi_extra=operation(Group.WEBHOOK, Action.READ),
)
async def list_routes(
    svc: Svc,
    page: Annotated[int, Query(ge=0, le=1_048_576, description="Zero-based page")] = 0,
    pageSize: Annotated[int, Query(ge=1, le=1000, description="Entries per page")] = 20,
) -> RoutesResponse:
    found = await svc.webhook_routes.list(page=page, page_size=pageSize)
    return RoutesResponse(
        total=found.total,
        page=page,
        pages=pages(found.total, pageSize),
        webhooks=[RouteSummary.of(route) for route in found.routes],
    )


@router.get(
    "/v1/webhookRoutes/webhookRoute/{webhookRoute}",
    operation_id="getV1WebhookroutesWebhookrouteWebhookroute",
    summary="Show a webhook route",
    response_model=RouteDetails,
    responses=_WITH_404,
    openapi_extra=operation(Group.WEBHOOK, Action.READ),
)
async def show_route(webhookRoute: RouteId, svc: Svc) -> RouteDetails:
    return RouteDetails.of(await svc.webhook_routes.get(webhookRoute))


@router.post(
    "/v1/webhookRoutes",
    operation_id="postV1Webhookroutes",
    summary="Create a webhook route",
    description="Mailwire addition. The filter and map functions are compiled before the "
    "route is saved; a function that does not compile is refused with a 400.",
    response_model=RouteDetails,
    responses=error_responses(*STANDARD_ERRORS, 413),
    openapi_extra=operation(Group.ADMIN, Action.WRITE, body_limit=ROUTE_BODY_LIMIT),
)
async def create_route(body: CreateRoute, svc: Svc) -> RouteDetails:
    return RouteDetails.of(await svc.webhook_routes.create(body.to_fields()))


@router.put(
    "/v1/webhookRoutes/webhookRoute/{webhookRoute}",
    operation_id="putV1WebhookroutesWebhookrouteWebhookroute",
    summary="Change a webhook route",
    description="Mailwire addition. Only the fields sent change; the route's version grows.",
    response_model=RouteDetails,
    responses=error_responses(*STANDARD_ERRORS, 404, 413),
    openapi_extra=operation(Group.ADMIN, Action.WRITE, body_limit=ROUTE_BODY_LIMIT),
)
async def update_route(webhookRoute: RouteId, body: UpdateRoute, svc: Svc) -> RouteDetails:
    return RouteDetails.of(await svc.webhook_routes.update(webhookRoute, body.to_fields()))


@router.delete(
    "/v1/webhookRoutes/webhookRoute/{webhookRoute}",
    operation_id="deleteV1WebhookroutesWebhookrouteWebhookroute",
    summary="Remove a webhook route",
    description="Mailwire addition. Deliveries already queued for the route are dropped "
    "when they come up, as for a disabled route.",
    response_model=DeleteRouteResponse,
    responses=_WITH_404,
    openapi_extra=operation(Group.ADMIN, Action.WRITE),
)
async def delete_route(webhookRoute: RouteId, svc: Svc) -> DeleteRouteResponse:
    await svc.webhook_routes.delete(webhookRoute)
    return DeleteRouteResponse(deleted=True)
