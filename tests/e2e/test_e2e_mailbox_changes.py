"""Folders created, renamed, (un)subscribed and deleted through the API, on the real Dovecot.

Each change must show in `GET /mailboxes` as soon as the request answers, and
be announced exactly once (`mailboxNew` for a folder that appears,
`mailboxDeleted` for one that goes) even after the sync engine has listed the
folders again (`PUT /sync` makes it relist at once). A renamed folder's
messages are not announced again as new.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from e2e_kit import change_events, dovecot_imap

from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.server import MailwireServer

WAIT_S = 30.0
#: Long enough for the sync engine to relist after `PUT /sync` and sync new folders.
SETTLE_S = 3.0
RegisterAccount = Callable[..., str]


@pytest.fixture(scope="module")
def account(
    server: MailwireServer,
    api: httpx.Client,
    register_account: RegisterAccount,
    dovecot: Dovecot,
) -> str:
    user: MailUser = dovecot.add_user(f"folders-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    imap = dovecot_imap(dovecot, user.name, user.password)
    register_account(server, user.name, imap=imap)
    deadline = time.monotonic() + WAIT_S
    while api.get(f"/v1/account/{user.name}").json().get("state") != "connected":
        assert time.monotonic() < deadline, "the account never connected"
        time.sleep(0.2)
    return user.name


def test_create_rename_and_delete_are_listed_at_once_and_announced_once(
    server: MailwireServer, api: httpx.Client, account: str
) -> None:
    delimiter = _folders(api, account)["INBOX"]["delimiter"]
    created_path = f"Projekte{delimiter}Übersicht 2024"
    renamed_path = f"Projekte{delimiter}Archiv ✓"

    created = api.post(
        f"/v1/account/{account}/mailbox", json={"path": ["Projekte", "Übersicht 2024"]}
    )

    assert created.status_code == 200, created.text
    assert created.json() == {"path": created_path, "created": True}
    assert created_path in _folders(api, account)

    uploaded = api.post(
        f"/v1/account/{account}/message",
        json={"path": created_path, "subject": "Filed", "text": "kept across the rename"},
    )
    assert uploaded.status_code == 200, uploaded.text

    renamed = api.put(
        f"/v1/account/{account}/mailbox",
        json={"path": created_path, "newPath": ["Projekte", "Archiv ✓"]},
    )

    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {"path": created_path, "newPath": renamed_path, "renamed": True}
    folders = _folders(api, account)
    assert renamed_path in folders
    assert created_path not in folders
    listed = api.get(f"/v1/account/{account}/messages", params={"path": renamed_path}).json()
    assert [m["subject"] for m in listed["messages"]] == ["Filed"]

    deleted = api.delete(f"/v1/account/{account}/mailbox", params={"path": renamed_path})

    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"path": renamed_path, "deleted": True}
    assert renamed_path not in _folders(api, account)

    _relist(api, account)
    events = change_events(server, account)
    assert _named(events, "mailboxNew", created_path) == 1
    assert _named(events, "mailboxNew", renamed_path) == 1
    assert _named(events, "mailboxDeleted", created_path) == 1
    assert _named(events, "mailboxDeleted", renamed_path) == 1
    assert _named(events, "mailboxNew", "Projekte") <= 1  # the parent CREATE made, if selectable
    new_mail = [e for e in events if e["event"] == "messageNew"]
    assert [e["path"] for e in new_mail] == [created_path]  # the upload, not again on rename


def test_a_folder_created_here_is_not_announced_again_by_the_sync(
    server: MailwireServer, api: httpx.Client, account: str
) -> None:
    path = f"Kept-{secrets.token_hex(3)}"
    created = api.post(f"/v1/account/{account}/mailbox", json={"path": path})
    assert created.status_code == 200, created.text

    _relist(api, account)
    _relist(api, account)

    events = change_events(server, account)
    assert _named(events, "mailboxNew", path) == 1
    [event] = [e for e in events if e["event"] == "mailboxNew" and e["data"]["path"] == path]
    assert event["data"]["uidValidity"].isdigit()
    assert event["data"]["specialUse"] is False
    assert path in _folders(api, account)


def test_creating_an_existing_folder_answers_created_false(
    server: MailwireServer, api: httpx.Client, account: str
) -> None:
    path = f"Twice-{secrets.token_hex(3)}"
    first = api.post(f"/v1/account/{account}/mailbox", json={"path": [path]})
    second = api.post(f"/v1/account/{account}/mailbox", json={"path": [path]})

    assert first.json() == {"path": path, "created": True}
    assert second.status_code == 200, second.text
    assert second.json() == {"path": path, "created": False}
    assert _named(change_events(server, account), "mailboxNew", path) == 1


def test_unsubscribe_is_listed_at_once(api: httpx.Client, account: str) -> None:
    path = f"Quiet-{secrets.token_hex(3)}"
    api.post(f"/v1/account/{account}/mailbox", json={"path": path})
    assert _folders(api, account)[path]["subscribed"] is True

    changed = api.put(f"/v1/account/{account}/mailbox", json={"path": path, "subscribed": False})

    assert changed.status_code == 200, changed.text
    assert changed.json() == {"path": path, "subscribed": False}
    assert _folders(api, account)[path]["subscribed"] is False


def test_renaming_onto_an_existing_folder_is_refused(api: httpx.Client, account: str) -> None:
    first, second = f"A-{secrets.token_hex(3)}", f"B-{secrets.token_hex(3)}"
    api.post(f"/v1/account/{account}/mailbox", json={"path": first})
    api.post(f"/v1/account/{account}/mailbox", json={"path": second})

    refused = api.put(f"/v1/account/{account}/mailbox", json={"path": first, "newPath": second})

    assert refused.status_code == 400, refused.text
    folders = _folders(api, account)
    assert first in folders
    assert second in folders


@pytest.mark.parametrize(
    ("method", "kwargs", "status"),
    [
        ("DELETE", {"params": {"path": "INBOX"}}, 400),
        ("DELETE", {"params": {"path": "inbox"}}, 400),
        ("DELETE", {"params": {"path": "No such folder"}}, 404),
        ("PUT", {"json": {"path": "No such folder", "newPath": "X"}}, 404),
        ("POST", {"json": {"path": []}}, 400),
        ("POST", {"json": {"path": ["bad\r\nname"]}}, 400),
    ],
    ids=["inbox", "inbox-lower", "delete-unknown", "rename-unknown", "no-segments", "crlf"],
)
def test_refused_changes(
    api: httpx.Client, account: str, method: str, kwargs: dict[str, Any], status: int
) -> None:
    response = api.request(method, f"/v1/account/{account}/mailbox", **kwargs)
    assert response.status_code == status, response.text
    assert "INBOX" in _folders(api, account)


def test_unknown_account_is_404(api: httpx.Client) -> None:
    response = api.post("/v1/account/nobody-here/mailbox", json={"path": ["X"]})
    assert response.status_code == 404, response.text


def _folders(api: httpx.Client, account: str) -> dict[str, dict[str, Any]]:
    response = api.get(f"/v1/account/{account}/mailboxes")
    assert response.status_code == 200, response.text
    return {entry["path"]: entry for entry in response.json()["mailboxes"]}


def _relist(api: httpx.Client, account: str) -> None:
    """Make the sync engine list the folders again, and give it time to do so."""
    response = api.put(f"/v1/account/{account}/sync", json={})
    assert response.status_code == 200, response.text
    time.sleep(SETTLE_S)


def _named(events: list[dict[str, Any]], name: str, path: str) -> int:
    return sum(1 for e in events if e["event"] == name and e["data"]["path"] == path)
