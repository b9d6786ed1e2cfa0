"""Free TCP ports on loopback for launchers of external test peers.

A port found this way is free only at the moment it is probed: another process
may take it before the peer binds it. Launchers that cannot bind port 0
themselves (Dovecot reads its ports from a config file) therefore retry with
fresh ports when the bind fails (`mailwire.testing.errors.PortInUseError`).
"""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def find_free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on `host` that nothing listens on right now.

    The kernel picks the port (bind to port 0) from its ephemeral range, so
    the answer avoids every port already bound on this address.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def find_free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return `count` distinct free ports, all probed while held open together.

    Holding every probe socket until all are chosen keeps the kernel from
    handing out the same port twice.
    """
    probes: list[socket.socket] = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probes.append(probe)
            probe.bind((host, 0))
        return [int(p.getsockname()[1]) for p in probes]
    finally:
        for probe in probes:
            probe.close()
