"""One route-function call in a fresh QuickJS context, in the current process.

This is the part that runs inside the sandbox child (`child.py`); the benchmark
also calls it directly to show the engine's cost without the process hop. It
never raises for anything the script does: every outcome is an `Outcome`.

Theory of operation, per call:
1. a new `_quickjs.Context` (its own QuickJS runtime: heap, atoms, job queue)
   with the memory, stack and CPU-time limits set before any script runs;
2. a prelude deletes the few non-ECMAScript globals quickjs-ng adds and leaves
   `payload`, `env` and `logger`; no `fetch`, `require`, `process`, `console`,
   timers, `URL` or module loader exist, so the script can reach neither the
   network, nor files, nor Python objects;
3. the source becomes the body of `new AsyncFunction("payload", source)`;
   quickjs-ng builds that function from text (as Node's vm does), so a body
   that closes the function can add code next to it, which runs in the same
   fresh, limited context and gains nothing. The call's promise settles into
   a closure that a poll function reads back as JSON text, built with the
   JSON.stringify saved before the script ran;
4. the job queue (promise reactions) is drained with the time limit re-armed
   to what is left of the budget before each job; a promise that never settles
   (awaiting something nothing can resolve: there are no timers or I/O) is an
   error, not a hang;
5. the context is dropped; nothing survives into the next call. Steps 1-2
   (and compiling the wrapper of step 3), about 0.3 ms, can run ahead of the
   call: `prepare` makes the context that the next `run` will use once.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

Kind = Literal["timeout", "memory", "error"]

#: What the logger keeps per call: line count and characters per line.
MAX_LOG_LINES = 100
MAX_LOG_LINE = 2000
#: QuickJS's own stack limit (bytes of C stack its interpreter may use).
STACK_LIMIT = 1024 * 1024
#: CPU seconds allowed to our own set-up code in a new context (it needs about 0.3 ms).
PREPARE_TIME = 5.0

# Globals that quickjs-ng defines beyond ECMAScript; Node's vm contexts (what
# EmailEngine runs scripts in) have none of them either.
_NON_ECMASCRIPT = ("queueMicrotask", "DOMException", "atob", "btoa", "performance")

_PRELUDE = f"""
for (const name of {json.dumps(list(_NON_ECMASCRIPT))}) delete globalThis[name];
"""

# Evaluates to a function of (source, payloadText, envText) returning `poll`:
# poll() is undefined while the call's promise is pending, then a JSON text
# {"ok": true, "logs": [...]} or {"ok": false, "name", "message", "stack", "logs"};
# poll("value") is the result as JSON text (kept apart so that it is never
# parsed and re-encoded on its way to the parent).
_RUN = f"""
(function (source, payloadText, envText) {{
  "use strict";
  const stringify = JSON.stringify, parse = JSON.parse, StringCtor = String;
  const lines = [];
  let outcome, valueText, promise;
  const show = (value) => {{
    if (typeof value === "string") return value;
    try {{ const text = stringify(value); return text === undefined ? StringCtor(value) : text; }}
    catch (e) {{ return "[unprintable]"; }}
  }};
  const logger = {{}};
  for (const level of ["trace", "debug", "info", "warn", "error", "fatal"]) {{
    logger[level] = function (...args) {{
      if (lines.length < {MAX_LOG_LINES}) {{
        lines.push((level + " " + args.map(show).join(" ")).slice(0, {MAX_LOG_LINE}));
      }}
    }};
  }}
  logger.silent = function () {{}};
  const finish = (result) => {{ result.logs = lines; outcome = stringify(result); }};
  const fail = (error) => {{
    let name = "Error", message, stack = null;
    try {{
      if (error instanceof Error) {{
        name = StringCtor(error.name); message = StringCtor(error.message);
        stack = typeof error.stack === "string" ? error.stack : null;
      }} else if (error === null) {{
        name = "null"; message = "null";
      }} else {{
        name = "Uncaught"; message = StringCtor(error);
      }}
    }} catch (e) {{ message = "(the thrown value cannot be shown)"; }}
    finish({{ ok: false, name: name, message: message, stack: stack }});
  }};
  const succeed = (value) => {{
    const kind = typeof value;
    if (kind === "function" || kind === "symbol") {{
      finish({{ ok: false, name: "TypeError",
                message: "the function returned a " + kind + ", which is not JSON", stack: null }});
      return;
    }}
    let text;
    try {{ text = value === undefined ? "null" : stringify(value); }}
    catch (e) {{
      finish({{ ok: false, name: "TypeError",
                message: "the function's result is not JSON-serialisable: " + StringCtor(e.message),
                stack: null }});
      return;
    }}
    valueText = text;
    finish({{ ok: true }});
  }};
  const payload = parse(payloadText);
  globalThis.payload = payload;
  globalThis.env = parse(envText);
  globalThis.logger = logger;
  const AsyncFunction = (async function () {{}}).constructor;
  let fn;
  const poll = (what) => {{
    if (what === "value") return valueText;
    if (what === "again" && outcome === undefined && promise) promise.then(succeed, fail);
    return outcome;
  }};
  try {{ fn = new AsyncFunction("payload", source); }}
  catch (error) {{ fail(error); return poll; }}
  promise = fn(payload);
  promise.then(succeed, fail);
  return poll;
}})
"""

# Names a script written for EmailEngine (Node) may reach for; the hint says why
# they are missing instead of leaving a bare ReferenceError.
_HINTS = {
    "fetch": "route functions have no network access in Mailwire's sandbox",
    "require": "route functions cannot load modules in Mailwire's sandbox",
    "process": "route functions cannot see the host process in Mailwire's sandbox",
    "console": "use logger.info(...) instead of console",
    "setTimeout": "there are no timers in Mailwire's sandbox",
    "setInterval": "there are no timers in Mailwire's sandbox",
    "URL": "URL is not available in Mailwire's sandbox (QuickJS has no URL class)",
}


class _JSFunction(Protocol):
    def __call__(self, *args: object) -> object: ...


class _Context(Protocol):
    """The part of quickjs-ng's `_quickjs.Context` used here (it ships no type hints)."""

    def eval(self, code: str) -> object: ...
    def set(self, name: str, value: object) -> None: ...
    def execute_pending_job(self) -> bool: ...
    def set_memory_limit(self, limit: int) -> None: ...
    def set_time_limit(self, limit: float) -> None: ...
    def set_max_stack_size(self, limit: int) -> None: ...
    def memory(self) -> dict[str, int]: ...


class _Module(Protocol):
    JSException: type[Exception]

    def Context(self) -> _Context: ...


def load() -> _Module:
    """quickjs-ng's extension module (imported once; later calls are a dict lookup)."""
    return cast(_Module, importlib.import_module("_quickjs"))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one call gave. `value_json` is the result as JSON text (ok only)."""

    ok: bool
    value_json: str | None = None
    error: str | None = None
    kind: Kind | None = None
    logs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Fresh:
    """A context that no script has touched yet, with the call wrapper installed."""

    context: _Context
    start: _JSFunction
    memory_limit: int


def prepare(memory_limit: int) -> Fresh:
    """Make the next call's context ahead of time (the child does it while idle)."""
    quickjs = load()
    context = quickjs.Context()
    context.set_memory_limit(memory_limit)
    context.set_max_stack_size(STACK_LIMIT)
    context.set_time_limit(PREPARE_TIME)
    context.eval(_PRELUDE)
    return Fresh(context, cast(_JSFunction, context.eval(_RUN)), memory_limit)


def run(
    source: str,
    payload_json: str,
    env_json: str,
    *,
    timeout: float,
    memory_limit: int,
    fresh: Fresh | None = None,
) -> Outcome:
    """Run `source` (an async function body) on the payload; see the module docstring.

    `fresh` is a context from `prepare` (used once, never again); without it
    one is made here.
    """
    quickjs = load()
    if fresh is None or fresh.memory_limit != memory_limit:
        fresh = prepare(memory_limit)
    context, start = fresh.context, fresh.start
    deadline = time.monotonic() + timeout
    try:
        context.set_time_limit(timeout)
        poll = cast(_JSFunction, start(source, payload_json, env_json))
        if not _drain(context, deadline):
            return _timeout(timeout)
        text = poll()
        if text is None:
            # Running out of memory can drop the promise's reaction job; asking
            # again lets a rejected promise report (a pending one stays silent).
            poll("again")
            if not _drain(context, deadline):
                return _timeout(timeout)
            text = poll()
        value_json = poll("value")
    except quickjs.JSException as exc:
        return _engine_failure(str(exc), context, memory_limit, timeout)
    if not isinstance(text, str):
        return Outcome(
            ok=False,
            kind="error",
            error="the function's promise never settled: it awaited something that "
            "nothing can resolve (the sandbox has no timers and no I/O)",
        )
    return _decode(text, value_json if isinstance(value_json, str) else None, memory_limit)


def _drain(context: _Context, deadline: float) -> bool:
    """Run queued promise jobs until none is left (True) or the budget is spent (False)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        context.set_time_limit(remaining)
        if not context.execute_pending_job():
            return True


def _timeout(timeout: float) -> Outcome:
    return Outcome(ok=False, kind="timeout", error=f"the function ran longer than {timeout:g} s")


def _memory(memory_limit: int) -> Outcome:
    return Outcome(
        ok=False,
        kind="memory",
        error=f"the function needed more than the {memory_limit // (1024 * 1024)} MiB memory limit",
    )


def _engine_failure(message: str, context: _Context, memory_limit: int, timeout: float) -> Outcome:
    """An exception the script could not catch: interrupt, out of memory, or one of ours."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    if "interrupted" in first:
        return _timeout(timeout)
    # QuickJS reports "out of memory", or a null exception when even the error
    # object could not be allocated; a heap at its limit says the same.
    used = context.memory().get("memory_used_size", 0)
    if "out of memory" in first or first == "null" or used >= memory_limit * 0.9:
        return _memory(memory_limit)
    return Outcome(ok=False, kind="error", error=_with_hint(first or "the engine failed"))


def _decode(text: str, value_json: str | None, memory_limit: int) -> Outcome:
    data: dict[str, Any] = json.loads(text)
    logs = tuple(str(line) for line in data.get("logs", ()))
    if data.get("ok") and value_json is not None:
        return Outcome(ok=True, value_json=value_json, logs=logs)
    name, message = str(data.get("name")), str(data.get("message"))
    # QuickJS throws null when it cannot even allocate its "out of memory" error.
    if name == "null" or (name == "InternalError" and message == "out of memory"):
        return Outcome(ok=False, kind="memory", error=_memory(memory_limit).error, logs=logs)
    if name == "InternalError" and message == "interrupted":
        return Outcome(ok=False, kind="timeout", error="the function ran out of time", logs=logs)
    error = _with_hint(f"{name}: {message}")
    stack = data.get("stack")
    if isinstance(stack, str) and stack.strip():
        error = f"{error}\n{stack.rstrip()}"
    return Outcome(ok=False, kind="error", error=error, logs=logs)


def _with_hint(error: str) -> str:
    for name, hint in _HINTS.items():
        if error.startswith(f"ReferenceError: {name} is not defined"):
            return f"{error} ({hint})"
    return error
