"""docs/extending.md's example (examples/team.py), registered on create_app's app as the page tells teams to."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from examples import team
from tests.unit.conftest import AppFactory
from tests.unit.helpers import counting_queries, csrf_token, sign_in
from tests.unit.mock_provider import MockProvider


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """Gatehouse with the team example registered right after create_app."""
    built = make_app()
    team.register(built)
    return built


def test_signed_out_visitors_go_to_sign_in_and_come_back(client: FlaskClient) -> None:
    """/team sends an anonymous visitor to /login with next=/team."""
    response = client.get("/team")
    assert response.status_code == 302
    assert response.location == "/login?next=/team"


def test_signed_in_users_see_the_page_with_their_team(client: FlaskClient, provider: MockProvider, app: Flask) -> None:
    """After sign-in the page shows the user and the team the sign-in hook kept, with no SQL query."""
    landed = sign_in(client, provider, "alice", next_path="/team", team="Platform")
    assert (landed.status_code, landed.location) == (302, "/team")
    with counting_queries(app) as statements:
        page = client.get("/team")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="team-member">Alice<' in html
    assert 'data-testid="team-name">Platform<' in html
    assert statements == []


@pytest.mark.parametrize("claim", [None, "", "   ", 42, ["a", "b"]])
def test_a_missing_or_odd_team_claim_is_none(client: FlaskClient, provider: MockProvider, claim: object) -> None:
    """The sign-in hook keeps only a text claim."""
    sign_in(client, provider, "bob", **({} if claim is None else {"team": claim}))
    assert 'data-testid="team-name">none<' in client.get("/team").get_data(as_text=True)


def test_a_long_team_claim_is_cut(client: FlaskClient, provider: MockProvider) -> None:
    """An oversized claim is kept to TEAM_MAX characters."""
    sign_in(client, provider, "carol", team="x" * 5_000)
    html = client.get("/team").get_data(as_text=True)
    assert f'data-testid="team-name">{"x" * team.TEAM_MAX}<' in html


def test_the_refresh_hook_refuses_a_shouted_name(client: FlaskClient, provider: MockProvider) -> None:
    """A display name in capitals only is refused beside the field; an ordinary one is saved."""
    sign_in(client, provider, "alice", team="Platform")
    page = client.get("/profile").get_data(as_text=True)
    version = re.search(r'name="version"[^>]*value="(\d+)"', page) or re.search(
        r'value="(\d+)"[^>]*name="version"', page
    )
    assert version
    form = {"csrf_token": csrf_token(page), "version": version.group(1), "display_name": "ALICE", "locale": "en"}
    form["timezone"] = "UTC"
    refused = client.post("/profile", data=form)
    assert refused.status_code == 400  # the profile page's answer to a form with errors
    assert "Please do not write your name in capitals only." in refused.get_data(as_text=True)
    assert "Welcome, Alice" in client.get("/").get_data(as_text=True)
    saved = client.post("/profile", data={**form, "display_name": "Alice L."})
    assert saved.status_code == 302
    assert "Welcome, Alice L." in client.get("/").get_data(as_text=True)
    # The session hook's key survives the edit.
    assert 'data-testid="team-name">Platform<' in client.get("/team").get_data(as_text=True)
