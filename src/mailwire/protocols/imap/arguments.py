"""Typed arguments of IMAP commands and their validation (RFC 3501 sections 4 and 9).

Every argument type checks its value when it is built (atoms, flags, tags,
quoted strings, literals, mailbox names, sequence sets, date-times), so no
argument can carry CR, LF or NUL outside a literal. Sequence sets are written
in compact form and split to keep command lines under the RFC 7162 limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from mailwire.protocols.imap.errors import CommandError

#: RFC 7162 section 4: clients should keep command lines under 8192 octets
#: (literals excluded); this counts every non-literal octet of a command.
MAX_COMMAND_LINE_LENGTH = 8192
#: RFC 7888 section 5: LITERAL- allows non-synchronising literals up to 4096 octets.
LITERAL_MINUS_MAX = 4096
#: Room left for the tag, the command name and the other arguments when a
#: UID set is split to fit `MAX_COMMAND_LINE_LENGTH`.
DEFAULT_SEQUENCE_SET_LENGTH = MAX_COMMAND_LINE_LENGTH - 1024
#: RFC 3501 section 9: nz-number and uniqueid are 32-bit.
MAX_NZ_NUMBER = 2**32 - 1
#: RFC 7162 section 7: mod-sequence values are 63-bit.
MAX_NUMBER = 2**63 - 1
#: RFC 2971 section 3.3: at most 30 field-value pairs, fields of at most 30
#: octets and values of at most 1024 octets.
ID_MAX_PAIRS = 30
ID_MAX_FIELD = 30
ID_MAX_VALUE = 1024

# RFC 3501 section 9: ATOM-CHAR is any CHAR except atom-specials, i.e. "(" ")" "{"
# SP CTL list-wildcards ("%" "*") quoted-specials ('"' "\") and resp-specials ("]").
_ATOM_SPECIALS = frozenset(b'(){%*"\\]')
_ATOM_CHARS = frozenset(byte for byte in range(0x21, 0x7F) if byte not in _ATOM_SPECIALS)
# RFC 3501 section 9: tag = 1*<any ASTRING-CHAR except "+">; ASTRING-CHAR adds "]".
TAG_CHARS = (_ATOM_CHARS | {ord("]")}) - {ord("+")}
FORBIDDEN_OUTSIDE_LITERAL = frozenset(b"\r\n\x00")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LITERAL_ANNOUNCEMENT = re.compile(rb"\{[0-9]+\+?\}$")


def _is_atom(value: bytes) -> bool:
    return bool(value) and all(byte in _ATOM_CHARS for byte in value)


# --------------------------------------------------------------------------- arguments


@dataclass(frozen=True)
class Atom:
    """An atom (RFC 3501 section 9: 1*ATOM-CHAR), e.g. a command keyword or NIL."""

    value: str

    def __post_init__(self) -> None:
        if not self.value.isascii() or not _is_atom(self.value.encode("ascii")):
            raise CommandError(f"not an IMAP atom: {self.value!r}")


@dataclass(frozen=True)
class Flag:
    """A flag: a system flag such as `\\Seen` or a keyword atom (RFC 3501 section 9)."""

    value: str

    def __post_init__(self) -> None:
        name = self.value.removeprefix("\\")
        if not name.isascii() or not _is_atom(name.encode("ascii")):
            raise CommandError(f"not an IMAP flag: {self.value!r}")


@dataclass(frozen=True)
class String:
    """A string: quoted when it can be (RFC 3501 section 4.3), else a literal.

    A quoted string holds no CR, LF or NUL and, unless UTF8=ACCEPT is enabled
    (RFC 6855 section 3), no 8-bit octet. NUL is refused in both forms
    (a literal is CHAR8, which excludes NUL).
    """

    value: str | bytes

    def __post_init__(self) -> None:
        if b"\x00" in self.data:
            raise CommandError("a string cannot contain NUL")

    @property
    def data(self) -> bytes:
        return self.value.encode("utf-8") if isinstance(self.value, str) else self.value


@dataclass(frozen=True)
class Literal:
    """An explicit literal (RFC 3501 section 4.3), e.g. the message of APPEND."""

    data: bytes

    def __post_init__(self) -> None:
        if b"\x00" in self.data:
            raise CommandError("a literal cannot contain NUL (CHAR8 excludes it)")


@dataclass(frozen=True)
class Mailbox:
    """A mailbox name or LIST pattern (RFC 3501 section 5.1).

    Any case of "INBOX" is sent as `INBOX` (it is case-insensitive, section
    5.1). Other names are modified UTF-7 (section 5.1.3) or, once UTF8=ACCEPT
    is enabled, UTF-8 (RFC 6855 section 3), as a string.
    """

    name: str

    def __post_init__(self) -> None:
        if "\x00" in self.name:
            raise CommandError("a mailbox name cannot contain NUL")


@dataclass(frozen=True)
class SequenceSet:
    """A sequence set (RFC 3501 section 9) as sorted, merged ranges; `None` stands for "*"."""

    ranges: tuple[tuple[int, int | None], ...]

    def __post_init__(self) -> None:
        if not self.ranges:
            raise CommandError("a sequence set cannot be empty")
        for start, end in self.ranges:
            for number in (start, end):
                if number is not None and not (
                    type(number) is int and 1 <= number <= MAX_NZ_NUMBER
                ):
                    raise CommandError(f"not a nz-number: {number!r}")

    @classmethod
    def of(cls, numbers: Iterable[int]) -> SequenceSet:
        """The compact set of `numbers`, e.g. 1, 2, 3, 5, 7, 8, 9 -> `1:3,5,7:9`."""
        ranges: list[tuple[int, int | None]] = []
        for number in sorted(set(numbers)):
            if ranges:
                start, end = ranges[-1]
                if end is not None and number == end + 1:
                    ranges[-1] = (start, number)
                    continue
            ranges.append((number, number))
        return cls(tuple(ranges))

    @classmethod
    def span(cls, start: int, end: int | None = None) -> SequenceSet:
        """`start:end`, or `start:*` when `end` is None."""
        return cls(((start, end),))

    def to_bytes(self) -> bytes:
        parts = []
        for start, end in self.ranges:
            last = "*" if end is None else str(end)
            parts.append(str(start) if last == str(start) else f"{start}:{last}")
        return ",".join(parts).encode("ascii")


@dataclass(frozen=True)
class ParenList:
    """A parenthesised list of arguments, e.g. a flag list."""

    items: tuple[Arg, ...]


@dataclass(frozen=True)
class Raw:
    """A pre-validated fragment written as is, e.g. `BODY.PEEK[HEADER]`.

    It must be printable ASCII and must not end in "}", so that it can never
    announce a literal nor end the line.
    """

    value: str

    def __post_init__(self) -> None:
        if not self.value or not all(0x20 <= ord(char) <= 0x7E for char in self.value):
            raise CommandError(f"not a printable ASCII fragment: {self.value!r}")
        if self.value.endswith("}"):
            raise CommandError(f"a raw fragment cannot end in '}}': {self.value!r}")


@dataclass(frozen=True)
class DateTime:
    """An APPEND date-time (RFC 3501 section 9), e.g. `" 5-Jul-2025 09:03:00 +0200"`."""

    value: datetime

    def __post_init__(self) -> None:
        if self.value.utcoffset() is None:
            raise CommandError("an IMAP date-time needs a time zone")

    def to_bytes(self) -> bytes:
        moment = self.value
        offset = moment.utcoffset()
        assert offset is not None  # checked in __post_init__
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
        text = (
            f'"{moment.day:2d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} '
            f'{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {zone}"'
        )
        return text.encode("ascii")


@dataclass(frozen=True)
class SaslResponse:
    """A SASL initial response (RFC 4959 SASL-IR; RFC 3501 section 6.2.2).

    With SASL-IR it is inlined in BASE64 ("=" when empty); without it, it
    becomes the next chunk, sent after the server's first continuation.
    It must be the last argument.
    """

    data: bytes = field(repr=False)


Arg = Atom | Flag | String | Literal | Mailbox | SequenceSet | ParenList | Raw | DateTime | int
NIL = Atom("NIL")


# --------------------------------------------------------------------------- sequence sets


def split_sequence_set(
    numbers: Iterable[int], max_len: int = DEFAULT_SEQUENCE_SET_LENGTH
) -> list[SequenceSet]:
    """Split `numbers` into compact sets whose text is at most `max_len` octets each.

    Every number lands in exactly one set; sets are in ascending order.
    """
    unique = set(numbers)
    ranges = SequenceSet.of(unique).ranges if unique else ()
    sets: list[SequenceSet] = []
    batch: list[tuple[int, int | None]] = []
    length = 0
    for item in ranges:
        size = len(SequenceSet((item,)).to_bytes())
        if size > max_len:
            raise CommandError(f"a sequence set cannot fit in {max_len} octets")
        added = size + (1 if batch else 0)
        if batch and length + added > max_len:
            sets.append(SequenceSet(tuple(batch)))
            batch, length, added = [], 0, size
        batch.append(item)
        length += added
    if batch:
        sets.append(SequenceSet(tuple(batch)))
    return sets
