"""Bytes to text for mail: the declared charset first, then what senders really meant.

Theory of operation: a charset label in mail is a hint, not a promise. It may
be missing (RFC 2045 section 5.2 then says US-ASCII, yet 8-bit UTF-8 is what
such bodies usually hold), unknown to Python (`x-user-defined`, typos), or
wrong (`us-ascii` over UTF-8, `iso-8859-1` over Windows-1252 quotes). So
`decode_text` tries, strictly and in order: the declared charset (through a
small alias table of labels mail uses that Python spells differently), UTF-8,
Windows-1252; and finally Latin-1, which maps every byte and so never fails.
The result is always a `str`; nothing here raises.
"""

from __future__ import annotations

import codecs

#: Labels seen in mail mapped to the codec that decodes what senders meant. ISO-8859-1
#: is read as its superset Windows-1252 (as browsers do, WHATWG Encoding Standard);
#: GB2312 and GBK as GB18030; the Korean and Japanese vendor labels as their code pages.
ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "ansi_x3.4-1968": "ascii",
}

#: Tried after the declared charset, in order; the last one decodes any byte string.
FALLBACKS = ("utf-8", "cp1252", "latin-1")


def codec_for(label: str | None) -> str | None:
    """The Python codec name for a charset label, or None when Python knows none."""
    if not label:
        return None
    name = label.strip().strip('"').lower()
    name = ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def decode_text(data: bytes, charset: str | None = None) -> str:
    """`data` as text: declared charset, then UTF-8, Windows-1252, Latin-1. Never raises."""
    tried: list[str] = []
    declared = codec_for(charset)
    for name in ((declared,) if declared else ()) + FALLBACKS:
        if name in tried:
            continue
        tried.append(name)
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")  # unreachable: Latin-1 maps all 256 byte values
