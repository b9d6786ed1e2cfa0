"""Encoding a `Command` into the bytes sent on one connection (RFC 3501, RFC 7888).

A synchronising literal `{n}` makes the client wait for the server's "+"
continuation, so an encoded command is a tuple of chunks: the first is sent at
once, every later one only after a continuation. With LITERAL+ (any size) or
LITERAL- (up to 4096 octets) literals are written `{n+}` and inlined, and the
command is one chunk. Every octet outside a literal goes through one writer
that refuses CR, LF and NUL (`CommandError`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from mailwire.protocols.imap.arguments import (
    FORBIDDEN_OUTSIDE_LITERAL,
    LITERAL_MINUS_MAX,
    MAX_COMMAND_LINE_LENGTH,
    MAX_NUMBER,
    TAG_CHARS,
    Arg,
    Atom,
    DateTime,
    Flag,
    Literal,
    Mailbox,
    ParenList,
    Raw,
    SaslResponse,
    SequenceSet,
    String,
)
from mailwire.protocols.imap.errors import CommandError
from mailwire.protocols.imap.utf7 import encode_mailbox

# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    """A command before encoding. `sensitive` marks arguments never to be logged."""

    name: str
    args: tuple[Arg | SaslResponse, ...] = ()
    sensitive: bool = False

    def __post_init__(self) -> None:
        for word in self.name.split(" "):
            Atom(word)
        for arg in self.args[:-1]:
            if isinstance(arg, SaslResponse):
                raise CommandError("a SASL initial response must be the last argument")


@dataclass(frozen=True)
class EncodedCommand:
    """A command as bytes: send `chunks[0]`, then each later chunk after a "+" continuation."""

    tag: str
    chunks: tuple[bytes, ...]
    sensitive: bool = False


@dataclass(frozen=True)
class EncodingContext:
    """What the connection allows: advertised capabilities and whether UTF8=ACCEPT is on."""

    capabilities: frozenset[str] = frozenset()
    utf8_enabled: bool = False
    max_line_length: int = MAX_COMMAND_LINE_LENGTH

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "capabilities", frozenset(cap.upper() for cap in self.capabilities)
        )

    def literal_inline(self, size: int) -> bool:
        """Whether a literal of `size` octets may be sent without waiting (RFC 7888)."""
        if "LITERAL+" in self.capabilities:
            return True
        return "LITERAL-" in self.capabilities and size <= LITERAL_MINUS_MAX


class Tagger:
    """Hands out tags `A0001`, `A0002`, ... (mutable: one per connection)."""

    def __init__(self, prefix: str = "A") -> None:
        if not prefix.isascii() or not all(byte in TAG_CHARS for byte in prefix.encode()):
            raise CommandError(f"not a valid tag prefix: {prefix!r}")
        self._prefix = prefix
        self._count = 0

    def next_tag(self) -> str:
        self._count += 1
        return f"{self._prefix}{self._count:04d}"


# --------------------------------------------------------------------------- encoder


class _Writer:
    """Accumulates chunks; every non-literal octet passes through `text`."""

    def __init__(self, context: EncodingContext) -> None:
        self.context = context
        self.chunks: list[bytes] = []
        self.current = bytearray()
        self.line_length = 0

    def text(self, data: bytes) -> None:
        if FORBIDDEN_OUTSIDE_LITERAL.intersection(data):
            raise CommandError("CR, LF or NUL outside a literal")
        self.line_length += len(data)
        if self.line_length > self.context.max_line_length:
            raise CommandError(f"command line longer than {self.context.max_line_length} octets")
        self.current += data

    def crlf(self) -> None:
        self.current += b"\r\n"

    def end_chunk(self) -> None:
        self.chunks.append(bytes(self.current))
        self.current = bytearray()

    def literal(self, data: bytes) -> None:
        if self.context.literal_inline(len(data)):
            self.text(b"{%d+}" % len(data))
            self.crlf()
        else:
            self.text(b"{%d}" % len(data))
            self.crlf()
            self.end_chunk()
        self.current += data

    def string(self, data: bytes) -> None:
        eight_bit = any(byte >= 0x80 for byte in data)
        if FORBIDDEN_OUTSIDE_LITERAL.intersection(data) or (
            eight_bit and not self.context.utf8_enabled
        ):
            self.literal(data)
            return
        if eight_bit:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self.literal(data)
                return
        escaped = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        self.text(b'"' + escaped + b'"')

    def arg(self, arg: Arg | SaslResponse) -> None:
        if isinstance(arg, bool):
            raise CommandError("a boolean is not an IMAP number")
        if isinstance(arg, int):
            if not 0 <= arg <= MAX_NUMBER:
                raise CommandError(f"number out of range: {arg}")
            self.text(str(arg).encode("ascii"))
        elif isinstance(arg, Atom | Flag | Raw):
            self.text(arg.value.encode("ascii"))
        elif isinstance(arg, String):
            self.string(arg.data)
        elif isinstance(arg, Literal):
            self.literal(arg.data)
        elif isinstance(arg, Mailbox):
            self.mailbox(arg.name)
        elif isinstance(arg, SequenceSet | DateTime):
            self.text(arg.to_bytes())
        elif isinstance(arg, ParenList):
            self.text(b"(")
            for index, item in enumerate(arg.items):
                if index:
                    self.text(b" ")
                self.arg(item)
            self.text(b")")
        else:
            self.sasl(arg)

    def mailbox(self, name: str) -> None:
        if name.upper() == "INBOX":
            self.text(b"INBOX")
        elif self.context.utf8_enabled:
            self.string(name.encode("utf-8"))
        else:
            self.string(encode_mailbox(name))

    def sasl(self, response: SaslResponse) -> None:
        encoded = base64.b64encode(response.data)
        if "SASL-IR" in self.context.capabilities:
            self.text(encoded or b"=")
        else:
            self.crlf()
            self.end_chunk()
            self.text(encoded)


def encode(command: Command, tag: str, context: EncodingContext) -> EncodedCommand:
    """Encode `command` with `tag`; raise `CommandError` if it cannot be sent safely."""
    if not tag.isascii() or not tag or not all(byte in TAG_CHARS for byte in tag.encode()):
        raise CommandError(f"not a valid tag: {tag!r}")
    writer = _Writer(context)
    writer.text(f"{tag} {command.name}".encode("ascii"))
    for arg in command.args:
        if not (isinstance(arg, SaslResponse) and "SASL-IR" not in context.capabilities):
            writer.text(b" ")
        writer.arg(arg)
    writer.crlf()
    writer.end_chunk()
    return EncodedCommand(tag, tuple(writer.chunks), command.sensitive)


def done() -> bytes:
    """The line that ends IDLE (RFC 2177 section 3); it has no tag."""
    return b"DONE\r\n"


def sasl_response(data: bytes) -> bytes:
    """A line answering a SASL challenge during AUTHENTICATE (RFC 3501 section 6.2.2)."""
    return base64.b64encode(data) + b"\r\n"


#: Cancels an AUTHENTICATE exchange (RFC 3501 section 6.2.2).
SASL_CANCEL = b"*\r\n"
