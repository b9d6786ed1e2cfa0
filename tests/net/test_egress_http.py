"""`post` over real sockets: a loopback receiver, pinned by made-up names.

The names (`hooks.test`, `other.test`) are answered by a stub resolver with
127.0.0.1 and resolve nowhere else (`.test` is reserved, RFC 6761), so a
request that arrives proves `post` dialled the pinned address and asked no
DNS. Every receiver listens on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailwire.net.egress import (
    EgressFailed,
    EgressPolicy,
    EgressRefused,
    Target,
    new_client,
    post,
    resolve,
)

LOOPBACK = EgressPolicy(allow=("127.0.0.0/8",))
#: Bounds every wait on the receiver's side, so a broken test ends instead of hanging.
HOLD_LIMIT_S = 10.0


async def loopback_names(host: str, port: int) -> Sequence[str]:
    return ["127.0.0.1"]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A stdlib HTTP server in a thread that records requests and answers as told."""

    port: int = 0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: Declared Content-Length and bytes actually sent before holding (None: a short body).
    declared: int | None = None
    sent: int = 0
    hold: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[Seen] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            receiver.requests.append(Seen("POST", self.path, headers, body))
            if receiver.hold and receiver.declared is None:
                receiver.release.wait(HOLD_LIMIT_S)
            self.send_response(receiver.status)
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            declared = receiver.declared if receiver.declared is not None else 2
            self.send_header("Content-Length", str(declared))
            self.end_headers()
            if receiver.declared is None:
                self.wfile.write(b"ok")
                return
            self.wfile.write(b"x" * receiver.sent)
            self.wfile.flush()
            receiver.release.wait(HOLD_LIMIT_S)
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


StartReceiver = Callable[..., Receiver]


@pytest.fixture
def receiver_factory() -> Iterator[StartReceiver]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread, Receiver]] = []

    def start(tls: ssl.SSLContext | None = None) -> Receiver:
        receiver = Receiver()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        server.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: receiver.server_names.append(name)
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        receiver.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread, receiver))
        return receiver

    yield start
    for server, thread, receiver in servers:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(HOLD_LIMIT_S)


async def target(url: str) -> Target:
    return await resolve(url, LOOPBACK, resolver=loopback_names)


# --------------------------------------------------------------------------- plain http


async def test_a_post_reaches_the_pinned_address_with_the_original_host(
    receiver_factory: StartReceiver,
) -> None:
    receiver = receiver_factory()
    pinned = await target(f"http://hooks.test:{receiver.port}/in?x=1")
    sent_headers = {"Content-Type": "application/json", "X-Custom": "v", "Host": "evil.example"}
    response = await post(pinned, body=b'{"a":1}', headers=sent_headers, timeout=10)
    assert response.status == 200
    assert response.location is None
    assert response.elapsed >= 0
    [seen] = receiver.requests
    assert (seen.method, seen.path, seen.body) == ("POST", "/in?x=1", b'{"a":1}')
    assert seen.headers["host"] == f"hooks.test:{receiver.port}"  # a custom Host is ignored
    assert seen.headers["x-custom"] == "v"
    assert seen.headers["content-type"] == "application/json"


async def test_a_redirect_is_returned_not_followed(receiver_factory: StartReceiver) -> None:
    receiver = receiver_factory()
    receiver.status = 302
    # First a redirect back to the receiver itself: were it followed, the
    # receiver would see two requests, and no packet would leave loopback.
    receiver.headers = {"Location": f"http://127.0.0.1:{receiver.port}/second"}
    pinned = await target(f"http://hooks.test:{receiver.port}/in")
    response = await post(pinned, body=b"{}", headers={}, timeout=10)
    assert (response.status, response.location) == (302, f"http://127.0.0.1:{receiver.port}/second")
    assert [seen.path for seen in receiver.requests] == ["/in"]
    # Redirects are proven not followed, so aiming one at the metadata address is safe.
    receiver.headers = {"Location": "http://169.254.169.254/latest/meta-data/"}
    response = await post(pinned, body=b"{}", headers={}, timeout=10)
    assert (response.status, response.location) == (302, "http://169.254.169.254/latest/meta-data/")
    assert [seen.path for seen in receiver.requests] == ["/in", "/in"]


async def test_a_receiver_that_does_not_answer_in_time_is_a_timeout(
    receiver_factory: StartReceiver,
) -> None:
    receiver = receiver_factory()
    receiver.hold = True
    pinned = await target(f"http://hooks.test:{receiver.port}/slow")
    with pytest.raises(EgressFailed) as caught:
        await post(pinned, body=b"{}", headers={}, timeout=0.5)
    assert caught.value.kind == "timeout"
    assert "hooks.test" in caught.value.reason


async def test_the_response_body_is_read_only_up_to_the_cap(
    receiver_factory: StartReceiver,
) -> None:
    receiver = receiver_factory()
    # The receiver promises 100 MB, sends 256 KiB and then stalls: reading to
    # the end would time out, stopping at the cap answers at once.
    receiver.declared = 100 * 1024 * 1024
    receiver.sent = 256 * 1024
    pinned = await target(f"http://hooks.test:{receiver.port}/big")
    response = await post(pinned, body=b"{}", headers={}, timeout=5, max_body=64 * 1024)
    assert response.status == 200


async def test_a_closed_port_is_a_connect_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pinned = await target(f"http://hooks.test:{port}/")
    with pytest.raises(EgressFailed) as caught:
        await post(pinned, body=b"{}", headers={}, timeout=5)
    assert caught.value.kind == "connect"


async def test_a_header_that_cannot_be_sent_is_refused(receiver_factory: StartReceiver) -> None:
    receiver = receiver_factory()
    pinned = await target(f"http://hooks.test:{receiver.port}/")
    with pytest.raises(EgressRefused):
        await post(pinned, body=b"{}", headers={"X-Bad": "a\r\nX-Injected: 1"}, timeout=5)
    assert receiver.requests == []


async def test_a_shared_client_serves_many_posts(receiver_factory: StartReceiver) -> None:
    receiver = receiver_factory()
    pinned = await target(f"http://hooks.test:{receiver.port}/many")
    async with new_client() as client:
        for _ in range(3):
            response = await post(pinned, body=b"{}", headers={}, timeout=5, client=client)
            assert response.status == 200
    assert len(receiver.requests) == 3


# --------------------------------------------------------------------------- https


@dataclass(frozen=True)
class NamedCertificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def hooks_cert(tmp_path_factory: pytest.TempPathFactory) -> NamedCertificate:
    """A self-signed certificate for the name hooks.test only (no IP address in it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.test")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("hooks-tls")
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (directory / "key.pem").write_bytes(key_pem)
    return NamedCertificate(directory / "cert.pem", directory / "key.pem")


async def test_https_to_the_pinned_address_sends_sni_and_checks_the_name(
    receiver_factory: StartReceiver, hooks_cert: NamedCertificate
) -> None:
    receiver = receiver_factory(hooks_cert.server_context())
    pinned = await target(f"https://hooks.test:{receiver.port}/secure")
    assert pinned.pinned_url == f"https://127.0.0.1:{receiver.port}/secure"
    async with new_client(verify=hooks_cert.client_context()) as client:
        response = await post(pinned, body=b"{}", headers={}, timeout=10, client=client)
    assert response.status == 200
    assert receiver.server_names == ["hooks.test"]
    [seen] = receiver.requests
    assert seen.headers["host"] == f"hooks.test:{receiver.port}"
    # A connection checked for one name is never reused for another (see `post`).
    assert seen.headers["connection"] == "close"


async def test_https_to_a_name_the_certificate_does_not_cover_fails_tls(
    receiver_factory: StartReceiver, hooks_cert: NamedCertificate
) -> None:
    receiver = receiver_factory(hooks_cert.server_context())
    pinned = await target(f"https://other.test:{receiver.port}/")
    async with new_client(verify=hooks_cert.client_context()) as client:
        with pytest.raises(EgressFailed) as caught:
            await post(pinned, body=b"{}", headers={}, timeout=10, client=client)
    assert caught.value.kind == "tls"
    assert receiver.server_names == ["other.test"]
    assert receiver.requests == []


async def test_https_with_an_untrusted_certificate_fails_tls(
    receiver_factory: StartReceiver, hooks_cert: NamedCertificate
) -> None:
    receiver = receiver_factory(hooks_cert.server_context())
    pinned = await target(f"https://hooks.test:{receiver.port}/")
    with pytest.raises(EgressFailed) as caught:  # the default client trusts the system store
        await post(pinned, body=b"{}", headers={}, timeout=10)
    assert caught.value.kind == "tls"
    assert receiver.requests == []


async def test_a_shared_client_never_reuses_a_tls_connection_for_another_name(
    receiver_factory: StartReceiver, hooks_cert: NamedCertificate
) -> None:
    # Both names pin to the same address and port. Were the connection checked
    # for hooks.test pooled, the request for other.test would ride it unchecked.
    receiver = receiver_factory(hooks_cert.server_context())
    first = await target(f"https://hooks.test:{receiver.port}/")
    second = await target(f"https://other.test:{receiver.port}/")
    async with new_client(verify=hooks_cert.client_context()) as client:
        assert (await post(first, body=b"{}", headers={}, timeout=10, client=client)).status == 200
        with pytest.raises(EgressFailed) as caught:
            await post(second, body=b"{}", headers={}, timeout=10, client=client)
    assert caught.value.kind == "tls"
    assert len(receiver.requests) == 1


async def test_a_target_whose_url_would_name_another_host_is_refused_before_sending() -> None:
    # resolve() never builds such a path; a hand-made Target must not slip through.
    # (The forged host is on loopback too, so even a regression sends nothing outside.)
    forged = Target("http", "hooks.test", 8080, "@127.0.0.2/", ipaddress.ip_address("127.0.0.1"))
    with pytest.raises(EgressRefused, match=r"would not go to 127\.0\.0\.1"):
        await post(forged, body=b"{}", headers={}, timeout=5)
