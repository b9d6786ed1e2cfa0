"""Helpers the caller supplies: calling convention, blocks, escaping, registry rules."""

from __future__ import annotations

import pytest

from mailwire.protocols.handlebars import (
    Helper,
    HelperOptions,
    Limits,
    SafeString,
    TemplateRenderError,
    TemplateRenderLimitError,
    TemplateSyntaxError,
    compile_template,
    escape,
)


def upper(text: object, *, options: HelperOptions) -> str:
    return str(text).upper() + str(options.hash.get("suffix", ""))


def bold(text: object, *, options: HelperOptions) -> SafeString:
    return SafeString(f"<b>{escape(str(text))}</b>")


def eq(left: object, right: object, *, options: HelperOptions) -> bool:
    return left == right


def bullets(items: list[object], *, options: HelperOptions) -> str:
    if not items:
        return options.inverse()
    return "<ul>" + "".join(f"<li>{options.fn(item)}</li>" for item in items) + "</ul>"


def repeat(count: int, *, options: HelperOptions) -> str:
    return "".join(
        options.fn(options.context, data={"round": n}, block_params=[n]) for n in range(count)
    )


HELPERS: dict[str, Helper] = {
    "upper": upper,
    "bold": bold,
    "eq": eq,
    "bullets": bullets,
    "repeat": repeat,
}


def render(source: str, context: object) -> str:
    return compile_template(source, helpers=HELPERS).render(context)


def test_helper_output_is_escaped_unless_safe() -> None:
    context = {"name": "<al>"}
    assert render("{{upper name suffix='!'}}", context) == "&lt;AL&gt;!"
    assert render("{{{upper name}}}", context) == "<AL>"
    assert render("{{bold name}}", context) == "<b>&lt;al&gt;</b>"


def test_helper_in_subexpression() -> None:
    template = "{{#if (eq a b)}}same{{else}}different{{/if}} {{upper (upper a)}}"
    assert render(template, {"a": "x", "b": "x"}) == "same X"
    assert render(template, {"a": "x", "b": "y"}) == "different X"


def test_block_helper_renders_body_and_inverse() -> None:
    template = "{{#bullets people}}{{name}}{{else}}nobody{{/bullets}}"
    people = [{"name": "Ann"}, {"name": "B&B"}]
    assert render(template, {"people": people}) == "<ul><li>Ann</li><li>B&amp;B</li></ul>"
    assert render(template, {"people": []}) == "nobody"


def test_block_helper_passes_data_and_block_params() -> None:
    template = "{{#repeat 3 as |n|}}[{{n}}{{@round}}{{title}}]{{/repeat}}"
    assert render(template, {"title": "t"}) == "[00t][11t][22t]"


def test_helper_sees_context_and_data() -> None:
    seen: list[tuple[object, object]] = []

    def spy(*, options: HelperOptions) -> str:
        seen.append((options.context, options.data.get("index")))
        return ""

    compile_template("{{#each xs}}{{spy}}{{/each}}", helpers={"spy": spy}).render(
        {"xs": ["a", "b"]}
    )
    assert seen == [("a", 0), ("b", 1)]


def test_render_time_helpers() -> None:
    template = compile_template("{{now}} {{upper 'x'}}", helpers={"upper": upper})
    assert template.render({"now": "ctx"}) == "ctx X"
    assert (
        template.render({"now": "ctx"}, helpers={"now": lambda *, options: "helper"}) == "helper X"
    )
    assert template.render({}, helpers={"upper": lambda v, *, options: "replaced"}) == " replaced"


def test_unknown_helper_with_arguments_is_refused_at_compile_time() -> None:
    with pytest.raises(TemplateSyntaxError, match='Missing helper: "shout"'):
        compile_template("{{shout name}}", helpers=HELPERS)


def test_builtin_names_cannot_be_replaced() -> None:
    with pytest.raises(ValueError, match="built in"):
        compile_template("{{x}}", helpers={"if": upper})
    with pytest.raises(ValueError, match="built in"):
        compile_template("{{x}}").render({}, helpers={"each": upper})
    with pytest.raises(ValueError, match="not callable"):
        compile_template("{{x}}", helpers={"x": "nope"})  # type: ignore[dict-item]


def test_failing_helper_becomes_a_render_error() -> None:
    def broken(*args: object, options: HelperOptions) -> str:
        raise KeyError("boom")

    template = compile_template("line\n  {{broken 1}}", helpers={"broken": broken})
    with pytest.raises(
        TemplateRenderError, match='line 2, column 5: helper "broken" failed'
    ) as caught:
        template.render({})
    assert isinstance(caught.value.__cause__, KeyError)


def test_helper_output_counts_against_the_output_limit() -> None:
    def flood(*, options: HelperOptions) -> str:
        return options.fn() * 1000

    source = "{{#flood}}0123456789{{/flood}}"
    enough = compile_template(
        source, helpers={"flood": flood}, limits=Limits(max_output_chars=10_000)
    )
    assert len(enough.render({})) == 10_000
    short = compile_template(
        source, helpers={"flood": flood}, limits=Limits(max_output_chars=9_999)
    )
    with pytest.raises(TemplateRenderLimitError):
        short.render({})
