"""Bodies of the webhook route routes (`/v1/webhookRoutes...`).

Reading matches the reference. Creating, changing and removing routes are
Mailwire additions (the reference edits routes in its admin UI only); their
bodies use the same field names as the read responses.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mailwire.api.models.accounts import MAX_CUSTOM_HEADERS, CustomHeader, WebUrl
from mailwire.api.models.common import RequestModel, ResponseModel, iso_time
from mailwire.domain.webhook_routes import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SCRIPT_BYTES,
    RouteError,
    WebhookRoute,
)

#: Body limit of the create/update routes: two function sources and the rest.
ROUTE_BODY_LIMIT = 2 * MAX_SCRIPT_BYTES + 256 * 1024


class RouteContent(RequestModel):
    fn: str | None = Field(
        None,
        max_length=MAX_SCRIPT_BYTES,
        description="Filter function: the body of an async function of `payload`; "
        "the event goes to this route when it returns a truthy value",
    )
    map: str | None = Field(
        None,
        max_length=MAX_SCRIPT_BYTES,
        description="Map function: its return value becomes the request body",
    )


class _RouteFields(RequestModel):
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    targetUrl: WebUrl | None = Field(None, description="Where matching events are POSTed")
    customHeaders: list[CustomHeader] | None = Field(None, max_length=MAX_CUSTOM_HEADERS)
    content: RouteContent | None = None

    def to_fields(self) -> dict[str, Any]:
        """The fields the client sent, under the store's names."""
        given = self.model_fields_set
        fields: dict[str, Any] = {}
        names = {"name": "name", "description": "description", "targetUrl": "target_url"}
        for api_name, field in names.items():
            if api_name in given:
                fields[field] = getattr(self, api_name) or None
        if "enabled" in given:
            fields["enabled"] = bool(getattr(self, "enabled", False))
        if "customHeaders" in given:
            fields["custom_headers"] = [(h.key, h.value) for h in self.customHeaders or []]
        if self.content is not None:
            content_given = self.content.model_fields_set
            if "fn" in content_given:
                fields["filter_fn"] = self.content.fn or None
            if "map" in content_given:
                fields["map_fn"] = self.content.map or None
        return fields


class CreateRoute(_RouteFields):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    enabled: bool = Field(False, description="Only enabled routes are evaluated")

    def to_fields(self) -> dict[str, Any]:
        fields = super().to_fields()
        fields["name"] = self.name
        fields["enabled"] = self.enabled
        return fields


class UpdateRoute(_RouteFields):
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH)
    enabled: bool | None = None


class ErrorFlag(ResponseModel):
    message: str
    #: Mailwire addition: what failed (`exec` for a function, `delivery`) and when.
    kind: str | None = None
    time: str | None = None


class RouteLogEntry(ResponseModel):
    kind: str
    function: str | None = None
    message: str
    time: str


class HeaderOut(ResponseModel):
    key: str
    value: str


class ContentOut(ResponseModel):
    fn: str | None
    map: str | None


class RouteSummary(ResponseModel):
    id: str
    name: str
    description: str | None = None
    created: str
    updated: str
    enabled: bool
    targetUrl: str | None = None
    tcount: int
    webhookErrorFlag: ErrorFlag | None = None
    customHeaders: list[HeaderOut]

    @classmethod
    def of(cls, route: WebhookRoute) -> RouteSummary:
        return cls(**_common(route))


class RouteDetails(RouteSummary):
    v: int
    content: ContentOut
    #: Mailwire addition: the route's last failures, newest first.
    errorLog: list[RouteLogEntry]

    @classmethod
    def of(cls, route: WebhookRoute) -> RouteDetails:
        return cls(
            **_common(route),
            v=route.version,
            content=ContentOut(fn=route.filter_fn, map=route.map_fn),
            errorLog=[
                RouteLogEntry(
                    kind=entry.kind,
                    function=entry.function,
                    message=entry.message,
                    time=iso_time(entry.at),
                )
                for entry in route.error_log
            ],
        )


class RoutesResponse(ResponseModel):
    total: int
    page: int
    pages: int
    webhooks: list[RouteSummary]


class DeleteRouteResponse(ResponseModel):
    deleted: bool


def _flag(error: RouteError | None) -> ErrorFlag | None:
    if error is None:
        return None
    return ErrorFlag(message=error.message, kind=error.kind, time=iso_time(error.at))


def _common(route: WebhookRoute) -> dict[str, Any]:
    return {
        "id": route.id,
        "name": route.name,
        "description": route.description,
        "created": iso_time(route.created_at),
        "updated": iso_time(route.updated_at),
        "enabled": route.enabled,
        "targetUrl": route.target_url,
        "tcount": route.match_count,
        "webhookErrorFlag": _flag(route.error),
        "customHeaders": [HeaderOut(key=k, value=v) for k, v in route.custom_headers],
    }
