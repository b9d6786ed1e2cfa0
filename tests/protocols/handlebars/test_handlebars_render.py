"""Golden tests: each template, context and output was checked against Handlebars 4.7.

The expected strings are what handlebars.js 4.7 renders for the same template
and JSON context (its documented behaviour where the guide covers it).
"""

from __future__ import annotations

import pytest

from mailwire.protocols.handlebars import compile_template

PEOPLE = {
    "title": "Team <A&B>",
    "people": [{"name": "Ann", "age": 31}, {"name": "Bob", "age": 0}],
    "lead": {"name": "Cy", "contact": {"email": "cy@example.com"}},
    "tags": {"red": 1, "blue": 2},
    "empty": [],
    "nothing": None,
    "zero": 0,
    "blank": "",
    "yes": True,
    "no": False,
    "weird key": "W",
    "list": [1, [2, 3], None, True, {"a": 1}, 1.5],
}

CASES: list[tuple[str, str, object, str]] = [
    # -------------------------------------------------------------- values and escaping
    ("escaped", "{{v}}", {"v": "&<>\"'`="}, "&amp;&lt;&gt;&quot;&#x27;&#x60;&#x3D;"),
    ("triple", "{{{v}}}", {"v": "<b>"}, "<b>"),
    ("ampersand", "{{& v}}|{{&v}}", {"v": "<b>"}, "<b>|<b>"),
    ("missing", "[{{nope}}][{{nope.deeper.still}}]", PEOPLE, "[][]"),
    ("null", "[{{nothing}}][{{{nothing}}}]", PEOPLE, "[][]"),
    ("booleans", "{{yes}} {{no}}", PEOPLE, "true false"),
    ("zero", "{{zero}}", PEOPLE, "0"),
    (
        "floats",
        "{{a}} {{b}} {{c}} {{d}} {{e}}",
        {"a": 1.0, "b": 1.5, "c": 1e21, "d": 1e-7, "e": -0.0},
        "1 1.5 1e+21 1e-7 0",
    ),
    ("big float", "{{v}}", {"v": 123456789012345680000.0}, "123456789012345680000"),
    ("big int", "{{v}}", {"v": 12345678901234567890}, "12345678901234567000"),
    ("list", "{{list}}", PEOPLE, "1,2,3,,true,[object Object],1.5"),
    ("dict", "{{lead}}", PEOPLE, "[object Object]"),
    ("this at root", "{{this}}|{{.}}", {"a": 1}, "[object Object]|[object Object]"),
    # -------------------------------------------------------------- paths
    ("dotted", "{{lead.contact.email}}", PEOPLE, "cy@example.com"),
    ("slashes", "{{lead/contact/email}}", PEOPLE, "cy@example.com"),
    ("this dot", "{{this.lead.name}}|{{./lead.name}}|{{this/lead/name}}", PEOPLE, "Cy|Cy|Cy"),
    ("segment literal", "{{[weird key]}}|{{'weird key'}}", PEOPLE, "W|W"),
    ("index literal", "{{people.[1].name}}", PEOPLE, "Bob"),
    ("length", "{{people.length}} {{title.length}} {{tags.length}}", PEOPLE, "2 10 "),
    ("string index", "{{title.[0]}}", PEOPLE, "T"),
    ("utf-16 length", "{{s.length}} {{s.[0]}}{{s.[3]}}", {"s": "h\U0001f600y"}, "4 hy"),
    (
        "non-canonical index",
        "[{{people.[01]}}][{{people.[-1]}}][{{people.[1.0]}}]",
        PEOPLE,
        "[][][]",
    ),
    ("literal heads", '{{"foo"}}|{{1}}|{{true}}', {"foo": "F", "1": "one", "true": "T"}, "F|one|T"),
    ("parent", "{{#with lead}}{{name}}/{{../title}}{{/with}}", PEOPLE, "Cy/Team &lt;A&amp;B&gt;"),
    ("parent past root", "[{{../title}}]", PEOPLE, "[]"),
    ("if keeps depth", "{{#if yes}}[{{../title}}]{{/if}}", PEOPLE, "[]"),
    ("root", "{{#each people}}{{@root.lead.name}}{{/each}}", PEOPLE, "CyCy"),
    # -------------------------------------------------------------- comments
    ("comments", "a{{! short }}b{{!-- long }} --}}c", {}, "abc"),
    # -------------------------------------------------------------- if / unless
    ("if else", "{{#if yes}}Y{{else}}N{{/if}}{{#if no}}Y{{else}}N{{/if}}", PEOPLE, "YN"),
    (
        "if falsy",
        "{{#if zero}}1{{/if}}{{#if blank}}2{{/if}}{{#if empty}}3{{/if}}"
        "{{#if nothing}}4{{/if}}{{#if nope}}5{{/if}}",
        PEOPLE,
        "",
    ),
    ("if truthy object", "{{#if lead}}obj{{/if}}{{#if tags}}dict{{/if}}", PEOPLE, "objdict"),
    ("if empty dict", "{{#if d}}truthy{{/if}}", {"d": {}}, "truthy"),
    ("includeZero", "{{#if zero includeZero=true}}Z{{else}}N{{/if}}", PEOPLE, "Z"),
    ("unless", "{{#unless zero}}U{{else}}N{{/unless}}", PEOPLE, "U"),
    ("unless includeZero", "{{#unless zero includeZero=true}}U{{else}}N{{/unless}}", PEOPLE, "N"),
    ("else if", "{{#if no}}A{{else if zero}}B{{else if yes}}C{{else}}D{{/if}}", PEOPLE, "C"),
    ("else if falls through", "{{#if no}}A{{else if zero}}B{{else}}D{{/if}}", PEOPLE, "D"),
    ("else unless", "{{#if no}}A{{else unless zero}}B{{/if}}", PEOPLE, "B"),
    ("caret else", "{{#if no}}A{{^}}B{{/if}}", PEOPLE, "B"),
    # -------------------------------------------------------------- each
    (
        "each list",
        "{{#each people}}{{@index}}:{{name}}{{#unless @last}}, {{/unless}}{{/each}}",
        PEOPLE,
        "0:Ann, 1:Bob",
    ),
    (
        "each data",
        "{{#each people}}{{@key}}{{@first}}{{@last}};{{/each}}",
        PEOPLE,
        "0truefalse;1falsetrue;",
    ),
    (
        "each dict",
        "{{#each tags}}{{@key}}={{this}}@{{@index}}{{@first}}{{@last}} {{/each}}",
        PEOPLE,
        "red=1@0truefalse blue=2@1falsetrue ",
    ),
    ("each else", "{{#each empty}}x{{else}}none{{/each}}", PEOPLE, "none"),
    ("each empty dict", "{{#each d}}x{{else}}none{{/each}}", {"d": {}}, "none"),
    ("each string", "{{#each title}}x{{else}}not a list{{/each}}", PEOPLE, "not a list"),
    (
        "each block params",
        "{{#each people as |p i|}}{{i}}={{p.name}}/{{../title.length}} {{/each}}",
        PEOPLE,
        "0=Ann/10 1=Bob/10 ",
    ),
    (
        "each dict block params",
        "{{#each tags as |v k|}}{{k}}:{{v}} {{/each}}",
        PEOPLE,
        "red:1 blue:2 ",
    ),
    (
        "nested each parent index",
        "{{#each m}}{{#each this}}{{@../index}}.{{@index}} {{/each}}{{/each}}",
        {"m": [[1, 2], [3]]},
        "0.0 0.1 1.0 ",
    ),
    (
        "each lookup parent",
        "{{#each a}}{{lookup ../b @index}}{{/each}}",
        {"a": [1, 2], "b": ["x", "y"]},
        "xy",
    ),
    (
        "each null item",
        "{{#each l}}[{{this}}]{{/each}}",
        {"l": [None, 0, "", False]},
        "[][0][][false]",
    ),
    (
        "null context helper this",
        "{{#each l}}{{#if true}}{{this}}{{/if}}{{/each}}",
        {"l": [None]},
        "[object Object]",
    ),
    # -------------------------------------------------------------- with
    ("with", "{{#with lead.contact}}{{email}}{{/with}}", PEOPLE, "cy@example.com"),
    (
        "with else",
        "{{#with nothing}}x{{else}}none{{/with}}{{#with blank}}x{{else}}none{{/with}}",
        PEOPLE,
        "nonenone",
    ),
    ("with zero", "{{#with zero}}[{{this}}]{{else}}none{{/with}}", PEOPLE, "[0]"),
    ("with block param", "{{#with lead as |l|}}{{l.name}}{{/with}}", PEOPLE, "Cy"),
    # -------------------------------------------------------------- mustache sections
    ("section list", "{{#people}}[{{name}}{{@index}}]{{/people}}", PEOPLE, "[Ann0][Bob1]"),
    ("section object", "{{#lead}}{{name}}{{/lead}}", PEOPLE, "Cy"),
    ("section true", "{{#yes}}{{title}}{{/yes}}", PEOPLE, "Team &lt;A&amp;B&gt;"),
    (
        "section false",
        "{{#no}}x{{else}}E{{/no}}{{#nothing}}x{{/nothing}}{{#empty}}x{{else}}E{{/empty}}",
        PEOPLE,
        "EE",
    ),
    (
        "section zero and blank",
        "{{#zero}}[{{this}}]{{/zero}}{{#blank}}<{{this}}>{{/blank}}",
        PEOPLE,
        "[0]<>",
    ),
    (
        "inverse section",
        "{{^empty}}none{{/empty}}{{^people}}none{{/people}}{{^nope}}missing{{/nope}}",
        PEOPLE,
        "nonemissing",
    ),
    ("inverse section else", "{{^l}}a{{else}}b{{/l}}", {"l": [1, 2]}, "bb"),
    ("section path", "{{#lead.contact}}{{email}}{{/lead.contact}}", PEOPLE, "cy@example.com"),
    # -------------------------------------------------------------- lookup, log, literals, (...)
    (
        "lookup",
        "{{lookup tags 'red'}}|{{lookup people 1}}|{{lookup nothing 'x'}}|{{lookup zero 'x'}}",
        PEOPLE,
        "1|[object Object]||0",
    ),
    ("lookup subexpression", "{{lookup (lookup people 0) 'name'}}", PEOPLE, "Ann"),
    (
        "with subexpression",
        "{{#with (lookup lead 'contact')}}{{email}}{{/with}}",
        PEOPLE,
        "cy@example.com",
    ),
    ("lookup block", "{{#lookup tags 'blue'}}ignored{{/lookup}}", PEOPLE, "2"),
    ("log", "a{{log 'x' level='warn'}}b{{#log title}}c{{/log}}", PEOPLE, "ab"),
    (
        "if literals",
        "{{#if 0}}a{{/if}}{{#if 1}}b{{/if}}{{#if ''}}c{{/if}}{{#if 'x'}}d{{/if}}"
        "{{#if null}}e{{/if}}{{#if undefined}}f{{/if}}{{#if true}}g{{/if}}",
        {},
        "bdg",
    ),
    ("lookup string literal", '{{lookup this "weird key"}}', PEOPLE, "W"),
    # -------------------------------------------------------------- escapes
    ("escaped mustache", "\\{{title}} {{yes}}", PEOPLE, "{{title}} true"),
    ("escaped backslash", "\\\\{{yes}}", PEOPLE, "\\true"),
]


@pytest.mark.parametrize(
    ("template", "context", "expected"),
    [pytest.param(t, c, e, id=name) for name, t, c, e in CASES],
)
def test_golden(template: str, context: object, expected: str) -> None:
    assert compile_template(template).render(context) == expected


def test_compile_once_render_many() -> None:
    template = compile_template("Dear {{name}},{{#if vip}} thanks for being VIP!{{/if}}")
    outputs = [template.render({"name": n, "vip": n == "Bo"}) for n in ("Al", "Bo", "<Cy>")]
    assert outputs == ["Dear Al,", "Dear Bo, thanks for being VIP!", "Dear &lt;Cy&gt;,"]


def test_python_attributes_are_never_reached() -> None:
    template = compile_template(
        "[{{__class__}}][{{s.__class__.__mro__}}][{{s.upper}}][{{d.keys}}][{{d.__len__}}]"
        "[{{lookup s '__class__'}}][{{l.__class__}}][{{l.append}}][{{n.real}}][{{s.__doc__}}]"
    )
    out = template.render({"s": "text", "d": {"a": 1}, "l": [1], "n": 5})
    assert out == "[][][][][][][][][][]"
