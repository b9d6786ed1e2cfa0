"""Graceful shutdown of a real `mailwire serve`: SIGTERM drains what is in flight.

The in-flight request is driven over a raw socket so the test controls exactly
when each byte arrives. `Expect: 100-continue` makes the server say when the
application has started reading the body, so the SIGTERM is known to land
while the request is being served, not before it was accepted.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from mailwire.testing.server import MailwireServer

StartServer = Callable[..., MailwireServer]
RegisterAccount = Callable[..., str]


def host_port(server: MailwireServer) -> tuple[str, int]:
    url = httpx.URL(server.url)
    assert url.host
    assert url.port
    return url.host, url.port


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def read_to_close(sock: socket.socket, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """Read one response up to the server closing the connection; returns status,
    headers and the body (de-chunked). A server that keeps the connection open
    makes this time out."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return int(status_line.split()[1]), headers, body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def refuses_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


@pytest.mark.slow
def test_sigterm_drains_a_request_whose_body_is_still_arriving(
    start_server: StartServer, register_account: RegisterAccount
) -> None:
    server = start_server(env={"MAILWIRE_SHUTDOWN_TIMEOUT": "5"})
    register_account(server, "acc-drain")
    host, port = host_port(server)
    body = json.dumps(
        {"account": "acc-drain", "description": "issued while stopping", "scopes": ["api"]}
    ).encode()
    half = len(body) // 2
    head = (
        f"POST /v1/tokens HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()

    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head)
        assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100")
        sock.sendall(body[:half])

        server.process.terminate()
        deadline = time.monotonic() + 10
        while not refuses_connections(host, port):
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.05)
        assert server.process.poll() is None, "exited before the in-flight request finished"

        sock.sendall(body[half:])
        # The connection is not kept alive for another request: the server closes it.
        status, headers, answer = read_to_close(sock)

    assert status == 200, answer
    assert headers["content-type"] == "application/json"
    created = json.loads(answer)
    assert len(created["token"]) == 64
    assert server.process.wait(5) == 0
    assert "runtime.stopped" in server.logs()


def send_half_a_request(server: MailwireServer) -> socket.socket:
    host, port = host_port(server)
    body = json.dumps({"account": "acc-stuck", "description": "never sent", "scopes": ["api"]})
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(
        (
            f"POST /v1/tokens HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
        ).encode()
    )
    assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100")
    sock.sendall(body[: len(body) // 2].encode())
    return sock


@pytest.mark.slow
def test_a_stalled_request_is_cancelled_after_the_shutdown_timeout(
    start_server: StartServer,
) -> None:
    server = start_server(env={"MAILWIRE_SHUTDOWN_TIMEOUT": "2"})

    with send_half_a_request(server) as sock:
        server.process.terminate()
        # The drain waits up to the shutdown timeout (2 s), then cancels what is left.
        code = server.process.wait(10)
        status, headers, answer = read_to_close(sock)

    assert code == 0
    assert "runtime.stopped" in server.logs()
    # The cancelled request gets an answer, without internals, in the API's error shape.
    assert status in (500, 503)
    for internal in (b"Traceback", b"Cancelled", b".py", b"asyncio"):
        assert internal not in answer
    assert headers["content-type"] == "application/json", answer
    assert json.loads(answer)["statusCode"] == status


@pytest.mark.slow
def test_sigterm_on_an_idle_server_exits_0(start_server: StartServer) -> None:
    server = start_server()
    host, port = host_port(server)
    # An idle keep-alive connection must not hold the shutdown up.
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/health").status_code == 200

        started = time.monotonic()
        code = server.stop()
        elapsed = time.monotonic() - started

    assert code == 0
    assert elapsed < 10, "an idle connection held the shutdown until its timeout"
    assert refuses_connections(host, port)
    assert "runtime.stopped" in server.logs()
