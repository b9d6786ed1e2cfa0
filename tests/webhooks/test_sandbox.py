"""The route-function sandbox: a real child process running quickjs-ng.

Each test starts its own Sandbox (a child takes about 0.1 s to start); limits
are kept small (0.5 s, 64 MiB) so that the abusive scripts end quickly.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mailwire.webhooks.sandbox import MAX_SOURCE, Sandbox, ScriptResult

MiB = 1024 * 1024


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(timeout=0.5, memory_limit=64 * MiB) as box:
        yield box


async def ok_value(box: Sandbox, source: str, payload: Any = None, **env: Any) -> Any:
    result = await box.run(source, payload if payload is not None else {}, env=env)
    assert result.ok, result
    assert result.kind is None
    assert result.error is None
    return result.value


async def failure(box: Sandbox, source: str, kind: str) -> ScriptResult:
    result = await box.run(source, {"n": 1}, env={})
    assert not result.ok, result
    assert result.kind == kind, result
    assert result.error
    assert result.value is None
    return result


# ---------------------------------------------------------------- what a function sees and gives


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("return payload.event === 'messageNew'", True),
        ("return payload.event === 'messageDeleted'", False),
        ("return payload.data.unseen && payload.data.from.address", "alice@example.com"),
        ("return payload.data.flags.length", 0),
        ("if (payload.path !== 'INBOX') return; return 1", 1),
    ],
)
async def test_filter_returns_what_the_function_returns(
    sandbox: Sandbox, source: str, expected: Any
) -> None:
    payload = {
        "event": "messageNew",
        "path": "INBOX",
        "data": {"unseen": True, "flags": [], "from": {"address": "alice@example.com"}},
    }
    assert await ok_value(sandbox, source, payload) == expected


async def test_map_returns_an_object_or_a_primitive(sandbox: Sandbox) -> None:
    payload = {
        "eventId": "e1",
        "data": {"subject": "Hi", "to": [{"address": "b@x"}, {"address": "c@x"}]},
    }
    source = "return {id: payload.eventId, to: payload.data.to.map(a => a.address), n: 1.5}"
    assert await ok_value(sandbox, source, payload) == {"id": "e1", "to": ["b@x", "c@x"], "n": 1.5}
    assert await ok_value(sandbox, "return payload.data.subject", payload) == "Hi"
    assert await ok_value(sandbox, "return null") is None
    assert await ok_value(sandbox, "return") is None  # undefined becomes null
    assert await ok_value(sandbox, "return 'é\u2603'") == "é\u2603"


async def test_env_is_a_global(sandbox: Sandbox) -> None:
    source = "return env.prefix + payload.n + (typeof globalThis.env)"
    assert await ok_value(sandbox, source, {"n": 7}, prefix="#") == "#7object"


async def test_top_level_await(sandbox: Sandbox) -> None:
    source = """
        const double = async (x) => { await null; return x * 2; };
        const values = await Promise.all([double(payload.n), double(1)]);
        return values[0] + values[1];
    """
    assert await ok_value(sandbox, source, {"n": 20}) == 42


async def test_logger_lines_are_collected(sandbox: Sandbox) -> None:
    source = "logger.info('seen', payload.n); logger.error({a: 1}); logger.silent('x'); return 1"
    result = await sandbox.run(source, {"n": 3})
    assert result.ok
    assert result.logs == ("info seen 3", 'error {"a":1}')


async def test_the_global_scope_holds_only_builtins_and_the_three_names(sandbox: Sandbox) -> None:
    names = set(await ok_value(sandbox, "return Object.getOwnPropertyNames(globalThis)"))
    assert {"payload", "env", "logger", "JSON", "Promise", "Object"} <= names
    host_like = {"fetch", "require", "process", "module", "console", "setTimeout", "setInterval"}
    engine_extras = {"queueMicrotask", "atob", "btoa", "performance", "DOMException", "std", "os"}
    assert not names & (host_like | engine_extras)


# ---------------------------------------------------------------- failures that stay contained


async def test_an_endless_loop_times_out_and_the_next_call_works(sandbox: Sandbox) -> None:
    result = await failure(sandbox, "while (true) {}", "timeout")
    assert "0.5 s" in (result.error or "")
    assert await ok_value(sandbox, "return payload.n", {"n": 5}) == 5


async def test_an_endless_chain_of_awaits_times_out(sandbox: Sandbox) -> None:
    await failure(sandbox, "while (true) await null;", "timeout")
    await failure(sandbox, "await null; for (;;) {}", "timeout")
    assert await ok_value(sandbox, "return 1") == 1


@pytest.mark.parametrize(
    "source",
    [
        "return new Array(1e9).fill(1).length",
        "let s = 'x'; while (true) s = s.repeat(2);",
        "const a = []; while (true) a.push({n: a.length});",
        "await null; const a = []; while (true) a.push('x'.repeat(1 << 20) + a.length);",
    ],
)
async def test_a_huge_allocation_is_a_memory_error_and_the_next_call_works(source: str) -> None:
    # A time limit far above what filling 64 MiB takes, even on a loaded machine:
    # with 0.5 s the clock sometimes won the race and the result was a timeout.
    async with Sandbox(timeout=10.0, memory_limit=64 * MiB) as sandbox:
        result = await failure(sandbox, source, "memory")
        assert "64 MiB" in (result.error or "")
        assert await ok_value(sandbox, "return [1, 2].length") == 2


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "return require('fs').readFileSync('/etc/passwd')",
            "ReferenceError: require is not defined",
        ),
        ("return process.env", "ReferenceError: process is not defined"),
        ("return await fetch('http://127.0.0.1/')", "ReferenceError: fetch is not defined"),
        ("return (await import('fs')).readFileSync", "could not load module 'fs'"),
        (
            "return globalThis.constructor.constructor('return process')().env",
            "ReferenceError: process is not defined",
        ),
        ("return console.log('x')", "ReferenceError: console is not defined"),
        ("return setTimeout(() => 1, 1)", "ReferenceError: setTimeout is not defined"),
    ],
)
async def test_no_host_access(sandbox: Sandbox, source: str, expected: str) -> None:
    result = await failure(sandbox, source, "error")
    assert expected in (result.error or "")


async def test_fetch_error_says_there_is_no_network(sandbox: Sandbox) -> None:
    result = await failure(sandbox, "return fetch('https://example.com/')", "error")
    assert "no network access" in (result.error or "")


async def test_prototype_pollution_does_not_leak_to_the_next_call(sandbox: Sandbox) -> None:
    polluter = """
        Object.prototype.polluted = 'yes';
        Array.prototype.map = () => 'hijacked';
        JSON.stringify = () => '"forged"';
        globalThis.leftover = 1;
        return 'done';
    """
    assert await ok_value(sandbox, polluter) == "done"
    probe = "return [({}).polluted ?? null, [1].map(x => x + 1), typeof leftover]"
    assert await ok_value(sandbox, probe) == [None, [2], "undefined"]


async def test_a_thrown_error_carries_its_message(sandbox: Sandbox) -> None:
    result = await failure(sandbox, "throw new TypeError('bad ' + payload.n)", "error")
    assert (result.error or "").startswith("TypeError: bad 1")
    result = await failure(sandbox, "await null; throw 'plain string'", "error")
    assert "plain string" in (result.error or "")
    result = await failure(sandbox, "return payload.missing.deeper", "error")
    assert "TypeError" in (result.error or "")


async def test_a_syntax_error_is_an_error(sandbox: Sandbox) -> None:
    result = await failure(sandbox, "return {", "error")
    assert "SyntaxError" in (result.error or "")


async def test_a_body_that_closes_its_wrapper_stays_in_its_own_context(sandbox: Sandbox) -> None:
    # quickjs-ng's Function constructor pastes the body into a function's text,
    # so a body can close the function and add code next to it: still inside
    # the same fresh, limited context, so nothing is gained.
    escaped = "}); globalThis.outside = 1; (async function () { return typeof process"
    result = await sandbox.run(escaped, {})
    assert result.kind in (None, "error")
    assert await ok_value(sandbox, "return typeof outside") == "undefined"


@pytest.mark.parametrize(
    "source",
    ["return () => 1", "return Symbol('s')", "return 10n", "const a = {}; a.self = a; return a"],
)
async def test_a_result_that_is_not_json_is_an_error(sandbox: Sandbox, source: str) -> None:
    result = await failure(sandbox, source, "error")
    assert "JSON" in (result.error or "")


async def test_blocking_on_atomics_is_refused(sandbox: Sandbox) -> None:
    source = "return Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)"
    result = await failure(sandbox, source, "error")
    assert "cannot block" in (result.error or "")


async def test_a_result_over_the_limit_is_an_error() -> None:
    async with Sandbox(max_result=1000) as box:
        result = await box.run("return 'x'.repeat(2000)", {})
        assert result.kind == "error"
        assert "1000 byte limit" in (result.error or "")
        assert (await box.run("return 'x'.repeat(900)", {})).value == "x" * 900


async def test_a_promise_that_never_settles_is_an_error(sandbox: Sandbox) -> None:
    result = await failure(sandbox, "return await new Promise(() => {})", "error")
    assert "never settled" in (result.error or "")


# ---------------------------------------------------------------- the child process


async def test_a_child_killed_between_calls_is_replaced(sandbox: Sandbox) -> None:
    assert await ok_value(sandbox, "return 1") == 1
    (first,) = sandbox.child_pids()
    os.kill(first, signal.SIGKILL)
    assert await ok_value(sandbox, "return 2") == 2
    (second,) = sandbox.child_pids()
    assert second != first
    os.kill(second, signal.SIGKILL)
    await asyncio.sleep(0.05)  # also when the parent has already noticed the death
    assert await ok_value(sandbox, "return 3") == 3


async def test_a_child_killed_during_a_call_is_replaced_and_the_call_retried(
    sandbox: Sandbox,
) -> None:
    assert await ok_value(sandbox, "return 0") == 0
    (first,) = sandbox.child_pids()
    busy = "const end = Date.now() + 300; while (Date.now() < end) {} return 'done'"
    task = asyncio.create_task(sandbox.run(busy, {}))
    await asyncio.sleep(0.1)
    os.kill(first, signal.SIGKILL)
    result = await task
    assert result.value == "done", result
    assert sandbox.child_pids() != [first]


async def test_a_child_that_stops_answering_is_killed_as_a_timeout(sandbox: Sandbox) -> None:
    assert await ok_value(sandbox, "return 0") == 0
    (first,) = sandbox.child_pids()
    os.kill(first, signal.SIGSTOP)  # frozen: only the parent's own deadline can end the call
    result = await failure(sandbox, "return 1", "timeout")
    assert "did not answer" in (result.error or "")
    assert await ok_value(sandbox, "return 2") == 2
    assert sandbox.child_pids() != [first]


async def test_a_cancelled_call_leaves_the_sandbox_usable(sandbox: Sandbox) -> None:
    task = asyncio.create_task(sandbox.run("while (true) {}", {}))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ok_value(sandbox, "return 'after'") == "after"


async def test_concurrent_calls_are_served_by_a_bounded_pool() -> None:
    async with Sandbox(timeout=2, processes=2) as box:
        source = "await null; return payload.i * 2"
        results = await asyncio.gather(*(box.run(source, {"i": i}) for i in range(40)))
        assert [r.value for r in results] == [i * 2 for i in range(40)]
        assert 1 <= len(box.child_pids()) <= 2


async def test_a_loop_does_not_hold_up_the_other_child() -> None:
    async with Sandbox(timeout=3, processes=2) as box:  # 3 s: room for a slow machine
        slow = asyncio.create_task(box.run("while (true) {}", {}))
        fast = await box.run("return 'quick'", {})
        assert fast.value == "quick"
        assert not slow.done()
        assert (await slow).kind == "timeout"


def proc_file(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text()


async def test_the_child_runs_locked_down(sandbox: Sandbox) -> None:
    await ok_value(sandbox, "return 1")
    (pid,) = sandbox.child_pids()
    limits = proc_file(pid, "limits")
    rows = {line[:26].strip(): line[26:].split() for line in limits.splitlines()[1:]}
    assert rows["Max file size"][:2] == ["0", "0"]
    assert int(rows["Max open files"][0]) <= 8
    assert int(rows["Max address space"][0]) < 2048 * MiB
    assert proc_file(pid, "environ") == ""
    if os.geteuid() == 0:
        status = proc_file(pid, "status")
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1] != "0"


async def test_a_source_the_child_lost_is_sent_again(sandbox: Sandbox) -> None:
    source = "return payload.n + 1"
    assert await ok_value(sandbox, source, {"n": 1}) == 2
    # Make the parent believe the child caches a source it never saw.
    other = "return payload.n + 100"
    sha = hashlib.sha256(other.encode()).hexdigest()
    sandbox._workers[0].known[sha] = None
    assert await ok_value(sandbox, other, {"n": 1}) == 101
    assert await ok_value(sandbox, source, {"n": 2}) == 3


# ---------------------------------------------------------------- input limits


async def test_a_source_over_one_mebibyte_is_refused(sandbox: Sandbox) -> None:
    big = "return 1;" + " " * MAX_SOURCE
    result = await sandbox.run(big, {})
    assert result.kind == "error"
    assert "over the" in (result.error or "")
    assert sandbox.child_pids() == []  # refused before any process was involved


async def test_a_payload_that_is_not_json_or_too_big_is_refused() -> None:
    async with Sandbox(max_payload=1000) as box:
        result = await box.run("return 1", {"x": object()})
        assert result.kind == "error"
        result = await box.run("return 1", {"x": "y" * 2000})
        assert result.kind == "error"
        assert "1000 byte limit" in (result.error or "")


async def test_a_closed_sandbox_refuses_calls() -> None:
    box = Sandbox()
    assert (await box.run("return 1", {})).value == 1
    await box.aclose()
    assert box.child_pids() == []
    with pytest.raises(RuntimeError):
        await box.run("return 1", {})


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Sandbox(timeout=0)
    with pytest.raises(ValueError, match="memory_limit"):
        Sandbox(memory_limit=1024)
    with pytest.raises(ValueError, match="processes"):
        Sandbox(processes=0)
