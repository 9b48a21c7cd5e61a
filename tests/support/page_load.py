"""Signed-in browsers viewing a page in a loop while a test breaks something, counting every answer."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests


@dataclass
class PageLoad:
    """Signed-in browsers viewing /profile in a loop, counting what they get back."""

    base_url: str
    browsers: list[requests.Session]
    answers: Counter[str] = field(default_factory=Counter)
    last_unserved: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, browser: requests.Session) -> None:
        """One browser's loop: GET /profile until stopped; an answer is its status code or the error's name."""
        while not self.stop.is_set():
            try:
                status = str(browser.get(f"{self.base_url}/profile", allow_redirects=False, timeout=10).status_code)
            except requests.RequestException as error:
                status = type(error).__name__
            with self.lock:
                self.answers[status] += 1
                if status != "200":
                    self.last_unserved = time.monotonic()

    def __enter__(self) -> PageLoad:
        """Start one thread per browser."""
        self.threads = [threading.Thread(target=self.run, args=(browser,), daemon=True) for browser in self.browsers]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the loops and wait for them."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
