"""ImapConnection against `HostileImapServer`: every misbehaviour ends in its documented error.

`ImapConnection` builds its `ResponseParser` with the default `Limits` and
offers no way to pass others, so the limit tests feed more than the default
limits (16 MiB lines); the server's byte budget keeps each exchange bounded.
"""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from mailwire.backends.imap.connection import MAX_UNTAGGED_PER_COMMAND, ImapConnection
from mailwire.backends.imap.errors import (
    ConnectionClosedError,
    ImapProtocolError,
    ImapTimeoutError,
)
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.errors import LimitExceededError, ProtocolError
from mailwire.protocols.imap.parser import Limits
from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.hostile_imap import Behaviour, HostileImapServer

LIMITS = Limits()
_MIB = 1024 * 1024
#: The client must hang up this soon after its error for the server to notice.
HANGUP_WAIT = 5.0


async def _selected(
    server: HostileImapServer,
    command_timeout: float = 2.0,
    *,
    limits: Limits | None = None,
    max_untagged: int = MAX_UNTAGGED_PER_COMMAND,
) -> ImapConnection:
    """A connection that logged in and selected INBOX, ready for the trigger command."""
    conn = await ImapConnection.open(
        server.host,
        server.port,
        security="none",
        connect_timeout=2,
        greeting_timeout=2,
        command_timeout=command_timeout,
        limits=limits,
        max_untagged=max_untagged,
    )
    await conn.login("hostile", "secret")
    await conn.execute(commands.select("INBOX"))
    return conn


async def _trigger_error(conn: ImapConnection) -> BaseException:
    with pytest.raises((ImapProtocolError, ImapTimeoutError, ConnectionClosedError)) as caught:
        await conn.execute(commands.noop())
    assert conn.broken
    return caught.value


async def _trigger_error_measuring_memory(conn: ImapConnection) -> tuple[BaseException, int]:
    """`_trigger_error`, plus the peak of memory allocated while it ran (bytes)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        error = await _trigger_error(conn)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return error, peak


def _limit_of(error: BaseException) -> str:
    assert isinstance(error, ImapProtocolError)
    cause = error.__cause__
    assert isinstance(cause, LimitExceededError), cause
    return cause.limit


@pytest.mark.timeout(20)
async def test_endless_line_stops_at_max_line_length_with_bounded_memory() -> None:
    budget = LIMITS.max_line_length + 16 * _MIB
    with HostileImapServer(Behaviour.ENDLESS_LINE, max_bytes=budget) as server:
        conn = await _selected(server, command_timeout=10)
        error, peak = await _trigger_error_measuring_memory(conn)
        assert _limit_of(error) == "max_line_length"
        # The client was fed more than the limit, yet held little more than it.
        assert server.bytes_sent > LIMITS.max_line_length
        assert peak < LIMITS.max_line_length + 8 * _MIB
        assert await server.client_closed(HANGUP_WAIT)


@pytest.mark.timeout(20)
async def test_literal_flood_stops_at_the_line_after_the_literal() -> None:
    literal = 4 * _MIB
    budget = literal + LIMITS.max_line_length + 16 * _MIB
    with HostileImapServer(
        Behaviour.LITERAL_FLOOD, max_bytes=budget, literal_size=literal
    ) as server:
        conn = await _selected(server, command_timeout=10)
        error, peak = await _trigger_error_measuring_memory(conn)
        assert _limit_of(error) == "max_line_length"
        assert server.bytes_sent > literal + LIMITS.max_line_length
        assert peak < literal + LIMITS.max_line_length + 8 * _MIB
        assert await server.client_closed(HANGUP_WAIT)


@pytest.mark.timeout(10)
async def test_huge_literal_is_refused_when_announced() -> None:
    with HostileImapServer(Behaviour.HUGE_LITERAL, max_bytes=64 * _MIB) as server:
        conn = await _selected(server)
        error = await _trigger_error(conn)
        assert _limit_of(error) == "max_literal_size"
        # Refused on the announcement, long before the budget was streamed.
        assert await server.client_closed(HANGUP_WAIT)
        assert server.bytes_sent < 64 * _MIB


@pytest.mark.timeout(10)
async def test_deep_nesting_is_refused_at_max_nesting_depth() -> None:
    with HostileImapServer(Behaviour.DEEP_NESTING, nesting_depth=100_000) as server:
        conn = await _selected(server)
        error = await _trigger_error(conn)
        assert _limit_of(error) == "max_nesting_depth"
        assert await server.client_closed(HANGUP_WAIT)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_garbage_is_a_protocol_error(seed: int) -> None:
    with HostileImapServer(Behaviour.GARBAGE, max_bytes=4 * _MIB, seed=seed) as server:
        conn = await _selected(server)
        error = await _trigger_error(conn)
        assert isinstance(error, ImapProtocolError)
        assert isinstance(error.__cause__, ProtocolError)
        assert await server.client_closed(HANGUP_WAIT)


@pytest.mark.timeout(10)
async def test_stalled_greeting_times_out() -> None:
    with HostileImapServer(Behaviour.STALL_GREETING) as server:
        with pytest.raises(ImapTimeoutError, match="no greeting"):
            await ImapConnection.open(server.host, server.port, security="none", greeting_timeout=1)
        assert await server.client_closed(HANGUP_WAIT)
        assert server.bytes_sent == 0


@pytest.mark.timeout(10)
async def test_stalled_response_times_out_and_the_connection_stays_closed() -> None:
    with HostileImapServer(Behaviour.STALL_RESPONSE) as server:
        conn = await _selected(server, command_timeout=1)
        error = await _trigger_error(conn)
        assert isinstance(error, ImapTimeoutError)
        assert await server.client_closed(HANGUP_WAIT)
        with pytest.raises(ConnectionClosedError):
            await conn.execute(commands.noop())


@pytest.mark.timeout(10)
async def test_bye_midway_closes_the_connection() -> None:
    with HostileImapServer(Behaviour.BYE_MIDWAY) as server:
        conn = await _selected(server)
        error = await _trigger_error(conn)
        assert isinstance(error, ConnectionClosedError)
        assert error.text == "shutting down"


@pytest.mark.timeout(15)
async def test_many_untagged_lines_stop_at_the_default_limit() -> None:
    # Two million lines: the default per-command limit ends the exchange long before
    # the server's budget or the command timeout, and memory stops growing with it.
    with HostileImapServer(
        Behaviour.MANY_UNTAGGED, untagged_count=2_000_000, max_seconds=12
    ) as server:
        conn = await _selected(server, command_timeout=10)
        error = await _trigger_error(conn)
        assert _limit_of(error) == "max_untagged_per_command"
        assert await server.client_closed(HANGUP_WAIT)


@pytest.mark.timeout(20)
async def test_a_stalled_peer_does_not_stall_a_healthy_one(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    async def healthy() -> None:
        conn = await ImapConnection.open(
            dovecot.host, dovecot.imap_port, security="none", command_timeout=10
        )
        await conn.login(dovecot_user.name, dovecot_user.password)
        await conn.execute(commands.select("INBOX"))
        await conn.logout()

    async def stalled(conn: ImapConnection) -> None:
        await conn.execute(commands.noop())

    with HostileImapServer(Behaviour.STALL_RESPONSE) as server:
        hostile = await _selected(server, command_timeout=3)
        stalled_task = asyncio.create_task(stalled(hostile))
        healthy_task = asyncio.create_task(healthy())
        done, _ = await asyncio.wait(
            {stalled_task, healthy_task}, return_when=asyncio.FIRST_COMPLETED
        )
        assert done == {healthy_task}
        healthy_task.result()
        assert not stalled_task.done()
        with pytest.raises(ImapTimeoutError):
            await stalled_task
        assert hostile.broken


async def test_a_flood_of_untagged_responses_hits_the_named_limit() -> None:
    with HostileImapServer(Behaviour.MANY_UNTAGGED, untagged_count=100_000) as server:
        conn = await _selected(server, command_timeout=10, max_untagged=1_000)
        error = await _trigger_error(conn)
        assert _limit_of(error) == "max_untagged_per_command"
        assert await server.client_closed(HANGUP_WAIT)


async def test_parser_limits_can_be_tightened_per_connection() -> None:
    tight = Limits(max_line_length=64 * 1024)
    with HostileImapServer(Behaviour.ENDLESS_LINE, max_bytes=4 * _MIB) as server:
        conn = await _selected(server, limits=tight)
        error = await _trigger_error(conn)
        assert _limit_of(error) == "max_line_length"
        # The tight limit stopped reading long before the server's budget ran out.
        assert server.bytes_sent < 4 * _MIB
