"""Ports for the test servers that cannot collide between pytest-xdist workers, or with another run on the machine.

Asking the kernel for a free port (bind to port 0, let it go: `devstack.processes.free_port`) is fine for one
process, but two test processes can be handed the same port before either server has bound it, and any
outgoing connection may take a port of the kernel's ephemeral range in the meantime. Instead each test process
claims a block of its own below the ephemeral range, on first use: an exclusive `flock` on
`<tmp>/gatehouse-test-ports/block-N`, held until the process exits (the kernel drops it even after SIGKILL), so
workers of one run and of runs in other clones on the same machine never share a block. Inside its block a
process hands ports out in turn (a port comes back only after the whole block has been handed out) and skips
any it cannot bind (something else listens there, or a closed connection still holds it) and the few a browser
refuses to open (BROWSER_UNSAFE_PORTS).

Each block has two parts: ports for any server (`free_port`), and Redis Cluster ports (`free_cluster_port`),
whose bus port (port + 10000, fixed by Redis) must be free and outside the ephemeral range too.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path

from devstack import processes

HOST = "127.0.0.1"
# A cluster node's bus listens on its port + 10000 (fixed by Redis).
CLUSTER_BUS_OFFSET = 10000
LOCKS = Path(tempfile.gettempdir()) / "gatehouse-test-ports"
# How many test processes on the machine get a block of their own; any more fall back to the kernel's free
# ports (as before: they may then collide), e.g. `pytest -n 40`.
BLOCKS = 32
# Ports for any server: below the cluster ports and the usual ephemeral range (32768-60999), 500 per block.
SERVER_PORTS = range(4000, 20000)
# Ports of SERVER_PORTS that Chromium refuses to open (net::ERR_UNSAFE_PORT: its kRestrictedPorts list, SIP,
# X11, IRC, ...): a browser test whose web process got one fails, so they are never handed out.
BROWSER_UNSAFE_PORTS = frozenset({4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080})


def cluster_port_range() -> range:
    """Client ports for cluster nodes: 20000 up to where a bus port (port + 10000) would enter the kernel's
    ephemeral range (outgoing connections take local ports there and could steal a bus port)."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    high = min(45000, 65535 - CLUSTER_BUS_OFFSET, ephemeral_low - CLUSTER_BUS_OFFSET)
    return range(20000, high) if high - 20000 >= 500 else range(20000, 45000)


class _Block:
    """This process's claimed block: its lock, and where it is in each part."""

    def __init__(self, index: int, lock: int) -> None:
        self.index = index
        self.lock = lock
        self.pid = os.getpid()
        self.next_server = 0
        self.cluster_taken: set[int] = set()

    def part(self, ports: range) -> range:
        """This block's share of `ports`."""
        size = len(ports) // BLOCKS
        start = ports.start + self.index * size
        return range(start, start + size)


_block: _Block | None = None
# Cluster ports handed out without a block (see BLOCKS).
_unblocked_cluster_taken: set[int] = set()


def _claim() -> _Block | None:
    """This process's block (claimed on first use; a forked child claims its own), or None if all are taken."""
    global _block
    if _block is not None and _block.pid == os.getpid():
        return _block
    _block = None
    try:
        LOCKS.mkdir(mode=0o777, exist_ok=True)
    except OSError:
        return None
    for index in range(BLOCKS):
        try:
            lock = os.open(LOCKS / f"block-{index}", os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError:
            continue  # cannot be created here
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)  # another process holds this block
            continue
        _block = _Block(index, lock)
        return _block
    return None


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port of this process's block that nothing uses right now, not handed out since the block's last round."""
    block = _claim()
    if block is None:
        return processes.free_port()
    ports = block.part(SERVER_PORTS)
    for _ in range(len(ports)):
        port = ports[block.next_server % len(ports)]
        block.next_server += 1
        if port not in BROWSER_UNSAFE_PORTS and _bindable(port):
            return port
    raise RuntimeError(f"no free port left in {ports}")


def free_cluster_port() -> int:
    """A port P of this process's block with both P and its cluster bus port P + 10000 free (bind test), never
    returned twice in this process (a stopped node's port stays reserved for its restart)."""
    block = _claim()
    if block is None:
        # Any port of the whole range, from a random start (not `random`'s: pytest-randomly reseeds it alike
        # in every process, which would hand every process the same ports).
        whole = cluster_port_range()
        start = whole.start + random.SystemRandom().randrange(len(whole))
        candidates: Sequence[int] = [*range(start, whole.stop), *range(whole.start, start)]
        taken = _unblocked_cluster_taken
    else:
        candidates = block.part(cluster_port_range())
        taken = block.cluster_taken
    for port in candidates:
        if port in taken or not (_bindable(port) and _bindable(port + CLUSTER_BUS_OFFSET)):
            continue
        taken.add(port)
        return port
    raise RuntimeError(f"no free port pair (P, P+{CLUSTER_BUS_OFFSET}) left among {len(candidates)} candidates")
