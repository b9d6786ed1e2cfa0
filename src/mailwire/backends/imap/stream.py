"""The byte stream under an IMAP connection: asyncio streams, TLS upgrade, DEFLATE.

It knows bytes, not IMAP: `read` returns whatever arrived (inflated once
COMPRESS is on), `write` queues bytes (deflated, with a sync flush per write so
the server sees each command at once, RFC 4978 section 4). OS and TLS
exceptions are translated into the connection's errors here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import zlib

from mailwire.backends.imap.errors import ConnectionClosedError, ImapConnectError, ImapTlsError

#: Bytes asked of the socket per read.
READ_SIZE = 64 * 1024
#: Most bytes one read may inflate to; the rest waits for the next read, so a
#: small compressed packet cannot balloon in one step (the parser's own
#: `max_buffered` bounds the total).
MAX_INFLATE_STEP = 1024 * 1024
#: RFC 4978 section 3: raw DEFLATE (RFC 1951), no zlib header, hence negative wbits.
DEFLATE_WBITS = -15


class ImapStream:
    """A connected byte stream; see the module docstring."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._deflate: zlib._Compress | None = None
        self._inflate: zlib._Decompress | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, *, tls: ssl.SSLContext | None = None
    ) -> ImapStream:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as error:
            raise ImapConnectError(f"cannot connect to {host}:{port}: {error}") from error
        stream = cls(reader, writer)
        if tls is None:
            return stream
        # Implicit TLS as TCP first, then the handshake on a transport we hold: a
        # handshake that fails (or is cancelled by the connect timeout) inside
        # open_connection(ssl=...) can leave its socket to the garbage collector.
        try:
            await writer.start_tls(tls, server_hostname=host)
        except BaseException as error:
            await stream.close()
            if isinstance(error, ssl.SSLError):
                raise ImapTlsError(f"TLS with {host}:{port} failed: {error}") from error
            if isinstance(error, OSError):
                raise ImapConnectError(f"cannot connect to {host}:{port}: {error}") from error
            raise
        return stream

    @property
    def compressed(self) -> bool:
        return self._deflate is not None

    async def start_tls(self, context: ssl.SSLContext, host: str) -> None:
        """Upgrade the connection in place (STARTTLS, RFC 3501 section 6.2.1)."""
        try:
            await self._writer.start_tls(context, server_hostname=host)
        except ssl.SSLError as error:
            raise ImapTlsError(f"TLS upgrade with {host} failed: {error}") from error
        except OSError as error:
            raise ConnectionClosedError(f"connection lost during TLS upgrade: {error}") from error

    def start_deflate(self) -> None:
        """Compress both directions from now on (COMPRESS DEFLATE, RFC 4978)."""
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, DEFLATE_WBITS)
        self._inflate = zlib.decompressobj(DEFLATE_WBITS)

    async def read(self) -> bytes:
        """The next bytes from the server; b"" only at end of stream."""
        while True:
            if self._inflate is not None and self._inflate.unconsumed_tail:
                return self._inflate_step(self._inflate.unconsumed_tail)
            try:
                data = await self._reader.read(READ_SIZE)
            except (OSError, ssl.SSLError) as error:
                raise ConnectionClosedError(f"connection lost: {error}") from error
            if not data or self._inflate is None:
                return data
            out = self._inflate_step(data)
            if out:
                return out

    def _inflate_step(self, data: bytes) -> bytes:
        assert self._inflate is not None
        try:
            return self._inflate.decompress(data, MAX_INFLATE_STEP)
        except zlib.error as error:
            raise ConnectionClosedError(f"corrupt DEFLATE stream: {error}") from error

    async def write(self, data: bytes) -> None:
        if self._deflate is not None:
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, ssl.SSLError) as error:
            raise ConnectionClosedError(f"connection lost: {error}") from error

    async def close(self) -> None:
        """Close the transport; errors on the way out are of no interest."""
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()
        # After a failed STARTTLS the stream's protocol is no longer the transport's,
        # so wait_closed() cannot tell; and a transport still flushing stays open.
        # Abort (a no-op once the connection is lost) and let the loop close the socket.
        self._writer.transport.abort()
        await asyncio.sleep(0)

    def abort(self) -> None:
        """Drop the transport at once (after a timeout or a protocol error)."""
        self._writer.transport.abort()
