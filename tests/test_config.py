"""Settings: environment, flags, and one clear line for each kind of bad value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailwire.config import load_settings
from mailwire.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("MAILWIRE_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 3000, 1)
    assert settings.data_dir == Path("data")
    assert settings.uses_sqlite
    assert settings.resolved_database_url.endswith("/data/mailwire.db")
    assert settings.secret is None


def test_environment_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWIRE_PORT", "4000")
    monkeypatch.setenv("MAILWIRE_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("MAILWIRE_PREVIOUS_SECRETS", "one-old-secret-value, two-old-secret-value")
    monkeypatch.setenv("MAILWIRE_TRUSTED_PROXIES", "10.0.0.0/8 ::1")
    settings = load_settings()
    assert settings.port == 4000
    assert settings.log_level == "debug"
    assert len(settings.previous_secrets) == 2
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1")
    assert load_settings(port=5000, host=None).port == 5000  # a flag beats the variable


def test_postgres_urls_are_normalised_to_asyncpg() -> None:
    settings = load_settings(database_url="postgresql://u@db/mailwire")
    assert settings.resolved_database_url == "postgresql+asyncpg://u@db/mailwire"
    assert not settings.uses_sqlite


def test_secret_never_appears_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(secret="a-very-secret-value-123")
    assert "a-very-secret-value-123" not in repr(settings)
    assert settings.secret_values() == ["a-very-secret-value-123"]
    monkeypatch.setenv("MAILWIRE_SECRET", "short!")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "short!" not in str(caught.value)
    assert caught.value.setting == "MAILWIRE_SECRET"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("MAILWIRE_PORT", "abc", "integer"),
        ("MAILWIRE_PORT", "0", "greater than or equal to 1"),
        ("MAILWIRE_WORKERS", "100", "less than or equal to 64"),
        ("MAILWIRE_LOG_LEVEL", "loud", "debug"),
        ("MAILWIRE_DATABASE_URL", "mysql://x/y", "must start with"),
        ("MAILWIRE_DATABASE_SCHEMA", "Robert'); DROP", "identifier"),
        ("MAILWIRE_TRUSTED_PROXIES", "not-an-ip", "does not appear to be"),
        ("MAILWIRE_PROT", "3000", "not a known setting"),
        ("MAILWIRE_WEBHOOK_TIMEOUT", "0", "greater than 0"),
        ("MAILWIRE_WEBHOOK_TIMEOUT", "soon", "number"),
    ],
)
def test_bad_variables_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.setting == variable
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_webhook_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().webhook_timeout == 30.0
    monkeypatch.setenv("MAILWIRE_WEBHOOK_TIMEOUT", "2.5")
    assert load_settings().webhook_timeout == 2.5


def test_bad_flags_are_named_as_flags() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(port=70000)
    assert caught.value.setting == "--port"


def test_test_suite_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWIRE_TEST_DATABASE_URL", "postgresql://x/y")
    assert load_settings().database_url is None
