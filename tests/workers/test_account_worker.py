"""Account workers against a real Dovecot and the hostile IMAP server."""

from __future__ import annotations

import asyncio
import functools
import socket

import pytest
from worker_kit import Accounts, eventually, running

from mailwire.backends.imap.connection import ImapConnection
from mailwire.domain.accounts import Account
from mailwire.protocols.imap import commands
from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.hostile_imap import Behaviour, HostileImapServer
from mailwire.workers.session import Connect, Ready, idle_session
from mailwire.workers.supervisor import Supervisor


async def add_alice(
    accounts: Accounts, dovecot: Dovecot, user: MailUser, account_id: str = "alice", **kw: object
) -> None:
    password = kw.pop("password", user.password)
    await accounts.add(
        account_id,
        host=dovecot.host,
        port=dovecot.imap_port,
        user=user.name,
        password=password,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def state_is(accounts: Accounts, account_id: str, state: str):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await accounts.state(account_id) == state

    return check


async def test_right_password_connects_and_raises_each_event_once(
    accounts_: Accounts, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    await add_alice(accounts_, dovecot, dovecot_user)
    async with running(accounts_.store) as supervisor:
        await eventually(state_is(accounts_, "alice", "connected"), "alice connected")
        first = supervisor.workers["alice"]
        # A reconnect request replaces the worker; a clean reconnect raises nothing new.
        await accounts_.bump("alice", "revision")

        async def replaced_and_connected() -> bool:
            worker = supervisor.workers.get("alice")
            return (
                worker is not None
                and worker is not first
                and worker.login_attempts == 1
                and await accounts_.state("alice") == "connected"
            )

        await eventually(replaced_and_connected, "a new connection after the reconnect request")
    assert await accounts_.events("alice") == [
        ("authenticationSuccess", {"user": dovecot_user.name}),
        ("accountInitialized", {"initialized": True}),
    ]
    row = await accounts_.row("alice")
    assert row["initialized"] is True
    assert row["owner"] is None  # released on stop
    assert row["state"] == "disconnected"


async def test_wrong_password_opens_the_breaker_until_the_password_is_fixed(
    accounts_: Accounts, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    await add_alice(accounts_, dovecot, dovecot_user, password="not-the-password", logs=True)
    async with running(accounts_.store) as supervisor:

        async def breaker_open() -> bool:
            worker = supervisor.workers.get("alice")
            return worker is not None and worker.breaker.open

        await eventually(breaker_open, "the authentication breaker to open")
        assert await accounts_.state("alice") == "authenticationError"
        # Many poll rounds and auth backoffs later, still no further login.
        await asyncio.sleep(1.0)
        logins = [msg for src, msg in await accounts_.log_lines("alice") if " LOGIN " in msg]
        assert len(logins) == 3
        assert supervisor.workers["alice"].login_attempts == 3

        await accounts_.set_password("alice", dovecot_user.password)
        await accounts_.bump("alice", "revision")
        await eventually(state_is(accounts_, "alice", "connected"), "recovery after the fix")
    events = await accounts_.events("alice")
    assert [name for name, _ in events] == [
        "authenticationError",
        "authenticationSuccess",
        "accountInitialized",
    ]
    assert events[0][1]["serverResponseCode"] == "AUTHENTICATIONFAILED"
    logged = "\n".join(msg for _, msg in await accounts_.log_lines("alice"))
    assert "not-the-password" not in logged
    assert dovecot_user.password not in logged


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_connection_raises_connect_error_once_while_retrying(
    accounts_: Accounts,
) -> None:
    await accounts_.add("nobody", host="127.0.0.1", port=closed_port(), user="u", password="p")
    async with running(accounts_.store) as supervisor:

        async def retried() -> bool:
            worker = supervisor.workers.get("nobody")
            return worker is not None and worker.backoff.failures >= 4

        await eventually(retried, "several connection attempts")
        row = await accounts_.row("nobody")
        # Between attempts the state is connectError; during one it is connecting.
        assert row["state"] in ("connectError", "connecting")
        assert row["last_error"]["serverResponseCode"] == "ECONNREFUSED"
    events = await accounts_.events("nobody")
    assert len(events) == 1
    name, data = events[0]
    assert name == "connectError"
    assert data["serverResponseCode"] == "ECONNREFUSED"


async def noop_first(
    account: Account,
    connection: ImapConnection,
    ready: Ready,
    wakeup: asyncio.Event,
    *,
    connect: Connect | None = None,
) -> None:
    """A stand-in initial sync (one NOOP) before the idle session."""
    await connection.execute(commands.noop())
    await idle_session(account, connection, ready, wakeup)


@pytest.mark.parametrize(
    ("behaviour", "code"),
    [
        (Behaviour.STALL_GREETING, "ETIMEDOUT"),
        (Behaviour.ENDLESS_LINE, "EPROTO"),
        (Behaviour.HUGE_LITERAL, "EPROTO"),
        (Behaviour.STALL_RESPONSE, "ETIMEDOUT"),
    ],
)
async def test_hostile_server_fails_its_account_only(
    accounts_: Accounts,
    dovecot: Dovecot,
    dovecot_user: MailUser,
    behaviour: Behaviour,
    code: str,
) -> None:
    await add_alice(accounts_, dovecot, dovecot_user)
    with HostileImapServer(behaviour, max_seconds=5.0) as hostile:
        await accounts_.add("hostile", host=hostile.host, port=hostile.port, user="u", password="p")
        async with running(accounts_.store, session=noop_first) as supervisor:
            await eventually(state_is(accounts_, "alice", "connected"), "alice connected")
            alice = supervisor.workers["alice"]

            async def failed_twice() -> bool:
                return hostile.connections >= 2 and await accounts_.state("hostile") in (
                    "connectError",
                    "connecting",
                )

            await eventually(failed_twice, "the hostile account to fail and retry")
            assert supervisor.workers["alice"] is alice
            assert await accounts_.state("alice") == "connected"
    # Each event once, however many attempts failed (a stalled greeting never logs in).
    hostile_events = dict(await accounts_.events("hostile"))
    expected = {"connectError"} | (
        set() if behaviour is Behaviour.STALL_GREETING else {"authenticationSuccess"}
    )
    assert len(await accounts_.events("hostile")) == len(expected)
    assert set(hostile_events) == expected
    assert hostile_events["connectError"]["serverResponseCode"] == code
    assert [name for name, _ in await accounts_.events("alice")] == [
        "authenticationSuccess",
        "accountInitialized",
    ]


async def test_connection_lost_after_ready_is_disconnected_without_event(
    accounts_: Accounts,
) -> None:
    # The hostile server offers no IDLE: the session polls with NOOP, which the
    # server answers with half a response and a BYE, after SELECT made the account ready.
    session = functools.partial(idle_session, renew=0.1)
    with HostileImapServer(Behaviour.BYE_MIDWAY, max_seconds=5.0) as hostile:
        await accounts_.add("flaky", host=hostile.host, port=hostile.port, user="u", password="p")
        async with running(accounts_.store, session=session):
            # Each attempt is two connections: STARTTLS is asked for, then plain.
            await eventually(lambda: _at_least(hostile, 6), "reconnects after each drop")
            # Any state of the reconnect cycle (login -> syncing -> connected -> drop ->
            # disconnected -> connecting), never an error state: the drop is not an error.
            cycle = ("disconnected", "connecting", "syncing", "connected")
            assert await accounts_.state("flaky") in cycle
    events = [name for name, _ in await accounts_.events("flaky")]
    assert events == ["authenticationSuccess", "accountInitialized"]


async def _at_least(hostile: HostileImapServer, count: int) -> bool:
    return hostile.connections >= count


async def test_sync_request_wakes_the_session(
    accounts_: Accounts, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    woken: list[str] = []

    async def recording(
        account: Account,
        connection: ImapConnection,
        ready: Ready,
        wakeup: asyncio.Event,
        *,
        connect: Connect | None = None,
    ) -> None:
        await ready()
        while True:
            await wakeup.wait()
            wakeup.clear()
            woken.append(account.id)
            await connection.execute(commands.noop())

    await add_alice(accounts_, dovecot, dovecot_user)
    async with running(accounts_.store, session=recording):
        await eventually(state_is(accounts_, "alice", "connected"), "alice connected")
        assert woken == []
        await accounts_.bump("alice", "sync_seq")

        async def woke() -> bool:
            return woken == ["alice"]

        await eventually(woke, "the session to be woken")


async def test_disabled_account_holds_no_connection_and_deleted_account_stops(
    accounts_: Accounts,
) -> None:
    with HostileImapServer(Behaviour.STALL_RESPONSE, max_seconds=5.0) as hostile:
        await accounts_.add(
            "off", host=hostile.host, port=hostile.port, user="u", password="p", disabled=True
        )
        async with running(accounts_.store) as supervisor:
            await eventually(state_is(accounts_, "off", "unset"), "the disabled state")
            await asyncio.sleep(0.5)
            assert hostile.connections == 0
            await accounts_.delete("off")

            async def stopped() -> bool:
                return "off" not in supervisor.workers

            await eventually(stopped, "the worker of the deleted account to stop")


async def supervisor_ids(supervisor: Supervisor) -> set[str]:
    return set(supervisor.workers)
