"""Searching one folder: the index answers what it can, the mail server the rest.

Theory of operation. A search (the API's `search` object, EmailEngine's field
names) is split in two:

- what the index holds (flags, sender, subject, size, dates, UIDs, provider
  ids, a complete Message-ID, Gmail labels, modseq) becomes `IndexCriteria`,
  answered by one query on the index (`store.search`);
- what only the message itself holds (body, To/Cc/Bcc, other header fields, and
  sender or subject terms the index cannot match faithfully: letters beyond
  ASCII, whose case the embedded database does not fold, or a sender term
  with `<`, `>` or `"` that spans name and address) becomes an IMAP UID SEARCH
  on one of the account's command connections; the UIDs it returns are
  intersected with the index's answer, so list entries always come from the
  index (a UID the index does not hold yet is left out).

Results are newest first and page like `GET /messages`: by `page`, or with
cursors that walk by UID. A search cursor is a message-list cursor
(`services.messages.Cursor`) behind a digest of the search, so a cursor only
continues the search (and the folder) it came from; a list cursor is not a
search cursor, and the other way round.

Server searches run only for accounts whose worker runs in this process
(`LocalConnections`); otherwise `AccountNotConnectedError` (HTTP 503, which
the API turns into forwarding the request to the account's owner). A failing
server is an `UpstreamError` (HTTP 502).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from mailwire.backends.imap.errors import ImapConnectionError
from mailwire.backends.imap.operations import MailboxOperations
from mailwire.backends.imap.search import SearchCriteria
from mailwire.domain.mailboxes import MailboxRecord
from mailwire.errors import InputError, NotFoundError, UnavailableError, UpstreamError
from mailwire.services.connections import LocalConnections
from mailwire.services.messages import MAX_PAGE_SIZE, Cursor, MessageService, list_entry
from mailwire.store.index_search import IndexCriteria, SearchPage
from mailwire.store.store import Store
from mailwire.workers.commands import CommandPool, PoolClosedError, PoolTimeoutError

SEARCH_CURSOR_PREFIX = "mws_"
#: Characters of the search digest inside a cursor (urlsafe base64 of 9 bytes).
_DIGEST_LENGTH = 12
_FLAG_FIELDS = (
    ("seen", "\\Seen", True),
    ("unseen", "\\Seen", False),
    ("flagged", "\\Flagged", True),
    ("answered", "\\Answered", True),
    ("draft", "\\Draft", True),
    ("deleted", "\\Deleted", True),
)
_SENDER_SYNTAX = frozenset('<>"')


class AccountNotConnectedError(UnavailableError):
    """The search needs the mail server and the account's worker does not run here."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="AccountNotConnected")


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """A search split into the index's part and the server's part (None: no server needed)."""

    index: IndexCriteria
    server: SearchCriteria | None
    #: `gmailRaw` was asked for (needs a Gmail server, and is refused for now).
    gmail_raw: bool = False


def plan(search: Mapping[str, Any]) -> SearchPlan:
    """Split the API's `search` object (EmailEngine field names) between index and server."""
    if search.get("seq") is not None:
        raise InputError(
            "Searching by sequence number is not supported; search by uid instead",
            key="search.seq",
        )
    email_ids = search.get("emailIds")
    if email_ids is not None:
        return SearchPlan(IndexCriteria(email_ids=tuple(email_ids)), None)
    index: dict[str, Any] = {}
    server: dict[str, Any] = {}
    flags = tuple(
        (flag, value == wanted)
        for name, flag, wanted in _FLAG_FIELDS
        if (value := search.get(name)) is not None
    )
    sender = search.get("from")
    if sender is not None:
        faithful = sender.isascii() and not _SENDER_SYNTAX.intersection(sender)
        (index if faithful else server)["from_"] = sender
    subject = search.get("subject")
    if subject is not None:
        (index if subject.isascii() else server)["subject"] = subject
    for name in ("to", "cc", "bcc", "body"):
        if search.get(name) is not None:
            server[name] = search[name]
    for name, key in (
        ("larger", "larger"),
        ("smaller", "smaller"),
        ("uid", "uids"),
        ("emailId", "email_id"),
        ("threadId", "thread_id"),
        ("modseq", "modseq"),
    ):
        if search.get(name) is not None:
            index[key] = search[name]
    for name, key in (
        ("since", "since"),
        ("before", "before"),
        ("sentSince", "sent_since"),
        ("sentBefore", "sent_before"),
    ):
        if search.get(name) is not None:
            index[key] = _utc_day(search[name])
    headers = _headers(search.get("header") or {}, index)
    if headers:
        server["headers"] = tuple(headers)
    labels = search.get("labels") or {}
    index["labels_has"] = tuple(labels.get("has") or ())
    index["labels_not"] = tuple(labels.get("not") or ())
    return SearchPlan(
        IndexCriteria(flags=flags, **index),
        SearchCriteria(**server) if server else None,
        gmail_raw=search.get("gmailRaw") is not None,
    )


def _headers(header: Mapping[str, str], index: dict[str, Any]) -> list[tuple[str, str]]:
    """Header terms for the server; a complete Message-ID is answered by the index."""
    left: list[tuple[str, str]] = []
    for name, value in header.items():
        complete_id = value.startswith("<") and value.endswith(">") and len(value) > 2
        if name.lower() == "message-id" and complete_id and "message_id" not in index:
            index["message_id"] = value
        else:
            left.append((name, value))
    return left


def _utc_day(moment: datetime | date) -> date:
    """The UTC day of a moment: IMAP dates carry no time, the API's moments do."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).date()
    return moment


def search_digest(search: Mapping[str, Any]) -> str:
    """A short digest of a search, to tie a cursor to the search it pages."""
    canonical = json.dumps(search, sort_keys=True, default=str, separators=(",", ":"))
    raw = hashlib.sha256(canonical.encode()).digest()[:9]
    return base64.urlsafe_b64encode(raw).decode("ascii")


class SearchService:
    """`POST /search`; see the module docstring."""

    def __init__(
        self, store: Store, messages: MessageService, connections: LocalConnections
    ) -> None:
        self._store = store
        self._messages = messages
        self._connections = connections

    async def search(
        self,
        account_id: str,
        search: Mapping[str, Any],
        *,
        path: str | None,
        page: int = 0,
        page_size: int = 20,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of the folder's messages that match `search`, newest first."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InputError(f"pageSize must be 1-{MAX_PAGE_SIZE}", key="pageSize")
        digest = search_digest(search)
        position = _decode_cursor(cursor, digest) if cursor else None
        planned = plan(search)
        if position is None:
            folder = await self._messages.folder(account_id, path or "INBOX")
        else:
            folder = await self._cursor_folder(account_id, position)
        within = await self._server_uids(account_id, folder, planned)
        found, page, more_after, more_before = await self._page(
            folder, planned.index, within, page, page_size, position
        )
        return _answer(folder, found, page, page_size, more_after, more_before, digest)

    async def _page(
        self,
        folder: MailboxRecord,
        criteria: IndexCriteria,
        within: Sequence[int] | None,
        page: int,
        page_size: int,
        position: Cursor | None,
    ) -> tuple[SearchPage, int, bool, bool]:
        search = self._store.search
        if position is None:
            found = await search.page(
                folder.id, criteria, limit=page_size + 1, offset=page * page_size, within=within
            )
            more = len(found.records) > page_size
            return SearchPage(found.records[:page_size], found.total), page, more, page > 0
        if position.direction == "next":
            found = await search.page(
                folder.id, criteria, limit=page_size + 1, below_uid=position.uid, within=within
            )
            more = len(found.records) > page_size
            return SearchPage(found.records[:page_size], found.total), position.page, more, True
        found = await search.page(
            folder.id, criteria, limit=page_size + 1, above_uid=position.uid, within=within
        )
        more = len(found.records) > page_size
        return SearchPage(found.records[-page_size:], found.total), position.page, True, more

    async def _server_uids(
        self, account_id: str, folder: MailboxRecord, planned: SearchPlan
    ) -> list[int] | None:
        """The server's UIDs for the part of the search only it can answer (None: no part)."""
        if planned.server is None and not planned.gmail_raw:
            return None
        pool = self._connections.pool(account_id)
        if pool is None:
            raise AccountNotConnectedError(
                "This search needs the mail server, and the account is not connected here"
                " (its worker is not running in this process)"
            )
        return await _run_on_server(pool, folder.path, planned)

    async def _cursor_folder(self, account_id: str, position: Cursor) -> MailboxRecord:
        folders = await self._store.index.mailboxes(account_id)
        if not folders and not await self._store.accounts.exists(account_id):
            raise NotFoundError("No account has this id", code="AccountNotFound")
        folder = next((f for f in folders if f.id == position.mailbox_id), None)
        if folder is None or (folder.uid_validity or 0) != position.uid_validity:
            raise InputError(
                "The paging cursor does not belong to this folder any more", key="cursor"
            )
        return folder


async def _run_on_server(pool: CommandPool, path: str, planned: SearchPlan) -> list[int]:
    try:
        async with pool.connection() as conn:
            if planned.gmail_raw:
                if "X-GM-EXT-1" not in conn.capabilities:
                    raise InputError(
                        "gmailRaw works on Gmail accounts only: this server does not offer"
                        " Gmail's search extension (X-GM-EXT-1)",
                        key="search.gmailRaw",
                    )
                raise InputError("gmailRaw searches are not supported yet", key="search.gmailRaw")
            return await MailboxOperations(conn).search(path, planned.server or SearchCriteria())
    except PoolTimeoutError as error:
        raise UnavailableError(
            f"Every connection of the account stayed busy: {error}", code="AccountBusy"
        ) from error
    except PoolClosedError as error:
        raise AccountNotConnectedError(f"The account's worker stopped: {error}") from error
    except ImapConnectionError as error:
        raise UpstreamError(f"The mail server failed the search: {error}") from error
    except (OSError, TimeoutError) as error:
        raise UpstreamError("The mail server could not be reached for the search") from error


def _decode_cursor(text: str, digest: str) -> Cursor:
    body = text.removeprefix(SEARCH_CURSOR_PREFIX)
    if body == text or len(body) <= _DIGEST_LENGTH:
        raise InputError("The paging cursor is not a search cursor", key="cursor")
    if body[:_DIGEST_LENGTH] != digest:
        raise InputError("The paging cursor belongs to a different search", key="cursor")
    return Cursor.decode(body[_DIGEST_LENGTH:])


def _answer(
    folder: MailboxRecord,
    found: SearchPage,
    page: int,
    page_size: int,
    more_after: bool,
    more_before: bool,
    digest: str,
) -> dict[str, Any]:
    records = found.records
    validity = folder.uid_validity or 0
    next_cursor = prev_cursor = None
    if records and more_after:
        position = Cursor(folder.id, validity, records[-1].uid, "next", page + 1)
        next_cursor = SEARCH_CURSOR_PREFIX + digest + position.encode()
    if records and more_before:
        position = Cursor(folder.id, validity, records[0].uid, "prev", max(page - 1, 0))
        prev_cursor = SEARCH_CURSOR_PREFIX + digest + position.encode()
    return {
        "total": found.total,
        "page": page,
        "pages": math.ceil(found.total / page_size),
        "nextPageCursor": next_cursor,
        "prevPageCursor": prev_cursor,
        "messages": [list_entry(record, folder) for record in records],
    }
