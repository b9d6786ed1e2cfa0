"""Property tests of the IMAP response parser (hypothesis)."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwire.protocols.imap.errors import ProtocolError
from mailwire.protocols.imap.fetch import FetchMemo, _fast_fetch, parse_fetch
from mailwire.protocols.imap.lexer import Lexer
from mailwire.protocols.imap.parser import NEED_DATA, Limits, ResponseParser
from mailwire.protocols.imap.responses import BodySection, Event, Fetch, Greeting

SMALL = Limits(
    max_line_length=2000,
    max_literal_size=2000,
    max_nesting_depth=8,
    max_list_items=50,
    max_buffered=8000,
)


def run(chunks: list[bytes], limits: Limits = SMALL) -> list[Event]:
    parser = ResponseParser(limits)
    events: list[Event] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        while (event := parser.next_event()) is not NEED_DATA:
            events.append(event)
    return events


def fragments() -> st.SearchStrategy[bytes]:
    pieces = st.sampled_from(
        [
            b"* ",
            b"OK",
            b" ",
            b"(",
            b")",
            b"[",
            b"]",
            b"{3}\r\n",
            b"~{",
            b"}",
            b"\r\n",
            b'"',
            b"\\",
            b"NIL",
            b"FETCH",
            b"1",
            b"0",
            b"*",
            b":",
            b",",
            b"BODY[",
            b"<1>",
            b"UID",
            b"ENVELOPE",
            b"BODYSTRUCTURE",
            b"INTERNALDATE",
            b"LIST",
            b"STATUS",
            b"ESEARCH",
            b"VANISHED",
            b"SEARCH",
            b"FLAGS",
            b"MODSEQ",
            b"EXISTS",
            b"a1",
            b"+",
            b"\x00",
            b"\xff",
            b"CAPABILITY",
            b"UIDNEXT",
        ]
    )
    return st.lists(st.one_of(pieces, st.binary(max_size=8)), max_size=60).map(b"".join)


@settings(max_examples=400)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes, step: int) -> None:
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    with contextlib.suppress(ProtocolError):
        run(chunks)


@settings(max_examples=400)
@given(fragments())
def test_imap_looking_bytes_after_greeting_raise_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        run([b"* OK hi\r\n", data, b"\r\n"])


_LEAVES = [
    b"NIL",
    b'"TEXT"',
    b'"PLAIN"',
    b'"MESSAGE"',
    b'"RFC822"',
    b"12",
    b'"x"',
    b"{2}\r\nab",
    b'" 1-Jan-2000 00:00:00 +0000"',
    b"BODY[1]<2>",
    b"UID",
    b"0",
    b"99999999999999999999",
]
_TREES = st.recursive(
    st.sampled_from(_LEAVES),
    lambda inner: st.lists(inner, max_size=12).map(lambda xs: b"(" + b" ".join(xs) + b")"),
    max_leaves=40,
)
_KEYWORDS = [
    b"BODYSTRUCTURE",
    b"BODY",
    b"ENVELOPE",
    b"INTERNALDATE",
    b"MODSEQ",
    b"EMAILID",
    b"THREADID",
    b"X-GM-LABELS",
    b"FLAGS",
    b"UID",
    b"BODY[]",
]
_FORMATS = [
    b"* 1 FETCH (%s %s)",
    b"* STATUS %s %s",
    b"* ESEARCH %s %s",
    b"* LIST %s %s x",
    b"* SEARCH %s %s",
    b"* OK [%s %s] t",
]


@settings(max_examples=500)
@given(st.sampled_from(_KEYWORDS), _TREES, st.sampled_from(_FORMATS))
def test_well_formed_trees_in_wrong_shapes_raise_only_protocol_errors(
    keyword: bytes, tree: bytes, fmt: bytes
) -> None:
    with contextlib.suppress(ProtocolError):
        run([b"* OK hi\r\n" + fmt % (keyword, tree) + b"\r\n"], Limits())


atoms = st.text(alphabet="abcdefghijklmnopqrstuvwxyz$", min_size=1, max_size=10)


@settings(max_examples=200)
@given(
    seq=st.integers(min_value=1, max_value=2**32 - 1),
    uid=st.integers(min_value=1, max_value=2**32 - 1),
    flags=st.lists(st.one_of(atoms, atoms.map(lambda a: "\\" + a.capitalize())), max_size=5),
    modseq=st.integers(min_value=1, max_value=2**63 - 1),
    size=st.integers(min_value=0, max_value=2**32 - 1),
    body=st.none() | st.binary(max_size=200),
    labels=st.lists(st.binary(max_size=20), max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_generated_fetch_round_trips(
    seq: int,
    uid: int,
    flags: list[str],
    modseq: int,
    size: int,
    body: bytes | None,
    labels: list[bytes],
    cuts: list[int],
) -> None:
    body_wire = b"NIL" if body is None else b"{%d}\r\n%s" % (len(body), body)
    labels_wire = b" ".join(b"{%d}\r\n%s" % (len(v), v) for v in labels)
    wire = (
        b"* OK ready\r\n* %d FETCH (UID %d FLAGS (%s) MODSEQ (%d) RFC822.SIZE %d"
        b" BODY[] %s X-GM-LABELS (%s))\r\n"
        % (seq, uid, " ".join(flags).encode(), modseq, size, body_wire, labels_wire)
    )
    points = sorted({c for c in cuts if c < len(wire)} | {0, len(wire)})
    chunks = [wire[a:b] for a, b in itertools.pairwise(points)]
    limits = Limits()
    assert run(chunks, limits) == [
        Greeting("OK", None, "ready"),
        Fetch(
            seq,
            uid=uid,
            # NIL is read as nil in any case; as a flag it comes back as the keyword
            # "NIL" (flag keywords compare case-insensitively, RFC 3501 section 2.3.2).
            flags=tuple("NIL" if f.upper() == "NIL" else f for f in flags),
            modseq=modseq,
            rfc822_size=size,
            sections=(BodySection("BODY", "", None, body),),
            x_gm_labels=tuple(labels),
        ),
    ]


# --------------------------------------------------------------------------- FETCH fast path
#
# `parse_fetch` with a memo tries `_fast_fetch` first; without one it reads the
# generic value tree. Both must give the same event or the same error.

_ADDRESSES = [b'(("A" NIL "a" "x.org"))', b'(("A" NIL "a" "x.org")(NIL NIL "b" "y"))', b"NIL"]
_ITEMS = st.sampled_from(
    [
        b"UID 7",
        b"UID 99999999999999999999",
        b"UID 999999999999999999999",
        b"uid 7",
        b"UID 7x",
        b"RFC822.SIZE 120",
        b"FLAGS ()",
        b"FLAGS (\\Seen $Forwarded nil)",
        b"FLAGS (\\Seen  x)",
        b'FLAGS ("quoted")',
        b"FLAGS(\\Seen)",
        b"FLAGS (a[b])",
        b'INTERNALDATE " 1-Feb-2024 09:05:00 +0530"',
        b'INTERNALDATE "31-feb-2024 09:05:00 -0700"',
        b'INTERNALDATE "01-Jan-2026 00:00:00 +9999"',
        b'INTERNALDATE "01-Foo-2026 00:00:00 +0000"',
        b"MODSEQ (12121231000)",
        b"MODSEQ (1 2)",
        b'BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 1)',
        b'BODY (("TEXT" "PLAIN" NIL NIL NIL "7BIT" 1 1)("X" "Y" NIL NIL NIL "B" 2) "MIXED")',
        b'BODYSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 10)',
        b"BODY[HEADER.FIELDS (A B)]<0> {3}\r\nabc",
        b'BODY[1] "x\\"y"',
        b"BODY[] NIL",
        b"X-FUTURE (1 (2 NIL))",
        b"THREADID NIL",
        b'"UID" 3',
        b"NIL 3",
        *(
            b'ENVELOPE ("d" {3}\r\nsub %s %s %s %s NIL NIL "<i>" NIL)' % (a, a, a, a)
            for a in _ADDRESSES
        ),
        *(b'ENVELOPE ("d" "s" %s %s %s %s %s %s NIL "<m>")' % ((a,) * 6) for a in _ADDRESSES),
        b'ENVELOPE (NIL "NIL" () NIL NIL NIL NIL NIL nil "x")',
        b'ENVELOPE (NIL NIL (("a" NIL "b")) NIL NIL NIL NIL NIL NIL NIL)',
        b'ENVELOPE (NIL NIL (("a\\\\" NIL "b" "c")) NIL NIL NIL NIL NIL NIL NIL)',
    ]
)


@settings(max_examples=800)
@given(
    st.lists(_ITEMS, max_size=8),
    st.sampled_from([b" ", b" ", b" ", b"  ", b""]),
    st.sampled_from([b")", b")", b")", b") x", b""]),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=2, max_value=40),
)
def test_fetch_fast_path_agrees_with_generic_reading(
    items: list[bytes], sep: bytes, close: bytes, max_depth: int, max_items: int
) -> None:
    line = b"(" + sep.join(items) + close

    def outcome(memo: FetchMemo | None) -> object:
        lx = Lexer(line, max_depth=max_depth, max_items=max_items)
        try:
            return parse_fetch(1, lx, memo), lx.pos
        except ProtocolError as exc:
            return type(exc).__name__, str(exc)

    assert outcome(FetchMemo()) == outcome(None)


def test_fetch_fast_path_handles_dovecot_items_itself() -> None:
    # Guards the agreement test against a fast path that always declines.
    line = (
        b'(UID 1 FLAGS (\\Seen) RFC822.SIZE 9 INTERNALDATE "01-Jan-2026 00:00:00 +0000"'
        b' MODSEQ (3) ENVELOPE ("d" "s" (("A" NIL "a" "x")) NIL NIL NIL NIL NIL NIL "<m>")'
        b' BODYSTRUCTURE ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 9 1))'
    )
    lx = Lexer(line, max_depth=64, max_items=100)
    assert _fast_fetch(1, lx, FetchMemo()) == parse_fetch(
        1, Lexer(line, max_depth=64, max_items=100)
    )
    assert lx.at_end()
