"""Incremental content-transfer-encoding decoders (RFC 2045 section 6), sans-io.

A part's body may arrive in slices (IMAP partial fetches, RFC 3501 section
6.4.5 `BODY[n]<start.length>`), cut anywhere: inside a base64 quantum, inside
a quoted-printable `=XX` escape, between the `=` of a soft line break and its
line end. A `TransferDecoder` takes those slices with `feed(chunk) -> bytes`
and holds back only the few bytes whose meaning depends on what follows;
`finish()` flushes them. Decoding in any number of slices gives the same
bytes as decoding the whole body at once (a hypothesis test checks this).

Broken input is decoded as far as it goes, never refused:
- base64 (section 6.8): characters outside the alphabet are skipped; `=`
  ends a quantum, so concatenated encodings decode piece by piece; a final
  quantum of 2 or 3 characters is decoded as if padded, a lone one dropped;
- quoted-printable (section 6.7): `=XX` in either case is an octet, an `=`
  not followed by two hex digits stays literal, trailing blanks on a line are
  transport padding and dropped (rule 3), `=` at the end of a line joins it to
  the next (rule 5); line ends are kept as they came (CRLF or LF);
- 7bit, 8bit, binary and unknown encodings pass through unchanged.
"""

from __future__ import annotations

import binascii
import re
from typing import Final

_B64_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: Every byte that is neither a base64 digit nor the pad character, for bytes.translate.
_B64_JUNK: Final = bytes(b for b in range(256) if b not in _B64_ALPHABET + b"=")
_QP_ESCAPE: Final = re.compile(rb"=([0-9A-Fa-f]{2})")
_BLANKS: Final = b" \t"


class TransferDecoder:
    """Decodes one part's body, fed in chunks. Not reusable after `finish()`."""

    def __init__(self, encoding: str | None) -> None:
        self.encoding = (encoding or "7bit").strip().lower()
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        """Decoded bytes for `data`; bytes whose meaning needs more input are held back."""
        if self.encoding == "base64":
            return self._feed_base64(data)
        if self.encoding == "quoted-printable":
            return self._feed_qp(data)
        return data

    def finish(self) -> bytes:
        """Whatever was held back, decoded as the end of the body."""
        held, self._held = self._held, b""
        if self.encoding == "base64":
            return _b64_tail(held)
        if self.encoding == "quoted-printable":
            return _qp_line(held, b"")
        return b""

    # ------------------------------------------------------------------ base64

    def _feed_base64(self, data: bytes) -> bytes:
        pieces = data.translate(None, _B64_JUNK).split(b"=")
        out: list[bytes] = []
        for ended in pieces[:-1]:  # each of these pieces is followed by an "="
            quantum = self._held + ended
            self._held = b""
            whole = len(quantum) - len(quantum) % 4
            out.append(_b64(quantum[:whole]))
            out.append(_b64_tail(quantum[whole:]))
        quantum = self._held + pieces[-1]
        whole = len(quantum) - len(quantum) % 4
        out.append(_b64(quantum[:whole]))
        self._held = quantum[whole:]
        return b"".join(out)

    # ------------------------------------------------------------------ quoted-printable

    def _feed_qp(self, data: bytes) -> bytes:
        buffer = self._held + data
        out: list[bytes] = []
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:end]
            ending = b"\n"
            if line.endswith(b"\r"):
                line, ending = line[:-1], b"\r\n"
            out.append(_qp_line(line, ending))
            start = end + 1
        rest = buffer[start:]
        cut = _qp_safe_prefix(rest)
        out.append(_qp_octets(rest[:cut]))
        self._held = rest[cut:]
        return b"".join(out)


def _b64(quanta: bytes) -> bytes:
    if not quanta:
        return b""
    try:
        return binascii.a2b_base64(quanta)
    except binascii.Error:  # pragma: no cover - whole quanta of alphabet characters decode
        return b""


def _b64_tail(quantum: bytes) -> bytes:
    """A final quantum shorter than four characters, decoded as if padded."""
    if len(quantum) < 2:
        return b""
    return _b64(quantum + b"=" * (-len(quantum) % 4))


def _qp_safe_prefix(partial: bytes) -> int:
    """How much of an unfinished line decodes the same whatever follows.

    Held back: trailing blanks and CR (dropped if the line ends there), and an
    `=` in the last two places (an escape or a soft line break in the making).
    """
    end = len(partial.rstrip(b" \t\r"))
    if end >= 1 and partial[end - 1 : end] == b"=":
        return end - 1
    if end >= 2 and partial[end - 2 : end - 1] == b"=":
        return end - 2
    return end


def _qp_line(line: bytes, ending: bytes) -> bytes:
    """One line (or the unfinished remainder of one) without its line end."""
    line = line.rstrip(_BLANKS + b"\r")
    if line.endswith(b"="):
        return _qp_octets(line[:-1])  # soft line break: the next line continues this one
    return _qp_octets(line) + ending


def _qp_octets(text: bytes) -> bytes:
    if b"=" not in text:
        return text
    return _QP_ESCAPE.sub(lambda m: bytes.fromhex(m[1].decode("ascii")), text)


def decode_transfer(data: bytes, encoding: str | None) -> bytes:
    """The whole body `data` decoded from `encoding` (see `TransferDecoder`)."""
    decoder = TransferDecoder(encoding)
    return decoder.feed(data) + decoder.finish()
