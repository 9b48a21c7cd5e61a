"""Two OpenID providers at once (OIDC_PROVIDERS=corp,partner), in a real browser.

Two certified `oidc-provider`s run side by side, each with its own issuer (port), its own client
and the app's per-provider callback /auth/callback/<name> and back-channel logout URI registered.
One Gatehouse stack (gunicorn, an RQ worker, Redis, PostgreSQL) serves every test here.

Both providers are on 127.0.0.1, and a browser's cookies ignore the port: each provider gets its
own browser profile in these tests, so one provider never sees the other's cookies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, expect

from devstack.processes import stop
from tests.e2e.pages import complete_provider_sign_in, provider_login_form, provider_name, signed_in_as
from tests.support.browserless import TIMEOUT
from tests.support.certified_provider import CertifiedProvider, start_certified_provider
from tests.support.concurrency import at_once
from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.postgres import database_url_for
from tests.support.stack import Stack, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SESSION_COOKIE = "gatehouse_session"
PROVIDER_SESSION_COOKIE = "_session"
# The providers, in OIDC_PROVIDERS order, with the label each button and /sessions shows.
LABELS = {"corp": "Corp SSO", "partner": "Partner ID"}


@dataclass
class TwoProviders:
    """The stack and its two providers, by name."""

    stack: Stack
    providers: dict[str, CertifiedProvider]

    @property
    def app(self) -> str:
        """The web process's URL."""
        return self.stack.web_url

    @property
    def corp(self) -> CertifiedProvider:
        return self.providers["corp"]

    @property
    def partner(self) -> CertifiedProvider:
        return self.providers["partner"]


def provider_settings(providers: dict[str, CertifiedProvider]) -> dict[str, str]:
    """OIDC_PROVIDERS and each provider's settings (and nothing of the one-provider OIDC_ISSUER form)."""
    settings = {"OIDC_ISSUER": "", "OIDC_CLIENT_ID": "", "OIDC_CLIENT_SECRET": "", "OIDC_PROVIDERS": ",".join(LABELS)}
    for name, provider in providers.items():
        prefix = f"OIDC_{name.upper()}_"
        settings |= {
            f"{prefix}ISSUER": provider.url,
            f"{prefix}CLIENT_ID": client_id(name),
            f"{prefix}CLIENT_SECRET": client_secret(name),
            f"{prefix}LABEL": LABELS[name],
        }
    return settings


def client_id(name: str) -> str:
    """The app's client at provider `name` (each provider registers its own)."""
    return f"gatehouse-{name}"


def client_secret(name: str) -> str:
    return f"gatehouse-{name}-secret"


@pytest.fixture(scope="module")
def two_providers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoProviders]:
    """Two certified providers and one Gatehouse stack on PostgreSQL signing in with both."""
    workdir = tmp_path_factory.mktemp("e2e-two-providers")
    logs = workdir / "logs"
    logs.mkdir()
    # Each provider registers the web process's exact URLs, so its port comes first.
    web_port = free_port()
    app = f"http://127.0.0.1:{web_port}"
    providers: dict[str, CertifiedProvider] = {}
    try:
        for name in LABELS:
            with open(logs / f"provider-{name}.log", "ab") as log:
                providers[name] = start_certified_provider(
                    free_port(),
                    redirect_uris=[f"{app}/auth/callback/{name}"],
                    post_logout_redirect_uris=[f"{app}/login?reason=signed_out"],
                    log=log,
                    backchannel_logout_uri=f"{app}/auth/backchannel-logout",
                    client_id=client_id(name),
                    client_secret=client_secret(name),
                )
        stack = start_stack(
            workdir,
            web=0,
            provider=None,
            database_url=database_url_for("postgresql", request, workdir, migrated=True),
            settings=provider_settings(providers),
        )
    except BaseException:
        stop([provider.process for provider in providers.values()])
        raise
    # The stack stops them with everything else (web first, then the providers, then the worker).
    stack.processes |= {f"provider-{name}": provider.process for name, provider in providers.items()}
    try:
        stack.start_web("web0", port=web_port)
        yield TwoProviders(stack, providers)
    finally:
        stack.stop()


def sign_in_with(page: Page, deployment: TwoProviders, name: str, login: str, next_path: str) -> None:
    """Open /login?next=…, click provider `name`'s button, sign in on its pages and arrive at `next_path`."""
    app = deployment.app
    page.goto(f"{app}/login?next={quote(next_path)}")
    button = page.get_by_test_id(f"provider-{name}")
    expect(button).to_have_text(f"Continue with {LABELS[name]}")
    button.click()
    # The provider's own login form, on that provider's origin (complete_provider_sign_in checks it).
    complete_provider_sign_in(page, deployment.providers[name].url, login)
    expect(page).to_have_url(f"{app}{next_path}")


def signed_in_page(
    open_context: Callable[[], BrowserContext], deployment: TwoProviders, name: str, login: str, next_path: str
) -> Page:
    """A fresh browser profile signed in as `login` at provider `name`, on `next_path`."""
    page = open_context().new_page()
    sign_in_with(page, deployment, name, login, next_path)
    return page


def gatehouse_cookie(page: Page, app: str) -> str | None:
    return next((c["value"] for c in page.context.cookies(app) if c["name"] == SESSION_COOKIE), None)


def provider_session_id(page: Page, provider: CertifiedProvider) -> str:
    """The browser's session at `provider`: its `_session` cookie."""
    values = [c["value"] for c in page.context.cookies(provider.url) if c["name"] == PROVIDER_SESSION_COOKIE]
    assert len(values) == 1, f"expected one provider session cookie, got {values}"
    return values[0]


def assert_signed_in(page: Page, app: str, login: str, display_name: str) -> None:
    """The browser opens /dashboard signed in, with its provider's userinfo (the app's default API)."""
    page.goto(f"{app}/dashboard")
    expect(page).to_have_url(f"{app}/dashboard")
    expect(page.get_by_test_id("api-data")).to_contain_text(f"{login}@example.test")
    assert signed_in_as(page) == display_name


def assert_sessions_page(page: Page, app: str, label: str) -> None:
    """/sessions lists exactly this browser's session, signed in with the provider labelled `label`."""
    page.goto(f"{app}/sessions")
    rows = page.get_by_test_id("session-row")
    expect(rows).to_have_count(1)
    expect(page.locator("[data-testid=session-row][data-current=true]")).to_have_count(1)
    expect(rows.get_by_test_id("session-provider")).to_have_text(label)


def assert_sent_to_choose_a_provider(page: Page, app: str) -> None:
    """Gatehouse no longer knows the browser: /dashboard sends it to /login, which offers both providers."""
    page.goto(f"{app}/dashboard")
    expect(page).to_have_url(f"{app}/login?next=/dashboard")
    for name in LABELS:
        expect(page.get_by_test_id(f"provider-{name}")).to_be_visible()
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)


def save_display_name(page: Page, app: str, display_name: str) -> None:
    page.goto(f"{app}/profile")
    page.fill("#display_name", display_name)
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("status")).to_have_text("Your profile has been saved.")
    expect(page.locator("#display_name")).to_have_value(display_name)


def test_login_offers_both_providers_and_the_same_login_at_each_is_a_separate_user(
    open_context: Callable[[], BrowserContext], two_providers: TwoProviders, user_login: str
) -> None:
    """One button per provider; `ada` at corp and `ada` at partner are two users with two profiles."""
    app, corp, partner = two_providers.app, two_providers.corp, two_providers.partner
    original_name = provider_name(user_login)

    corp_page = open_context().new_page()
    corp_page.goto(f"{app}/login?next=/profile")
    buttons = corp_page.get_by_test_id("providers").get_by_role("link")
    expect(buttons).to_have_text([f"Continue with {label}" for label in LABELS.values()])
    for name in LABELS:
        href = urlsplit(corp_page.get_by_test_id(f"provider-{name}").get_attribute("href") or "")
        assert href.path == f"/login/{name}" and parse_qs(href.query) == {"next": ["/profile"]}, href

    sign_in_with(corp_page, two_providers, "corp", user_login, "/profile")
    assert signed_in_as(corp_page) == original_name
    save_display_name(corp_page, app, "Corp Ada")
    assert_sessions_page(corp_page, app, LABELS["corp"])

    partner_page = signed_in_page(open_context, two_providers, "partner", user_login, "/profile")
    # Partner's user never saw corp's edit: it has the name partner's ID token gave it.
    assert signed_in_as(partner_page) == original_name
    expect(partner_page.locator("#display_name")).to_have_value(original_name)
    # And its devices page lists its own session only, not corp's user's.
    assert_sessions_page(partner_page, app, LABELS["partner"])
    save_display_name(partner_page, app, "Partner Ada")

    # Each browser keeps its own user's profile.
    corp_page.goto(f"{app}/profile")
    expect(corp_page.locator("#display_name")).to_have_value("Corp Ada")
    assert signed_in_as(corp_page) == "Corp Ada"
    assert_signed_in(partner_page, app, user_login, "Partner Ada")

    # Two rows in the database, one per (issuer, subject), each with its own edit.
    def persisted() -> dict[str, str | None]:
        rows = [row for row in two_providers.stack.users() if row["subject"] == user_login]
        return {str(row["issuer"]): row["display_name"] for row in rows}

    expected = {corp.url: "Corp Ada", partner.url: "Partner Ada"}
    wait_until(lambda: persisted() == expected, timeout=30, what=f"both users persisted as {expected}")


def test_back_channel_logout_from_corp_ends_only_corp_sessions(
    open_context: Callable[[], BrowserContext], two_providers: TwoProviders, user_login: str
) -> None:
    """Signing out on corp's own page sends its logout token: the corp browser is signed out, partner's is not."""
    app, corp, partner = two_providers.app, two_providers.corp, two_providers.partner
    display_name = provider_name(user_login)
    # The same login at both: a logout token judged by its `sub` alone would end both.
    corp_page = signed_in_page(open_context, two_providers, "corp", user_login, "/dashboard")
    partner_page = signed_in_page(open_context, two_providers, "partner", user_login, "/dashboard")
    assert gatehouse_cookie(corp_page, app) != gatehouse_cookie(partner_page, app)

    corp_session = provider_session_id(corp_page, corp)
    corp_sessions = {row["session_id"]: row for row in corp.sessions(user_login)}
    assert set(corp_sessions) == {corp_session}
    corp_sid = corp_sessions[corp_session]["sid"]
    assert corp_sid, "corp's ID token must carry a sid"
    assert len(partner.sessions(user_login)) == 1
    assert corp.account(user_login)["backchannel_logouts"] == []

    corp_page.goto(f"{corp.url}/session/end")
    corp_page.get_by_role("button", name="Yes, sign me out").click()
    expect(corp_page.get_by_role("button", name="Yes, sign me out")).to_have_count(0)

    deliveries = wait_until(
        lambda: corp.account(user_login)["backchannel_logouts"],
        timeout=15,
        what="corp to deliver the logout token",
    )
    assert deliveries == [{"sid": corp_sid, "ok": True, "error": None}], two_providers.stack.log("web0")
    assert corp.sessions(user_login) == []

    assert_sent_to_choose_a_provider(corp_page, app)
    # Its corp session ended too: corp's button asks for a login this time.
    corp_page.get_by_test_id("provider-corp").click()
    provider_login_form(corp_page, corp.url)

    assert_signed_in(partner_page, app, user_login, display_name)
    assert_sessions_page(partner_page, app, LABELS["partner"])
    assert partner.account(user_login)["backchannel_logouts"] == []
    assert len(partner.sessions(user_login)) == 1


def test_sign_out_of_a_partner_session_goes_to_partners_end_session_page(
    open_context: Callable[[], BrowserContext], two_providers: TwoProviders, user_login: str
) -> None:
    """Sign-out sends the browser to the provider it signed in with (partner), and back to /login signed out."""
    app, corp, partner = two_providers.app, two_providers.corp, two_providers.partner
    page = signed_in_page(open_context, two_providers, "partner", user_login, "/dashboard")
    assert signed_in_as(page) == provider_name(user_login)

    with page.expect_response(f"{app}/logout") as logout:
        page.get_by_test_id("sign-out").click()
    location = logout.value.headers.get("location", "")
    assert logout.value.status == 302, f"sign-out answered {logout.value.status}"
    assert location.startswith(f"{partner.url}/session/end"), f"not partner's end-session endpoint: {location}"
    assert parse_qs(urlsplit(location).query).get("post_logout_redirect_uri") == [f"{app}/login?reason=signed_out"]
    expect(page).to_have_url(re.compile(re.escape(partner.url) + r"/session/end"))
    assert urlsplit(page.url).netloc == urlsplit(partner.url).netloc != urlsplit(corp.url).netloc
    assert gatehouse_cookie(page, app) is None

    page.get_by_role("button", name="Yes, sign me out").click()
    # Authlib adds a `state` to the end-session request, which the provider hands back.
    expect(page).to_have_url(re.compile(re.escape(f"{app}/login?reason=signed_out") + r"(&state=[\w-]+)?$"))
    expect(page.get_by_test_id("login-notice")).to_have_text("You have been signed out.")
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)
    assert partner.sessions(user_login) == []
    # The provider also told the app over the back channel; the session was already gone, and it said so calmly.
    deliveries = wait_until(
        lambda: partner.account(user_login)["backchannel_logouts"],
        timeout=15,
        what="partner to deliver the logout token",
    )
    assert [delivery["ok"] for delivery in deliveries] == [True], deliveries

    assert_sent_to_choose_a_provider(page, app)
    # Partner's session ended too: its button asks for a login again.
    page.get_by_test_id("provider-partner").click()
    provider_login_form(page, partner.url)


# ---- account linking (/account/identities) -------------------------------------------------
# Linking takes one browser profile to both providers (corp's sign-in, then partner's login form): their
# cookies share 127.0.0.1, and partner, not knowing corp's `_session` cookie, starts a session of its own.

LINK_TAKEN = (
    "That sign-in already belongs to another account here, so it was not linked. You are still signed in as before."
)


def partner_login_of(user_login: str) -> str:
    """The login a test uses at partner: another name than its corp login, so a link is never a same-name match."""
    return f"{user_login}-partner"


def assert_identities(page: Page, app: str, providers: list[str]) -> None:
    """/account/identities lists exactly these providers' sign-ins, in order, and offers to link each other one."""
    page.goto(f"{app}/account/identities")
    rows = page.get_by_test_id("identity-row")
    expect(rows).to_have_count(len(providers))
    for index, name in enumerate(providers):
        expect(rows.nth(index)).to_have_attribute("data-provider", name)
        expect(rows.nth(index).get_by_test_id("identity-provider")).to_contain_text(LABELS[name])
    for name in LABELS:
        expect(page.get_by_test_id(f"link-{name}")).to_have_count(0 if name in providers else 1)


def link_partner(page: Page, deployment: TwoProviders, login: str) -> None:
    """On /account/identities of a recent corp sign-in: press "Link Partner ID" and log in at partner as `login`.

    The sign-in is recent, so the button goes straight to partner (no re-authentication at corp first), asking
    for its login form (prompt=login); back on /account/identities, the link is confirmed.
    """
    app, partner = deployment.app, deployment.partner
    page.goto(f"{app}/account/identities")
    with page.expect_response(f"{app}/account/identities/link/partner") as pressed:
        page.get_by_test_id("link-partner").click()
    location = pressed.value.headers.get("location", "")
    assert pressed.value.status == 303, f"the link button answered {pressed.value.status}"
    assert location.startswith(f"{partner.url}/"), f"not sent to partner: {location}"
    assert parse_qs(urlsplit(location).query).get("prompt") == ["login"], location
    complete_provider_sign_in(page, partner.url, login)


def accounts_of(deployment: TwoProviders, *subjects: str) -> list[dict[str, object]]:
    """`users list --json`'s users having an identity of one of `subjects` (each with its "identities")."""
    listed = deployment.stack.flask("users", "list", "--json").stdout.splitlines()
    users = [json.loads(line) for line in listed if line.strip()]
    return [user for user in users if any(each["subject"] in subjects for each in user["identities"])]


def wait_for_accounts(deployment: TwoProviders, expected: list[dict[str, object]], *subjects: str) -> None:
    """Wait until the database's users of `subjects` are exactly `expected` (issuer, subject, display name,
    identities; in any order), after every queued job so far has run."""
    deployment.stack.wait_for_jobs()
    keys = ("issuer", "subject", "display_name", "identities")
    expected = sorted(expected, key=str)

    def persisted() -> list[dict[str, object]]:
        return sorted(({key: user[key] for key in keys} for user in accounts_of(deployment, *subjects)), key=str)

    seen: list[list[dict[str, object]]] = [[]]

    def matches() -> bool:
        seen[0] = persisted()
        return seen[0] == expected

    try:
        wait_until(matches, timeout=30, interval=0.5, what="the accounts in the database")
    except AssertionError as error:
        raise AssertionError(f"{error}\nexpected {expected}\ngot {seen[0]}") from None


def identity(deployment: TwoProviders, name: str, subject: str) -> dict[str, str]:
    return {"provider": name, "issuer": deployment.providers[name].url, "subject": subject}


def test_a_linked_partner_sign_in_opens_the_corp_account(
    open_context: Callable[[], BrowserContext], two_providers: TwoProviders, user_login: str
) -> None:
    """corp's account links partner (another login name there); partner's sign-in then opens that same account."""
    app = two_providers.app
    partner_login = partner_login_of(user_login)
    corp_page = signed_in_page(open_context, two_providers, "corp", user_login, "/account/identities")
    assert_identities(corp_page, app, ["corp"])
    expect(corp_page.get_by_test_id("identity-row")).to_contain_text("created this account")
    save_display_name(corp_page, app, "Linked Ada")

    link_partner(corp_page, two_providers, partner_login)
    expect(corp_page).to_have_url(f"{app}/account/identities")
    expect(corp_page.get_by_role("status")).to_have_text("Your sign-in with Partner ID is now linked to this account.")
    assert_identities(corp_page, app, ["corp", "partner"])
    expect(corp_page.get_by_test_id("unlink-partner")).to_have_count(1)
    expect(corp_page.get_by_test_id("unlink-corp")).to_have_count(0)  # the sign-in this session used
    assert signed_in_as(corp_page) == "Linked Ada"  # still the same session

    # Another browser signs in with partner as that login: corp's account, with its profile.
    partner_page = signed_in_page(open_context, two_providers, "partner", partner_login, "/profile")
    expect(partner_page.locator("#display_name")).to_have_value("Linked Ada")
    assert signed_in_as(partner_page) == "Linked Ada"
    # The account's devices: this browser's session with partner's label, corp's browser with corp's.
    partner_page.goto(f"{app}/sessions")
    expect(partner_page.get_by_test_id("session-row")).to_have_count(2)
    current = partner_page.locator("[data-testid=session-row][data-current=true]")
    expect(current.get_by_test_id("session-provider")).to_have_text(LABELS["partner"])
    other = partner_page.locator("[data-testid=session-row]:not([data-current=true])")
    expect(other.get_by_test_id("session-provider")).to_have_text(LABELS["corp"])
    # Its identities page: both, partner's the one this session used, so only corp's can be unlinked from here.
    assert_identities(partner_page, app, ["corp", "partner"])
    expect(partner_page.get_by_test_id("identity-row").nth(1)).to_contain_text("(this session)")
    expect(partner_page.locator("[data-testid^=unlink-]")).to_have_count(1)
    expect(partner_page.get_by_test_id("unlink-corp")).to_have_count(1)

    # One users row, corp's, listing both identities; no row of partner's login of its own.
    wait_for_accounts(
        two_providers,
        [
            {
                "issuer": two_providers.corp.url,
                "subject": user_login,
                "display_name": "Linked Ada",
                "identities": [
                    identity(two_providers, "corp", user_login),
                    identity(two_providers, "partner", partner_login),
                ],
            }
        ],
        user_login,
        partner_login,
    )
    assert two_providers.stack.user(partner_login) is None


def test_a_partner_sign_in_with_an_account_of_its_own_is_not_linked(
    open_context: Callable[[], BrowserContext], two_providers: TwoProviders, user_login: str
) -> None:
    """A partner login that signed in on its own has its account: linking it into a corp account is refused."""
    app = two_providers.app
    partner_login = partner_login_of(user_login)
    own_page = signed_in_page(open_context, two_providers, "partner", partner_login, "/profile")
    save_display_name(own_page, app, "Own Partner Ada")

    corp_page = signed_in_page(open_context, two_providers, "corp", user_login, "/account/identities")
    link_partner(corp_page, two_providers, partner_login)
    expect(corp_page).to_have_url(f"{app}/auth/failed?reason=link_taken")
    expect(corp_page.get_by_test_id("login-error")).to_have_text(LINK_TAKEN)

    # Nothing was linked: corp's account has its own sign-in only, and the session is the one it was.
    assert_identities(corp_page, app, ["corp"])
    assert signed_in_as(corp_page) == provider_name(user_login)
    assert_sessions_page(corp_page, app, LABELS["corp"])
    # And the partner login's account is still its own, its one session untouched.
    assert_signed_in(own_page, app, partner_login, "Own Partner Ada")
    assert_sessions_page(own_page, app, LABELS["partner"])
    assert_identities(own_page, app, ["partner"])
    # A new sign-in with it still opens its own account.
    again = signed_in_page(open_context, two_providers, "partner", partner_login, "/profile")
    expect(again.locator("#display_name")).to_have_value("Own Partner Ada")

    wait_for_accounts(
        two_providers,
        [
            {
                "issuer": two_providers.partner.url,
                "subject": partner_login,
                "display_name": "Own Partner Ada",
                "identities": [identity(two_providers, "partner", partner_login)],
            },
            {
                "issuer": two_providers.corp.url,
                "subject": user_login,
                "display_name": provider_name(user_login),
                "identities": [identity(two_providers, "corp", user_login)],
            },
        ],
        user_login,
        partner_login,
    )


def test_unlinking_partner_ends_its_sessions_and_its_next_sign_in_is_a_new_account(
    open_context: Callable[[], BrowserContext], two_providers: TwoProviders, user_login: str
) -> None:
    """Unlinked, partner's session of the account ends; partner's next sign-in makes an account of its own."""
    app = two_providers.app
    partner_login = partner_login_of(user_login)
    corp_page = signed_in_page(open_context, two_providers, "corp", user_login, "/profile")
    save_display_name(corp_page, app, "Unlinked Ada")
    link_partner(corp_page, two_providers, partner_login)
    expect(corp_page).to_have_url(f"{app}/account/identities")
    partner_page = signed_in_page(open_context, two_providers, "partner", partner_login, "/profile")
    expect(partner_page.locator("#display_name")).to_have_value("Unlinked Ada")  # linked, to begin with

    assert_identities(corp_page, app, ["corp", "partner"])
    corp_page.get_by_test_id("unlink-partner").click()
    expect(corp_page).to_have_url(f"{app}/account/identities")
    expect(corp_page.get_by_role("status")).to_have_text("Unlinked. 1 session(s) signed in with it ended.")
    assert_identities(corp_page, app, ["corp"])

    # The browser signed in with partner is signed out; corp's goes on.
    assert_sent_to_choose_a_provider(partner_page, app)
    assert_signed_in(corp_page, app, user_login, "Unlinked Ada")
    assert_sessions_page(corp_page, app, LABELS["corp"])

    # Partner's next sign-in as that login: an account of its own, with the name partner gives it.
    again = signed_in_page(open_context, two_providers, "partner", partner_login, "/profile")
    expect(again.locator("#display_name")).to_have_value(provider_name(partner_login))
    assert signed_in_as(again) == provider_name(partner_login)
    assert_sessions_page(again, app, LABELS["partner"])
    assert_identities(again, app, ["partner"])
    expect(again.get_by_test_id("identity-row")).to_contain_text("created this account")

    wait_for_accounts(
        two_providers,
        [
            {
                "issuer": two_providers.corp.url,
                "subject": user_login,
                "display_name": "Unlinked Ada",
                "identities": [identity(two_providers, "corp", user_login)],
            },
            {
                "issuer": two_providers.partner.url,
                "subject": partner_login,
                "display_name": provider_name(partner_login),
                "identities": [identity(two_providers, "partner", partner_login)],
            },
        ],
        user_login,
        partner_login,
    )


MOVED_ACCOUNT_ISSUER = "urn:gatehouse:account"  # users/tags.py


def http_of(page: Page, app: str) -> requests.Session:
    """A plain HTTP client holding the browser's Gatehouse cookies: it is that browser's session."""
    http = requests.Session()
    for cookie in page.context.cookies(app):
        http.cookies.set(cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"])
    return http


def page_csrf_token(page: Page, app: str, path: str) -> str:
    page.goto(f"{app}{path}")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token, f"no CSRF token on {path}"
    return token


def press_unlink(page: Page, app: str, name: str) -> Callable[[], requests.Response]:
    """The unlink button of provider `name` on /account/identities, as one plain request to send later."""
    http, token = http_of(page, app), page_csrf_token(page, app, "/account/identities")
    url = f"{app}/account/identities/{name}/unlink"
    return lambda: http.post(url, data={"csrf_token": token}, allow_redirects=False, timeout=TIMEOUT)


def moved_accounts(deployment: TwoProviders, subject: str) -> list[dict[str, object]]:
    """The accounts listing partner's `subject` that moved to a new name, once every queued job has run."""
    deployment.stack.wait_for_jobs()
    return [user for user in accounts_of(deployment, subject) if user["issuer"] == MOVED_ACCOUNT_ISSUER]


def linked_browsers(
    open_context: Callable[[], BrowserContext], deployment: TwoProviders, user_login: str, display_name: str
) -> tuple[Page, Page]:
    """corp's account with `display_name` saved and partner linked; one browser signed in with each."""
    corp_page = signed_in_page(open_context, deployment, "corp", user_login, "/profile")
    save_display_name(corp_page, deployment.app, display_name)
    link_partner(corp_page, deployment, partner_login_of(user_login))
    expect(corp_page).to_have_url(f"{deployment.app}/account/identities")
    partner_page = signed_in_page(open_context, deployment, "partner", partner_login_of(user_login), "/profile")
    expect(partner_page.locator("#display_name")).to_have_value(display_name)
    return corp_page, partner_page


def test_unlinking_corp_the_sign_in_that_made_the_account_keeps_the_account_with_partner(
    open_context: Callable[[], BrowserContext], two_providers: TwoProviders, user_login: str
) -> None:
    """The account moves to a new name: partner's next sign-in opens it, profile kept; corp's starts a new account."""
    app = two_providers.app
    partner_login = partner_login_of(user_login)
    corp_page, partner_page = linked_browsers(open_context, two_providers, user_login, "Moved Ada")

    partner_page.goto(f"{app}/account/identities")
    expect(partner_page.get_by_test_id("identity-row").first).to_contain_text("every session of it ends")
    partner_page.get_by_test_id("unlink-corp").click()
    expect(partner_page).to_have_url(f"{app}/account/moved")
    expect(partner_page.get_by_test_id("account-moved")).to_contain_text("You are signed out everywhere")
    assert_sent_to_choose_a_provider(corp_page, app)
    assert_sent_to_choose_a_provider(partner_page, app)

    again = signed_in_page(open_context, two_providers, "partner", partner_login, "/profile")
    expect(again.locator("#display_name")).to_have_value("Moved Ada")
    assert_identities(again, app, ["partner"])
    expect(again.get_by_test_id("identity-row")).not_to_contain_text("created this account")
    expect(again.locator("[data-testid^=unlink-]")).to_have_count(0)  # its last sign-in stays
    assert_sessions_page(again, app, LABELS["partner"])

    fresh = signed_in_page(open_context, two_providers, "corp", user_login, "/profile")
    expect(fresh.locator("#display_name")).to_have_value(provider_name(user_login))
    assert_identities(fresh, app, ["corp"])

    (moved,) = moved_accounts(two_providers, partner_login)
    assert moved["display_name"] == "Moved Ada"
    assert moved["identities"] == [identity(two_providers, "partner", partner_login)]
    wait_for_accounts(
        two_providers,
        [
            {
                "issuer": two_providers.corp.url,
                "subject": user_login,
                "display_name": provider_name(user_login),
                "identities": [identity(two_providers, "corp", user_login)],
            }
        ],
        user_login,
    )


def test_unlinking_each_sign_in_from_the_other_at_the_same_instant_leaves_one(
    open_context: Callable[[], BrowserContext], two_providers: TwoProviders, user_login: str
) -> None:
    """corp's browser unlinks partner while partner's unlinks corp: one wins, the account keeps a sign-in."""
    app = two_providers.app
    partner_login = partner_login_of(user_login)
    corp_page, partner_page = linked_browsers(open_context, two_providers, user_login, "Raced Ada")

    unlink_partner, unlink_corp = press_unlink(corp_page, app, "partner"), press_unlink(partner_page, app, "corp")
    by_corp, by_partner = at_once(unlink_partner, unlink_corp)

    partner_won = by_partner.status_code == 303 and by_partner.headers["Location"] == "/account/moved"
    corp_won = by_corp.status_code == 303 and by_corp.headers["Location"] == "/account/identities"
    assert partner_won != corp_won, f"corp's unlink {by_corp.status_code}, partner's {by_partner.status_code}"
    if corp_won:
        assert by_partner.status_code in (400, 404), by_partner.text
        assert moved_accounts(two_providers, partner_login) == []
        login, kept = user_login, identity(two_providers, "corp", user_login)
        assert_identities(corp_page, app, ["corp"])
    else:
        assert by_corp.status_code in (400, 404), by_corp.text
        (moved,) = moved_accounts(two_providers, partner_login)
        assert moved["identities"] == [identity(two_providers, "partner", partner_login)]
        login, kept = partner_login, identity(two_providers, "partner", partner_login)
    # The sign-in left opens the account, its profile kept.
    survivor = signed_in_page(open_context, two_providers, kept["provider"], login, "/profile")
    expect(survivor.locator("#display_name")).to_have_value("Raced Ada")


def test_a_profile_save_at_the_same_instant_as_the_move_is_kept_or_refused_never_lost(
    open_context: Callable[[], BrowserContext], two_providers: TwoProviders, user_login: str
) -> None:
    """corp's browser saves the profile while partner's unlinks corp: told "saved" means the moved account has it."""
    app = two_providers.app
    partner_login = partner_login_of(user_login)
    corp_page, partner_page = linked_browsers(open_context, two_providers, user_login, "Before Ada")
    fields = {
        "csrf_token": page_csrf_token(corp_page, app, "/profile"),
        "display_name": "Saved Ada",
        "locale": "en",
        "timezone": "UTC",
        "version": corp_page.locator("input[name=version]").get_attribute("value") or "",
    }
    http = http_of(corp_page, app)

    def save() -> requests.Response:
        return http.post(f"{app}/profile", data=fields, allow_redirects=False, timeout=TIMEOUT)

    saved, unlinked = at_once(save, press_unlink(partner_page, app, "corp"))

    assert unlinked.status_code == 303 and unlinked.headers["Location"] == "/account/moved", unlinked.text
    told_saved = saved.status_code == 302 and saved.headers["Location"] == "/profile"
    expected = "Saved Ada" if told_saved else "Before Ada"
    (moved,) = moved_accounts(two_providers, partner_login)
    assert moved["display_name"] == expected, f"the save answered {saved.status_code} {saved.headers.get('Location')}"
    again = signed_in_page(open_context, two_providers, "partner", partner_login, "/profile")
    expect(again.locator("#display_name")).to_have_value(expected)
