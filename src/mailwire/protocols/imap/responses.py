"""Frozen values and events produced by `parser.ResponseParser`.

Strings a later layer must decode (envelope fields, mailbox names, body data)
stay raw `bytes`; human text and keywords (flags, capabilities, response
codes) are `str`. Values nobody modelled yet keep the lexer's generic tree
(`lexer.Value`) so unknown data never makes parsing fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from mailwire.protocols.imap.errors import ProtocolError
from mailwire.protocols.imap.lexer import Value, parse_number, snippet

# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """`sequence-set` (RFC 3501 section 9) as ranges; `None` stands for `*`.

    Each range is `(low, high)` with `low <= high`; `*` sorts last, so `5:*`
    and `*:5` are both `(5, None)` and a lone `*` is `(None, None)`.
    """

    ranges: tuple[tuple[int | None, int | None], ...]

    @classmethod
    def parse(cls, raw: bytes) -> SequenceSet:
        """`sequence-set` = (seq-number / seq-range) *("," sequence-set)."""
        if not raw:
            raise ProtocolError("empty sequence set")
        ranges: list[tuple[int | None, int | None]] = []
        for part in raw.split(b","):
            lo_raw, colon, hi_raw = part.partition(b":")
            lo = None if lo_raw == b"*" else parse_number(lo_raw)
            hi = lo if not colon else None if hi_raw == b"*" else parse_number(hi_raw)
            if lo is None or (hi is not None and hi < lo):
                lo, hi = hi, lo
            if lo == 0 or hi == 0:
                raise ProtocolError(f"zero in sequence set {snippet(raw)}")
            ranges.append((lo, hi))
        return cls(tuple(ranges))

    def __str__(self) -> str:
        def one(n: int | None) -> str:
            return "*" if n is None else str(n)

        return ",".join(one(lo) if lo == hi else f"{one(lo)}:{one(hi)}" for lo, hi in self.ranges)

    def expand(self, largest: int) -> Iterator[int]:
        """Every number in the set, reading `*` as `largest`."""
        for lo, hi in self.ranges:
            start = largest if lo is None else lo
            stop = largest if hi is None else hi
            yield from range(min(start, stop), max(start, stop) + 1)


@dataclass(frozen=True, slots=True)
class Address:
    """`address` (RFC 3501 section 7.4.2, ENVELOPE); a NIL host marks group syntax."""

    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None


@dataclass(frozen=True, slots=True)
class Envelope:
    """`envelope` (RFC 3501 section 7.4.2); RFC 2047 decoding is left to a later layer."""

    date: bytes | None
    subject: bytes | None
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    in_reply_to: bytes | None
    message_id: bytes | None


@dataclass(frozen=True, slots=True)
class Disposition:
    """`body-fld-dsp` (RFC 3501 section 9): type and parameters."""

    type: str
    params: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class SinglePart:
    """`body-type-1part` (RFC 3501 section 9): basic, text or message/rfc822."""

    type: str
    subtype: str
    params: tuple[tuple[str, bytes | None], ...]
    id: bytes | None
    description: bytes | None
    encoding: str | None
    size: int
    lines: int | None = None
    envelope: Envelope | None = None
    body: BodyStructure | None = None
    md5: bytes | None = None
    disposition: Disposition | None = None
    language: tuple[bytes, ...] = ()
    location: bytes | None = None
    extension: tuple[Value, ...] = ()


@dataclass(frozen=True, slots=True)
class Multipart:
    """`body-type-mpart` (RFC 3501 section 9)."""

    parts: tuple[BodyStructure, ...]
    subtype: str
    params: tuple[tuple[str, bytes | None], ...] = ()
    disposition: Disposition | None = None
    language: tuple[bytes, ...] = ()
    location: bytes | None = None
    extension: tuple[Value, ...] = ()


BodyStructure: TypeAlias = "SinglePart | Multipart"


@dataclass(frozen=True, slots=True)
class BodySection:
    """`BODY[section]<origin>` or `BINARY[section]` data (RFC 3501 7.4.2, RFC 3516 4.2)."""

    kind: str  # "BODY" or "BINARY" (or "BINARY.SIZE")
    section: str
    origin: int | None
    data: bytes | None


@dataclass(frozen=True, slots=True)
class Fetch:
    """`* n FETCH (...)` (RFC 3501 section 7.4.2); absent items are None or empty."""

    seq: int
    uid: int | None = None
    flags: tuple[str, ...] | None = None
    rfc822_size: int | None = None
    internaldate: datetime | None = None
    modseq: int | None = None  # RFC 7162 section 3.1.4
    envelope: Envelope | None = None
    bodystructure: BodyStructure | None = None
    sections: tuple[BodySection, ...] = ()
    x_gm_msgid: int | None = None
    x_gm_thrid: int | None = None
    x_gm_labels: tuple[bytes, ...] | None = None
    email_id: str | None = None  # RFC 8474 section 5.1
    thread_id: str | None = None  # None for NIL as well as absent
    other: tuple[tuple[str, Value], ...] = ()

    def section(self, kind_and_section: str) -> BodySection | None:
        """The first section named like `BODY[HEADER]` (origin ignored)."""
        for s in self.sections:
            if f"{s.kind}[{s.section}]" == kind_and_section:
                return s
        return None


# --------------------------------------------------------------------------- response codes


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """`resp-text-code` (RFC 3501 section 7.1, RFC 9051 section 7.1).

    `number` is set for UIDVALIDITY, UIDNEXT, UNSEEN, HIGHESTMODSEQ;
    `items` for PERMANENTFLAGS, CAPABILITY, BADCHARSET; `uidvalidity` and
    `source`/`destination` for APPENDUID and COPYUID (RFC 4315 section 3,
    `source` empty for APPENDUID). Other codes keep their argument as `raw`.
    """

    name: str
    raw: bytes | None = None
    number: int | None = None
    items: tuple[str, ...] = ()
    uidvalidity: int | None = None
    source: SequenceSet | None = None
    destination: SequenceSet | None = None


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Greeting:
    """`greeting` (RFC 3501 section 7.1): OK, PREAUTH or BYE."""

    status: str
    code: ResponseCode | None
    text: str


@dataclass(frozen=True, slots=True)
class Tagged:
    """`response-tagged` (RFC 3501 section 7.1)."""

    tag: str
    status: str
    code: ResponseCode | None
    text: str


@dataclass(frozen=True, slots=True)
class Continuation:
    """`continue-req` (RFC 3501 section 7.5); `text` may be base64 during AUTHENTICATE."""

    text: str


@dataclass(frozen=True, slots=True)
class UntaggedStatus:
    """`* OK/NO/BAD/BYE/PREAUTH [code] text` (RFC 3501 section 7.1)."""

    status: str
    code: ResponseCode | None
    text: str


@dataclass(frozen=True, slots=True)
class Capability:
    """`* CAPABILITY` (RFC 3501 section 7.2.1), names upper-cased."""

    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Enabled:
    """`* ENABLED` (RFC 5161 section 3.2)."""

    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Exists:
    """`* n EXISTS` (RFC 3501 section 7.3.1)."""

    count: int


@dataclass(frozen=True, slots=True)
class Recent:
    """`* n RECENT` (RFC 3501 section 7.3.2)."""

    count: int


@dataclass(frozen=True, slots=True)
class Expunge:
    """`* n EXPUNGE` (RFC 3501 section 7.4.1)."""

    seq: int


@dataclass(frozen=True, slots=True)
class Flags:
    """`* FLAGS (...)` (RFC 3501 section 7.2.6)."""

    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListMailbox:
    """`* LIST` / `* LSUB` (RFC 3501 sections 7.2.2, 7.2.3); the name is undecoded."""

    kind: str
    attributes: tuple[str, ...]
    delimiter: bytes | None
    name: bytes
    extended: tuple[Value, ...] = ()  # RFC 5258 mbox-list-extended, kept raw


@dataclass(frozen=True, slots=True)
class Status:
    """`* STATUS mailbox (...)` (RFC 3501 section 7.2.4), attribute names upper-cased."""

    mailbox: bytes
    attributes: tuple[tuple[str, int], ...]

    def get(self, name: str) -> int | None:
        return dict(self.attributes).get(name.upper())


@dataclass(frozen=True, slots=True)
class Search:
    """`* SEARCH n...` (RFC 3501 section 7.2.5), with `(MODSEQ n)` (RFC 7162 section 3.1.5)."""

    numbers: tuple[int, ...]
    modseq: int | None = None


@dataclass(frozen=True, slots=True)
class ESearch:
    """`* ESEARCH` (RFC 4731 section 3.1); unknown return items kept in `other`."""

    tag: str | None
    uid: bool
    min: int | None = None
    max: int | None = None
    count: int | None = None
    all: SequenceSet | None = None
    modseq: int | None = None
    other: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True, slots=True)
class Vanished:
    """`* VANISHED [(EARLIER)] uid-set` (RFC 7162 section 3.2.10)."""

    earlier: bool
    uids: SequenceSet


@dataclass(frozen=True, slots=True)
class UnknownUntagged:
    """Any other untagged response, kept raw so new extensions never break a session."""

    keyword: str
    number: int | None
    raw: bytes


Untagged: TypeAlias = (
    "UntaggedStatus | Capability | Enabled | Exists | Recent | Expunge | Flags"
    " | ListMailbox | Status | Search | ESearch | Vanished | Fetch | UnknownUntagged"
)
Event: TypeAlias = "Greeting | Tagged | Continuation | Untagged"

__all__ = [
    "Address",
    "BodySection",
    "BodyStructure",
    "Capability",
    "Continuation",
    "Disposition",
    "ESearch",
    "Enabled",
    "Envelope",
    "Event",
    "Exists",
    "Expunge",
    "Fetch",
    "Flags",
    "Greeting",
    "ListMailbox",
    "Multipart",
    "Recent",
    "ResponseCode",
    "Search",
    "SequenceSet",
    "SinglePart",
    "Status",
    "Tagged",
    "UnknownUntagged",
    "Untagged",
    "UntaggedStatus",
    "Value",
    "Vanished",
]
