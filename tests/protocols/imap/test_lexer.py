"""Tests of the IMAP tokenizer on complete responses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwire.protocols.imap.errors import LimitExceededError, ProtocolError
from mailwire.protocols.imap.lexer import Atom, Lexer, Value, parse_number


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


# --------------------------------------------------------------------------- scan vs careful loop
#
# `read_list` scans with a regex and defers to the byte loop (`_read_list_careful`)
# on anything it does not model; both must agree on every input, errors included.


def shape(value: Value) -> object:
    """The value tree with types made visible (`Atom(b"1") == b"1"` otherwise)."""
    if isinstance(value, tuple):
        return tuple(shape(v) for v in value)
    return (type(value).__name__, value)


def outcome(lx: Lexer, read: Callable[[], Value]) -> object:
    try:
        value = read()
    except ProtocolError as exc:
        return (type(exc).__name__, str(exc))
    return shape(value), lx.pos


def both(data: bytes, *, max_depth: int = 8, max_items: int = 100) -> tuple[object, object]:
    fast = lexer(data, max_depth=max_depth, max_items=max_items)
    careful = lexer(data, max_depth=max_depth, max_items=max_items)
    return (
        outcome(fast, lambda: fast.read_list(1)),
        outcome(careful, lambda: careful._read_list_careful(1)),
    )


_PIECES = st.sampled_from(
    [
        b"(",
        b")",
        b" ",
        b"  ",
        b'"a b"',
        b'""',
        b'"x\\"y"',
        b'"\\\\"',
        b'"a\rb"',
        b'"',
        b"NIL",
        b"nil",
        b'"NIL"',
        b"\\Seen",
        b"123",
        b"BODY[HEADER.FIELDS (A B)]<0>",
        b"BODY[1",
        b"BODY[]<0",
        b"BODY[]<",
        b"[x]",
        b"a[b]c",
        b"{3}\r\nabc",
        b"{3}\r\nab",
        b"~{2}\r\n\x00)",
        b"{2+}\r\n()",
        b"{0}\r\n",
        b"{x}\r\n",
        b"{3}abc",
        b"~x",
        b"\r\n",
        b"\x00",
        b"\xff",
        b"]",
        b"<1>",
    ]
)


@settings(max_examples=1500)
@given(
    st.lists(_PIECES, max_size=30).map(b"".join),
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=1, max_value=12),
)
def test_scan_agrees_with_careful_loop(body: bytes, max_depth: int, max_items: int) -> None:
    fast, careful = both(b"(" + body, max_depth=max_depth, max_items=max_items)
    assert fast == careful


_LEAVES = st.sampled_from(
    [
        *(b"NIL", b"nil", b'"NIL"', b'""', b'"a (b) c"', b"12", b"\\Seen", b"{2}\r\n()"),
        *(b"BODY[HEADER.FIELDS (A B)]<0>", b"~{1}\r\n\x00", b"{3+}\r\n\r\n ", b'"(\xff)"'),
    ]
)
_WELL_FORMED = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=6).map(lambda xs: b"(" + b" ".join(xs) + b")"),
    max_leaves=30,
)


@settings(max_examples=1500)
@given(
    _WELL_FORMED,
    st.integers(min_value=0, max_value=400),
    st.sampled_from([b"", b"", b""]) | _PIECES,  # mostly intact, else one flaw
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=1, max_value=30),
)
def test_scan_agrees_with_careful_loop_on_near_valid_lists(
    tree: bytes, cut: int, splice: bytes, max_depth: int, max_items: int
) -> None:
    data = b"(" + tree[:cut] + splice + tree[cut:] + b")"
    fast, careful = both(data, max_depth=max_depth, max_items=max_items)
    assert fast == careful


@pytest.mark.parametrize(
    "data",
    [
        b'(("a" NIL "b" "c")("d" NIL "e" "f")) "after" (x)',  # a list before more values
        b"(a {3}\r\nb c d {1}\r\n) e)",  # literals inside, one holding ") e"
        b"(a ((b {2}\r\n()) c) ~{1}\r\n\xff)",
        b'(() (()) ("") NIL "NIL" nil)',
        b'("x\\"y" "\\\\" BODY[HEADER.FIELDS (A B)]<0> [x] a[b]c)',
        b"(" + b"x " * 200 + b"y)",
        b"(" + b"(" * 7 + b")" * 7 + b")",
        b"(" + b"(" * 8 + b")" * 8 + b")",
    ],
)
def test_scan_agrees_with_careful_loop_on_examples(data: bytes) -> None:
    fast, careful = both(data, max_depth=8, max_items=300)
    assert fast == careful


def test_scan_reads_literals_by_count() -> None:
    lx = lexer(b"(a {5}\r\n) (\r\n ~{2}\r\n\x00\x01 ()) rest")
    assert lx.read_value() == (b"a", b") (\r\n", b"\x00\x01", ())
    assert lx.data[lx.pos :] == b" rest"


def test_scan_position_after_a_list_followed_by_many_values() -> None:
    # The tail after the list is tokenized once, then the careful loop takes over.
    data = b"(a) " + b" ".join(b"(%d)" % i for i in range(200))
    lx = lexer(data)
    values = [lx.read_value()]
    while lx.skip(b" "):
        values.append(lx.read_value())
    assert values == [(b"a",), *((b"%d" % i,) for i in range(200))]
    assert lx.at_end()


def test_scan_reads_common_lists_without_deferring() -> None:
    # Guards the agreement tests above against a scan that always defers.
    data = (
        b"(UID 1 FLAGS (\\Seen $X) BODY[HEADER.FIELDS (A B)]<0> {2}\r\nhi"
        b' ENVELOPE ("d" NIL (("n" NIL "m" "h")) NIL) X (()("") nil))'
    )
    lx = lexer(data)
    assert lx._scan_list(1) == lexer(data)._read_list_careful(1)
    assert lx.at_end()
