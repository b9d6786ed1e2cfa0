"""Template management and rendering as use cases: who may use a template, what a
render sees and escapes, how compile and render errors read, and the compiled cache."""

from __future__ import annotations

import html as html_lib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwire.domain.templates import (
    MessageTemplate,
    TemplateContent,
    TemplateContentError,
    TemplateFormat,
    TemplateFormatError,
)
from mailwire.errors import InputError, NotFoundError
from mailwire.protocols.handlebars import Limits, SafeString
from mailwire.services.template_rendering import (
    MAX_VERBATIM_DEPTH,
    compile_content,
    render_context,
    verbatim,
)
from mailwire.services.templates import CompiledCache, TemplateService
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store

GREETING = TemplateContent(
    subject="Hi {{params.name}} from {{account.name}}",
    text="Dear {{params.name}}, reply to {{account.email}} or {{service.url}}",
    html="<p>{{params.name}}</p>{{{params.raw}}}",
    preview_text="For {{params.name}}",
)


def template(content: TemplateContent, **fields: object) -> MessageTemplate:
    values: dict[str, object] = {
        "id": "t1",
        "account": None,
        "name": "T",
        "description": None,
        "format": TemplateFormat.HTML,
        "content": content,
        "created_at": 1,
        "updated_at": 1,
    }
    values.update(fields)
    return MessageTemplate(**values)  # type: ignore[arg-type]


async def add_account(store: Store, account: str, email: str | None = None) -> None:
    values = AccountValues(name=account.title(), email=email, settings={}, notify_from=0)
    await store.accounts.create_or_update(account, values, {})


async def test_render_fills_params_account_and_service(store: Store) -> None:
    await add_account(store, "ann", "ann@example.com")
    await store.settings.update({"serviceUrl": "https://mail.example.com"})
    service = TemplateService(store)
    created = await service.create(account=None, name="Greeting", content=GREETING)
    params = {"name": "Tom & <Jerry>", "raw": "<hr>"}
    rendered = await service.render(created.id, "ann", params)
    # Plain-text fields are not escaped, HTML content is (triple braces never are).
    assert rendered.subject == "Hi Tom & <Jerry> from Ann"
    assert rendered.text == (
        "Dear Tom & <Jerry>, reply to ann@example.com or https://mail.example.com"
    )
    assert rendered.html == "<p>Tom &amp; &lt;Jerry&gt;</p><hr>"
    assert rendered.preview_text == "For Tom &amp; &lt;Jerry&gt;"


async def test_absent_fields_stay_absent_and_params_may_be_missing(store: Store) -> None:
    await add_account(store, "ann")
    service = TemplateService(store)
    created = await service.create(
        account="ann", name="T", content=TemplateContent(text="x{{params.gone}}y")
    )
    rendered = await service.render(created.id, "ann", None)
    assert (rendered.subject, rendered.text, rendered.html, rendered.preview_text) == (
        None,
        "xy",
        None,
        None,
    )


async def test_only_global_or_own_templates_render(store: Store) -> None:
    for account in ("ann", "bob"):
        await add_account(store, account)
    service = TemplateService(store)
    anns = await service.create(account="ann", name="A", content=GREETING)
    shared = await service.create(account=None, name="G", content=GREETING)
    assert (await service.render(shared.id, "bob", {"name": "x"})).subject == "Hi x from Bob"
    assert (await service.render(anns.id, "ann", {"name": "x"})).subject == "Hi x from Ann"
    with pytest.raises(NotFoundError) as refused:
        await service.render(anns.id, "bob", {})
    assert refused.value.code == "TemplateNotFound"
    with pytest.raises(NotFoundError) as missing_account:
        await service.render(shared.id, "carol", {})
    assert missing_account.value.code == "AccountNotFound"
    with pytest.raises(NotFoundError):
        await service.render("no-such-id", "ann", {})


async def test_management_needs_existing_accounts_and_ids(store: Store) -> None:
    service = TemplateService(store)
    with pytest.raises(NotFoundError):
        await service.create(account="ghost", name="T", content=GREETING)
    with pytest.raises(NotFoundError):
        await service.list(account="ghost", page=0, page_size=10)
    with pytest.raises(NotFoundError):
        await service.flush("ghost")
    for call in (service.get, service.delete):
        with pytest.raises(NotFoundError):
            await call("missing")
    with pytest.raises(NotFoundError):
        await service.update("missing", {"name": "x"})
    with pytest.raises(InputError) as too_long:
        await service.create(
            account=None, name="T", content=TemplateContent(preview_text="p" * 1025)
        )
    assert too_long.value.key == "content.previewText"
    with pytest.raises(InputError):
        await service.create(account=None, name="", content=GREETING)


async def test_syntax_errors_name_the_field_line_and_column(store: Store) -> None:
    await add_account(store, "ann")
    service = TemplateService(store)
    broken = TemplateContent(subject="fine", html="<p>\n  {{#if params.x}}\n</p>")
    created = await service.create(account="ann", name="T", content=broken)
    with pytest.raises(TemplateContentError) as failed:
        await service.render(created.id, "ann", {})
    error = failed.value
    assert isinstance(error, InputError)  # the API answers 400
    assert error.field == "html"
    assert error.key == "content.html"
    assert error.line is not None
    assert error.line >= 2
    assert error.column is not None
    assert "html" in str(error)
    assert f"line {error.line}" in str(error)


async def test_markdown_is_stored_but_not_rendered(store: Store) -> None:
    await add_account(store, "ann")
    service = TemplateService(store)
    created = await service.create(
        account="ann", name="M", format=TemplateFormat.MARKDOWN, content=GREETING
    )
    assert (await service.get(created.id)).format is TemplateFormat.MARKDOWN
    with pytest.raises(TemplateFormatError, match="Markdown templates are not supported yet"):
        await service.render(created.id, "ann", {})


def test_render_limits_name_the_field() -> None:
    compiled = compile_content(
        template(TemplateContent(subject="ok", text="{{#each params.items}}{{this}}{{/each}}")),
        limits=Limits(max_steps=50),
    )
    context = render_context(
        {"items": list(range(100))}, account_name=None, account_email=None, service_url=None
    )
    with pytest.raises(TemplateContentError) as failed:
        compiled.render(context)
    assert failed.value.field == "text"
    assert "max_steps" in str(failed.value)


async def test_changes_reach_every_service_despite_the_cache(store: Store) -> None:
    await add_account(store, "ann")
    cache = CompiledCache()
    sender = TemplateService(store, cache=cache)
    editor = TemplateService(store)  # another process's service: no shared cache
    created = await editor.create(account=None, name="T", content=TemplateContent(text="v1"))
    assert (await sender.render(created.id, "ann", {})).text == "v1"
    assert len(cache) == 1
    prepared = await sender.prepare(created.id, "ann")
    assert cache.get(prepared.template) is not None  # the same version is reused
    await editor.update(created.id, {"content": TemplateContent(text="v2")})
    assert (await sender.render(created.id, "ann", {})).text == "v2"
    # A prepared template keeps the version it was prepared with (one merge, one version).
    assert (await prepared.render({})).text == "v1"
    await editor.delete(created.id)
    with pytest.raises(NotFoundError):
        await sender.render(created.id, "ann", {})


def test_cache_is_bounded_by_entries_and_characters() -> None:
    cache = CompiledCache(max_entries=2, max_chars=10)
    small = [template(TemplateContent(text="abc"), id=f"t{n}") for n in range(3)]
    for item in small:
        cache.put(item, compile_content(item))
    assert len(cache) == 2
    assert cache.get(small[0]) is None  # least recently used went first
    assert cache.get(small[2]) is not None
    big = template(TemplateContent(text="x" * 11), id="big")
    cache.put(big, compile_content(big))
    assert cache.get(big) is None
    newer = template(TemplateContent(text="abc"), id="t2", updated_at=2)
    assert cache.get(newer) is None  # another version of a cached id is a miss


def test_verbatim_marks_strings_at_every_level_up_to_its_depth() -> None:
    value = {"a": ["x", {"b": "y"}], "n": 1, "t": True, "z": None}
    converted = verbatim(value)
    assert converted == value
    assert isinstance(converted, dict)
    assert isinstance(converted["a"][0], SafeString)
    assert isinstance(converted["a"][1]["b"], SafeString)
    deep: object = "leaf"
    for _ in range(MAX_VERBATIM_DEPTH + 1):
        deep = [deep]
    innermost = verbatim(deep)
    for _ in range(MAX_VERBATIM_DEPTH + 1):
        assert isinstance(innermost, list)
        innermost = innermost[0]
    assert not isinstance(innermost, SafeString)  # past the depth it is left alone


_PLAIN = template(
    TemplateContent(subject="{{params.v}}", text="[{{params.v}}]", html="<i>{{params.v}}</i>")
)
_COMPILED = compile_content(_PLAIN)


@given(st.text(max_size=200))
def test_text_is_verbatim_and_html_escapes_what_a_browser_would_read(value: str) -> None:
    context = render_context({"v": value}, account_name=None, account_email=None, service_url=None)
    rendered = _COMPILED.render(context)
    assert rendered.subject == value
    assert rendered.text == f"[{value}]"
    assert rendered.html is not None
    body = rendered.html.removeprefix("<i>").removesuffix("</i>")
    assert "<" not in body
    assert ">" not in body
    assert html_lib.unescape(body) == value
