"""Real Redis high-availability topologies for integration tests: a Sentinel group and a Redis Cluster.

`SentinelGroup` starts a primary, two replicas and three Sentinels monitoring them under one service
name; `RedisClusterGroup` starts six cluster nodes and joins them with `redis-cli --cluster create`
(three primaries, one replica each). Every process is a redis-server child of the test process on a
127.0.0.1 port, logging to `<workdir>/logs/<name>.log`. Both groups kill, restart and fail over nodes,
and every wait polls the servers' own view (INFO, SENTINEL, CLUSTER, `redis-cli --cluster check`)
instead of sleeping: failover times are what the tests measure.

Given `tls` (a certificate, its key and the CA that signed it), a group speaks TLS only: every node and
Sentinel listens on a TLS port (its plain port off), replication, Sentinel's own connections and the cluster
bus run over TLS, redis-cli and the helpers' clients check the servers' certificate against the CA, and `url`
is `rediss+sentinel://` or `rediss+cluster://`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis, RedisError
from redis.cluster import ClusterNode as RedisClusterAddress
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.sentinel import Sentinel

from devstack.processes import redis_server_binary, stop
from tests.support.polling import wait_until
from tests.support.ports import free_cluster_port, free_port

HOST = "127.0.0.1"
CLUSTER_SLOTS = 16384
ALL_SLOTS_COVERED = f"[OK] All {CLUSTER_SLOTS} slots covered."
# redis-cli's cluster manager colours its output even when it is not a terminal.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


# ---- processes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS-only group: every server's certificate and key, and the CA clients check it against."""

    cert: Path
    key: Path
    ca: Path

    def client_options(self) -> dict[str, Any]:
        """redis-py's options for a client checking the servers' certificate against the CA."""
        return {"ssl": True, "ssl_ca_certs": str(self.ca)}

    def cli_options(self) -> list[str]:
        """redis-cli's options for the same."""
        return ["--tls", "--cacert", str(self.ca)]


@dataclass(eq=False)
class RedisProcess:
    """One redis-server child process (data node, Sentinel or cluster node), restartable with the same arguments."""

    name: str
    port: int
    # Its own directory: config file, AOF, nodes.conf; kept across restarts.
    home: Path
    # Arguments after the redis-server binary.
    args: list[str]
    log_path: Path
    password: str | None = None
    process: subprocess.Popen[bytes] | None = None
    # time.monotonic() of the last `kill`, so failover times count from the crash.
    killed_at: float | None = None
    # Set: the process listens on TLS only (`port` is its TLS port); its clients check the certificate.
    tls: TlsFiles | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port)."""
        return (HOST, self.port)

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = 20.0) -> None:
        """Start (or restart) the process; returns once it answers INFO as this very process."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The child keeps its own copy of the log file descriptor. Its own session: a terminal's
        # Ctrl-C reaches pytest only, whose teardown stops the servers (as devstack's start_redis does).
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [redis_server_binary(), *self.args],
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.killed_at = None
        # By pid, not by an open port: a free port picked earlier may have been taken by someone else.
        wait_until(self._answers_as_itself, timeout=timeout, interval=0.05, what=f"{self.name} on port {self.port}")

    def _answers_as_itself(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
        try:
            with self.client(socket_timeout=1) as client:
                return bool(client.info("server")["process_id"] == self.process.pid)
        except RedisError:
            return False

    def stop(self) -> None:
        """Clean shutdown (SIGTERM: Redis flushes its AOF first; SIGKILL after 10 s)."""
        if self.process is not None:
            stop([self.process])
            self.process = None

    def kill(self) -> None:
        """SIGKILL: no chance to flush or to tell anyone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
            self.killed_at = time.monotonic()

    def client(self, *, socket_timeout: float = 5.0, decode_responses: bool = True) -> Redis:
        """A direct client of this process (no Sentinel, no cluster redirects)."""
        return Redis(
            host=HOST,
            port=self.port,
            password=self.password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            decode_responses=decode_responses,
            **(self.tls.client_options() if self.tls else {}),
        )

    def info(self, section: str) -> dict[str, Any] | None:
        """INFO `section`, or None if the process does not answer."""
        if not self.running:
            return None
        try:
            with self.client() as client:
                info: dict[str, Any] = client.info(section)
                return info
        except RedisError:
            return None

    def log_tail(self) -> str:
        """The end of its log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


def quoted(value: str) -> str:
    """A redis.conf string argument (passwords may hold spaces or quotes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, lines: Iterable[str]) -> Path:
    """Write a config file once: on a restart it keeps what Redis or Sentinel rewrote into it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("\n".join(lines) + "\n")
    return path


def data_node_settings(*, appendonly: bool, password: str | None) -> list[tuple[str, str]]:
    """Settings every data node (Sentinel-managed or cluster) shares, as (name, value) pairs."""
    settings = [
        ("bind", HOST),
        ("logfile", ""),  # stdout, which is the log file
        ("save", ""),  # no RDB snapshots: AOF (or nothing) is what the tests choose
        ("appendonly", "yes" if appendonly else "no"),
        ("appendfsync", "everysec"),
        ("maxmemory-policy", "noeviction"),
        # The default waits 5 s for more replicas before a (diskless) full sync; every replica
        # (re)joining would add those 5 s to start, restart and failover times.
        ("repl-diskless-sync-delay", "0"),
    ]
    if password:
        # masterauth too: any node may become a replica of another after a failover.
        settings += [("requirepass", password), ("masterauth", password)]
    return settings


def listen_settings(port: int, tls: TlsFiles | None, *, cluster: bool = False) -> list[tuple[str, str]]:
    """Where a node or Sentinel listens: plain `port`, or with `tls` that port as its TLS port and the plain one
    off, replication (and Sentinel's connections to data nodes and peers) over TLS, and with `cluster` the
    cluster bus too (its port follows the TLS port then)."""
    if tls is None:
        return [("port", str(port))]
    settings = [
        ("port", "0"),
        ("tls-port", str(port)),
        ("tls-cert-file", str(tls.cert)),
        ("tls-key-file", str(tls.key)),
        ("tls-ca-cert-file", str(tls.ca)),
        # Clients (the app, the helpers) check the server; the server asks for no client certificate.
        ("tls-auth-clients", "no"),
        ("tls-replication", "yes"),
    ]
    if cluster:
        settings.append(("tls-cluster", "yes"))
    return settings


def config_lines(settings: Iterable[tuple[str, str]]) -> list[str]:
    """(name, value) pairs as redis.conf lines."""
    return [f"{name} {quoted(value)}" for name, value in settings]


def listen_lines(port: int, tls: TlsFiles | None) -> list[str]:
    """`listen_settings` as redis.conf lines (without TLS the single `port N` line, as before)."""
    return [f"port {port}"] if tls is None else config_lines(listen_settings(port, tls))


def command_line(settings: Iterable[tuple[str, str]]) -> list[str]:
    """(name, value) pairs as redis-server options."""
    return [word for name, value in settings for word in (f"--{name}", value)]


def url_credentials(password: str | None) -> str:
    """`:password@` for a limits storage URL, or "". limits takes the password as written (it does not
    percent-decode it), so one that would need quoting is refused rather than silently mangled."""
    if not password:
        return ""
    if any(char in password for char in "@/?#,%:[] "):
        raise ValueError("limits cannot read this password from a URL; pass it as the `password` storage option")
    return f":{password}@"


def stop_all(nodes: Iterable[RedisProcess]) -> None:
    """Stop several processes at once (SIGTERM to all, then wait), tolerating ones never started."""
    started = [node for node in nodes if node.process is not None]
    stop([node.process for node in started if node.process is not None])
    for node in started:
        node.process = None


# ---- Sentinel ------------------------------------------------------------------------------------


@dataclass(eq=False)
class SentinelGroup:
    """A primary, two replicas and three Sentinels (quorum 2) monitoring them as `service`, all child processes.

    `password` protects the data nodes (requirepass + masterauth; the Sentinels get `auth-pass`),
    `sentinel_password` the Sentinels themselves (their requirepass, also used between Sentinels).

    `down_after_ms` 1000 races with Sentinel's fixed 1 s reconnect period: on +switch-master a Sentinel starts
    the new primary's down-after clock, but reconnects no sooner than 1 s after its last attempt at the dead
    one, so it may declare the new primary down ~1 s after the switch; the peers' "down" answers about the old
    primary still count (Sentinel forgets them after 5 s), the quorum is instant and a second failover follows,
    dropping writes the first new primary acknowledged (seen in 2 of 19 SIGKILL failovers; 0 of 6 at 2000).
    `wait_for_new_primary` waits until every Sentinel is connected to the new primary with no failover in
    progress, which outlasts such a second failover.
    """

    workdir: Path
    service: str = "gatehouse"
    down_after_ms: int = 1000
    failover_timeout_ms: int = 5000
    appendonly: bool = True
    password: str | None = None
    sentinel_password: str | None = None
    quorum: int = 2
    tls: TlsFiles | None = None
    data_nodes: list[RedisProcess] = field(default_factory=list, init=False)
    sentinels: list[RedisProcess] = field(default_factory=list, init=False)

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self, *, timeout: float = 30.0) -> SentinelGroup:
        """Start the primary, its replicas, then the Sentinels; return once every Sentinel sees the whole group."""
        try:
            primary = self._data_node("redis-primary", replica_of=None)
            primary.start()
            for index in (1, 2):
                self._data_node(f"redis-replica{index}", replica_of=primary.port).start()
            # Sentinels last: their first INFO of the primary then already lists both replicas.
            for index in (1, 2, 3):
                self._sentinel(f"sentinel{index}", primary.port).start()
            self.wait_until_settled(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything (Sentinels first, so none fails over while the data nodes shut down)."""
        stop_all(self.sentinels)
        # Replicas before the primary (by the nodes' own word: the Sentinels are gone): a Redis 7 primary's
        # shutdown waits up to 10 s for connected replicas to catch up.
        stop_all([node for node in self.data_nodes if self.role(node) != "master"])
        stop_all(self.data_nodes)

    def _data_node(self, name: str, replica_of: int | None) -> RedisProcess:
        port = free_port()
        home = self.workdir / name
        settings = data_node_settings(appendonly=self.appendonly, password=self.password)
        lines = [*listen_lines(port, self.tls), f"dir {quoted(str(home))}", *config_lines(settings)]
        if replica_of is not None:
            # In the config file, not on the command line: Sentinel's CONFIG REWRITE (after each
            # promotion or reconfiguration) then keeps the node's current role for a restart,
            # as a production node's redis.conf does.
            lines.append(f"replicaof {HOST} {replica_of}")
        config = write_config(home / "redis.conf", lines)
        node = RedisProcess(name, port, home, [str(config)], self._log(name), password=self.password, tls=self.tls)
        self.data_nodes.append(node)
        return node

    def _sentinel(self, name: str, primary_port: int) -> RedisProcess:
        port = free_port()
        home = self.workdir / name
        service = self.service
        lines = [
            *listen_lines(port, self.tls),
            f"bind {HOST}",
            f"dir {quoted(str(home))}",
            'logfile ""',
            # `sentinel monitor` first: the other `sentinel` lines refer to the service it declares.
            f"sentinel monitor {service} {HOST} {primary_port} {self.quorum}",
            f"sentinel down-after-milliseconds {service} {self.down_after_ms}",
            f"sentinel failover-timeout {service} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {service} 1",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {service} {quoted(self.password)}")
        if self.sentinel_password:
            lines.append(f"requirepass {quoted(self.sentinel_password)}")
        # Each Sentinel its own file: Sentinel rewrites it (its id, epochs, the replicas and peers it found).
        config = write_config(home / "sentinel.conf", lines)
        args = [str(config), "--sentinel"]
        sentinel = RedisProcess(name, port, home, args, self._log(name), self.sentinel_password, tls=self.tls)
        self.sentinels.append(sentinel)
        return sentinel

    def _log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    # ---- addresses and clients ---------------------------------------------------------------
    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every Sentinel, what redis-py's `Sentinel` takes."""
        return [sentinel.address for sentinel in self.sentinels]

    @property
    def url(self) -> str:
        """`redis+sentinel://[:password@]host:port,…/service` (`rediss+sentinel://…` with TLS), as the `limits`
        package parses it.

        limits sends the URL's password to the Sentinels and the data nodes alike; with a separate
        `sentinel_password`, pass `sentinel_kwargs={"password": …}` as a storage option too. It reads
        the path as the service name (a "/0" would become part of it): database 0 unless `db=` is given.
        """
        credentials = url_credentials(self.password)
        locations = ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        return f"{scheme}://{credentials}{locations}/{self.service}"

    @contextmanager
    def sentinel_client(self, **connection_kwargs: Any) -> Iterator[Sentinel]:
        """A redis-py `Sentinel` for the group (passwords, TLS); its Sentinel connections are closed afterwards."""
        tls = self.tls.client_options() if self.tls else {}
        client = Sentinel(
            self.sentinel_addresses,
            sentinel_kwargs={"password": self.sentinel_password, "socket_timeout": 2, **tls},
            password=self.password,
            socket_timeout=5,
            **{**tls, **connection_kwargs},
        )
        try:
            yield client
        finally:
            for connection in client.sentinels:
                connection.close()

    def client_for(self, node: RedisProcess) -> Redis:
        """A direct client of one data node (bytes responses, like stack.RedisServer.client)."""
        return node.client(decode_responses=False)

    # ---- who is primary ----------------------------------------------------------------------
    def _reported_by(self, sentinel: RedisProcess) -> int | None:
        """The primary's port per one Sentinel, or None if it does not answer."""
        if not sentinel.running:
            return None
        try:
            with sentinel.client(socket_timeout=2) as client:
                address = client.sentinel_get_master_addr_by_name(self.service)
        except RedisError:
            return None
        return int(address[1]) if address else None

    def _reported_primary_port(self) -> int | None:
        return next((port for port in map(self._reported_by, self.sentinels) if port is not None), None)

    def _node_at(self, port: int | None) -> RedisProcess | None:
        return next((node for node in self.data_nodes if node.port == port), None)

    def primary(self) -> RedisProcess:
        """The data node the first answering Sentinel reports as primary (`SENTINEL get-master-addr-by-name`)."""
        node = self._node_at(self._reported_primary_port())
        if node is None:
            raise AssertionError("no Sentinel reports a primary among the group's data nodes")
        return node

    def replicas(self) -> list[RedisProcess]:
        """Every data node but the reported primary (running or not)."""
        primary = self.primary()
        return [node for node in self.data_nodes if node is not primary]

    @staticmethod
    def role(node: RedisProcess) -> str | None:
        """The node's own INFO role ("master" or "slave"), None if it does not answer."""
        info = node.info("replication")
        return str(info["role"]) if info else None

    # ---- waiting -----------------------------------------------------------------------------
    def _master_record(self, sentinel: RedisProcess) -> tuple[int, str] | None:
        """(port, flags) of one Sentinel's record of the primary (SENTINEL MASTER), None if it does not answer."""
        if not sentinel.running:
            return None
        try:
            with sentinel.client(socket_timeout=2) as client:
                master = client.sentinel_master(self.service)
        except RedisError:
            return None
        return int(master["port"]), str(master["flags"])

    def _agreed_primary(self) -> RedisProcess | None:
        """The primary every running Sentinel records, with no failover in progress anywhere, if it says
        role:master itself.

        SENTINEL MASTER, not get-master-addr-by-name: during a failover the leader already answers the
        latter with the promoted replica while it is still reconfiguring the others; only its record's
        flags (`failover_in_progress`) tell the failover is not over.
        """
        records = {self._master_record(sentinel) for sentinel in self.sentinels if sentinel.running}
        if len(records) != 1:
            return None
        record = records.pop()
        if record is None or record[1] != "master":
            return None
        node = self._node_at(record[0])
        return node if node is not None and self.role(node) == "master" else None

    def _replicating(self, primary: RedisProcess, replica: RedisProcess) -> bool:
        info = replica.info("replication")
        return bool(
            info
            and info["role"] == "slave"
            and int(info["master_port"]) == primary.port
            and info["master_link_status"] == "up"
        )

    def _primary_sees(self, primary: RedisProcess, replicas: list[RedisProcess]) -> bool:
        """The primary lists every replica as connected and online (INFO replication's slaveN lines)."""
        info = primary.info("replication")
        if not info:
            return False
        online = {
            int(value["port"])
            for key, value in info.items()
            if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
        }
        return {replica.port for replica in replicas} <= online

    def _sentinel_sees(self, sentinel: RedisProcess, primary: RedisProcess, replicas: list[RedisProcess]) -> bool:
        """One Sentinel knows the primary as a healthy master, every live replica as healthy, and its live peers."""
        peers = sum(1 for other in self.sentinels if other.running) - 1
        try:
            with sentinel.client(socket_timeout=2) as client:
                master = client.sentinel_master(self.service)
                known = client.sentinel_slaves(self.service)
        except RedisError:
            return False
        healthy = {int(entry["port"]) for entry in known if entry["flags"] == "slave"}
        return (
            master["flags"] == "master"
            and int(master["port"]) == primary.port
            and int(master["num-other-sentinels"]) == peers
            and {replica.port for replica in replicas} <= healthy
        )

    def settled(self) -> bool:
        """Sentinels agree on a primary that says role:master, every live data node replicates from it,
        and every live Sentinel sees them all (healthy) and its live peers."""
        primary = self._agreed_primary()
        if primary is None:
            return False
        replicas = [node for node in self.data_nodes if node is not primary and node.running]
        return (
            all(self._replicating(primary, replica) for replica in replicas)
            and self._primary_sees(primary, replicas)
            and all(self._sentinel_sees(sentinel, primary, replicas) for sentinel in self.sentinels if sentinel.running)
        )

    def wait_until_settled(self, *, timeout: float = 30.0) -> None:
        """Poll until `settled` (after start, a restart, or to let a failover finish reconfiguring replicas)."""
        wait_until(self.settled, timeout=timeout, interval=0.1, what=f"Sentinel group {self.service} to settle")

    def wait_for_new_primary(self, old: RedisProcess, timeout: float = 30.0) -> float:
        """Poll until every live Sentinel has finished failing over to (and reconnected to) a primary other
        than `old`, and that node says role:master; clients can already find it about 2 s sooner.

        Returns the seconds it took, counted from `old`'s kill if it was killed with `kill`/`kill_primary`
        (else from this call). All Sentinels, not just one: a client asks any of them.
        """
        started = old.killed_at if old.killed_at is not None else time.monotonic()

        def promoted() -> RedisProcess | None:
            node = self._agreed_primary()
            return node if node is not None and node is not old else None

        wait_until(promoted, timeout=timeout, interval=0.05, what=f"a primary other than {old.name}")
        return time.monotonic() - started

    # ---- faults ------------------------------------------------------------------------------
    def kill_primary(self) -> RedisProcess:
        """SIGKILL the current primary's process; return its handle (for `wait_for_new_primary`, `restart`)."""
        node = self.primary()
        node.kill()
        return node

    def restart(self, node: RedisProcess, *, timeout: float = 45.0) -> None:
        """Start a stopped or killed data node again (same port, config and data) and wait until it is a replica
        of the current primary.

        A killed primary comes back believing it is primary (its config file says so); Sentinel converts it
        to a replica, but only once it has reported that role for 8 s (4 hello periods), checked on its 10 s
        INFO polls: about 10 s.
        """
        node.start()
        self.wait_until_settled(timeout=timeout)
        primary = self.primary()
        if node is primary or not self._replicating(primary, node):
            raise AssertionError(f"{node.name} did not come back as a replica of {primary.name}")

    def failover(self, *, timeout: float = 30.0) -> float:
        """SENTINEL FAILOVER (no agreement needed), then wait for the new primary; returns the seconds it took.

        The old primary is demoted by Sentinel later (see `restart`); `wait_until_settled` waits for it.
        """
        old = self.primary()
        started = time.monotonic()
        sentinel = next(sentinel for sentinel in self.sentinels if sentinel.running)

        def accepted() -> bool:
            # Refused with NOGOODSLAVE while Sentinel's view of the replicas is stale, INPROG during another failover.
            try:
                with sentinel.client() as client:
                    return bool(client.sentinel_failover(self.service))
            except RedisError:
                return False

        wait_until(accepted, timeout=timeout, what=f"{sentinel.name} to accept SENTINEL FAILOVER")
        self.wait_for_new_primary(old, timeout=max(1.0, timeout - (time.monotonic() - started)))
        return time.monotonic() - started


# ---- Redis Cluster -------------------------------------------------------------------------------


def redis_cli_binary() -> str:
    """Debian's redis-cli (the cluster manager lives in it)."""
    found = shutil.which("redis-cli")
    if not found:
        raise RuntimeError("redis-cli not found: install Debian's redis-tools (scripts/system-packages.sh)")
    return found


@dataclass(eq=False)
class ClusterNode(RedisProcess):
    """One cluster node's process; `node_id` is its cluster identity (kept in nodes.conf across restarts)."""

    node_id: str = ""


@dataclass(frozen=True)
class ClusterView:
    """One row of CLUSTER NODES."""

    node_id: str
    port: int
    flags: frozenset[str]
    primary_id: str | None
    slots: frozenset[int]

    @property
    def is_primary(self) -> bool:
        """Flagged master and not failed."""
        return "master" in self.flags and "fail" not in self.flags

    @property
    def role(self) -> tuple[str, bool, bool, str | None]:
        """What every node must agree on about this one: id, master or not, failed or not, whose replica."""
        return (self.node_id, "master" in self.flags, "fail" in self.flags, self.primary_id)


def parse_cluster_nodes(text: str) -> list[ClusterView]:
    """CLUSTER NODES lines: `id ip:port@bus flags master ping pong epoch link slot…` (slots: N, N-M, [migrating])."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        slots: set[int] = set()
        for token in fields[8:]:
            if token.startswith("["):
                continue  # a slot being imported or migrated: still owned by the node listing it plainly
            first, _, last = token.partition("-")
            slots.update(range(int(first), int(last or first) + 1))
        rows.append(
            ClusterView(
                node_id=fields[0],
                port=int(fields[1].split("@")[0].rsplit(":", 1)[1]),
                flags=frozenset(fields[2].split(",")),
                primary_id=None if fields[3] == "-" else fields[3],
                slots=frozenset(slots),
            )
        )
    return rows


@dataclass(eq=False)
class RedisClusterGroup:
    """Six cluster nodes joined by `redis-cli --cluster create --cluster-replicas 1`: 3 primaries, a replica each."""

    workdir: Path
    node_timeout_ms: int = 1000
    appendonly: bool = True
    password: str | None = None
    size: int = 6
    tls: TlsFiles | None = None
    nodes: list[ClusterNode] = field(default_factory=list, init=False)
    # The primaries right after create, in port order: the startup addresses `url` gives clients.
    initial_primaries: list[ClusterNode] = field(default_factory=list, init=False)
    _reshards: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self, *, timeout: float = 60.0) -> RedisClusterGroup:
        """Start the nodes, create the cluster, and return once `--cluster check` passes, every node says
        cluster_state:ok and every replica's link to its primary is up."""
        try:
            for index in range(1, self.size + 1):
                self._node(f"cluster-node{index}").start()
            addresses = [f"{HOST}:{node.port}" for node in self.nodes]
            self.cli("--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes", timeout=timeout)
            for node in self.nodes:
                with node.client() as client:
                    node.node_id = str(client.execute_command("CLUSTER", "MYID"))
            self.wait_until_healthy(timeout=timeout)
            wait_until(self._replicas_linked, timeout=timeout, what="every cluster replica's link to its primary")
            self.initial_primaries = sorted(self.primaries(), key=lambda node: node.port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node and any reshard still running."""
        for process in self._reshards:
            if process.poll() is None:
                process.kill()
            process.wait()
        stop_all(self.nodes)

    def _node(self, name: str) -> ClusterNode:
        port = free_cluster_port()
        home = self.workdir / name
        # Options on the command line (no config file to rewrite): the cluster's own state is in nodes.conf.
        args = [*command_line(listen_settings(port, self.tls, cluster=True)), "--dir", str(home)]
        args += command_line(data_node_settings(appendonly=self.appendonly, password=self.password))
        args += [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(home / "nodes.conf"),
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
        ]
        log = self.workdir / "logs" / f"{name}.log"
        node = ClusterNode(name, port, home, args, log, password=self.password, tls=self.tls)
        self.nodes.append(node)
        return node

    # ---- redis-cli ---------------------------------------------------------------------------
    def _cli_args(self, *args: str) -> list[str]:
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        tls = self.tls.cli_options() if self.tls else []
        return [redis_cli_binary(), *tls, *auth, *args]

    def cli(self, *args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run redis-cli ARGS (with the password), its output appended to logs/redis-cli.log."""
        result = subprocess.run(self._cli_args(*args), capture_output=True, text=True, timeout=timeout, check=False)
        result.stdout, result.stderr = ANSI_ESCAPE.sub("", result.stdout), ANSI_ESCAPE.sub("", result.stderr)
        log = self.workdir / "logs" / "redis-cli.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            out.write(f"$ redis-cli {' '.join(args)}\n{result.stdout}{result.stderr}[exit {result.returncode}]\n")
        if check and result.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(args)} exited with {result.returncode}:\n{result.stdout[-3000:]}")
        return result

    def check_passes(self) -> bool:
        """`redis-cli --cluster check` from a live node exits 0 and reports all 16384 slots covered."""
        node = self._live_node()
        result = self.cli("--cluster", "check", f"{HOST}:{node.port}", timeout=30, check=False)
        return result.returncode == 0 and ALL_SLOTS_COVERED in result.stdout

    # ---- views -------------------------------------------------------------------------------
    def _live_node(self) -> ClusterNode:
        node = next((node for node in self.nodes if node.running), None)
        if node is None:
            raise AssertionError("no cluster node is running")
        return node

    def view(self, node: ClusterNode | None = None) -> list[ClusterView]:
        """CLUSTER NODES as `node` (default: the first live one) sees it."""
        node = node or self._live_node()
        with node.client() as client:
            # As separate words: redis-py parses "CLUSTER NODES" into its own structure, not the raw text.
            text = client.execute_command("CLUSTER", "NODES")
        return parse_cluster_nodes(text if isinstance(text, str) else str(text))

    def _handle(self, node_id: str) -> ClusterNode:
        return next(node for node in self.nodes if node.node_id == node_id)

    def primaries(self) -> list[ClusterNode]:
        """Nodes a live node's CLUSTER NODES flags master (not failed)."""
        return [self._handle(row.node_id) for row in self.view() if row.is_primary]

    def replicas(self) -> list[ClusterNode]:
        """Nodes a live node's CLUSTER NODES flags slave."""
        return [self._handle(row.node_id) for row in self.view() if "slave" in row.flags]

    def slots_of(self, node: ClusterNode) -> frozenset[int]:
        """The slots `node` owns, per a live node."""
        return next((row.slots for row in self.view() if row.node_id == node.node_id), frozenset())

    def slot_owner_counts(self, keys: Iterable[str | bytes]) -> dict[str, int]:
        """How many of `keys` hash (CRC16, hash tags honoured) to each current primary's slots, by node id."""
        owner = {slot: row.node_id for row in self.view() if row.is_primary for slot in row.slots}
        counts = {node.node_id: 0 for node in self.primaries()}
        for key in keys:
            slot = key_slot(key.encode() if isinstance(key, str) else key)
            counts[owner[slot]] += 1
        return counts

    @property
    def url(self) -> str:
        """`redis+cluster://[:password@]host:port,…` (`rediss+cluster://…` with TLS) with the primaries after create
        (any node would do as a startup node; clients discover the rest), as the `limits` package parses it."""
        credentials = url_credentials(self.password)
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        return f"{scheme}://{credentials}" + ",".join(f"{HOST}:{node.port}" for node in self.initial_primaries)

    def client(self, **kwargs: Any) -> RedisCluster:
        """A redis-py RedisCluster started from the initial primaries (close it after use)."""
        return RedisCluster(
            startup_nodes=[RedisClusterAddress(HOST, node.port) for node in self.initial_primaries],
            password=self.password,
            socket_timeout=5,
            **{**(self.tls.client_options() if self.tls else {}), **kwargs},
        )

    # ---- waiting -----------------------------------------------------------------------------
    def _state_ok(self, node: ClusterNode) -> bool:
        info = self._cluster_info(node)
        return info.get("cluster_state") == "ok"

    def _cluster_info(self, node: ClusterNode) -> dict[str, str]:
        try:
            with node.client() as client:
                text = client.execute_command("CLUSTER", "INFO")
        except RedisError:
            return {}
        if isinstance(text, dict):
            return {str(key): str(value) for key, value in text.items()}
        return dict(line.split(":", 1) for line in str(text).splitlines() if ":" in line)

    def roles_agree(self) -> bool:
        """Every live node's CLUSTER NODES gives every node the same role. Right after `--cluster create`
        (and after failovers) some nodes still list replicas as masters for a while; `--cluster check`
        compares slots only and passes meanwhile."""
        try:
            views = {frozenset(row.role for row in self.view(node)) for node in self.nodes if node.running}
        except RedisError:
            return False
        return len(views) == 1

    def healthy(self) -> bool:
        """Every live node says cluster_state:ok and agrees on every node's role, and `--cluster check`
        passes (nodes agree on slots, all covered, none open)."""
        return (
            all(self._state_ok(node) for node in self.nodes if node.running)
            and self.roles_agree()
            and self.check_passes()
        )

    def wait_until_healthy(self, *, timeout: float = 30.0) -> None:
        """Poll `healthy`."""
        wait_until(self.healthy, timeout=timeout, interval=0.2, what="the cluster to be healthy")

    def _replicas_linked(self) -> bool:
        for node in self.replicas():
            info = node.info("replication")
            if not info or info.get("master_link_status") != "up":
                return False
        return True

    # ---- changes -----------------------------------------------------------------------------
    def reshard(self, slots: int, source: ClusterNode, target: ClusterNode) -> subprocess.Popen[bytes]:
        """Start `redis-cli --cluster reshard` moving `slots` slots (and their keys) from `source` to `target`.

        Returns the running process, so a test can put load on the cluster meanwhile; `wait_for_reshard` ends it.
        """
        entry = self._live_node()
        args = self._cli_args(
            "--cluster",
            "reshard",
            f"{HOST}:{entry.port}",
            "--cluster-from",
            source.node_id,
            "--cluster-to",
            target.node_id,
            "--cluster-slots",
            str(slots),
            "--cluster-yes",
        )
        log_path = self.workdir / "logs" / f"reshard-{len(self._reshards) + 1}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._reshards.append(process)
        return process

    def wait_for_reshard(self, process: subprocess.Popen[bytes], *, timeout: float = 60.0) -> float:
        """Wait for a `reshard` to exit 0, then for the cluster to be healthy; returns the seconds waited."""
        started = time.monotonic()
        returncode = process.wait(timeout=timeout)
        if returncode != 0:
            index = self._reshards.index(process) + 1
            log = (self.workdir / "logs" / f"reshard-{index}.log").read_text(errors="replace")
            raise RuntimeError(f"redis-cli --cluster reshard exited with {returncode}:\n{log[-3000:]}")
        self.wait_until_healthy(timeout=max(1.0, timeout - (time.monotonic() - started)))
        return time.monotonic() - started

    def failover(self, replica: ClusterNode, *, timeout: float = 30.0) -> float:
        """CLUSTER FAILOVER sent to `replica` (a coordinated manual failover); poll until it is a primary and the
        cluster is healthy. Returns the seconds it took."""
        started = time.monotonic()
        with replica.client() as client:
            client.execute_command("CLUSTER", "FAILOVER")

        def promoted() -> bool:
            try:
                me = next(row for row in self.view(replica) if "myself" in row.flags)
            except RedisError:
                return False
            return me.is_primary and self.healthy()

        wait_until(promoted, timeout=timeout, interval=0.1, what=f"{replica.name} to be promoted")
        return time.monotonic() - started

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one node (a primary's replica takes over after the node timeout)."""
        node.kill()

    def restart(self, node: ClusterNode, *, timeout: float = 30.0) -> None:
        """Start a stopped or killed node again (same port, nodes.conf and data); wait for a healthy cluster."""
        node.start()
        self.wait_until_healthy(timeout=timeout)
