"""The statement tree + a context -> text, with Handlebars' helpers and lookup rules.

Theory of operation. Rendering walks a program's statements in order with a
scope: the current context (`this`), the scope it was entered from (what
`../` reaches), the frames of `@` variables, innermost first (`@root`,
`@index`, `@key`, `@first`, `@last`; `@../index` reaches the enclosing
loop's frame) and the values of the block parameters in reach (`as |item
index|`). A block enters its body through a section: with a new context the
section pushes a scope; with the same context (as `{{#if}}` does) it keeps
the scope, so that `../` skips blocks that did not change the context,
exactly as in Handlebars.

A block whose head is not a helper is a Mustache section, run as Handlebars'
`blockHelperMissing` runs it: true renders the body once, false and null the
inverse, a list the body per item (like `#each`; the inverse when empty), and
any other value becomes the body's context.

Work is bounded per render: every statement and loop iteration counts
against `Limits.max_steps`, every character emitted against
`Limits.max_output_chars` (a helper's result counts only for what it adds to
the sections it rendered). Recursion follows the tree, whose depth the
parser bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from mailwire.protocols.handlebars.errors import (
    TemplateError,
    TemplateRenderError,
    TemplateRenderLimitError,
)
from mailwire.protocols.handlebars.limits import Limits
from mailwire.protocols.handlebars.nodes import (
    Block,
    Call,
    CallKind,
    Content,
    Expression,
    Literal,
    Mustache,
    Path,
    Program,
    SubExpression,
)
from mailwire.protocols.handlebars.values import (
    is_empty,
    lookup,
    property_key,
    render_value,
    same,
    to_text,
    truthy,
)

#: A helper: called as `helper(*params, options=HelperOptions)`; what it returns is
#: rendered like a value (escaped by `{{...}}` unless it is a `SafeString`).
Helper = Callable[..., object]
#: `options.fn` / `options.inverse`: `section(context=this, *, data=None, block_params=())`
#: renders the block's body or inverse; `data` adds `@` variables.
Section = Callable[..., str]

_CURRENT: Final = object()
#: What a helper sees as `this` where the context is null: Handlebars hands helpers an
#: empty object there (so `{{#if x}}{{this}}{{/if}}` prints "[object Object]").
_NULL_CONTEXT: Final[Mapping[str, object]] = MappingProxyType({})

Data = tuple[Mapping[str, object], ...]


@dataclass(frozen=True, slots=True)
class HelperOptions:
    """What a helper gets besides its positional parameters."""

    name: str
    hash: Mapping[str, object]
    #: `this` where the helper is called, and the `@` variables in reach.
    context: object
    data: Mapping[str, object]
    #: The block's body and inverse; both render "" for a helper used as `{{name ...}}`.
    fn: Section
    inverse: Section


@dataclass(frozen=True, slots=True)
class _Scope:
    context: object
    parent: _Scope | None
    data: Data
    params: tuple[tuple[object, ...], ...]

    @property
    def this(self) -> object:
        """`this` as a helper sees it."""
        return _NULL_CONTEXT if self.context is None else self.context

    def enter(self, context: object, data: Data, params: tuple[object, ...] | None) -> _Scope:
        chain = self.params if params is None else (params, *self.params)
        if same(context, self.context) or (context is _NULL_CONTEXT and self.context is None):
            return _Scope(context, self.parent, data, chain)
        return _Scope(context, self, data, chain)


def render_program(
    root: Program, context: object, helpers: Mapping[str, Helper], limits: Limits
) -> str:
    """Render `root` with `context` as `this` and `@root`."""
    scope = _Scope(context, None, (MappingProxyType({"root": context}),), ())
    try:
        return _Renderer(helpers, limits).program(root, scope)
    except RecursionError:
        raise TemplateRenderError("the template nests too deeply to render") from None


class _Renderer:
    def __init__(self, helpers: Mapping[str, Helper], limits: Limits) -> None:
        self.helpers = helpers
        self.limits = limits
        self.steps = 0
        self.chars = 0

    def tick(self, steps: int = 1) -> None:
        self.steps += steps
        if self.steps > self.limits.max_steps:
            message = f"rendering took more than {self.limits.max_steps} steps"
            raise TemplateRenderLimitError("max_steps", message)

    def emit(self, text: str) -> str:
        self.charge(len(text))
        return text

    def charge(self, count: int) -> None:
        self.chars += count
        if self.chars > self.limits.max_output_chars:
            message = f"output is longer than {self.limits.max_output_chars} characters"
            raise TemplateRenderLimitError("max_output_chars", message)

    def program(self, program: Program, scope: _Scope) -> str:
        parts: list[str] = []
        for statement in program.body:
            self.tick()
            if isinstance(statement, Content):
                parts.append(self.emit(statement.value))
            elif isinstance(statement, Mustache):
                value = self.value(statement.call, scope)
                parts.append(self.emit(render_value(value, escaped=statement.escaped)))
            elif isinstance(statement, Block):
                parts.append(self.block(statement, scope))
        return "".join(parts)

    def run(
        self,
        program: Program | None,
        scope: _Scope,
        context: object,
        data: Data | None = None,
        params: Sequence[object] = (),
    ) -> str:
        """Render a block's body or inverse with `context` as `this`."""
        if program is None:
            return ""
        declared = None
        if program.params:
            padding = (None,) * (len(program.params) - len(params))
            declared = (*params[: len(program.params)], *padding)
        return self.program(program, scope.enter(context, data or scope.data, declared))

    def value(self, call: Call, scope: _Scope) -> object:
        """The value of `{{call}}` or `(call)`."""
        helper = None if call.kind is CallKind.VALUE else self.helpers.get(call.name)
        if helper is not None:
            return self.invoke(helper, call, scope, None)
        if call.kind is not CallKind.HELPER:
            return self.resolve(call.head, scope)
        if call.name == "lookup":
            container, key = (self.evaluate(param, scope) for param in call.params)
            return self.property(container, property_key(key)) if truthy(container) else container
        return None  # log: template logging stays out of Mailwire's logs

    def block(self, block: Block, scope: _Scope) -> str:
        call = block.call
        helper = None if call.kind is CallKind.VALUE else self.helpers.get(call.name)
        if helper is not None:
            before = self.chars
            result = to_text(self.invoke(helper, call, scope, block))
            self.charge(max(0, len(result) - (self.chars - before)))
            return result
        if call.kind is not CallKind.HELPER:
            return self.section(self.resolve(call.head, scope), block, scope)
        if call.name in ("if", "unless"):
            return self.conditional(block, scope)
        if call.name == "each":
            return self.each(self.evaluate(call.params[0], scope), block, scope)
        if call.name == "with":
            return self.with_block(self.evaluate(call.params[0], scope), block, scope)
        return self.emit(to_text(self.value(call, scope)))  # lookup, log

    def with_block(self, context: object, block: Block, scope: _Scope) -> str:
        """`#with`: the body with `context` as `this`, unless it is empty."""
        if is_empty(context):
            return self.run(block.inverse, scope, scope.this)
        return self.run(block.program, scope, context, params=(context,))

    def conditional(self, block: Block, scope: _Scope) -> str:
        """`#if` and `#unless`; `includeZero=true` makes 0 true."""
        call = block.call
        condition = self.evaluate(call.params[0], scope)
        zero = any(
            key == "includeZero" and truthy(self.evaluate(value, scope)) for key, value in call.hash
        )
        empty = (not zero and not truthy(condition)) or is_empty(condition)
        chosen = block.inverse if empty == (call.name == "if") else block.program
        return self.run(chosen, scope, scope.this)

    def section(self, value: object, block: Block, scope: _Scope) -> str:
        """A block on a value that is not a helper, rendered as a Mustache section."""
        if value is True:
            return self.run(block.program, scope, scope.this)
        if value is None or value is False:
            return self.run(block.inverse, scope, scope.this)
        if isinstance(value, list | tuple):
            return self.each(value, block, scope)
        return self.run(block.program, scope, value)

    def each(self, value: object, block: Block, scope: _Scope) -> str:
        """`#each` over a list (keys are indexes) or a dict; the inverse when there is nothing."""
        if not isinstance(value, dict | list | tuple) or not value:
            return self.run(block.inverse, scope, scope.this)
        items: Iterable[tuple[object, object]]
        items = value.items() if isinstance(value, dict) else enumerate(value)
        last = len(value) - 1
        parts: list[str] = []
        for index, (key, item) in enumerate(items):
            self.tick()
            frame = {
                **scope.data[0],
                "key": key,
                "index": index,
                "first": index == 0,
                "last": index == last,
            }
            data = (MappingProxyType(frame), *scope.data)
            parts.append(self.run(block.program, scope, item, data, (item, key)))
        return "".join(parts)

    def resolve(self, path: Path, scope: _Scope) -> object:
        """The value `path` names in `scope` (None when any step is missing)."""
        value: object = None
        rest = path.parts
        if path.param is not None:
            level, index = path.param
            value = scope.params[level][index] if level < len(scope.params) else None
        elif path.data:
            if path.depth < len(scope.data):
                value, rest = scope.data[path.depth].get(rest[0]), rest[1:]
        else:
            target: _Scope | None = scope
            for _ in range(path.depth):
                target = target.parent if target is not None else None
            value = target.context if target is not None else None
        for part in rest:
            if value is None:
                break
            value = self.property(value, part)
        return value

    def property(self, container: object, key: str) -> object:
        """`lookup`, charging the UTF-16 encoding of a long non-ASCII string as work done."""
        if isinstance(container, str) and not container.isascii():
            self.tick(len(container) >> 14)  # about one step's time per 16K characters
        return lookup(container, key)

    def evaluate(self, expression: Expression, scope: _Scope) -> object:
        if isinstance(expression, Literal):
            return expression.value
        if isinstance(expression, SubExpression):
            return self.value(expression.call, scope)
        return self.resolve(expression, scope)

    def invoke(self, helper: Helper, call: Call, scope: _Scope, block: Block | None) -> object:
        args = [self.evaluate(param, scope) for param in call.params]
        named = {key: self.evaluate(value, scope) for key, value in call.hash}
        options = HelperOptions(
            name=call.name,
            hash=MappingProxyType(named),
            context=scope.this,
            data=scope.data[0],
            fn=self.section_for(block.program if block else None, scope),
            inverse=self.section_for(block.inverse if block else None, scope),
        )
        try:
            return helper(*args, options=options)
        except TemplateError:
            raise
        except Exception as exc:
            where = f"line {call.line}, column {call.column}"
            raise TemplateRenderError(f'{where}: helper "{call.name}" failed: {exc}') from exc

    def section_for(self, program: Program | None, scope: _Scope) -> Section:
        """`options.fn` or `options.inverse` for a helper."""

        def section(
            context: object = _CURRENT,
            *,
            data: Mapping[str, object] | None = None,
            block_params: Sequence[object] = (),
        ) -> str:
            frames = scope.data
            if data is not None:
                frames = (MappingProxyType({**frames[0], **data}), *frames)
            this = scope.this if context is _CURRENT else context
            return self.run(program, scope, this, frames, block_params)

        return section
