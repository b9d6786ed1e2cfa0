"""Refusals: syntax errors with their position, named limits, and misused helpers."""

from __future__ import annotations

import pytest

from mailwire.errors import InputError
from mailwire.protocols.handlebars import (
    Limits,
    TemplateRenderLimitError,
    TemplateSourceLimitError,
    TemplateSyntaxError,
    compile_template,
)

SYNTAX_ERRORS: list[tuple[str, int, int, str]] = [
    ("Hello\n  {{#if a}}\nx", 2, 3, "block 'if' is never closed"),
    ("{{#if a}}\n{{/each}}", 2, 1, "'/each' does not close '#if' (opened at line 1, column 1)"),
    ("line1\n  {{foo bar}}", 2, 5, 'Missing helper: "foo"'),
    ("{{#foo bar}}x{{/foo}}", 1, 4, 'Missing helper: "foo"'),
    ("{{a.b c}}", 1, 3, 'Missing helper: "a.b"'),
    ("{{lookup (nope) 'x'}}", 1, 11, 'Missing helper: "nope"'),
    ("{{> partial}}", 1, 1, "partials ({{> name}}) are not supported"),
    ("{{#> layout}}{{/layout}}", 1, 1, "partial blocks ({{#> name}}) are not supported"),
    ("{{#* inline 'x'}}{{/inline}}", 1, 1, "decorator blocks ({{#* name}}) are not supported"),
    ("{{{{raw}}}}{{{{/raw}}}}", 1, 1, "raw blocks ({{{{name}}}}) are not supported"),
    ("ok\n{{x}}}", 2, 4, "expected '}}' to close the tag"),
    ("{{{x}}", 1, 5, "expected '}}}' to close the tag"),
    ("a {{x", 1, 3, "tag is never closed (missing '}}')"),
    ("a {{x y", 1, 3, "tag is never closed (missing '}}')"),
    ("{{!-- open", 1, 1, "comment is never closed"),
    ("{{#if}}x{{/if}}", 1, 4, "#if requires exactly 1 argument"),
    ("{{#with a b}}x{{/with}}", 1, 4, "#with requires exactly 1 argument"),
    ("{{lookup a}}", 1, 3, "#lookup requires exactly 2 arguments"),
    ("{{if a}}", 1, 3, "'if' is a block helper: write {{#if ...}}"),
    ("{{else}}", 1, 1, "{{else}} outside a block, or a second {{else}}"),
    ("{{#if a}}{{else}}{{else}}{{/if}}", 1, 18, "{{else}} outside a block, or a second {{else}}"),
    ("{{/if}}", 1, 1, "'/if' closes no open block"),
    ("{{x.this}}", 1, 3, "invalid path 'x.this'"),
    ("{{x.0}}", 1, 5, "unexpected '0'"),
    ("{{a b=}}", 1, 1, "tag ends too early"),
    ("{{#if a b=1 c}}{{/if}}", 1, 13, "unexpected 'c'"),
    ("{{#each a as ||}}{{/each}}", 1, 15, "unexpected '|'"),
    ("{{x as |y|}}", 1, 5, "unexpected 'as |'"),
    ("{{(x)}}", 1, 3, "unexpected '('"),
    ("{{x;}}", 1, 3, "unexpected 'x' in tag"),
]


@pytest.mark.parametrize(("source", "line", "column", "problem"), SYNTAX_ERRORS)
def test_syntax_errors_carry_line_and_column(
    source: str, line: int, column: int, problem: str
) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        compile_template(source)
    assert (caught.value.line, caught.value.column, caught.value.problem) == (line, column, problem)
    assert str(caught.value) == f"line {line}, column {column}: {problem}"
    assert isinstance(caught.value, InputError)
    assert caught.value.code == "TemplateSyntaxError"


def test_source_size_limit() -> None:
    limits = Limits(max_source_chars=100)
    compile_template("x" * 100, limits=limits)
    with pytest.raises(TemplateSourceLimitError) as caught:
        compile_template("x" * 101, limits=limits)
    assert caught.value.limit == "max_source_chars"
    assert isinstance(caught.value, TemplateSyntaxError)


def test_default_source_limit_is_one_mebibyte() -> None:
    with pytest.raises(TemplateSourceLimitError):
        compile_template("x" * (1024 * 1024 + 1))


def test_token_count_limit() -> None:
    limits = Limits(max_tokens=8)
    compile_template("a{{b c}}\\{{d}}{{!e}}{{f 'g'}}", helpers={"b": str, "f": str}, limits=limits)
    with pytest.raises(TemplateSourceLimitError) as caught:
        compile_template(
            "a{{b c}}\\{{d}}{{!e}}\n{{f 'g' 'h'}}", helpers={"b": str, "f": str}, limits=limits
        )
    assert (caught.value.limit, caught.value.line, caught.value.column) == ("max_tokens", 2, 1)


@pytest.mark.parametrize(
    "source",
    ["{{a}}" * 200_000, "{{#each " + "(lookup a 'b') " * 60_000 + "}}{{/each}}"],
    ids=["many tags", "one huge tag"],
)
def test_default_limits_bound_a_mebibyte_of_tags(source: str) -> None:
    with pytest.raises(TemplateSourceLimitError) as caught:
        compile_template(source)
    assert caught.value.limit == "max_tokens"


def test_block_nesting_limit() -> None:
    depth = Limits().max_depth
    compile_template("{{#if a}}" * depth + "{{/if}}" * depth)
    with pytest.raises(TemplateSourceLimitError) as caught:
        compile_template("{{#if a}}" * (depth + 1) + "{{/if}}" * (depth + 1))
    assert caught.value.limit == "max_depth"
    assert (caught.value.line, caught.value.column) == (1, depth * 9 + 1)


def test_hostile_nesting_never_reaches_the_recursion_limit() -> None:
    for source in (
        "{{#each a}}" * 100_000,
        "{{lookup " + "(lookup " * 100_000 + "a 'b'" + ") 'b'" * 100_000 + "}}",
        "{{#if a}}{{else if b}}" * 50_000,
    ):
        with pytest.raises(TemplateSourceLimitError):
            compile_template(source)


def test_subexpression_nesting_limit() -> None:
    limits = Limits(max_depth=3)
    three = "{{lookup (lookup (lookup (lookup a 'b') 'c') 'd') 'e'}}"
    compile_template(three, limits=limits)
    with pytest.raises(TemplateSourceLimitError):
        compile_template("{{#if a}}" + three + "{{/if}}", limits=limits)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        Limits(max_depth=101)
    with pytest.raises(ValueError, match="at least 1"):
        Limits(max_steps=0)


def test_output_limit() -> None:
    source = "{{#each a}}{{#each ../a}}0123456789{{/each}}{{/each}}"
    context = {"a": list(range(100))}
    assert len(compile_template(source).render(context)) == 100_000
    small = compile_template(source, limits=Limits(max_output_chars=99_999))
    with pytest.raises(TemplateRenderLimitError) as caught:
        small.render(context)
    assert caught.value.limit == "max_output_chars"


def test_default_output_limit_counts_values() -> None:
    template = compile_template("{{{x}}}{{{x}}}")
    half = "y" * (5 * 1024 * 1024)
    assert len(template.render({"x": half})) == 10 * 1024 * 1024
    with pytest.raises(TemplateRenderLimitError):
        template.render({"x": half + "y"})


def test_step_limit_stops_huge_loops_over_nested_lists() -> None:
    row = list(range(1000))
    context = {"grid": [[row] * 1000] * 1000}  # a billion cells, shared references
    template = compile_template(
        "{{#each grid}}{{#each this}}{{#each this}}.{{/each}}{{/each}}{{/each}}",
        limits=Limits(max_steps=20_000),
    )
    with pytest.raises(TemplateRenderLimitError) as caught:
        template.render(context)
    assert caught.value.limit == "max_steps"


def test_step_limit_counts_long_non_ascii_strings() -> None:
    template = compile_template("{{s.length}}", limits=Limits(max_steps=100))
    long = 16384 * 200
    assert template.render({"s": "e" * long}) == str(long)
    with pytest.raises(TemplateRenderLimitError):
        template.render({"s": "\u00e9" * long})


def test_step_limit_counts_statements() -> None:
    template = compile_template("a{{b}}c", limits=Limits(max_steps=3))
    assert template.render({"b": "B"}) == "aBc"
    with pytest.raises(TemplateRenderLimitError):
        compile_template("a{{b}}c{{b}}", limits=Limits(max_steps=3)).render({"b": "B"})
