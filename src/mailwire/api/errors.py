"""Errors on the wire: one table from exception to HTTP status, one JSON envelope.

Every failure answers `{"statusCode", "error", "message"}`, plus `fields` for
validation errors, `code` where a machine-readable code helps, and `ttl` for
rate limits; the same shapes EmailEngine clients already parse. A 500 never
carries internals: the details go to the log under the request id.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailwire.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    InputError,
    MailwireError,
    NotFoundError,
    RateLimitedError,
    StoreUnavailableError,
    UnavailableError,
    UpstreamError,
)


class PayloadTooLargeError(MailwireError):
    """The request body is over the route's limit (HTTP 413)."""

    code = "PayloadTooLarge"


#: Exception class -> HTTP status. The first matching entry wins (subclasses first).
STATUS_BY_ERROR: tuple[tuple[type[MailwireError], int], ...] = (
    (InputError, 400),
    (AuthenticationError, 401),
    (AccessDeniedError, 403),
    (NotFoundError, 404),
    (PayloadTooLargeError, 413),
    (ConflictError, 409),
    (RateLimitedError, 429),
    (UpstreamError, 502),
    (StoreUnavailableError, 503),
    (UnavailableError, 503),
)


#: Errors whose answer names a machine-readable `code` (the reference's error shape).
_WITH_CODE = (NotFoundError, StoreUnavailableError, ConflictError, UpstreamError, UnavailableError)


def envelope(status: int, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "statusCode": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
    }
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="mailwire"'}
    return JSONResponse(envelope(status, message, **extra), status_code=status, headers=headers)


def status_for(exc: MailwireError) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return status
    return 500


def mailwire_error_response(exc: MailwireError) -> JSONResponse:
    status = status_for(exc)
    if status == 500:
        return internal_error_response()
    extra: dict[str, Any] = {}
    if isinstance(exc, InputError) and exc.key:
        extra["fields"] = [{"message": str(exc), "key": exc.key}]
    if isinstance(
        exc,
        NotFoundError | StoreUnavailableError | ConflictError | UpstreamError | UnavailableError,
    ):
        extra["code"] = exc.code
    if isinstance(exc, RateLimitedError):
        extra["ttl"] = exc.retry_after
    response = error_response(status, str(exc), **extra)
    if isinstance(exc, RateLimitedError | UnavailableError):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def internal_error_response() -> JSONResponse:
    return error_response(500, "An unexpected error occurred", code="InternalError")


def validation_fields(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Turn pydantic's error list into `[{"key", "message"}]` written for people."""
    fields: list[dict[str, str]] = []
    for error in errors:
        # Only the first item names where the value came from (body, query, path,
        # header); a body field may itself be called "path".
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in ("body", "query", "path", "header"):
            location = location[1:]
        key = ".".join(location) or "body"
        if error.get("type") == "json_invalid":
            key = "body"  # pydantic reports a character offset here, not a field
        fields.append({"message": _describe(error, key), "key": key})
    return fields


def _describe(error: dict[str, Any], key: str) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "The request body is not valid JSON"
    if kind == "extra_forbidden":
        return f'"{key}" is not allowed'
    if kind == "missing":
        return f'"{key}" is required'
    if kind == "model_attributes_type" or (kind == "dict_type" and key == "body"):
        return "The request body must be a JSON object"
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    return f'"{key}": {message}'


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MailwireError)
    async def _mailwire(_request: Request, exc: MailwireError) -> JSONResponse:
        return mailwire_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = validation_fields(exc.errors())
        message = fields[0]["message"] if len(fields) == 1 else "The request has invalid input"
        return error_response(400, message, fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "No such endpoint", 405: "This method is not allowed here"}
        message = messages.get(exc.status_code, HTTPStatus(exc.status_code).phrase)
        response = error_response(exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response
