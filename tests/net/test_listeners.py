"""Listening sockets: clear errors for busy ports, one port shared by a worker group."""

from __future__ import annotations

import asyncio
import select
import socket

import pytest

from mailwire.errors import ListenError
from mailwire.net.listeners import bind_group, bind_tcp


def test_a_busy_port_is_a_listen_error_naming_it() -> None:
    holder = bind_tcp("127.0.0.1", 0)
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ListenError, match=f"127.0.0.1:{port}: Address already in use"):
            bind_tcp("127.0.0.1", port)
    finally:
        holder.close()


def test_a_group_shares_one_port_and_the_kernel_spreads_connections() -> None:
    group = bind_group("127.0.0.1", 0, 3)
    clients: list[socket.socket] = []
    try:
        ports = {sock.getsockname()[1] for sock in group}
        assert len(ports) == 1
        port = ports.pop()
        for _ in range(60):  # bounded: 60 connections from distinct source ports
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        accepted = dict.fromkeys(range(len(group)), 0)
        for _ in range(200):  # bounded polling until every connection is accepted
            if sum(accepted.values()) == len(clients):
                break
            readable, _, _ = select.select(group, [], [], 0.1)
            for sock in readable:
                conn, _ = sock.accept()
                conn.close()
                accepted[group.index(sock)] += 1
        assert sum(accepted.values()) == len(clients)
        # With one shared socket a single worker could take them all; with a group
        # each socket gets a share (60 hashed connections over 3 sockets).
        assert all(count > 0 for count in accepted.values()), accepted
    finally:
        for sock in [*clients, *group]:
            sock.close()


async def test_accepted_connections_send_without_nagle_delay() -> None:
    # Responses are written in parts (headers, then body); with Nagle's algorithm
    # on, the second part waited for the client's delayed ACK on every keep-alive
    # request (~40 ms). asyncio sets TCP_NODELAY only on sockets that say TCP.
    listener = bind_tcp("127.0.0.1", 0)
    seen: list[int] = []

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert seen
    assert seen[0] != 0
