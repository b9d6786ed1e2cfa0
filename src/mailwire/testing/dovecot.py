"""A private Dovecot IMAP server for tests and benchmarks, confined to one directory.

Theory of operation. `Dovecot(root)` owns `root` (which must be mode 0755 and
reachable by other users: Dovecot's auth and mail processes drop privileges
and must read the passwd file and the homes). `start()` writes a config that
keeps every path under `root`, picks two free loopback ports (plain IMAP with
STARTTLS, and implicit TLS), and runs `dovecot -c CONF`, which daemonises. A
later `start()` after `stop()` is a server restart: it binds the same two ports
again, so clients configured with them find the server where it was. The
launcher's own output goes to a file: the daemon inherits it, and a pipe would
keep the caller waiting. Readiness is an IMAP greeting on both ports; the
master's PID comes from `base_dir/master.pid` and `stop()` signals that PID
(confirming first, through /proc, that it is still this instance's master),
and also the instance's other processes, found by the instance name Dovecot
puts in their titles: left to the master, an imap process keeps its client
for ten seconds or more after the master has exited.
`scratch_directory()` provides a suitable root outside pytest's private tree.

Users live in a passwd-file (PLAIN scheme) and share one static userdb entry
whose home is `root/home/<user>`; all mail files belong to one unprivileged
owner (`nobody` when run as root, else the current user).

Dovecot rereads the passwd-file when its mtime or size changes, but stats it at
most once per wall-clock second; `add_user` on a running server therefore
waits into the next second so the very next login sees the new entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailwire.testing.dovecot_files import (
    ConfigValues,
    DovecotPaths,
    PasswdFile,
    mail_owner,
    render_config,
)
from mailwire.testing.errors import PeerError, PeerStartError, PeerStopError, PortInUseError
from mailwire.testing.lifecycle import StartStop
from mailwire.testing.maildir import MaildirWriter
from mailwire.testing.ports import LOOPBACK, find_free_ports
from mailwire.testing.tls import TLSCertificate, generate_self_signed

DOVECOT_BINARY = Path("/usr/sbin/dovecot")

_BIND_ATTEMPTS = 3
#: Pause between attempts to bind the previous ports again on a restart (seconds).
_REBIND_PAUSE = 0.2
_POLL_INTERVAL = 0.05
_GREETING_TIMEOUT = 2.0
_GREETING_MAX_BYTES = 4096
_LOG_TAIL_LINES = 40


@dataclass(frozen=True, slots=True)
class MailUser:
    """Login name and password of a mailbox on the test server."""

    name: str
    password: str


class Dovecot(StartStop):
    """A private Dovecot instance rooted at one scratch directory (see the module doc)."""

    def __init__(
        self,
        root: Path,
        *,
        binary: Path = DOVECOT_BINARY,
        tls: TLSCertificate | None = None,
        start_timeout: float = 15.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.root = root.absolute()
        self.paths = DovecotPaths(self.root)
        self.binary = binary
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._tls = tls
        self._passwd = PasswdFile(self.paths.passwd)
        self._ports: tuple[int, int] | None = None
        self._pid: int | None = None
        self._owner, self._privileges = mail_owner()
        self._writer = MaildirWriter(owner=self._owner if os.geteuid() == 0 else None)
        self._instance_name = f"mailwire-test-{uuid.uuid4().hex[:12]}"

    # ------------------------------------------------------------ addresses and state

    @property
    def host(self) -> str:
        """The address both listeners are bound to."""
        return LOOPBACK

    @property
    def imap_port(self) -> int:
        """Port of the plain IMAP listener, which offers STARTTLS."""
        return self._require_ports()[0]

    @property
    def imaps_port(self) -> int:
        """Port of the implicit-TLS IMAP listener."""
        return self._require_ports()[1]

    @property
    def cert(self) -> TLSCertificate:
        """The certificate both listeners present (generated under `root` if not given)."""
        if self._tls is None:
            self._tls = generate_self_signed(self.root / "tls")
        return self._tls

    @property
    def running(self) -> bool:
        """Whether this root's master process (started here or by another launcher) is alive."""
        return self._live_pid() is not None

    def maildir(self, user: str) -> Path:
        """The Maildir root (INBOX) of `user`."""
        return self.paths.homes / user / "Maildir"

    # ------------------------------------------------------------ users and mail

    def add_user(self, name: str, password: str) -> MailUser:
        """Add (or re-password) a user; takes effect for the next login, running or not."""
        self._passwd.set(name, password)
        home = self.paths.homes / name
        home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(home, self._owner.uid, self._owner.gid)
        written_at = self._passwd.write()
        if self.running:
            _sleep_until(math.floor(written_at) + 1.01)
        return MailUser(name, password)

    def deliver(
        self,
        user: str,
        raw: bytes,
        *,
        folder: str = "INBOX",
        flags: str = "",
        internaldate: dt.datetime | None = None,
    ) -> Path:
        """Place a message straight into `user`'s Maildir and return its file.

        `flags` are Maildir letters (D draft, F flagged, P passed, R answered,
        S seen, T deleted); `internaldate` must be timezone-aware and defaults
        to now. Non-INBOX folders are created Maildir++ style (`.Name`).
        """
        if user not in self._passwd.users:
            raise PeerError(f"unknown Dovecot user {user!r}; add_user() first")
        folder_path = self._writer.ensure_folder(self.maildir(user), folder)
        return self._writer.write(folder_path, raw, flags=flags, internaldate=internaldate)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Launch Dovecot and return once both ports greet; raise `PeerStartError` if not."""
        if self.running:
            raise PeerStartError(f"Dovecot under {self.root} is already running")
        self._prepare()
        self._launch_on_ports()
        try:
            self._wait_ready(time.monotonic() + self.start_timeout)
        except BaseException:
            # Whatever went wrong (even an interrupt), leave no daemon behind.
            self._kill_quietly()
            raise

    def stop(self) -> None:
        """Stop the master and every other process of this instance, and wait for them.

        A no-op if not running. The master passes SIGTERM on, yet an imap process
        goes on serving its client for ten seconds or more after the master has
        gone; signalling each process directly makes clients see what a restart
        shows them, `* BYE` and a closed connection, at once.
        """
        pid, self._pid = self._live_pid() or _find_master(self.paths.config), None
        if pid is None:
            return
        config = self.paths.config
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        self._signal_processes(signal.SIGTERM)
        if not _wait_exit(pid, config, self.stop_timeout):
            os.kill(pid, signal.SIGKILL)
            if not _wait_exit(pid, config, self.stop_timeout):
                raise PeerStopError(
                    f"Dovecot master {pid} survived SIGKILL for {self.stop_timeout} s"
                )
        if self._processes_gone():
            return
        self._signal_processes(signal.SIGKILL)
        if not self._processes_gone():
            raise PeerStopError(
                f"Dovecot processes {self._processes()} survived SIGKILL for {self.stop_timeout} s"
            )

    # ------------------------------------------------------------ internals

    def _launch_on_ports(self) -> None:
        """Launch on two fresh free ports (retrying a lost race), or on a restart on the
        previous two, retrying briefly in case one is still held."""
        restart = self._ports is not None
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            if not restart:
                imap_port, imaps_port = find_free_ports(2)
                self._ports = (imap_port, imaps_port)
            self._write_config(*self._require_ports())
            try:
                self._launch()
                return
            except PortInUseError as error:
                if attempt < _BIND_ATTEMPTS:
                    if restart:
                        time.sleep(_REBIND_PAUSE)
                    continue
                if restart:
                    raise PortInUseError(
                        f"Dovecot could not bind its previous ports {self._ports} again "
                        f"on restart: {error}"
                    ) from error
                self._ports = None  # never started: the next start() is not a restart
                raise

    def _processes(self) -> list[int]:
        """PIDs of this instance's processes other than the master (which the master
        names `dovecot-<instance>/<service>`)."""
        marker = f"-{self._instance_name}/".encode()
        return [pid for pid in _all_pids() if marker in _cmdline(pid)]

    def _signal_processes(self, sig: signal.Signals) -> None:
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _processes_gone(self) -> bool:
        deadline = time.monotonic() + self.stop_timeout
        for _ in range(math.ceil(self.stop_timeout / _POLL_INTERVAL) + 1):
            if not self._processes():
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_INTERVAL)
        return not self._processes()

    def _require_ports(self) -> tuple[int, int]:
        if self._ports is None:
            raise PeerError("Dovecot has no ports before start()")
        return self._ports

    def _prepare(self) -> None:
        if not self.binary.is_file():
            raise PeerStartError(f"Dovecot binary not found at {self.binary}")
        self.root.mkdir(parents=True, exist_ok=True)
        _check_reachable(self.root)
        # A dead instance's sockets (notably a stale anvil-auth-penalty, which
        # makes auth retry for 5 s) must not leak into this run.
        shutil.rmtree(self.paths.base_dir, ignore_errors=True)
        self.paths.state_dir.mkdir(exist_ok=True)
        self.paths.homes.mkdir(mode=0o755, exist_ok=True)
        self._passwd.write()

    def _write_config(self, imap_port: int, imaps_port: int) -> None:
        values = ConfigValues(
            instance_name=self._instance_name,
            host=self.host,
            imap_port=imap_port,
            imaps_port=imaps_port,
            tls=self.cert,
            owner=self._owner,
            privileges=self._privileges,
        )
        self.paths.config.write_text(render_config(self.paths, values), encoding="utf-8")
        self.paths.config.chmod(0o644)

    def _launch(self) -> None:
        output = self.paths.launcher_output
        with output.open("ab") as sink:
            offset = sink.tell()
            # The daemon keeps this file as stdout/stderr; a file never blocks it.
            try:
                result = subprocess.run(  # noqa: S603 - fixed argv: our binary and our config
                    [str(self.binary), "-c", str(self.paths.config)],
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    timeout=self.start_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise PeerStartError(f"{self.binary} did not daemonise: {error}") from error
        if result.returncode == 0:
            return
        with output.open("rb") as source:
            source.seek(offset)
            said = source.read().decode("utf-8", "replace").strip()
        if "Address already in use" in said:
            raise PortInUseError(f"Dovecot lost a port race: {said}")
        raise PeerStartError(f"dovecot exited with {result.returncode}: {said}")

    def _live_pid(self) -> int | None:
        """The master's PID if it runs: ours, or one left by another `Dovecot` on this root."""
        pid = self._pid
        if pid is None:
            with contextlib.suppress(OSError, ValueError):
                pid = int(self.paths.pid_file.read_text(encoding="ascii").strip())
        return pid if pid is not None and _alive(pid, self.paths.config) else None

    def _wait_ready(self, deadline: float) -> None:
        """Poll until the master has written its PID file and both ports greet."""
        max_polls = math.ceil(self.start_timeout / _POLL_INTERVAL) + 1
        context = self.cert.client_context()
        last_problem = "no attempt made"
        for _ in range(max_polls):
            try:
                self._check_master()
                _read_greeting(self.host, self.imap_port, None)
                _read_greeting(self.host, self.imaps_port, context)
                return
            except PeerStartError:
                raise
            except (OSError, PeerError) as problem:
                last_problem = str(problem)
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_INTERVAL)
        raise PeerStartError(
            f"Dovecot did not greet on ports {self._ports} within {self.start_timeout} s "
            f"({last_problem})\n{self._log_tail()}"
        )

    def _check_master(self) -> None:
        # `dovecot -c` returns when its parent half exits; the daemon writes
        # master.pid a moment later, so a missing file is not yet a failure.
        if self._pid is None:
            try:
                self._pid = int(self.paths.pid_file.read_text(encoding="ascii").strip())
            except (OSError, ValueError) as error:
                raise PeerError(f"no master.pid yet ({error})") from error
        if not _alive(self._pid, self.paths.config):
            raise PeerStartError(f"Dovecot exited during start-up\n{self._log_tail()}")

    def _kill_quietly(self) -> None:
        # Start-up already failed; that error is the one worth reporting.
        with contextlib.suppress(OSError, PeerStopError):
            self.stop()

    def _log_tail(self) -> str:
        chunks = []
        for path in (self.paths.launcher_output, self.paths.log):
            if path.exists():
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
                chunks.append(f"--- {path.name} (tail)\n" + "\n".join(lines[-_LOG_TAIL_LINES:]))
        return "\n".join(chunks) or "(Dovecot wrote no log)"


# ---------------------------------------------------------------- module helpers


@contextlib.contextmanager
def scratch_directory(prefix: str = "mailwire-dovecot-") -> Iterator[Path]:
    """Yield a fresh 0755 directory under the system temp dir; remove it afterwards.

    Not under pytest's `tmp_path_factory`: pytest keeps its tree 0700, and
    every pytest session that starts (another engineer's, a parallel CI job)
    resets `/tmp/pytest-of-<user>` to 0700, which locks Dovecot's unprivileged
    processes out mid-run ("Temporary authentication failure").
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path)


def _check_reachable(root: Path) -> None:
    if os.geteuid() != 0:
        return
    for directory in (root, *root.parents):
        if not directory.stat().st_mode & stat.S_IXOTH:
            raise PeerStartError(
                f"{directory} is not searchable by other users; Dovecot's unprivileged "
                f"processes cannot reach {root} (chmod o+x each parent, 0755 the root)"
            )


def _read_greeting(host: str, port: int, context: ssl.SSLContext | None) -> None:
    with socket.create_connection((host, port), timeout=_GREETING_TIMEOUT) as raw:
        stream = raw if context is None else context.wrap_socket(raw, server_hostname=host)
        with stream:
            data = b""
            while b"\r\n" not in data and len(data) < _GREETING_MAX_BYTES:
                chunk = stream.recv(_GREETING_MAX_BYTES)
                if not chunk:
                    break
                data += chunk
    if not data.startswith(b"* OK"):
        raise PeerError(f"port {port} greeted with {data[:80]!r}")


def _alive(pid: int, config_path: Path) -> bool:
    """Whether `pid` is a live (not zombie) Dovecot master started with `config_path`."""
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    # The command-line check guards against signalling an unrelated process
    # that reused the number after Dovecot exited.
    return state not in {"Z", "X"} and str(config_path).encode() in cmdline


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _find_master(config_path: Path) -> int | None:
    """Find the master started with `config_path` when its PID file is unreadable."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _alive(int(entry.name), config_path):
            return int(entry.name)
    return None


def _wait_exit(pid: int, config_path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    for _ in range(math.ceil(timeout / _POLL_INTERVAL) + 1):
        if not _alive(pid, config_path):
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_INTERVAL)
    return not _alive(pid, config_path)


def _sleep_until(wall_clock: float) -> None:
    delay = wall_clock - time.time()
    if delay > 0:
        time.sleep(min(delay, 2.0))
