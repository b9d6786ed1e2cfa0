"""SmtpPool against a real SMTP sink: reuse, expiry, and a session the server dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from mailwire.backends.smtp.delivery import SmtpPool, SmtpRoute, deliver
from mailwire.testing.smtp_sink import SmtpSink

MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: pool\r\n\r\nhi\r\n"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def route(sink: SmtpSink) -> SmtpRoute:
    return SmtpRoute(host=sink.host, port=sink.port)


async def send(sink: SmtpSink, pool: SmtpPool) -> None:
    await deliver(route(sink), "a@example.com", ["b@example.org"], MESSAGE, pool=pool)


async def test_a_pooled_session_carries_the_next_message(sink: SmtpSink) -> None:
    pool = SmtpPool()
    try:
        await send(sink, pool)
        await send(sink, pool)
    finally:
        await pool.close()
    first, second = await sink.wait_for_async(2)
    assert first.peer == second.peer


async def test_an_expired_session_is_closed_and_replaced(sink: SmtpSink) -> None:
    pool = SmtpPool(idle_s=0.0)
    try:
        await send(sink, pool)
        await asyncio.sleep(0.01)
        await send(sink, pool)
    finally:
        await pool.close()
    first, second = await sink.wait_for_async(2)
    assert first.peer != second.peer


async def test_a_session_the_server_dropped_is_not_used(sink: SmtpSink) -> None:
    pool = SmtpPool()
    try:
        await send(sink, pool)
        sink.drop_connections()  # the server hangs up on the idle session
        await asyncio.sleep(0.05)
        await send(sink, pool)  # NOOP fails on the pooled one: a new session carries it
    finally:
        await pool.close()
    first, second = await sink.wait_for_async(2)
    assert first.peer != second.peer
