"""Debian's Chromium, as every browser test launches it (Playwright never downloads a browser)."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Everything under test listens on 127.0.0.1; any other host name fails to resolve, so
    # nothing leaves the machine (the provider's stock pages @import a web font, for instance).
    # A Playwright route would do it too, but routing turns the browser's HTTP cache off, and
    # the back-button journey must meet the cache a person's browser has.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
