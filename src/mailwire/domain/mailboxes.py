"""Mailboxes (folders): their index record and how their special use is decided.

Special use comes from, in order: the account's own choice (`sentMailPath` and
friends, source "user"), the server's LIST attributes (RFC 6154, source
"extension"), and well-known names in several languages (source "name"), so
that servers without SPECIAL-USE still get a Sent and a Junk folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: RFC 6154 section 2 attributes, plus \Inbox for the INBOX itself.
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")

#: Lower-cased folder names (last path segment) and the use they usually have.
_NAMES: Mapping[str, str] = {
    **dict.fromkeys(("sent", "sent items", "sent mail", "sent messages", "gesendet"), "\\Sent"),
    **dict.fromkeys(("envoyés", "elementos enviados", "enviados", "posta inviata"), "\\Sent"),
    **dict.fromkeys(("drafts", "draft", "entwürfe", "brouillons", "borradores"), "\\Drafts"),
    **dict.fromkeys(("junk", "spam", "junk e-mail", "junk email", "bulk mail"), "\\Junk"),
    **dict.fromkeys(("trash", "deleted items", "deleted messages", "bin", "papierkorb"), "\\Trash"),
    **dict.fromkeys(("corbeille", "papelera", "cestino"), "\\Trash"),
    **dict.fromkeys(("archive", "archives", "archiv"), "\\Archive"),
}

#: LIST attributes that mean a name cannot be selected (RFC 3501 7.2.2, RFC 5258 3).
_UNSELECTABLE = frozenset(("\\noselect", "\\nonexistent"))


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    """A folder as the server lists it."""

    path: str
    delimiter: str | None
    flags: tuple[str, ...]
    subscribed: bool = True

    @property
    def name(self) -> str:
        if self.delimiter and self.delimiter in self.path:
            return self.path.rsplit(self.delimiter, 1)[1]
        return self.path

    @property
    def parent_path(self) -> str | None:
        if self.delimiter and self.delimiter in self.path:
            return self.path.rsplit(self.delimiter, 1)[0]
        return None

    @property
    def selectable(self) -> bool:
        return is_selectable(self.flags)


@dataclass(frozen=True, slots=True)
class MailboxRecord:
    """A folder in the index with its sync state (RFC 3501 / RFC 7162 values)."""

    id: int
    account: str
    path: str
    delimiter: str | None
    name: str
    parent_path: str | None
    special_use: str | None
    special_use_source: str | None
    flags: tuple[str, ...]
    subscribed: bool
    uid_validity: int | None
    uid_next: int | None
    highest_modseq: int | None
    messages: int
    synced_at: int | None

    @property
    def selectable(self) -> bool:
        return is_selectable(self.flags)


def is_selectable(flags: Sequence[str]) -> bool:
    """Whether a folder with these LIST attributes can be selected."""
    return not any(flag.lower() in _UNSELECTABLE for flag in flags)


def special_use_of(
    mailbox: MailboxInfo, user_paths: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """(special use, source) of one folder; see the module docstring."""
    if mailbox.path.upper() == "INBOX":
        return "\\Inbox", "name"
    for use, path in user_paths.items():
        if path == mailbox.path:
            return use, "user"
    for flag in mailbox.flags:
        for use in SPECIAL_USES:
            if flag.lower() == use.lower():
                return use, "extension"
    guessed = _NAMES.get(mailbox.name.strip().lower())
    return (guessed, "name") if guessed else (None, None)


def assign_special_uses(
    mailboxes: Sequence[MailboxInfo], user_paths: Mapping[str, str]
) -> dict[str, tuple[str | None, str | None]]:
    """Special use of every folder, giving each name-guessed use to one folder only.

    A server flag or a user's choice wins over a guessed name: when "Sent" and
    "Sent Items" both exist and the server marks "Sent Items" as \\Sent, the
    plain "Sent" gets no special use.
    """
    result = {mailbox.path: special_use_of(mailbox, user_paths) for mailbox in mailboxes}
    claimed = {use for use, source in result.values() if use and source != "name"}
    for path, (use, source) in list(result.items()):
        if source == "name" and use is not None and use != "\\Inbox":
            if use in claimed:
                result[path] = (None, None)
            else:
                claimed.add(use)
    return result


@dataclass(frozen=True, slots=True)
class ListedMailbox:
    """A folder from the server's listing with the special use decided for it."""

    info: MailboxInfo
    special_use: str | None
    special_use_source: str | None


@dataclass(frozen=True, slots=True)
class SyncState:
    """A folder's state on the server after a sync (RFC 3501, RFC 7162)."""

    uid_validity: int
    uid_next: int | None
    highest_modseq: int | None
    #: EXISTS: how many messages the folder holds on the server.
    messages: int | None = None
