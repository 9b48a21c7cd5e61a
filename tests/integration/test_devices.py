"""One user, many sessions: the devices page lists and signs out sessions, and every device shares one truth."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import requests

from sessions import keys
from tests.integration.pages import form_values, is_signed_in_as, is_signed_out, texts
from tests.integration.persisted import wait_for_row
from tests.support.browserless import TIMEOUT, csrf_token, session_id, sign_in, sign_out
from tests.support.concurrency import at_once
from tests.support.polling import wait_until
from tests.support.session_records import indexed_sessions, read_session, session_exists
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration

FIREFOX_ON_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_ON_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
NOT_YOURS = "That session is not one of your other sessions, or it has already ended."


@dataclass(frozen=True)
class Row:
    """One row of the devices table, as a user sees it."""

    device: str
    address: str
    current: bool
    # Where the row's "Sign out" form posts (None for the current session, which has none).
    revoke_action: str | None

    @property
    def handle(self) -> str:
        assert self.revoke_action, "the current session has no revoke form"
        return self.revoke_action.removeprefix("/sessions/").removesuffix("/revoke")


class _RowReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[Row] = []
        self._row: dict | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        testid = attributes.get("data-testid")
        if tag == "tr" and testid == "session-row":
            self._row = {"device": "", "address": "", "current": attributes.get("data-current") == "true"}
            self._row["revoke_action"] = None
        elif self._row is not None and tag == "td" and testid in ("session-device", "session-address"):
            self._cell = testid.removeprefix("session-")
        elif self._row is not None and tag == "form":
            self._row["revoke_action"] = attributes.get("action")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        elif tag == "tr" and self._row is not None:
            row = self._row
            self.rows.append(
                Row(
                    device=" ".join(row["device"].split()),
                    address=row["address"].strip(),
                    current=row["current"],
                    revoke_action=row["revoke_action"],
                )
            )
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._cell:
            self._row[self._cell] += data


def device_rows(page_html: str) -> list[Row]:
    """The rows of the devices table on a /sessions page."""
    reader = _RowReader()
    reader.feed(page_html)
    reader.close()
    return reader.rows


def browser_with(user_agent: str | None = None) -> requests.Session:
    """A fresh browser (cookie jar), optionally sending a User-Agent."""
    http = requests.Session()
    if user_agent:
        http.headers["User-Agent"] = user_agent
    return http


@pytest.fixture
def browsers() -> Iterator[list[requests.Session]]:
    """Up to five fresh browsers of one person: Firefox on Windows, Safari on an iPhone, then plain ones."""
    opened = [browser_with(FIREFOX_ON_WINDOWS), browser_with(SAFARI_ON_IPHONE), *(browser_with() for _ in range(3))]
    try:
        yield opened
    finally:
        for http in opened:
            http.close()


def devices_page(http: requests.Session, base_url: str) -> requests.Response:
    """GET /sessions, signed in."""
    page = http.get(f"{base_url}/sessions", allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200, page.status_code
    return page


def revoke(http: requests.Session, base_url: str, handle: str) -> requests.Response:
    """Press "Sign out" on one row of /sessions (the redirect is not followed)."""
    token = csrf_token(devices_page(http, base_url).text)
    return http.post(
        f"{base_url}/sessions/{handle}/revoke", data={"csrf_token": token}, allow_redirects=False, timeout=TIMEOUT
    )


def index_members(stack: Stack, subject: str) -> set[str]:
    """The members of the user's session index (the random part of each session id)."""
    with stack.redis() as client:
        return set(indexed_sessions(client, keys.user_tag(stack.provider_url, subject)))


def member_of(sid: str | None) -> str:
    """The random part R of a signed-in session id U.R."""
    parsed = keys.parse_sid(sid)
    assert parsed is not None and parsed[0] is not None, sid
    return parsed[1]


def test_devices_page_lists_every_session_of_the_user_without_ids_or_tokens(
    stack: Stack, browsers: list[requests.Session], subject: str
) -> None:
    firefox, safari = browsers[0], browsers[1]
    sign_in(firefox, stack.web_url, subject)
    sign_in(safari, stack.web_url, subject)
    sids = [session_id(firefox), session_id(safari)]

    page = devices_page(firefox, stack.web_url)

    rows = device_rows(page.text)
    assert len(rows) == 2, rows
    current, other = rows
    # The current one first, marked, with no form to sign itself out from here.
    assert current.current and not other.current
    assert current.revoke_action is None
    assert "(this device)" in current.device
    assert current.device.startswith("Firefox 128 on Windows"), current.device
    assert "Safari" in other.device and other.device.endswith("on iOS"), other.device
    assert current.address == other.address == "127.0.0.1"
    assert texts(page.text, "current-session") == ["(this device)"]
    assert len(texts(page.text, "revoke-session")) == 1
    assert texts(page.text, "revoke-others") == ["Sign out everywhere else"]
    # Neither the session ids (the cookie values), nor any part of them, nor a token is on the page.
    with stack.redis() as client:
        records = [read_session(client, sid) for sid in sids]
    secrets = set()
    for sid, record in zip(sids, records, strict=True):
        assert sid and record is not None
        secrets |= {sid, member_of(sid)}
        secrets |= {value for value in record["tokens"].values() if isinstance(value, str) and value}
    assert len(secrets) >= 6
    for secret in secrets:
        assert secret not in page.text
    # The form names the other session by its handle, unrelated to its id.
    assert other.handle == records[1]["handle"]
    assert other.handle not in (sids[1] or "")
    # The page is listed in the navigation.
    assert 'href="/sessions"' in page.text and ">Devices<" in page.text


def test_revoking_another_device_signs_it_out_and_keeps_this_one(
    stack: Stack, browsers: list[requests.Session], subject: str
) -> None:
    firefox, safari = browsers[0], browsers[1]
    sign_in(firefox, stack.web_url, subject)
    sign_in(safari, stack.web_url, subject)
    safari_sid = session_id(safari)
    [other] = [row for row in device_rows(devices_page(firefox, stack.web_url).text) if not row.current]

    response = revoke(firefox, stack.web_url, other.handle)

    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/sessions"
    after = firefox.get(f"{stack.web_url}{response.headers['Location']}", timeout=TIMEOUT)
    assert "That device has been signed out." in after.text
    rows = device_rows(after.text)
    assert [row.current for row in rows] == [True]
    assert texts(after.text, "revoke-others") == []
    assert is_signed_out(safari, stack.web_url)
    assert is_signed_in_as(firefox, stack.web_url, subject)
    assert stack.session_record(safari_sid or "") is None
    assert index_members(stack, subject) == {member_of(session_id(firefox))}
    # Posting the same handle again changes nothing: it is no longer one of the user's sessions.
    again = revoke(firefox, stack.web_url, other.handle)
    assert again.status_code == 404
    assert NOT_YOURS in again.text


def test_revoke_without_csrf_token_is_refused(stack: Stack, browsers: list[requests.Session], subject: str) -> None:
    firefox, safari = browsers[0], browsers[1]
    sign_in(firefox, stack.web_url, subject)
    sign_in(safari, stack.web_url, subject)
    [other] = [row for row in device_rows(devices_page(firefox, stack.web_url).text) if not row.current]

    response = firefox.post(f"{stack.web_url}/sessions/{other.handle}/revoke", allow_redirects=False, timeout=TIMEOUT)

    assert response.status_code == 400
    assert is_signed_in_as(safari, stack.web_url, subject)
    assert len(device_rows(devices_page(firefox, stack.web_url).text)) == 2


def test_sign_out_everywhere_else_keeps_only_the_posting_session(
    stack: Stack, browsers: list[requests.Session], subject: str
) -> None:
    first, second, third = browsers[:3]
    for http in (first, second, third):
        sign_in(http, stack.web_url, subject)
    page = devices_page(third, stack.web_url)
    assert len(device_rows(page.text)) == 3

    response = third.post(
        f"{stack.web_url}/sessions/revoke-others",
        data={"csrf_token": csrf_token(page.text)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert response.status_code == 302
    after = third.get(f"{stack.web_url}{response.headers['Location']}", timeout=TIMEOUT)
    assert "Signed out 2 other sessions." in after.text
    assert [row.current for row in device_rows(after.text)] == [True]
    assert is_signed_out(first, stack.web_url)
    assert is_signed_out(second, stack.web_url)
    assert is_signed_in_as(third, stack.web_url, subject)
    assert index_members(stack, subject) == {member_of(session_id(third))}


def test_another_users_handle_is_not_found_and_their_session_survives(
    stack: Stack, browsers: list[requests.Session], subject: str
) -> None:
    mine, theirs_a, theirs_b = browsers[:3]
    other_subject = f"other-{uuid.uuid4().hex[:12]}"
    sign_in(mine, stack.web_url, subject)
    sign_in(theirs_a, stack.web_url, other_subject)
    sign_in(theirs_b, stack.web_url, other_subject)
    [their_other] = [row for row in device_rows(devices_page(theirs_a, stack.web_url).text) if not row.current]

    response = revoke(mine, stack.web_url, their_other.handle)

    assert response.status_code == 404
    assert NOT_YOURS in response.text
    assert "Traceback" not in response.text
    assert is_signed_in_as(theirs_b, stack.web_url, other_subject)
    assert is_signed_in_as(theirs_a, stack.web_url, other_subject)
    assert is_signed_in_as(mine, stack.web_url, subject)
    assert len(device_rows(devices_page(theirs_a, stack.web_url).text)) == 2
    # Neither a made-up handle, nor a malformed one, nor the user's own current session can be revoked here.
    own_handle = (stack.session_record(session_id(mine) or "") or {})["handle"]
    for handle in ("A" * 22, "not-a-handle", own_handle):
        refused = revoke(mine, stack.web_url, handle)
        assert refused.status_code == 404, handle
        assert NOT_YOURS in refused.text
    assert is_signed_in_as(mine, stack.web_url, subject)


def test_two_devices_revoking_each_other_at_the_same_instant_never_both_survive(
    stack: Stack, browsers: list[requests.Session], subject: str
) -> None:
    """Whichever revoke ends the other session first wins. A request whose own session ended before it was read
    revokes nothing: its form belonged to that session (400), or it is sent to sign in (302 to /login). So one
    device or neither is left, never both, and a survivor is the one whose revoke went through."""
    firefox, safari = browsers[0], browsers[1]
    sign_in(firefox, stack.web_url, subject)
    sign_in(safari, stack.web_url, subject)
    handles = {}
    forms = {}
    for name, http in (("firefox", firefox), ("safari", safari)):
        page = devices_page(http, stack.web_url).text
        [other] = [row for row in device_rows(page) if not row.current]
        handles[name], forms[name] = other.handle, csrf_token(page)

    def revoke_other(http: requests.Session, name: str) -> requests.Response:
        return http.post(
            f"{stack.web_url}/sessions/{handles[name]}/revoke",
            data={"csrf_token": forms[name]},
            allow_redirects=False,
            timeout=TIMEOUT,
        )

    answers = at_once(lambda: revoke_other(firefox, "firefox"), lambda: revoke_other(safari, "safari"))

    signed_in = [is_signed_in_as(http, stack.web_url, subject) for http in (firefox, safari)]
    assert signed_in != [True, True]
    for answer, still_in in zip(answers, signed_in, strict=True):
        assert answer.status_code in (302, 400), answer.status_code
        if still_in:
            assert answer.status_code == 302
            assert urlsplit(answer.headers["Location"]).path == "/sessions"  # its revoke went through
    assert len(index_members(stack, subject)) == signed_in.count(True)


def test_a_profile_edit_in_one_browser_shows_in_the_others_next_page(
    stack: Stack, browsers: list[requests.Session], subject: str
) -> None:
    firefox, safari = browsers[0], browsers[1]
    form = sign_in(firefox, stack.web_url, subject, next_path="/profile")
    sign_in(safari, stack.web_url, subject, next_path="/profile")
    wait_for_row(stack, subject, display_name=subject)

    edit = firefox.post(
        f"{stack.web_url}/profile",
        data={
            "csrf_token": csrf_token(form.text),
            "display_name": "Shared Everywhere",
            "locale": "de",
            "timezone": "Europe/Berlin",
            "website": "https://example.org/shared",
            "bio": "Seen on every device.",
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert edit.status_code == 302
    home = safari.get(f"{stack.web_url}/", timeout=TIMEOUT)
    assert texts(home.text, "signed-in-as") == ["Shared Everywhere"]
    values = form_values(safari.get(f"{stack.web_url}/profile", timeout=TIMEOUT).text)
    assert values["display_name"] == "Shared Everywhere"
    assert values["locale"] == "de"
    assert values["timezone"] == "Europe/Berlin"
    assert values["website"] == "https://example.org/shared"
    assert values["bio"] == "Seen on every device."
    row = wait_for_row(stack, subject, display_name="Shared Everywhere")
    assert row["locale"] == "de" and row["timezone"] == "Europe/Berlin"
    # One shared profile: both sessions read the same record, with the same version.
    first, second = stack.session_record(session_id(firefox) or ""), stack.session_record(session_id(safari) or "")
    assert first and second and first["profile"] == second["profile"]
    assert first["profile"]["display_name"] == "Shared Everywhere"


def test_a_session_works_on_every_web_process_and_is_revoked_from_any(
    stack: Stack, browsers: list[requests.Session], subject: str
) -> None:
    firefox, safari = browsers[0], browsers[1]
    web_b = stack.start_web("web-b")
    try:
        sign_in(firefox, stack.web_url, subject)
        sid = session_id(firefox)

        # The same cookie opens the second process (cookies are per host, not per port).
        assert is_signed_in_as(firefox, web_b, subject)
        assert session_id(firefox) == sid
        sign_in(safari, web_b, subject)
        rows = device_rows(devices_page(safari, web_b).text)
        assert len(rows) == 2
        [firefox_row] = [row for row in rows if not row.current]

        response = revoke(safari, web_b, firefox_row.handle)

        assert response.status_code == 302
        assert is_signed_out(firefox, stack.web_url)
        assert is_signed_out(firefox, web_b)
        assert is_signed_in_as(safari, stack.web_url, subject)
        assert len(device_rows(devices_page(safari, stack.web_url).text)) == 1
    finally:
        stack.stop_process("web-b")
        stack.web_urls.remove(web_b)


def test_signing_out_ends_only_that_browser(stack: Stack, browsers: list[requests.Session], subject: str) -> None:
    firefox, safari = browsers[0], browsers[1]
    sign_in(firefox, stack.web_url, subject)
    sign_in(safari, stack.web_url, subject)
    firefox_sid, safari_sid = session_id(firefox), session_id(safari)
    assert index_members(stack, subject) == {member_of(firefox_sid), member_of(safari_sid)}

    sign_out(firefox, stack.web_url)

    assert is_signed_out(firefox, stack.web_url)
    assert is_signed_in_as(safari, stack.web_url, subject)
    rows = device_rows(devices_page(safari, stack.web_url).text)
    assert len(rows) == 1 and rows[0].current
    assert rows[0].device.startswith("Mobile Safari"), rows[0].device
    assert index_members(stack, subject) == {member_of(safari_sid)}
    assert stack.session_record(firefox_sid or "") is None


@pytest.fixture(scope="module")
def capped_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own where one user may hold at most three sessions (SQLite)."""
    running = start_stack(tmp_path_factory.mktemp("capped"), extra_env={"SESSIONS_PER_USER": "3"})
    try:
        yield running
    finally:
        running.stop()


def test_a_sign_in_beyond_the_cap_ends_the_oldest_session(
    capped_stack: Stack, browsers: list[requests.Session], subject: str
) -> None:
    web = capped_stack.web_url
    for http in browsers[:3]:
        sign_in(http, web, subject)
    oldest, *kept = browsers[:3]
    oldest_sid = session_id(oldest)
    assert len(device_rows(devices_page(kept[-1], web).text)) == 3

    sign_in(browsers[3], web, subject)

    kept.append(browsers[3])
    assert is_signed_out(oldest, web)
    for http in kept:
        assert is_signed_in_as(http, web, subject)
    assert len(device_rows(devices_page(browsers[3], web).text)) == 3
    assert index_members(capped_stack, subject) == {member_of(session_id(http)) for http in kept}
    with capped_stack.redis() as client:
        assert not session_exists(client, oldest_sid)


@pytest.fixture(scope="module")
def short_idle_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own where a session ends after 2 idle seconds and last-seen is written every second."""
    running = start_stack(
        tmp_path_factory.mktemp("short-idle"),
        extra_env={"SESSION_IDLE_TIMEOUT": "2", "SESSION_LAST_SEEN_INTERVAL": "1"},
    )
    try:
        yield running
    finally:
        running.stop()


def test_the_devices_page_drops_an_expired_session_from_the_index(
    short_idle_stack: Stack, browsers: list[requests.Session], subject: str
) -> None:
    web = short_idle_stack.web_url
    idle, busy = browsers[0], browsers[1]
    sign_in(idle, web, subject)
    sign_in(busy, web, subject)
    idle_member = member_of(session_id(idle))
    assert idle_member in index_members(short_idle_stack, subject)

    # The busy browser keeps using the devices page while the other one sits idle until it expires.
    def page_without_the_idle_session() -> list[Row] | None:
        rows = device_rows(devices_page(busy, web).text)
        return rows if len(rows) == 1 and idle_member not in index_members(short_idle_stack, subject) else None

    rows = wait_until(page_without_the_idle_session, timeout=15, what="the idle session to leave the index")

    assert rows[0].current
    assert index_members(short_idle_stack, subject) == {member_of(session_id(busy))}
    assert is_signed_out(idle, web)


def test_the_next_sign_in_drops_an_expired_session_from_the_index(
    short_idle_stack: Stack, browsers: list[requests.Session], subject: str
) -> None:
    web = short_idle_stack.web_url
    idle, busy, later = browsers[:3]
    sign_in(idle, web, subject)
    sign_in(busy, web, subject)
    idle_sid = session_id(idle)
    user = keys.user_tag(short_idle_stack.provider_url, subject)
    with short_idle_stack.redis() as client:
        # The index entry carries the latest moment the session can still be alive.
        latest = indexed_sessions(client, user).get(member_of(idle_sid))
        assert latest is not None

        # The busy browser keeps its session (and so the index) alive with pages that never list
        # sessions, while the idle one expires and its latest moment passes.
        def idle_one_expired_and_past_its_latest_moment() -> bool:
            assert busy.get(f"{web}/", timeout=TIMEOUT).status_code == 200
            seconds, microseconds = client.time()
            return not session_exists(client, idle_sid) and seconds + microseconds / 1e6 > latest

        wait_until(idle_one_expired_and_past_its_latest_moment, timeout=15, what="the idle session to expire")
        # Nothing has trimmed the index yet: the stale entry waits for the next sign-in.
        assert member_of(idle_sid) in index_members(short_idle_stack, subject)

    sign_in(later, web, subject)

    assert index_members(short_idle_stack, subject) == {member_of(session_id(busy)), member_of(session_id(later))}
    assert is_signed_in_as(later, web, subject)
    assert is_signed_out(idle, web)
