"""The files the Dovecot launcher writes: its layout, `dovecot.conf` and the passwd-file.

Everything lives under one root so an instance can be thrown away with one
`rmtree`, and so two instances never share a socket, a log or a mailbox.
"""

from __future__ import annotations

import grp
import math
import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from string import Template

from mailwire.testing.maildir import Owner
from mailwire.testing.tls import TLSCertificate

#: Special-use folders (RFC 6154) created and subscribed at first login.
SPECIAL_USE_FOLDERS: tuple[tuple[str, str], ...] = (
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Junk", "\\Junk"),
    ("Trash", "\\Trash"),
    ("Archive", "\\Archive"),
)

#: Simultaneous IMAP sessions allowed per user and IP; Dovecot's default of 10
#: is too few for connection-pool tests.
MAX_CONNECTIONS = 1000

#: Simultaneous IMAP sessions in total (the imap and imap-login process limits).
#: Each session holds one imap process (`client_limit = 1`, the only value
#: Dovecot recommends for mail processes) and, over TLS, one imap-login process
#: that stays as its proxy. `benchmarks/imap_memory.py` keeps 1,000 accounts
#: connected over STARTTLS; the headroom covers reconnects that overlap the
#: session they replace, and the benchmark's other clients.
MAX_SESSIONS = 2000

#: Connections one Dovecot service process accepts (auth, anvil, config, ...):
#: every imap process holds one to anvil, every imap-login process one to config.
CLIENT_LIMIT = MAX_SESSIONS * 4

_USER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._@+-")

_CONFIG = Template("""\
# Written by mailwire.testing.dovecot; rewritten on every start.
instance_name = $instance_name
base_dir = $base_dir
state_dir = $state_dir
log_path = $log_path
protocols = imap
listen = $host
$privileges
first_valid_uid = $uid
last_valid_uid = $uid

ssl = yes
ssl_cert = <$cert
ssl_key = <$key
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests log in with wrong passwords on purpose: no deliberate failure delay
# (failures still wait for Dovecot's 0.5 s flush tick) and no per-IP penalty,
# which is switched off by disabling its anvil socket below.
auth_failure_delay = 0

mail_location = maildir:~/Maildir
mail_fsync = never
# IDLE learns of changes through inotify, whose instances are limited per user
# (fs.inotify.max_user_instances, often 128) and shared by every Dovecot on the
# machine; past the limit Dovecot polls, every 30 s by default. 1 s keeps tests
# and benchmarks that open many sessions correct, only slower.
mailbox_idle_check_interval = 1 secs
default_process_limit = $max_sessions
default_client_limit = $client_limit

passdb {
  driver = passwd-file
  args = $passwd
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$home_root/%u
}

namespace inbox {
  inbox = yes
  separator = /
$special_use}

protocol imap {
  mail_max_userip_connections = $max_connections
  # COMPRESS=DEFLATE (RFC 4978), so clients can test compression for real.
  # No global mail_plugins is set, so this is the whole list.
  mail_plugins = imap_zlib
}

service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    port = $imap_port
  }
  inet_listener imaps {
    port = $imaps_port
    ssl = yes
  }
}
service imap {
  process_limit = $max_sessions
}
""")


@dataclass(frozen=True, slots=True)
class DovecotPaths:
    """Where one instance keeps each of its files, all under `root`."""

    root: Path

    @property
    def config(self) -> Path:
        """The generated `dovecot.conf`."""
        return self.root / "dovecot.conf"

    @property
    def base_dir(self) -> Path:
        """Dovecot's runtime directory: sockets and `master.pid`."""
        return self.root / "run"

    @property
    def pid_file(self) -> Path:
        """The master process's PID, written by Dovecot once it has daemonised."""
        return self.base_dir / "master.pid"

    @property
    def state_dir(self) -> Path:
        """Dovecot's state directory (instance registry, replication state)."""
        return self.root / "state"

    @property
    def log(self) -> Path:
        """Dovecot's log; every process writes here."""
        return self.root / "dovecot.log"

    @property
    def launcher_output(self) -> Path:
        """stdout and stderr of `dovecot -c`, which report errors before logging starts."""
        return self.root / "dovecot.out"

    @property
    def passwd(self) -> Path:
        """The passwd-file passdb."""
        return self.root / "passwd"

    @property
    def homes(self) -> Path:
        """Parent of every user's home directory."""
        return self.root / "home"


@dataclass(frozen=True, slots=True)
class ConfigValues:
    """What varies between instances and between start attempts."""

    instance_name: str
    host: str
    imap_port: int
    imaps_port: int
    tls: TLSCertificate
    owner: Owner
    privileges: str


def render_config(paths: DovecotPaths, values: ConfigValues) -> str:
    """Return the text of `dovecot.conf` for this instance."""
    special_use = "".join(
        f"  mailbox {name} {{\n    special_use = {flag}\n    auto = subscribe\n  }}\n"
        for name, flag in SPECIAL_USE_FOLDERS
    )
    return _CONFIG.substitute(
        instance_name=values.instance_name,
        base_dir=paths.base_dir,
        state_dir=paths.state_dir,
        log_path=paths.log,
        host=values.host,
        privileges=values.privileges,
        uid=values.owner.uid,
        gid=values.owner.gid,
        cert=values.tls.cert,
        key=values.tls.key,
        max_connections=MAX_CONNECTIONS,
        max_sessions=MAX_SESSIONS,
        client_limit=CLIENT_LIMIT,
        passwd=paths.passwd,
        home_root=paths.homes,
        special_use=special_use,
        imap_port=values.imap_port,
        imaps_port=values.imaps_port,
    )


def mail_owner() -> tuple[Owner, str]:
    """Pick who owns mail files, and the config lines that go with that choice."""
    if os.geteuid() == 0:
        # Dovecot refuses uid 0 for mail access; `nobody` exists everywhere.
        nobody = pwd.getpwnam("nobody")
        return Owner(nobody.pw_uid, nobody.pw_gid), ""
    # Unprivileged: Dovecot cannot switch users, so every process runs as us.
    me = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    lines = (
        f"default_internal_user = {me}\ndefault_internal_group = {group}\n"
        f"default_login_user = {me}\n"
    )
    return Owner(os.geteuid(), os.getegid()), lines


class PasswdFile:
    """The users of one instance, written as a passwd-file with PLAIN passwords.

    Dovecot reloads the file when its mtime (whole seconds) or size changes,
    checking at most once per second. `write` keeps a same-size rewrite within
    one second visible by moving its mtime to the next second.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.users: dict[str, str] = {}
        self._stamp = (-1, -1)

    def set(self, name: str, password: str) -> None:
        """Add or re-password a user (in memory; call `write` to publish)."""
        check_credentials(name, password)
        self.users[name] = password

    def write(self) -> float:
        """Atomically replace the file; return the mtime Dovecot will see."""
        text = "".join(f"{name}:{{PLAIN}}{pw}::::::\n" for name, pw in self.users.items())
        staged = self.path.with_suffix(".tmp")
        staged.write_text(text, encoding="utf-8")
        staged.chmod(0o644)
        # Atomic replace: Dovecot must never parse a half-written file.
        staged.replace(self.path)
        second, size = math.floor(self.path.stat().st_mtime), len(text.encode())
        last_second, last_size = self._stamp
        if size == last_size and second <= last_second:
            second = last_second + 1
            os.utime(self.path, (second, second))
        self._stamp = (second, size)
        return float(second)


def check_credentials(name: str, password: str) -> None:
    """Reject names and passwords that the passwd-file or Dovecot would mangle."""
    # Dovecot lower-cases login names (auth_username_format = %Lu) and the
    # passwd-file is colon-separated, which bounds what may appear in either.
    if not name or not set(name) <= _USER_CHARS or name[0] in ".-":
        raise ValueError(f"user name must be lower-case [a-z0-9._@+-]: {name!r}")
    if not password or ":" in password or any(ord(c) < 0x20 for c in password):
        raise ValueError("password must be non-empty, without ':' or control characters")
