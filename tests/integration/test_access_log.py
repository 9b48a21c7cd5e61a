"""Third pass, item 8: gunicorn's text access log cannot be forged. A request path with an encoded CR LF
would write a whole fake line (a `POST /account/delete` from another address), and ESC sequences would
reach the terminal reading the log: every value of an access line is written escaped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.support.polling import wait_until
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration

FORGED = '10.9.8.7 [06/Dec/2026:09:00:00 +0000] "POST /account/delete HTTP/1.1" 303 0 1ms "victim"'


@pytest.fixture(scope="module")
def text_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A real gunicorn (gunicorn.conf.py, text logs) in front of the app."""
    running = start_stack(tmp_path_factory.mktemp("access-log"), provider=None, workers=0)
    try:
        yield running
    finally:
        running.stop()


def access_lines(stack: Stack, marker: str) -> list[str]:
    text = (Path(stack.env["GATEHOUSE_TEST_LOGS"]) / "web0.log").read_text(errors="replace")
    return [line for line in text.split("\n") if marker in line]


def test_a_path_with_cr_lf_and_escape_sequences_writes_one_escaped_line(text_stack: Stack) -> None:
    marker = uuid.uuid4().hex
    path = f"/{marker}%0d%0a{quote(FORGED)}%1b[31m"
    answer = requests.get(f"{text_stack.web_url}{path}", timeout=10)
    assert answer.status_code == 404

    [line] = wait_until(lambda: access_lines(text_stack, marker), timeout=10, what="the request's access line")
    assert "\\r\\n10.9.8.7" in line  # the would-be line break, written as text inside the one line
    assert "\x1b" not in line and "\r" not in line
    assert "\\x1b[31m" in line
    forged_lines = [text for text in access_lines(text_stack, "/account/delete") if text.startswith("10.9.8.7")]
    assert forged_lines == []
