"""Builders added for mailbox operations: UNSELECT and Gmail's X-GM-LABELS STORE."""

from __future__ import annotations

import pytest

from mailwire.protocols.imap import commands as c
from mailwire.protocols.imap.commands import EncodingContext, SequenceSet, encode
from mailwire.protocols.imap.errors import CommandError

PLAIN = EncodingContext()


def wire(command: c.Command, context: EncodingContext = PLAIN) -> tuple[bytes, ...]:
    return encode(command, "A0001", context).chunks


def test_unselect() -> None:
    assert wire(c.unselect()) == (b"A0001 UNSELECT\r\n",)


@pytest.mark.parametrize(
    ("mode", "silent", "item"),
    [
        ("+", False, b"+X-GM-LABELS"),
        ("-", False, b"-X-GM-LABELS"),
        ("", False, b"X-GM-LABELS"),
        ("+", True, b"+X-GM-LABELS.SILENT"),
    ],
)
def test_gmail_labels_store_modes(mode: str, silent: bool, item: bytes) -> None:
    command = c.uid_store_gmail_labels(SequenceSet.of([1, 2, 3, 7]), mode, ["Work"], silent=silent)
    assert wire(command) == (b"A0001 UID STORE 1:3,7 " + item + b' ("Work")\r\n',)


def test_gmail_labels_are_quoted_strings() -> None:
    command = c.uid_store_gmail_labels(
        SequenceSet.of([5]), "+", ["\\Important", 'Two "words"', "Projects/Q1"]
    )
    assert wire(command) == (
        b'A0001 UID STORE 5 +X-GM-LABELS ("\\\\Important" "Two \\"words\\"" "Projects/Q1")\r\n',
    )


def test_gmail_label_with_8bit_text_is_a_literal() -> None:
    command = c.uid_store_gmail_labels(SequenceSet.of([5]), "+", ["Café"])
    assert wire(command) == (b"A0001 UID STORE 5 +X-GM-LABELS ({5}\r\n", "Café)\r\n".encode())


@pytest.mark.parametrize("label", ["", "a\r\nA0002 LOGOUT", "nul\x00", "x" * 1025])
def test_gmail_label_injection_and_length_are_refused(label: str) -> None:
    with pytest.raises(CommandError):
        c.uid_store_gmail_labels(SequenceSet.of([1]), "+", [label])


def test_gmail_labels_unknown_mode() -> None:
    with pytest.raises(CommandError):
        c.uid_store_gmail_labels(SequenceSet.of([1]), "*", ["Work"])
