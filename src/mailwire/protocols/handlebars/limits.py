"""Named limits of the Handlebars renderer.

Templates and the data merged into them come from users, so compiling and
rendering are bounded: a hostile template can make neither use unbounded
memory, unbounded time, nor drive the renderer past Python's recursion limit.
Handlebars itself sets no such limits; the defaults are far above what real
email templates need (a few KiB of source, nesting under 10, output under
1 MiB) and far below what would hurt a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Nesting is walked recursively at compile and render time (a few Python frames
#: per level), so no configuration may allow more than this.
DEPTH_CEILING: Final = 100


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds for one template: source size, nesting, output size and work per render."""

    #: Characters of template source.
    max_source_chars: int = 1024 * 1024
    #: Tags (escaped `\{{` included) plus the names, literals and parentheses inside them:
    #: compiling costs microseconds per token, and real templates have a few thousand.
    max_tokens: int = 50_000
    #: Open blocks plus parenthesised subexpressions around any point of the template.
    max_depth: int = 40
    #: Characters of rendered output per render.
    max_output_chars: int = 10 * 1024 * 1024
    #: Statements rendered plus loop iterations per render (the CPU bound).
    max_steps: int = 500_000

    def __post_init__(self) -> None:
        sizes = (self.max_source_chars, self.max_tokens, self.max_output_chars, self.max_steps)
        if min(*sizes, self.max_depth) < 1:
            raise ValueError("every limit must be at least 1")
        if self.max_depth > DEPTH_CEILING:
            raise ValueError(f"max_depth must be at most {DEPTH_CEILING}")


DEFAULT_LIMITS: Final = Limits()
