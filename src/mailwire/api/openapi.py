"""The OpenAPI document, shaped like the reference: operation ids, tags, `bearerAuth`.

Served at `/openapi.json` and, for clients that look there, `/swagger.json`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from mailwire import __version__

DESCRIPTION = (
    "Mailwire gives applications one REST API and one webhook stream for many mailboxes. "
    "Every `/v1` endpoint needs an access token, sent as `Authorization: Bearer <token>` "
    "or as the `access_token` query argument. Failures answer a JSON body with "
    "`statusCode`, `error` and `message`."
)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title="Mailwire API",
        version=__version__,
        description=DESCRIPTION,
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    components["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token issued by `mailwire tokens issue` or POST /v1/tokens",
        }
    }
    document["security"] = [{"bearerAuth": []}]
    app.openapi_schema = document
    return document
