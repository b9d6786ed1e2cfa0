"""What a benchmark is, how it reports figures, and the list of all benchmarks.

A benchmark is a named function taking a `Session`. It reports each figure
through `Session.report`, which prints `name value unit` on stdout and keeps
the value, so that a later benchmark in the same run can print a ratio to it
(or measure the baseline itself when it runs alone).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

#: Bounds for `--seconds` and `--warmup`, so that no typo starts an hour-long run.
MAX_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Options:
    """Settings shared by every benchmark of one run (from the command line)."""

    seconds: float = 10.0
    warmup: float = 2.0
    clients: int = 32


@dataclass
class Session:
    options: Options
    figures: dict[str, float] = field(default_factory=dict)

    def report(self, name: str, value: float, unit: str) -> None:
        """Print one figure as `name value unit` and remember it for later ratios.

        A value that is not a number (a ratio to zero requests) is not a figure:
        it is explained on stderr instead.
        """
        if not math.isfinite(value):
            self.note(f"{name}: no value (a ratio with nothing measured)")
            return
        self.figures[name] = value
        print(f"{name} {_number(value)} {unit}", flush=True)

    @staticmethod
    def note(text: str) -> None:
        """Progress and explanations, for people: stderr, never mixed into figures."""
        print(f"# {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    summary: str
    run: Callable[[Session], None]


def _number(value: float) -> str:
    """Integers as integers; other values with 4 significant digits."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1e4 else str(round(value))


def all_benchmarks() -> dict[str, Benchmark]:
    """Every benchmark, in the order `python -m benchmarks` runs them."""
    # Imported here: the benchmark modules import this module for its types.
    from benchmarks import (
        imap_memory,
        imap_parse,
        imap_sync,
        messages_api,
        sending,
        tokens_api,
        webhook_delivery,
        webhook_transform,
    )

    found = [
        *tokens_api.BENCHMARKS,
        *imap_parse.BENCHMARKS,
        *imap_sync.BENCHMARKS,
        *imap_memory.BENCHMARKS,
        *messages_api.BENCHMARKS,
        *webhook_transform.BENCHMARKS,
        *webhook_delivery.BENCHMARKS,
        *sending.BENCHMARKS,
    ]
    return {benchmark.name: benchmark for benchmark in found}
