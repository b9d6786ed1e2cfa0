"""Launch a real `mailwire serve` process on a loopback port, as users run it.

The process gets a clean environment (no stray `MAILWIRE_*` from the caller),
its own data directory, and a root token issued beforehand through the CLI.
`start()` waits (bounded) for the banner line that names the listening URL;
`stop()` sends SIGTERM and returns the exit code. Its JSON logs go to a file
that tests read to check what was (and was not) logged.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mailwire.testing.ports import find_free_port

BANNER = "Mailwire is listening on "
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without Mailwire settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MAILWIRE_")}
    env.update(extra or {})
    return env


def mailwire_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60.0, input_text: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run `python -m mailwire ARGS` to completion (text mode, output captured)."""
    return subprocess.run(  # noqa: S603 - fixed interpreter, arguments from tests
        [sys.executable, "-m", "mailwire", *args],
        env=env if env is not None else clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        check=False,
    )


@dataclass
class MailwireServer:
    """One `mailwire serve` process. Use as a context manager or call start/stop."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    port: int = 0
    token: str = ""
    url: str = ""
    log_path: Path = field(init=False)
    _process: subprocess.Popen[str] | None = field(default=None, init=False, repr=False)
    _pump: threading.Thread | None = field(default=None, init=False, repr=False)
    _lines: queue.Queue[str] = field(default_factory=queue.Queue, init=False, repr=False)

    def __post_init__(self) -> None:
        self.env = clean_environment(self.env)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def process(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process

    def issue_token(self, *extra: str) -> str:
        """Issue a token through the CLI against this server's store."""
        result = mailwire_cli(
            "tokens", "issue", "--data-dir", str(self.data_dir), *extra, env=self.env
        )
        if result.returncode != 0:
            raise RuntimeError(f"tokens issue failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def start(self) -> MailwireServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.token:
            self.token = self.issue_token()
        self.port = self.port or find_free_port()
        command = [sys.executable, "-m", "mailwire", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--data-dir", str(self.data_dir), *self.args]
        log_file = self.log_path.open("a", encoding="utf-8")
        # A session of its own: `kill` reaches the worker processes of `--workers N`
        # too, which would otherwise outlive the master and keep its stdout open.
        self._process = subprocess.Popen(  # noqa: S603 - fixed interpreter and arguments
            command,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            start_new_session=True,
        )
        log_file.close()
        stdout = self._process.stdout
        assert stdout is not None
        self._pump = threading.Thread(target=_pump, args=(stdout, self._lines), daemon=True)
        self._pump.start()
        try:
            self.url = self._wait_for_banner()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_for_banner(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None and self._lines.empty():
                raise RuntimeError(f"mailwire serve exited early: {self.log_tail()}")
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line.startswith(BANNER):
                return line.removeprefix(BANNER).strip()
        self.kill()
        raise RuntimeError(
            f"mailwire serve did not start in {START_TIMEOUT_S} s: {self.log_tail()}"
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Signal the process and wait for it; returns its exit code."""
        if self._process is None:
            return 0
        if self._process.poll() is None:
            self._process.send_signal(sig)
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        finally:
            self._close_pipe()

    def kill(self) -> None:
        """SIGKILL the server and every process it started (its whole session)."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(10)
        self._close_pipe()

    def _close_pipe(self) -> None:
        # The pump thread ends at EOF once every writer is gone; let it finish its last
        # read before the pipe is closed. If it is still reading (a writer survived),
        # leave the pipe to it: closing a file another thread is blocked reading
        # waits for that read, i.e. forever.
        if self._pump is not None:
            self._pump.join(5)
            if self._pump.is_alive():
                return
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def __enter__(self) -> MailwireServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)
