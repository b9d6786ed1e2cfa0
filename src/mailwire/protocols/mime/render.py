"""Header fields written for the wire: checked, encoded and folded (RFC 5322, 2047, 2231).

- Every name and value is checked first: CR, LF or NUL in either would end
  the field early and let the caller write headers or body of its own
  choosing (header injection), so they are refused with `HeaderInjectionError`.
  A field name is printable ASCII without a colon (RFC 5322 section 3.6.8).
- Text that is not printable ASCII, or that could be mistaken for an encoded
  word, is written as RFC 2047 encoded words: UTF-8, B encoding, each word
  short enough to keep the line under 78 characters (section 2: a word is at
  most 75 characters), split only between characters.
- Lines are folded at blanks (RFC 5322 section 2.2.3) to stay under 78
  characters where the tokens allow; no token is longer than 998.
- Parameter values (file names) that are not plain ASCII use RFC 2231
  `name*=utf-8''percent-encoded`, split into `name*0*`, `name*1*`...
  continuations (section 3) when long.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

from mailwire.protocols.mime.errors import HeaderInjectionError, MimeBuildError
from mailwire.protocols.mime.headers import Address

#: RFC 5322 section 2.1.1: lines SHOULD stay within 78 characters.
LINE_LENGTH: Final = 78
#: UTF-8 octets per encoded word: 40 octets -> 56 base64 characters + 12 of framing.
_WORD_OCTETS: Final = 40
#: Octets of a percent-encoded RFC 2231 parameter value per continuation line.
_PARAM_CHUNK: Final = 60
#: A bare token longer than this goes into encoded words instead (RFC 5322 section 2.1.1).
_LONG_TOKEN: Final = 900

_FIELD_NAME: Final = re.compile(r"[\x21-\x39\x3b-\x7e]+")
_PLAIN_TEXT: Final = re.compile(r"[\x20-\x7e\t]*")
_ATOM_TEXT: Final = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*")
_ADDRESS: Final = re.compile(r"[^\s<>()\[\],;:\"@\\]+@[^\s<>()\[\],;:\"@\\]+")
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def check(value: str, key: str) -> str:
    """`value` unchanged, or `HeaderInjectionError` if it holds CR, LF or NUL."""
    if any(bad in value for bad in ("\r", "\n", "\x00")):
        raise HeaderInjectionError(f"{key} must not contain line breaks or NUL", key=key)
    return value


def field_name(name: str, key: str = "headers") -> str:
    check(name, key)
    if not _FIELD_NAME.fullmatch(name):
        raise MimeBuildError(f"{name!r} is not a valid header field name", key=key)
    return name


def fold(name: str, tokens: Iterable[str]) -> bytes:
    """`name: tokens...` as one field, tokens joined by blanks, folded to `LINE_LENGTH`."""
    lines: list[str] = []
    line = f"{name}:"
    for token in tokens:
        # Never fold before an empty token: a line of blanks only may end the header block.
        if len(line) + 1 + len(token) > LINE_LENGTH and token and line.strip() != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 B-encoded UTF-8 words, each under the 75-character limit."""
    words: list[str] = []
    chunk = b""
    for char in text:
        octets = char.encode("utf-8", "surrogatepass")
        if chunk and len(chunk) + len(octets) > _WORD_OCTETS:
            words.append(_word(chunk))
            chunk = b""
        chunk += octets
    if chunk or not words:
        words.append(_word(chunk))
    return words


def _word(chunk: bytes) -> str:
    return f"=?UTF-8?B?{base64.b64encode(chunk).decode('ascii')}?="


def unstructured(text: str, key: str) -> list[str]:
    """Tokens of an unstructured value (Subject, custom fields), encoded when needed."""
    check(text, key)
    tokens = text.split(" ")
    if _PLAIN_TEXT.fullmatch(text) and "=?" not in text and max(map(len, tokens)) <= _LONG_TOKEN:
        return tokens
    return encoded_words(text)


def mailbox(address: Address, key: str) -> str:
    """`name <address>` or `address`, with the name quoted or encoded as needed."""
    target = check(address.address.strip(), key)
    if not _ADDRESS.fullmatch(target):
        raise MimeBuildError(f"{target!r} is not an email address", key=key)
    local, _, domain = target.rpartition("@")
    target = f"{local}@{_idna(domain)}"
    name = " ".join(check(address.name or "", key).split())
    if not name:
        return target
    return f"{phrase(name)} <{target}>"


def phrase(name: str) -> str:
    """A display name (RFC 5322 section 3.2.5): atoms, a quoted string or encoded words."""
    if _ATOM_TEXT.fullmatch(name) and "=?" not in name:
        return name
    if _PLAIN_TEXT.fullmatch(name) and "=?" not in name:
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return " ".join(encoded_words(name))


def _idna(domain: str) -> str:
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain  # RFC 6532 allows UTF-8 domains where IDNA refuses the label


def address_list(addresses: Iterable[Address], key: str) -> list[str]:
    """Tokens of an address list: mailboxes separated by commas, one fold point each."""
    rendered = [mailbox(item, key) for item in addresses]
    return [
        item + ("," if index < len(rendered) - 1 else "") for index, item in enumerate(rendered)
    ]


def param(name: str, value: str) -> list[str]:
    """`; name=value` tokens: quoted ASCII, or RFC 2231 extended (with continuations)."""
    if _PLAIN_TEXT.fullmatch(value) and "=?" not in value and len(value) <= _PARAM_CHUNK * 4:
        if _TOKEN.fullmatch(value):
            return [f"{name}={value};"]
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return [f'{name}="{escaped}";']
    encoded = "utf-8''" + quote(value, safe="!#$&+-.^_`|~")
    if len(encoded) <= _PARAM_CHUNK:
        return [f"{name}*={encoded};"]
    pieces: list[str] = []
    while encoded:
        cut = min(_PARAM_CHUNK, len(encoded))
        while "%" in encoded[max(cut - 2, 0) : cut]:  # never split a %XX escape
            cut -= 1
        pieces.append(encoded[:cut])
        encoded = encoded[cut:]
    return [f"{name}*{index}*={piece};" for index, piece in enumerate(pieces)]


def with_params(value: str, params: list[str]) -> list[str]:
    """`value; p1; p2` as tokens: the trailing `;` of the last parameter is dropped."""
    tokens = [value + (";" if params else ""), *params]
    if params:
        tokens[-1] = tokens[-1].removesuffix(";")
    return tokens
