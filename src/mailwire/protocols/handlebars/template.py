"""`compile_template` and `Template`: the package's entry points."""

from __future__ import annotations

from collections.abc import Mapping

from mailwire.protocols.handlebars.errors import TemplateSyntaxError
from mailwire.protocols.handlebars.limits import DEFAULT_LIMITS, Limits
from mailwire.protocols.handlebars.nodes import Program
from mailwire.protocols.handlebars.parser import BUILTINS, parse
from mailwire.protocols.handlebars.render import Helper, render_program


class Template:
    """A compiled template: render it as often as needed, with a context each time."""

    __slots__ = ("_helpers", "_limits", "_root")

    def __init__(self, root: Program, helpers: Mapping[str, Helper], limits: Limits) -> None:
        self._root = root
        self._helpers = helpers
        self._limits = limits

    def render(self, context: object, *, helpers: Mapping[str, Helper] | None = None) -> str:
        """The template filled from `context` (JSON-like values), or `TemplateRenderError`.

        `helpers` adds helpers for this render or replaces those given at compile
        time. A helper that takes arguments must have been named at compile time,
        where a template calling an unknown one is refused; here it can only change.
        """
        registry = self._helpers
        if helpers:
            registry = {**registry, **_checked(helpers)}
        return render_program(self._root, context, registry, self._limits)


def compile_template(
    source: str,
    *,
    helpers: Mapping[str, Helper] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Template:
    """Parse `source` once into a `Template`, or raise `TemplateSyntaxError`.

    `helpers` are the helpers beyond the built-ins (if, unless, each, with,
    lookup, log) that the template may call; calling any other name with
    arguments is a syntax error ("Missing helper"), as it is in Handlebars.
    """
    registry = _checked(helpers or {})
    try:
        root = parse(source, helpers=frozenset(registry), limits=limits)
    except RecursionError:
        raise TemplateSyntaxError("the template nests too deeply", 1, 1) from None
    return Template(root, registry, limits)


def _checked(helpers: Mapping[str, Helper]) -> dict[str, Helper]:
    """A copy of `helpers`; a caller's mistake in it is a `ValueError`, not a template error."""
    for name, helper in helpers.items():
        if name in BUILTINS:
            raise ValueError(f"helper {name!r} is built in and cannot be replaced")
        if not callable(helper):
            raise ValueError(f"helper {name!r} is not callable")
    return dict(helpers)
