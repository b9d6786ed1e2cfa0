"""Shapes shared by many routes: strict request models, list wrapping, times, error bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

T = TypeVar("T")


def _single(value: object) -> object:
    # The reference accepts a lone value wherever a list is expected ("single").
    if value is None or isinstance(value, list):
        return value
    return [value]


#: A list that also accepts one bare value (`"api"` means `["api"]`).
Single = Annotated[list[T], BeforeValidator(_single)]


class RequestModel(BaseModel):
    """Request bodies: unknown fields are refused and strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(frozen=True)


def iso_time(ms: int) -> str:
    """Milliseconds since the epoch as `2021-02-17T13:43:18.860Z`."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def pages(total: int, page_size: int) -> int:
    return -(-total // page_size)


class ValidationErrorField(ResponseModel):
    message: str
    key: str


class ErrorResponse(ResponseModel):
    statusCode: int = Field(examples=[403])
    error: str = Field(examples=["Forbidden"])
    message: str
    code: str | None = None


class ValidationErrorResponse(ErrorResponse):
    fields: list[ValidationErrorField] | None = None


class RateLimitErrorResponse(ErrorResponse):
    ttl: int | None = Field(None, description="Seconds until the limit resets")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses a route can answer."""
    described = {
        400: ("The input did not pass validation", ValidationErrorResponse),
        401: ("No valid access token was presented", ErrorResponse),
        403: ("The token does not allow this operation", ErrorResponse),
        404: ("The addressed entity does not exist", ErrorResponse),
        413: ("The request body is over the size limit", ErrorResponse),
        429: ("Too many requests with this token", RateLimitErrorResponse),
        500: ("An unexpected error; details are in the server log", ErrorResponse),
        503: ("The store cannot be reached", ErrorResponse),
    }
    return {
        status: {"description": described[status][0], "model": described[status][1]}
        for status in statuses
    }


STANDARD_ERRORS = (400, 401, 403, 429, 500)
