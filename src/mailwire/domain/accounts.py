"""Mail accounts: their states, their stored configuration, and where credentials live.

An account's configuration is stored in the API's own shape (camelCase keys as
accepted by `POST /v1/account`) with every password and token removed; those
live in the secret store under `CREDENTIAL_SCOPE`, one row per field named in
`CREDENTIAL_FIELDS` (e.g. "imap.pass"). This module turns the stored shape into
typed settings for the workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

#: Secret-store scope of account credentials; the ref is the account id.
CREDENTIAL_SCOPE = "account"
#: Every credential field an account may hold, as "<section>.<key>".
CREDENTIAL_FIELDS = (
    "imap.pass",
    "imap.accessToken",
    "smtp.pass",
    "smtp.accessToken",
    "oauth2.accessToken",
    "oauth2.refreshToken",
)

#: Longest account id (the reference's limit).
MAX_ACCOUNT_ID_LENGTH = 256


class AccountState(StrEnum):
    """Connection states, as the reference names them."""

    INIT = "init"
    CONNECTING = "connecting"
    SYNCING = "syncing"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    PAUSED = "paused"
    AUTHENTICATION_ERROR = "authenticationError"
    CONNECT_ERROR = "connectError"
    UNSET = "unset"


class AccountKind(StrEnum):
    IMAP = "imap"
    SENDING = "sending"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class TlsOptions:
    reject_unauthorized: bool = True
    min_version: str | None = None


#: Account option keys for folders the user designated, by special use.
SPECIAL_PATH_KEYS = {
    "sentMailPath": "\\Sent",
    "draftsMailPath": "\\Drafts",
    "junkMailPath": "\\Junk",
    "trashMailPath": "\\Trash",
    "archiveMailPath": "\\Archive",
}


@dataclass(frozen=True, slots=True)
class ImapSettings:
    """What a worker needs to connect to and sync an IMAP account (no secrets)."""

    host: str
    port: int
    secure: bool
    user: str
    tls: TlsOptions = field(default_factory=TlsOptions)
    disable_rev2: bool = False
    disabled: bool = False
    resync_delay: int = 900
    #: special use (e.g. "\\Sent") -> path chosen by the user.
    special_paths: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_stored(cls, imap: Mapping[str, Any]) -> ImapSettings:
        auth = imap.get("auth") or {}
        tls = imap.get("tls") or {}
        return cls(
            host=str(imap.get("host", "")),
            port=int(imap.get("port", 993)),
            secure=bool(imap.get("secure", False)),
            user=str(auth.get("user", "")),
            tls=TlsOptions(
                reject_unauthorized=bool(tls.get("rejectUnauthorized", True)),
                min_version=tls.get("minVersion"),
            ),
            disable_rev2=bool(imap.get("disableIMAP4rev2", False)),
            disabled=bool(imap.get("disabled", False)),
            resync_delay=int(imap.get("resyncDelay", 900)),
            special_paths={
                use: str(imap[key]) for key, use in SPECIAL_PATH_KEYS.items() if imap.get(key)
            },
        )


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    secure: bool
    user: str | None
    tls: TlsOptions = field(default_factory=TlsOptions)

    @classmethod
    def from_stored(cls, smtp: Mapping[str, Any]) -> SmtpSettings:
        auth = smtp.get("auth") or {}
        tls = smtp.get("tls") or {}
        return cls(
            host=str(smtp.get("host", "")),
            port=int(smtp.get("port", 587)),
            secure=bool(smtp.get("secure", False)),
            user=auth.get("user"),
            tls=TlsOptions(
                reject_unauthorized=bool(tls.get("rejectUnauthorized", True)),
                min_version=tls.get("minVersion"),
            ),
        )


@dataclass(frozen=True, slots=True)
class Account:
    """One row of the accounts table. Times are epoch milliseconds."""

    id: str
    name: str
    email: str | None
    kind: AccountKind
    settings: Mapping[str, Any]
    state: AccountState
    last_error: Mapping[str, Any] | None
    notify_from: int
    created_at: int
    updated_at: int
    sync_time: int | None = None
    initialized: bool = False
    revision: int = 0
    sync_seq: int = 0
    owner: str | None = None
    lease_expires: int | None = None

    @property
    def logs(self) -> bool:
        """Whether the protocol exchange is recorded (`logs: true`)."""
        return bool(self.settings.get("logs", False))

    def imap(self) -> ImapSettings | None:
        """The IMAP settings, or None when the account has none (or `imap: false`)."""
        imap = self.settings.get("imap")
        return ImapSettings.from_stored(imap) if isinstance(imap, Mapping) else None

    def smtp(self) -> SmtpSettings | None:
        smtp = self.settings.get("smtp")
        return SmtpSettings.from_stored(smtp) if isinstance(smtp, Mapping) else None

    @property
    def paths(self) -> tuple[str, ...]:
        """Folders to sync (`path`); empty means every folder."""
        value = self.settings.get("path")
        if not value or value == ["*"]:
            return ()
        return tuple(str(path) for path in value)

    @property
    def sync_from(self) -> int | None:
        """`syncFrom` in epoch milliseconds: older messages are not indexed; None: all are."""
        value = self.settings.get("syncFrom")
        if not isinstance(value, str):
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return None if moment.tzinfo is None else int(moment.timestamp() * 1000)

    @property
    def subconnections(self) -> tuple[str, ...]:
        """Folders that get their own IDLE connection besides the main one."""
        return tuple(str(path) for path in self.settings.get("subconnections") or ())

    def wants_sync(self) -> bool:
        """Whether a worker should keep a connection for this account."""
        imap = self.imap()
        return imap is not None and not imap.disabled and bool(imap.host)


def initial_state(settings: Mapping[str, Any]) -> AccountState:
    """The state a new or reconfigured account starts in."""
    imap = settings.get("imap")
    if not isinstance(imap, Mapping) or imap.get("disabled"):
        return AccountState.UNSET
    return AccountState.INIT


def kind_of(settings: Mapping[str, Any]) -> AccountKind:
    if isinstance(settings.get("imap"), Mapping):
        return AccountKind.IMAP
    if isinstance(settings.get("smtp"), Mapping):
        return AccountKind.SENDING
    return AccountKind.INVALID
