"""A webhook receiver on loopback for tests and benchmarks (stdlib `http.server`).

It records every request (path, headers in order, exact body bytes) and
answers with the status `respond(n)` gives for the n-th request (0-based);
200 by default. It runs in a thread, HTTP/1.1 with keep-alive, so a client
may reuse connections as a real deployment would.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Largest body accepted (bytes); bigger requests are answered 413 and not stored.
MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    #: `time.monotonic()` when the body had been read.
    at: float = 0.0

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413)
            self.close_connection = True
            return
        body = self.rfile.read(length)
        receiver = self.server.receiver
        received = Received("POST", self.path, list(self.headers.items()), body, time.monotonic())
        status = receiver.record(received)
        if receiver.delay:
            time.sleep(receiver.delay)
        self._answer(status)

    def _answer(self, status: int) -> None:
        payload = b'{"ok":true}' if 200 <= status < 300 else b'{"ok":false}'
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer (a killed sender) is expected here.
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            super().handle_error(request, client_address)


class WebhookReceiver:
    """`with WebhookReceiver() as receiver: ... receiver.url ... receiver.requests`."""

    def __init__(
        self,
        respond: Callable[[int], int] | None = None,
        *,
        host: str = "127.0.0.1",
        delay: float = 0.0,
    ) -> None:
        self.respond = respond or (lambda _n: 200)
        #: Seconds to wait after reading a request before answering it.
        self.delay = delay
        self._host = host
        self._lock = threading.Condition()
        self._all: list[Received] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the receiver is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    @property
    def port(self) -> int:
        assert self._server is not None, "the receiver is not running"
        return int(self._server.server_address[1])

    def record(self, request: Received) -> int:
        with self._lock:
            index = len(self._all)
            self._all.append(request)
            status = self.respond(index)
            self._lock.notify_all()
        return status

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._all)

    def delivered(self) -> list[Received]:
        """The requests answered 2xx (what counts as delivered)."""
        with self._lock:
            return [r for i, r in enumerate(self._all) if 200 <= self.respond(i) < 300]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], *, timeout: float = 30.0
    ) -> list[Received]:
        """Block until `predicate(requests)` holds; raises TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(list(self._all)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"receiver: condition not met, {len(self._all)} requests")
                self._lock.wait(min(left, 0.5))
            return list(self._all)

    def start(self, port: int = 0) -> WebhookReceiver:
        server = _Server((self._host, port), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), daemon=True, name="receiver"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
