"""Free-port probing on loopback."""

from __future__ import annotations

import socket

from mailwire.testing.ports import LOOPBACK, find_free_port, find_free_ports


def test_free_port_can_be_bound() -> None:
    port = find_free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, port))
        listener.listen()
        assert listener.getsockname() == (LOOPBACK, port)


def test_free_ports_are_distinct_and_avoid_bound_ones() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        ports = find_free_ports(20)
        assert len(set(ports)) == 20
        assert taken.getsockname()[1] not in ports
