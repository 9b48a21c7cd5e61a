"""Watch what a Redis server executes (MONITOR), telling round trips from commands run inside scripts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from redis import Redis


@dataclass
class Recorded:
    """The commands Redis ran while recording: `sent` came over a connection, `scripted` ran inside Lua."""

    sent: list[str] = field(default_factory=list)
    scripted: list[str] = field(default_factory=list)

    def sent_names(self) -> list[str]:
        """The command names of each round trip, upper-case."""
        return [command.split(" ", 1)[0].upper() for command in self.sent]


# A new connection's handshake is not a round trip of any request.
HANDSHAKE = ("HELLO", "CLIENT", "AUTH", "SELECT", "INFO")


@contextmanager
def recording(port: int, *, ignore: tuple[str, ...] = HANDSHAKE) -> Iterator[Recorded]:
    """Record every command executed on the Redis at 127.0.0.1:port during the block (handshakes aside)."""
    recorded = Recorded()
    client = Redis(port=port, socket_timeout=10)
    monitor = client.monitor()
    monitor.__enter__()
    stop = threading.Event()
    marker = "gatehouse-monitor-stop"

    def collect() -> None:
        while True:
            entry = monitor.next_command()
            command = entry["command"]
            if marker in command:
                return
            if entry.get("client_type") == "lua":
                recorded.scripted.append(command)
            elif not command.upper().startswith(ignore):
                recorded.sent.append(command)

    thread = threading.Thread(target=collect, daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        stop.set()
        with Redis(port=port, socket_timeout=10) as poke:
            poke.echo(marker)
        thread.join(timeout=10)
        monitor.__exit__(None, None, None)
        client.close()
