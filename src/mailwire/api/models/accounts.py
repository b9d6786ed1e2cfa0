"""Bodies of the account routes (`/v1/account`, `/v1/accounts`, `/v1/verifyAccount`).

Requests are validated here with the reference's limits, then handed to the
services as plain documents in the API's shape (`to_document`). Responses are
built from stored accounts; they never carry a password or token, since the
services strip those before anything is stored or shown.

Strings are trimmed (see `RequestModel`) except passwords and tokens, which are
kept byte for byte.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from mailwire.api.models.common import RequestModel, ResponseModel, Single, epoch_ms, iso_time
from mailwire.domain.accounts import MAX_ACCOUNT_ID_LENGTH, Account, AccountState
from mailwire.services.accounts import public_settings

#: Limits as the reference documents them.
MAX_NAME_LENGTH = 256
MAX_PASSWORD_LENGTH = 256
MAX_ACCESS_TOKEN_LENGTH = 16384
MAX_PATH_LENGTH = 1024
MAX_HOSTNAME_LENGTH = 255
MAX_URL_LENGTH = 2048
#: Our own bounds where the reference sets none.
MAX_PATHS = 1000
MAX_SUBCONNECTIONS = 32
MAX_CUSTOM_HEADERS = 100
MAX_EMAIL_LENGTH = 512

Secret = Annotated[str, StringConstraints(strip_whitespace=False)]
Hostname = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_HOSTNAME_LENGTH,
        pattern=r"^[A-Za-z0-9._:\[\]-]+$",
        description="Host name or IP address",
    ),
]
Port = Annotated[int, Field(ge=1, le=65535)]
Email = Annotated[str, Field(max_length=MAX_EMAIL_LENGTH, pattern=r"^[^@\s]+@[^@\s]+$")]
WebUrl = Annotated[str, Field(max_length=MAX_URL_LENGTH, pattern=r"^https?://\S+$")]
ProxyUrl = Annotated[
    str, Field(max_length=MAX_URL_LENGTH, pattern=r"^(https?|socks[45]?a?)://\S+$")
]
FolderPath = Annotated[str, Field(min_length=1, max_length=MAX_PATH_LENGTH)]
Indexer = Literal["full", "fast"]
TlsVersion = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
AccountId = Annotated[str, Field(min_length=1, max_length=MAX_ACCOUNT_ID_LENGTH)]


class TlsBody(RequestModel):
    rejectUnauthorized: bool | None = Field(None, description="Refuse invalid certificates")
    minVersion: TlsVersion | None = Field(
        None,
        description=(
            "Lowest TLS version to accept. TLS 1.0 and 1.1 are never offered"
            " (RFC 8996), so only TLSv1.3 changes anything"
        ),
    )


class AuthBody(RequestModel):
    user: str = Field(max_length=256)
    password: Secret | None = Field(None, alias="pass", max_length=MAX_PASSWORD_LENGTH)
    accessToken: Secret | None = Field(None, max_length=MAX_ACCESS_TOKEN_LENGTH)


class ImapBody(RequestModel):
    useAuthServer: bool | None = None
    auth: AuthBody | None = None
    host: Hostname | None = None
    port: Port | None = None
    secure: bool | None = None
    tls: TlsBody | None = None
    disableIMAP4rev2: bool | None = None
    resyncDelay: int | None = Field(None, ge=0, le=7 * 86_400)
    disabled: bool | None = None
    sentMailPath: FolderPath | None = None
    draftsMailPath: FolderPath | None = None
    junkMailPath: FolderPath | None = None
    trashMailPath: FolderPath | None = None
    archiveMailPath: FolderPath | None = None


class SmtpBody(RequestModel):
    useAuthServer: bool | None = None
    auth: AuthBody | None = None
    host: Hostname
    port: Port
    secure: bool | None = None
    tls: TlsBody | None = None


class OAuth2AuthBody(RequestModel):
    user: str | None = Field(None, max_length=256)
    delegatedUser: str | None = Field(None, max_length=256)
    delegatedAccount: str | None = Field(None, max_length=MAX_ACCOUNT_ID_LENGTH)


class OAuth2Body(RequestModel):
    authorize: bool | None = None
    redirectUrl: WebUrl | None = None
    provider: str | None = Field(None, max_length=256)
    auth: OAuth2AuthBody
    useAuthServer: bool | None = None
    accessToken: Secret | None = Field(None, max_length=MAX_ACCESS_TOKEN_LENGTH)
    refreshToken: Secret | None = Field(None, max_length=MAX_ACCESS_TOKEN_LENGTH)
    expires: AwareDatetime | None = None


class CustomHeader(RequestModel):
    """An extra HTTP header for webhook requests. The name must be an RFC 9110 token
    and the value may hold no control character but tab, so that a header can never
    end early and smuggle another header or a body into the request."""

    key: str = Field(min_length=1, max_length=1024, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    value: str = Field("", max_length=10240, pattern=r"^[^\x00-\x08\x0a-\x1f\x7f]*$")


#: Sections that may be `false` ("none of this") instead of an object.
SECTIONS = ("imap", "smtp", "oauth2")


class _Sections(RequestModel):
    """`imap: false` (and `smtp`, `oauth2`) means "remove this section"; `auth: false`
    inside one means "no login".

    The fields are typed `Body | None` and a `false` is noted in `removed` before
    validation: a union with `Literal[False]` would report every error twice, under
    member names no client knows.
    """

    removed: SkipJsonSchema[tuple[str, ...]] = Field((), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _note_removed(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        data.pop("removed", None)
        removed = tuple(key for key in SECTIONS if data.get(key) is False)
        for key in removed:
            del data[key]
        for key in SECTIONS:
            section = data.get(key)
            if isinstance(section, dict) and section.get("auth") is False:
                # No stored login: the same as leaving `auth` out of a new section.
                data[key] = {k: v for k, v in section.items() if k != "auth"}
        if removed:
            data["removed"] = removed
        return data

    def to_document(self) -> dict[str, Any]:
        """The validated body as the services take it (`notifyFrom` in epoch ms)."""
        document = self.model_dump(
            mode="json", by_alias=True, exclude_unset=True, exclude={"notifyFrom"}
        )
        document.update(dict.fromkeys(self.removed, False))
        notify_from = getattr(self, "notifyFrom", None)
        if notify_from is not None:
            document["notifyFrom"] = epoch_ms(notify_from)
        return document


class _AccountFields(_Sections):
    """Fields shared by registration and update."""

    email: Email | None = None
    expectedEmail: Email | None = None
    path: Single[FolderPath] | None = Field(None, max_length=MAX_PATHS)
    subconnections: Single[FolderPath] | None = Field(None, max_length=MAX_SUBCONNECTIONS)
    webhooks: WebUrl | None = None
    copy_: bool | None = Field(None, alias="copy")
    logs: bool | None = None
    notifyFrom: AwareDatetime | None = Field(None, description="No events for older messages")
    syncFrom: AwareDatetime | None = Field(None, description="Index no older messages")
    proxy: ProxyUrl | None = None
    smtpEhloName: Hostname | None = None
    imapIndexer: Indexer | None = None
    webhooksCustomHeaders: list[CustomHeader] | None = Field(None, max_length=MAX_CUSTOM_HEADERS)
    locale: str | None = Field(None, max_length=100)
    tz: str | None = Field(None, max_length=100)


class CreateAccount(_AccountFields):
    account: AccountId | None = Field(description="Your id for the account; null to get one")
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    logs: bool = False
    imap: ImapBody | None = None
    smtp: SmtpBody | None = None
    oauth2: OAuth2Body | None = None


class ImapUpdate(ImapBody):
    partial: bool = Field(False, description="Merge into the stored settings")


class SmtpUpdate(SmtpBody):
    partial: bool = Field(False, description="Merge into the stored settings")
    host: Hostname | None = None  # type: ignore[assignment]  # optional when merging
    port: Port | None = None  # type: ignore[assignment]


class OAuth2Update(OAuth2Body):
    partial: bool = Field(False, description="Merge into the stored settings")


class UpdateAccount(_AccountFields):
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH)
    imap: ImapUpdate | None = None
    smtp: SmtpUpdate | None = None
    oauth2: OAuth2Update | None = None


class CreateAccountResponse(ResponseModel):
    account: str
    state: Literal["new", "existing"]


class AccountIdResponse(ResponseModel):
    account: str


class DeleteAccountResponse(ResponseModel):
    account: str
    deleted: bool = True


class AccountSummary(ResponseModel):
    account: str
    name: str | None = None
    email: str | None = None
    type: str
    state: AccountState
    webhooks: str | None = None
    proxy: str | None = None
    smtpEhloName: str | None = None
    syncTime: str | None = None
    lastError: dict[str, Any] | None = None

    @classmethod
    def of(cls, account: Account) -> AccountSummary:
        settings = account.settings
        return cls(
            account=account.id,
            name=account.name,
            email=account.email,
            type=account.kind.value,
            state=account.state,
            webhooks=settings.get("webhooks"),
            proxy=settings.get("proxy"),
            smtpEhloName=settings.get("smtpEhloName"),
            syncTime=None if account.sync_time is None else iso_time(account.sync_time),
            lastError=dict(account.last_error) if account.last_error else None,
        )


class AccountsResponse(ResponseModel):
    total: int
    page: int
    pages: int
    accounts: list[AccountSummary]


class AccountResponse(ResponseModel):
    account: str
    name: str
    email: str | None = None
    expectedEmail: str | None = None
    copy_: bool | None = Field(None, alias="copy", serialization_alias="copy")
    logs: bool = False
    notifyFrom: str | None = None
    syncFrom: str | None = None
    path: list[str] | None = None
    imapIndexer: Indexer | None = None
    subconnections: list[str] | None = None
    webhooks: str | None = None
    proxy: str | None = None
    smtpEhloName: str | None = None
    imap: dict[str, Any] | None = None
    smtp: dict[str, Any] | None = None
    oauth2: dict[str, Any] | None = None
    webhooksCustomHeaders: list[dict[str, Any]] | None = None
    locale: str | None = None
    tz: str | None = None
    state: AccountState
    type: str
    sendOnly: bool
    syncTime: str | None = None
    lastError: dict[str, Any] | None = None

    @classmethod
    def of(cls, account: Account) -> AccountResponse:
        shown = public_settings(account.settings)
        # `imap: false` and friends mean "none"; the reference shows nothing then.
        for section in ("imap", "smtp", "oauth2"):
            if not isinstance(shown.get(section), dict):
                shown.pop(section, None)
        known = set(cls.model_fields) | {"copy"}
        fields = {key: value for key, value in shown.items() if key in known}
        fields.update(
            account=account.id,
            name=account.name,
            email=account.email,
            notifyFrom=iso_time(account.notify_from),
            state=account.state,
            type=account.kind.value,
            sendOnly=account.imap() is None,
            syncTime=None if account.sync_time is None else iso_time(account.sync_time),
            lastError=dict(account.last_error) if account.last_error else None,
        )
        return cls.model_validate(fields)


class ReconnectBody(RequestModel):
    reconnect: bool = False


class ReconnectResponse(ResponseModel):
    reconnect: bool


class SyncBody(RequestModel):
    sync: bool = False


class SyncResponse(ResponseModel):
    sync: bool


class FlushBody(RequestModel):
    flush: bool = False
    notifyFrom: AwareDatetime | None = None
    imapIndexer: Indexer | None = None


class FlushResponse(ResponseModel):
    flush: bool


class VerifyImapBody(ImapBody):
    # A check needs somewhere to connect.
    host: Hostname
    port: Port


class VerifyAccount(_Sections):
    mailboxes: bool = False
    imap: VerifyImapBody | None = None
    smtp: SmtpBody | None = None
    proxy: ProxyUrl | None = None
    smtpEhloName: Hostname | None = None


class VerifyResult(ResponseModel):
    success: bool
    error: str | None = None
    code: str | None = None
    responseText: str | None = None


class VerifyResponse(ResponseModel):
    imap: VerifyResult | None = None
    smtp: VerifyResult | None = None
    mailboxes: list[dict[str, Any]] | None = None
