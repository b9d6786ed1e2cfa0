"""Whitespace control: `~` in tags, and lines that hold nothing but a block tag or comment.

Theory of operation. Two rules trim the text beside tags, as Handlebars
applies them (its output is the reference; the rules below describe it):

- `{{~x}}` removes all whitespace, line breaks included, at the end of the
  text before the tag; `{{x~}}` the whitespace at the start of the text after
  it. On a block, the `~` of each of its tags trims the text on that side of
  the tag, inside or outside the block.
- Standalone lines: a block's opening, `{{else}}` or closing tag, or a
  comment, with only blanks around it on its line, takes that line out of
  the output: the blanks before the tag and the blanks and line break after
  it. A template's start and end count as line ends; a block's own start and
  end do not. Plain `{{x}}` tags are never standalone.

Decisions look at the text as written (`Content.original`); trimming works
on what earlier rules left (`Content.value`). Each text node is trimmed by
the standalone rule at most once per side. The tree is walked inner bodies
first, then statement by statement, in Handlebars' order, so that the same
input leaves the same text. Empty text nodes are dropped at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailwire.protocols.handlebars.lexer import WHITESPACE
from mailwire.protocols.handlebars.nodes import (
    Block,
    Comment,
    Content,
    Mustache,
    Program,
    Statement,
)

_LINE_LEADING: Final = re.compile(r"[ \t]*\r?\n?")


@dataclass(frozen=True, slots=True)
class _Sides:
    """What a statement asks of its neighbours once its own insides are done."""

    before: bool = False
    after: bool = False
    inline: bool = False
    open_line: bool = False
    close_line: bool = False


def apply_whitespace_control(root: Program) -> None:
    """Trim the text of `root` and every program under it, in place."""
    _program(root, root=True)
    _drop_empty(root)


def _program(program: Program, *, root: bool) -> None:
    body = program.body
    for index, statement in enumerate(body):
        sides = _statement(statement)
        if sides is None:
            continue
        line_before = _blank_before(body, index, root)
        line_after = _blank_after(body, index, root)
        if sides.after:
            _trim_after(body, index, everything=True)
        if sides.before:
            _trim_before(body, index, everything=True)
        if sides.inline and line_before and line_after:
            _trim_after(body, index)
            _trim_before(body, index)
        if isinstance(statement, Block) and sides.open_line and line_before:
            _trim_after((statement.program or _never(statement.inverse)).body, -1)
            _trim_before(body, index)
        if isinstance(statement, Block) and sides.close_line and line_after:
            _trim_after(body, index)
            _trim_before((statement.inverse or _never(statement.program)).body, None)


def _drop_empty(program: Program) -> None:
    program.body = [s for s in program.body if not isinstance(s, Content) or s.value]
    for statement in program.body:
        if isinstance(statement, Block):
            for inner in (statement.program, statement.inverse):
                if inner is not None:
                    _drop_empty(inner)


def _statement(statement: Statement) -> _Sides | None:
    if isinstance(statement, Comment):
        return _Sides(statement.strip.before, statement.strip.after, inline=True)
    if isinstance(statement, Mustache):
        return _Sides(statement.strip.before, statement.strip.after)
    if isinstance(statement, Block):
        return _block(statement)
    return None


def _block(block: Block) -> _Sides:
    if block.program is not None:
        _program(block.program, root=False)
    if block.inverse is not None:
        _program(block.inverse, root=False)
    program = block.program or _never(block.inverse)
    inverse = block.inverse if block.program is not None else None
    first = last = inverse
    if inverse is not None and inverse.chained:
        chained = inverse.body[0]
        first = _never(chained.program if isinstance(chained, Block) else None)
        # Handlebars looks only one link down the chain here; matching it matters
        # for the output of `{{~else if}}` chains, not for sense.
        tail = inverse.body[-1]
        last = _never(tail.program if isinstance(tail, Block) else None)
    sides = _Sides(
        before=block.open_strip.before,
        after=block.close_strip.after,
        open_line=_blank_after(program.body, -1, False),
        close_line=_blank_before((first or program).body, None, False),
    )
    if block.open_strip.after:
        _trim_after(program.body, -1, everything=True)
    if first is not None and last is not None:
        if block.inverse_strip.before:
            _trim_before(program.body, None, everything=True)
        if block.inverse_strip.after:
            _trim_after(first.body, -1, everything=True)
        if block.close_strip.before:
            _trim_before(last.body, None, everything=True)
        if _blank_before(program.body, None, False) and _blank_after(first.body, -1, False):
            _trim_before(program.body, None)
            _trim_after(first.body, -1)
    elif block.close_strip.before:
        _trim_before(program.body, None, everything=True)
    return sides


def _never(program: Program | None) -> Program:
    """`program`, which the caller knows is there (a block has a program or an inverse)."""
    assert program is not None
    return program


def _blank_before(body: list[Statement], index: int | None, root: bool) -> bool:
    """Whether the text before `body[index]` (None: the end of `body`) ends a line with blanks."""
    index = len(body) if index is None else index
    if index == 0:
        return root
    previous = body[index - 1]
    if not isinstance(previous, Content):
        return False
    text = previous.original
    blanks = text[len(text.rstrip(WHITESPACE)) :]
    # At the very start of the template the start counts as a line end.
    return "\n" in blanks or (root and index == 1 and len(blanks) == len(text))


def _blank_after(body: list[Statement], index: int, root: bool) -> bool:
    """Whether the text after `body[index]` (-1: the start of `body`) is blanks to a line end."""
    if index + 1 >= len(body):
        return root
    following = body[index + 1]
    if not isinstance(following, Content):
        return False
    text = following.original
    blanks = text[: len(text) - len(text.lstrip(WHITESPACE))]
    # At the very end of the template the end counts as a line end.
    return "\n" in blanks or (root and index + 2 == len(body) and len(blanks) == len(text))


def _trim_after(body: list[Statement], index: int, *, everything: bool = False) -> None:
    """Trim the start of the text after `body[index]` (-1: the first statement)."""
    if index + 1 >= len(body):
        return
    text = body[index + 1]
    if not isinstance(text, Content) or (text.right_stripped and not everything):
        return
    before = text.value
    if everything:
        text.value = before.lstrip(WHITESPACE)
    else:
        text.value = before[_LINE_LEADING.match(before).end() :]  # type: ignore[union-attr]
    text.right_stripped = text.value != before


def _trim_before(body: list[Statement], index: int | None, *, everything: bool = False) -> None:
    """Trim the end of the text before `body[index]` (None: the last statement)."""
    index = len(body) if index is None else index
    if index == 0:
        return
    text = body[index - 1]
    if not isinstance(text, Content) or (text.left_stripped and not everything):
        return
    before = text.value
    text.value = before.rstrip(WHITESPACE if everything else " \t")
    text.left_stripped = text.value != before
