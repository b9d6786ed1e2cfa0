"""Conversions from the lexer's value trees to plain values, shared by the response parsers."""

from __future__ import annotations

from mailwire.protocols.imap.errors import ProtocolError
from mailwire.protocols.imap.lexer import Atom, Lexer, Value, parse_number


def as_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def as_str(value: Value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise ProtocolError(f"expected an atom or string, got {value!r:.60}")


def as_words(raw: bytes, *, upper: bool = False) -> tuple[str, ...]:
    text = raw.decode("ascii", "replace")
    return tuple(w.upper() if upper else w for w in text.split())


def trailing_values(lx: Lexer) -> list[Value]:
    out: list[Value] = []
    while lx.skip(b" "):
        out.append(lx.read_value())
    if not lx.at_end():
        raise lx.fail("unexpected input")
    return out


def as_flags(value: Value) -> tuple[str, ...]:
    if not isinstance(value, tuple):
        raise ProtocolError(f"expected a list, got {value!r:.60}")
    # A flag keyword is any atom (RFC 3501 section 9), so NIL here is the keyword "NIL".
    return tuple("NIL" if v is None else as_str(v) for v in value)


def as_number(value: Value) -> int:
    if not isinstance(value, Atom):
        raise ProtocolError(f"expected a number, got {value!r:.60}")
    return parse_number(value)


def as_mailbox(value: Value) -> bytes:
    if value is None:
        return b"NIL"  # an atom mailbox named NIL (astring), rare but legal
    if isinstance(value, bytes):
        return bytes(value)
    raise ProtocolError("bad mailbox name")


def as_tuple(value: Value) -> tuple[Value, ...]:
    if not isinstance(value, tuple):
        raise ProtocolError(f"expected a list, got {value!r:.60}")
    return value
