"""The sync session of one account: list folders, index them, then watch for changes.

Theory of operation
-------------------
One connection per account does all of it. `AccountSync.run`:

1. prepares the connection: ENABLE QRESYNC (RFC 7162 section 3.2.3) or
   CONDSTORE when offered, and COMPRESS=DEFLATE (RFC 4978) unless the server
   is on loopback, where compression only costs CPU;
2. lists the folders and reconciles the stored listing (`mailboxDeleted` for
   folders gone; folders found after the account's first listing raise
   `mailboxNew` once they are first synced);
3. synchronises every folder to sync (`FolderSync`), then reports ready;
4. watches: SELECT the main folder (INBOX, or the first configured path) and
   IDLE (RFC 2177). An EXISTS, EXPUNGE, FETCH or VANISHED ends IDLE and the
   main folder is synchronised. Other folders are checked by a STATUS sweep
   (RFC 3501 section 6.3.10) on the same connection at an adaptive interval:
   `SWEEP_MIN_S` after a change, growing to `SWEEP_MAX_S` while nothing
   happens, so a message filed into Sent or Junk is seen within seconds. The
   listing is refreshed every `LISTING_INTERVAL_S`; a sync request (`wake`)
   forces a sweep and a listing at once. IDLE is renewed before servers drop
   it (RFC 2177: at most every 29 minutes).
5. subconnections: each folder named in the account's `subconnections` (a
   path, or a special use such as `\\Sent`) gets a watcher with a connection
   of its own (`connect`, within the account's connection cap) that EXAMINEs
   the folder and IDLEs; a change there wakes the main loop, which
   synchronises that folder on the main connection at once instead of at the
   next sweep. At most `MAX_WATCHERS` are opened (servers allow only a few
   connections per user). A watcher that fails retries with backoff and never
   ends the session; the session's end ends the watchers.

The session returns only by raising (a connection error, which the worker
turns into a state and a reconnect) or by being cancelled.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from mailwire.backends.imap.connection import ImapConnection
from mailwire.backends.imap.errors import CommandFailedError, ImapConnectionError
from mailwire.backends.imap.folder import FolderSync, Index, Selected, selected_from
from mailwire.backends.imap.listing import list_mailboxes, with_special_uses
from mailwire.domain.accounts import Account
from mailwire.domain.events import Event, EventName
from mailwire.domain.mailboxes import ListedMailbox, MailboxRecord
from mailwire.logs import get_logger
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.responses import Exists, Expunge, Fetch, Status, Vanished

log = get_logger(__name__)

SWEEP_MIN_S = 2.0
SWEEP_MAX_S = 10.0
SWEEP_GROWTH = 1.5
LISTING_INTERVAL_S = 60.0
#: RFC 2177 section 3: clients should re-issue IDLE at least every 29 minutes.
IDLE_RENEW_S = 25 * 60.0
#: How often the IDLE loop looks at the wake-up event between server responses.
WAKE_CHECK_S = 0.25
#: STATUS items for the sweep; HIGHESTMODSEQ only with CONDSTORE (RFC 7162 3.1.7).
STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY")

#: Subconnections opened at most, besides the main connection.
MAX_WATCHERS = 2
#: A failed subconnection retries after this long, doubling up to the maximum (seconds).
WATCHER_RETRY_MIN_S = 2.0
WATCHER_RETRY_MAX_S = 120.0

Ready = Callable[[], Awaitable[None]]
Connect = Callable[[], AbstractAsyncContextManager[ImapConnection]]


class AccountSync:
    def __init__(
        self,
        account: Account,
        conn: ImapConnection,
        index: Index,
        *,
        connect: Connect | None = None,
    ) -> None:
        self.account = account
        self.conn = conn
        self.index = index
        self._connect = connect
        #: Folders a watcher saw change, and the signal that wakes the main loop for them.
        self._changed: set[str] = set()
        self._watched_change = asyncio.Event()
        self._folders: FolderSync | None = None
        self._mailboxes: dict[str, MailboxRecord] = {}
        self._announce_new: set[str] = set()
        self._listed_at = 0.0

    async def run(self, ready: Ready, wake: asyncio.Event) -> None:
        await self._prepare()
        await self.refresh_listing()
        for mailbox in self._to_sync():
            await self._sync_folder(mailbox)
        await ready()
        watchers = [asyncio.create_task(self._watch_folder(path)) for path in self._watched()]
        try:
            await self._watch(wake)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)

    # ------------------------------------------------------------------ setup

    async def _prepare(self) -> None:
        caps = self.conn.capabilities
        if "QRESYNC" in caps:
            await self.conn.enable("QRESYNC")
        elif "CONDSTORE" in caps:
            await self.conn.enable("CONDSTORE")
        if not _is_loopback(self.conn.host):
            await self.conn.compress()
        self._folders = FolderSync(self.account, self.conn, self.index)

    @property
    def folders(self) -> FolderSync:
        assert self._folders is not None, "run() prepares the connection first"
        return self._folders

    async def refresh_listing(self) -> None:
        listed = await list_mailboxes(self.conn)
        imap = self.account.imap()
        user_paths = dict(imap.special_paths) if imap else {}
        stored = {mailbox.path: mailbox for mailbox in await self.index.mailboxes(self.account.id)}
        names = {mailbox.path for mailbox in listed}
        removed = [path for path in stored if path not in names]
        events = [_mailbox_deleted(self.account.id, stored[path]) for path in removed]
        if stored:
            self._announce_new |= {mailbox.path for mailbox in listed if mailbox.path not in stored}
        decided = with_special_uses(listed, user_paths)
        self._listed_at = time.monotonic()
        if not removed and all(_same_listing(item, stored.get(item.info.path)) for item in decided):
            self._mailboxes = stored  # nothing to write: the usual case, every minute
            return
        records = await self.index.save_listing(
            self.account.id, decided, removed=removed, events=events
        )
        self._mailboxes = {record.path: record for record in records}

    def _to_sync(self) -> list[MailboxRecord]:
        wanted = self.account.paths
        chosen = [
            mailbox
            for mailbox in self._mailboxes.values()
            if mailbox.selectable and (not wanted or mailbox.path in wanted)
        ]
        # INBOX first: it is what users wait for.
        return sorted(chosen, key=lambda mailbox: (mailbox.path != "INBOX", mailbox.path))

    def _main(self) -> MailboxRecord | None:
        candidates = self._to_sync()
        return candidates[0] if candidates else None

    async def _sync_folder(self, mailbox: MailboxRecord, selected: Selected | None = None) -> int:
        announce = mailbox.path in self._announce_new
        try:
            if selected is None:
                synced = await self.folders.sync(mailbox, announce_new_folder=announce)
            else:
                synced = await self.folders.sync_selected(
                    mailbox, selected, announce_new_folder=announce
                )
        except CommandFailedError as error:
            # A folder deleted between LIST and SELECT: the next listing drops it.
            log.info(
                "folder_sync_failed", account=self.account.id, path=mailbox.path, error=str(error)
            )
            return 0
        self._announce_new.discard(mailbox.path)
        self._mailboxes[mailbox.path] = synced.mailbox
        return synced.events

    # ------------------------------------------------------------------ watching

    async def _watch(self, wake: asyncio.Event) -> None:
        interval = SWEEP_MIN_S
        while True:
            main = self._main()
            if main is None:
                await self._wait_without_folders(wake)
                continue
            result = await self.conn.execute(
                commands.select(main.path, condstore=self.folders.condstore)
            )
            changed = await self._sync_folder(main, selected_from(result))
            activity = await self._idle(wake, interval)
            forced = wake.is_set()
            wake.clear()
            changed += await self._sync_watched(exclude=main.path)
            if forced or time.monotonic() - self._listed_at >= LISTING_INTERVAL_S:
                await self.refresh_listing()
            if activity == "sweep" or forced:
                changed += await self._sweep(exclude=main.path)
            interval = (
                SWEEP_MIN_S
                if changed or activity == "server"
                else min(interval * SWEEP_GROWTH, SWEEP_MAX_S)
            )

    async def _idle(self, wake: asyncio.Event, interval: float) -> str:
        """IDLE until the server reports a change ("server"), a sweep is due or a wake-up."""
        deadline = time.monotonic() + min(interval, IDLE_RENEW_S)
        async with self.conn.idle() as session:
            while True:
                if wake.is_set():
                    return "wake"
                if self._watched_change.is_set():
                    return "watcher"
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "sweep"
                event = await session.next(min(WAKE_CHECK_S, remaining))
                if isinstance(event, Exists | Expunge | Fetch | Vanished):
                    return "server"
                if session.ended:
                    return "server"

    async def _sweep(self, *, exclude: str) -> int:
        """STATUS every other folder; synchronise those that changed."""
        changed = 0
        items = list(STATUS_ITEMS)
        if self.folders.condstore:
            items.append("HIGHESTMODSEQ")
        for mailbox in self._to_sync():
            if mailbox.path == exclude:
                continue
            try:
                result = await self.conn.execute(commands.status(mailbox.path, items))
            except CommandFailedError:
                continue
            status = next((e for e in result.untagged if isinstance(e, Status)), None)
            if status is None or _status_matches(mailbox, status):
                continue
            changed += await self._sync_folder(mailbox)
        return changed

    # ------------------------------------------------------------------ subconnections

    def _watched(self) -> list[str]:
        """The folders that get a watcher: `subconnections` resolved, main folder excluded."""
        if self._connect is None or "IDLE" not in self.conn.capabilities:
            return []
        main = self._main()
        syncing = {mailbox.path: mailbox for mailbox in self._to_sync()}
        chosen: list[str] = []
        for entry in self.account.subconnections:
            path = entry
            if entry.startswith("\\"):
                path = next(
                    (
                        p
                        for p, m in syncing.items()
                        if (m.special_use or "").lower() == entry.lower()
                    ),
                    "",
                )
            if path in syncing and path not in chosen and (main is None or path != main.path):
                chosen.append(path)
        return chosen[:MAX_WATCHERS]

    async def _watch_folder(self, path: str) -> None:
        """EXAMINE `path` on a connection of its own and IDLE; flag the folder on changes."""
        assert self._connect is not None
        delay = WATCHER_RETRY_MIN_S
        while True:
            try:
                async with self._connect() as conn:
                    await conn.execute(commands.examine(path))
                    delay = WATCHER_RETRY_MIN_S
                    while True:
                        await self._idle_on(conn)
                        self._changed.add(path)
                        self._watched_change.set()
            except (ImapConnectionError, OSError) as error:
                log.info(
                    "subconnection_failed", account=self.account.id, path=path, error=str(error)
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, WATCHER_RETRY_MAX_S)

    @staticmethod
    async def _idle_on(conn: ImapConnection) -> None:
        """IDLE until the folder changes (renewed before servers drop it)."""
        while True:
            deadline = time.monotonic() + IDLE_RENEW_S
            async with conn.idle() as session:
                while (remaining := deadline - time.monotonic()) > 0 and not session.ended:
                    event = await session.next(remaining)
                    if isinstance(event, Exists | Expunge | Fetch | Vanished):
                        return
            await conn.execute(commands.noop())

    async def _sync_watched(self, *, exclude: str) -> int:
        """Synchronise the folders the watchers saw change (on the main connection)."""
        self._watched_change.clear()
        changed = 0
        while self._changed:
            mailbox = self._mailboxes.get(self._changed.pop())
            if mailbox is not None and mailbox.path != exclude:
                changed += await self._sync_folder(mailbox)
        return changed

    async def _wait_without_folders(self, wake: asyncio.Event) -> None:
        try:
            async with asyncio.timeout(LISTING_INTERVAL_S):
                await wake.wait()
        except TimeoutError:
            pass
        wake.clear()
        await self.refresh_listing()


def _same_listing(item: ListedMailbox, stored: MailboxRecord | None) -> bool:
    """Whether the stored folder already says what the server's listing says."""
    return (
        stored is not None
        and stored.delimiter == item.info.delimiter
        and stored.flags == tuple(item.info.flags)
        and stored.subscribed == item.info.subscribed
        and stored.special_use == item.special_use
        and stored.special_use_source == item.special_use_source
    )


def _status_matches(mailbox: MailboxRecord, status: Status) -> bool:
    if mailbox.uid_validity is None:
        return False
    modseq = status.get("HIGHESTMODSEQ")
    return (
        status.get("UIDVALIDITY") == mailbox.uid_validity
        and status.get("UIDNEXT") == mailbox.uid_next
        and status.get("MESSAGES") == mailbox.messages
        and (modseq is None or modseq == mailbox.highest_modseq)
    )


def _mailbox_deleted(account: str, mailbox: MailboxRecord) -> Event:
    data = {"path": mailbox.path, "name": mailbox.name, "specialUse": mailbox.special_use or False}
    return Event(
        account,
        EventName.MAILBOX_DELETED,
        data,
        path=mailbox.path,
        special_use=mailbox.special_use,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def sync_session(
    index: Index,
    account: Account,
    conn: ImapConnection,
    ready: Ready,
    wake: asyncio.Event,
    /,
    *,
    connect: Connect | None = None,
) -> None:
    """The account worker's session (see `mailwire.workers.session`): sync, then watch.

    Bind the index first: `functools.partial(sync_session, store.index)`.
    """
    await AccountSync(account, conn, index, connect=connect).run(ready, wake)
