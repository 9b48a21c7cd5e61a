"""Back-Channel Logout 1.0: POST /auth/backchannel-logout ends exactly the sessions a valid logout token names.

Every hostile case posts over real HTTP, like a provider would (no cookie, no
CSRF token), and checks the answer (status, JSON body, `Cache-Control: no-store`,
no cookie) and exactly which sessions Redis still holds afterwards. The logout
tokens are minted by the hostile provider (`provider.logout_token`), so the
check after every test also looks for them in logs and pages.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from sessions import keys
from signin import backchannel
from tests.security.browser import Browser
from tests.security.harness import Gatehouse, LogCapture
from tests.security.hostile_provider import BACKCHANNEL_LOGOUT_EVENT, CLIENT_ID, DROP, HostileProvider, Recorder
from tests.security.jose_forge import RsaKey, compact, corrupt_signature, hmac_signer, no_signature
from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.session_records import rewrite_session, session_ids

pytestmark = pytest.mark.integration

LOGOUT = "/auth/backchannel-logout"
MAX_TOKEN_LENGTH = 16 * 1024


@dataclass(frozen=True)
class SignedIn:
    """One browser's signed-in session: its session id and the provider session (`sid`) it came from."""

    browser: Browser
    session_id: str
    provider_sid: str


def sign_in(gatehouse: Gatehouse, provider: HostileProvider, sub: str) -> SignedIn:
    """Sign `sub` in from a new browser; the session keeps the ID token's `sid`."""
    browser = gatehouse.browser()
    browser.sign_in(sub)
    session_id = browser.session_id
    assert session_id
    record = gatehouse.session_record(session_id)
    assert record is not None and record["user"]["subject"] == sub
    assert record["provider_sid"] == provider.sids[sub][-1], record["provider_sid"]
    return SignedIn(browser, session_id, record["provider_sid"])


def post_logout(gatehouse: Gatehouse, form: dict[str, str], **kwargs: Any) -> requests.Response:
    """POST the form as the provider does: server to server, no cookie, no CSRF token."""
    return gatehouse.browser().post(LOGOUT, data=form, **kwargs)


def post_token(gatehouse: Gatehouse, token: str, **kwargs: Any) -> requests.Response:
    """POST one logout token."""
    return post_logout(gatehouse, {"logout_token": token}, **kwargs)


def assert_private(response: requests.Response) -> None:
    """Never cached, and no session (nor cookie) is made for the provider's request."""
    assert response.headers.get("Cache-Control") == "no-store", response.headers
    assert "Set-Cookie" not in response.headers, response.headers


def assert_done(response: requests.Response) -> None:
    """The logout was accepted: 200 with an empty JSON object."""
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    assert response.json() == {}
    assert_private(response)


def assert_refused(response: requests.Response, reason: str | None = None) -> None:
    """The logout was refused: 400 with exactly `error: invalid_request` and a description (containing `reason`)."""
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error"] == "invalid_request", body
    assert isinstance(body["error_description"], str) and body["error_description"], body
    if reason is not None:
        assert reason in body["error_description"], body
    assert_private(response)


def wait_for_the_next_second() -> None:
    """Until the clock's whole second moves on: an ID token issued then postdates a logout token issued before.

    A logout of a provider session is kept against ID tokens issued no later than it (whole seconds).
    """
    now = int(time.time())
    wait_until(lambda: int(time.time()) > now, timeout=3, interval=0.02)


def live_sessions(gatehouse: Gatehouse) -> set[str]:
    """Every session id Redis still holds (signed-in and anonymous)."""
    return set(session_ids(gatehouse.redis))


# ---- 1. a `sid` ends exactly that provider session's sessions ----------------------------------


@pytest.mark.parametrize("names", ["sid", "sid and sub"])
def test_a_sid_ends_exactly_the_sessions_that_provider_session_started(
    gatehouse: Gatehouse, provider: HostileProvider, names: str
) -> None:
    """Two app sessions from one provider session end; alice's other session and bob's survive."""
    provider.behaviour.provider_sid = "provider-session-of-alice-laptop"
    first, second = sign_in(gatehouse, provider, "alice"), sign_in(gatehouse, provider, "alice")
    provider.behaviour.provider_sid = None  # every later login is its own provider session
    phone, bob = sign_in(gatehouse, provider, "alice"), sign_in(gatehouse, provider, "bob")
    assert first.provider_sid == second.provider_sid != phone.provider_sid != bob.provider_sid

    claims = {"sid": first.provider_sid} | ({"sub": "alice"} if names == "sid and sub" else {})
    assert_done(post_token(gatehouse, provider.logout_token(claims)))

    assert live_sessions(gatehouse) == {phone.session_id, bob.session_id}
    assert first.browser.signed_in_as() is None and second.browser.signed_in_as() is None
    assert phone.browser.signed_in_as() == "Alice"
    assert bob.browser.signed_in_as() == "Bob"


def test_a_sid_paired_with_another_users_sub_ends_nothing(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """alice's provider session with bob's `sub`: neither alice's session nor bob's ends (200: nothing to do)."""
    alice, bob = sign_in(gatehouse, provider, "alice"), sign_in(gatehouse, provider, "bob")
    assert_done(post_token(gatehouse, provider.logout_token({"sid": alice.provider_sid, "sub": "bob"})))
    assert live_sessions(gatehouse) == {alice.session_id, bob.session_id}


def test_an_unknown_sid_ends_nothing(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """A provider session the app never saw: 200, every session survives."""
    alice = sign_in(gatehouse, provider, "alice")
    assert_done(post_token(gatehouse, provider.logout_token({"sid": "a-provider-session-nobody-used"})))
    assert live_sessions(gatehouse) == {alice.session_id}


def test_a_provider_session_id_reused_for_two_users_logs_both_out(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """Third pass, item 5: a provider that reuses `sid`s signs alice and then bob in with the same one; a
    sid-only logout ends both (the lookup kept only the last user before), and carol's session survives."""
    provider.behaviour.provider_sid = "reused-provider-session"
    alice, bob = sign_in(gatehouse, provider, "alice"), sign_in(gatehouse, provider, "bob")
    provider.behaviour.provider_sid = None
    carol = sign_in(gatehouse, provider, "carol")

    assert_done(post_token(gatehouse, provider.logout_token({"sid": "reused-provider-session"})))

    assert live_sessions(gatehouse) == {carol.session_id}
    assert alice.browser.signed_in_as() is None, "the first user of a reused sid survived its logout"
    assert bob.browser.signed_in_as() is None


def test_a_reused_sid_with_one_users_sub_logs_out_only_that_user(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """The same reused `sid`, with alice's `sub`: alice's session ends, bob's survives, and so does his next sign-in."""
    provider.behaviour.provider_sid = "reused-provider-session"
    sign_in(gatehouse, provider, "alice")
    bob = sign_in(gatehouse, provider, "bob")

    assert_done(post_token(gatehouse, provider.logout_token({"sid": "reused-provider-session", "sub": "alice"})))

    assert live_sessions(gatehouse) == {bob.session_id}
    assert sign_in(gatehouse, provider, "bob").browser.signed_in_as() == "Bob"


@pytest.mark.parametrize("names", ["sid", "sid and sub"])
def test_a_logout_of_the_provider_session_while_its_sign_in_completes_is_not_lost(
    gatehouse: Gatehouse, provider: HostileProvider, names: str
) -> None:
    """Third pass, item 5: the provider logs its session out after issuing the ID token, while the callback is
    still at UserInfo (before the session or its `sid` lookup is stored): the sign-in ends signed out, with the
    reason shown, and no session is left. Before, the session was stored afterwards and lived on."""
    provider.behaviour.provider_sid = "provider-session-in-flight"
    at_userinfo, release = threading.Event(), threading.Event()

    def hold_at_userinfo() -> None:
        at_userinfo.set()
        assert release.wait(10)

    provider.behaviour.userinfo_gate = hold_at_userinfo
    browser = gatehouse.browser()
    location = browser.authorize(browser.start_login(), "alice")
    completing: list[requests.Response] = []
    callback = threading.Thread(target=lambda: completing.append(browser.callback(location)))
    callback.start()
    try:
        assert at_userinfo.wait(10), "the callback never asked for UserInfo"
        claims = {"sid": "provider-session-in-flight"} | ({"sub": "alice"} if names == "sid and sub" else {})
        assert_done(post_token(gatehouse, provider.logout_token(claims)))
    finally:
        release.set()
        callback.join(20)
    provider.behaviour.userinfo_gate = None

    assert completing and completing[0].headers["Location"] == "/auth/failed?reason=provider_signed_out"
    assert live_sessions(gatehouse) == set()
    assert browser.signed_in_as() is None
    failed = browser.get("/auth/failed?reason=provider_signed_out")
    assert "signed you out while you were signing in here" in failed.text


def test_a_provider_session_id_reused_after_its_logout_signs_in_again(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """A logout is kept against ID tokens issued no later than it; an ID token from a later second (the provider
    reused the `sid` for a new session) signs in, and a second logout of that `sid` ends it too."""
    provider.behaviour.provider_sid = "reused-provider-session"
    first = sign_in(gatehouse, provider, "alice")
    assert_done(post_token(gatehouse, provider.logout_token({"sid": "reused-provider-session"})))
    assert first.browser.signed_in_as() is None
    wait_for_the_next_second()

    again = sign_in(gatehouse, provider, "alice")
    assert again.browser.signed_in_as() == "Alice"
    assert_done(post_token(gatehouse, provider.logout_token({"sid": "reused-provider-session"})))
    assert again.browser.signed_in_as() is None


# ---- 2. a `sub` alone ends that user's sessions started before `iat` ------------------------------


def test_a_sub_alone_ends_that_users_sessions_started_before_iat(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """alice's two older sessions end; her sign-in after `iat` and bob's older session survive."""
    older = [sign_in(gatehouse, provider, "alice"), sign_in(gatehouse, provider, "alice")]
    bob = sign_in(gatehouse, provider, "bob")
    for signed_in in [*older, bob]:
        rewrite_session(gatehouse.redis, signed_in.session_id, created_at=time.time() - 60)
    token = provider.logout_token({"sub": "alice", "iat": int(time.time()) - 10})
    newer = sign_in(gatehouse, provider, "alice")  # after the token was issued

    assert_done(post_token(gatehouse, token))

    assert live_sessions(gatehouse) == {newer.session_id, bob.session_id}
    assert all(signed_in.browser.signed_in_as() is None for signed_in in older)
    assert newer.browser.signed_in_as() == "Alice"
    assert bob.browser.signed_in_as() == "Bob"
    # "Not valid before" does not lock alice out: she can sign in again.
    again = sign_in(gatehouse, provider, "alice")
    assert again.browser.signed_in_as() == "Alice"


def test_a_sub_alone_issued_ahead_of_our_clock_does_not_sign_out_the_next_sign_in(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """A provider clock 55 s fast (inside the leeway): "not valid before" is the receiving time, not its `iat`."""
    older = sign_in(gatehouse, provider, "alice")
    rewrite_session(gatehouse.redis, older.session_id, created_at=time.time() - 60)
    token = provider.logout_token({"sub": "alice", "iat": int(time.time()) + 55, "exp": int(time.time()) + 175})

    assert_done(post_token(gatehouse, token))

    assert older.browser.signed_in_as() is None
    again = sign_in(gatehouse, provider, "alice")
    assert again.browser.signed_in_as() == "Alice", "the sign-in after the logout was signed out by a future iat"


def test_a_re_authentication_s_new_provider_session_can_log_the_session_out(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """Third pass, item 4: the provider starts a new session (a new `sid`) at the `max_age` round trip; a
    logout of that new provider session ends the Gatehouse session (it kept the old `sid` before)."""
    alice = sign_in(gatehouse, provider, "alice")
    user, member = keys.parse_sid(alice.session_id) or (None, "")
    gatehouse.redis.hset(keys.session_key(user, member), "at", int(time.time()) - 3600)  # an old sign-in
    asked = alice.browser.post("/account/delete", data={"csrf_token": alice.browser.csrf_token("/account/delete")})
    assert asked.status_code == 303  # to the provider, for a fresh authentication
    back = alice.browser.callback(alice.browser.authorize(asked.headers["Location"], "alice"))
    assert back.status_code == 303 and back.headers["Location"].endswith("/account/delete"), back.headers
    new_sid = provider.sids["alice"][-1]
    assert new_sid != alice.provider_sid

    assert_done(post_token(gatehouse, provider.logout_token({"sid": new_sid})))

    assert alice.browser.signed_in_as() is None, "the provider's new session was logged out, but ours lived on"
    assert alice.session_id not in live_sessions(gatehouse)


# ---- 3. refused tokens end nothing ------------------------------------------------------------------

Make = Callable[[HostileProvider, dict[str, Any]], str]


def with_claims(**changes: Any) -> Make:
    """A logout token naming alice (`names`), with these claims changed."""
    return lambda provider, names: provider.logout_token({**names, **changes})


def with_header(**changes: Any) -> Make:
    """A logout token naming alice, with these header fields changed."""
    return lambda provider, names: provider.logout_token(names, changes)


def forged(forge: Callable[[HostileProvider, dict[str, Any], dict[str, Any]], str]) -> Make:
    """A logout token naming alice, built by `forge(provider, header, claims)` instead of honest signing."""
    return lambda provider, names: provider.logout_token(
        names, forge=lambda header, claims: forge(provider, header, claims)
    )


def _claims_changed_after_signing(provider: HostileProvider, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An honest signature over a token naming nobody, with alice's `sid`/`sub` put in afterwards."""
    head, _payload, signature = provider.sign(header, {**claims, "sid": "nobody", "sub": "nobody"}).split(".")
    tampered = compact(header, claims, no_signature).split(".")[1]
    return f"{head}.{tampered}.{signature}"


def _hs256_with_public_key(encoding: str) -> Make:
    def forge(provider: HostileProvider, header: dict[str, Any], claims: dict[str, Any]) -> str:
        key = provider.signing_key
        secret = {
            "pem": key.public_pem(),
            "jwks json": json.dumps({"keys": [key.public_jwk()]}).encode(),
            "modulus": key.public_jwk()["n"].encode(),
        }[encoding]
        return compact({**header, "alg": "HS256"}, claims, hmac_signer(secret))

    return forged(forge)


@functools.cache
def small_attacker_key() -> RsaKey:
    """A 1024-bit RSA key: its JWK fits in a header joserfc will parse (at most 512 bytes), a 2048-bit one does not."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the attacker's key)
    return RsaKey(kid="attacker", private=weak)


def _key_in_jwk_header(*, kid: bool) -> Make:
    """Signed with the attacker's key, which the token carries in `jwk` (small enough to reach key selection)."""

    def forge(_provider: HostileProvider, header: dict[str, Any], claims: dict[str, Any]) -> str:
        attacker = small_attacker_key()
        own = {"alg": "RS256", "typ": header["typ"], "jwk": attacker.public_jwk()}
        if kid:
            own["kid"] = attacker.kid
        token = compact(own, claims, attacker.signer())
        assert len(token.split(".")[0]) <= 512  # parsed, so refused for its key, not for its size
        return token

    return forged(forge)


def _alg_none(alg: str) -> Make:
    return forged(lambda _provider, header, claims: compact({**header, "alg": alg}, claims, no_signature))


def _longer_than_the_limit(provider: HostileProvider, names: dict[str, Any]) -> str:
    token = provider.logout_token({**names, "padding": "x" * MAX_TOKEN_LENGTH})
    assert len(token) > MAX_TOKEN_LENGTH
    return token


def at(changes: Callable[[int], dict[str, Any]]) -> Make:
    """A logout token naming alice, with time claims computed from the time it is minted."""
    return lambda provider, names: provider.logout_token({**names, **changes(int(time.time()))})


EVENT_OTHER = "http://schemas.openid.net/event/other"
INF, NAN = float("inf"), float("nan")

# Each token must be refused for the reason given (a fragment of `error_description`).
# Unless a case is about naming, every token names alice's session by `sid` and `sub`,
# so accepting it would end that session.
REFUSED: dict[str, tuple[Make, str]] = {
    "signature corrupted": (lambda p, names: corrupt_signature(p.logout_token(names)), "signature does not verify"),
    "claims changed after signing": (forged(_claims_changed_after_signing), "signature does not verify"),
    **{f"alg {alg}": (_alg_none(alg), "is not accepted") for alg in ("none", "None", "NONE", "nOnE")},
    **{
        f"HS256 signed with the public key as {encoding}": (_hs256_with_public_key(encoding), "is not accepted")
        for encoding in ("pem", "jwks json", "modulus")
    },
    "key from the jwk header": (_key_in_jwk_header(kid=True), "no provider key matches"),
    "key from the jwk header, no kid": (_key_in_jwk_header(kid=False), "signature does not verify"),
    "iss wrong": (with_claims(iss="https://evil.example"), "issuer does not match"),
    "iss missing": (with_claims(iss=DROP), "issuer does not match"),
    "aud wrong": (with_claims(aud="someone-else"), "audience does not match"),
    "aud missing": (with_claims(aud=DROP), "audience does not match"),
    "aud list with an extra audience": (with_claims(aud=[CLIENT_ID, "someone-else"]), "audience does not match"),
    "iat missing": (with_claims(iat=DROP), "issued-at"),
    "iat not a number": (with_claims(iat="now"), "issued-at"),
    "iat in the future": (at(lambda now: {"iat": now + 3600, "exp": now + 3700}), "issued-at"),
    "iat older than 10 minutes": (at(lambda now: {"iat": now - 11 * 60}), "issued-at"),
    "iat NaN": (with_claims(iat=NAN), "issued-at"),
    "iat NaN, sub only": (lambda p, names: p.logout_token({"sub": "alice", "iat": NAN}), "issued-at"),
    "iat Infinity": (with_claims(iat=INF), "issued-at"),
    "iat -Infinity": (with_claims(iat=-INF), "issued-at"),
    "exp in the past": (at(lambda now: {"iat": now - 300, "exp": now - 200}), "expired"),
    "exp not a number": (with_claims(exp="later"), "expired"),
    "exp -Infinity": (with_claims(exp=-INF), "expired"),
    "exp NaN": (with_claims(exp=NAN), "expired"),
    "exp Infinity": (with_claims(exp=INF), "expired"),
    "nbf in the future": (at(lambda now: {"nbf": now + 3600}), "not valid yet"),
    "nbf NaN": (with_claims(nbf=NAN), "not valid yet"),
    "events missing": (with_claims(events=DROP), "events"),
    "events not an object": (with_claims(events=[BACKCHANNEL_LOGOUT_EVENT]), "events"),
    "events a string": (with_claims(events=BACKCHANNEL_LOGOUT_EVENT), "events"),
    "events lacking the back-channel event": (with_claims(events={EVENT_OTHER: {}}), "events"),
    **{
        f"event value {label}": (with_claims(events={BACKCHANNEL_LOGOUT_EVENT: value}), "events")
        for label, value in (("a string", "logout"), ("a list", []), ("true", True), ("null", None))
    },
    "neither sid nor sub": (with_claims(sid=DROP, sub=DROP), "neither sub nor sid"),
    "sid empty, no sub": (with_claims(sid="", sub=DROP), "sid"),
    "sub not a string": (with_claims(sid=DROP, sub=42), "sub"),
    "nonce present": (with_claims(nonce="n-0S6_WzA2Mj"), "nonce"),
    **{
        f"typ {typ}": (with_header(typ=typ), "typ is not logout+jwt")
        for typ in ("JWT", "at+jwt", "secevent+jwt", "logout+jwt+extra", "")
    },
    "jti missing": (with_claims(jti=DROP), "jti"),
    "jti empty": (with_claims(jti=""), "jti"),
    "jti not a string": (with_claims(jti=42), "jti"),
    "longer than 16 KiB": (_longer_than_the_limit, "too long"),
}


@pytest.fixture
def alice_and_bob(gatehouse: Gatehouse, provider: HostileProvider) -> tuple[SignedIn, SignedIn]:
    """alice and bob, each signed in once."""
    return sign_in(gatehouse, provider, "alice"), sign_in(gatehouse, provider, "bob")


def assert_nothing_ended(gatehouse: Gatehouse, *sessions: SignedIn) -> None:
    """Exactly these sessions are still there, and still signed in."""
    assert live_sessions(gatehouse) == {signed_in.session_id for signed_in in sessions}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_logout_token_is_refused_and_ends_nothing(
    gatehouse: Gatehouse,
    provider: HostileProvider,
    recorder: Recorder,
    captured_logs: LogCapture,
    alice_and_bob: tuple[SignedIn, SignedIn],
    case: str,
) -> None:
    """400 `invalid_request` for the intended reason; alice's and bob's sessions are untouched."""
    alice, bob = alice_and_bob
    make, reason = REFUSED[case]
    token = make(provider, {"sid": alice.provider_sid, "sub": "alice"})

    assert_refused(post_token(gatehouse, token), reason)

    assert_nothing_ended(gatehouse, alice, bob)
    assert alice.browser.signed_in_as() == "Alice"
    assert recorder.hits == []
    # The refusal is logged (so the leak check after the test has something to look at).
    assert "back-channel logout refused" in captured_logs.text


@pytest.mark.parametrize("form", [{}, {"logout_token": ""}, {"token": "x"}], ids=["missing", "empty", "misnamed"])
def test_a_missing_or_empty_logout_token_is_refused(
    gatehouse: Gatehouse, alice_and_bob: tuple[SignedIn, SignedIn], form: dict[str, str]
) -> None:
    """No token, no logout."""
    assert_refused(post_logout(gatehouse, form), "missing")
    assert_nothing_ended(gatehouse, *alice_and_bob)


@pytest.mark.parametrize("typed", [True, False], ids=["typ JWT", "no typ"])
def test_an_id_token_posted_as_a_logout_token_is_refused(
    gatehouse: Gatehouse, provider: HostileProvider, alice_and_bob: tuple[SignedIn, SignedIn], typed: bool
) -> None:
    """Cross-JWT confusion: an ID token for alice (the real one, or one without `typ`) is not a logout token."""
    alice, _bob = alice_and_bob
    if typed:
        record = gatehouse.session_record(alice.session_id)
        assert record is not None
        token, reason = record["tokens"]["id_token"], "typ is not logout+jwt"
    else:
        claims = provider.honest_claims("alice", None, alice.provider_sid)
        token, reason = provider.sign({"alg": "RS256", "kid": provider.signing_key.kid}, claims), "events"
        provider.issued.append(token)
    assert_refused(post_token(gatehouse, token), reason)
    assert_nothing_ended(gatehouse, *alice_and_bob)


ACCEPTED: dict[str, Make] = {
    "typ logout+jwt": with_claims(),
    "typ application/logout+jwt": with_header(typ="application/logout+jwt"),
    "no typ": with_header(typ=DROP),
    "aud a one-element list": with_claims(aud=[CLIENT_ID]),
    "iat five minutes ago": at(lambda now: {"iat": now - 300}),
    "iat 30 s ahead (clock skew)": at(lambda now: {"iat": now + 30}),
    "claims the app does not know": with_claims(extra={"anything": [1, 2]}),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_valid_logout_token_variants_are_accepted(
    gatehouse: Gatehouse, provider: HostileProvider, alice_and_bob: tuple[SignedIn, SignedIn], case: str
) -> None:
    """The control for the refusals: honest tokens in their allowed variants do end alice's session."""
    alice, bob = alice_and_bob
    assert_done(post_token(gatehouse, ACCEPTED[case](provider, {"sid": alice.provider_sid, "sub": "alice"})))
    assert_nothing_ended(gatehouse, bob)


def test_a_token_at_the_length_limit_is_accepted(
    gatehouse: Gatehouse, provider: HostileProvider, alice_and_bob: tuple[SignedIn, SignedIn]
) -> None:
    """The 16 KiB limit is the limit: a token of (nearly) exactly that length still works."""
    alice, bob = alice_and_bob
    names = {"sid": alice.provider_sid, "sub": "alice"}
    padding = MAX_TOKEN_LENGTH - len(provider.logout_token({**names, "padding": ""}))
    token = provider.logout_token({**names, "padding": "x" * (padding * 3 // 4)})
    assert MAX_TOKEN_LENGTH - 4 <= len(token) <= MAX_TOKEN_LENGTH, len(token)
    assert_done(post_token(gatehouse, token))
    assert_nothing_ended(gatehouse, bob)


def test_a_refused_forgery_does_not_use_up_the_genuine_tokens_jti(
    gatehouse: Gatehouse, provider: HostileProvider, alice_and_bob: tuple[SignedIn, SignedIn]
) -> None:
    """Someone who learned a jti cannot burn it with a forged token: the genuine token still works."""
    alice, bob = alice_and_bob
    genuine = provider.logout_token({"sid": alice.provider_sid})
    assert_refused(post_token(gatehouse, corrupt_signature(genuine)), "signature")
    assert_nothing_ended(gatehouse, alice, bob)
    assert_done(post_token(gatehouse, genuine))
    assert_nothing_ended(gatehouse, bob)


# ---- 4. and 5. replay ---------------------------------------------------------------------------------


def test_a_replayed_token_is_refused_and_spares_the_sign_in_since(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """First post 200; alice signs in again from the same provider session; the replay is a 400 and she stays."""
    provider.behaviour.provider_sid = "provider-session-replayed"
    alice = sign_in(gatehouse, provider, "alice")
    provider.behaviour.provider_sid = None
    bob = sign_in(gatehouse, provider, "bob")
    token = provider.logout_token({"sid": alice.provider_sid})
    assert_done(post_token(gatehouse, token))
    assert_nothing_ended(gatehouse, bob)

    provider.behaviour.provider_sid = alice.provider_sid
    wait_for_the_next_second()  # the provider reuses the ended `sid` for a new session
    again = sign_in(gatehouse, provider, "alice")
    assert again.provider_sid == alice.provider_sid  # the replay would end it if it were accepted
    assert_refused(post_token(gatehouse, token), "already used")
    assert_nothing_ended(gatehouse, again, bob)
    assert again.browser.signed_in_as() == "Alice"


def test_the_same_token_posted_by_eight_threads_at_once_works_once(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """Eight simultaneous deliveries of one token: exactly one 200 and seven 400s."""
    alice, bob = sign_in(gatehouse, provider, "alice"), sign_in(gatehouse, provider, "bob")
    token = provider.logout_token({"sid": alice.provider_sid, "sub": "alice"})
    senders = [gatehouse.browser() for _ in range(8)]
    for sender in senders:  # open each connection first, so the posts really start together
        sender.get("/healthz")
    barrier = threading.Barrier(len(senders))
    responses: list[requests.Response] = []
    lock = threading.Lock()

    def deliver(sender: Browser) -> None:
        barrier.wait(timeout=10)
        response = sender.post(LOGOUT, data={"logout_token": token})
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=deliver, args=(sender,)) for sender in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(response.status_code for response in responses) == [200] + [400] * 7
    for response in responses:
        if response.status_code == 200:
            assert_done(response)
        else:
            assert_refused(response, "already used")
    assert_nothing_ended(gatehouse, bob)


# ---- 6. no CSRF, no Origin check, POST only -------------------------------------------------------------


def test_a_cross_site_post_is_judged_by_its_token_only(
    gatehouse: Gatehouse, provider: HostileProvider, alice_and_bob: tuple[SignedIn, SignedIn]
) -> None:
    """No CSRF token and `Origin: https://evil.example`: a valid token works, a forged one is a 400 (not a 403)."""
    alice, bob = alice_and_bob
    cross_site = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    forged_token = corrupt_signature(provider.logout_token({"sid": alice.provider_sid}))
    assert_refused(post_token(gatehouse, forged_token, headers=cross_site), "signature")
    assert_nothing_ended(gatehouse, alice, bob)
    assert_done(post_token(gatehouse, provider.logout_token({"sid": alice.provider_sid}), headers=cross_site))
    assert_nothing_ended(gatehouse, bob)


def test_the_cookie_on_the_request_does_not_matter(
    gatehouse: Gatehouse, provider: HostileProvider, alice_and_bob: tuple[SignedIn, SignedIn]
) -> None:
    """Posted with alice's own cookie, a token for bob ends bob's session only (and issues no cookie)."""
    alice, bob = alice_and_bob
    rewrite_session(gatehouse.redis, bob.session_id, created_at=time.time() - 60)
    response = alice.browser.post(LOGOUT, data={"logout_token": provider.logout_token({"sub": "bob"})})
    assert_done(response)
    assert_nothing_ended(gatehouse, alice)


def test_get_is_not_allowed(gatehouse: Gatehouse, provider: HostileProvider) -> None:
    """GET /auth/backchannel-logout is a 405, even with a valid token in the query, and ends nothing."""
    alice = sign_in(gatehouse, provider, "alice")
    response = gatehouse.browser().get(LOGOUT, params={"logout_token": provider.logout_token({"sub": "alice"})})
    assert response.status_code == 405
    assert_nothing_ended(gatehouse, alice)


# ---- 6b. the provider unusable (third pass, item 9) -------------------------------------------------------


def broken_jwks() -> dict[str, Any]:
    raise RuntimeError("the provider's key endpoint is failing")


def assert_try_again(response: requests.Response) -> None:
    """The token was not judged: 503 (a provider delivers it again; a 400 would be final), nothing private."""
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert_private(response)


def test_junk_posted_while_the_jwks_fails_fetches_it_once_and_asks_to_try_again(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    """Before any keys were loaded, a failing JWKS is fetched once per interval, not once per posted token."""
    alice = sign_in(gatehouse, provider, "alice")
    gatehouse.configure()  # a new process: no keys loaded yet
    provider.behaviour.jwks = broken_jwks
    before = provider.hits("/jwks")
    for _ in range(20):
        assert_try_again(post_token(gatehouse, provider.logout_token({"sub": "alice"})))
    assert provider.hits("/jwks") - before == 1
    assert_nothing_ended(gatehouse, alice)


def test_a_logout_token_while_discovery_fails_is_answered_try_again(
    gatehouse: Gatehouse, provider: HostileProvider
) -> None:
    alice = sign_in(gatehouse, provider, "alice")
    gatehouse.configure(OIDC_ISSUER=f"http://127.0.0.1:{free_port()}")  # the provider cannot be reached
    assert_try_again(post_token(gatehouse, provider.logout_token({"sub": "alice"})))
    gatehouse.configure()
    assert_nothing_ended(gatehouse, alice)


# ---- 7. Redis down --------------------------------------------------------------------------------------


def test_redis_down_is_a_503_and_the_provider_can_retry(
    gatehouse: Gatehouse, provider: HostileProvider, alice_and_bob: tuple[SignedIn, SignedIn]
) -> None:
    """Redis unreachable: 503 (no traceback, nothing marked used); once it is back, the same token works."""
    alice, bob = alice_and_bob
    token = provider.logout_token({"sid": alice.provider_sid, "sub": "alice"})
    gatehouse.configure(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    for accept in ("*/*", "application/json"):
        response = post_token(gatehouse, token, headers={"Accept": accept})
        assert response.status_code == 503, (response.status_code, response.text[:300])
        assert_private(response)
        assert "Traceback" not in response.text
    assert_nothing_ended(gatehouse, alice, bob)

    gatehouse.configure()  # Redis is back
    assert_done(post_token(gatehouse, token))
    assert_nothing_ended(gatehouse, bob)


def test_redis_failing_after_the_token_was_marked_used_still_lets_the_retry_through(
    gatehouse: Gatehouse,
    provider: HostileProvider,
    alice_and_bob: tuple[SignedIn, SignedIn],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The jti is marked, then ending the sessions fails: 503, the mark is taken back, and the retry works."""
    alice, bob = alice_and_bob
    real_end_sessions = backchannel.end_sessions
    calls: list[str] = []

    def fail_once(*args: Any, **kwargs: Any) -> int:
        calls.append("end_sessions")
        if len(calls) == 1:
            raise redis.ConnectionError("Redis went away mid-request")
        return real_end_sessions(*args, **kwargs)

    monkeypatch.setattr(backchannel, "end_sessions", fail_once)
    token = provider.logout_token({"sid": alice.provider_sid, "sub": "alice"})

    response = post_token(gatehouse, token)
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert_private(response)
    assert_nothing_ended(gatehouse, alice, bob)

    assert_done(post_token(gatehouse, token))
    assert calls == ["end_sessions", "end_sessions"]
    assert_nothing_ended(gatehouse, bob)
