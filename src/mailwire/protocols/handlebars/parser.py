"""Pieces from the lexer -> the statement tree, with Handlebars' checks at compile time.

Theory of operation. Text, comments and mustaches are appended to the body
of the innermost open block (the root program when none is open). A block
tag pushes an open block; `{{else}}` switches it to its inverse; `{{else
helper ...}}` switches it too and pushes a chained block whose whole inverse
is that block (how Handlebars represents `{{else if}}`); the closing tag pops
the chain and the block it belongs to, whose name it must repeat. Open blocks
live on an explicit stack, so no template can drive the parser's recursion;
only parenthesised subexpressions recurse, and together with open blocks they
are bounded by `Limits.max_depth`, which bounds the renderer's recursion too.

Each tag's head is resolved once, here: a name that takes arguments must be a
built-in helper or one given to `compile_template` ("Missing helper", as
Handlebars reports at run time); the built-ins' argument counts are checked;
a name that opens with a block parameter of an enclosing `as |x|` becomes a
reference to it. Finally the whitespace rules run over the tree.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final

from mailwire.protocols.handlebars.errors import TemplateSourceLimitError, TemplateSyntaxError
from mailwire.protocols.handlebars.lexer import Tag, Text, Token, position, scan, syntax_error
from mailwire.protocols.handlebars.limits import Limits
from mailwire.protocols.handlebars.nodes import (
    Block,
    Call,
    CallKind,
    Comment,
    Content,
    Expression,
    Literal,
    Mustache,
    Path,
    Program,
    Statement,
    Strip,
    SubExpression,
)
from mailwire.protocols.handlebars.whitespace import apply_whitespace_control

#: Helpers every template has, as in Handlebars; their names cannot be given again.
BUILTINS: Final = frozenset({"if", "unless", "each", "with", "lookup", "log"})
#: Built-ins that only make sense with a body, and the arguments each takes.
_BLOCK_ONLY: Final = {"if": 1, "unless": 1, "each": 1, "with": 1}
_ARGUMENTS: Final = {**_BLOCK_ONLY, "lookup": 2}
_LITERALS: Final = {"BOOLEAN", "UNDEFINED", "NULL", "NUMBER", "STRING"}
_NAMES: Final = {"ID", "LITERAL_ID"}


@dataclass(slots=True)
class _Open:
    """A block whose closing tag has not been seen yet."""

    call: Call
    strip: Strip
    offset: int
    inverted: bool = False
    chained: bool = False
    program: Program = field(default_factory=Program)
    inverse: Program | None = None
    inverse_strip: Strip = field(default_factory=Strip)


def parse(source: str, *, helpers: Collection[str], limits: Limits) -> Program:
    """The statement tree of `source`, or `TemplateSyntaxError`."""
    if len(source) > limits.max_source_chars:
        message = f"template is longer than {limits.max_source_chars} characters"
        raise TemplateSourceLimitError("max_source_chars", message, 1, 1)
    root = _Parser(source, helpers, limits).parse()
    apply_whitespace_control(root)
    return root


class _Parser:
    def __init__(self, source: str, helpers: Collection[str], limits: Limits) -> None:
        self.source = source
        self.helpers = helpers
        self.limits = limits
        self.root = Program()
        self.stack: list[_Open] = []
        # The tag being read, and the index of its next token.
        self.tag = Tag("mustache", (), False, False, 0)
        self.index = 0
        # Where `position` last counted to: offset, its line, and where that line starts.
        self.line_offset, self.line, self.line_start = 0, 1, 0

    def parse(self) -> Program:
        tokens = 0
        for piece in scan(self.source):
            if isinstance(piece, Tag):
                tokens += 1 + len(piece.tokens)
            else:
                tokens += piece.value.startswith("{{")  # an escaped tag
            if tokens > self.limits.max_tokens:
                line, column = position(self.source, piece.offset)
                message = f"template has more than {self.limits.max_tokens} tags and tokens"
                raise TemplateSourceLimitError("max_tokens", message, line, column)
            if isinstance(piece, Text):
                self.append(Content(piece.value, piece.value))
                continue
            self.tag, self.index = piece, 0
            strip = Strip(piece.strip_before, piece.strip_after)
            if piece.kind == "comment":
                self.append(Comment(strip))
            elif piece.kind in ("mustache", "unescaped"):
                self.append(Mustache(self.call(block=False), piece.kind == "mustache", strip))
            elif piece.kind in ("block", "inverse"):
                self.open(strip, inverted=piece.kind == "inverse", chained=False)
            elif piece.kind == "else":
                self.otherwise(strip)
            else:
                self.close(strip)
        if self.stack:
            opened = self.stack[0]
            message = f"block '{opened.call.head.original}' is never closed"
            raise syntax_error(self.source, opened.offset, message)
        return self.root

    def append(self, statement: Statement) -> None:
        top = self.stack[-1] if self.stack else None
        if top is None:
            self.root.body.append(statement)
        else:
            (top.program if top.inverse is None else top.inverse).body.append(statement)

    def open(self, strip: Strip, *, inverted: bool, chained: bool) -> None:
        if len(self.stack) >= self.limits.max_depth:
            raise self.too_deep(self.tag.offset)
        opened = _Open(self.call(block=True), strip, self.tag.offset, inverted, chained)
        opened.program.params = self.block_params()
        self.end()
        self.stack.append(opened)

    def otherwise(self, strip: Strip) -> None:
        """`{{else}}`, or `{{else helper ...}}`, which opens a chained block."""
        if not self.stack or self.stack[-1].inverse is not None:
            raise self.error(self.tag.offset, "{{else}} outside a block, or a second {{else}}")
        self.stack[-1].inverse = Program(chained=bool(self.tag.tokens))
        self.stack[-1].inverse_strip = strip
        if self.tag.tokens:
            self.open(strip, inverted=False, chained=True)

    def close(self, strip: Strip) -> None:
        closing = self.head()
        self.end()
        if not self.stack:
            raise self.error(self.tag.offset, f"'/{closing.original}' closes no open block")
        opened = self.stack.pop()
        while opened.chained:
            parent = self.stack.pop()
            # Handlebars gives a chained block the closing tag's `~` flags only when it
            # follows the opening block directly, deeper ones those of their own
            # {{else ...}} tag. Whitespace comes out the same only if we do too.
            block = _finish(opened, opened.strip if parent.chained else strip)
            (parent.inverse or parent.program).body.append(block)
            opened = parent
        name = opened.call.head.original
        if name != closing.original:
            line, column = position(self.source, opened.offset)
            where = f"opened at line {line}, column {column}"
            raise self.error(
                self.tag.offset, f"'/{closing.original}' does not close '#{name}' ({where})"
            )
        self.append(_finish(opened, strip))

    # ------------------------------------------------------------ tokens of one tag

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.index + ahead
        return self.tag.tokens[index] if index < len(self.tag.tokens) else None

    def at(self, *kinds: str) -> bool:
        token = self.peek()
        return token is not None and token.kind in kinds

    def take(self, *kinds: str) -> Token:
        token = self.peek()
        if token is None or token.kind not in kinds:
            raise self.unexpected()
        self.index += 1
        return token

    def end(self) -> None:
        if self.peek() is not None:
            raise self.unexpected()

    def error(self, offset: int, message: str) -> TemplateSyntaxError:
        return syntax_error(self.source, offset, message)

    def unexpected(self) -> TemplateSyntaxError:
        token = self.peek()
        if token is None:
            return self.error(self.tag.offset, "tag ends too early")
        return self.error(token.offset, f"unexpected {self.source[token.offset : token.end]!r}")

    def too_deep(self, offset: int) -> TemplateSourceLimitError:
        line, column = position(self.source, offset)
        message = f"blocks and subexpressions nest deeper than {self.limits.max_depth}"
        return TemplateSourceLimitError("max_depth", message, line, column)

    def call(self, *, block: bool, depth: int = 0, sub: bool = False) -> Call:
        """A head, then parameters, then `key=value` pairs; ends the tag unless `block`/`sub`."""
        first = self.peek()
        offset = first.offset if first else self.tag.offset
        where = self.position(offset)  # before the subexpressions, which lie further on
        head = self.head()
        params: list[Expression] = []
        pairs: list[tuple[str, Expression]] = []
        while not (self.peek() is None or self.at("CLOSE_SEXPR", "OPEN_BLOCK_PARAMS")):
            if self.at(*_NAMES) and (following := self.peek(1)) and following.kind == "EQUALS":
                key = self.take(*_NAMES).value
                self.index += 1
                pairs.append((key, self.param(depth)))
            elif pairs:
                raise self.unexpected()
            else:
                params.append(self.param(depth))
        if not (block or sub):
            self.end()
        return self.resolve(head, tuple(params), tuple(pairs), offset, where, block=block, sub=sub)

    def block_params(self) -> tuple[str, ...]:
        """`as |a b|` after a block's parameters."""
        if not self.at("OPEN_BLOCK_PARAMS"):
            return ()
        self.index += 1
        names = [self.take(*_NAMES).value]
        while self.at(*_NAMES):
            names.append(self.take(*_NAMES).value)
        self.take("CLOSE_BLOCK_PARAMS")
        return tuple(names)

    def head(self) -> Path:
        """A tag's head: a path, or a literal naming one (`{{"a b"}}` looks up "a b")."""
        if self.at(*_LITERALS):
            token = self.take(*_LITERALS)
            return Path(token.value, (token.value,))
        return self.path()

    def param(self, depth: int) -> Expression:
        if self.at("OPEN_SEXPR"):
            opening = self.take("OPEN_SEXPR")
            if len(self.stack) + depth + 1 > self.limits.max_depth:
                raise self.too_deep(opening.offset)
            call = self.call(block=False, depth=depth + 1, sub=True)
            self.take("CLOSE_SEXPR")
            return SubExpression(call)
        if self.at(*_LITERALS):
            return _literal(self.take(*_LITERALS))
        return self.path()

    def path(self) -> Path:
        """`a.b/c`, `../a`, `this.a`, `[a b]`, `@index`, `@../key`: a path as written."""
        data = self.at("DATA")
        self.index += data
        segments = [self.take(*_NAMES)]
        while self.at("SEP"):
            self.index += 1
            segments.append(self.take(*_NAMES))
        start = segments[0].offset - data
        original = self.source[start : segments[-1].end]
        parts: list[str] = []
        depth = 0
        for segment in segments:
            if segment.kind == "ID" and segment.value in ("..", ".", "this"):
                if parts:
                    raise self.error(start, f"invalid path {original!r}")
                depth += segment.value == ".."
            else:
                parts.append(segment.value)
        scoped = segments[0].kind == "ID" and segments[0].value in ("..", ".", "this")
        param = self.block_param(parts[0]) if parts and not (data or scoped) else None
        if param is not None:
            parts = parts[1:]
        return Path(original, tuple(parts), depth, data, scoped, param)

    def block_param(self, name: str) -> tuple[int, int] | None:
        """(level, index) of the block parameter `name` in scope, innermost level 0."""
        level = 0
        for opened in reversed(self.stack):
            if opened.inverse is not None or not opened.program.params:
                continue
            if name in opened.program.params:
                return level, opened.program.params.index(name)
            level += 1
        return None

    def resolve(
        self,
        head: Path,
        params: tuple[Expression, ...],
        pairs: tuple[tuple[str, Expression], ...],
        offset: int,
        where: tuple[int, int],
        *,
        block: bool,
        sub: bool,
    ) -> Call:
        """Decide how the head renders, refusing unknown helpers and misused built-ins."""
        plain = not (head.data or head.depth or head.scoped or head.param is not None)
        simple = plain and len(head.parts) == 1
        name = head.parts[0] if simple else head.original
        known = simple and (name in BUILTINS or name in self.helpers)
        if (params or pairs or sub) and not known:
            raise self.error(offset, f'Missing helper: "{name}"')
        if known and name in _BLOCK_ONLY and not block:
            raise self.error(offset, f"'{name}' is a block helper: write {{{{#{name} ...}}}}")
        if known and len(params) != _ARGUMENTS.get(name, len(params)):
            count = _ARGUMENTS[name]
            plural = "s" if count > 1 else ""
            raise self.error(offset, f"#{name} requires exactly {count} argument{plural}")
        kind = CallKind.HELPER if known else CallKind.AMBIGUOUS if simple else CallKind.VALUE
        return Call(kind, head, params, pairs, *where)

    def position(self, offset: int) -> tuple[int, int]:
        """`lexer.position`, counting on from the previous call so a parse stays linear."""
        if offset < self.line_offset:
            return position(self.source, offset)
        newlines = self.source.count("\n", self.line_offset, offset)
        if newlines:
            self.line += newlines
            self.line_start = self.source.rfind("\n", self.line_offset, offset) + 1
        self.line_offset = offset
        return self.line, offset - self.line_start + 1


def _finish(opened: _Open, close: Strip) -> Block:
    program: Program | None = opened.program
    inverse = opened.inverse
    if opened.inverted:
        program, inverse = inverse, program
    return Block(opened.call, program, inverse, opened.strip, opened.inverse_strip, close)


def _literal(token: Token) -> Literal:
    if token.kind == "STRING":
        return Literal(token.value)
    if token.kind == "NUMBER":
        return Literal(float(token.value) if "." in token.value else int(token.value))
    return Literal(token.value == "true" if token.kind == "BOOLEAN" else None)
