"""Header fields as mail carries them: folded lines, encoded words, address lists.

- Fields (RFC 5322 section 2.2): a line starting with a blank continues the
  field above it; unfolding (section 2.2.3) removes the line breaks and keeps
  the blanks. Bytes outside ASCII (RFC 6532 allows UTF-8; older mailers send
  their local 8-bit charset) are read by `charsets.decode_text`.
- Encoded words (RFC 2047): `=?charset?B|Q?text?=`. Blanks between two
  adjacent encoded words are dropped (section 6.2), and adjacent words in the
  same charset are joined as bytes before decoding, because senders split a
  multi-byte character across two words. Words inside quoted strings are
  decoded too: the rule against it (section 5) is broken by common mailers.
- Addresses (RFC 5322 section 3.4) are split by the standard library and
  their display names decoded here; group markers and empty entries drop out.

`Headers` keeps every field in order with its raw unfolded value, which is
what the REST API shows under `headers`; decoding is asked for explicitly.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from mailwire.protocols.mime.charsets import decode_text
from mailwire.protocols.mime.decode import decode_transfer

#: Header bytes read per entity. Real headers reach tens of KiB (long Received
#: chains, DKIM, big recipient lists); past this the rest is ignored, so a hostile
#: message cannot make one header block cost more than this to parse.
MAX_HEADER_BYTES: Final = 512 * 1024
#: Fields kept per entity; later fields are ignored, for the same reason.
MAX_HEADER_FIELDS: Final = 4096

_WORD: Final = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=")
_BLANKS_ONLY: Final = re.compile(r"[ \t\r\n]*")
_Q_ESCAPE: Final = re.compile(rb"=([0-9A-Fa-f]{2})")
_MESSAGE_ID: Final = re.compile(r"<[^<>\s]*>")


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: an optional display name and the address itself."""

    address: str
    name: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The REST shape: `{"name": ..., "address": ...}` (name only when present)."""
        return (
            {"name": self.name, "address": self.address} if self.name else {"address": self.address}
        )


@dataclass(frozen=True, slots=True)
class Headers:
    """Fields in message order: (lowercase name, unfolded value, encoded words left as sent)."""

    fields: tuple[tuple[str, str], ...] = ()
    #: True when fields were dropped for `MAX_HEADER_BYTES` or `MAX_HEADER_FIELDS`.
    truncated: bool = False

    def get(self, name: str) -> str | None:
        """The first value of `name` (case-insensitive), or None."""
        name = name.lower()
        return next((value for key, value in self.fields if key == name), None)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.fields if key == name]

    def text(self, name: str) -> str | None:
        """The first value of `name` with its encoded words decoded."""
        value = self.get(name)
        return None if value is None else decode_words(value)

    def as_dict(self) -> dict[str, list[str]]:
        """The REST `headers` object: lowercase name -> every value, in order."""
        result: dict[str, list[str]] = {}
        for key, value in self.fields:
            result.setdefault(key, []).append(value)
        return result

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.fields)


def parse_fields(block: bytes) -> Headers:
    """The fields of one header block (the bytes before the blank line)."""
    truncated = len(block) > MAX_HEADER_BYTES
    block = block[:MAX_HEADER_BYTES]
    fields: list[tuple[str, list[bytes]]] = []
    for line in block.splitlines():
        if line[:1] in (b" ", b"\t"):
            if fields:
                fields[-1][1].append(line)
            continue  # a continuation with nothing to continue: dropped
        name, colon, value = line.partition(b":")
        name = name.strip()
        if not colon or not name:
            continue  # not a field (an mbox "From " line, garbage): dropped
        if len(fields) >= MAX_HEADER_FIELDS:
            truncated = True
            break
        fields.append((decode_text(name).lower(), [value]))
    return Headers(
        tuple((name, decode_text(b"".join(pieces)).strip()) for name, pieces in fields),
        truncated,
    )


def decode_words(value: str) -> str:
    """`value` with its RFC 2047 encoded words decoded. Never raises."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    position = 0
    for match in _WORD.finditer(value):
        between = value[position : match.start()]
        adjacent = bool(pending) and _BLANKS_ONLY.fullmatch(between) is not None
        charset = match[1].lower()
        if not adjacent or charset != pending_charset:
            if pending:
                out.append(decode_text(b"".join(pending), pending_charset))
                pending = []
            if not adjacent:
                out.append(between)
        pending.append(_word_bytes(match[2], match[3]))
        pending_charset = charset
        position = match.end()
    if pending:
        out.append(decode_text(b"".join(pending), pending_charset))
    out.append(value[position:])
    return "".join(out)


def _word_bytes(kind: str, text: str) -> bytes:
    data = text.encode("ascii", "replace")
    if kind in "Bb":
        return decode_transfer(data, "base64")
    return _Q_ESCAPE.sub(lambda m: bytes.fromhex(m[1].decode()), data.replace(b"_", b" "))


def parse_addresses(value: str | None) -> tuple[Address, ...]:
    """The mailboxes of an address-list field value (raw, encoded words still in it)."""
    if not value:
        return ()
    try:
        pairs = email.utils.getaddresses([value])
    except (ValueError, IndexError, TypeError):  # pragma: no cover - defensive
        return ()
    result = []
    for name, found in pairs:
        address = found.strip()
        if not address:
            continue
        shown = " ".join(decode_words(name).split())
        result.append(Address(address, shown or None))
    return tuple(result)


def message_ids(value: str | None) -> tuple[str, ...]:
    """The `<id>` tokens of a Message-ID, In-Reply-To or References value, in order."""
    return tuple(_MESSAGE_ID.findall(value)) if value else ()


def parse_date(value: str | None) -> datetime | None:
    """A Date value (RFC 5322 section 3.3) as an aware datetime; None when unreadable."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None
