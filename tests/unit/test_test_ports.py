"""The test ports (tests/support/ports.py): a whole block handed out holds no port a browser refuses to open."""

from __future__ import annotations

import os

import pytest

from tests.support import ports


def test_a_block_never_hands_out_a_port_chromium_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    # Block 2 of SERVER_PORTS (5000-5499) holds SIP's 5060 and 5061, which Chromium answers with ERR_UNSAFE_PORT.
    block = ports._Block(2, lock=-1)
    part = block.part(ports.SERVER_PORTS)
    unsafe = ports.BROWSER_UNSAFE_PORTS & set(part)
    assert unsafe == {5060, 5061}
    monkeypatch.setattr(ports, "_block", block)
    monkeypatch.setattr(ports, "_bindable", lambda port: True)
    assert block.pid == os.getpid()
    handed = [ports.free_port() for _ in range(len(part) - len(unsafe))]
    assert sorted(handed) == sorted(set(part) - unsafe), "every other port of the block, each once a round"
