"""`/health`: unauthenticated liveness and store reachability, for load balancers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from mailwire.api.models.common import ResponseModel
from mailwire.api.routing import MailwireRoute, services
from mailwire.services.container import Services

router = APIRouter(route_class=MailwireRoute, tags=["Health"])


class HealthResponse(ResponseModel):
    success: bool
    store: str
    storeLatencyMs: float | None = None


@router.get(
    "/health",
    operation_id="getHealth",
    summary="Service health",
    description="200 when the store answers, 503 when it does not. Needs no token.",
    response_model=HealthResponse,
    responses={503: {"description": "The store cannot be reached", "model": HealthResponse}},
    openapi_extra={"security": []},
)
async def health(svc: Annotated[Services, Depends(services)]) -> JSONResponse:
    report = await svc.health.check()
    body = HealthResponse(
        success=report.healthy,
        store="ok" if report.store_ok else "unreachable",
        storeLatencyMs=report.store_latency_ms,
    )
    return JSONResponse(body.model_dump(), status_code=200 if report.healthy else 503)
