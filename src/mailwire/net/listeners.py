"""Listening sockets, bound by Mailwire itself so that a busy port is one clear error."""

from __future__ import annotations

import socket

from mailwire.errors import ListenError

#: Pending connections the kernel queues per listening socket before refusing more.
BACKLOG = 2048


def bind_tcp(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free one).

    With `reuse_port`, several sockets (one per worker process) may listen on the
    same port and the kernel spreads new connections over them.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    # accepted sockets whose protocol says TCP. With it on, a response written in two
    # parts waits for the client's delayed ACK: ~40 ms on every keep-alive request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            # Only sockets of the same user may join a SO_REUSEPORT group on Linux.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def bind_group(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets sharing one port (the first one's, when `port` is 0)."""
    first = bind_tcp(host, port, reuse_port=True)
    chosen = int(first.getsockname()[1])
    try:
        return [first] + [bind_tcp(host, chosen, reuse_port=True) for _ in range(count - 1)]
    except ListenError:
        first.close()
        raise
