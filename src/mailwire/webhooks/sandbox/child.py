"""The sandbox process: reads calls on stdin, runs them with `engine`, answers on stdout.

Started by `process.Worker` as `python -I -c ...` with an empty environment,
`/` as its directory and stderr discarded. Before it reads its first call it
shuts the doors the engine already keeps shut, as a backstop for an engine bug:
- RLIMIT_AS caps the whole address space (the engine's own limit plus room for
  the interpreter and one call's buffers), RLIMIT_FSIZE 0 forbids writing any
  file, RLIMIT_CORE 0 keeps crash dumps off the disk;
- RLIMIT_NOFILE is lowered to the descriptors already open, so no file,
  socket or pipe can be opened any more;
- when started as root, it drops to `nobody` (no groups) for good.
Anything written to fd 1 by accident goes to /dev/null: the protocol uses a
private duplicate of the original stdout.

Wire format, both ways: a frame is a 4-byte big-endian length, then a 4-byte
big-endian header length, a JSON header and the blobs the header sizes.
- call: header {"sha", "sizes": [source, payload, env]}; the source blob is
  empty when the parent knows this child has the source cached under `sha`;
- answer: header {"ok", "kind", "error", "logs", "size"} and the result's JSON
  text as the one blob (`size` bytes), or {"missing": true} when the source for
  `sha` is not cached here (the parent then sends it again);
- the first frame the child writes is {"ready": true} (or {"ready": false,
  "error"} when it cannot start).
"""

from __future__ import annotations

import json
import os
import pwd
import resource
import signal
import struct
import sys
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from mailwire.webhooks.sandbox import engine

_LENGTH = struct.Struct(">I")
#: Largest frame either side accepts (a 1 MiB source plus a capped payload fit well).
MAX_FRAME = 256 * 1024 * 1024
#: Sources kept per child, by SHA-256; the parent remembers fewer (see process.py).
SOURCE_CACHE = 32
#: Address-space room above the engine limit: interpreter, engine code, buffers.
AS_HEADROOM = 512 * 1024 * 1024


def encode_frame(header: dict[str, Any], blobs: Sequence[bytes] = ()) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    body_length = _LENGTH.size + len(head) + sum(len(blob) for blob in blobs)
    return b"".join([_LENGTH.pack(body_length), _LENGTH.pack(len(head)), head, *blobs])


def decode_body(body: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a frame's body (what follows its length) into header and blob bytes."""
    (head_length,) = _LENGTH.unpack_from(body)
    end = _LENGTH.size + head_length
    header: dict[str, Any] = json.loads(body[_LENGTH.size : end])
    return header, body[end:]


def _read_exactly(fd: int, count: int) -> bytes | None:
    chunks: list[bytes] = []
    while count:
        chunk = os.read(fd, min(count, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _lock_down(memory_limit: int) -> None:
    with open("/proc/self/statm", "rb") as statm:
        pages = int(statm.read().split()[0])
    address_space = pages * os.sysconf("SC_PAGE_SIZE") + 2 * memory_limit + AS_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, highest + 1))
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)


def main() -> None:
    """Entry point of the child (argv[1]: JSON limits {timeout, memory, max_result})."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this ends
    out = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        limits = json.loads(sys.argv[1])
        engine.load()  # the extension's file must be opened before the doors shut
        _lock_down(int(limits["memory"]))
    except Exception as exc:
        _write_all(out, encode_frame({"ready": False, "error": f"{type(exc).__name__}: {exc}"}))
        raise SystemExit(1) from exc
    _write_all(out, encode_frame({"ready": True}))
    cache: OrderedDict[str, str] = OrderedDict()
    memory_limit = int(limits["memory"])
    fresh = engine.prepare(memory_limit)
    while True:
        length = _read_exactly(0, _LENGTH.size)
        if length is None:
            return  # the parent closed our stdin: time to go
        (size,) = _LENGTH.unpack(length)
        if size > MAX_FRAME:
            raise SystemExit(2)
        body = _read_exactly(0, size)
        if body is None:
            return
        answer, used = _answer(cache, limits, body, fresh)
        _write_all(out, answer)
        if used:
            fresh = engine.prepare(memory_limit)  # while the parent reads the answer


def _answer(
    cache: OrderedDict[str, str], limits: dict[str, Any], body: bytes, fresh: engine.Fresh
) -> tuple[bytes, bool]:
    """The answer frame, and whether `fresh` was used up."""
    header, blobs = decode_body(body)
    source_size, payload_size, env_size = (int(size) for size in header["sizes"])
    sha = str(header["sha"])
    if source_size:
        cache[sha] = blobs[:source_size].decode()
        if len(cache) > SOURCE_CACHE:
            cache.popitem(last=False)
    source = cache.get(sha)
    if source is None:
        return encode_frame({"missing": True}), False
    cache.move_to_end(sha)
    payload = blobs[source_size : source_size + payload_size].decode()
    env = blobs[source_size + payload_size : source_size + payload_size + env_size].decode()
    try:
        outcome = engine.run(
            source,
            payload,
            env,
            timeout=float(limits["timeout"]),
            memory_limit=int(limits["memory"]),
            fresh=fresh,
        )
    except MemoryError:
        return encode_frame(
            {"ok": False, "kind": "memory", "error": "the sandbox process ran out of memory"}
        ), True
    value = outcome.value_json.encode() if outcome.value_json is not None else b""
    if len(value) > int(limits["max_result"]):
        return encode_frame(
            {
                "ok": False,
                "kind": "error",
                "error": f"the function's result is {len(value)} bytes of JSON, "
                f"over the {int(limits['max_result'])} byte limit",
                "logs": list(outcome.logs),
            }
        ), True
    answer = {
        "ok": outcome.ok,
        "kind": outcome.kind,
        "error": outcome.error,
        "logs": list(outcome.logs),
        "size": len(value),
    }
    return encode_frame(answer, [value]), True
