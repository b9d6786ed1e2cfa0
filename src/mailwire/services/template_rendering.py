"""Rendering message templates with the Handlebars renderer.

Theory of operation:

1. `compile_content` compiles each present source of a template once into a
   `CompiledTemplate` (the template service caches it per template version:
   mail merge renders one template for many recipients). A source that does
   not compile raises `TemplateContentError` naming the field, line and column;
   a markdown template raises `TemplateFormatError`.
2. `CompiledTemplate.render(context)` fills every field from one context,
   shaped as EmailEngine shapes it (`render_context`): `params` (the caller's
   values), `account` (`name`, `email`) and `service` (`url`). A field that
   fails to render (a limit, a value that cannot be printed) raises
   `TemplateContentError` naming the field.
3. Escaping follows EmailEngine's documented rule: `{{value}}` is HTML-escaped
   in HTML content (`html`, `previewText`) and not in plain-text fields
   (`subject`, `text`); `{{{value}}}` never escapes. The renderer escapes every
   `{{value}}`, so plain-text fields get a copy of the context whose strings
   are `SafeString`s (`verbatim`), which it emits as they are. What the
   renderer builds itself from those values is still escaped there: a list
   printed whole (`{{params.tags}}`), one character of a string
   (`{{name.[0]}}`) and `{{@key}}` of a loop over an object.

Compiling and rendering are CPU work bounded by `RENDER_LIMITS`; callers on the
event loop run them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from mailwire.domain.templates import (
    CONTENT_FIELDS,
    MAX_BODY_LENGTH,
    MessageTemplate,
    RenderedTemplate,
    TemplateContentError,
    TemplateFormat,
    TemplateFormatError,
)
from mailwire.protocols.handlebars import (
    Limits,
    SafeString,
    Template,
    TemplateRenderError,
    TemplateRenderLimitError,
    TemplateSyntaxError,
    compile_template,
)

#: Renderer limits: sources as long as the longest field; the rest are the
#: renderer's defaults (50,000 tags, nesting 40, 10 MiB output, 500,000 steps).
RENDER_LIMITS: Final = Limits(max_source_chars=MAX_BODY_LENGTH)
#: Levels of the caller's values turned into verbatim strings for plain-text
#: fields; values nested deeper are left as they are (and so escaped).
MAX_VERBATIM_DEPTH: Final = 64


class CompiledTemplate:
    """A template's compiled fields: render as often as needed, one context each time.
    Safe to share between threads (rendering keeps its state per call)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Template]) -> None:
        self._fields = dict(fields)

    def render(self, context: Mapping[str, Any]) -> RenderedTemplate:
        html_context = dict(context)
        plain_context: object = None
        rendered: dict[str, str | None] = {}
        for attribute, name, plain in CONTENT_FIELDS:
            template = self._fields.get(attribute)
            if template is None:
                rendered[attribute] = None
                continue
            if plain and plain_context is None:
                plain_context = verbatim(html_context)
            try:
                rendered[attribute] = template.render(plain_context if plain else html_context)
            except TemplateRenderLimitError as exc:
                raise TemplateContentError(
                    name, f"The template's {name} exceeds a rendering limit ({exc.limit}): {exc}"
                ) from None
            except TemplateRenderError as exc:
                raise TemplateContentError(
                    name, f"The template's {name} cannot be rendered: {exc}"
                ) from None
        return RenderedTemplate(**rendered)


def compile_content(
    template: MessageTemplate, *, limits: Limits = RENDER_LIMITS
) -> CompiledTemplate:
    """Compile every present field of `template`, or raise `TemplateContentError`
    (a field does not compile) or `TemplateFormatError` (markdown)."""
    if template.format is TemplateFormat.MARKDOWN:
        raise TemplateFormatError(
            "Markdown templates are not supported yet: store the html field as HTML "
            'and set "format" to "html"',
            key="format",
        )
    fields: dict[str, Template] = {}
    for attribute, name, _plain in CONTENT_FIELDS:
        source = getattr(template.content, attribute)
        if source is None:
            continue
        try:
            fields[attribute] = compile_template(source, limits=limits)
        except TemplateSyntaxError as exc:
            raise TemplateContentError(
                name,
                f"The template's {name} does not compile at line {exc.line}, "
                f"column {exc.column}: {exc.problem}",
                line=exc.line,
                column=exc.column,
            ) from None
    return CompiledTemplate(fields)


def render_context(
    params: Mapping[str, Any] | None,
    *,
    account_name: str | None,
    account_email: str | None,
    service_url: str | None,
) -> dict[str, Any]:
    """The context templates see, as in EmailEngine: `params.*`, `account.name`,
    `account.email` and `service.url`."""
    return {
        "params": dict(params or {}),
        "account": {"name": account_name, "email": account_email},
        "service": {"url": service_url},
    }


def verbatim(value: object, depth: int = 0) -> object:
    """`value` with every string (in dicts and lists too) made a `SafeString`, which
    `{{value}}` emits unescaped: the context of plain-text fields."""
    if isinstance(value, str):
        return value if isinstance(value, SafeString) else SafeString(value)
    if depth >= MAX_VERBATIM_DEPTH:
        return value
    if isinstance(value, dict):
        return {key: verbatim(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [verbatim(item, depth + 1) for item in value]
    return value
