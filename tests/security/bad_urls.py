"""Redirect targets that must never be followed off the site, and local paths that must keep working.

DJANGO_BAD_URLS reproduces, entry for entry, the `bad_urls` tuple of
`URLHasAllowedHostAndSchemeTests.test_bad_urls` in Django's tests/utils_tests/test_http.py
(Django 5.2; "testserver" is the allowed host there). DJANGO_LOGIN_BAD_URLS adds the
`next` values Django's auth view tests refuse (tests/auth_tests/test_views.py).
EXTRA_BAD_URLS are encoded and obfuscated variants of the same tricks.
"""

from __future__ import annotations

DJANGO_BAD_URLS = (
    "http://example.com",
    "http:///example.com",
    "https://example.com",
    "ftp://example.com",
    r"\\example.com",
    r"\\\example.com",
    r"/\\/example.com",
    r"\\\example.com",
    r"\\example.com",
    r"\\//example.com",
    r"/\/example.com",
    r"\/example.com",
    r"/\example.com",
    "http:///example.com",
    r"http:/\//example.com",
    r"http:\/example.com",
    r"http:/\example.com",
    'javascript:alert("XSS")',
    "\njavascript:alert(x)",
    "java\nscript:alert(x)",
    "\x08//example.com",
    r"http://otherserver\@example.com",
    r"http:\\testserver\@example.com",
    r"http://testserver\me:pass@example.com",
    r"http://testserver\@example.com",
    r"http:\\testserver\confirm\me@example.com",
    "http:999999999",
    "ftp:9999999999",
    "\n",
    "http://[2001:cdba:0000:0000:0000:0000:3257:9652/",
    "http://2001:cdba:0000:0000:0000:0000:3257:9652]/",
)

DJANGO_LOGIN_BAD_URLS = (
    "http://example.com",
    "https://example.com",
    "ftp://example.com",
    "///example.com",
    "//example.com",
    'javascript:alert("XSS")',
)

EXTRA_BAD_URLS = (
    "//example.com/profile",
    "/\t/example.com",
    "/\r\n/example.com",
    " //example.com",
    "\x00//example.com",
    "/%2F%2Fexample.com",
    "%2F%2Fexample.com",
    "/%5Cexample.com",
    "/%5C%5Cexample.com",
    "/%252F%252Fexample.com",
    "%2Fprofile",
    "/%09/example.com",
    "/%0d%0aSet-Cookie:%20x=1",
    "HTTPS://example.com",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "//user:pass@example.com",
    "https://testserver@example.com",
    "@example.com",
    "example.com",
    "profile",
    "/\u2028/example.com",
    "/\u3000/example.com",
    "/\ufeff/example.com",
    "\uff0f\uff0fexample.com",
    "/" + "a" * 3000,
)

BAD_URLS = tuple(dict.fromkeys(DJANGO_BAD_URLS + DJANGO_LOGIN_BAD_URLS + EXTRA_BAD_URLS))

# Local paths, among them the local entries of Django's `good_urls`.
GOOD_LOCAL_PATHS = (
    "/profile",
    "/dashboard?tab=api&page=2",
    "/view/?param=http://example.com",
    "/view/?param=https://example.com",
    "/view?param=ftp://example.com",
    "/url%20with%20spaces/",
    "/confirm/me@example.com",
    "/caf%C3%A9",
    "/profile?next=%2Fdashboard",
)
