"""Sandbox for webhook route functions (filter and map), written in JavaScript.

`Sandbox.run(source, payload, env=...)` runs `source` as the body of
`async function (payload)` (top-level `await`, `return` gives the value) and
returns a `ScriptResult`: `ok` and the JSON value, or `kind` "timeout",
"memory" or "error" with a readable `error`. It never raises for what a script
does. Modules: `process` (the Sandbox, its child processes), `child` (the
child's loop and lock-down), `engine` (one call in a fresh QuickJS context).
Imports: the standard library, quickjs-ng's `_quickjs` (in the child and the
benchmark only) and `mailwire.errors`.

What a function sees: the ECMAScript built-ins and `payload`, `env` (the
parsed scriptEnv), `logger` (trace/debug/info/warn/error/fatal collect up to
100 lines, returned in `ScriptResult.logs`; silent drops). There is no
`fetch` (EmailEngine offers it; Mailwire refuses network access to route
functions by design: calling it is a ReferenceError that says so), no
`require`, `process`, `console`, timers, module loader, and no `URL`
(QuickJS has none and a faithful polyfill is not cheap: a function using it
fails with a ReferenceError naming the reason). Each call gets a fresh
context, so nothing a call does (globals, prototype pollution) is seen by the
next. Limits per call: time (default 2 s: EmailEngine allows 30 s but only
for synchronous code), engine heap (default 128 MiB), source 1 MiB, payload
and env 16 MiB of JSON, result 16 MiB of JSON.

Isolation, in layers: the engine has no host objects at all (only JSON text
crosses into it); it runs in a separate process started with an empty
environment, which before its first call caps its address space
(RLIMIT_AS), forbids writing files (RLIMIT_FSIZE 0), cannot open any new
descriptor (RLIMIT_NOFILE at the ones it has), and drops to `nobody` when
started as root; the parent kills a child that does not answer in time, and
restarts children that die.

Engine choice (measured on this project's machine, Linux x86_64, CPython 3.11,
2 cores shared with other work; a 5 KB messageNew payload, a map function
picking fields; p50/p99 per call inside one process):

- per call, fresh context: quickjs-ng 201 / 300 us; quickjs 253 / 348 us;
  mini-racer 3,309 / 3,892 us (a new isolate);
- per call, reused context: quickjs-ng 54 / 91 us; quickjs 95 / 178 us;
  mini-racer 1,072 / 2,763 us (each call hops to its event-loop thread);
- `while(true){}` with a 2 s limit: all three stop it at 2.00 s; QuickJS's
  interrupt cannot be caught by the script;
- `new Array(1e9).fill(1)` with a 128 MiB limit: both QuickJS packages throw
  "out of memory" in 0.16 s and the process goes on; mini-racer reports the
  limit reached, then V8 dies of a fatal out-of-memory error that aborts the
  whole Python process (SIGTRAP, exit 133);
- objects grown up to the limit: clean errors everywhere (a QuickJS context
  is unusable afterwards, which a fresh context per call makes moot);
- extras in the global scope: quickjs-ng adds queueMicrotask, atob/btoa,
  performance and DOMException (deleted before each call), quickjs adds
  `__date_clock`, mini-racer has console, WebAssembly, Intl, Temporal and
  installs its own setTimeout;
- memory: RSS after use 15 MB (quickjs-ng), 14 MB (quickjs), 82 MB
  (mini-racer: a 74 MB library and 11 MB of ICU data);
- wheels: quickjs-ng is abi3 (2.5 MB; manylinux x86_64/aarch64/i686,
  musllinux, macOS, Windows), quickjs cp311 manylinux, mini-racer manylinux
  (85 MB installed);
- maintenance: quickjs-ng follows the active QuickJS fork of the same name
  (release 2026-10); quickjs last released in 2023-11 and quickjs-ng calls
  it archived; mini-racer is active (release 2026-02).

Chosen: quickjs-ng. V8's JIT is faster on long computations, but route
functions are short and mini-racer's per-call overhead is 16-20 times
QuickJS's; worse, V8 treats hitting its heap limit in some allocations as a
fatal error and aborts the process, and mini-racer adds a timer API.
QuickJS is a small interpreter whose memory and interrupt limits fail
cleanly. Neither engine is a security boundary on its own (both have had
memory-safety bugs), hence the separate locked-down process. The fresh
context (a new runtime, the prelude, the compiled call wrapper) costs about
0.25 ms per call over a reused one; that is the price of the no-leak
guarantee, and the child pays it while idle (`engine.prepare`) rather than on
the call's path. `benchmarks/webhook_transform.py`, with the machine busy
with other work (load 3.5 on 2 cores), a 5 KB messageNew payload and a map
function: 0.91 ms p50 / 1.36 ms p99 per call through the sandbox; engine
alone 0.64 / 0.84 ms with a new context, 0.38 / 0.57 ms with one made ahead;
about 1,000 calls/s with two processes. quickjs-ng cannot share compiled
bytecode between contexts through its Python API, so what is cached by
SHA-256 is the source in the child (the parent sends it once per child).
"""

from mailwire.webhooks.sandbox.process import (
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    MAX_SOURCE,
    Sandbox,
    SandboxUnavailable,
    ScriptResult,
)

__all__ = [
    "DEFAULT_MEMORY",
    "DEFAULT_TIMEOUT",
    "MAX_SOURCE",
    "Sandbox",
    "SandboxUnavailable",
    "ScriptResult",
]
