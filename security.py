"""App-wide protections: security headers, cross-site request refusal, rate limits on sign-in.

- Headers come from the `secure` library (typed builders, validated values). They
  are applied with `setdefault`, so a stricter header a view set itself (the sign-in
  routes' `Referrer-Policy: no-referrer`) wins.
- Cross-site requests: any state-changing request whose `Origin` is not ours or
  whose `Sec-Fetch-Site` says "cross-site"/"same-site" is refused with a 403, on top
  of Flask-WTF's CSRF token (defence in depth; the token stays the main control).
- Rate limits (rate_limits.py), counted in the session store's Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request, session
from flask_wtf.csrf import csrf_meta_tag, generate_csrf
from redis import Redis
from secure import (
    ContentSecurityPolicy,
    CrossOriginOpenerPolicy,
    CrossOriginResourcePolicy,
    PermissionsPolicy,
    ReferrerPolicy,
    Secure,
    StrictTransportSecurity,
    XContentTypeOptions,
    XFrameOptions,
)

from errors import render_error
from extensions import csrf
from rate_limits import init_rate_limits

_LIMITER = "gatehouse.limiter"
_HEADERS = "gatehouse.security_headers"
# Session key of the signed CSRF token kept for reuse: [raw token, signed token].
CSRF_SIGNED_KEY = "_csrf_signed"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Sec-Fetch-Site values that mean "another site started this request".
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})
HSTS_MAX_AGE = 365 * 24 * 3600
# Posted by the provider's servers, not a browser: their own token is the whole check.
SERVER_TO_SERVER_ENDPOINTS = frozenset({"auth.backchannel_logout"})


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased, as browsers send it in `Origin`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def content_security_policy(issuers: Sequence[str]) -> ContentSecurityPolicy:
    """The app's pages load only their own stylesheet and post only to the app (sign-out, re-authentication and
    linking continue to a provider: each configured provider's origin)."""
    return (
        ContentSecurityPolicy()
        .default_src("'self'")
        .script_src("'self'")
        .style_src("'self'")
        .img_src("'self'")
        .object_src("'none'")
        .base_uri("'none'")
        .frame_ancestors("'none'")
        # Form posts and the redirects that follow them: sign-out ends at the provider.
        .form_action("'self'", *dict.fromkeys(origin_of(issuer) for issuer in issuers))
    )


def security_headers(issuers: Sequence[str]) -> Secure:
    """The headers every response carries (HSTS is added on https responses only)."""
    return Secure(
        csp=content_security_policy(issuers),
        xcto=XContentTypeOptions().nosniff(),
        xfo=XFrameOptions().deny(),
        referrer=ReferrerPolicy().strict_origin_when_cross_origin(),
        coop=CrossOriginOpenerPolicy().same_origin(),
        corp=CrossOriginResourcePolicy().same_origin(),
        permissions=PermissionsPolicy().geolocation().camera().microphone().payment().usb(),
    )


def header_list(headers: Secure) -> tuple[tuple[str, str], ...]:
    """The security headers as (name, value) pairs, built once per app rather than per response."""
    return tuple(headers.header_items())


def hsts_header() -> tuple[str, str]:
    """Strict-Transport-Security for a year (sent on https responses only)."""
    hsts = StrictTransportSecurity().max_age(HSTS_MAX_AGE)
    return hsts.header_name, hsts.header_value


def add_security_headers(response: Response, headers: tuple[tuple[str, str], ...], hsts: tuple[str, str]) -> Response:
    """Add each security header the view did not set itself.

    One pass over the response's headers to see which are set, then one extend: seven
    `setdefault` calls would scan the header list seven times (most of this hook's cost).
    """
    present = {name.lower() for name, _ in response.headers}
    wanted = (*headers, hsts) if request.is_secure else headers
    response.headers.extend([(name, value) for name, value in wanted if name.lower() not in present])
    return response


def is_cross_site() -> bool:
    """True when the browser says this request was started by another site.

    `Origin` is compared by host (and port) only: behind a TLS-terminating proxy
    that is not trusted for X-Forwarded-Proto the app sees http while browsers send
    https, and that must not refuse every form.

    `Sec-Fetch-Site` (set by the browser, not by page script) is trusted first:
    "cross-site"/"same-site" is refused whatever `Origin` says. `Origin: null` is
    what browsers send from a page with `Referrer-Policy: no-referrer` (the sign-in
    pages), so it passes only with `Sec-Fetch-Site: same-origin`; without that
    header "null" (a sandboxed frame, a data: URL) is never ours. A real `Origin`
    must be ours even when `Sec-Fetch-Site` claims "same-origin".
    """
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if fetch_site in FOREIGN_FETCH_SITES:
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    if origin.strip().lower() == "null":
        return fetch_site != "same-origin"
    return urlsplit(origin.lower()).netloc != request.host.lower()


def refuse_cross_site_requests() -> tuple[Response | str, int] | None:
    """Refuse state-changing requests that another site started, whatever token they carry."""
    if request.method in SAFE_METHODS or request.endpoint in SERVER_TO_SERVER_ENDPOINTS or not is_cross_site():
        return None
    return render_error(403, "This request came from another site, so it was refused.")


def protect_state_changing_requests() -> tuple[Response | str, int] | None:
    """The CSRF token check (Flask-WTF), then the cross-site check; nothing to do for a GET.

    Flask-WTF's own app-wide hook would run on every request, pages included, only to find
    the method safe; with WTF_CSRF_CHECK_DEFAULT off it stands aside and this hook runs the
    same check (exempt views included) for the methods it covers.
    """
    method = request.method
    config = current_app.config
    if method in SAFE_METHODS and method not in config["WTF_CSRF_METHODS"]:
        return None
    if config["WTF_CSRF_ENABLED"]:
        csrf.protect(apply_exemptions=True)
    return refuse_cross_site_requests()


def cached_csrf_token() -> str:
    """The signed CSRF token for this session's forms: signed once per session, not on every page.

    Every signed-in page carries the sign-out form. Flask-WTF signs the session's raw
    token anew on each request (an HMAC and a timestamp); with WTF_CSRF_TIME_LIMIT off
    the signature never expires, so the first one is kept in the session and reused.
    """
    field = current_app.config["WTF_CSRF_FIELD_NAME"]
    raw, cached = session.get(field), session.get(CSRF_SIGNED_KEY)
    if raw and isinstance(cached, list) and len(cached) == 2 and cached[0] == raw:
        setattr(g, field, cached[1])  # Flask-WTF's own per-request cache: forms use it too
        return str(cached[1])
    signed = generate_csrf()
    session[CSRF_SIGNED_KEY] = [session[field], signed]
    return signed


def use_cached_csrf_token(app: Flask) -> None:
    """Templates' `csrf_token()` is `cached_csrf_token`, in place of Flask-WTF's own.

    Flask-WTF offers `csrf_token` both as a Jinja global and from a context processor (which
    wins over the global); its processor is replaced rather than overridden by a later one,
    so a page runs one processor for it, not two.
    """
    app.jinja_env.globals["csrf_token"] = cached_csrf_token
    processors = app.template_context_processors[None]

    def ours() -> dict[str, Any]:
        return {"csrf_token": cached_csrf_token, "csrf_meta_tag": csrf_meta_tag}

    theirs = [index for index, processor in enumerate(processors) if processor.__module__ == "flask_wtf.csrf"]
    if theirs:
        processors[theirs[0]] = ours
    else:
        processors.append(ours)


def init_security(app: Flask, redis: Redis) -> None:
    """Install headers, the CSRF and cross-site checks and rate limits (after the blueprints are registered).

    The rate limits count in the session store's Redis, through its own client (`redis`): same
    server, same short timeouts.
    """
    headers = security_headers([provider.issuer for provider in app.config["OIDC_PROVIDER_SETTINGS"]])
    app.extensions[_HEADERS] = headers
    pairs, hsts = header_list(headers), hsts_header()
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # protect_state_changing_requests runs the check
    app.before_request(protect_state_changing_requests)
    app.after_request(lambda response: add_security_headers(response, pairs, hsts))
    if app.config["WTF_CSRF_TIME_LIMIT"] is None:
        use_cached_csrf_token(app)
    init_rate_limits(app, redis)
