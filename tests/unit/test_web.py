"""web.py: the Vary helper and the hooks an extension adds, run on some endpoints only."""

from __future__ import annotations

from flask import Flask, Response

from web import AppHooks, vary_on_cookie


def test_vary_gets_cookie_once() -> None:
    """Added when absent, appended to what a view set, never repeated (whatever its case)."""
    fresh = Response()
    vary_on_cookie(fresh)
    vary_on_cookie(fresh)
    assert fresh.headers.getlist("Vary") == ["Cookie"]

    negotiated = Response(headers={"Vary": "Accept-Encoding"})
    vary_on_cookie(negotiated)
    assert set(negotiated.vary) == {"Accept-Encoding", "Cookie"}

    already = Response(headers={"Vary": "accept, COOKIE"})
    vary_on_cookie(already)
    assert already.headers.getlist("Vary") == ["accept, COOKIE"]


def hooked_app(calls: list[str]) -> tuple[Flask, AppHooks]:
    """An app with one hook of its own and three an "extension" adds; returns the extension's."""
    app = Flask(__name__)
    app.after_request(lambda response: calls.append("own") or response)
    before = AppHooks.of(app)
    app.before_request(lambda: calls.append("check"))
    app.after_request(lambda response: calls.append("headers") or response)
    app.teardown_request(lambda error: calls.append(f"reset {error}"))
    added = before.added_since(app)
    added.remove_from(app)
    app.after_request(lambda response: added.finish(response, {"limited"}))
    app.add_url_rule("/limited", "limited", lambda: "limited")
    app.add_url_rule("/other", "other", lambda: "other")
    return app, added


def test_added_hooks_run_on_the_named_endpoints_only() -> None:
    """The extension's after and teardown hooks run for /limited, not for /other; its check never runs."""
    calls: list[str] = []
    app, added = hooked_app(calls)
    assert (len(added.before), len(added.after), len(added.teardown)) == (1, 1, 1)
    client = app.test_client()
    assert client.get("/other").text == "other"
    assert calls == ["own"]
    calls.clear()
    assert client.get("/limited").text == "limited"
    assert calls == ["headers", "reset None", "own"]
