"""`Sandbox`: route functions run in child processes, one call at a time per child.

A `Sandbox` owns a fixed number of `_Worker`s (`processes`, default 1); a call
takes an idle worker from a queue, so concurrent calls from many tasks are
safe and bounded: the extra ones wait their turn. Each worker starts its child
lazily, and again after the child died or was killed. The parent never trusts
the child to stop by itself: a call that has not answered `grace` seconds
after the time limit is a timeout, and the child is killed.

A child that dies before answering is restarted and the call tried once more
on the new child (a child killed from outside between two calls costs nothing
but its restart); if the second child dies too, the call fails with a clear
error. A cancelled caller kills its worker's child, whose state is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import sys
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import mailwire
from mailwire.errors import MailwireError
from mailwire.webhooks.sandbox.child import MAX_FRAME, SOURCE_CACHE, decode_body, encode_frame

Kind = Literal["timeout", "memory", "error"]

MiB = 1024 * 1024
#: EmailEngine's own cap on a route function's source.
MAX_SOURCE = 1 * MiB
DEFAULT_TIMEOUT = 2.0
DEFAULT_MEMORY = 128 * MiB
DEFAULT_MAX_PAYLOAD = 16 * MiB
DEFAULT_MAX_RESULT = 16 * MiB
#: How long past the time limit the parent waits before it kills a silent child.
GRACE = 2.0
#: How long a child may take to start and say it is ready.
START_TIMEOUT = 10.0

_ROOT = str(Path(mailwire.__file__).resolve().parent.parent)
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from mailwire.webhooks.sandbox.child import main; main()"
)


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """The outcome of one call: `value` when ok, else `kind` and a readable `error`.

    `logs` holds what the function wrote through `logger` (at most 100 lines).
    """

    ok: bool
    value: Any = None
    error: str | None = None
    kind: Kind | None = None
    logs: tuple[str, ...] = ()


def _failure(kind: Kind, error: str, logs: tuple[str, ...] = ()) -> ScriptResult:
    return ScriptResult(ok=False, error=error, kind=kind, logs=logs)


class SandboxUnavailable(MailwireError):
    """The sandbox process cannot be started at all: not a script's fault, retry later."""

    code = "SandboxUnavailable"


class _ChildDied(Exception):
    def __init__(self, returncode: int | None) -> None:
        super().__init__(returncode)
        self.returncode = returncode


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "closed its pipe"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


@dataclass
class _Worker:
    limits: dict[str, Any]
    process: asyncio.subprocess.Process | None = None
    #: Sources this child has cached (a subset of its cache: its LRU is longer).
    known: OrderedDict[str, None] = field(default_factory=OrderedDict)

    async def call(self, sha: str, source: bytes, payload: bytes, env: bytes) -> ScriptResult:
        for attempt in (1, 2):
            try:
                return await self._call_once(sha, source, payload, env)
            except _ChildDied as died:
                await self.stop()
                if attempt == 2:
                    return _failure(
                        "error",
                        f"the sandbox process {_describe_exit(died.returncode)} while "
                        "running the function (twice in a row)",
                    )
        raise AssertionError("unreachable")

    async def _call_once(self, sha: str, source: bytes, payload: bytes, env: bytes) -> ScriptResult:
        process = await self._started()
        send_source = sha not in self.known
        try:
            header = await self._exchange(
                process, sha, source if send_source else b"", payload, env
            )
            if header.get("missing"):
                header = await self._exchange(process, sha, source, payload, env)
        except TimeoutError:
            await self.stop()
            return _failure(
                "timeout",
                f"the function ran longer than {self.limits['timeout']:g} s "
                "(the sandbox process did not answer and was killed)",
            )
        except BaseException:
            await self.stop()  # cancelled, or a broken answer: the child's state is unknown
            raise
        self.known[sha] = None
        self.known.move_to_end(sha)
        while len(self.known) > SOURCE_CACHE // 2:
            self.known.popitem(last=False)
        return header["result"]  # type: ignore[no-any-return]

    async def _exchange(
        self,
        process: asyncio.subprocess.Process,
        sha: str,
        source: bytes,
        payload: bytes,
        env: bytes,
    ) -> dict[str, Any]:
        assert process.stdin is not None
        assert process.stdout is not None
        frame = encode_frame(
            {"sha": sha, "sizes": [len(source), len(payload), len(env)]}, [source, payload, env]
        )
        try:
            process.stdin.write(frame)
            await process.stdin.drain()
            body = await asyncio.wait_for(
                _read_body(process.stdout), self.limits["timeout"] + GRACE
            )
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise _ChildDied(await process.wait()) from exc
        header, blob = decode_body(body)
        if header.get("missing"):
            return header
        size = int(header.get("size") or 0)
        kind = header.get("kind")
        result = ScriptResult(
            ok=bool(header["ok"]),
            value=json.loads(blob[:size]) if header["ok"] else None,
            error=header.get("error"),
            kind=kind if kind in ("timeout", "memory", "error") else None,
            logs=tuple(str(line) for line in header.get("logs") or ()),
        )
        return {"result": result}

    async def _started(self) -> asyncio.subprocess.Process:
        if self.process is not None and self.process.returncode is None:
            return self.process
        await self.stop()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-c",
            _BOOT,
            _ROOT,
            json.dumps(self.limits),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={},
            cwd="/",
        )
        self.process = process
        assert process.stdout is not None
        try:
            header, _ = decode_body(
                await asyncio.wait_for(_read_body(process.stdout), START_TIMEOUT)
            )
        except (TimeoutError, asyncio.IncompleteReadError) as exc:
            await self.stop()
            raise SandboxUnavailable("the sandbox process did not start") from exc
        except BaseException:
            await self.stop()
            raise
        if not header.get("ready"):
            await self.stop()
            raise SandboxUnavailable(f"the sandbox process could not start: {header.get('error')}")
        return process

    async def stop(self) -> None:
        """End the child (if any) and forget what it had cached."""
        process, self.process = self.process, None
        self.known.clear()
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()


async def _read_body(stream: asyncio.StreamReader) -> bytes:
    size = int.from_bytes(await stream.readexactly(4), "big")
    if size > MAX_FRAME:
        raise asyncio.IncompleteReadError(b"", size)
    return await stream.readexactly(size)


class Sandbox:
    """Runs route functions (JavaScript async function bodies) in child processes.

    Use as `async with Sandbox() as sandbox: result = await sandbox.run(source,
    payload, env=...)`. `timeout` (seconds) and `memory_limit` (bytes of engine
    heap) bound each call; `processes` children serve calls in parallel.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        memory_limit: int = DEFAULT_MEMORY,
        processes: int = 1,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        max_result: int = DEFAULT_MAX_RESULT,
    ) -> None:
        if not 0 < timeout <= 300:
            raise ValueError("timeout must be more than 0 and at most 300 seconds")
        if not 1 * MiB <= memory_limit <= 4096 * MiB:
            raise ValueError("memory_limit must be from 1 MiB to 4 GiB")
        if not 1 <= processes <= 64:
            raise ValueError("processes must be from 1 to 64")
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.max_payload = max_payload
        limits = {"timeout": timeout, "memory": memory_limit, "max_result": max_result}
        self._workers = [_Worker(dict(limits)) for _ in range(processes)]
        self._idle: asyncio.Queue[_Worker] | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every child; later calls raise RuntimeError."""
        self._closed = True
        for worker in self._workers:
            await worker.stop()

    def child_pids(self) -> list[int]:
        """Process ids of the running children (for operators and tests)."""
        return [w.process.pid for w in self._workers if w.process and w.process.returncode is None]

    async def run(
        self,
        source: str,
        payload: Any,
        *,
        env: Mapping[str, Any] | None = None,
    ) -> ScriptResult:
        """Run `source` as the body of `async function (payload)`; never raises for the script.

        `env` (usually the parsed scriptEnv setting) is the global `env`; payload
        and env must be JSON-serialisable, and so must the function's result.
        Raises `SandboxUnavailable` only when no child process can be started.
        """
        if self._closed:
            raise RuntimeError("this Sandbox is closed")
        encoded = source.encode()
        if len(encoded) > MAX_SOURCE:
            return _failure(
                "error",
                f"the function's source is {len(encoded)} bytes, over the {MAX_SOURCE} limit",
            )
        try:
            payload_json = _json(payload)
            env_json = _json({} if env is None else dict(env))
        except (TypeError, ValueError) as exc:
            return _failure("error", f"the payload or env is not JSON: {exc}")
        if len(payload_json) + len(env_json) > self.max_payload:
            return _failure(
                "error",
                f"the payload and env are {len(payload_json) + len(env_json)} bytes of JSON, "
                f"over the {self.max_payload} byte limit",
            )
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self._workers:
                self._idle.put_nowait(worker)
        worker = await self._idle.get()
        try:
            sha = hashlib.sha256(encoded).hexdigest()
            return await worker.call(sha, encoded, payload_json, env_json)
        finally:
            self._idle.put_nowait(worker)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
