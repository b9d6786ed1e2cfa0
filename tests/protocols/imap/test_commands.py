"""Client command encoding: exact bytes, quoting, literals, sequence sets, injection."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwire.protocols.imap import commands as c
from mailwire.protocols.imap.commands import (
    Atom,
    Command,
    EncodingContext,
    Flag,
    Literal,
    Mailbox,
    ParenList,
    Raw,
    SequenceSet,
    String,
    Tagger,
    encode,
    split_sequence_set,
)
from mailwire.protocols.imap.errors import CommandError

PLAIN = EncodingContext()
LITERAL_PLUS = EncodingContext(frozenset({"IMAP4rev1", "LITERAL+"}))
LITERAL_MINUS = EncodingContext(frozenset({"IMAP4rev1", "literal-"}))
UTF8 = EncodingContext(frozenset({"UTF8=ACCEPT"}), utf8_enabled=True)


def chunks(command: Command, context: EncodingContext = PLAIN) -> tuple[bytes, ...]:
    return encode(command, "A0001", context).chunks


def line(command: Command, context: EncodingContext = PLAIN) -> bytes:
    (only,) = chunks(command, context)
    return only


# --------------------------------------------------------------------------- tags


def test_tagger_counts_from_a0001() -> None:
    tagger = Tagger()
    assert [tagger.next_tag() for _ in range(3)] == ["A0001", "A0002", "A0003"]


def test_tagger_grows_past_four_digits() -> None:
    tagger = Tagger("T")
    for _ in range(9999):
        tagger.next_tag()
    assert tagger.next_tag() == "T10000"


def test_tagger_empty_prefix_gives_digit_tags() -> None:
    assert Tagger("").next_tag() == "0001"


@pytest.mark.parametrize("prefix", ["A B", "+", "A\r\n", "é", "A{"])
def test_tagger_rejects_bad_prefix(prefix: str) -> None:
    with pytest.raises(CommandError):
        Tagger(prefix)


@pytest.mark.parametrize("tag", ["", "A 1", "A+1", "A\r\n", "A(", "*"])
def test_encode_rejects_bad_tag(tag: str) -> None:
    with pytest.raises(CommandError):
        encode(c.noop(), tag, PLAIN)


# --------------------------------------------------------------------------- simple commands


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (c.capability(), b"A0001 CAPABILITY\r\n"),
        (c.noop(), b"A0001 NOOP\r\n"),
        (c.logout(), b"A0001 LOGOUT\r\n"),
        (c.starttls(), b"A0001 STARTTLS\r\n"),
        (c.namespace(), b"A0001 NAMESPACE\r\n"),
        (c.idle(), b"A0001 IDLE\r\n"),
        (c.expunge(), b"A0001 EXPUNGE\r\n"),
        (c.compress_deflate(), b"A0001 COMPRESS DEFLATE\r\n"),
        (c.enable("CONDSTORE", "QRESYNC"), b"A0001 ENABLE CONDSTORE QRESYNC\r\n"),
        (c.id_(), b"A0001 ID NIL\r\n"),
        (
            c.id_({"name": "Mailwire", "version": None}),
            b'A0001 ID ("name" "Mailwire" "version" NIL)\r\n',
        ),
        (c.login("alice", 'p"ss\\'), b'A0001 LOGIN "alice" "p\\"ss\\\\"\r\n'),
        (c.select("inbox"), b"A0001 SELECT INBOX\r\n"),
        (c.select("Sent"), b'A0001 SELECT "Sent"\r\n'),
        (c.select("INBOX", condstore=True), b"A0001 SELECT INBOX (CONDSTORE)\r\n"),
        (
            c.select("INBOX", qresync=(67890007, 20050715194045000, SequenceSet.of([41, 43]))),
            b"A0001 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43))\r\n",
        ),
        (
            c.examine("INBOX", qresync=(1, 2, None)),
            b"A0001 EXAMINE INBOX (QRESYNC (1 2))\r\n",
        ),
        (c.list_("", "*"), b'A0001 LIST "" "*"\r\n'),
        (
            c.list_(
                "",
                "*",
                select_options=["SUBSCRIBED"],
                return_options=["SPECIAL-USE"],
                status_items=["MESSAGES", "UIDNEXT"],
            ),
            b'A0001 LIST (SUBSCRIBED) "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT))\r\n',
        ),
        (c.lsub("", "%"), b'A0001 LSUB "" "%"\r\n'),
        (
            c.status("Archive", ["UIDVALIDITY", "UIDNEXT", "HIGHESTMODSEQ"]),
            b'A0001 STATUS "Archive" (UIDVALIDITY UIDNEXT HIGHESTMODSEQ)\r\n',
        ),
        (c.create("a/b"), b'A0001 CREATE "a/b"\r\n'),
        (c.delete("a/b"), b'A0001 DELETE "a/b"\r\n'),
        (c.rename("old", "new"), b'A0001 RENAME "old" "new"\r\n'),
        (c.subscribe("x"), b'A0001 SUBSCRIBE "x"\r\n'),
        (c.unsubscribe("x"), b'A0001 UNSUBSCRIBE "x"\r\n'),
        (
            c.uid_fetch(SequenceSet.span(1), ["UID", "FLAGS", "BODY.PEEK[HEADER.FIELDS (FROM)]"]),
            b"A0001 UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM)])\r\n",
        ),
        (
            c.uid_fetch(SequenceSet.span(1), ["FLAGS"], changed_since=12345, vanished=True),
            b"A0001 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
        ),
        (
            c.uid_search([Atom("UNSEEN"), Atom("SINCE"), Atom("1-Feb-2024")]),
            b"A0001 UID SEARCH UNSEEN SINCE 1-Feb-2024\r\n",
        ),
        (
            c.uid_search([Atom("ALL")], return_options=["MIN", "MAX", "COUNT"], charset="UTF-8"),
            b"A0001 UID SEARCH RETURN (MIN MAX COUNT) CHARSET UTF-8 ALL\r\n",
        ),
        (
            c.uid_search([Atom("SUBJECT"), String("hi there")], return_options=[]),
            b'A0001 UID SEARCH RETURN () SUBJECT "hi there"\r\n',
        ),
        (
            c.uid_store(SequenceSet.of([1, 2, 3]), "+", ["\\Seen", "$Junk"]),
            b"A0001 UID STORE 1:3 +FLAGS (\\Seen $Junk)\r\n",
        ),
        (
            c.uid_store(SequenceSet.of([4]), "-", ["\\Deleted"], silent=True),
            b"A0001 UID STORE 4 -FLAGS.SILENT (\\Deleted)\r\n",
        ),
        (
            c.uid_store(SequenceSet.of([4]), "", [], unchanged_since=99),
            b"A0001 UID STORE 4 (UNCHANGEDSINCE 99) FLAGS ()\r\n",
        ),
        (c.uid_copy(SequenceSet.of([5, 6]), "Archive"), b'A0001 UID COPY 5:6 "Archive"\r\n'),
        (c.uid_move(SequenceSet.of([5, 9]), "INBOX"), b"A0001 UID MOVE 5,9 INBOX\r\n"),
        (c.uid_expunge(SequenceSet.of([7, 8, 9])), b"A0001 UID EXPUNGE 7:9\r\n"),
    ],
)
def test_exact_bytes(command: Command, expected: bytes) -> None:
    assert line(command) == expected


def test_done_has_no_tag() -> None:
    assert c.done() == b"DONE\r\n"


# --------------------------------------------------------------------------- literals


def test_login_with_8bit_password_uses_synchronising_literal() -> None:
    cmd = c.login("alice", "pässwörd")
    data = "pässwörd".encode()
    assert chunks(cmd) == (b'A0001 LOGIN "alice" {10}\r\n', data + b"\r\n")
    assert encode(cmd, "A0001", PLAIN).sensitive


def test_literal_plus_inlines_any_size() -> None:
    assert chunks(c.login("alice", "p\r\nss"), LITERAL_PLUS) == (
        b'A0001 LOGIN "alice" {5+}\r\np\r\nss\r\n',
    )
    big = b"x" * 10_000
    assert chunks(c.append("INBOX", big), LITERAL_PLUS) == (
        b"A0001 APPEND INBOX {10000+}\r\n" + big + b"\r\n",
    )


def test_literal_minus_inlines_up_to_4096_only() -> None:
    small = b"y" * 4096
    assert chunks(c.append("INBOX", small), LITERAL_MINUS) == (
        b"A0001 APPEND INBOX {4096+}\r\n" + small + b"\r\n",
    )
    big = small + b"y"
    assert chunks(c.append("INBOX", big), LITERAL_MINUS) == (
        b"A0001 APPEND INBOX {4097}\r\n",
        big + b"\r\n",
    )


def test_two_literals_make_three_chunks() -> None:
    cmd = c.login("é", "\r")
    assert chunks(cmd) == (b"A0001 LOGIN {2}\r\n", "é".encode() + b" {1}\r\n", b"\r\r\n")


def test_append_with_flags_and_date() -> None:
    when = datetime(2025, 7, 5, 9, 3, 0, tzinfo=timezone(timedelta(hours=2)))
    cmd = c.append("Drafts", b"Subject: x\r\n\r\nhi\r\n", flags=["\\Draft"], internal_date=when)
    assert chunks(cmd) == (
        b'A0001 APPEND "Drafts" (\\Draft) " 5-Jul-2025 09:03:00 +0200" {18}\r\n',
        b"Subject: x\r\n\r\nhi\r\n\r\n",
    )


def test_append_date_negative_offset_and_naive_rejected() -> None:
    when = datetime(2024, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=5, minutes=30)))
    assert b'"31-Dec-2024 23:59:59 -0530"' in chunks(c.append("INBOX", b"", internal_date=when))[0]
    with pytest.raises(CommandError):
        c.append("INBOX", b"x", internal_date=datetime(2024, 1, 1))


def test_literal_rejects_nul() -> None:
    with pytest.raises(CommandError):
        Literal(b"a\x00b")
    with pytest.raises(CommandError):
        c.login("alice", "a\x00b")


# --------------------------------------------------------------------------- AUTHENTICATE


def test_authenticate_with_sasl_ir() -> None:
    context = EncodingContext(frozenset({"SASL-IR"}))
    cmd = c.authenticate("PLAIN", b"\x00alice\x00secret")
    assert chunks(cmd, context) == (b"A0001 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",)
    assert chunks(c.authenticate("EXTERNAL", b""), context) == (
        b"A0001 AUTHENTICATE EXTERNAL =\r\n",
    )


def test_authenticate_without_sasl_ir_waits_for_continuation() -> None:
    cmd = c.authenticate("PLAIN", b"\x00alice\x00secret")
    assert chunks(cmd) == (b"A0001 AUTHENTICATE PLAIN\r\n", b"AGFsaWNlAHNlY3JldA==\r\n")
    assert chunks(c.authenticate("XOAUTH2")) == (b"A0001 AUTHENTICATE XOAUTH2\r\n",)


def test_sasl_lines() -> None:
    assert c.sasl_response(b"abc") == b"YWJj\r\n"
    assert c.SASL_CANCEL == b"*\r\n"


# --------------------------------------------------------------------------- strings and mailboxes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", [b'"plain"']),
        ("", [b'""']),
        ('say "hi"', [b'"say \\"hi\\""']),
        ("back\\slash", [b'"back\\\\slash"']),
        ("line\nbreak", [b"{10}\r\n", b"line\nbreak"]),
        ("cr\r", [b"{3}\r\n", b"cr\r"]),
        ("naïve", [b"{6}\r\n", "naïve".encode()]),
        (b"\xff\xfe", [b"{2}\r\n", b"\xff\xfe"]),
    ],
)
def test_string_quoting(value: str | bytes, expected: list[bytes]) -> None:
    encoded = b"".join(chunks(Command("X", (String(value),))))
    assert encoded == b"A0001 X " + b"".join(expected) + b"\r\n"


def test_utf8_mode_quotes_8bit_but_not_invalid_utf8() -> None:
    assert line(Command("X", (String("naïve"),)), UTF8) == 'A0001 X "naïve"\r\n'.encode()
    assert chunks(Command("X", (String(b"\xff"),)), UTF8) == (b"A0001 X {1}\r\n", b"\xff\r\n")


def test_mailbox_modified_utf7_and_utf8() -> None:
    name = "~peter/mail/台北/日本語"
    assert line(c.select(name)) == b'A0001 SELECT "~peter/mail/&U,BTFw-/&ZeVnLIqe-"\r\n'
    assert line(c.select(name), UTF8) == f'A0001 SELECT "{name}"\r\n'.encode()
    assert line(c.create("R&D")) == b'A0001 CREATE "R&-D"\r\n'
    assert line(c.create("R&D"), UTF8) == b'A0001 CREATE "R&D"\r\n'


@pytest.mark.parametrize("name", ["INBOX", "inbox", "InBoX"])
def test_inbox_is_case_insensitive(name: str) -> None:
    assert line(c.select(name)) == b"A0001 SELECT INBOX\r\n"
    assert line(c.select(name), UTF8) == b"A0001 SELECT INBOX\r\n"


def test_inbox_children_keep_their_case() -> None:
    assert line(c.select("inbox/Sub")) == b'A0001 SELECT "inbox/Sub"\r\n'


def test_mailbox_with_line_break_in_utf8_mode_is_a_literal() -> None:
    assert chunks(c.select("a\nb"), UTF8) == (b"A0001 SELECT {3}\r\n", b"a\nb\r\n")
    assert line(c.select("a\nb")) == b'A0001 SELECT "a&AAo-b"\r\n'


# --------------------------------------------------------------------------- sequence sets


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        ([1, 2, 3, 5, 7, 8, 9], b"1:3,5,7:9"),
        ([9, 8, 7, 5, 3, 2, 1, 1], b"1:3,5,7:9"),
        ([42], b"42"),
        ([4294967295], b"4294967295"),
    ],
)
def test_sequence_set_compact(numbers: list[int], expected: bytes) -> None:
    assert SequenceSet.of(numbers).to_bytes() == expected


def test_sequence_set_star_and_errors() -> None:
    assert SequenceSet.span(1).to_bytes() == b"1:*"
    assert SequenceSet.span(3, 7).to_bytes() == b"3:7"
    for bad in ([], [0], [-1], [2**32]):
        with pytest.raises(CommandError):
            SequenceSet.of(bad)


def _expand(sets: list[SequenceSet]) -> list[int]:
    out: list[int] = []
    for seq in sets:
        for start, end in seq.ranges:
            assert end is not None
            out.extend(range(start, end + 1))
    return out


@given(
    st.lists(st.integers(min_value=1, max_value=5000), max_size=400),
    st.integers(min_value=10, max_value=200),
)
def test_split_covers_every_uid_once_within_limit(uids: list[int], max_len: int) -> None:
    sets = split_sequence_set(uids, max_len)
    assert all(len(seq.to_bytes()) <= max_len for seq in sets)
    assert _expand(sets) == sorted(set(uids))


def test_split_default_fits_a_command_line() -> None:
    uids = list(range(1, 200_000, 2))  # no two adjacent: worst case for compaction
    sets = split_sequence_set(uids)
    assert len(sets) > 1
    for seq in sets:
        assert len(line(c.uid_fetch(seq, ["FLAGS"]))) <= c.MAX_COMMAND_LINE_LENGTH


def test_split_refuses_impossible_limit() -> None:
    with pytest.raises(CommandError):
        split_sequence_set([123456], 5)


def test_command_line_limit_is_enforced() -> None:
    uids = SequenceSet.of(range(1, 20_000, 2))
    with pytest.raises(CommandError, match="8192"):
        encode(c.uid_fetch(uids, ["FLAGS"]), "A0001", PLAIN)


def test_command_line_limit_excludes_literals() -> None:
    big = b"z" * 100_000
    assert chunks(c.append("INBOX", big))[1] == big + b"\r\n"


# --------------------------------------------------------------------------- injection

INJECTION = "a\r\nA2 LOGOUT"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Atom(INJECTION),
        lambda: Flag(INJECTION),
        lambda: Flag("\\" + INJECTION),
        lambda: Raw(INJECTION),
        lambda: Raw("BODY[] {5}"),
        lambda: c.enable(INJECTION),
        lambda: c.uid_store(SequenceSet.of([1]), "+", [INJECTION]),
        lambda: c.uid_fetch(SequenceSet.of([1]), [INJECTION]),
        lambda: c.status("INBOX", [INJECTION]),
        lambda: c.authenticate(INJECTION),
        lambda: c.uid_search([Atom("ALL")], charset=INJECTION),
        lambda: Command(INJECTION),
        lambda: c.uid_store(SequenceSet.of([1]), "\r\n", []),
        lambda: encode(c.noop(), INJECTION, PLAIN),
    ],
)
def test_injection_is_refused(build: Callable[[], object]) -> None:
    with pytest.raises(CommandError):
        build()


@pytest.mark.parametrize("context", [PLAIN, LITERAL_PLUS, UTF8])
def test_injection_in_strings_becomes_a_literal(context: EncodingContext) -> None:
    encoded = encode(c.login(INJECTION, "x"), "A0001", context)
    joined = b"".join(encoded.chunks)
    assert b'"a\r\n' not in joined
    assert re.match(rb"A0001 LOGIN \{12\+?\}\r\na\r\nA2 LOGOUT \"x\"\r\n$", joined)


def _logical_lines(chunk_list: tuple[bytes, ...]) -> int:
    """Count command lines the way a server reads them, skipping announced literals."""
    data = b"".join(chunk_list)
    count = 0
    while data:
        end = data.index(b"\r\n")
        current, data = data[:end], data[end + 2 :]
        assert b"\r" not in current
        assert b"\n" not in current
        match = re.search(rb"\{([0-9]+)\+?\}$", current)
        if match:
            size = int(match.group(1))
            assert len(data) >= size
            data = data[size:]  # the literal, then the same command goes on
        else:
            count += 1
    return count


# Bias towards the characters that matter for framing; any other text too.
_TEXT = st.text(
    st.sampled_from('\r\n"\\{}+*%() &é') | st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=20,
)


@given(
    user=_TEXT,
    password=_TEXT,
    mailbox=_TEXT,
    message=st.binary(max_size=50).filter(lambda b: b"\x00" not in b),
    context=st.sampled_from([PLAIN, LITERAL_PLUS, LITERAL_MINUS, UTF8]),
)
def test_no_argument_produces_a_bare_crlf(
    user: str, password: str, mailbox: str, message: bytes, context: EncodingContext
) -> None:
    commands = [
        c.login(user, password),
        c.select(mailbox),
        c.list_(mailbox, user),
        c.append(mailbox, message),
        c.uid_search([Atom("SUBJECT"), String(password)]),
    ]
    for command in commands:
        encoded = encode(command, "A0001", context)
        # Read as a server would, the bytes hold exactly one command line.
        assert encoded.chunks[0].startswith(b"A0001 ")
        assert _logical_lines(encoded.chunks) == 1
        # Every chunk but the last ends with a synchronising literal announcement.
        for chunk in encoded.chunks[:-1]:
            assert re.search(rb"\{[0-9]+\}\r\n$", chunk)
        assert encoded.chunks[-1].endswith(b"\r\n")


def test_paren_list_nests_and_ints_are_checked() -> None:
    cmd = Command("X", (ParenList((Atom("A"), ParenList((1, Mailbox("INBOX"))))),))
    assert line(cmd) == b"A0001 X (A (1 INBOX))\r\n"
    for bad in (-1, 2**63, True):
        with pytest.raises(CommandError):
            encode(Command("X", (bad,)), "A0001", PLAIN)


def test_id_limits() -> None:
    with pytest.raises(CommandError):
        c.id_({"x" * 31: "v"})
    with pytest.raises(CommandError):
        c.id_({"k": "v" * 1025})
    with pytest.raises(CommandError):
        c.id_({f"k{i}": "v" for i in range(31)})


def test_builders_refuse_empty_or_invalid_input() -> None:
    with pytest.raises(CommandError):
        c.enable()
    with pytest.raises(CommandError):
        c.uid_fetch(SequenceSet.of([1]), [])
    with pytest.raises(CommandError):
        c.uid_fetch(SequenceSet.of([1]), ["FLAGS"], vanished=True)
    with pytest.raises(CommandError):
        c.uid_search([])
    with pytest.raises(CommandError):
        Command("X", (c.SaslResponse(b""), Atom("Y")))


def test_utc_date_time() -> None:
    when = datetime(2024, 1, 15, 8, 0, 0, tzinfo=UTC)
    assert c.DateTime(when).to_bytes() == b'"15-Jan-2024 08:00:00 +0000"'
