"""Build the FastAPI application from ready services."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from mailwire import __version__
from mailwire.api.errors import install_error_handlers
from mailwire.api.forwarding import install_forwarding
from mailwire.api.middleware import RequestContextMiddleware
from mailwire.api.openapi import build_openapi
from mailwire.api.routes import (
    accounts,
    changes,
    gateways,
    health,
    logs,
    mailbox_changes,
    message_changes,
    messages,
    queues,
    search,
    settings,
    submit,
    templates,
    tokens,
    uploads,
    webhook_routes,
)
from mailwire.services.container import Services


def create_app(services: Services, *, body_limit: int) -> FastAPI:
    """The REST API. `body_limit` is the default request body cap in bytes."""
    app = FastAPI(
        title="Mailwire API",
        version=__version__,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = services
    app.state.body_limit = body_limit
    app.include_router(health.router)
    app.include_router(tokens.router)
    app.include_router(accounts.router)
    app.include_router(logs.router)
    app.include_router(changes.router)
    app.include_router(messages.router)
    app.include_router(search.router)
    app.include_router(message_changes.router)
    app.include_router(uploads.router)
    app.include_router(mailbox_changes.router)
    app.include_router(queues.router)
    app.include_router(settings.router)
    app.include_router(webhook_routes.router)
    app.include_router(templates.router)
    app.include_router(gateways.router)
    app.include_router(submit.router)
    install_error_handlers(app)
    install_forwarding(app)  # inside the request context: refusals get a request id
    app.add_middleware(RequestContextMiddleware)

    def openapi() -> dict[str, Any]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override

    @app.get("/swagger.json", include_in_schema=False)
    async def swagger() -> JSONResponse:
        return JSONResponse(build_openapi(app))

    return app
