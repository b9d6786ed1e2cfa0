"""`python -m benchmarks [NAME...]`: run benchmarks and print `name value unit` lines.

With no names every benchmark runs, in the registry's order; `--list` shows
them. Figures go to stdout, one per line, and nothing else does; progress goes
to stderr. The exit code is 0 unless a benchmark crashed (1) or the command
line was wrong (2): a slow figure is not a failure.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Sequence

from benchmarks.registry import MAX_SECONDS, Benchmark, Options, Session, all_benchmarks

MAX_CLIENTS = 1024


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_SECONDS:g}")
    return value


def _warmup(text: str) -> float:
    value = float(text)
    if not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_SECONDS:g}")
    return value


def _clients(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_CLIENTS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_CLIENTS}")
    return value


def _parser(names: Sequence[str]) -> argparse.ArgumentParser:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run Mailwire's benchmarks; print one `name value unit` line per figure.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of: {', '.join(names)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--seconds",
        type=_seconds,
        default=defaults.seconds,
        help=f"measured duration of each load (default {defaults.seconds:g})",
    )
    parser.add_argument(
        "--warmup",
        type=_warmup,
        default=defaults.warmup,
        help=f"unmeasured warm-up before each load (default {defaults.warmup:g})",
    )
    parser.add_argument(
        "--clients",
        type=_clients,
        default=defaults.clients,
        help=f"concurrent clients (default {defaults.clients})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    registry = all_benchmarks()
    parser = _parser(list(registry))
    args = parser.parse_args(argv)
    if args.list:
        for benchmark in registry.values():
            print(f"{benchmark.name}  {benchmark.summary}")
        return 0
    unknown = [name for name in args.names if name not in registry]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; see --list")
    # The registry's order, whatever the command line's: a later benchmark may use
    # an earlier one's figures as its baseline.
    chosen = [b for name, b in registry.items() if name in args.names or not args.names]
    session = Session(Options(seconds=args.seconds, warmup=args.warmup, clients=args.clients))
    crashed = [benchmark.name for benchmark in chosen if not _run(benchmark, session)]
    if crashed:
        Session.note(f"crashed: {', '.join(crashed)}")
        return 1
    return 0


def _run(benchmark: Benchmark, session: Session) -> bool:
    """Run one benchmark; a crash is reported on stderr and the others still run."""
    session.note(f"{benchmark.name}: {benchmark.summary}")
    started = time.monotonic()
    try:
        benchmark.run(session)
    except Exception:  # noqa: BLE001 - one crashed benchmark must not hide the others
        session.note(f"{benchmark.name} crashed:\n{traceback.format_exc()}")
        return False
    session.note(f"{benchmark.name}: done in {time.monotonic() - started:.1f} s")
    return True


if __name__ == "__main__":
    sys.exit(main())
