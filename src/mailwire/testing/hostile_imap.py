"""An IMAP server on loopback that behaves until a chosen point, then misbehaves.

Theory of operation. `HostileImapServer` runs an asyncio server in its own
thread (like `smtp_sink`), so a client on the test's event loop, however busy
parsing, cannot slow the hostile side down, and the hostile side cannot stall
the test's loop. Each connection gets a greeting, then CAPABILITY, LOGIN
(any credentials), SELECT/EXAMINE and LOGOUT are answered as a small normal
server would. The first other command (NOOP, FETCH, ...) is the trigger: the
server answers it according to the `Behaviour` chosen for the whole server.
`STALL_GREETING` misbehaves before the greeting.

Every misbehaviour is bounded twice: a connection never gets more than
`max_bytes` from the server and never lives longer than `max_seconds`;
whichever comes first closes it. After misbehaving the server waits (still
within `max_seconds`) for the client to hang up, and records that it did
(`wait_client_closed`), so tests can check the client dropped the socket.
`bytes_sent` counts every byte handed to the transport, over all connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import threading
from enum import Enum

from mailwire.testing.errors import PeerError, PeerStartError, PeerStopError
from mailwire.testing.lifecycle import StartStop
from mailwire.testing.ports import LOOPBACK

_MIB = 1024 * 1024
#: Default bound on the bytes one connection may receive from the server.
DEFAULT_MAX_BYTES = 64 * _MIB
#: Default bound on one connection's life, misbehaviour included.
DEFAULT_MAX_SECONDS = 10.0
#: Bytes written per step while streaming (the transport's buffer stays near this).
CHUNK_SIZE = 64 * 1024
#: Largest command line or client literal the hostile server reads.
MAX_COMMAND = 64 * 1024
#: The literal size `HUGE_LITERAL` announces (RFC 3501 section 4.3 sets no maximum).
HUGE_LITERAL_SIZE = 10_000_000_000
_READY_TIMEOUT = 5.0
_STOP_TIMEOUT = 5.0
_CAPABILITIES = b"IMAP4rev1 AUTH=PLAIN"
_LITERAL_TAIL = re.compile(rb"\{(\d{1,9})\}\r\n\Z")


class Behaviour(Enum):
    """How the server misbehaves once triggered; see the module docstring."""

    #: Streams bytes without CRLF until the byte budget is spent.
    ENDLESS_LINE = "endless_line"
    #: Announces a literal of `HUGE_LITERAL_SIZE` octets in a FETCH, then streams filler.
    HUGE_LITERAL = "huge_literal"
    #: Announces a plausible literal (`literal_size`) and streams far beyond it, no CRLF.
    LITERAL_FLOOD = "literal_flood"
    #: Sends a FETCH whose value nests `nesting_depth` parentheses, then a tagged OK.
    DEEP_NESTING = "deep_nesting"
    #: Streams seeded random bytes until the byte budget is spent.
    GARBAGE = "garbage"
    #: Accepts the connection and never sends the greeting.
    STALL_GREETING = "stall_greeting"
    #: Answers nothing to the trigger command.
    STALL_RESPONSE = "stall_response"
    #: Sends part of a response, `* BYE`, half a FETCH, and closes.
    BYE_MIDWAY = "bye_midway"
    #: Sends `untagged_count` small valid untagged lines, then the tagged OK.
    MANY_UNTAGGED = "many_untagged"


class _BudgetSpent(Exception):
    """The connection reached `max_bytes`; the server stops sending."""


class _ClientGone(Exception):
    """The client closed or reset the connection."""


class HostileImapServer(StartStop):
    """A misbehaving IMAP server on a free loopback port; `with server:` runs it."""

    def __init__(
        self,
        behaviour: Behaviour,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        literal_size: int = 8 * _MIB,
        nesting_depth: int = 100_000,
        untagged_count: int = 2_000_000,
        seed: int = 0,
        host: str = LOOPBACK,
    ) -> None:
        self.behaviour = behaviour
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.literal_size = literal_size
        self.nesting_depth = nesting_depth
        self.untagged_count = untagged_count
        self.seed = seed
        self.host = host
        self.port = 0
        #: Bytes written to clients, over all connections.
        self.bytes_sent = 0
        #: Connections accepted so far.
        self.connections = 0
        self._client_closed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._start_error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise PeerError("a HostileImapServer starts only once")
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, args=(ready,), name="hostile-imap", daemon=True
        )
        self._thread.start()
        if not ready.wait(_READY_TIMEOUT) or self._start_error is not None:
            self.stop()
            raise PeerStartError(f"hostile IMAP server did not start: {self._start_error}")

    def stop(self) -> None:
        """Close the listener and every connection, then end the thread."""
        loop, thread, stopping = self._loop, self._thread, self._stopping
        if loop is None or thread is None:
            return
        if stopping is not None:
            # The loop closes on its own if serving failed; nothing to wake then.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            raise PeerStopError("hostile IMAP server thread did not stop")

    def wait_client_closed(self, timeout: float) -> bool:
        """Block until some client hung up on the server (True) or `timeout` passed."""
        return self._client_closed.wait(timeout)

    async def client_closed(
        self,
        # The worker thread cannot be cancelled, so the bound must live inside it.
        timeout: float,  # noqa: ASYNC109
    ) -> bool:
        """`wait_client_closed` for async tests: waits in a worker thread, not on the loop."""
        return await asyncio.to_thread(self._client_closed.wait, timeout)

    def _run_loop(self, ready: threading.Event) -> None:
        assert self._loop is not None
        try:
            self._loop.run_until_complete(self._serve(ready))
        except OSError as error:  # a failed bind, reported by `start`
            self._start_error = error
            ready.set()
        finally:
            self._loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = int(server.sockets[0].getsockname()[1])
        ready.set()
        await self._stopping.wait()
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    # ------------------------------------------------------------------ one connection

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        sent = [0]
        try:
            async with asyncio.timeout(self.max_seconds):
                await self._converse(reader, writer, sent)
                await self._await_hangup(reader)
        except (TimeoutError, _BudgetSpent):
            pass
        except (_ClientGone, ConnectionError):
            self._client_closed.set()
        except asyncio.CancelledError:
            # `stop` cancels open connections; ending quietly keeps asyncio's
            # stream callback from logging the cancellation as an error.
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: list[int]
    ) -> None:
        if self.behaviour is Behaviour.STALL_GREETING:
            return
        await self._send(writer, sent, b"* OK [CAPABILITY " + _CAPABILITIES + b"] hostile\r\n")
        while True:
            tag, name = await self._read_command(reader, writer, sent)
            if name == b"CAPABILITY":
                reply = b"* CAPABILITY " + _CAPABILITIES + b"\r\n" + tag + b" OK done\r\n"
            elif name == b"LOGIN":
                reply = tag + b" OK [CAPABILITY " + _CAPABILITIES + b"] logged in\r\n"
            elif name in (b"SELECT", b"EXAMINE"):
                reply = (
                    b"* 3 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen \\Deleted)\r\n"
                    b"* OK [UIDVALIDITY 1] ok\r\n* OK [UIDNEXT 4] ok\r\n"
                    + tag
                    + b" OK [READ-WRITE] selected\r\n"
                )
            elif name == b"LOGOUT":
                await self._send(writer, sent, b"* BYE bye\r\n" + tag + b" OK done\r\n")
                return
            else:
                await self._misbehave(tag, writer, sent)
                return
            await self._send(writer, sent, reply)

    async def _read_command(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: list[int]
    ) -> tuple[bytes, bytes]:
        """One command's tag and upper-cased name; synchronising literals are accepted."""
        try:
            line = await reader.readuntil(b"\r\n")
            first = line
            while (match := _LITERAL_TAIL.search(line)) is not None:
                size = int(match.group(1))
                if size > MAX_COMMAND:
                    raise _ClientGone("client literal over the hostile server's limit")
                await self._send(writer, sent, b"+ go on\r\n")
                await reader.readexactly(size)
                line = await reader.readuntil(b"\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            raise _ClientGone(str(error)) from error
        tag, _, rest = first.partition(b" ")
        return tag, rest.split(b" ", 1)[0].strip().upper()

    async def _await_hangup(self, reader: asyncio.StreamReader) -> None:
        """Discard what the client sends until it closes (bounded by `max_seconds`)."""
        while await reader.read(CHUNK_SIZE):
            pass
        raise _ClientGone("end of stream")

    async def _send(self, writer: asyncio.StreamWriter, sent: list[int], data: bytes) -> None:
        room = self.max_bytes - sent[0]
        if room <= 0:
            raise _BudgetSpent
        data = data[:room]
        # Counted before the write, so a client never sees bytes not yet counted.
        sent[0] += len(data)
        self.bytes_sent += len(data)
        writer.write(data)
        await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, sent: list[int], chunk: bytes) -> None:
        """Repeat `chunk` until the byte budget is spent."""
        while True:
            await self._send(writer, sent, chunk)

    # ------------------------------------------------------------------ misbehaviours

    async def _misbehave(self, tag: bytes, writer: asyncio.StreamWriter, sent: list[int]) -> None:
        behaviour = self.behaviour
        filler = b"x" * CHUNK_SIZE
        if behaviour is Behaviour.ENDLESS_LINE:
            await self._send(writer, sent, b"* OK ")
            await self._stream(writer, sent, filler)
        elif behaviour is Behaviour.HUGE_LITERAL:
            await self._send(writer, sent, b"* 1 FETCH (BODY[] {%d}\r\n" % HUGE_LITERAL_SIZE)
            await self._stream(writer, sent, filler)
        elif behaviour is Behaviour.LITERAL_FLOOD:
            await self._send(writer, sent, b"* 1 FETCH (BODY[] {%d}\r\n" % self.literal_size)
            await self._stream(writer, sent, filler)
        elif behaviour is Behaviour.DEEP_NESTING:
            depth = self.nesting_depth
            nested = b"(" * depth + b")" * depth
            await self._send(writer, sent, b"* 1 FETCH (X-NESTED " + nested + b")\r\n")
            await self._send(writer, sent, tag + b" OK done\r\n")
        elif behaviour is Behaviour.GARBAGE:
            # Seeded, so a failing run replays byte for byte; nothing secret here.
            rng = random.Random(self.seed)  # noqa: S311
            while True:
                await self._send(writer, sent, rng.randbytes(CHUNK_SIZE))
        elif behaviour is Behaviour.BYE_MIDWAY:
            await self._send(
                writer,
                sent,
                b"* 1 FETCH (UID 1 FLAGS ())\r\n* 2 FETCH (UID 2 FLAGS ())\r\n"
                b"* BYE shutting down\r\n* 3 FETCH (UID 3 BODY[] {500}\r\nFrom: half",
            )
            raise _BudgetSpent  # close at once, mid-response
        elif behaviour is Behaviour.MANY_UNTAGGED:
            await self._many_untagged(tag, writer, sent)
        # STALL_RESPONSE sends nothing; the caller then waits for the hang-up.

    async def _many_untagged(
        self, tag: bytes, writer: asyncio.StreamWriter, sent: list[int]
    ) -> None:
        line = b"* 1 RECENT\r\n"
        per_chunk = CHUNK_SIZE // len(line)
        left = self.untagged_count
        while left > 0:
            count = min(per_chunk, left)
            await self._send(writer, sent, line * count)
            left -= count
        await self._send(writer, sent, tag + b" OK done\r\n")
