"""signin/redirects.safe_next: local paths pass, everything that could leave the site becomes "/"."""

from __future__ import annotations

import pytest

from signin.redirects import safe_next


@pytest.mark.parametrize(
    "target",
    ["/", "/profile", "/dashboard?tab=api&page=2", "/profile?next=%2Fdashboard", "/a/b/c#section", "/caf%C3%A9"],
)
def test_local_paths_are_kept(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "https://evil.example",
        "http://evil.example/profile",
        "HTTPS://evil.example",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "/%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "%2Fprofile",
        "profile",
        "evil.example",
        "/\x00profile",
        "/profile\x1b",
        "/\tprofile",
        "/prof\nile",
        "/\r\n/evil.example",
        "/\t/evil.example",
        " /profile",
        "/%09/evil.example",
        "/%0d%0aSet-Cookie:x=1",
        "//user:pass@evil.example",
        "https://example.test@evil.example",
        "@evil.example",
        "/" + "a" * 3000,
    ],
)
def test_anything_else_falls_back_to_home(target: str | None) -> None:
    assert safe_next(target) == "/"
