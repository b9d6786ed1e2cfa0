"""`MailboxOperations` against the real Dovecot: folders, flags, moves, deletes, appends,
searches, message reads and body streams, with their error paths.

Each test works in folders of its own on one shared user, so the file needs a
single `add_user`. The client's protocol log (`on_line`) shows which commands
went out: that is how a test sees that a SELECT was skipped, that MOVE or the
COPY fallback was used, or that a bad search never reached the wire. Hiding an
extension is done by removing it from the connection's capability set after
login, which is what the operations consult.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import secrets
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest

from mailwire.backends.imap.connection import ImapConnection
from mailwire.backends.imap.operation_errors import (
    FolderExistsError,
    FolderNotFoundError,
    MessageNotFoundError,
    OperationInputError,
    ProtectedFolderError,
    UidValidityChangedError,
    UnsafeExpungeError,
    UnsupportedOperationError,
)
from mailwire.backends.imap.operations import MailboxOperations
from mailwire.backends.imap.reading import STREAM_CHUNK
from mailwire.backends.imap.search import SearchCriteria
from mailwire.protocols.imap import commands
from mailwire.testing.dovecot import Dovecot, MailUser

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def user(dovecot: Dovecot) -> MailUser:
    return dovecot.add_user(f"ops-{secrets.token_hex(4)}", secrets.token_urlsafe(12))


@dataclass
class Session:
    """Operations on a fresh connection, and the commands it has sent so far."""

    ops: MailboxOperations
    lines: list[str] = field(default_factory=list)

    @property
    def conn(self) -> ImapConnection:
        return self.ops.conn

    def sent(self) -> list[str]:
        """Command lines sent, without their tags."""
        return [line.split(" ", 1)[1] for line in self.lines if " " in line]

    def hide(self, *capabilities: str) -> None:
        self.conn.capabilities = self.conn.capabilities - set(capabilities)

    def clear(self) -> None:
        self.lines.clear()


@pytest.fixture
async def session(dovecot: Dovecot, user: MailUser) -> AsyncIterator[Session]:
    lines: list[str] = []

    def on_line(direction: str, text: str) -> None:
        if direction == "c":
            lines.append(text)

    conn = await ImapConnection.open(
        dovecot.host, dovecot.imap_port, security="none", on_line=on_line
    )
    try:
        await conn.login(user.name, user.password)
        lines.clear()
        yield Session(MailboxOperations(conn), lines)
    finally:
        await conn.close()


def _flags(flags: tuple[str, ...]) -> set[str]:
    """Flags without \\Recent, which the first session to see a message gets (RFC 3501 2.3.2)."""
    return set(flags) - {"\\Recent"}


def _folder(prefix: str = "T") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _message(subject: str, body: str = "hello there", **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann Example <ann@example.com>"
    message["To"] = "bob@example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@example.com>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return bytes(message).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def _folder_with(s: Session, count: int, *, prefix: str = "T") -> tuple[str, list[int]]:
    path = _folder(prefix)
    await s.ops.create_folder(path)
    uids = []
    for n in range(count):
        appended = await s.ops.append(path, _message(f"message {n}"))
        assert appended.uid is not None
        uids.append(appended.uid)
    return path, uids


# --------------------------------------------------------------------------- folders


async def test_create_nested_folder_with_the_servers_delimiter_and_subscribe(
    session: Session,
) -> None:
    top = _folder("Top")
    created = await session.ops.create_folder([top, "Child", "Grandchild"])
    assert created.delimiter == "/"
    assert created.subscribed
    assert created.path == f"{top}/Child/Grandchild"
    assert await session.ops.exists(created.path)
    lsub = await session.conn.execute(commands.lsub("", f"{top}/*"))
    assert any(getattr(e, "name", None) == created.path.encode() for e in lsub.untagged)


async def test_create_existing_folder_is_refused(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    with pytest.raises(FolderExistsError) as caught:
        await session.ops.create_folder(path)
    assert caught.value.path == path


async def test_create_refuses_a_segment_holding_the_delimiter(session: Session) -> None:
    with pytest.raises(OperationInputError):
        await session.ops.create_folder(["a/b", "c"])
    assert not any(line.startswith("CREATE") for line in session.sent())


async def test_rename_moves_folder_messages_and_subscription(session: Session) -> None:
    path, uids = await _folder_with(session, 1)
    new = _folder("Renamed")
    renamed = await session.ops.rename_folder(path, new)
    assert (renamed.path, renamed.new_path) == (path, new)
    assert not await session.ops.exists(path)
    assert await session.ops.search(new, SearchCriteria()) == uids
    lsub = await session.conn.execute(commands.lsub("", "*"))
    names = {getattr(e, "name", None) for e in lsub.untagged}
    assert new.encode() in names
    assert path.encode() not in names


async def test_rename_errors(session: Session) -> None:
    with pytest.raises(FolderNotFoundError) as missing:
        await session.ops.rename_folder(_folder("Missing"), _folder())
    assert missing.value.path.startswith("Missing-")
    first, second = _folder(), _folder()
    await session.ops.create_folder(first)
    await session.ops.create_folder(second)
    with pytest.raises(FolderExistsError) as taken:
        await session.ops.rename_folder(first, second)
    assert taken.value.path == second


async def test_delete_folder_then_missing(session: Session) -> None:
    path, _ = await _folder_with(session, 1)
    await session.ops.search(path, SearchCriteria())  # selected while deleted
    await session.ops.delete_folder(path)
    assert not await session.ops.exists(path)
    assert session.ops.selected is None
    with pytest.raises(FolderNotFoundError):
        await session.ops.delete_folder(path)


@pytest.mark.parametrize("name", ["INBOX", "inbox", "InBoX"])
async def test_delete_inbox_is_refused_before_anything_is_sent(session: Session, name: str) -> None:
    with pytest.raises(ProtectedFolderError):
        await session.ops.delete_folder(name)
    assert session.sent() == []


async def test_missing_folder_is_reported_as_not_found(session: Session) -> None:
    with pytest.raises(FolderNotFoundError):
        await session.ops.search(_folder("Nope"), SearchCriteria())
    assert session.ops.selected is None


# --------------------------------------------------------------------------- selection


async def test_select_is_skipped_for_the_selected_folder_and_upgraded_for_writes(
    session: Session,
) -> None:
    path, uids = await _folder_with(session, 1)
    session.clear()
    await session.ops.search(path, SearchCriteria())
    await session.ops.fetch_message(path, uids[0])
    await session.ops.store_flags(path, uids, add=["\\Seen"])
    await session.ops.store_flags(path, uids, remove=["\\Seen"])
    await session.ops.search(path, SearchCriteria())
    opened = [
        line.split(" ", 1)[0]
        for line in session.sent()
        if line.split(" ")[0] in {"SELECT", "EXAMINE"}
    ]
    assert opened == ["EXAMINE", "SELECT"]


# --------------------------------------------------------------------------- flags


async def test_store_flags_returns_flags_and_modseq_per_uid(session: Session) -> None:
    path, uids = await _folder_with(session, 2)
    added = await session.ops.store_flags(path, uids, add=["\\Seen", "$Important"])
    assert set(added.messages) == set(uids)
    assert all(_flags(s.flags) == {"\\Seen", "$Important"} for s in added.messages.values())
    assert all(s.modseq is not None and s.modseq > 0 for s in added.messages.values())
    assert not any(".SILENT" in line for line in session.sent())
    removed = await session.ops.store_flags(path, uids[:1], remove=["\\Seen"])
    assert _flags(removed.messages[uids[0]].flags) == {"$Important"}
    first_modseq = added.messages[uids[0]].modseq
    assert removed.messages[uids[0]].modseq is not None
    assert first_modseq is not None
    assert removed.messages[uids[0]].modseq > first_modseq
    replaced = await session.ops.store_flags(path, uids, replace=["\\Flagged"])
    assert [_flags(s.flags) for s in replaced.messages.values()] == [{"\\Flagged"}] * 2


async def test_store_flags_unchanged_still_reports_flags(session: Session) -> None:
    path, uids = await _folder_with(session, 1)
    await session.ops.store_flags(path, uids, add=["\\Seen"])
    again = await session.ops.store_flags(path, uids, add=["\\Seen"])
    assert _flags(again.messages[uids[0]].flags) == {"\\Seen"}


async def test_store_flags_missing_uids(session: Session) -> None:
    path, uids = await _folder_with(session, 1)
    partly = await session.ops.store_flags(path, [uids[0], 999], add=["\\Seen"])
    assert partly.missing == (999,)
    assert set(partly.messages) == {uids[0]}
    with pytest.raises(MessageNotFoundError) as caught:
        await session.ops.store_flags(path, [998, 999], add=["\\Seen"])
    assert caught.value.uids == (998, 999)


async def test_store_flags_refuses_bad_flags_and_uids(session: Session) -> None:
    path, uids = await _folder_with(session, 1)
    session.clear()
    with pytest.raises(OperationInputError):
        await session.ops.store_flags(path, uids, add=["bad flag"])
    with pytest.raises(OperationInputError):
        await session.ops.store_flags(path, uids, add=["\\Seen"], remove=["bad flag"])
    assert session.sent() == []
    with pytest.raises(OperationInputError):
        await session.ops.store_flags(path, [0], add=["\\Seen"])
    with pytest.raises(OperationInputError):
        await session.ops.store_flags(path, uids)
    with pytest.raises(FolderNotFoundError):
        await session.ops.store_flags(_folder("Nope"), uids, add=["\\Seen"])


async def test_a_stale_uid_validity_changes_nothing(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    appended = await session.ops.append(path, _message("kept"))
    assert appended.uid is not None
    assert appended.uid_validity is not None
    stale = appended.uid_validity + 1
    with pytest.raises(UidValidityChangedError) as caught:
        await session.ops.store_flags(path, [appended.uid], add=["\\Seen"], uid_validity=stale)
    assert (caught.value.expected, caught.value.actual) == (stale, appended.uid_validity)
    with pytest.raises(UidValidityChangedError):
        await session.ops.delete_messages(path, [appended.uid], uid_validity=stale)
    with pytest.raises(UidValidityChangedError):
        [c async for c in session.ops.stream(path, appended.uid, uid_validity=stale)]
    assert not any(line.startswith(("UID STORE", "UID FETCH")) for line in session.sent())
    details = await session.ops.fetch_message(
        path, appended.uid, uid_validity=appended.uid_validity
    )
    assert "\\Seen" not in details.flags


async def test_gmail_labels_need_x_gm_ext_1(session: Session) -> None:
    path, uids = await _folder_with(session, 1)
    session.clear()
    with pytest.raises(UnsupportedOperationError) as caught:
        await session.ops.store_labels(path, uids, add=["Work"])
    assert caught.value.capability == "X-GM-EXT-1"
    assert session.sent() == []


# --------------------------------------------------------------------------- move and delete


async def test_move_uses_uid_move_and_returns_destination_uids(session: Session) -> None:
    path, uids = await _folder_with(session, 3)
    target = _folder("Target")
    await session.ops.create_folder(target)
    session.clear()
    moved = await session.ops.move(path, uids[:2], target)
    assert any(line.startswith("UID MOVE") for line in session.sent())
    assert moved.uids == tuple(uids[:2])
    assert moved.uid_validity is not None
    assert sorted(moved.uid_map) == uids[:2]
    assert await session.ops.search(path, SearchCriteria()) == uids[2:]
    assert await session.ops.search(target, SearchCriteria()) == sorted(moved.uid_map.values())


async def test_move_falls_back_to_copy_store_uid_expunge(session: Session) -> None:
    path, uids = await _folder_with(session, 3)
    target = _folder("Target")
    await session.ops.create_folder(target)
    # Someone else's \Deleted message must survive: UID EXPUNGE touches only ours.
    await session.ops.store_flags(path, uids[2:], add=["\\Deleted"])
    session.hide("MOVE")
    session.clear()
    moved = await session.ops.move(path, uids[:2], target)
    sent = session.sent()
    assert not any(line.startswith("UID MOVE") for line in sent)
    assert any(line.startswith("UID COPY") for line in sent)
    assert any(line.startswith("UID EXPUNGE") for line in sent)
    assert sorted(moved.uid_map) == uids[:2]
    assert await session.ops.search(path, SearchCriteria()) == uids[2:]
    assert len(await session.ops.search(target, SearchCriteria())) == 2


async def test_move_without_uidplus_refuses_to_expunge_others_deleted_mail(
    session: Session,
) -> None:
    path, uids = await _folder_with(session, 3)
    target = _folder("Target")
    await session.ops.create_folder(target)
    await session.ops.store_flags(path, uids[2:], add=["\\Deleted"])
    session.hide("MOVE", "UIDPLUS")
    with pytest.raises(UnsafeExpungeError) as caught:
        await session.ops.move(path, uids[:1], target)
    assert caught.value.others == (uids[2],)
    assert await session.ops.search(target, SearchCriteria()) == []
    assert await session.ops.search(path, SearchCriteria()) == uids
    await session.ops.store_flags(path, uids[2:], remove=["\\Deleted"])
    session.clear()
    await session.ops.move(path, uids[:1], target)
    assert "EXPUNGE" in session.sent()
    assert await session.ops.search(path, SearchCriteria()) == uids[1:]
    assert len(await session.ops.search(target, SearchCriteria())) == 1


async def test_move_errors(session: Session) -> None:
    path, uids = await _folder_with(session, 1)
    with pytest.raises(FolderNotFoundError) as missing:
        await session.ops.move(path, uids, "Nowhere-" + secrets.token_hex(3))
    assert missing.value.path.startswith("Nowhere-")
    with pytest.raises(MessageNotFoundError):
        await session.ops.move(path, [uids[0] + 100], "INBOX")
    assert await session.ops.search(path, SearchCriteria()) == uids


async def test_delete_messages_to_trash_and_for_good(session: Session) -> None:
    path, uids = await _folder_with(session, 3)
    trash = _folder("Trash")
    await session.ops.create_folder(trash)
    to_trash = await session.ops.delete_messages(path, uids[:1], trash=trash)
    assert to_trash.moved is not None
    assert len(to_trash.moved.uid_map) == 1
    assert len(await session.ops.search(trash, SearchCriteria())) == 1
    gone = await session.ops.delete_messages(path, [uids[1], 4242])
    assert gone.moved is None
    assert gone.uids == (uids[1],)
    assert gone.missing == (4242,)
    assert await session.ops.search(path, SearchCriteria()) == uids[2:]
    # Deleting from the Trash itself deletes for good.
    in_trash = await session.ops.search(trash, SearchCriteria())
    final = await session.ops.delete_messages(trash, in_trash, trash=trash)
    assert final.moved is None
    assert await session.ops.search(trash, SearchCriteria()) == []


# --------------------------------------------------------------------------- append


async def test_append_with_flags_and_internal_date(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    when = dt.datetime(2024, 3, 5, 14, 30, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    appended = await session.ops.append(
        path, _message("appended"), flags=["\\Seen", "$Label"], internal_date=when
    )
    assert appended.uid_validity is not None
    assert appended.uid is not None
    details = await session.ops.fetch_message(path, appended.uid)
    assert _flags(details.flags) == {"\\Seen", "$Label"}
    assert details.internal_date == when


async def test_append_with_a_synchronising_literal(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    session.hide("LITERAL+", "LITERAL-")
    session.clear()
    appended = await session.ops.append(path, _message("slow path"))
    assert any(line.startswith("APPEND") for line in session.sent())
    assert "{literal continues}" in session.lines
    assert appended.uid is not None


async def test_append_errors(session: Session) -> None:
    with pytest.raises(FolderNotFoundError):
        await session.ops.append(_folder("Nope"), _message("lost"))
    with pytest.raises(OperationInputError):
        await session.ops.append("INBOX", b"Subject: x\r\n\r\nnul\x00here\r\n")
    with pytest.raises(OperationInputError):
        await session.ops.append("INBOX", _message("x"), flags=["not a flag"])


# --------------------------------------------------------------------------- search


async def test_search_criteria(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    a = await session.ops.append(
        path,
        _message("Quarterly report", "numbers inside", X_Project="apollo"),
        flags=["\\Seen", "$Work"],
        internal_date=dt.datetime(2024, 1, 10, tzinfo=dt.UTC),
    )
    b = await session.ops.append(
        path,
        _message("Café menu", "déjeuner " * 200),
        flags=["\\Flagged"],
        internal_date=dt.datetime(2024, 6, 10, tzinfo=dt.UTC),
    )
    ua, ub = a.uid, b.uid
    assert ua is not None
    assert ub is not None

    async def find(**kw: object) -> list[int]:
        return await session.ops.search(path, SearchCriteria(**kw))  # type: ignore[arg-type]

    assert await find() == [ua, ub]
    assert await find(seen=True) == [ua]
    assert await find(seen=False) == [ub]
    assert await find(flagged=True) == [ub]
    assert await find(answered=False, draft=False, deleted=False) == [ua, ub]
    assert await find(subject="quarterly") == [ua]
    assert await find(from_="ann@example.com", to="bob@") == [ua, ub]
    assert await find(body="numbers") == [ua]
    assert await find(text="report") == [ua]
    assert await find(headers=[("X-Project", "apollo")]) == [ua]
    assert await find(headers=[("X-Project", "")]) == [ua]
    assert await find(since=dt.date(2024, 3, 1)) == [ub]
    assert await find(before=dt.date(2024, 3, 1)) == [ua]
    assert await find(larger=1500) == [ub]
    assert await find(smaller=1500) == [ua]
    assert await find(uids=commands.SequenceSet.of([ub])) == [ub]
    assert await find(uids=commands.SequenceSet.span(ua)) == [ua, ub]
    assert await find(keyword="$Work") == [ua]
    assert await find(unkeyword="$Work") == [ub]
    assert await find(cc="nobody") == []
    session.clear()
    assert await find(subject="café") == [ub]
    assert any("CHARSET UTF-8" in line for line in session.sent())
    assert any(line.startswith("UID SEARCH RETURN (ALL)") for line in session.sent())


async def test_search_without_esearch(session: Session) -> None:
    path, uids = await _folder_with(session, 2)
    session.hide("ESEARCH")
    session.clear()
    assert await session.ops.search(path, SearchCriteria()) == uids
    assert not any("RETURN" in line for line in session.sent())


async def test_sent_date_criteria(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    old = _message("old", Date="Tue, 02 Jan 2018 10:00:00 +0000")
    uid = (await session.ops.append(path, old)).uid
    await session.ops.append(path, _message("new", Date="Mon, 02 Jan 2023 10:00:00 +0000"))
    found = await session.ops.search(path, SearchCriteria(sent_before=dt.date(2020, 1, 1)))
    assert found == [uid]
    assert len(await session.ops.search(path, SearchCriteria(sent_since=dt.date(2020, 1, 1)))) == 1


@pytest.mark.parametrize(
    "criteria",
    [
        SearchCriteria(subject="x\r\nA0099 DELETE INBOX"),
        SearchCriteria(from_="a\nb"),
        SearchCriteria(text="nul\x00"),
        SearchCriteria(body="x" * 1025),
        SearchCriteria(subject=""),
        SearchCriteria(headers=[("X-Bad:Name", "v")]),
        SearchCriteria(headers=[("X-Ok", "v\r\n")]),
        SearchCriteria(headers=[("X-A", "v")] * 6),
        SearchCriteria(keyword="two words"),
        SearchCriteria(keyword="\\Seen"),
        SearchCriteria(larger=-1),
        SearchCriteria(smaller=2**32),
        SearchCriteria(seen="yes"),  # type: ignore[arg-type]
        SearchCriteria(since="2024-01-01"),  # type: ignore[arg-type]
    ],
)
async def test_bad_search_is_refused_before_anything_is_sent(
    session: Session, criteria: SearchCriteria
) -> None:
    with pytest.raises(OperationInputError):
        await session.ops.search("INBOX", criteria)
    assert session.sent() == []


# --------------------------------------------------------------------------- reading


def _multipart(attachment: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message["To"] = "bob@example.com"
    message["Subject"] = "with attachment"
    message.set_content("see attached")
    message.add_attachment(
        attachment, maintype="application", subtype="octet-stream", filename="data.bin"
    )
    return bytes(message).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def test_fetch_message(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    uid = (await session.ops.append(path, _multipart(b"\x01\x02" * 100))).uid
    assert uid is not None
    details = await session.ops.fetch_message(path, uid)
    assert details.uid == uid
    assert details.envelope is not None
    assert details.envelope.subject == b"with attachment"
    assert details.headers.startswith(b"From: ann@example.com\r\n")
    assert details.headers.endswith(b"\r\n\r\n")
    assert details.bodystructure is not None
    assert details.modseq is not None
    assert _flags(details.flags) == set()  # BODY.PEEK leaves \Seen alone
    with pytest.raises(MessageNotFoundError):
        await session.ops.fetch_message(path, uid + 1)


async def test_stream_whole_message_part_and_binary(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    payload = os.urandom(30_000)
    raw = _multipart(payload)
    uid = (await session.ops.append(path, raw)).uid
    assert uid is not None
    whole = [c async for c in session.ops.stream(path, uid, chunk_size=8192)]
    assert b"".join(whole) == raw
    assert max(map(len, whole)) == 8192
    encoded = b"".join([c async for c in session.ops.stream(path, uid, "2", chunk_size=8192)])
    assert base64.b64decode(encoded) == payload
    decoded = b"".join([c async for c in session.ops.stream(path, uid, "2", binary=True)])
    assert decoded == payload
    text = b"".join([c async for c in session.ops.stream(path, uid, "1")])
    assert text.strip() == b"see attached"


async def test_stream_errors(session: Session) -> None:
    path, uids = await _folder_with(session, 1)
    with pytest.raises(MessageNotFoundError):
        [c async for c in session.ops.stream(path, uids[0] + 1)]
    with pytest.raises(MessageNotFoundError) as no_part:
        [c async for c in session.ops.stream(path, uids[0], "3")]
    assert "no part 3" in str(no_part.value)
    with pytest.raises(FolderNotFoundError):
        [c async for c in session.ops.stream(_folder("Nope"), 1)]
    session.clear()
    for bad in ["0", "1.", "1..2", "HEADER", "1]<0.10> FLAGS", "2\r\n"]:
        with pytest.raises(OperationInputError):
            session.ops.stream(path, uids[0], bad)
    with pytest.raises(OperationInputError):
        session.ops.stream(path, uids[0], chunk_size=10)
    session.hide("BINARY")
    with pytest.raises(UnsupportedOperationError):
        session.ops.stream(path, uids[0], "1", binary=True)
    assert session.sent() == []


async def test_stream_ends_on_an_empty_chunk_at_an_exact_multiple(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    chunk = 4096
    head = b"Subject: exact\r\n\r\n"
    raw = head + b"x" * (2 * chunk - len(head) - 2) + b"\r\n"
    assert len(raw) == 2 * chunk
    uid = (await session.ops.append(path, raw)).uid
    assert uid is not None
    session.clear()
    chunks = [c async for c in session.ops.stream(path, uid, chunk_size=chunk)]
    assert [len(c) for c in chunks] == [chunk, chunk]
    assert b"".join(chunks) == raw
    fetches = [line for line in session.sent() if line.startswith("UID FETCH")]
    assert [line.split("<")[1] for line in fetches] == ["0.4096>)", "4096.4096>)", "8192.4096>)"]


async def test_a_message_expunged_mid_stream_ends_it_with_not_found(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    uid = (await session.ops.append(path, _multipart(os.urandom(20_000)))).uid
    assert uid is not None
    received: list[bytes] = []

    async def read_and_delete() -> None:
        async for piece in session.ops.stream(path, uid, chunk_size=4096):
            received.append(piece)
            if len(received) == 1:
                await session.ops.delete_messages(path, [uid])

    with pytest.raises(MessageNotFoundError) as caught:
        await read_and_delete()
    assert len(received) == 1
    assert "expunged while it was read" in str(caught.value)


async def test_stream_reselects_its_folder_between_chunks(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    raw = _multipart(os.urandom(20_000))
    uid = (await session.ops.append(path, raw)).uid
    assert uid is not None
    chunks = []
    async for piece in session.ops.stream(path, uid, chunk_size=4096):
        chunks.append(piece)
        await session.ops.search("INBOX", SearchCriteria())  # selects another folder
    assert b"".join(chunks) == raw


def _big_part_message(size: int) -> tuple[bytes, bytes]:
    """A message whose part 2 is `size` octets of base64 text; (message, part body)."""
    encoded = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    body = encoded[: size - 2] if len(encoded) >= size else encoded
    body = body.rstrip(b"\r\n")
    head = (
        b"From: ann@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
        b"--b0\r\nContent-Type: text/plain\r\n\r\nbig one\r\n"
        b"--b0\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head + body + b"\r\n--b0--\r\n", body


async def test_stream_a_25_mb_part_in_bounded_memory(session: Session) -> None:
    path = _folder()
    await session.ops.create_folder(path)
    raw, part = _big_part_message(25 * MIB)
    expected = hashlib.sha256(part).hexdigest()
    uid = (await session.ops.append(path, raw)).uid
    assert uid is not None
    del raw
    digest = hashlib.sha256()
    sizes = []
    tracemalloc.start()
    try:
        async for piece in session.ops.stream(path, uid, "2"):
            digest.update(piece)
            sizes.append(len(piece))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == expected
    assert max(sizes) == STREAM_CHUNK
    assert sum(sizes) == len(part)
    assert len(sizes) == -(-len(part) // STREAM_CHUNK)
    # A few chunk-sized buffers (socket read, parser frame, the chunk itself),
    # nowhere near the 25 MB part.
    assert peak < 8 * STREAM_CHUNK
