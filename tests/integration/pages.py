"""Read what a user sees on a Gatehouse page: marked texts and the values of form fields."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import requests

from tests.support.browserless import TIMEOUT


class _PageReader(HTMLParser):
    """Collects the text of `data-testid` elements and the current value of every form field."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.testids: dict[str, list[str]] = {}
        self.fields: dict[str, str] = {}
        self.title = ""
        self.tables: dict[str, dict[str, str]] = {}
        self._table: str | None = None
        self._cells: list[list[str]] | None = None
        self._open_testids: list[tuple[str, str, list[str]]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        name = attributes.get("name", "")
        if tag == "input" and name:
            self.fields[name] = attributes.get("value", "")
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in attributes:
            self.fields[self._select] = attributes.get("value", "")
        elif tag == "textarea":
            self._textarea = name
            self.fields[name] = ""
        elif tag == "title":
            self._in_title = True
        elif tag == "table" and "data-testid" in attributes:
            self._table = attributes["data-testid"]
            self.tables[self._table] = {}
        elif tag == "tr" and self._table:
            self._cells = []
        elif tag in ("th", "td") and self._cells is not None:
            self._cells.append([])
        if "data-testid" in attributes and tag not in ("input", "br", "img"):
            self._open_testids.append((tag, attributes["data-testid"], []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            # Browsers drop the one line break that follows <textarea> (WTForms writes \r\n).
            if self._textarea is not None:
                value = self.fields[self._textarea]
                self.fields[self._textarea] = (
                    value.removeprefix("\r\n") if value.startswith("\r\n") else value.removeprefix("\n")
                )
            self._textarea = None
        elif tag == "title":
            self._in_title = False
        elif tag == "table":
            self._table = None
        elif tag == "tr" and self._table and self._cells is not None:
            cells = [" ".join("".join(parts).split()) for parts in self._cells]
            if len(cells) >= 2:
                self.tables[self._table][cells[0]] = cells[1]
            self._cells = None
        if self._open_testids and self._open_testids[-1][0] == tag:
            _, testid, parts = self._open_testids.pop()
            self.testids.setdefault(testid, []).append(" ".join("".join(parts).split()))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data
        if self._in_title:
            self.title += data
        if self._cells:
            self._cells[-1].append(data)
        for _, _, parts in self._open_testids:
            parts.append(data)


def read_page(html: str) -> _PageReader:
    """Parse one page."""
    reader = _PageReader()
    reader.feed(html)
    reader.close()
    return reader


def texts(html: str, testid: str) -> list[str]:
    """The visible text of every element marked `data-testid=testid` (white space collapsed)."""
    return read_page(html).testids.get(testid, [])


def form_values(html: str) -> dict[str, str]:
    """What each named form field shows: input values, selected options, textarea contents."""
    return read_page(html).fields


def title(html: str) -> str:
    """The page title."""
    return read_page(html).title.strip()


def table(html: str, testid: str) -> dict[str, str]:
    """A two-column table marked `data-testid=testid`, as {first cell: second cell} per row."""
    return read_page(html).tables.get(testid, {})


def is_signed_out(http: requests.Session, base_url: str) -> bool:
    """True when /profile sends this browser to /login."""
    response = http.get(f"{base_url}/profile", allow_redirects=False, timeout=TIMEOUT)
    return response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"


def is_signed_in_as(http: requests.Session, base_url: str, name: str) -> bool:
    """True when /profile opens for this browser and its header names `name`."""
    response = http.get(f"{base_url}/profile", allow_redirects=False, timeout=TIMEOUT)
    return response.status_code == 200 and texts(response.text, "signed-in-as") == [name]
