"""`mailwire encrypt [--rotate]`: key status, and rotation of the generated or configured secret."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from mailwire.testing.server import MailwireServer

Cli = Callable[..., subprocess.CompletedProcess[str]]
Served = Callable[..., AbstractContextManager[MailwireServer]]

SECRET_A = "first-service-secret-0001"
SECRET_B = "second-service-secret-002"


def secrets_in(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def current_key(output: str) -> str:
    found: list[str] = re.findall(r"^current key: (\S+)$", output, re.MULTILINE)
    assert found, output
    return found[-1]


def key_counts(output: str) -> dict[str, int]:
    return {
        key: int(count)
        for key, count in re.findall(r"^key (\S+): (\d+) secret\(s\)", output, re.MULTILINE)
    }


def issue(cli: Cli, data_dir: Path, env: dict[str, str] | None = None) -> str:
    result = cli("tokens", "issue", "--data-dir", str(data_dir), env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.slow
def test_status_reports_the_current_key(cli: Cli, data_dir: Path) -> None:
    issue(cli, data_dir)

    result = cli("encrypt", "--data-dir", str(data_dir))

    assert result.returncode == 0, result.stderr
    key = current_key(result.stdout)
    assert f"key {key}: " in result.stdout
    assert "(current)" in result.stdout
    assert key_counts(result.stdout)[key] >= 1
    for secret in secrets_in(data_dir / "secret"):
        assert secret not in result.stdout + result.stderr


@pytest.mark.slow
def test_rotate_with_the_secret_file_keeps_old_tokens_working(
    cli: Cli, data_dir: Path, served: Served
) -> None:
    token = issue(cli, data_dir)
    secret_file = data_dir / "secret"
    old_secrets = secrets_in(secret_file)
    old_key = current_key(cli("encrypt", "--data-dir", str(data_dir)).stdout)

    rotated = cli("encrypt", "--rotate", "--data-dir", str(data_dir))

    assert rotated.returncode == 0, rotated.stderr
    new_secrets = secrets_in(secret_file)
    assert len(new_secrets) == len(old_secrets) + 1
    assert new_secrets[1:] == old_secrets
    assert new_secrets[0] not in old_secrets
    assert secret_file.stat().st_mode & 0o777 == 0o600
    total = re.search(r"^re-encrypted (\d+) secret\(s\) in all$", rotated.stdout, re.MULTILINE)
    assert total is not None, rotated.stdout
    assert int(total.group(1)) >= 1
    assert f"from key {old_key}" in rotated.stdout
    new_key = current_key(rotated.stdout)
    assert new_key != old_key
    assert set(key_counts(rotated.stdout)) == {new_key}
    for secret in new_secrets:
        assert secret not in rotated.stdout + rotated.stderr

    with served(data_dir, token) as server:
        response = httpx.get(
            f"{server.url}/v1/tokens", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
    assert response.status_code == 200, response.text


@pytest.mark.slow
def test_rotate_to_a_configured_secret(cli: Cli, data_dir: Path, served: Served) -> None:
    token = issue(cli, data_dir, {"MAILWIRE_SECRET": SECRET_A})
    moving = {"MAILWIRE_SECRET": SECRET_B, "MAILWIRE_PREVIOUS_SECRETS": SECRET_A}

    rotated = cli("encrypt", "--rotate", "--data-dir", str(data_dir), env=moving)

    assert rotated.returncode == 0, rotated.stderr
    assert not (data_dir / "secret").exists()
    assert SECRET_A not in rotated.stdout + rotated.stderr
    assert SECRET_B not in rotated.stdout + rotated.stderr
    assert len(key_counts(rotated.stdout)) == 1
    # Everything now decrypts with the new secret alone ...
    with served(data_dir, token, {"MAILWIRE_SECRET": SECRET_B}) as server:
        response = httpx.get(
            f"{server.url}/v1/tokens", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
    assert response.status_code == 200, response.text
    # ... and no longer with the old one.
    refused = cli("tokens", "list", "--data-dir", str(data_dir), env={"MAILWIRE_SECRET": SECRET_A})
    assert refused.returncode == 2
    assert "MAILWIRE_SECRET" in refused.stderr
