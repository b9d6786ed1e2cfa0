"""Handlebars templates, sans-io: the syntax EmailEngine users write their email templates in.

Templates written for EmailEngine (Handlebars 4) must render the same here.
Supported: `{{path}}` (HTML-escaped), `{{{path}}}` and `{{& path}}`, paths
(`a.b`, `this`, `./a`, `../a`, `@root`, `[a b]`, `@index`...), comments,
whitespace control (`~`, standalone lines), block helpers `#if` (with
`includeZero`), `#unless`, `#each` (lists and dicts, `@index`, `@key`,
`@first`, `@last`, `as |item index|`), `#with`, `{{else}}` and `{{else if}}`
chains, Mustache sections `{{#x}}` / `{{^x}}`, `lookup`, `log`, literals,
subexpressions, hash arguments, and helpers the caller supplies. Partials,
decorators and raw blocks are refused.

Theory of operation, one stage per module:

1. `lexer`: source -> text runs and tags (`{{`, a sigil, tokens, `}}`), with
   Handlebars' escapes and token rules.
2. `parser`: tags -> a tree (`nodes`) of programs, blocks, mustaches and
   expressions. Block nesting is tracked on an explicit stack and, with
   subexpressions, bounded by `Limits.max_depth`; heads are resolved (helper,
   value or either) and unknown helpers refused, all at compile time.
   `whitespace` then trims text beside tags the way Handlebars does.
3. `render`: tree + context -> text, walking each program with a scope stack
   (context, `../` parent, `@` data frame, block parameters). `values` gives
   JSON values JavaScript's meaning: `String()`, truthiness, number layout,
   own-property lookups only (dict keys, list and string indexes, `length`;
   never Python attributes).

Known differences from handlebars.js 4.7, all deliberate: misuse that
Handlebars reports only when the branch runs (a built-in with the wrong
number of arguments, an unknown helper) is refused at compile time; a lone
half of a UTF-16 surrogate pair (`{{s.[1]}}` on an emoji) renders as U+FFFD;
Handlebars' numeric addition of two unescaped numbers at the very start of a
template (`{{{a}}}{{{b}}}` with 1 and 2 gives "3") is not reproduced.

`compile_template` runs stages 1-2 once; `Template.render` runs stage 3 per
context, under the `Limits` given at compile time. Errors: `errors`.

Standard library only; may import `mailwire.errors`; nothing above `protocols`.
"""

from __future__ import annotations

from mailwire.protocols.handlebars.errors import (
    TemplateError,
    TemplateRenderError,
    TemplateRenderLimitError,
    TemplateSourceLimitError,
    TemplateSyntaxError,
)
from mailwire.protocols.handlebars.limits import DEFAULT_LIMITS, Limits
from mailwire.protocols.handlebars.render import Helper, HelperOptions, Section
from mailwire.protocols.handlebars.template import Template, compile_template
from mailwire.protocols.handlebars.values import SafeString, escape

__all__ = [
    "DEFAULT_LIMITS",
    "Helper",
    "HelperOptions",
    "Limits",
    "SafeString",
    "Section",
    "Template",
    "TemplateError",
    "TemplateRenderError",
    "TemplateRenderLimitError",
    "TemplateSourceLimitError",
    "TemplateSyntaxError",
    "compile_template",
    "escape",
]
