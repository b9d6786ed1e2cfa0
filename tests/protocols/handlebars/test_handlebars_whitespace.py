"""Whitespace control and standalone lines, checked against Handlebars 4.7's output."""

from __future__ import annotations

import pytest

from mailwire.protocols.handlebars import compile_template

CONTEXT = {"a": True, "b": False, "l": [1, 2], "name": "N", "empty": []}

CASES: list[tuple[str, str, object, str]] = [
    # -------------------------------------------------------------- ~
    ("strip both", "x  {{~name~}}  \n y", CONTEXT, "xNy"),
    ("strip before only", "x \n {{~name}} y", CONTEXT, "xN y"),
    ("strip unescaped", "x {{~{name}~}} y", CONTEXT, "xNy"),
    ("strip block inside", "{{#if a~}}  \n A  {{~/if}}", CONTEXT, "A"),
    ("strip block outside", "x  {{~#if a}}A{{/if~}}  y", CONTEXT, "xAy"),
    ("strip else", "{{#if b}} A {{~else~}} B {{/if}}", CONTEXT, "B "),
    ("strip comment", "a  {{~! note ~}}  b", CONTEXT, "ab"),
    ("strip long comment", "a \n {{~!-- note --~}} \n b", CONTEXT, "ab"),
    # -------------------------------------------------------------- standalone lines
    (
        "standalone block",
        "<ul>\n  {{#each l}}\n  <li>{{this}}</li>\n  {{/each}}\n</ul>\n",
        CONTEXT,
        "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>\n",
    ),
    (
        "standalone if else",
        "a\n  {{#if b}}\n  B\n  {{else}}\n  C\n  {{/if}}\nz",
        CONTEXT,
        "a\n  C\nz",
    ),
    ("standalone at start and end", "  {{#if a}}  \n  A\n  {{/if}}  ", CONTEXT, "  A\n"),
    ("standalone comment", "a\n  {{! note }}  \nb", CONTEXT, "a\nb"),
    ("standalone crlf", "\r\n  {{#if a}}\r\n  A\r\n  {{/if}}\r\n", CONTEXT, "\r\n  A\r\n"),
    ("mustache is never standalone", "  {{name}}  \nz", CONTEXT, "  N  \nz"),
    ("empty block is not standalone", "{{#if a}}{{/if}}\nz", CONTEXT, "\nz"),
    ("tag with text is not standalone", "x {{#if a}}\nA\n{{/if}} y", CONTEXT, "x \nA\n y"),
    (
        "nested standalone",
        "{{#each l}}\n  {{#if ../a}}\n    [{{this}}]\n  {{/if}}\n{{/each}}\n",
        CONTEXT,
        "    [1]\n    [2]\n",
    ),
    ("inverse section standalone", "a\n{{^empty}}\nnone\n{{/empty}}\nb", CONTEXT, "a\nnone\nb"),
    # Handlebars keeps the indent before the closing tag of an else-if chain (its quirk).
    (
        "else if chain",
        "x\n  {{#if b}}\n  A\n  {{else if a}}\n  B\n  {{/if}}\ny",
        CONTEXT,
        "x\n  B\n  y",
    ),
    (
        "else if chain with else",
        "x\n  {{#if b}}\n  A\n  {{else if a}}\n  B\n  {{else}}\n  C\n  {{/if}}\ny",
        CONTEXT,
        "x\n  B\ny",
    ),
    ("escaped text before block", "\\{{x}}\n{{#if a}}\nA\n{{/if}}", CONTEXT, "{{x}}\nA\n"),
]

#: An `{{~else if}}` chain, where Handlebars' `~` reaches one more branch than it is written on.
CHAIN = (
    "{{#if a}}\nA\n{{else if b}}\nB\n{{else if c}}\nC\n{{~else if d}}\nD\n"
    "{{else if e}}\nE\n{{else if f}}\nF\n{{else if g}}\nG\n{{/if}}\n"
)
CHAIN_OUTPUTS = {"a": "A\n", "b": "B\n", "c": "C", "d": "D\n", "e": "E", "f": "F\n", "g": "G\n"}


@pytest.mark.parametrize(
    ("template", "context", "expected"),
    [pytest.param(t, c, e, id=name) for name, t, c, e in CASES],
)
def test_whitespace(template: str, context: object, expected: str) -> None:
    assert compile_template(template).render(context) == expected


@pytest.mark.parametrize(("key", "expected"), sorted(CHAIN_OUTPUTS.items()))
def test_else_if_chain_strip_matches_handlebars(key: str, expected: str) -> None:
    assert compile_template(CHAIN).render({key: True}) == expected
