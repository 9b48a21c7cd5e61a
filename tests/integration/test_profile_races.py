"""Third pass, items 1 and 2, over HTTP with the requests really concurrent: two devices saving the profile at
the same instant never both hear "saved" while one edit is lost, and a save racing a deletion never brings
the deleted user back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from tests.integration.pages import form_values
from tests.integration.persisted import user_rows, wait_for_row
from tests.support.browserless import TIMEOUT, csrf_token, sign_in
from tests.support.concurrency import at_once
from tests.support.polling import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

ROUNDS = 8


def post_profile(http: requests.Session, base: str, fields: dict[str, str]) -> Callable[[], requests.Response]:
    return lambda: http.post(f"{base}/profile", data=fields, allow_redirects=False, timeout=TIMEOUT)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_devices_saving_one_version_at_once_keep_both_edits_or_refuse_one(
    stack: Stack, subject: str, round_: int
) -> None:
    base = stack.web_url
    laptop, phone = requests.Session(), requests.Session()
    shown = sign_in(laptop, base, subject, next_path="/profile")
    sign_in(phone, base, subject)
    wait_for_row(stack, subject)
    laptop_page = laptop.get(f"{base}/profile", timeout=TIMEOUT).text
    phone_page = phone.get(f"{base}/profile", timeout=TIMEOUT).text
    assert form_values(laptop_page)["version"] == form_values(phone_page)["version"], shown.url
    bio_edit = form_values(laptop_page) | {"bio": f"bio of round {round_}"}
    name_edit = form_values(phone_page) | {"display_name": f"Name {round_}"}

    answers = at_once(post_profile(laptop, base, bio_edit), post_profile(phone, base, name_edit))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [302, 409], f"both told saved, or neither: {statuses}"
    kept = bio_edit if answers[0].status_code == 302 else name_edit
    expected = {"bio": kept["bio"], "display_name": kept["display_name"]}
    refused = answers[1] if answers[0].status_code == 302 else answers[0]
    assert "Nothing was saved" in refused.text
    # The row keeps an empty field as NULL.
    wait_for_row(stack, subject, **{name: value or None for name, value in expected.items()})
    for device in (laptop, phone):
        assert {name: form_values(device.get(f"{base}/profile", timeout=TIMEOUT).text)[name] for name in expected} == (
            expected
        )


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_save_racing_the_deletion_never_brings_the_user_back(stack: Stack, subject: str, round_: int) -> None:
    base = stack.web_url
    editor, deleter = requests.Session(), requests.Session()
    page = sign_in(editor, base, subject, next_path="/profile")
    sign_in(deleter, base, subject)
    wait_for_row(stack, subject)
    edit = form_values(page.text) | {"bio": f"written while deleting, round {round_}"}
    confirm = deleter.get(f"{base}/account/delete", timeout=TIMEOUT)
    delete = {"csrf_token": csrf_token(confirm.text)}

    saved, deleted = at_once(
        post_profile(editor, base, edit),
        lambda: deleter.post(f"{base}/account/delete", data=delete, allow_redirects=False, timeout=TIMEOUT),
    )

    assert deleted.status_code == 303
    # The save finished before the deletion (302), found the account gone (302, sent to sign in), or found
    # its session, and with it the form's CSRF token, already ended (400: the form has expired).
    assert saved.status_code in (302, 400), saved.status_code
    wait_until(lambda: not user_rows(stack, subject), timeout=30, what="the deleted row gone")
    stack.wait_for_jobs()
    assert user_rows(stack, subject) == [], "a save in flight brought the deleted user back"
