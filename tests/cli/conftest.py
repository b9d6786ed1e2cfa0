"""CLI fixtures: run `python -m mailwire ...` as a subprocess, as an operator would.

Every command runs in a clean environment (no stray `MAILWIRE_*` from the
caller) against a data directory private to the test. `served` starts a real
server on a data directory the CLI prepared, for checks that cross over.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from mailwire.testing.server import MailwireServer, clean_environment, mailwire_cli

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Where the commands keep their store; not created until a command does."""
    return tmp_path / "data"


@pytest.fixture
def cli() -> Cli:
    """`cli(*args, env={...}, timeout=30)`: run `mailwire ARGS` in a clean environment
    plus `env`; a command still running after `timeout` seconds is killed (and fails)."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return mailwire_cli(*args, env=clean_environment(env), timeout=timeout)

    return run


def running_server(data_dir: Path, token: str, env: dict[str, str] | None = None) -> MailwireServer:
    """`mailwire serve` on `data_dir` for a `with` block, with `token` (issued
    beforehand) as its token instead of a fresh one."""
    return MailwireServer(data_dir, env=env or {}, token=token)


@pytest.fixture
def served() -> Callable[..., AbstractContextManager[MailwireServer]]:
    """`with served(data_dir, token, env) as server:` (see `running_server`)."""
    return running_server
