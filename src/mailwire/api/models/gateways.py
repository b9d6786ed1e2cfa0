"""Bodies of the SMTP gateway routes (`/v1/gateway`, `/v1/gateways`).

Fields, limits and defaults are the reference's (`CreateGateway`,
`UpdateGateway`, `GatewayResponse`, `GatewaysFilterResponse`), with the
domain's stricter rules for ids and hosts (see `domain.gateways`). Strings are
trimmed, except the password, which is kept byte for byte. A password is never
shown: `pass` reads `******` when one is set and is left out otherwise.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from mailwire.api.models.accounts import Secret
from mailwire.api.models.common import RequestModel, ResponseModel, iso_time
from mailwire.domain.gateways import (
    GATEWAY_ID_PATTERN,
    MASK,
    MAX_GATEWAY_ID_LENGTH,
    MAX_HOST_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_PORT,
    MAX_USER_LENGTH,
    MIN_PORT,
    Gateway,
    check_host,
    check_one_line,
)
from mailwire.store.gateways import KEEP_PASSWORD, PasswordChange

GatewayIdText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_GATEWAY_ID_LENGTH,
        pattern=GATEWAY_ID_PATTERN,
        description="Gateway id: letters, digits, '.', '_' and '-', not only dots",
        examples=["sendgun"],
    ),
]
GatewayName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_NAME_LENGTH, examples=["Transactional relay"]),
    AfterValidator(check_one_line),
]
UserName = Annotated[
    str,
    Field(max_length=MAX_USER_LENGTH, description="SMTP login name", examples=["smtp-user"]),
    AfterValidator(check_one_line),
]
Password = Annotated[
    Secret,
    Field(max_length=MAX_PASSWORD_LENGTH, description="SMTP password"),
    AfterValidator(check_one_line),
]
Host = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_HOST_LENGTH,
        description="Host name or IP address of the SMTP server",
        examples=["smtp.example.com"],
    ),
    AfterValidator(check_host),
]
PortNumber = Annotated[int, Field(ge=MIN_PORT, le=MAX_PORT, examples=[465])]

#: UpdateGateway fields the reference does not let a client clear with null.
_NOT_NULLABLE = ("name", "host", "port", "secure")


class CreateGateway(RequestModel):
    gateway: GatewayIdText | None = Field(
        None, description="Gateway id; one is generated when left out or null"
    )
    name: GatewayName
    user: UserName | None = None
    password: Password | None = Field(None, alias="pass")
    host: Host
    port: PortNumber
    secure: bool = Field(False, description="Start with TLS (usually port 465)")


class UpdateGateway(RequestModel):
    """Only the fields sent change. `user` and `pass` may be null to remove them;
    a left-out `pass` keeps the stored password."""

    name: GatewayName | None = None
    user: UserName | None = None
    password: Password | None = Field(None, alias="pass")
    host: Host | None = None
    port: PortNumber | None = None
    secure: bool | None = None

    @field_validator(*_NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for values sent: a left-out field keeps its default.
        if value is None:
            raise ValueError("must not be null")
        return value

    def changes(self) -> tuple[dict[str, Any], PasswordChange]:
        """The fields sent, under the store's names, and the password change."""
        given = self.model_fields_set
        fields: dict[str, Any] = {
            name: getattr(self, name) for name in (*_NOT_NULLABLE, "user") if name in given
        }
        if "user" in fields:
            fields["user"] = self.user or None
        password: PasswordChange = KEEP_PASSWORD
        if "password" in given:
            password = self.password or None
        return fields, password


class CreateGatewayResponse(ResponseModel):
    gateway: str
    state: str = Field(description="`new` when created, `existing` when an update")


class UpdateGatewayResponse(ResponseModel):
    gateway: str


class DeleteGatewayResponse(ResponseModel):
    gateway: str
    deleted: bool = True


class NetworkRouting(ResponseModel):
    localAddress: str | None = None
    name: str | None = None


class GatewayErrorEntry(ResponseModel):
    """The last failed delivery through the gateway (only the fields known)."""

    created: int | None = Field(None, description="When, in milliseconds since the epoch")
    status: str | None = Field(None, examples=["error"])
    response: str | None = Field(None, description="The SMTP server's reply")
    responseCode: int | None = None
    code: str | None = Field(None, examples=["EAUTH"])
    command: str | None = Field(None, examples=["AUTH PLAIN"])
    description: str | None = None
    networkRouting: NetworkRouting | None = None


class GatewaySummary(ResponseModel):
    gateway: str
    name: str
    deliveries: int = Field(description="Deliveries made through this gateway")
    lastUse: str | None = Field(description="Time of the last delivery; null before the first")
    lastError: GatewayErrorEntry | None = None

    @classmethod
    def of(cls, gateway: Gateway) -> GatewaySummary:
        return cls.model_validate(_summary(gateway))


class GatewayDetails(GatewaySummary):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    user: str | None
    password: str | None = Field(
        None, alias="pass", description='"******" when a password is set, left out otherwise'
    )
    host: str
    port: int
    secure: bool

    @classmethod
    def of(cls, gateway: Gateway) -> GatewayDetails:
        fields = _summary(gateway)
        fields.update(
            user=gateway.user, host=gateway.host, port=gateway.port, secure=gateway.secure
        )
        if gateway.has_password:
            fields["pass"] = MASK
        return cls.model_validate(fields)


class GatewaysResponse(ResponseModel):
    total: int
    page: int
    pages: int
    gateways: list[GatewaySummary]


def _summary(gateway: Gateway) -> dict[str, Any]:
    return {
        "gateway": gateway.id,
        "name": gateway.name,
        "deliveries": gateway.deliveries,
        "lastUse": None if gateway.last_use is None else iso_time(gateway.last_use),
        "lastError": None if gateway.last_error is None else dict(gateway.last_error),
    }
