"""A private Redis Cluster for the tests: 3 masters and 3 replicas of Debian's
redis-server on free 127.0.0.1 ports, joined by `redis-cli --cluster create`, with a short
`cluster-node-timeout` so that a killed master's replica takes over within seconds, and
started only once every replica holds its master's data.

A missing redis-server or redis-cli follows the rule of tests/support/system_tools.py.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .ports import HeldPort
from .redis_server import RedisServer
from .system_tools import REDIS_CLI, REDIS_SERVER, require

# How long a master may be silent before the others fail it over, in ms.
NODE_TIMEOUT_MS = 1000


def require_redis_cluster_tools() -> None:
    require(REDIS_SERVER, REDIS_CLI)


class ClusterNode(RedisServer):
    """One node: a RedisServer started with cluster mode on."""

    def __init__(self) -> None:
        super().__init__()
        self._bus = HeldPort()  # cluster traffic between nodes; held as the port is
        self.bus_port = self._bus.port
        self.url = f"redis://127.0.0.1:{self.port}"

    def extra_args(self) -> list[str]:
        return ["--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
                "--cluster-config-file", str(Path(self._dir.name) / "nodes.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--cluster-replica-validity-factor", "0",
                "--cluster-require-full-coverage", "no",
                "--cluster-allow-reads-when-down", "no",
                # A replica's first sync at once: Redis waits 5 s by default for more
                # replicas to share a diskless transfer, and a master killed meanwhile
                # fails over to a replica that holds nothing.
                "--repl-diskless-sync-delay", "0"]

    def close(self) -> None:
        super().close()
        self._bus.close()

    def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye to the cluster."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def info(self, section: str) -> dict[str, str]:
        reply = self.command(b"INFO", section.encode()) or b""
        return dict(line.split(":", 1) for line in reply.decode().splitlines()
                    if ":" in line and not line.startswith(("$", "#")))

    def node_id(self) -> bytes:
        reply = self.command(b"CLUSTER", b"MYID") or b""
        return _bulk_strings(reply)[0]

    def keys_in_slot(self, slot: int, count: int) -> list[bytes]:
        reply = self.command(b"CLUSTER", b"GETKEYSINSLOT", b"%d" % slot, b"%d" % count)
        return _bulk_strings(reply or b"")

    def cluster_info(self) -> dict[str, str]:
        reply = self.command(b"CLUSTER", b"INFO") or b""
        return dict(line.split(":", 1) for line in reply.decode().splitlines()
                    if ":" in line and not line.startswith("$"))


class RedisCluster:
    def __init__(self, masters: int = 3, replicas: int = 1) -> None:
        self.nodes = [ClusterNode() for _ in range(masters * (1 + replicas))]
        self._masters = masters
        self._replicas = replicas
        self.url = "redis+cluster://" + ",".join(
            f"127.0.0.1:{node.port}" for node in self.nodes[:masters])

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [REDIS_CLI.path, "--cluster", "create",
             *(f"127.0.0.1:{node.port}" for node in self.nodes),
             "--cluster-replicas", str(self._replicas), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout,
        )
        self.wait_ok(timeout)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every running node says the cluster is ok and every replica's link to its
        master is up (its first sync done): only then does a failover keep the data."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [node for node in self.nodes if node.running]
            if all(node.cluster_info().get("cluster_state") == "ok" for node in running) \
                    and all(self._synced(node) for node in running):
                return
            time.sleep(0.05)
        raise TimeoutError("the cluster did not become ok")

    @staticmethod
    def _synced(node: ClusterNode) -> bool:
        replication = node.info("replication")
        return (replication.get("role") != "slave"
                or replication.get("master_link_status") == "up")

    def masters(self) -> list[ClusterNode]:
        return [node for node in self.nodes
                if node.running and node.info("replication").get("role") == "master"]

    def flush(self) -> None:
        for node in self.masters():
            assert node.command(b"FLUSHALL") == b"+OK\r\n"

    def master_of(self, key: bytes) -> ClusterNode:
        """The master serving `key`: the one that does not answer MOVED."""
        for node in self.masters():
            reply = node.command(b"EXISTS", key)
            if reply is not None and not reply.startswith(b"-MOVED"):
                return node
        raise LookupError(f"no master serves {key!r}")

    def move_slot(self, slot: int, source: ClusterNode, target: ClusterNode,
                  pause: float) -> int:
        """Move `slot` from `source` to `target` as `redis-cli --cluster reshard` does
        (SETSLOT IMPORTING and MIGRATING, MIGRATE, then SETSLOT NODE everywhere), one key
        at a time with `pause` seconds after each, so that clients meet the slot half
        moved (ASK, TRYAGAIN) and then moved (MOVED). Returns the keys moved."""
        source_id, target_id = source.node_id(), target.node_id()
        number = b"%d" % slot
        for node, state, other in ((target, b"IMPORTING", source_id),
                                   (source, b"MIGRATING", target_id)):
            reply = node.command(b"CLUSTER", b"SETSLOT", number, state, other)
            assert reply == b"+OK\r\n", reply
        moved = 0
        while keys := source.keys_in_slot(slot, 1):
            reply = source.command(b"MIGRATE", b"127.0.0.1", b"%d" % target.port, b"", b"0",
                                   b"5000", b"KEYS", *keys)
            assert reply in (b"+OK\r\n", b"+NOKEY\r\n"), reply
            moved += len(keys)
            time.sleep(pause)
        for node in (target, source, *(n for n in self.masters()
                                        if n is not target and n is not source)):
            reply = node.command(b"CLUSTER", b"SETSLOT", number, b"NODE", target_id)
            assert reply == b"+OK\r\n", reply
        return moved

    def close(self) -> None:
        """Every node stopped at once (each waits for its process to exit)."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(ClusterNode.close, self.nodes))


def _bulk_strings(reply: bytes) -> list[bytes]:
    """The strings of a RESP reply that is one bulk string or an array of them."""
    lines = reply.split(b"\r\n")
    if lines[0].startswith(b"$"):
        return [lines[1]]
    assert lines[0].startswith(b"*"), reply
    return [lines[2 + 2 * i] for i in range(int(lines[0][1:]))]
