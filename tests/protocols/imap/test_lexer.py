"""Tests of the IMAP tokenizer on complete responses."""

from __future__ import annotations

import pytest

from mailwire.protocols.imap.errors import LimitExceededError, ProtocolError
from mailwire.protocols.imap.lexer import Atom, Lexer, parse_number


def lexer(data: bytes, *, max_depth: int = 8, max_items: int = 100) -> Lexer:
    return Lexer(data, max_depth=max_depth, max_items=max_items)


def test_values_tree() -> None:
    lx = lexer(
        b'(\\Seen NIL "a\\"b\\\\" {3}\r\nx\ry () (1 (2))'
        b" BODY[HEADER.FIELDS (A B)]<5> ~{2}\r\n\x00\xff)"
    )
    value = lx.read_value()
    assert value == (
        b"\\Seen",
        None,
        b'a"b\\',
        b"x\ry",
        (),
        (b"1", (b"2",)),
        b"BODY[HEADER.FIELDS (A B)]<5>",
        b"\x00\xff",
    )
    assert isinstance(value, tuple)
    assert isinstance(value[0], Atom)
    assert type(value[2]) is bytes
    assert type(value[3]) is bytes
    assert lx.at_end()


def test_nil_is_case_insensitive_but_quoted_nil_is_a_string() -> None:
    assert lexer(b"nil").read_value() is None
    assert lexer(b'"NIL"').read_value() == b"NIL"


def test_adjacent_lists_need_no_space() -> None:
    assert lexer(b'(("a")("b") "MIXED")').read_value() == ((b"a",), (b"b",), b"MIXED")


def test_cursor_helpers() -> None:
    lx = lexer(b"A1 OK rest of text")
    assert lx.read_atom() == b"A1"
    assert lx.skip(b" ")
    assert not lx.skip(b"X")
    assert lx.peek() == ord("O")
    assert lx.read_atom() == b"OK"
    lx.expect(b" ")
    assert lx.rest() == b"rest of text"
    assert lx.peek() == -1
    assert lx.at_end()


@pytest.mark.parametrize(
    "data",
    [
        b'"open',
        b'"a\rb"',
        b'"bad \\x escape"',
        b"{5}\r\nabc",
        b"{x}\r\nabc",
        b"{3}abc",
        b"(a b",
        b"(a  b)",
        b"BODY[1",
        b"BODY[]<0",
        b"",
        b")",
        b'(a"b")',
        b'(x "a\rb")',
        b"(a )",
        b"(a b c",
        b'("x\\q")',
    ],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        lexer(data).read_value()


def test_depth_and_items_limits() -> None:
    assert lexer(b"(((a)))", max_depth=3).read_value() == (((b"a",),),)
    with pytest.raises(LimitExceededError) as info:
        lexer(b"((((a))))", max_depth=3).read_value()
    assert info.value.limit == "max_nesting_depth"
    assert lexer(b"(a b c)", max_items=3).read_value() == (b"a", b"b", b"c")
    with pytest.raises(LimitExceededError) as info:
        lexer(b"(a b c d)", max_items=3).read_value()
    assert info.value.limit == "max_list_items"


def test_parse_number() -> None:
    assert parse_number(b"18446744073709551615") == 2**64 - 1
    for bad in (b"", b"-1", b"1a", b"\xd9\xa1", b"1" * 21):
        with pytest.raises(ProtocolError):
            parse_number(bad)
