"""A closed-loop HTTP load generator that runs in a process of its own.

Theory of operation
-------------------
N clients each send one request, wait for the answer, and send the next, each
over its own keep-alive connection (one httpx client apiece; a closed loop:
the offered load adapts to the server, so latency is about N / throughput
once the server is saturated). The run is a warm-up (connections opened,
caches filled; nothing counted) then a measured window. Only requests that
end inside the window count; the window's bounds are the instants at which
the CPU times were sampled, so requests, seconds and CPU cover one interval.

The generator runs in a spawned process: it then shares no GIL with the
benchmark runner (whose stdout pump threads wake during the run), and its own
CPU time can be told apart from the server's. It still shares the machine's
cores with the server: every figure is "server plus load generator on the same
host", and `loadgen_cpu_per_req` says how much of the machine the generator
took for itself.

Every loop is bounded twice: by the clock and by `MAX_REQUESTS_PER_CLIENT`;
each request by the client timeout; the child process by `run_load`'s budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import ssl
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection

import httpx

from benchmarks.cputime import machine_busy_seconds, tree_cpu_seconds

#: A ceiling no loopback run reaches in its duration (it would be ~100k req/s).
MAX_REQUESTS_PER_CLIENT = 1_000_000
REQUEST_TIMEOUT_S = 10.0
#: After a transport error (refused, reset), wait this long instead of spinning.
ERROR_PAUSE_S = 0.01
#: Time allowed on top of warm-up and window for the child to start and drain.
CHILD_OVERHEAD_S = 60.0


@dataclass(frozen=True, slots=True)
class LoadPlan:
    base_url: str
    path: str
    headers: tuple[tuple[str, str], ...]
    clients: int
    warmup: float
    seconds: float
    #: The server's pid: its CPU time (and its children's) is sampled with the window.
    server_pid: int
    method: str = "GET"
    #: A JSON body sent with every request (POST searches); None sends none.
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    errors: int
    #: Error responses and exceptions seen during the whole run, warm-up included.
    error_kinds: tuple[tuple[str, int], ...]
    window_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float
    loadgen_cpu_s: float
    #: Every core's busy time in the window: server, generator, and anything else.
    machine_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.window_s if self.window_s > 0 else 0.0

    def cpu_per_request_us(self, cpu_s: float) -> float:
        return cpu_s / self.requests * 1e6 if self.requests else math.nan


#: (started, ended, outcome): outcome is the status code or the exception's name.
Sample = tuple[float, float, int | str]


def run_load(plan: LoadPlan) -> LoadResult:
    """Run `plan` in a spawned process and return what it measured."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(plan, sender), name="loadgen")
    process.start()
    sender.close()  # the child holds its own end; EOF then means the child is gone
    try:
        if not receiver.poll(plan.warmup + plan.seconds + CHILD_OVERHEAD_S):
            raise RuntimeError("the load generator did not finish in time")
        try:
            message: LoadResult | str = receiver.recv()
        except EOFError:
            raise RuntimeError(f"the load generator died (exit {process.exitcode})") from None
    finally:
        receiver.close()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(10)
    if isinstance(message, str):
        raise RuntimeError(f"the load generator crashed:\n{message}")
    return message


def _child_main(plan: LoadPlan, sender: Connection) -> None:
    try:
        result: LoadResult | str = asyncio.run(_drive(plan))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it
        result = traceback.format_exc()
    sender.send(result)
    sender.close()


async def _drive(plan: LoadPlan) -> LoadResult:
    # One client (one keep-alive connection) per simulated user rather than one
    # pool of N: httpcore's pool rescans every connection and every waiting
    # request on each state change, which costs O(N) per request at N = 32 and
    # made the generator, not the server, the bottleneck. They share one TLS
    # context, unused on http:// but ~20 ms to build each.
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(_http_client(plan, tls)) for _ in range(plan.clients)
        ]
        begin = time.perf_counter()
        window = (begin + plan.warmup, begin + plan.warmup + plan.seconds)
        lists: list[list[Sample]] = [[] for _ in clients]
        async with asyncio.TaskGroup() as group:
            sampler = group.create_task(_sample_cpu(plan.server_pid, *window))
            for client, samples in zip(clients, lists, strict=True):
                group.create_task(_client(client, plan, window[1], samples))
    return _summarise([s for samples in lists for s in samples], sampler.result())


def _http_client(plan: LoadPlan, tls: ssl.SSLContext) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=plan.base_url,
        headers=dict(plan.headers),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=REQUEST_TIMEOUT_S,
        verify=tls,
        trust_env=False,  # loopback only: no proxy from the environment
    )


async def _client(
    client: httpx.AsyncClient, plan: LoadPlan, stop_at: float, samples: list[Sample]
) -> None:
    headers = {"Content-Type": "application/json"} if plan.body is not None else None
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        started = time.perf_counter()
        if started >= stop_at:
            return
        outcome: int | str
        try:
            response = await client.request(
                plan.method, plan.path, content=plan.body, headers=headers
            )
            outcome = response.status_code
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
            await asyncio.sleep(ERROR_PAUSE_S)
        samples.append((started, time.perf_counter(), outcome))


@dataclass(frozen=True, slots=True)
class _Window:
    """The measured interval, as sampled: its bounds and the CPU time spent inside."""

    start: float
    stop: float
    server_cpu_s: float
    loadgen_cpu_s: float
    machine_cpu_s: float


async def _sample_cpu(server_pid: int, start: float, stop: float) -> _Window:
    """Sleep to each bound of the window; there read the clock and the CPU times
    of the server's process tree, of this process and of the whole machine."""
    readings: list[tuple[float, float, float, float]] = []
    for instant in (start, stop):
        await asyncio.sleep(max(0.0, instant - time.perf_counter()))
        server, own, machine = (
            tree_cpu_seconds(server_pid),
            time.process_time(),
            machine_busy_seconds(),
        )
        readings.append((time.perf_counter(), server, own, machine))
    (t0, server0, own0, machine0), (t1, server1, own1, machine1) = readings
    return _Window(
        start=t0,
        stop=t1,
        server_cpu_s=server1 - server0,
        loadgen_cpu_s=own1 - own0,
        machine_cpu_s=machine1 - machine0,
    )


def _summarise(samples: list[Sample], window: _Window) -> LoadResult:
    inside = [s for s in samples if window.start <= s[1] < window.stop]
    latencies = sorted((end - begin) * 1000 for begin, end, outcome in inside if outcome == 200)
    kinds = Counter(str(outcome) for _, _, outcome in samples if outcome != 200)
    return LoadResult(
        requests=len(latencies),
        errors=len(inside) - len(latencies),
        error_kinds=tuple(sorted(kinds.items())),
        window_s=window.stop - window.start,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else math.nan,
        server_cpu_s=window.server_cpu_s,
        loadgen_cpu_s=window.loadgen_cpu_s,
        machine_cpu_s=window.machine_cpu_s,
    )


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (NaN when there are none)."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]
