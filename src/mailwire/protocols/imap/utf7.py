"""Modified UTF-7 for IMAP mailbox names (RFC 3501 section 5.1.3).

Printable US-ASCII (0x20-0x7e) stands for itself, except "&", which is written
"&-". Every other character is written as UTF-16BE in a modified BASE64
("," instead of "/", no "=" padding) between "&" and "-".

Decoding is strict because the input comes from the server: anything an
encoder following the RFC could not have produced raises `ProtocolError`
(bytes outside printable ASCII, bad BASE64, an unterminated shift, non-zero
padding bits, printable ASCII hidden in BASE64, two adjacent shifts that a
minimal encoder would have merged, broken surrogate pairs).
"""

from __future__ import annotations

import binascii

from mailwire.protocols.imap.errors import ProtocolError

__all__ = ["decode_mailbox", "encode_mailbox"]

_B64_VALUES = {
    byte: value
    for value, byte in enumerate(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
    )
}
_AMPERSAND = ord("&")
_DASH = ord("-")


def _is_direct(code: int) -> bool:
    # RFC 3501 5.1.3: "printable US-ASCII characters, except for "&", represent themselves".
    return 0x20 <= code <= 0x7E


def _encode_run(run: str) -> bytes:
    # Lone surrogates are not text; `str.encode` raises UnicodeEncodeError (a ValueError).
    raw = run.encode("utf-16-be")
    b64 = binascii.b2a_base64(raw, newline=False).rstrip(b"=").replace(b"/", b",")
    return b"&" + b64 + b"-"


def encode_mailbox(name: str) -> bytes:
    """Encode a mailbox name in modified UTF-7; the result is printable ASCII."""
    out = bytearray()
    run: list[str] = []
    for char in name:
        if _is_direct(ord(char)):
            if run:
                out += _encode_run("".join(run))
                run.clear()
            out += b"&-" if char == "&" else char.encode("ascii")
        else:
            run.append(char)
    if run:
        out += _encode_run("".join(run))
    return bytes(out)


def _decode_shift(b64: bytes, position: int) -> str:
    try:
        values = [_B64_VALUES[byte] for byte in b64]
    except KeyError:
        raise ProtocolError(f"modified UTF-7: bad BASE64 at offset {position}") from None
    bits = len(values) * 6
    leftover = bits % 16
    # A minimal encoder leaves fewer than 6 padding bits, all zero.
    if leftover >= 6:
        raise ProtocolError(f"modified UTF-7: truncated UTF-16 at offset {position}")
    accumulator = 0
    for value in values:
        accumulator = (accumulator << 6) | value
    if accumulator & ((1 << leftover) - 1):
        raise ProtocolError(f"modified UTF-7: non-zero padding bits at offset {position}")
    raw = (accumulator >> leftover).to_bytes(bits // 16 * 2, "big")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"modified UTF-7: invalid UTF-16 at offset {position}") from exc
    if any(_is_direct(ord(char)) for char in text):
        raise ProtocolError(f"modified UTF-7: printable ASCII in BASE64 at offset {position}")
    return text


def decode_mailbox(data: bytes) -> str:
    """Decode a modified UTF-7 mailbox name; raise `ProtocolError` if it is malformed."""
    out: list[str] = []
    index = 0
    previous_shift_end = -1
    while index < len(data):
        byte = data[index]
        if not _is_direct(byte):
            raise ProtocolError(f"modified UTF-7: byte 0x{byte:02x} at offset {index}")
        if byte != _AMPERSAND:
            out.append(chr(byte))
            index += 1
            continue
        end = data.find(b"-", index + 1)
        if end < 0:
            raise ProtocolError(f"modified UTF-7: unterminated shift at offset {index}")
        if end == index + 1:
            out.append("&")
        else:
            if previous_shift_end == index:
                raise ProtocolError(f"modified UTF-7: adjacent shifts at offset {index}")
            out.append(_decode_shift(data[index + 1 : end], index + 1))
            previous_shift_end = end + 1
        index = end + 1
    return "".join(out)
