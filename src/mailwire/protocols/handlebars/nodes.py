"""The compiled template: a tree of statements and expressions.

The parser builds it once; the renderer walks it for every context. Text
nodes stay mutable until whitespace control has run over the tree (it trims
text beside tags); nothing changes the tree after `compile_template` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class CallKind(Enum):
    """How a tag's head is resolved when it renders."""

    #: A helper known when the template was compiled (built-in or given to `compile_template`).
    HELPER = "helper"
    #: A bare name: a helper given to `render` if there is one, else a value from the context.
    AMBIGUOUS = "ambiguous"
    #: A value: a path with several parts, `this`, `../`, `@data` or a block parameter.
    VALUE = "value"


@dataclass(frozen=True, slots=True)
class Path:
    """`a.b`, `../a`, `this.a`, `@root.a`, `[a b]`: where a value is looked up.

    `depth` counts `../`; `data` is set for `@` paths; `param` is (level, index)
    of a block parameter (`{{#each xs as |x|}}`) when the first part names one,
    and `parts` then holds the parts after it.
    """

    original: str
    parts: tuple[str, ...]
    depth: int = 0
    data: bool = False
    scoped: bool = False
    param: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, number, true, false, null or undefined written in a tag."""

    value: object


@dataclass(frozen=True, slots=True)
class Call:
    """The inside of a tag or of `( )`: a head, positional parameters and hash pairs."""

    kind: CallKind
    head: Path
    params: tuple[Expression, ...]
    hash: tuple[tuple[str, Expression], ...]
    line: int
    column: int

    @property
    def name(self) -> str:
        return self.head.parts[0] if self.head.parts else self.head.original


@dataclass(frozen=True, slots=True)
class SubExpression:
    """`(helper a b)` used as a parameter."""

    call: Call


Expression = Path | Literal | SubExpression


@dataclass(slots=True)
class Content:
    """Text between tags; `original` keeps it as written for standalone-line checks."""

    value: str
    original: str
    left_stripped: bool = False
    right_stripped: bool = False


@dataclass(frozen=True, slots=True)
class Strip:
    """Whitespace control of one tag: `~` after `{{` (before) and before `}}` (after)."""

    before: bool = False
    after: bool = False


@dataclass(frozen=True, slots=True)
class Comment:
    strip: Strip


@dataclass(frozen=True, slots=True)
class Mustache:
    """`{{call}}` (escaped) or `{{{call}}}` / `{{& call}}`."""

    call: Call
    escaped: bool
    strip: Strip


@dataclass(slots=True)
class Program:
    """A sequence of statements; `params` names the block parameters it declares."""

    body: list[Statement] = field(default_factory=list)
    params: tuple[str, ...] = ()
    #: Set on an inverse that holds only the block of an `{{else if ...}}` chain.
    chained: bool = False


@dataclass(slots=True)
class Block:
    """`{{#call}}program{{else}}inverse{{/call}}`; `{{^call}}` swaps the two."""

    call: Call
    program: Program | None
    inverse: Program | None
    open_strip: Strip
    inverse_strip: Strip
    close_strip: Strip


Statement = Content | Comment | Mustache | Block
