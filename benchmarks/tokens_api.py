"""tokens_api: authenticated `GET /v1/tokens` against `mailwire serve` on SQLite.

Each run starts a real server (`MailwireServer`: a fresh data dir in a temp
directory, so SQLite, and a root token issued through the CLI) and drives it
with `Options.clients` concurrent keep-alive clients (see `load.py`).

Figures, for the one-worker server:
- `tokens_api.*`: `GET /v1/tokens` with a bearer token: each request
  authenticates (a token lookup by hash) and lists the tokens (a count and a
  page query);
- `tokens_api.health.*`: unauthenticated `GET /health` on the same server, the
  baseline of the same HTTP stack with one trivial query (`SELECT 1`);
- `tokens_api.auth_overhead`: health rps / tokens rps, what authentication and
  the listing cost relative to that baseline; `tokens_api.auth_overhead_cpu`,
  the same as a ratio of server CPU per request (tokens / health).
`tokens_api.workers2.*`: the same tokens load against `--workers 2`, and
`tokens_api.workers2.speedup`, its rps over the one-worker rps.

The load generator runs on the same machine as the server (2 cores where these
figures were first taken): it is a process of its own, so it shares no GIL
with anything, but it takes CPU the server would otherwise have. That is why
the server's CPU time per request is printed too: it barely depends on how
much of the machine the server got, unlike requests per second.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.load import LoadPlan, LoadResult, run_load
from benchmarks.registry import Benchmark, Session
from mailwire.testing.server import MailwireServer

TOKENS_PATH = "/v1/tokens"
HEALTH_PATH = "/health"
#: Server log lines at these levels are summarised on stderr after each run.
_NOTEWORTHY_LEVELS = frozenset({"warning", "error", "critical", "unparsed"})
#: How long workers may take to come up after the banner.
READY_TIMEOUT_S = 60.0


def _measure(session: Session, server: MailwireServer, path: str, *, auth: bool) -> LoadResult:
    options = session.options
    headers = (("Authorization", f"Bearer {server.token}"),) if auth else ()
    session.note(
        f"GET {path}: {options.clients} clients, {options.warmup:g} s warm-up, "
        f"{options.seconds:g} s measured, server pid {server.process.pid}"
    )
    return run_load(
        LoadPlan(
            base_url=server.url,
            path=path,
            headers=headers,
            clients=options.clients,
            warmup=options.warmup,
            seconds=options.seconds,
            server_pid=server.process.pid,
        )
    )


def _report(session: Session, prefix: str, result: LoadResult) -> None:
    session.report(f"{prefix}.rps", result.rps, "req/s")
    session.report(f"{prefix}.p50", result.p50_ms, "ms")
    session.report(f"{prefix}.p99", result.p99_ms, "ms")
    session.report(f"{prefix}.errors", result.errors, "req")
    session.report(
        f"{prefix}.server_cpu_per_req", result.cpu_per_request_us(result.server_cpu_s), "us"
    )
    # 100 % is one core busy all the window: below that the server waited (on the
    # load generator, on the database), above it more than one worker ran.
    session.report(f"{prefix}.server_cpu", result.server_cpu_s / result.window_s * 100, "%")
    session.report(
        f"{prefix}.loadgen_cpu_per_req", result.cpu_per_request_us(result.loadgen_cpu_s), "us"
    )
    cores = [result.machine_cpu_s, result.server_cpu_s, result.loadgen_cpu_s]
    machine, server, loadgen = (seconds / result.window_s for seconds in cores)
    session.note(
        f"{prefix}: slowest request {result.max_ms:.1f} ms; cores busy {machine:.2f} "
        f"(server {server:.2f}, load generator {loadgen:.2f}, "
        f"anything else {max(0.0, machine - server - loadgen):.2f})"
    )
    if result.error_kinds:
        kinds = ", ".join(f"{kind} x{count}" for kind, count in result.error_kinds)
        session.note(f"{prefix}: failed requests during the run (warm-up included): {kinds}")


def _note_server_problems(session: Session, server: MailwireServer, prefix: str) -> None:
    """Warnings and errors the server logged (e.g. `database is locked`) go to stderr."""
    found = [e for e in _log_events(server) if e.get("level") in _NOTEWORTHY_LEVELS]
    if found:
        session.note(f"{prefix}: the server logged {len(found)} warnings or errors; first:")
        for event in found[:5]:
            session.note(f"  {json.dumps(event)[:400]}")


def _serve(directory: str, *args: str) -> MailwireServer:
    return MailwireServer(data_dir=Path(directory) / "data", args=args)


def _log_events(server: MailwireServer) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for line in server.logs().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            event = {"level": "unparsed", "event": line}
        events.append(event if isinstance(event, dict) else {"level": "unparsed"})
    return events


def _wait_until_serving(session: Session, server: MailwireServer, workers: int) -> None:
    """Wait (bounded) until every worker logged `runtime.listening`.

    With `--workers N` the banner comes as soon as the workers are spawned, before
    they have imported anything; requests sent then wait in the listen backlog for
    seconds, and would be counted as the server's latency.
    """
    started = time.monotonic()
    while time.monotonic() - started < READY_TIMEOUT_S:
        listening = sum(1 for e in _log_events(server) if e.get("event") == "runtime.listening")
        if listening >= workers:
            session.note(
                f"{workers} worker(s) listening {time.monotonic() - started:.1f} s after the banner"
            )
            return
        time.sleep(0.1)
    session.note(f"not every worker reported listening in {READY_TIMEOUT_S:g} s; measuring anyway")


def _one_worker_tokens(session: Session, *, with_health: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="mailwire-bench-") as directory:
        with _serve(directory) as server:
            _wait_until_serving(session, server, workers=1)
            tokens = _measure(session, server, TOKENS_PATH, auth=True)
            _report(session, "tokens_api", tokens)
            if with_health:
                health = _measure(session, server, HEALTH_PATH, auth=False)
                _report(session, "tokens_api.health", health)
                session.report("tokens_api.auth_overhead", _ratio(health.rps, tokens.rps), "x")
                # The same comparison in server CPU per request: steadier on a busy host.
                session.report(
                    "tokens_api.auth_overhead_cpu",
                    _ratio(
                        tokens.cpu_per_request_us(tokens.server_cpu_s),
                        health.cpu_per_request_us(health.server_cpu_s),
                    ),
                    "x",
                )
        _note_server_problems(session, server, "tokens_api")


def run_tokens_api(session: Session) -> None:
    session.note(
        f"tokens_api: server and load generator share this machine's {os.cpu_count()} cores"
    )
    _one_worker_tokens(session, with_health=True)


def run_tokens_api_workers2(session: Session) -> None:
    if "tokens_api.rps" not in session.figures:
        session.note("tokens_api.workers2: measuring the one-worker baseline first")
        _one_worker_tokens(session, with_health=False)
    with tempfile.TemporaryDirectory(prefix="mailwire-bench-") as directory:
        with _serve(directory, "--workers", "2") as server:
            _wait_until_serving(session, server, workers=2)
            result = _measure(session, server, TOKENS_PATH, auth=True)
            _report(session, "tokens_api.workers2", result)
        _note_server_problems(session, server, "tokens_api.workers2")
    one_worker = session.figures.get("tokens_api.rps", 0.0)
    session.report("tokens_api.workers2.speedup", _ratio(result.rps, one_worker), "x")


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


BENCHMARKS = (
    Benchmark(
        "tokens_api",
        "GET /v1/tokens (bearer) vs GET /health, 1 worker on SQLite",
        run_tokens_api,
    ),
    Benchmark(
        "tokens_api.workers2",
        "GET /v1/tokens (bearer) with --workers 2, and the speedup over 1 worker",
        run_tokens_api_workers2,
    ),
)
