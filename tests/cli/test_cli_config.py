"""Invalid configuration: exit 2, exactly one line on stderr naming the setting, no traceback.

Nothing may be created on the way out: the data directory a refused command
was pointed at must not exist afterwards.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire.testing.ports import find_free_port

Cli = Callable[..., subprocess.CompletedProcess[str]]

SHORT_SECRET = "tooShortXyz"


def assert_refused(result: subprocess.CompletedProcess[str], setting: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("env", "args", "setting"),
    [
        pytest.param({"MAILWIRE_PORT": "abc"}, (), "MAILWIRE_PORT", id="port-env-text"),
        pytest.param({}, ("--port", "70000"), "--port", id="port-flag-range"),
        pytest.param({"MAILWIRE_PORT": "0"}, (), "MAILWIRE_PORT", id="port-env-zero"),
        pytest.param({"MAILWIRE_LOG_LEVEL": "loud"}, (), "MAILWIRE_LOG_LEVEL", id="level-env"),
        pytest.param({}, ("--log-level", "loud"), "--log-level", id="level-flag"),
        pytest.param({"MAILWIRE_SECRET": SHORT_SECRET}, (), "MAILWIRE_SECRET", id="secret-env"),
        pytest.param({}, ("--secret", SHORT_SECRET), "--secret", id="secret-flag"),
        pytest.param(
            {"MAILWIRE_DATABASE_URL": "mysql://x"}, (), "MAILWIRE_DATABASE_URL", id="db-url"
        ),
        pytest.param(
            {"MAILWIRE_DATABASE_SCHEMA": "Bad-Name"},
            (),
            "MAILWIRE_DATABASE_SCHEMA",
            id="db-schema",
        ),
        pytest.param({"MAILWIRE_PROT": "1"}, (), "MAILWIRE_PROT", id="unknown-variable"),
        pytest.param({"MAILWIRE_WORKERS": "0"}, (), "MAILWIRE_WORKERS", id="workers-env"),
        pytest.param({}, ("--workers", "65"), "--workers", id="workers-flag"),
        pytest.param(
            {"MAILWIRE_TRUSTED_PROXIES": "not-a-network"},
            (),
            "MAILWIRE_TRUSTED_PROXIES",
            id="trusted-proxies",
        ),
        pytest.param(
            {"MAILWIRE_SHUTDOWN_TIMEOUT": "-1"}, (), "MAILWIRE_SHUTDOWN_TIMEOUT", id="shutdown"
        ),
    ],
)
def test_serve_refuses_bad_configuration(
    cli: Cli, data_dir: Path, env: dict[str, str], args: tuple[str, ...], setting: str
) -> None:
    # A free port unless the case is about the port: should the refusal fail, the
    # server starts, and the subprocess timeout ends it.
    port = () if "MAILWIRE_PORT" in env else ("--port", str(find_free_port()))
    result = cli("serve", *port, "--data-dir", str(data_dir), *args, env=env, timeout=20)

    line = assert_refused(result, setting)

    assert line.startswith("mailwire: error: ")
    assert SHORT_SECRET not in result.stderr
    assert not data_dir.exists()


def test_unparsable_flag_value_is_one_line_too(cli: Cli, data_dir: Path) -> None:
    # A flag the command-line parser itself rejects is bad configuration as well.
    result = cli("serve", "--port", "abc", "--data-dir", str(data_dir))

    assert_refused(result, "--port")
    assert not data_dir.exists()


@pytest.mark.slow
def test_other_commands_refuse_bad_configuration_the_same_way(cli: Cli, data_dir: Path) -> None:
    for args in (("tokens", "issue"), ("tokens", "list"), ("encrypt",)):
        result = cli(*args, "--data-dir", str(data_dir), env={"MAILWIRE_SECERT": "x" * 20})

        assert_refused(result, "MAILWIRE_SECERT")
    assert not data_dir.exists()
