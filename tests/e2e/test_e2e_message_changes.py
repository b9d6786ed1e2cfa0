"""Changing messages through the API against the real Dovecot: flags, moves, deletes.

A fresh Dovecot user gets a handful of messages in INBOX; the account is
registered on the shared `mailwire serve`. Every change must show in the index
at once (the list right after the answer) and be announced by exactly one
event per changed message, even after the sync engine has seen the same change
on the server (the tests wait for it before counting). `SETTLE_S` is long
enough for that: with the service's index writes switched off, the sync engine
alone announced every one of these changes (flags in INBOX, moves into Archive
and Trash, expunges) within it, so a second announcement would be seen here.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from e2e_kit import change_events, dovecot_imap

from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.server import MailwireServer

WAIT_S = 30.0
#: Long enough for the sync engine to notice a change on its IDLE connection or poll.
SETTLE_S = 3.0
RegisterAccount = Callable[..., str]
SUBJECTS = [f"change {n}" for n in range(1, 9)] + [f"bulk {n}" for n in range(1, 7)]


@dataclass
class Mailbox:
    account: str
    user: MailUser
    #: subject -> message id in INBOX, as first indexed
    ids: dict[str, str]


def _raw(subject: str) -> bytes:
    return (
        f"From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{secrets.token_hex(8)}@example.com>\r\n"
        "Date: Mon, 6 May 2024 10:00:00 +0000\r\n\r\n"
        f"Body of {subject}.\r\n"
    ).encode()


@pytest.fixture(scope="module")
def mailbox(
    server: MailwireServer,
    api: httpx.Client,
    register_account: RegisterAccount,
    dovecot: Dovecot,
) -> Mailbox:
    user = dovecot.add_user(f"chg-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    for subject in SUBJECTS:
        dovecot.deliver(user.name, _raw(subject))
    imap = dovecot_imap(dovecot, user.name, user.password)
    register_account(server, user.name, imap=imap)
    deadline = time.monotonic() + WAIT_S
    while api.get(f"/v1/account/{user.name}").json().get("state") != "connected":
        assert time.monotonic() < deadline, "the account never connected"
        time.sleep(0.2)
    # Every special-use folder must be indexed too (moves and Trash need them).
    while not {"Archive", "Trash", "Junk"} <= {
        m["path"] for m in api.get(f"/v1/account/{user.name}/mailboxes").json()["mailboxes"]
    }:
        assert time.monotonic() < deadline, "the folders were never listed"
        time.sleep(0.2)
    entries = _list(api, user.name, "INBOX")
    assert len(entries) == len(SUBJECTS)
    return Mailbox(user.name, user, {entry["subject"]: entry["id"] for entry in entries})


def _list(api: httpx.Client, account: str, path: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/account/{account}/messages", params={"path": path, "pageSize": 100})
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def _entry(api: httpx.Client, account: str, path: str, message_id: str) -> dict[str, Any] | None:
    return next((m for m in _list(api, account, path) if m["id"] == message_id), None)


def _settled(server: MailwireServer, account: str) -> list[dict[str, Any]]:
    """The account's events once the sync engine had time to see the changes itself."""
    time.sleep(SETTLE_S)
    return change_events(server, account)


def _about(events: list[dict[str, Any]], name: str, message_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name and e["data"]["id"] == message_id]


# ---------------------------------------------------------------- one message


def test_flags_change_is_indexed_and_announced_once(
    server: MailwireServer, api: httpx.Client, mailbox: Mailbox
) -> None:
    message_id = mailbox.ids["change 1"]
    response = api.put(
        f"/v1/account/{mailbox.account}/message/{message_id}",
        json={"flags": {"add": ["\\Flagged", "$Important"], "delete": "\\Draft"}},
    )

    assert response.status_code == 200, response.text
    flags = response.json()["flags"]
    assert flags["add"] is True
    assert flags["delete"] is True
    assert set(flags["result"]) == {"\\Flagged", "$Important"}
    entry = _entry(api, mailbox.account, "INBOX", message_id)
    assert entry is not None
    assert entry["flagged"] is True
    assert "$Important" in entry["flags"]
    updates = _about(_settled(server, mailbox.account), "messageUpdated", message_id)
    assert len(updates) == 1, updates
    assert set(updates[0]["data"]["changes"]["flags"]["added"]) == {"\\Flagged", "$Important"}


def test_set_replaces_the_flags_and_an_unchanged_update_is_silent(
    server: MailwireServer, api: httpx.Client, mailbox: Mailbox
) -> None:
    message_id = mailbox.ids["change 2"]
    url = f"/v1/account/{mailbox.account}/message/{message_id}"
    first = api.put(url, json={"flags": {"set": ["\\Seen", "\\Answered"]}})
    again = api.put(url, json={"flags": {"add": ["\\Seen"]}})

    assert first.status_code == 200, first.text
    assert set(first.json()["flags"]["result"]) == {"\\Seen", "\\Answered"}
    assert again.status_code == 200, again.text
    entry = _entry(api, mailbox.account, "INBOX", message_id)
    assert entry is not None
    assert entry["answered"] is True
    assert "unseen" not in entry
    assert len(_about(_settled(server, mailbox.account), "messageUpdated", message_id)) == 1


def test_labels_are_refused_without_gmail_and_nothing_changes(
    api: httpx.Client, mailbox: Mailbox
) -> None:
    message_id = mailbox.ids["change 3"]
    response = api.put(
        f"/v1/account/{mailbox.account}/message/{message_id}",
        json={"flags": {"add": ["\\Flagged"]}, "labels": {"add": ["Work"]}},
    )

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "UnsupportedOperation"
    assert "Gmail" in response.json()["message"]
    entry = _entry(api, mailbox.account, "INBOX", message_id)
    assert entry is not None
    assert "flagged" not in entry


def test_move_is_indexed_and_announced_once_in_each_folder(
    server: MailwireServer, api: httpx.Client, mailbox: Mailbox
) -> None:
    message_id = mailbox.ids["change 4"]
    response = api.put(
        f"/v1/account/{mailbox.account}/message/{message_id}/move", json={"path": "Archive"}
    )

    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["path"] == "Archive"
    assert isinstance(moved["uid"], int)
    assert moved["id"] != message_id
    assert _entry(api, mailbox.account, "INBOX", message_id) is None
    there = _entry(api, mailbox.account, "Archive", moved["id"])
    assert there is not None
    assert there["subject"] == "change 4"
    assert there["uid"] == moved["uid"]
    events = _settled(server, mailbox.account)
    assert len(_about(events, "messageDeleted", message_id)) == 1
    new = _about(events, "messageNew", moved["id"])
    assert len(new) == 1
    assert new[0]["path"] == "Archive"
    details = api.get(f"/v1/account/{mailbox.account}/message/{moved['id']}")
    assert details.status_code == 200
    assert details.json()["subject"] == "change 4"


def test_move_to_a_special_use_name(api: httpx.Client, mailbox: Mailbox) -> None:
    message_id = mailbox.ids["change 5"]
    response = api.put(
        f"/v1/account/{mailbox.account}/message/{message_id}/move", json={"path": "\\Junk"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["path"] == "Junk"
    assert _entry(api, mailbox.account, "Junk", response.json()["id"]) is not None


def test_delete_moves_to_trash_then_deletes_for_good(
    server: MailwireServer, api: httpx.Client, mailbox: Mailbox
) -> None:
    message_id = mailbox.ids["change 6"]
    first = api.delete(f"/v1/account/{mailbox.account}/message/{message_id}")

    assert first.status_code == 200, first.text
    body = first.json()
    assert body["deleted"] is False
    assert body["moved"]["destination"] == "Trash"
    in_trash = body["moved"]["message"]
    assert _entry(api, mailbox.account, "INBOX", message_id) is None
    assert _entry(api, mailbox.account, "Trash", in_trash) is not None

    second = api.delete(f"/v1/account/{mailbox.account}/message/{in_trash}")

    assert second.status_code == 200, second.text
    assert second.json() == {"deleted": True}
    assert _entry(api, mailbox.account, "Trash", in_trash) is None
    events = _settled(server, mailbox.account)
    assert len(_about(events, "messageDeleted", message_id)) == 1
    assert len(_about(events, "messageNew", in_trash)) == 1
    assert len(_about(events, "messageDeleted", in_trash)) == 1
    gone = api.get(f"/v1/account/{mailbox.account}/message/{in_trash}")
    assert gone.status_code == 404


def test_forced_delete_skips_trash(
    server: MailwireServer, api: httpx.Client, mailbox: Mailbox
) -> None:
    message_id = mailbox.ids["change 7"]
    trash_before = len(_list(api, mailbox.account, "Trash"))
    response = api.delete(
        f"/v1/account/{mailbox.account}/message/{message_id}", params={"force": "true"}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": True}
    assert _entry(api, mailbox.account, "INBOX", message_id) is None
    assert len(_list(api, mailbox.account, "Trash")) == trash_before
    assert len(_about(_settled(server, mailbox.account), "messageDeleted", message_id)) == 1


@pytest.mark.parametrize(
    ("method", "suffix", "body", "status", "code"),
    [
        ("PUT", "message/AAAAAQAAAAEAAAAB", {"flags": {"add": ["\\Seen"]}}, 404, "MessageNotFound"),
        ("PUT", "message/AAAAAQAAAAEAAAAB/move", {"path": "Archive"}, 404, "MessageNotFound"),
        ("DELETE", "message/AAAAAQAAAAEAAAAB", None, 404, "MessageNotFound"),
        ("PUT", "{change 8}/move", {"path": "No/Such/Folder"}, 404, "MailboxNotFound"),
        ("PUT", "{change 8}/move", {"path": "INBOX"}, 400, None),
        ("PUT", "{change 8}", {"flags": {"add": ["bad flag"]}}, 400, None),
        ("PUT", "{change 8}", {"flags": {"add": ["\\Recent"]}}, 400, None),
        ("PUT", "{change 8}/move", {}, 400, None),
    ],
)
def test_error_paths(
    api: httpx.Client,
    mailbox: Mailbox,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    status: int,
    code: str | None,
) -> None:
    if suffix.startswith("{"):
        name, rest = suffix[1:].split("}", 1)
        suffix = f"message/{mailbox.ids[name]}{rest}"
    response = api.request(method, f"/v1/account/{mailbox.account}/{suffix}", json=body)

    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code
    assert _entry(api, mailbox.account, "INBOX", mailbox.ids["change 8"]) is not None


def test_unknown_account_is_404(api: httpx.Client, mailbox: Mailbox) -> None:
    response = api.put(
        f"/v1/account/nobody-{secrets.token_hex(4)}/message/{mailbox.ids['change 8']}",
        json={"flags": {"add": ["\\Seen"]}},
    )
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "AccountNotFound"


# ---------------------------------------------------------------- many messages


def test_bulk_update_marks_every_match_once(
    server: MailwireServer, api: httpx.Client, mailbox: Mailbox
) -> None:
    response = api.put(
        f"/v1/account/{mailbox.account}/messages",
        params={"path": "INBOX"},
        json={"search": {"subject": "bulk"}, "update": {"flags": {"add": ["\\Seen"]}}},
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"flags": {"add": True}}
    listed = {m["subject"]: m for m in _list(api, mailbox.account, "INBOX")}
    bulk = [name for name in SUBJECTS if name.startswith("bulk")]
    assert all("unseen" not in listed[name] for name in bulk)
    assert listed["change 8"]["unseen"] is True
    events = _settled(server, mailbox.account)
    for name in bulk:
        updates = [
            e
            for e in events
            if e["event"] == "messageUpdated" and e["data"]["id"] == mailbox.ids[name]
        ]
        assert len(updates) == 1, (name, updates)


def test_bulk_update_without_a_match(api: httpx.Client, mailbox: Mailbox) -> None:
    response = api.put(
        f"/v1/account/{mailbox.account}/messages",
        params={"path": "INBOX"},
        json={"search": {"subject": "nothing like this"}, "update": {"flags": {"add": "\\Seen"}}},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"flags": {"add": False}}


def test_bulk_move_maps_old_to_new_ids(
    server: MailwireServer, api: httpx.Client, mailbox: Mailbox
) -> None:
    chosen = ["bulk 1", "bulk 2"]
    uids = sorted(m["uid"] for m in _list(api, mailbox.account, "INBOX") if m["subject"] in chosen)
    response = api.put(
        f"/v1/account/{mailbox.account}/messages/move",
        params={"path": "INBOX"},
        json={"search": {"uid": ",".join(map(str, uids))}, "path": "Archive"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["path"] == "Archive"
    id_map = dict(body["idMap"])
    assert set(id_map) == {mailbox.ids[name] for name in chosen}
    archived = {m["id"] for m in _list(api, mailbox.account, "Archive")}
    assert set(id_map.values()) <= archived
    inbox = {m["id"] for m in _list(api, mailbox.account, "INBOX")}
    assert not set(id_map) & inbox
    events = _settled(server, mailbox.account)
    for old, new in id_map.items():
        assert sum(e["event"] == "messageDeleted" and e["data"]["id"] == old for e in events) == 1
        assert sum(e["event"] == "messageNew" and e["data"]["id"] == new for e in events) == 1


def test_bulk_delete_to_trash_then_for_good(
    server: MailwireServer, api: httpx.Client, mailbox: Mailbox
) -> None:
    chosen = {"bulk 3", "bulk 4"}
    wanted = {mailbox.ids[name] for name in chosen}
    response = api.put(
        f"/v1/account/{mailbox.account}/messages/delete",
        params={"path": "INBOX"},
        json={"search": {"subject": "bulk", "uid": _uids(api, mailbox, chosen)}},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deleted"] is False
    assert body["moved"]["destination"] == "Trash"
    trashed = dict(body["moved"]["idMap"])
    assert set(trashed) == wanted
    assert not wanted & {m["id"] for m in _list(api, mailbox.account, "INBOX")}

    purge = api.put(
        f"/v1/account/{mailbox.account}/messages/delete",
        params={"path": "\\Trash"},
        json={"search": {"subject": "bulk"}},
    )

    assert purge.status_code == 200, purge.text
    assert purge.json() == {"deleted": True}
    assert not set(trashed.values()) & {m["id"] for m in _list(api, mailbox.account, "Trash")}
    events = _settled(server, mailbox.account)
    for old, new in trashed.items():
        assert sum(e["event"] == "messageDeleted" and e["data"]["id"] == old for e in events) == 1
        assert sum(e["event"] == "messageNew" and e["data"]["id"] == new for e in events) == 1
        assert sum(e["event"] == "messageDeleted" and e["data"]["id"] == new for e in events) == 1


def test_bulk_forced_delete(server: MailwireServer, api: httpx.Client, mailbox: Mailbox) -> None:
    response = api.put(
        f"/v1/account/{mailbox.account}/messages/delete",
        params={"path": "INBOX", "force": "true"},
        json={"search": {"uid": _uids(api, mailbox, {"bulk 5"})}},
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": True}
    assert mailbox.ids["bulk 5"] not in {m["id"] for m in _list(api, mailbox.account, "INBOX")}
    assert mailbox.ids["bulk 6"] in {m["id"] for m in _list(api, mailbox.account, "INBOX")}


@pytest.mark.parametrize(
    ("suffix", "params", "body", "status", "code"),
    [
        ("messages/move", {"path": "INBOX"}, {"search": {}, "path": "Nowhere"}, 404, None),
        ("messages/move", {"path": "INBOX"}, {"search": {}, "path": "INBOX"}, 400, None),
        ("messages/move", {"path": "Nowhere"}, {"search": {}, "path": "Archive"}, 404, None),
        ("messages/move", {}, {"search": {}, "path": "Archive"}, 400, None),
        ("messages", {"path": "INBOX"}, {"update": {}}, 400, None),
        ("messages", {"path": "INBOX"}, {"search": {"seq": "1"}}, 400, None),
        ("messages/delete", {"path": "Nowhere"}, {"search": {}}, 404, "MailboxNotFound"),
    ],
)
def test_bulk_error_paths(
    api: httpx.Client,
    mailbox: Mailbox,
    suffix: str,
    params: dict[str, str],
    body: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    before = len(_list(api, mailbox.account, "INBOX"))
    response = api.put(f"/v1/account/{mailbox.account}/{suffix}", params=params, json=body)

    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code
    assert len(_list(api, mailbox.account, "INBOX")) == before


def _uids(api: httpx.Client, mailbox: Mailbox, subjects: set[str]) -> str:
    listed = _list(api, mailbox.account, "INBOX")
    return ",".join(str(m["uid"]) for m in listed if m["subject"] in subjects)
