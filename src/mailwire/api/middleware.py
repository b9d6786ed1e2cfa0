"""Outermost ASGI middleware: request id, one access log line per request, last-resort 500.

It sits inside Starlette's own error middleware, so an unhandled exception is
caught here first: logged with its traceback under the request id, answered
with the generic 500 envelope (no internals), never left to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailwire.api.errors import error_response, internal_error_response
from mailwire.api.routing import PRINCIPAL_KEY
from mailwire.logs import get_logger, log_context

log = get_logger("mailwire.api")

REQUEST_ID_HEADER = b"x-request-id"
#: What an access token looks like in a path: `DELETE /v1/tokens/{token}` accepts the
#: token itself, and a mistyped URL (trailing slash, extra segment) matches no route,
#: so the log masks the shape wherever it appears rather than a named parameter.
_TOKEN_IN_PATH = re.compile(r"[0-9A-Fa-f]{64}")
#: A client-supplied request id is kept only if it is short and plain.
_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500
        started = time.perf_counter()
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except asyncio.CancelledError:
                # The shutdown timeout ran out while this request was still running.
                if not response_started:
                    with contextlib.suppress(Exception):
                        await _shutting_down(scope, receive, send_with_id)
                raise
            except Exception:
                log.exception("http.unhandled_error", path=_logged_path(scope))
                if response_started:
                    raise
                await internal_error_response()(scope, receive, send_with_id)
            finally:
                _log_request(scope, status, started)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _SAFE_REQUEST_ID.fullmatch(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


async def _shutting_down(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(503, "The server is shutting down; retry the request")
    response.headers["Retry-After"] = "1"
    await response(scope, receive, send)


def _logged_path(scope: Scope) -> str:
    """The request path with anything token-shaped masked (never the query string)."""
    return _TOKEN_IN_PATH.sub("***", str(scope.get("path", "")))


def _log_request(scope: Scope, status: int, started: float) -> None:
    client = scope.get("client")
    principal = scope.get(PRINCIPAL_KEY)
    # The query string is left out: it may carry `access_token`.
    log.info(
        "http.request",
        method=scope.get("method"),
        path=_logged_path(scope),
        status=status,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        client=client[0] if client else None,
        token_id=getattr(principal, "id", None),
    )
