"""Template source -> pieces: text runs, comments and tags with their expression tokens.

Theory of operation. Text runs until the next `{{`. A tag is opened by
`{{`, an optional `~` (strip whitespace before the tag) and a sigil that
says what the tag is:

    {{x}}  {{{x}}}  {{&x}}  {{#x}}  {{^x}}  {{/x}}  {{else}}  {{^}}  {{else x}}  {{!x}}  {{!--x--}}

The inside of a tag is cut into tokens (paths, literals, `(`, `)`, `=`,
block params `as |a b|`) up to the closing `}}` (`}}}` for `{{{`), whose
optional leading `~` strips whitespace after the tag. Escapes follow
Handlebars: `\\{{` is literal `{{` (the text runs on to the next `{{`), and
`\\\\{{` is one backslash followed by a real tag.

Token rules are Handlebars' lexer rules: an identifier is any run of
characters other than blanks and ``!"#%&'()*+,./;<=>@[\\]^`{|}~``, and like a
number or `true` it must be followed by a blank, `}`, `~`, `)` (and for an
identifier also `=`, `.`, `/` or `|`); `[...]` is an identifier taken
literally. Partials (`{{>`), decorators (`{{*`) and raw blocks (`{{{{`) are
refused: Mailwire's templates have no use for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from mailwire.protocols.handlebars.errors import TemplateSyntaxError

#: JavaScript's `\s`: what Handlebars' patterns mean by a blank.
WHITESPACE: Final = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
#: The same, for use in a regular expression's character class.
BLANK: Final = (
    "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
)

_BLANKS: Final = re.compile(f"[{BLANK}]*")
_ID_END: Final = f"(?=[{BLANK}=~}}/.)|])"
_LITERAL_END: Final = f"(?=[{BLANK}~}})])"
_ID_CHARS: Final = f"[^{BLANK}!\"#%&'()*+,./;<=>@\\[\\\\\\]^`{{|}}~]+"
#: One alternative per token kind, in the order Handlebars' lexer tries its rules; the
#: closers come first (`}}}}` closes raw blocks, so `{{x}}}}` is an error, as is `{{x}}}`).
_TOKEN: Final = re.compile(
    f"[{BLANK}]*(?:"
    + "|".join(
        f"(?P<{kind}>{pattern})"
        for kind, pattern in (
            ("RAW_CLOSE", "}}}}"),
            ("TRIPLE_CLOSE", "}~?}}"),
            ("CLOSE", "~?}}"),
            ("OPEN_SEXPR", r"\("),
            ("CLOSE_SEXPR", r"\)"),
            ("DOUBLE_QUOTED", r'"(?:\\"|[^"])*"'),
            ("SINGLE_QUOTED", r"'(?:\\'|[^'])*'"),
            ("DATA", "@"),
            ("BOOLEAN", "(?:true|false)" + _LITERAL_END),
            ("UNDEFINED", "undefined" + _LITERAL_END),
            ("NULL", "null" + _LITERAL_END),
            ("NUMBER", r"-?[0-9]+(?:\.[0-9]+)?" + _LITERAL_END),
            ("OPEN_BLOCK_PARAMS", f"as[{BLANK}]+\\|"),
            ("CLOSE_BLOCK_PARAMS", r"\|"),
            ("PARENT", r"\.\."),
            ("DOT", r"\." + _ID_END),
            ("SEP", r"[/.]"),
            ("EQUALS", "="),
            ("LITERAL_ID", r"\[(?:\\\]|[^\]])*\]"),
            ("ID", _ID_CHARS + _ID_END),
        )
    )
    + ")"
)
#: Token kinds the parser sees, where the lexer has several spellings.
_KINDS: Final = {"DOUBLE_QUOTED": "STRING", "SINGLE_QUOTED": "STRING", "PARENT": "ID", "DOT": "ID"}
_ELSE: Final = re.compile(f"[{BLANK}]*else(?=[{BLANK}~}}])")
_LONG_COMMENT_END: Final = re.compile(r"--(~?)}}")
_SHORT_COMMENT_END: Final = re.compile(r"(~?)}}")

#: Tag kinds by the sigil after `{{` (and an optional `~`).
_SIGILS: Final = {"{": "unescaped", "&": "unescaped", "#": "block", "^": "inverse", "/": "close"}
_REFUSED: Final = {
    ">": "partials ({{> name}}) are not supported",
    "*": "decorators ({{* name}}) are not supported",
    "#>": "partial blocks ({{#> name}}) are not supported",
    "#*": "decorator blocks ({{#* name}}) are not supported",
}


@dataclass(frozen=True, slots=True)
class Token:
    """One token inside a tag; `offset` is where it starts in the source."""

    kind: str
    value: str
    offset: int
    end: int


@dataclass(frozen=True, slots=True)
class Text:
    """A run of text between tags."""

    value: str
    offset: int


@dataclass(frozen=True, slots=True)
class Tag:
    """One `{{...}}`: kind mustache, unescaped, block, inverse, close, else or comment."""

    kind: str
    tokens: tuple[Token, ...]
    strip_before: bool
    strip_after: bool
    offset: int


def position(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of `offset` in `source`."""
    line = source.count("\n", 0, offset) + 1
    return line, offset - source.rfind("\n", 0, offset)


def syntax_error(source: str, offset: int, message: str) -> TemplateSyntaxError:
    line, column = position(source, offset)
    return TemplateSyntaxError(message, line, column)


def scan(source: str) -> Iterator[Text | Tag]:
    """Text runs and tags of `source`, in order (lazily, so a caller can stop early)."""
    pos = 0
    while pos < len(source):
        start = source.find("{{", pos)
        if start < 0:
            yield Text(source[pos:], pos)
            break
        before = source[pos:start]
        if before.endswith("\\") and not before.endswith("\\\\"):
            if before[:-1]:
                yield Text(before[:-1], pos)
            pos = _escaped_end(source, start)
            yield Text(source[start:pos], start)
            continue
        before = before[:-1] if before.endswith("\\\\") else before
        if before:
            yield Text(before, pos)
        tag, pos = _tag(source, start)
        yield tag


def _escaped_end(source: str, start: int) -> int:
    """End of the text that an escaped `{{` at `start` begins: the next `{{` or its escape."""
    following = source.find("{{", start + 2)
    if following < 0:
        return len(source)
    end = following
    while end > start + 2 and following - end < 2 and source[end - 1] == "\\":
        end -= 1
    return end


def _tag(source: str, start: int) -> tuple[Tag, int]:
    """The tag at `start` (which holds `{{`) and the offset after it."""
    if source.startswith("{{{{", start):
        raise syntax_error(source, start, "raw blocks ({{{{name}}}}) are not supported")
    pos = start + 2
    strip_before = source.startswith("~", pos)
    pos += strip_before
    if source.startswith("!", pos):
        return _comment(source, start, pos + 1, strip_before)
    for sigil in ("#>", "#*", ">", "*"):
        if source.startswith(sigil, pos):
            raise syntax_error(source, start, _REFUSED[sigil])
    kind = _SIGILS.get(source[pos : pos + 1], "mustache")
    triple = source.startswith("{", pos)
    if kind != "mustache":
        pos += 1
    elif match := _ELSE.match(source, pos):
        kind, pos = "else", match.end()
    tokens, strip_after, end = _tokens(source, start, pos, triple=triple)
    if kind == "inverse" and not tokens:
        kind = "else"
    return Tag(kind, tuple(tokens), strip_before, strip_after, start), end


def _comment(source: str, start: int, pos: int, strip_before: bool) -> tuple[Tag, int]:
    long_form = source.startswith("--", pos)
    closer = _LONG_COMMENT_END if long_form else _SHORT_COMMENT_END
    match = closer.search(source, pos)
    if match is None:
        raise syntax_error(source, start, "comment is never closed")
    return Tag("comment", (), strip_before, bool(match.group(1)), start), match.end()


def _tokens(source: str, start: int, pos: int, *, triple: bool) -> tuple[list[Token], bool, int]:
    """Tokens from `pos` to the tag's closing braces; whether they strip; the offset after them."""
    tokens: list[Token] = []
    while match := _TOKEN.match(source, pos):
        kind = match.lastgroup or ""
        begin, pos = match.start(kind), match.end()
        text = match.group(kind)
        if kind.endswith("CLOSE") and kind != "CLOSE_SEXPR":
            if kind != ("TRIPLE_CLOSE" if triple else "CLOSE"):
                expected = "}}}" if triple else "}}"
                raise syntax_error(source, begin, f"expected '{expected}' to close the tag")
            return tokens, "~" in text, pos
        if kind.endswith("QUOTED"):
            text = text[1:-1].replace("\\" + text[0], text[0])
        elif kind == "LITERAL_ID":
            text = text[1:-1]
        tokens.append(Token(_KINDS.get(kind, kind), text, begin, pos))
    if source.find("}}", pos) < 0:
        raise syntax_error(source, start, "tag is never closed (missing '}}')")
    pos = _BLANKS.match(source, pos).end()  # type: ignore[union-attr]
    raise syntax_error(source, pos, f"unexpected {source[pos]!r} in tag")
