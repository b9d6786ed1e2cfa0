"""The byte stream under an IMAP connection: DEFLATE bombs and corrupt compressed data."""

from __future__ import annotations

import asyncio
import socket
import zlib
from collections.abc import AsyncIterator

import pytest

from mailwire.backends.imap.errors import ConnectionClosedError
from mailwire.backends.imap.stream import DEFLATE_WBITS, MAX_INFLATE_STEP, ImapStream

#: What the server sends: 64 MiB of zeros deflate to well under a megabyte.
BOMB_SIZE = 64 * 1024 * 1024


@pytest.fixture
async def pair() -> AsyncIterator[tuple[ImapStream, socket.socket]]:
    """An ImapStream on one end of a socket pair; the test plays the server on the other."""
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    stream = ImapStream(reader, writer)
    yield stream, theirs
    await stream.close()
    theirs.close()


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, DEFLATE_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


async def _read_several(stream: ImapStream, count: int) -> None:
    for _ in range(count):  # bounded: a corrupt stream fails on the first read with data
        await asyncio.wait_for(stream.read(), 5)


async def _send(sock: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, data)


async def test_a_deflate_bomb_inflates_one_bounded_step_at_a_time(
    pair: tuple[ImapStream, socket.socket],
) -> None:
    stream, server = pair
    server.setblocking(False)
    stream.start_deflate()
    bomb = _deflate(b"\0" * BOMB_SIZE)
    assert len(bomb) < BOMB_SIZE // 100  # it really is a bomb
    sender = asyncio.create_task(_send(server, bomb))
    total = 0
    largest = 0
    for _ in range(BOMB_SIZE // MAX_INFLATE_STEP + 100):  # bounded: more reads than needed
        chunk = await asyncio.wait_for(stream.read(), 10)
        largest = max(largest, len(chunk))
        total += len(chunk)
        if total >= BOMB_SIZE:
            break
    await sender
    # Every read hands the parser at most one step, never the whole expansion at once.
    assert largest <= MAX_INFLATE_STEP
    assert total == BOMB_SIZE


async def test_corrupt_compressed_data_ends_the_connection_with_a_clear_error(
    pair: tuple[ImapStream, socket.socket],
) -> None:
    stream, server = pair
    server.setblocking(False)
    stream.start_deflate()
    await _send(server, b"\xff\xfe this is not a deflate stream " * 8)
    with pytest.raises(ConnectionClosedError, match="corrupt DEFLATE stream"):
        await _read_several(stream, 10)


async def test_compressed_round_trip_both_ways(pair: tuple[ImapStream, socket.socket]) -> None:
    stream, server = pair
    server.setblocking(False)
    stream.start_deflate()
    await stream.write(b"A1 NOOP\r\n")
    received = await asyncio.get_running_loop().sock_recv(server, 65536)
    assert zlib.decompressobj(DEFLATE_WBITS).decompress(received) == b"A1 NOOP\r\n"
    await _send(server, _deflate(b"A1 OK done\r\n"))
    assert await asyncio.wait_for(stream.read(), 5) == b"A1 OK done\r\n"
