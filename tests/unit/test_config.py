"""Settings: one ConfigError naming every problem, per-environment cookie rules, defaults."""

from __future__ import annotations

import os

import pytest

from app import create_app
from config import ConfigError, load_settings
from tests.support.environments import base_environ, production_environ

REQUIRED = ("SECRET_KEY", "REDIS_URL", "OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")


def problems_of(environ: dict[str, str], **kwargs: object) -> list[str]:
    """The problems `load_settings` reports for `environ` (fails if it reports none)."""
    with pytest.raises(ConfigError) as raised:
        load_settings(environ, **kwargs)
    return raised.value.problems


def test_every_missing_setting_is_named_in_one_error() -> None:
    problems = problems_of({})
    message = "\n".join(problems)
    for name in (*REQUIRED, "DATABASE_URL", "PUBLIC_URL"):
        assert name in message, f"{name} missing from: {message}"
    assert len(problems) == len(REQUIRED) + 2


def test_invalid_settings_are_all_named_together() -> None:
    environ = base_environ(
        REDIS_URL="http://not-redis",
        SESSION_IDLE_TIMEOUT="soon",
        API_TIMEOUT="-1",
        API_BASE_URL="ftp://files.example.test",
        DATABASE_URL="mysql://db/gatehouse",
        GATEHOUSE_ENV="staging",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(environ)
    message = str(raised.value)
    for name in ("REDIS_URL", "SESSION_IDLE_TIMEOUT", "API_TIMEOUT", "API_BASE_URL", "DATABASE_URL", "GATEHOUSE_ENV"):
        assert name in message, f"{name} missing from: {message}"


def test_create_app_fails_at_once_naming_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_ENV", "testing")
    with pytest.raises(ConfigError) as raised:
        create_app({"REDIS_URL": "redis://127.0.0.1:1/0"})
    message = str(raised.value)
    assert "REDIS_URL" not in message
    for name in ("SECRET_KEY", "OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        assert name in message


def test_overrides_take_precedence_over_the_environment() -> None:
    settings = load_settings(base_environ(OIDC_CLIENT_ID="from-env"), overrides={"OIDC_CLIENT_ID": "from-code"})
    assert settings["OIDC_CLIENT_ID"] == "from-code"


def test_numbers_are_parsed_from_the_environment() -> None:
    settings = load_settings(base_environ(SESSION_IDLE_TIMEOUT="600", API_TIMEOUT="2.5"))
    assert settings["SESSION_IDLE_TIMEOUT"] == 600
    assert settings["PERMANENT_SESSION_LIFETIME"] == 600
    assert settings["API_TIMEOUT"] == 2.5


def test_environment_defaults_to_production() -> None:
    environ = production_environ()
    del environ["GATEHOUSE_ENV"]
    assert load_settings(environ)["GATEHOUSE_ENV"] == "production"


def test_production_cookie_is_secure_with_host_prefix() -> None:
    settings = load_settings(production_environ())
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert settings["SESSION_COOKIE_HTTPONLY"] is True
    # Lax, not Strict: the state must survive the redirect back from the provider.
    assert settings["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_production_refuses_an_http_issuer_and_a_short_secret() -> None:
    message = "\n".join(problems_of(production_environ(OIDC_ISSUER="http://idp.example.test", SECRET_KEY="short")))
    assert "OIDC_ISSUER" in message
    assert "https" in message
    assert "SECRET_KEY" in message


def test_production_requires_a_database_url() -> None:
    environ = production_environ()
    del environ["DATABASE_URL"]
    assert any("DATABASE_URL" in problem for problem in problems_of(environ))


def test_development_drops_secure_for_plain_http() -> None:
    settings = load_settings(base_environ(OIDC_ISSUER="http://127.0.0.1:9400"))
    assert settings["SESSION_COOKIE_SECURE"] is False
    assert not settings["SESSION_COOKIE_NAME"].startswith("__Host-")


def test_database_defaults_to_sqlite_in_the_instance_folder(tmp_path: os.PathLike[str]) -> None:
    settings = load_settings(base_environ(), instance_path=str(tmp_path))
    assert settings["DATABASE_URL"] == f"sqlite:///{os.path.join(tmp_path, 'gatehouse.db')}"
    assert settings["SQLALCHEMY_DATABASE_URI"] == settings["DATABASE_URL"]


def test_queue_redis_defaults_to_the_session_redis() -> None:
    assert load_settings(base_environ())["QUEUE_REDIS_URL"] == "redis://127.0.0.1:6379/0"
    separate = load_settings(base_environ(QUEUE_REDIS_URL="redis://queue.internal:6379/1"))
    assert separate["QUEUE_REDIS_URL"] == "redis://queue.internal:6379/1"


def test_postgres_urls_use_psycopg_3() -> None:
    settings = load_settings(production_environ(DATABASE_URL="postgres://u:p@db.internal/gatehouse"))
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.internal/gatehouse"


def test_production_needs_an_https_public_url_and_https_api() -> None:
    """Bearer tokens and codes never travel in clear: PUBLIC_URL and API_BASE_URL must be https in production."""
    missing = problems_of(production_environ(PUBLIC_URL=""))
    assert any("PUBLIC_URL is required in production" in problem for problem in missing)
    clear = problems_of(production_environ(PUBLIC_URL="http://gatehouse.example.test", API_BASE_URL="http://api.test"))
    assert "PUBLIC_URL must be an https URL in production" in clear
    assert "API_BASE_URL must be an https URL in production" in clear
    with_path = problems_of(production_environ(PUBLIC_URL="https://gatehouse.example.test/app?x=1"))
    assert any("PUBLIC_URL must be a bare origin" in problem for problem in with_path)


def test_public_url_sets_the_trusted_hosts() -> None:
    """Requests for any other host are refused by Flask: TRUSTED_HOSTS holds only PUBLIC_URL's host."""
    settings = load_settings(production_environ(PUBLIC_URL="https://gatehouse.example.test/"))
    assert settings["PUBLIC_URL"] == "https://gatehouse.example.test"
    assert settings["TRUSTED_HOSTS"] == ["gatehouse.example.test"]
    assert "TRUSTED_HOSTS" not in load_settings(base_environ())


@pytest.mark.parametrize("hint", ["ID_TOKEN", "none", "id_token client_id"])
def test_logout_hint_takes_only_its_two_words(hint: str) -> None:
    assert problems_of(base_environ(LOGOUT_HINT=hint)) == [
        f"LOGOUT_HINT must be one of id_token, client_id (got {hint!r})"
    ]


def test_token_refresh_ahead_is_read_from_the_environment() -> None:
    assert load_settings(base_environ())["TOKEN_REFRESH_AHEAD"] == 60
    assert load_settings(base_environ(TOKEN_REFRESH_AHEAD="15"))["TOKEN_REFRESH_AHEAD"] == 15


@pytest.mark.parametrize("ahead", ["-1", "3601", "1e9", "soon", "1.5"])
def test_an_unusable_token_refresh_ahead_is_named(ahead: str) -> None:
    problems = problems_of(base_environ(TOKEN_REFRESH_AHEAD=ahead))
    assert len(problems) == 1 and "TOKEN_REFRESH_AHEAD" in problems[0], problems
