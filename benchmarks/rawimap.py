"""The baseline of the IMAP benchmarks: one FETCH over a plain blocking socket.

No parsing at all: read until the tagged reply, keep the bytes. What the
server needs to produce a mailbox's FETCH responses is the floor any client's
initial index is compared with.
"""

from __future__ import annotations

import socket
import time

#: Bounds on the socket loop: bytes and seconds.
MAX_RESPONSE_BYTES = 512 * 1024 * 1024
MAX_FETCH_SECONDS = 300.0
BASE_ITEMS = b"(UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)"


def raw_fetch(
    host: str, port: int, user: str, password: str, items: bytes = BASE_ITEMS
) -> tuple[bytes, float]:
    """Log in, select INBOX, `UID FETCH 1:* items`; return the bytes and the FETCH's seconds."""
    with socket.create_connection((host, port), timeout=60) as sock:
        exchange(sock, b"", b"* ")  # the greeting
        exchange(sock, f"a LOGIN {user} {password}\r\n".encode(), b"a ")
        exchange(sock, b"b SELECT INBOX\r\n", b"b ")
        began = time.perf_counter()
        data = exchange(sock, b"c UID FETCH 1:* " + items + b"\r\n", b"c ")
        elapsed = time.perf_counter() - began
        exchange(sock, b"d LOGOUT\r\n", b"d ")
    return data, elapsed


def exchange(sock: socket.socket, command: bytes, tag: bytes) -> bytes:
    """Send a command (if any) and read until a line starting with `tag` ends the reply."""
    if command:
        sock.sendall(command)
    received = bytearray()
    deadline = time.monotonic() + MAX_FETCH_SECONDS
    while time.monotonic() < deadline and len(received) < MAX_RESPONSE_BYTES:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        received += chunk
        if received.endswith(b"\r\n"):
            previous = received.rfind(b"\r\n", 0, len(received) - 2)
            if received.startswith(tag, 0 if previous < 0 else previous + 2):
                break
    return bytes(received)
