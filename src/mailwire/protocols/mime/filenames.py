"""File names from mail made safe to save, and the HTTP header that offers them.

A file name in a message is attacker-chosen text. `safe_filename` keeps what
a person would recognise and removes what could hurt a file system or a
header: directory parts (both separators), control characters, characters
Windows refuses, leading dots (hidden files, `..`), trailing dots and blanks,
and Windows device names (CON, NUL, COM1...); it bounds the length by UTF-8
octets keeping the extension, and falls back to a default when nothing is left.

`content_disposition` renders RFC 6266: an ASCII `filename=` for old clients
and, when the name is not plain ASCII, `filename*=UTF-8''...` percent-encoded
per RFC 8187 (which RFC 6266 section 4.3 says recipients prefer).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal
from urllib.parse import quote

#: Longest file name kept, in UTF-8 octets: the usual file-system limit (ext4,
#: NTFS, APFS allow 255 units); the REST upload schema allows 256 characters.
MAX_FILENAME_BYTES: Final = 255
DEFAULT_FILENAME: Final = "attachment"

_UNSAFE: Final = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"|?*]')
_DEVICE_NAMES: Final = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)
#: Characters of a quoted-string that RFC 6266's ASCII fallback replaces (quote, backslash).
_FALLBACK_UNSAFE: Final = re.compile(r'[^\x20-\x7e]|["\\%]')


def safe_filename(name: str | None, default: str = DEFAULT_FILENAME) -> str:
    """`name` made safe to use as a file name (see the module docstring)."""
    if not name:
        return default
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("", name)
    name = " ".join(name.split())
    name = name.lstrip(". ").rstrip(". ")
    if not name:
        return default
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    if stem.split(".")[0].lower() in _DEVICE_NAMES:
        name = "_" + name
    return _bounded(name, extension if dot else "")


def _bounded(name: str, extension: str) -> str:
    if len(name.encode("utf-8")) <= MAX_FILENAME_BYTES:
        return name
    suffix = f".{extension}" if extension and len(extension) <= 16 else ""
    room = MAX_FILENAME_BYTES - len(suffix.encode("utf-8"))
    stem = name[: len(name) - len(suffix)] if suffix else name
    cut = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(". ")
    return (cut or DEFAULT_FILENAME) + suffix


def content_disposition(kind: Literal["attachment", "inline"], filename: str | None) -> str:
    """An RFC 6266 Content-Disposition value for serving `filename` over HTTP."""
    name = safe_filename(filename)
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    stem, dot, extension = ascii_name.rpartition(".")
    if dot and not stem.strip(". "):  # nothing of the stem survived: keep the extension
        ascii_name = f"{DEFAULT_FILENAME}.{extension}"
    fallback = safe_filename(_FALLBACK_UNSAFE.sub("_", ascii_name))
    value = f'{kind}; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value
