"""The generated service secret, kept in `<data_dir>/secret` when `MAILWIRE_SECRET` is unset.

The file holds one secret per line. The first is current (it encrypts new
values); the others are previous secrets, kept so that values written before a
rotation still decrypt (see `store.cipher.Keyring`). Blank lines and lines
starting with `#` are ignored; surrounding whitespace is stripped.

The file must be private to its owner (mode 0600): anyone who reads it can
decrypt every stored credential. `read_secret_file` refuses a file that group
or others can read, rather than fixing the mode silently, so the operator
learns the secret may have leaked. POSIX permissions are assumed.

Errors are `DataDirError`, in one line naming the path and never a secret.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from mailwire.errors import DataDirError

__all__ = ["MAX_SECRET_FILE_BYTES", "SECRET_FILE_NAME", "read_secret_file", "write_secret_file"]

SECRET_FILE_NAME = "secret"  # noqa: S105  (a file name, not a password)

#: Largest secret file read. A few secrets take a few hundred bytes; anything
#: much bigger is the wrong file, and is not read into memory.
MAX_SECRET_FILE_BYTES = 64 * 1024

_FILE_MODE = 0o600
_PRIVATE_BITS = 0o077  # group and others: any of these set means "not private"

_HEADER = (
    "# Mailwire service secrets. Anyone who reads this file can decrypt the stored\n"
    "# credentials: keep it private (chmod 600) and back it up with the data directory.\n"
    "# One secret per line: the first encrypts new data; the ones below it are previous\n"
    "# secrets, kept only to decrypt data written before a rotation.\n"
)


def read_secret_file(path: Path) -> list[str] | None:
    """The secrets in `path`, current first; `None` if the file does not exist.

    Raises `DataDirError` if the file cannot be read, is not a regular file, is
    readable by group or others, is too large, is not UTF-8, or holds no secret.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataDirError(f"cannot open secret file {path}: {exc.strerror}") from exc
    try:
        # fstat on the open file, not stat on the path: the file checked is the file read.
        _check_file(path, os.fstat(fd))
        data = _read_up_to(fd, MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise DataDirError(f"cannot read secret file {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise DataDirError(f"secret file {path} is larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # `from None`: the exception carries the file's bytes, i.e. the secrets.
        raise DataDirError(f"secret file {path} is not UTF-8 text") from None
    secrets = _parse(text)
    if not secrets:
        raise DataDirError(
            f"secret file {path} holds no secret; restore it from a backup,"
            " or delete it to generate a new secret (stored credentials will be lost)"
        )
    return secrets


def _check_file(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise DataDirError(f"secret file {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & _PRIVATE_BITS:
        raise DataDirError(
            f"secret file {path} is readable by group or others (mode {mode:04o});"
            f" run: chmod 600 {path}"
        )


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _parse(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def write_secret_file(path: Path, secrets: Sequence[str]) -> None:
    """Replace `path` atomically with `secrets` (current first), mode 0600.

    The file is written under a temporary name in the same directory, flushed
    to disk, renamed over `path`, and the directory is flushed too: after a
    crash the file holds either the old secrets or the new ones, never a part.

    Raises `ValueError` if `secrets` is empty or a secret would not read back
    as itself (empty, a newline inside, surrounding whitespace, a leading `#`);
    `DataDirError` if the file cannot be written.
    """
    _check_secrets(secrets)
    content = (_HEADER + "".join(f"{secret}\n" for secret in secrets)).encode("utf-8")
    directory = path.parent
    temp = directory / f".{path.name}.{os.urandom(6).hex()}.tmp"
    try:
        # O_EXCL: never write into a file someone else prepared (or a symlink they planted).
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except OSError as exc:
        raise DataDirError(f"cannot create secret file in {directory}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), _FILE_MODE)  # exactly 0600 whatever the umask
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except OSError as exc:
        _remove_quietly(temp)
        raise DataDirError(f"cannot write secret file {path}: {exc.strerror}") from exc
    try:
        _fsync_directory(directory)
    except OSError as exc:
        raise DataDirError(f"cannot flush directory {directory}: {exc.strerror}") from exc


def _check_secrets(secrets: Sequence[str]) -> None:
    if not secrets:
        raise ValueError("at least one secret is required")
    for index, secret in enumerate(secrets):
        # The secret itself is never quoted, only its position.
        if not secret or secret != secret.strip() or secret.startswith("#"):
            raise ValueError(f"secret #{index} is empty, padded with whitespace or starts with #")
        if len(secret.splitlines()) != 1:
            raise ValueError(f"secret #{index} contains a line break")


def _remove_quietly(path: Path) -> None:
    # The write already failed and is being reported; should removal fail too,
    # the leftover temp file is private (0600) and named after the secret file.
    with contextlib.suppress(OSError):
        path.unlink()


def _fsync_directory(directory: Path) -> None:
    # Makes the rename durable: without it a crash can bring back the old file, or none.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
