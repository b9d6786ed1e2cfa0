"""Message HTML made fit for a browser: sanitising, plain text as HTML, inline images.

Pure functions (no I/O) behind `GET /message/{message}`'s `webSafeHtml` and
`embedAttachedImages` (and the `notifyWebSafeHtml` webhook option):

- `sanitise` keeps the formatting of ordinary email (tables, fonts, inline
  styles from a safe list, images, links) and drops everything that runs code
  or reaches outside the rendering: scripts, event handlers, `javascript:` and
  other active URLs, forms, frames, objects, `<style>` blocks, `<base>`,
  `<meta>`; links open in a new browsing context without an opener or referrer;
  a reply's quoted thread is folded into one `<details class="ee-collapsed-thread">`
  with an empty `<summary>`, as EmailEngine documents for `text.webSafe`;
- `plain_to_html` turns a plain-text body into HTML (escaped, line breaks kept,
  http(s) URLs as links) for messages that have no HTML part;
- `embed_images` replaces `cid:` image references with `data:` URIs of the
  message's inline parts, within `MAX_EMBEDDED_IMAGE_BYTES` per image and
  `MAX_EMBEDDED_TOTAL_BYTES` per message; `embeddable_parts` and
  `referenced_content_ids` tell the caller which parts to fetch for that.

`preProcessHtml` is a compatibility switch: EmailEngine describes it only as
"pre-processing for compatibility", and everything a client can rely on from it
(well-formed markup, the document reduced to its body's content) is what
`sanitise` does under `webSafeHtml`. Mailwire accepts it and returns the HTML as
it is when it is set alone.

Order for a web-safe answer: `sanitise` first, then `embed_images` on its
output. The sanitiser keeps `cid:` references (so that
`embedAttachedImages=false` leaves them for the client to fetch), and embedding
after it keeps megabytes of base64 out of the parser; the `data:` URIs it adds
are built here from a checked image type and base64, so they need no second
pass.
"""

from __future__ import annotations

import base64
import html as html_lib
import re
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote

import nh3

# ---------------------------------------------------------------- limits

#: Largest image (decoded bytes) embedded as a `data:` URI; a larger one keeps
#: its `cid:` reference (base64 makes it a third larger again in the JSON answer).
MAX_EMBEDDED_IMAGE_BYTES = 2 * 1024 * 1024

#: Decoded bytes embedded into one message's HTML in all, counting each
#: reference; references past it keep `cid:`.
MAX_EMBEDDED_TOTAL_BYTES = 8 * 1024 * 1024

#: A URL in plain text longer than this stays text rather than becoming a link.
MAX_LINK_CHARS = 2048

#: Length of one `style` attribute considered; a longer one is dropped whole.
MAX_STYLE_CHARS = 4096

# ---------------------------------------------------------------- sanitiser policy

#: Image types that may appear as `data:` URIs (in `<img src>`) and be embedded.
#: SVG is left out: it is a document that can carry script, not a picture.
SAFE_IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp", "image/bmp", "image/avif"}
)

#: Elements kept (their attributes filtered); any other element is removed and
#: its text kept, except those in `DROPPED_WITH_CONTENT`.
ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big",
        "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup", "dd",
        "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font",
        "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins",
        "kbd", "li", "mark", "nav", "ol", "p", "pre", "q", "s", "samp", "section", "small",
        "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td",
        "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip

#: Elements removed together with their content: code, styles, embedded
#: documents and form controls whose text would only be noise once unwrapped.
DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "title", "template", "noscript", "iframe", "frame", "frameset",
        "noframes", "object", "embed", "applet", "svg", "math", "select", "textarea",
        "button", "xmp", "noembed", "plaintext",
    }
)  # fmt: skip

_TABLE_CELL = {"align", "valign", "width", "height", "bgcolor", "colspan", "rowspan", "nowrap"}

#: Attributes kept per element (`*`: on every element). No `class` or `id`
#: (but for the quoted-thread marker): without the message's style sheets they
#: style nothing, and in the host page they could pick up its rules or collide
#: with its ids.
ALLOWED_ATTRIBUTES: Mapping[str, frozenset[str]] = {
    "*": frozenset({"style", "title", "dir", "lang", "align"}),
    "div": frozenset({"class"}),  # narrowed to the quoted-thread marker by `_filter_attribute`
    "a": frozenset({"href", "hreflang", "name"}),
    "img": frozenset({"src", "alt", "width", "height", "border", "hspace", "vspace"}),
    "font": frozenset({"color", "face", "size"}),
    "table": frozenset({"width", "height", "border", "cellpadding", "cellspacing", "bgcolor"}),
    "td": frozenset(_TABLE_CELL),
    "th": frozenset(_TABLE_CELL | {"scope"}),
    "tr": frozenset({"valign", "bgcolor", "height"}),
    "tbody": frozenset({"valign"}),
    "thead": frozenset({"valign"}),
    "tfoot": frozenset({"valign"}),
    "col": frozenset({"span", "width", "valign"}),
    "colgroup": frozenset({"span", "width", "valign"}),
    "ol": frozenset({"start", "type"}),
    "ul": frozenset({"type"}),
    "li": frozenset({"value"}),
    "blockquote": frozenset({"cite"}),
    "q": frozenset({"cite"}),
    "del": frozenset({"cite", "datetime"}),
    "ins": frozenset({"cite", "datetime"}),
    "time": frozenset({"datetime"}),
    "details": frozenset({"open"}),
    "hr": frozenset({"width", "size", "noshade"}),
}

#: URL schemes kept in `href` and `src`. `cid:` stays so that a client that
#: turned embedding off can resolve inline images itself; `data:` is admitted
#: here only to be narrowed by `_filter_attribute` to images in `<img src>`.
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid", "data"})

#: CSS properties kept in `style` attributes: text, box and table layout.
#: Nothing that positions outside the message's box (`position`, `z-index`,
#: `top`...) and nothing that takes a URL (`background-image`, `list-style-image`,
#: `cursor`, `content`, `behavior`...).
ALLOWED_STYLE_PROPERTIES = frozenset(
    {
        "color", "background-color", "font", "font-family", "font-size", "font-style",
        "font-weight", "font-variant", "line-height", "letter-spacing", "word-spacing",
        "text-align", "text-decoration", "text-indent", "text-transform", "white-space",
        "word-break", "word-wrap", "overflow-wrap", "vertical-align", "direction",
        "display", "width", "height", "min-width", "max-width", "min-height", "max-height",
        "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
        "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
        "border", "border-top", "border-right", "border-bottom", "border-left",
        "border-color", "border-style", "border-width", "border-radius",
        "border-collapse", "border-spacing", "float", "clear", "list-style-type",
        "table-layout", "text-overflow", "overflow",
    }
)  # fmt: skip

#: Values that make a declaration go whatever its property: URL loading, IE
#: expressions and bindings, CSS escapes or comments that could hide them, and
#: negative lengths.
_UNSAFE_CSS_VALUE = re.compile(
    r"url\s*\(|image-set|expression|javascript|vbscript|behavior|binding|[\\@<>]|/\*|\*/"
    r"|(?<![\w-])-\s*\.?\d",  # a negative length pulls the box over the host page
    re.I,
)

_DATA_IMAGE = re.compile(r"data:([a-z0-9.+-]+/[a-z0-9.+-]+);base64,[a-z0-9+/=\s]*\Z", re.I)

LINK_REL = "noopener noreferrer"


def sanitise(html: str) -> str:
    """The HTML fragment with everything that is not on the safe lists above removed.

    A whole document may be given: its `<head>` content goes (title, styles,
    `<meta>`, `<base>`) and its body's content is returned. Comments are removed
    (conditional comments included). Every link gets `target="_blank"` and
    `rel="noopener noreferrer"`, since the message is shown inside someone
    else's page. The quoted thread of a reply (the first quote block that mail
    clients mark as such) is wrapped in one `<details class="ee-collapsed-thread">`
    with an empty `<summary>`, for the client to label. Relative URLs are
    removed: in the host page they would point at the host's own server
    (`<img src="/account/delete">`).
    """
    cleaned: str = nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        strip_comments=True,
        link_rel=LINK_REL,
        url_schemes=set(ALLOWED_URL_SCHEMES),
        url_relative="deny",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=set(ALLOWED_STYLE_PROPERTIES),
        tag_attribute_values={"blockquote": {"type": {"cite"}}},
    )
    return _collapse_quoted_thread(cleaned)


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Narrow what the allow-lists let through (nh3 calls it per kept attribute).

    URLs reach here after nh3's scheme check; `data:` is kept only as an image
    of a safe type in `<img src>`.
    """
    if attribute in {"href", "src", "cite"} and value.strip().lower().startswith("data:"):
        if tag == "img" and attribute == "src" and _is_safe_data_image(value):
            return value
        return None
    if attribute == "style":
        return _filter_style(value)
    if attribute == "class":
        return _QUOTE_MARKER if QUOTE_CLASSES.intersection(value.split()) else None
    return value


def _is_safe_data_image(url: str) -> bool:
    match = _DATA_IMAGE.match(url.strip())
    return match is not None and match.group(1).lower() in SAFE_IMAGE_TYPES


def _filter_style(style: str) -> str | None:
    """Declarations of allowed properties with harmless values, or None if none is left."""
    if len(style) > MAX_STYLE_CHARS:
        return None
    kept = []
    for declaration in style.split(";"):
        name, colon, value = declaration.partition(":")
        name = name.strip().lower()
        if not colon or name not in ALLOWED_STYLE_PROPERTIES:
            continue
        if _UNSAFE_CSS_VALUE.search(value):
            continue
        kept.append(f"{name}: {value.strip()}")
    return "; ".join(kept) or None


# ---------------------------------------------------------------- quoted thread

#: Classes with which mail clients mark the block holding a reply's quoted
#: message (Gmail, Yahoo); `<blockquote type="cite">` (Thunderbird, Apple Mail)
#: is the other mark. Thunderbird's `moz-cite-prefix` is left out on purpose:
#: it marks only the "... wrote:" line before the quote, not the quote.
QUOTE_CLASSES = frozenset({"gmail_quote", "yahoo_quoted"})

_QUOTE_MARKER = "mw-quoted"
_MARKER_ATTRIBUTE = f' class="{_QUOTE_MARKER}"'
COLLAPSED_THREAD_OPEN = '<details class="ee-collapsed-thread"><summary></summary>'


def _collapse_quoted_thread(cleaned: str) -> str:
    """Sanitised HTML with its first quoted block folded into a `<details>` element.

    Works on the sanitiser's output, which is well-formed and has `<` escaped in
    text and attribute values, so the block's extent is found by a tag parser
    rather than guessed; the private marker class is removed afterwards.
    """
    if _MARKER_ATTRIBUTE not in cleaned and 'type="cite"' not in cleaned:
        return cleaned  # most messages: no pure-Python parse over them
    finder = _QuoteFinder()
    finder.feed(cleaned)
    finder.close()
    if finder.span is not None:
        start, end = finder.span
        block = cleaned[start:end]
        cleaned = f"{cleaned[:start]}{COLLAPSED_THREAD_OPEN}{block}</details>{cleaned[end:]}"
    return cleaned.replace(_MARKER_ATTRIBUTE, "")


class _QuoteFinder(HTMLParser):
    """Offsets of the first marked quote block, from its start tag to its end tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines: list[int] = []
        self._tag: str | None = None
        self._start = 0
        self._depth = 0
        self.span: tuple[int, int] | None = None

    def feed(self, data: str) -> None:
        offset = 0
        for line in data.splitlines(keepends=True):
            self._lines.append(offset)
            offset += len(line)
        super().feed(data)

    def _offset(self) -> int:
        line, column = self.getpos()
        return (self._lines[line - 1] if self._lines else 0) + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.span is not None:
            return
        if self._tag is None:
            marks = {("class", _QUOTE_MARKER), ("type", "cite")}
            if tag in {"div", "blockquote"} and marks.intersection(attrs):
                self._tag, self._start, self._depth = tag, self._offset(), 1
        elif tag == self._tag:
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.span is not None or tag != self._tag:
            return
        self._depth -= 1
        if self._depth == 0:
            end = self._offset() + len(f"</{tag}>")
            self.span = (self._start, end)


# ---------------------------------------------------------------- plain text

# Stops at whitespace, quotes and angle brackets; trailing punctuation is
# trimmed afterwards, as in "see https://example.com/a."
_URL = re.compile(r"\bhttps?://[^\s<>\"']+", re.I)
_TRAILING = ".,;:!?'\""


def plain_to_html(text: str) -> str:
    """A plain-text body as HTML: escaped, http(s) URLs linked, line breaks kept.

    Paragraphs (separated by blank lines) become `<p>`, single line breaks
    `<br>`. Nothing in the text can become markup: `<script>` stays text.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [chunk.strip("\n") for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]
    rendered = ("<br>\n".join(_linkify(line) for line in chunk.split("\n")) for chunk in paragraphs)
    return "\n".join(f"<p>{chunk}</p>" for chunk in rendered)


def _linkify(line: str) -> str:
    out: list[str] = []
    position = 0
    for match in _URL.finditer(line):
        url = _trim_url(match.group(0))
        end = match.start() + len(url)
        out.append(html_lib.escape(line[position : match.start()]))
        if len(url) > MAX_LINK_CHARS or len(url) <= len("https://"):
            out.append(html_lib.escape(url))
        else:
            href = html_lib.escape(url, quote=True)
            out.append(f'<a href="{href}" target="_blank" rel="{LINK_REL}">{href}</a>')
        position = end
    out.append(html_lib.escape(line[position:]))
    return "".join(out)


def _trim_url(url: str) -> str:
    """Without trailing punctuation, and without a closing bracket it did not open."""
    while url:
        if url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")")):
            url = url[:-1]
        else:
            break
    return url


# ---------------------------------------------------------------- inline images

# A `src` attribute whose value is a cid: URL, in any quoting (sanitised HTML
# always has double quotes; raw HTML, for embedAttachedImages alone, may not).
_CID_SRC = re.compile(
    r"""(?P<lead>\bsrc\s*=\s*)(?:"(?P<dq>\s*cid:[^"]*)"|'(?P<sq>\s*cid:[^']*)'|(?P<bare>cid:[^\s>"']+))""",
    re.I,
)


def content_id_key(value: str) -> str:
    """A Content-ID header value or a `cid:` URL reduced to one comparable form.

    RFC 2392: a `cid:` URL is the Content-ID without its angle brackets,
    percent-encoded. Compared case-insensitively: senders are not consistent
    about the case of the domain part, and two parts of one message differing
    only by case do not occur in practice.
    """
    value = html_lib.unescape(value).strip()
    if value[:4].lower() == "cid:":
        value = unquote(value[4:])
    return value.strip().strip("<>").strip().lower()


def referenced_content_ids(html: str) -> set[str]:
    """Content ids (as `content_id_key` forms) that the HTML's `src` attributes refer to."""
    return {content_id_key(_cid_value(match)) for match in _CID_SRC.finditer(html)}


def embeddable_parts(attachments: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Content id key -> part number of the index's attachment entries worth fetching.

    Takes the `structure["attachments"]` entries of an index record: embedded
    ones (with a Content-ID), of a safe image type, whose encoded size
    (base64 is 4/3 of the bytes, plus line breaks) may be within
    `MAX_EMBEDDED_IMAGE_BYTES`. The first entry wins for a repeated content id.
    """
    parts: dict[str, str] = {}
    for entry in attachments:
        content_id, part = entry.get("contentId"), entry.get("part")
        if not (entry.get("embedded") and content_id and part):
            continue
        if str(entry.get("contentType", "")).lower() not in SAFE_IMAGE_TYPES:
            continue
        if int(entry.get("encodedSize") or 0) * 3 // 4 > MAX_EMBEDDED_IMAGE_BYTES * 105 // 100:
            continue
        parts.setdefault(content_id_key(str(content_id)), str(part))
    return parts


def embed_images(html: str, images: Mapping[str, tuple[str, bytes]]) -> str:
    """`cid:` image sources replaced by `data:` URIs of the matching images.

    `images` maps a content id (a Content-ID header value, brackets or not) to
    the part's content type and decoded bytes. A reference keeps its `cid:` URL
    when no image matches, the type is not in `SAFE_IMAGE_TYPES`, the image is
    over `MAX_EMBEDDED_IMAGE_BYTES`, or embedding it would take the message past
    `MAX_EMBEDDED_TOTAL_BYTES`.
    """
    by_key = {content_id_key(key): value for key, value in images.items()}
    encoded: dict[str, str] = {}
    budget = MAX_EMBEDDED_TOTAL_BYTES

    def replace(match: re.Match[str]) -> str:
        nonlocal budget
        found = by_key.get(content_id_key(_cid_value(match)))
        if found is None:
            return match.group(0)
        content_type, data = found[0].lower().strip(), found[1]
        if content_type not in SAFE_IMAGE_TYPES or len(data) > MAX_EMBEDDED_IMAGE_BYTES:
            return match.group(0)
        if len(data) > budget:
            return match.group(0)
        budget -= len(data)
        key = content_id_key(_cid_value(match))
        if key not in encoded:
            encoded[key] = base64.b64encode(data).decode("ascii")
        return f'{match.group("lead")}"data:{content_type};base64,{encoded[key]}"'

    return _CID_SRC.sub(replace, html)


def _cid_value(match: re.Match[str]) -> str:
    return match.group("dq") or match.group("sq") or match.group("bare") or ""
