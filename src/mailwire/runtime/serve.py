"""Run one Mailwire process: store, services, API server, account workers, ordered shutdown.

Start order: logging -> store (connect, migrate, verify keys) -> services -> API
listener, internal node listener and the account supervisor
(`workers.supervisor`), side by side in one TaskGroup. The node listener
(`MAILWIRE_NODE_HOST`/`MAILWIRE_NODE_PORT`) serves the same app; its URL is
registered with the node row, and other processes forward requests for the
accounts this one owns there (`api.forwarding`). On SIGTERM or SIGINT the
order reverses: the listeners stop accepting and in-flight requests drain (up
to `MAILWIRE_SHUTDOWN_TIMEOUT`) while the supervisor closes its connections
and gives back its leases; then the store closes. uvicorn's own signal capture
is disabled: it would re-raise the signal after draining and kill the process
before the store is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import socket
import sys
from collections.abc import Callable, Generator

import uvicorn

from mailwire.api.app import create_app
from mailwire.api.forwarding import Forwarding, ForwardingKeys
from mailwire.backends.imap.sync import sync_session
from mailwire.config import Settings
from mailwire.logs import get_logger
from mailwire.net.listeners import bind_tcp
from mailwire.runtime.sending import SendingPipeline
from mailwire.runtime.webhooks import WebhookPipeline
from mailwire.services.container import Services
from mailwire.store.secret_file import read_secret_file
from mailwire.store.store import Store, open_store
from mailwire.workers.session import Session
from mailwire.workers.supervisor import Supervisor, SupervisorOptions

log = get_logger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the runtime owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def uvicorn_config(settings: Settings, app: object) -> uvicorn.Config:
    trusted = ",".join(settings.trusted_proxies)
    return uvicorn.Config(
        app,  # type: ignore[arg-type]  # an ASGI app; uvicorn's annotation is narrower
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="off",
        # Forwarded headers are believed only from proxies the operator named; the
        # default (loopback) would let any local client spoof its address.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or "",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout)),
        h11_max_incomplete_event_size=64 * 1024,
    )


async def serve(
    settings: Settings,
    *,
    sockets: list[socket.socket] | None = None,
    on_ready: Callable[[str], None] | None = None,
    session: Session | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; `on_ready` gets the listening URL once bound.

    `session` is what the account workers run on each logged-in connection:
    by default the sync engine, writing to this store's index.
    """
    store = await open_store(settings)
    try:
        chosen = session or functools.partial(sync_session, store.index)
        await _serve_with(store, settings, sockets=sockets, on_ready=on_ready, session=chosen)
    finally:
        await store.close()
        log.info("runtime.stopped")


async def _serve_with(
    store: Store,
    settings: Settings,
    *,
    sockets: list[socket.socket] | None,
    on_ready: Callable[[str], None] | None,
    session: Session,
) -> None:
    services = Services.build(store)
    app = create_app(services, body_limit=settings.max_body_size)
    server = _Server(uvicorn_config(settings, app))
    node_socket = bind_tcp(settings.node_host, settings.node_port)
    node_server = _Server(node_config(settings, app))
    supervisor = Supervisor(
        store,
        session=session,
        options=SupervisorOptions(stop_timeout=max(1.0, settings.shutdown_timeout)),
        address=socket_url(node_socket),
    )
    services.connections.attach(supervisor)
    webhooks = WebhookPipeline(store, services, settings, owner=supervisor.node_id)
    sending = SendingPipeline(store, services, owner=supervisor.node_id)
    keys = await asyncio.to_thread(ForwardingKeys.from_secrets, service_secrets(settings, store))
    forwarding = Forwarding(node_id=supervisor.node_id, keys=keys, owners=supervisor.leases)
    app.state.forwarding = forwarding
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as group:
            serving = group.create_task(server.serve(sockets=sockets), name="api-server")
            node_serving = group.create_task(
                node_server.serve(sockets=[node_socket]), name="node-server"
            )
            group.create_task(supervisor.run(), name="account-supervisor")
            group.create_task(webhooks.run(), name="webhooks")
            group.create_task(sending.run(), name="sending")
            group.create_task(_announce(server, serving, on_ready), name="announce")
            stopping = group.create_task(stop.wait(), name="stop-signal")
            await asyncio.wait(
                {serving, node_serving, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            log.info("runtime.stopping")
            server.should_exit = True
            node_server.should_exit = True
            supervisor.stop()
            webhooks.stop()
            sending.stop()
            stopping.cancel()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await forwarding.aclose()
        node_socket.close()
    if not server.started:
        raise SystemExit(1)


def node_config(settings: Settings, app: object) -> uvicorn.Config:
    """The internal listener: the same app, reached by other nodes forwarding requests.

    No proxy headers here: a forwarded request carries its client's address in
    its signed `X-Mailwire-Forwarded` header instead (see `api.forwarding`).
    """
    config = uvicorn_config(settings, app)
    config.host, config.port = settings.node_host, settings.node_port
    config.proxy_headers = False
    config.forwarded_allow_ips = ""
    return config


def socket_url(sock: socket.socket) -> str:
    """`http://host:port` of a bound socket, as other nodes dial it."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def service_secrets(settings: Settings, store: Store) -> list[str]:
    """The service secrets in clear, current first: what the forwarding keys come from."""
    previous = [secret.get_secret_value() for secret in settings.previous_secrets]
    if settings.secret is not None:
        return [settings.secret.get_secret_value(), *previous]
    path = store.keys.path
    from_file = (read_secret_file(path) if path is not None else None) or []
    return [*from_file, *previous]


async def _announce(
    server: uvicorn.Server, serving: asyncio.Task[None], on_ready: Callable[[str], None] | None
) -> None:
    # Bounded wait for the listener; a failed bind ends `serving` instead.
    for _ in range(600):
        if server.started or serving.done():
            break
        await asyncio.sleep(0.05)
    if not server.started:
        return
    url = listening_url(server)
    log.info("runtime.listening", url=url)
    if on_ready is not None:
        on_ready(url)


def listening_url(server: uvicorn.Server) -> str:
    for listener in server.servers:
        for sock in listener.sockets:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            return f"http://{shown}:{port}"
    return f"http://{server.config.host}:{server.config.port}"


def run_blocking(settings: Settings, on_ready: Callable[[str], None] | None = None) -> None:
    """Entry point for a single process: bind the port, then serve on it."""
    sock = bind_tcp(settings.host, settings.port)
    try:
        asyncio.run(serve(settings, sockets=[sock], on_ready=on_ready))
    except KeyboardInterrupt:  # pragma: no cover - SIGINT arrives as a handled signal
        sys.exit(130)
    finally:
        sock.close()
