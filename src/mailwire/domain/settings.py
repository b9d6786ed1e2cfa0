"""Instance-wide settings (`/v1/settings`): every key, its default, and which keys are secret.

A key that was never set reads as its default here. The defaults are the
reference's where it states one (`notifyText` on, `notifyTextSize` 2 MiB,
`webhookEvents` empty, `webhooksEnabled` off, `scriptEnv` "{}", the export
limits ...); a switch the reference leaves unset reads as off (`False`), and
any other key without a stated default reads as `None`, which means "unset:
the component that uses it decides".

Secret keys (`SECRET_KEYS`) are kept in the encrypted secrets table, never in
the plain `settings` table, and are never shown: the API answers `true` or
`false` for "a value is set". URLs whose userinfo may hold a credential and
the values of custom webhook headers are shown masked (`mask_url`,
`mask_headers`); a masked value sent back unchanged is recognised by
`is_masked_echo` so that a client can round-trip what it read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mailwire.domain.events import EventName

#: What a masked credential reads as (the reference's marker).
MASK = "******"
#: `webhookEvents` / `notifyHeaders` entry meaning "all".
ALL = "*"

#: Where the secret settings live in the secrets table: (SECRET_SCOPE, SECRET_REF, key).
SECRET_SCOPE = "settings"  # noqa: S105  (an address in the vault, not a password)
SECRET_REF = "global"  # noqa: S105  (likewise)
SERVICE_SECRET = "serviceSecret"  # noqa: S105  (a setting name)
#: Bytes of randomness in a generated `serviceSecret` (shown as twice as many hex digits).
SERVICE_SECRET_BYTES = 16

#: Keys whose value is a credential: stored encrypted, shown only as set / not set.
SECRET_KEYS: frozenset[str] = frozenset(
    {
        SERVICE_SECRET,
        "openAiAPIKey",
        "smtpServerPassword",
        "imapProxyServerPassword",
        "documentStorePassword",
    }
)

#: Keys that hold a URL; a password (or a lone user name, often a token) in its
#: userinfo is masked when shown.
URL_KEYS: frozenset[str] = frozenset(
    {
        "webhooks",
        "serviceUrl",
        "notificationBaseUrl",
        "openAiAPIUrl",
        "authServer",
        "proxyUrl",
        "httpProxyUrl",
        "sentryDsn",
        "imapClientSupportUrl",
        "documentStoreUrl",
    }
)
#: Keys holding `[{key, value}]` header lists whose values are masked when shown.
HEADER_KEYS: frozenset[str] = frozenset({"webhooksCustomHeaders"})

#: Every key `POST /v1/settings` accepts, with the value it reads as when unset.
DEFAULTS: Mapping[str, Any] = {
    # Webhooks (webhook-events.md section 4).
    "webhooksEnabled": False,
    "webhooks": None,
    "webhookEvents": [],
    "webhooksCustomHeaders": [],
    "notifyHeaders": [],
    "inboxNewOnly": False,
    "notifyText": True,
    "notifyWebSafeHtml": False,
    "notifyTextSize": 2 * 1024 * 1024,
    "notifyAttachments": False,
    "notifyAttachmentSize": None,
    "notifyCalendarEvents": False,
    "resolveGmailCategories": False,
    "serviceUrl": None,
    "serviceSecret": None,
    "scriptEnv": "{}",
    # Public URLs and tracking.
    "notificationBaseUrl": None,
    "trackClicks": False,
    "trackOpens": False,
    # Sync.
    "imapIndexer": "full",
    "ignoreMailCertErrors": False,
    # AI features.
    "generateEmailSummary": False,
    "openAiAPIKey": None,
    "openAiModel": None,
    "openAiAPIUrl": None,
    "openAiTemperature": None,
    "openAiTopP": None,
    "openAiMaxTokens": None,
    "openAiPrompt": None,
    "openAiGenerateEmbeddings": False,
    "openAiPreProcessingFn": None,
    # Authentication, proxies, outbound connections.
    "authServer": None,
    "tokenAuditLog": False,
    "proxyEnabled": False,
    "proxyUrl": None,
    "httpProxyEnabled": False,
    "httpProxyUrl": None,
    "smtpEhloName": None,
    "imapStrategy": "default",
    "smtpStrategy": "default",
    "localAddresses": [],
    # MCP, logging, error reports.
    "mcpEnabled": False,
    "mcpOAuthEnabled": False,
    "logs": {"all": False, "maxLogLines": 10000},
    "sentryEnabled": False,
    "sentryDsn": None,
    # The SMTP submission server and the IMAP proxy (None: the process configuration decides).
    "smtpServerEnabled": False,
    "smtpServerPort": None,
    "smtpServerHost": None,
    "smtpServerProxy": False,
    "smtpServerAuthEnabled": False,
    "smtpServerPassword": None,
    "smtpServerTLSEnabled": False,
    "imapProxyServerEnabled": False,
    "imapProxyServerPort": None,
    "imapProxyServerHost": None,
    "imapProxyServerProxy": False,
    "imapProxyServerPassword": None,
    "imapProxyServerTLSEnabled": False,
    # Queues and sending.
    "queueKeep": None,
    "deliveryAttempts": 10,
    "gmailSubscriptionTtl": None,
    # Hosted pages and the user interface.
    "templateHeader": None,
    "templateHtmlHead": None,
    "enableApiProxy": False,
    "locale": "en",
    "timezone": None,
    "pageBrandName": None,
    # IMAP ID (RFC 2971) values.
    "imapClientName": None,
    "imapClientVersion": None,
    "imapClientVendor": None,
    "imapClientSupportUrl": None,
    # Exports.
    "exportMaxConcurrent": 2,
    "exportMaxGlobalConcurrent": 8,
    "gmailExportBatchSize": 10,
    "outlookExportBatchSize": 20,
    "exportMaxMessages": 500_000,
    "exportMaxSize": 10 * 1024**3,
}

#: Keys `GET /v1/settings` can be asked for although `POST` cannot set them (features
#: Mailwire does not offer); they always read as their default.
QUERY_ONLY_DEFAULTS: Mapping[str, Any] = {
    "trackSentMessages": False,
    "generateRiskAssessment": False,
    "documentStoreChatModel": None,
    "documentStoreEnabled": False,
    "documentStoreUrl": None,
    "documentStoreIndex": None,
    "documentStoreAuthEnabled": False,
    "documentStoreUsername": None,
    "documentStorePassword": None,
    "documentStoreGenerateEmbeddings": False,
    "documentStorePreProcessingEnabled": False,
}

#: Every key `GET /v1/settings` answers for.
QUERY_KEYS: tuple[str, ...] = (*DEFAULTS, *QUERY_ONLY_DEFAULTS)

#: The `eventTypes` answer: every event name, in the reference's order.
EVENT_TYPES: tuple[str, ...] = tuple(name.value for name in EventName)


def is_secret(key: str) -> bool:
    return key in SECRET_KEYS


def default(key: str) -> Any:
    """A fresh copy of the key's default (lists and objects are never shared)."""
    value = DEFAULTS.get(key, QUERY_ONLY_DEFAULTS.get(key))
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def origin(url: str) -> str:
    """Scheme, host and port of a URL (`serviceUrl` keeps only these)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "", "", ""))


def mask_url(url: str) -> str:
    """The URL with the credential in its userinfo replaced by `MASK`: the password
    when there is one, else the lone user name (often a token)."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    shown = f"{user}:{MASK}" if colon else MASK
    return urlunsplit((parts.scheme, f"{shown}@{host}", parts.path, parts.query, parts.fragment))


def mask_headers(headers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Header lists as shown: names kept, every non-empty value masked."""
    return [
        {"key": header.get("key"), "value": MASK if header.get("value") else ""}
        for header in headers
    ]


def shown(key: str, value: Any) -> Any:
    """A stored (non-secret) value as the API shows it."""
    if value is None:
        return None
    if key in URL_KEYS and isinstance(value, str):
        return mask_url(value)
    if key in HEADER_KEYS and isinstance(value, list):
        return mask_headers(value)
    return value


def carries_mask(key: str, value: Any) -> bool:
    """True if a value sent for `key` contains the mask where a credential would be."""
    if key in URL_KEYS and isinstance(value, str):
        return MASK in value
    if key in HEADER_KEYS and isinstance(value, list):
        return any(isinstance(header, Mapping) and header.get("value") == MASK for header in value)
    return False


def is_masked_echo(key: str, sent: Any, stored: Any) -> bool:
    """True if `sent` is exactly what the API shows for the stored value: the client
    sent back what it read, which changes nothing."""
    return stored is not None and shown(key, stored) == sent


def restore_masked_headers(
    sent: Sequence[Mapping[str, Any]], stored: Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]] | None:
    """`sent` with each masked value replaced by the stored value of the header with
    the same name (case-insensitive, each stored header used once), so that a client
    may add, drop or reorder headers without knowing the values it read masked.
    None when a masked entry has no stored counterpart."""
    unused = [dict(header) for header in stored or () if header.get("value")]
    restored: list[dict[str, Any]] = []
    for header in sent:
        if header.get("value") != MASK:
            restored.append(dict(header))
            continue
        name = str(header.get("key", "")).lower()
        match = next((old for old in unused if str(old.get("key", "")).lower() == name), None)
        if match is None:
            return None
        unused.remove(match)
        restored.append({"key": header.get("key"), "value": match["value"]})
    return restored
