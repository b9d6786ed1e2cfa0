"""Bodies of `GET /v1/settings` and `POST /v1/settings`.

`SettingsBody` is the change set of a POST: every key is optional, unknown keys
are refused (400, like every request body), and each value is checked with the
reference's limits, or ours where it sets none (`MAX_*` below). `null` resets a
key to its default. Normalised on input:
- `notifyHeaders` entries are lower-cased, since webhook payloads match header
  names in lower case (a mixed-case entry would otherwise never match);
- an empty string for a URL key means "unset", like `null`;
- `serviceUrl` keeps only its origin (done by the service).

What GET shows (`SettingsQueryResponse`) never includes a credential:
- secret keys (`serviceSecret`, `openAiAPIKey`, `smtpServerPassword`,
  `imapProxyServerPassword`, `documentStorePassword`) read as `true` when a
  value is set, `false` otherwise; they are stored encrypted;
- the password (or lone user name) in a URL's userinfo and every custom header
  value read as `******`. Sending such a masked value back unchanged keeps the
  stored one; any other value containing the mask is refused.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from mailwire.api.models.accounts import (
    MAX_CUSTOM_HEADERS,
    MAX_URL_LENGTH,
    CustomHeader,
    Hostname,
    Indexer,
    ProxyUrl,
    Secret,
    WebUrl,
)
from mailwire.api.models.common import OneLine, RequestModel, ResponseModel, Single
from mailwire.domain.settings import ALL, EVENT_TYPES, QUERY_KEYS, SECRET_KEYS
from mailwire.services.settings import EVENT_TYPES_KEY

#: The reference's limits.
MAX_SCRIPT_LENGTH = 1024 * 1024
MAX_PREPROCESSING_FN_LENGTH = 512 * 1024
MAX_TEXT_LENGTH = 1024
MAX_HEADER_NAME_LENGTH = 256
MAX_SECRET_LENGTH = 1024
#: Our bounds where the reference sets none.
MAX_EVENT_ENTRIES = len(EVENT_TYPES) + 1
MAX_NOTIFY_HEADERS = 1000
MAX_LOCAL_ADDRESSES = 256
MAX_API_KEY_LENGTH = 4096
MAX_MODEL_NAME_LENGTH = 256
MAX_NOTIFY_TEXT_SIZE = 100 * 1024 * 1024
MAX_NOTIFY_ATTACHMENT_SIZE = 1024**3
MAX_TOKENS = 10_000_000
MAX_QUEUE_KEEP = 1_000_000
MAX_DELIVERY_ATTEMPTS = 1000
MAX_EXPORT_SIZE = 1024**4
#: A POST may carry several 1 MiB texts (prompt, templates, scriptEnv).
SETTINGS_BODY_LIMIT = 8 * 1024 * 1024

_KNOWN_EVENTS = frozenset((*EVENT_TYPES, ALL))


def _blank_as_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _has_host(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if not parts.hostname:
        raise ValueError("must name a host")
    return value


def _known_event(value: str) -> str:
    if value not in _KNOWN_EVENTS:
        raise ValueError(f'"{value}" is not a known event name (see ?eventTypes=true)')
    return value


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("must be an IP address (no network prefix)") from None
    return value


def _bind_address(value: str) -> str:
    # An empty host means "every interface".
    return value if value == "" else _ip_address(value)


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not an IANA time zone name") from None
    return value


def _json_object(value: str) -> str:
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ValueError("must be a JSON object in a string") from None
    if not isinstance(parsed, dict):
        raise ValueError("must be a JSON object in a string")
    return value


#: An http(s) URL, or null; an empty string means null ("unset").
Url = Annotated[
    Annotated[WebUrl, AfterValidator(_has_host)] | None, BeforeValidator(_blank_as_none)
]
AnyProxyUrl = Annotated[
    Annotated[ProxyUrl, AfterValidator(_has_host)] | None, BeforeValidator(_blank_as_none)
]
SupportUrl = Annotated[
    Annotated[str, Field(max_length=MAX_URL_LENGTH, pattern=r"^(https?://|mailto:)\S+$")] | None,
    BeforeValidator(_blank_as_none),
]
EventType = Annotated[str, Field(max_length=MAX_HEADER_NAME_LENGTH), AfterValidator(_known_event)]
#: A message header name (RFC 5322 section 3.6.8: printable ASCII but colon), or "*".
HeaderName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_HEADER_NAME_LENGTH, pattern=r"^[!-9;-~]+$"),
    AfterValidator(str.lower),
]
IpAddress = Annotated[str, Field(max_length=64), AfterValidator(_ip_address)]
BindAddress = Annotated[str, Field(max_length=64), AfterValidator(_bind_address)]
Port = Annotated[int, Field(ge=0, le=65535)]
Strategy = Literal["default", "dedicated", "random"]
Locale = Literal["en", "et", "fr", "de", "pl", "ja", "nl"]
Text = Annotated[OneLine, Field(max_length=MAX_TEXT_LENGTH)]
SettingSecret = Annotated[Secret, Field(min_length=1, max_length=MAX_SECRET_LENGTH)]
Html = Annotated[str, Field(max_length=MAX_SCRIPT_LENGTH)]
ScriptEnv = Annotated[str, Field(max_length=MAX_SCRIPT_LENGTH), AfterValidator(_json_object)]


class LogSettings(RequestModel):
    all: bool = Field(False, description="Keep detailed logs for every account")
    maxLogLines: int = Field(10000, ge=0, le=1_000_000, description="Log entries per account")


class SettingsBody(RequestModel):
    """The keys to change; leave a key out to keep it, send `null` to reset it."""

    # Webhooks.
    webhooksEnabled: bool | None = Field(None, description="Master switch for webhooks")
    webhooks: Url = Field(None, description="Where webhooks are POSTed")
    webhookEvents: list[EventType] | None = Field(
        None, max_length=MAX_EVENT_ENTRIES, description='Events sent to `webhooks`; "*" = all'
    )
    webhooksCustomHeaders: list[CustomHeader] | None = Field(
        None, max_length=MAX_CUSTOM_HEADERS, description="Extra headers on webhook requests"
    )
    notifyHeaders: list[HeaderName] | None = Field(
        None,
        max_length=MAX_NOTIFY_HEADERS,
        description='Message headers copied into messageNew payloads ("*" = all); '
        "stored in lower case",
    )
    inboxNewOnly: bool | None = None
    notifyText: bool | None = None
    notifyWebSafeHtml: bool | None = None
    notifyTextSize: int | None = Field(None, ge=0, le=MAX_NOTIFY_TEXT_SIZE)
    notifyAttachments: bool | None = None
    notifyAttachmentSize: int | None = Field(None, ge=0, le=MAX_NOTIFY_ATTACHMENT_SIZE)
    notifyCalendarEvents: bool | None = None
    resolveGmailCategories: bool | None = None
    serviceUrl: Url = Field(None, description="This instance's public URL (origin)")
    serviceSecret: SettingSecret | None = Field(None, description="Webhook signing key")
    scriptEnv: ScriptEnv | None = Field(
        None, description="A JSON object, as a string, given to route functions as `env`"
    )
    # Public URLs and tracking.
    notificationBaseUrl: Url = None
    trackClicks: bool | None = None
    trackOpens: bool | None = None
    # Sync.
    imapIndexer: Indexer | None = None
    ignoreMailCertErrors: bool | None = None
    # AI features.
    generateEmailSummary: bool | None = None
    openAiAPIKey: Annotated[Secret, Field(min_length=1, max_length=MAX_API_KEY_LENGTH)] | None = (
        None
    )
    openAiModel: Annotated[OneLine, Field(max_length=MAX_MODEL_NAME_LENGTH)] | None = None
    openAiAPIUrl: Url = None
    openAiTemperature: float | None = Field(None, ge=0, le=2)
    openAiTopP: float | None = Field(None, ge=0, le=1)
    openAiMaxTokens: int | None = Field(None, ge=0, le=MAX_TOKENS)
    openAiPrompt: Html | None = None
    openAiGenerateEmbeddings: bool | None = None
    openAiPreProcessingFn: Annotated[str, Field(max_length=MAX_PREPROCESSING_FN_LENGTH)] | None = (
        None
    )
    # Authentication, proxies, outbound connections.
    authServer: Url = None
    tokenAuditLog: bool | None = None
    proxyEnabled: bool | None = None
    proxyUrl: AnyProxyUrl = None
    httpProxyEnabled: bool | None = None
    httpProxyUrl: AnyProxyUrl = None
    smtpEhloName: Hostname | None = None
    imapStrategy: Strategy | None = None
    smtpStrategy: Strategy | None = None
    localAddresses: Single[IpAddress] | None = Field(None, max_length=MAX_LOCAL_ADDRESSES)
    # MCP, logging, error reports.
    mcpEnabled: bool | None = None
    mcpOAuthEnabled: bool | None = None
    logs: LogSettings | None = None
    sentryEnabled: bool | None = None
    sentryDsn: Url = None
    # The SMTP submission server and the IMAP proxy.
    smtpServerEnabled: bool | None = None
    smtpServerPort: Port | None = None
    smtpServerHost: BindAddress | None = None
    smtpServerProxy: bool | None = None
    smtpServerAuthEnabled: bool | None = None
    smtpServerPassword: SettingSecret | None = None
    smtpServerTLSEnabled: bool | None = None
    imapProxyServerEnabled: bool | None = None
    imapProxyServerPort: Port | None = None
    imapProxyServerHost: BindAddress | None = None
    imapProxyServerProxy: bool | None = None
    imapProxyServerPassword: SettingSecret | None = None
    imapProxyServerTLSEnabled: bool | None = None
    # Queues and sending.
    queueKeep: int | None = Field(None, ge=0, le=MAX_QUEUE_KEEP)
    deliveryAttempts: int | None = Field(None, ge=0, le=MAX_DELIVERY_ATTEMPTS)
    gmailSubscriptionTtl: int | None = Field(None, ge=0, le=365)
    # Hosted pages and the user interface.
    templateHeader: Html | None = None
    templateHtmlHead: Html | None = None
    enableApiProxy: bool | None = None
    locale: Locale | None = None
    timezone: Annotated[str, Field(max_length=100), AfterValidator(_time_zone)] | None = None
    pageBrandName: Text | None = None
    # IMAP ID values (RFC 2971).
    imapClientName: Text | None = None
    imapClientVersion: Text | None = None
    imapClientVendor: Text | None = None
    imapClientSupportUrl: SupportUrl = None
    # Exports.
    exportMaxConcurrent: int | None = Field(None, ge=1, le=100)
    exportMaxGlobalConcurrent: int | None = Field(None, ge=1, le=100)
    gmailExportBatchSize: int | None = Field(None, ge=1, le=50)
    outlookExportBatchSize: int | None = Field(None, ge=1, le=20)
    exportMaxMessages: int | None = Field(None, ge=1, le=10_000_000)
    exportMaxSize: int | None = Field(None, ge=1, le=MAX_EXPORT_SIZE)

    def changes(self) -> dict[str, Any]:
        """The keys the client sent, in the stored (JSON) shape."""
        # Top level only: a nested object (`logs`) is stored whole, defaults included.
        return self.model_dump(mode="json", include=self.model_fields_set)


class SettingsUpdatedResponse(ResponseModel):
    updated: list[str] = Field(description="The keys that were written")


class SettingsQuery(BaseModel):
    """The query flags of GET (each `true` asks for one key); other arguments are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _query_model() -> type[SettingsQuery]:
    flags: dict[str, Any] = dict.fromkeys((EVENT_TYPES_KEY, *QUERY_KEYS), (bool, False))
    return create_model("SettingsQueryFlags", __base__=SettingsQuery, **flags)


#: The query flags GET understands, as a model (validated from the query string).
SettingsQueryFlags = _query_model()


def query_parameters() -> list[dict[str, Any]]:
    """The OpenAPI `parameters` of GET: one boolean flag per key."""
    return [
        {"name": name, "in": "query", "schema": {"type": "boolean", "default": False}}
        for name in (EVENT_TYPES_KEY, *QUERY_KEYS)
    ]


def _response_model() -> type[ResponseModel]:
    fields: dict[str, Any] = {EVENT_TYPES_KEY: (list[str] | None, None)}
    for key in QUERY_KEYS:
        annotation: Any = Any
        if key in SECRET_KEYS:
            annotation = bool
        elif key in SettingsBody.model_fields:
            annotation = SettingsBody.model_fields[key].annotation
        fields[key] = (annotation | None if annotation is not Any else Any, None)
    return create_model("SettingsQueryResponse", __base__=ResponseModel, **fields)


#: What GET answers (documentation only: only the asked-for keys are present).
SettingsQueryResponse = _response_model()
