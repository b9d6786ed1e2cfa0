"""CPU time consumed by a process and its descendants, read from Linux's /proc.

CPU time is a steadier figure than requests per second on a shared machine:
a server that is starved of a core serves fewer requests, but each request
still costs about the same CPU. `/proc/<pid>/stat` gives user and system time
in clock ticks (fields 14 and 15, proc(5)); children are found by their parent
pid (field 4), because /proc/<pid>/task/<tid>/children is not compiled into
every kernel. A child that exits between two samples takes its time with it,
so a tree's figure is only meaningful while its processes live.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
#: A process tree deeper or wider than this is not a Mailwire server.
_MAX_TREE_SIZE = 256


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3... of /proc/<pid>/stat (after the `(comm)`, which may hold spaces)."""
    try:
        text = (PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:  # the process is gone
        return None
    return text.rpartition(")")[2].split()


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process so far (0 if it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def descendants(root: int) -> list[int]:
    """`root` and every process below it, found by one scan of /proc."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    tree = [root]
    index = 0
    while index < len(tree) and len(tree) < _MAX_TREE_SIZE:
        tree += [pid for pid, parent in parents.items() if parent == tree[index]]
        index += 1
    return tree


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idling since boot (/proc/stat, proc(5))."""
    try:
        line = (PROC / "stat").read_text(encoding="ascii").splitlines()[0]
    except OSError:
        return 0.0
    # cpu user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    ticks = [int(value) for value in line.split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS_PER_SECOND


def tree_cpu_seconds(root: int) -> float:
    """CPU time so far of `root` and its living descendants (workers, helpers)."""
    return sum(process_cpu_seconds(pid) for pid in descendants(root))
