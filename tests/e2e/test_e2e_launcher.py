"""The launcher every e2e test stands on (`mailwire.testing.server.MailwireServer`).

Stopping a server must leave nothing open behind it: under pytest's
warnings-as-errors a leaked pipe turns into an error at the end of the session,
after every test has passed.
"""

from __future__ import annotations

import gc
import threading
import warnings
from pathlib import Path

import pytest

from mailwire.testing.server import MailwireServer


@pytest.mark.slow
def test_context_manager_releases_the_stdout_pipe(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = set(threading.enumerate())
        with MailwireServer(tmp_path / "data") as running:
            process = running.process
            pumps = [t for t in threading.enumerate() if t not in before]
        assert process.returncode == 0
        for thread in pumps:
            thread.join(10)  # the reader has seen end-of-file: nothing uses the pipe now
        stdout_closed = process.stdout is None or process.stdout.closed
        del running, process
        gc.collect()

    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert stdout_closed, "the server's stdout pipe is still open after it stopped"
    assert leaks == []
