"""`flask --app app users disable/enable`, run as an operator would: sessions end at once, sign-in is refused."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sessions import keys
from tests.integration.pages import is_signed_in_as, is_signed_out, texts
from tests.integration.persisted import user_rows, wait_for_row
from tests.support.browserless import session_id, sign_in
from tests.support.cli import run_flask
from tests.support.ports import free_port
from tests.support.session_records import session_exists
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

DISABLED_MESSAGE = "This account has been disabled. Please contact your administrator."


@pytest.fixture
def second_browser() -> Iterator[requests.Session]:
    """Another browser of the same person."""
    with requests.Session() as http:
        yield http


@pytest.fixture
def bystander() -> Iterator[requests.Session]:
    """A browser of another user."""
    with requests.Session() as http:
        yield http


def user_redis_keys(stack: Stack, subject: str) -> list[bytes]:
    """Every Redis key of one user (their hash tag)."""
    tag = keys.user_tag(stack.provider_url, subject)
    with stack.redis() as client:
        return sorted(client.scan_iter(match=f"{keys.PREFIX}{{{tag}}}:*", count=1000))


def flask_with(stack: Stack, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `flask --app app ARGS` with the stack's environment changed by `env`."""
    return run_flask(*args, env={**stack.env, **env}, timeout=120)


def test_disable_ends_every_session_at_once_and_refuses_sign_in(
    stack: Stack,
    browser: requests.Session,
    second_browser: requests.Session,
    bystander: requests.Session,
    subject: str,
) -> None:
    other_subject = f"other-{uuid.uuid4().hex[:12]}"
    sign_in(browser, stack.web_url, subject)
    sign_in(second_browser, stack.web_url, subject)
    sign_in(bystander, stack.web_url, other_subject)
    sids = [session_id(browser), session_id(second_browser)]
    wait_for_row(stack, subject, disabled=False)

    result = stack.flask("users", "disable", subject, "--issuer", stack.provider_url, check=False)

    assert result.returncode == 0, result.stderr
    assert f"disabled {subject}" in result.stdout
    assert "2 session(s) ended" in result.stdout
    # Both browsers are signed out on their very next request, with no wait for the worker.
    assert is_signed_out(browser, stack.web_url)
    assert is_signed_out(second_browser, stack.web_url)
    with stack.redis() as client:
        assert not any(session_exists(client, sid) for sid in sids)
    # Another user is not affected.
    assert is_signed_in_as(bystander, stack.web_url, other_subject)
    # Signing in again is refused with a clear message, and opens no session.
    page = sign_in(browser, stack.web_url, subject, next_path="/profile")
    assert page.history[0].status_code == 303
    failed = urlsplit(page.url)
    assert failed.path == "/auth/failed"
    assert parse_qs(failed.query) == {"reason": ["disabled"]}
    assert page.status_code == 400
    assert DISABLED_MESSAGE in page.text
    assert texts(page.text, "signed-in-as") == []
    assert is_signed_out(browser, stack.web_url)
    # The flag reaches the user's row through the queue.
    row = wait_for_row(stack, subject, disabled=True)
    assert row["subject"] == subject
    assert wait_for_row(stack, other_subject, disabled=False)


def test_enable_lets_a_disabled_user_sign_in_again(stack: Stack, browser: requests.Session, subject: str) -> None:
    sign_in(browser, stack.web_url, subject)
    wait_for_row(stack, subject, disabled=False)
    disable = stack.flask("users", "disable", subject, "--issuer", stack.provider_url, check=False)
    assert disable.returncode == 0, disable.stderr
    wait_for_row(stack, subject, disabled=True)

    result = stack.flask("users", "enable", subject, "--issuer", stack.provider_url, check=False)

    assert result.returncode == 0, result.stderr
    assert f"enabled {subject}" in result.stdout
    page = sign_in(browser, stack.web_url, subject, next_path="/profile")
    assert page.status_code == 200
    assert urlsplit(page.url).path == "/profile"
    assert texts(page.text, "signed-in-as") == [subject]
    wait_for_row(stack, subject, disabled=False)
    assert len(user_rows(stack, subject)) == 1


def test_disabling_an_unknown_user_fails_and_changes_nothing(stack: Stack, subject: str) -> None:
    # The stack is shared: an earlier test's sign-in may still have its job on the queue.
    stack.wait_for_jobs()
    users_before = stack.users()

    result = stack.flask("users", "disable", subject, "--issuer", stack.provider_url, check=False)

    assert result.returncode == 1
    assert subject in result.stderr
    assert "nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert user_redis_keys(stack, subject) == []
    assert stack.users() == users_before


def test_disable_at_another_issuer_does_not_touch_the_user(
    stack: Stack, browser: requests.Session, subject: str
) -> None:
    sign_in(browser, stack.web_url, subject)
    wait_for_row(stack, subject, disabled=False)

    result = stack.flask("users", "disable", subject, "--issuer", "https://elsewhere.example", check=False)

    assert result.returncode == 1
    assert "nothing was changed" in result.stderr
    assert is_signed_in_as(browser, stack.web_url, subject)
    assert user_rows(stack, subject)[0]["disabled"] is False


@pytest.mark.parametrize("command", ["disable", "enable"])
def test_a_missing_issuer_is_a_usage_error(stack: Stack, subject: str, command: str) -> None:
    result = stack.flask("users", command, subject, check=False)

    assert result.returncode == 2
    assert "--issuer" in result.stderr
    assert "Traceback" not in result.stderr
    assert user_redis_keys(stack, subject) == []


def test_disable_with_redis_unreachable_fails_cleanly_and_changes_nothing(
    stack: Stack, browser: requests.Session, subject: str
) -> None:
    sign_in(browser, stack.web_url, subject)
    wait_for_row(stack, subject, disabled=False)
    keys_before = user_redis_keys(stack, subject)
    closed = f"redis://127.0.0.1:{free_port()}/0"

    result = flask_with(
        stack,
        {"REDIS_URL": closed, "QUEUE_REDIS_URL": closed},
        "users",
        "disable",
        subject,
        "--issuer",
        stack.provider_url,
    )

    assert result.returncode != 0
    assert "cannot reach Redis" in result.stderr
    assert "nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert user_redis_keys(stack, subject) == keys_before
    assert is_signed_in_as(browser, stack.web_url, subject)
    assert user_rows(stack, subject)[0]["disabled"] is False
