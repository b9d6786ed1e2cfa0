"""The route class every API route uses: authentication and body limits come first.

A route declares what it does with `operation(group, action)`, which is also
published in the OpenAPI document as `x-ee-group` / `x-ee-action` (as in the
reference). Before FastAPI reads or parses a body, the route class:

1. authenticates the token and authorises the declared operation, so that an
   anonymous client learns nothing from validation errors;
2. enforces the route's body limit: a `Content-Length` over the limit is
   refused at once, and a streamed body is counted as it arrives.

Routes without a declared operation (health, the OpenAPI document) are public.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.routing import APIRoute
from starlette.types import Message

from mailwire.api.errors import PayloadTooLargeError
from mailwire.domain.accounts import MAX_ACCOUNT_ID_LENGTH
from mailwire.domain.tokens import Action, Caller, Group, IPAddress, Operation, Scope, TokenRecord
from mailwire.services.container import Services

_GROUP = "x-ee-group"
_ACTION = "x-ee-action"
_BODY_LIMIT = "x-mailwire-body-limit"
_BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Scope key under which the authenticated token record travels with the request.
PRINCIPAL_KEY = "mailwire.principal"


def operation(group: Group, action: Action, *, body_limit: int | None = None) -> dict[str, Any]:
    """`openapi_extra` for a route: its permission group and action, and an optional
    body limit in bytes that replaces the app-wide default (`MAILWIRE_MAX_BODY_SIZE`)."""
    extra: dict[str, Any] = {_GROUP: group.value, _ACTION: action.value}
    if body_limit is not None:
        extra[_BODY_LIMIT] = body_limit
    return extra


async def services(request: Request) -> Services:
    """The services of the running app (a FastAPI dependency; async, so FastAPI
    does not hop to a worker thread on every request to call it)."""
    found: Services = request.app.state.services
    return found


def client_address(request: Request) -> IPAddress | None:
    if request.client is None:
        return None
    try:
        return ipaddress.ip_address(request.client.host)
    except ValueError:
        return None


def presented_token(request: Request) -> str | None:
    """The token from `Authorization: Bearer ...`, else from `?access_token=`."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.query_params.get("access_token") or None


class MailwireRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        extra: dict[str, Any] = dict(kwargs.pop("openapi_extra", None) or {})
        self.body_limit: int | None = extra.pop(_BODY_LIMIT, None)
        group, action = extra.get(_GROUP), extra.get(_ACTION)
        self.declared: tuple[Group, Action] | None = (
            (Group(group), Action(action)) if group and action else None
        )
        super().__init__(path, endpoint, openapi_extra=extra or None, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            if self.declared is not None:
                request.scope[PRINCIPAL_KEY] = await self._authenticate(request, *self.declared)
            limit = self.body_limit or request.app.state.body_limit
            limited = _limited(request, limit)
            if request.method not in _BODILESS_METHODS:
                # Read (and cache) the body here: FastAPI turns any error raised while
                # it reads the body itself into a generic 400, losing the 413.
                await limited.body()
            return await handler(limited)

        return guarded

    @staticmethod
    async def _authenticate(request: Request, group: Group, action: Action) -> TokenRecord:
        account = request.path_params.get("account")
        wanted = Operation(scope=Scope.API, group=group, action=action, account=account)
        caller = Caller(address=client_address(request), referrer=request.headers.get("referer"))
        tokens = (await services(request)).tokens
        return await tokens.authenticate(presented_token(request), wanted, caller)


def _limited(request: Request, limit: int) -> Request:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"The request body is larger than {limit} bytes")
    received = 0
    receive = request.receive

    async def counting_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLargeError(f"The request body is larger than {limit} bytes")
        return message

    return Request(request.scope, counting_receive)


#: The services, as a route parameter.
Svc = Annotated[Services, Depends(services)]
#: The `{account}` path parameter of routes answered in any process.
AccountId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ACCOUNT_ID_LENGTH, description="The account's id"),
]
