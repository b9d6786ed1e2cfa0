"""Message templates as a use case: manage them, and render one for a sending account.

Management follows the reference: a template is global or belongs to an
existing account (404 otherwise); listing shows one owner's templates (an
account's, or the global ones when no account is named; an account's listing
does not include the global templates, as in EmailEngine); flushing removes all
of an account's. Sources are stored as sent: a template that does not compile
is reported when it is rendered, since the reference accepts any text.

Rendering is for the submit path: `prepare(template_id, account)` loads the
template (it must be global or the account's own, else 404), the account's
name and email and the service URL once, and returns a `PreparedTemplate` that
renders it for each recipient's `params`. Compiled templates are cached by
(id, updated_at), which names one version, in a cache bounded by entries and
by source characters. Compiling and rendering (`template_rendering`) are CPU
work bounded by the renderer's limits (a 5 MiB source compiles in about half a
second), so they run in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from mailwire.domain.templates import (
    CONTENT_FIELDS,
    MessageTemplate,
    RenderedTemplate,
    TemplateContent,
    TemplateFormat,
    check_fields,
)
from mailwire.errors import NotFoundError
from mailwire.logs import get_logger
from mailwire.services.accounts import not_found as account_not_found
from mailwire.services.template_rendering import (
    CompiledTemplate,
    compile_content,
    render_context,
)
from mailwire.store.store import Store
from mailwire.store.templates import TemplatePage

log = get_logger(__name__)

#: Compiled templates kept, and the source characters they may hold together.
CACHE_ENTRIES: Final = 128
CACHE_CHARS: Final = 64 * 1024 * 1024


def not_found() -> NotFoundError:
    return NotFoundError("No template has this id", code="TemplateNotFound")


class CompiledCache:
    """Compiled templates by id, each valid for one version (`updated_at`); least
    recently used first out. A template larger than the whole budget is not kept."""

    def __init__(self, *, max_entries: int = CACHE_ENTRIES, max_chars: int = CACHE_CHARS) -> None:
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._entries: OrderedDict[str, tuple[int, int, CompiledTemplate]] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, template: MessageTemplate) -> CompiledTemplate | None:
        entry = self._entries.get(template.id)
        if entry is None or entry[0] != template.updated_at:
            return None
        self._entries.move_to_end(template.id)
        return entry[2]

    def put(self, template: MessageTemplate, compiled: CompiledTemplate) -> None:
        self.discard(template.id)
        size = template.content.size
        if size > self._max_chars:
            return
        self._entries[template.id] = (template.updated_at, size, compiled)
        self._chars += size
        while len(self._entries) > self._max_entries or self._chars > self._max_chars:
            _id, (_version, dropped, _compiled) = self._entries.popitem(last=False)
            self._chars -= dropped

    def discard(self, template_id: str) -> None:
        entry = self._entries.pop(template_id, None)
        if entry is not None:
            self._chars -= entry[1]


class PreparedTemplate:
    """One template, compiled and bound to the sending account: render it per recipient."""

    __slots__ = ("_base", "_compiled", "template")

    def __init__(
        self, template: MessageTemplate, compiled: CompiledTemplate, base: Mapping[str, Any]
    ) -> None:
        self.template = template
        self._compiled = compiled
        self._base = dict(base)

    def render_now(self, params: Mapping[str, Any] | None) -> RenderedTemplate:
        """Render on this thread (`TemplateContentError` on a render failure)."""
        return self._compiled.render({**self._base, "params": dict(params or {})})

    async def render(self, params: Mapping[str, Any] | None) -> RenderedTemplate:
        """Render in a worker thread."""
        return await asyncio.to_thread(self.render_now, params)


class ContentSource:
    """A submit's content, ready for one message or one per mail-merge recipient."""

    __slots__ = ("_base", "_compiled", "sources")

    def __init__(
        self,
        sources: TemplateContent,
        compiled: CompiledTemplate | None,
        base: Mapping[str, Any],
    ) -> None:
        self.sources = sources
        self._compiled = compiled
        self._base = base

    async def render(self, params: Mapping[str, Any] | None) -> RenderedTemplate:
        """The fields for one message (`TemplateContentError` on a render failure)."""
        if self._compiled is None:
            content = self.sources
            return RenderedTemplate(
                content.subject, content.text, content.html, content.preview_text
            )
        compiled = self._compiled
        context = {**self._base, "params": dict(params or {})}
        return await asyncio.to_thread(compiled.render, context)


class TemplateService:
    def __init__(self, store: Store, *, cache: CompiledCache | None = None) -> None:
        self._store = store
        self._cache = cache if cache is not None else CompiledCache()

    async def list(self, *, account: str | None, page: int, page_size: int) -> TemplatePage:
        if account is not None:
            await self._require_account(account)
        return await self._store.templates.page(
            account=account, offset=page * page_size, limit=page_size
        )

    async def get(self, template_id: str) -> MessageTemplate:
        template = await self._store.templates.get(template_id)
        if template is None:
            raise not_found()
        return template

    async def create(
        self,
        *,
        account: str | None,
        name: str,
        description: str | None = None,
        format: TemplateFormat = TemplateFormat.HTML,
        content: TemplateContent,
    ) -> MessageTemplate:
        check_fields(name=name, description=description, content=content)
        created = await self._store.templates.create(
            account=account, name=name, description=description, format=format, content=content
        )
        if created is None:
            raise account_not_found(account or "")
        log.info("template.created", template=created.id, account=account)
        return created

    async def update(self, template_id: str, fields: Mapping[str, Any]) -> MessageTemplate:
        """Change the given fields: name, description, format, content (a
        `TemplateContent` that replaces the stored content whole)."""
        check_fields(
            name=fields.get("name"),
            description=fields.get("description"),
            content=fields.get("content"),
        )
        updated = await self._store.templates.update(template_id, fields)
        if updated is None:
            raise not_found()
        self._cache.discard(template_id)
        log.info("template.updated", template=template_id, account=updated.account)
        return updated

    async def delete(self, template_id: str) -> MessageTemplate:
        """Remove a template; returns what was removed."""
        removed = await self._store.templates.delete(template_id)
        if removed is None:
            raise not_found()
        self._cache.discard(template_id)
        log.info("template.deleted", template=template_id, account=removed.account)
        return removed

    async def flush(self, account: str) -> int:
        """Remove every template of an existing account; how many went."""
        await self._require_account(account)
        removed = await self._store.templates.flush(account)
        log.info("template.flushed", account=account, removed=removed)
        return removed

    async def prepare(self, template_id: str, account: str) -> PreparedTemplate:
        """Load and compile a template for sending from `account`: 404 unless the
        account exists and the template is global or the account's own; 400
        (`TemplateContentError`, `TemplateFormatError`) when it cannot be compiled."""
        owner = await self._store.accounts.get(account)
        if owner is None:
            raise account_not_found(account)
        template = await self._store.templates.get(template_id)
        if template is None or not template.usable_by(account):
            raise not_found()
        compiled = self._cache.get(template)
        if compiled is None:
            compiled = await asyncio.to_thread(compile_content, template)
            self._cache.put(template, compiled)
        service_url = await self._store.settings.get("serviceUrl")
        base = render_context(
            None,
            account_name=owner.name,
            account_email=owner.email,
            service_url=service_url if isinstance(service_url, str) else None,
        )
        return PreparedTemplate(template, compiled, base)

    async def for_sending(
        self,
        account: str,
        own: TemplateContent,
        *,
        template_id: str | None,
        render: bool,
    ) -> ContentSource:
        """The content of a submit: the template's fields (when `template_id`) with the
        request's own fields in their place where given, compiled once and rendered per
        message (`render` False: sent as written, no Handlebars)."""
        template: MessageTemplate | None = None
        if template_id is not None:
            template = (await self.prepare(template_id, account)).template
        base = template.content if template is not None else TemplateContent()
        merged = TemplateContent(
            **{
                attribute: getattr(own, attribute)
                if getattr(own, attribute) is not None
                else getattr(base, attribute)
                for attribute, _name, _plain in CONTENT_FIELDS
            }
        )
        if not render:
            return ContentSource(merged, None, {})
        owner = await self._store.accounts.get(account)
        if owner is None:
            raise account_not_found(account)
        adhoc = MessageTemplate(
            id="",
            account=account,
            name="",
            description=None,
            format=template.format if template is not None else TemplateFormat.HTML,
            content=merged,
            created_at=0,
            updated_at=0,
        )
        compiled = await asyncio.to_thread(compile_content, adhoc)
        service_url = await self._store.settings.get("serviceUrl")
        context = render_context(
            None,
            account_name=owner.name,
            account_email=owner.email,
            service_url=service_url if isinstance(service_url, str) else None,
        )
        return ContentSource(merged, compiled, context)

    async def render(
        self, template_id: str, account: str, params: Mapping[str, Any] | None
    ) -> RenderedTemplate:
        """`prepare` and render once (for many recipients, prepare once instead)."""
        prepared = await self.prepare(template_id, account)
        return await prepared.render(params)

    async def _require_account(self, account: str) -> None:
        if not await self._store.accounts.exists(account):
            raise account_not_found(account)
