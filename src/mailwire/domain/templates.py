"""Message templates: stored Handlebars sources for a message's subject, text, HTML
and preview text; their limits, and the errors rendering them reports.

A template is global (no account: every account may send with it) or belongs to
one account (only that account may). Its content holds up to four sources:
`subject`, `text`, `html` and `previewText`. Limits follow the reference:
name 256 characters, description 1024, subject 10,240, text and html 5 MiB
each, preview text 1024. One owner (an account, or the global space) holds at
most `MAX_TEMPLATES_PER_OWNER` templates, so that one client cannot grow the
table without bound.

Rendering (compiling the sources with the Handlebars renderer, escaping, the
context templates see) lives in `mailwire.services.template_rendering`; this
module holds the values, the limits and the errors it reports.

Format `markdown` (the html source is Markdown) is stored, but rendering it is
refused with `TemplateFormatError`: no Markdown converter is among the
dependencies.

Standard library and `mailwire.errors` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from mailwire.errors import InputError

MAX_NAME_LENGTH: Final = 256
MAX_DESCRIPTION_LENGTH: Final = 1024
MAX_SUBJECT_LENGTH: Final = 10 * 1024
#: Text and html sources, each (the reference's 5 MiB, counted in characters).
MAX_BODY_LENGTH: Final = 5 * 1024 * 1024
MAX_PREVIEW_TEXT_LENGTH: Final = 1024
#: The reference's bound on a template id; Mailwire's own ids are 16 characters.
MAX_TEMPLATE_ID_LENGTH: Final = 256
#: Templates one account may hold, and templates the global space may hold.
MAX_TEMPLATES_PER_OWNER: Final = 1000


class TemplateFormat(StrEnum):
    HTML = "html"
    MARKDOWN = "markdown"


#: Content fields: (attribute, the API's name, plain text). EmailEngine documents
#: that `{{value}}` is HTML-escaped in HTML content (html, previewText) and not in
#: the plain-text fields (subject, text).
CONTENT_FIELDS: Final = (
    ("subject", "subject", True),
    ("text", "text", True),
    ("html", "html", False),
    ("preview_text", "previewText", False),
)


@dataclass(frozen=True, slots=True)
class TemplateContent:
    """The Handlebars sources of a template; None where a field is absent."""

    subject: str | None = None
    text: str | None = None
    html: str | None = None
    preview_text: str | None = None

    def to_doc(self) -> dict[str, str]:
        """The present fields under the API's names (as stored)."""
        doc: dict[str, str] = {}
        for attribute, name, _plain in CONTENT_FIELDS:
            value = getattr(self, attribute)
            if value is not None:
                doc[name] = value
        return doc

    @classmethod
    def from_doc(cls, doc: object) -> TemplateContent:
        if not isinstance(doc, Mapping):
            return cls()
        values = {
            attribute: str(doc[name]) if doc.get(name) is not None else None
            for attribute, name, _plain in CONTENT_FIELDS
        }
        return cls(**values)

    @property
    def size(self) -> int:
        """Characters of source in all fields."""
        return sum(len(value) for value in self.to_doc().values())


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    id: str
    #: None for a global template.
    account: str | None
    name: str
    description: str | None
    format: TemplateFormat
    content: TemplateContent
    created_at: int
    #: Grows with every change (the store keeps it strictly increasing), so
    #: (id, updated_at) names one version of the template.
    updated_at: int

    def usable_by(self, account: str) -> bool:
        """Whether `account` may send with this template: global, or its own."""
        return self.account is None or self.account == account


@dataclass(frozen=True, slots=True)
class RenderedTemplate:
    """A template filled from one context; None where the template has no such field."""

    subject: str | None
    text: str | None
    html: str | None
    preview_text: str | None


class TemplateContentError(InputError):
    """A template's source does not compile or render. `field` is the API's name of
    the field (subject, text, html, previewText); `line` and `column` (1-based) are
    set for sources that do not compile."""

    code = "TemplateError"

    def __init__(
        self, field: str, message: str, *, line: int | None = None, column: int | None = None
    ) -> None:
        self.field = field
        self.line = line
        self.column = column
        super().__init__(message, key=f"content.{field}")


class TemplateQuotaError(InputError):
    """The owner (an account or the global space) already holds the most templates allowed."""

    code = "TemplateLimitExceeded"


class TemplateFormatError(InputError):
    """The template's format cannot be rendered (markdown, for now)."""

    code = "TemplateFormatUnsupported"


#: Longest source of each content field, by attribute.
CONTENT_LIMITS: Final = {
    "subject": MAX_SUBJECT_LENGTH,
    "text": MAX_BODY_LENGTH,
    "html": MAX_BODY_LENGTH,
    "preview_text": MAX_PREVIEW_TEXT_LENGTH,
}


def check_fields(
    *,
    name: str | None = None,
    description: str | None = None,
    content: TemplateContent | None = None,
) -> None:
    """Refuse values over the limits (the API models check them too; this guards the
    other callers). A name, when given, must not be empty."""
    if name is not None and not 0 < len(name) <= MAX_NAME_LENGTH:
        raise InputError(f"The name must be 1 to {MAX_NAME_LENGTH} characters long", key="name")
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise InputError(
            f"The description may be at most {MAX_DESCRIPTION_LENGTH} characters long",
            key="description",
        )
    if content is None:
        return
    for attribute, name_in_api, _plain in CONTENT_FIELDS:
        value = getattr(content, attribute)
        if value is not None and len(value) > CONTENT_LIMITS[attribute]:
            raise InputError(
                f"The {name_in_api} may be at most {CONTENT_LIMITS[attribute]} characters long",
                key=f"content.{name_in_api}",
            )
