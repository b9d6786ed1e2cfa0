"""Property tests: compiling fails only with TemplateSyntaxError; `{{x}}` escapes any string."""

from __future__ import annotations

import html
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwire.protocols.handlebars import (
    TemplateRenderError,
    TemplateSyntaxError,
    compile_template,
)

#: Fragments that steer random text into the corners of the template grammar.
PIECES = [
    "{{",
    "}}",
    "{{{",
    "}}}",
    "~",
    "#",
    "/",
    "^",
    "&",
    "!",
    "--",
    "else",
    " ",
    "\n",
    "\r\n",
    "a",
    "b",
    ".",
    "..",
    "this",
    "@index",
    "@root",
    "@../key",
    "[",
    "]",
    "x y",
    "(",
    ")",
    "=",
    "|",
    "as |",
    "'s'",
    '"q"',
    "1",
    "-2",
    "1.5",
    "true",
    "null",
    "undefined",
    "\\",
    "if",
    "each",
    "with",
    "unless",
    "lookup",
    "log",
    ">",
    "*",
    "includeZero=true",
]
CONTEXT = {"a": {"b": "AB"}, "b": [1, [2], None], "x y": "<XY>", "if": 0, "s": "S", "this": 1}

ENTITY = re.compile("&(?:amp|lt|gt|quot|#x27|#x60|#x3D);")

template_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(PIECES), max_size=24).map("".join),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=16).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(template_text)
def test_compile_raises_only_syntax_errors(source: str) -> None:
    try:
        template = compile_template(source)
    except TemplateSyntaxError:
        return
    try:
        output = template.render(CONTEXT)
    except TemplateRenderError:
        return
    assert isinstance(output, str)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_double_braces_escape_any_string(value: str) -> None:
    output = compile_template("{{x}}").render({"x": value})
    assert not any(char in output for char in "<>\"'`=")
    assert "&" not in ENTITY.sub("", output)
    assert html.unescape(output) == value
