"""Real Redis topologies on loopback for the reliability tests: one server, a 3-master Cluster, Sentinel.

They use the system's `redis-server` and `redis-cli` (Debian's `redis-server` / `redis-tools`;
`.ci/run` installs them), each in its own temporary folder, with no persistence.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def need_redis_binaries() -> None:
    if not (os.path.exists(REDIS_SERVER) and os.path.exists(REDIS_CLI)):
        pytest.skip("redis-server/redis-cli not installed (apt-get install redis-server redis-tools)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int, *, bus: bool = False) -> list[int]:
    """`n` free ports; with `bus`, port+10000 (the cluster bus) is free too."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port in ports or (bus and (port + 10000 > 65535 or not _free(port + 10000))):
            continue
        ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cli(port: int, *args: str, timeout: float = 10) -> str:
    out = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                         text=True, timeout=timeout)
    return out.stdout.strip()


def wait_until(predicate, what: str, limit_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


@dataclass
class RedisProcess:
    """One redis-server on a loopback port, which a test can stop and start again."""

    folder: Path
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--logfile", str(self.folder / f"redis-{self.port}.log"), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: cli(self.port, "PING") == "PONG", f"redis on {self.port}")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


@contextlib.contextmanager
def cluster(folder: Path, masters: int = 3) -> Iterator[str]:
    """A `masters`-node Redis Cluster (no replicas); yields the URL of its first node."""
    need_redis_binaries()
    nodes = [RedisProcess(folder / f"node{i}", port=p,
                          args=("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{p}.conf",
                                "--cluster-node-timeout", "2000"))
             for i, p in enumerate(free_ports(masters, bus=True))]
    try:
        for node in nodes:
            node.start()
        subprocess.run([REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        for node in nodes:
            wait_until(lambda n=node: "cluster_state:ok" in cli(n.port, "CLUSTER", "INFO"), "cluster state ok")
        yield nodes[0].url
    finally:
        for node in nodes:
            node.stop()


@dataclass
class SentinelSetup:
    primary: RedisProcess
    replica: RedisProcess
    sentinel_ports: list[int]
    master: str = "mymaster"

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def master_port(self) -> int:
        return int(cli(self.sentinel_ports[0], "SENTINEL", "get-master-addr-by-name", self.master).split()[-1])

    def failover(self) -> None:
        """Force a failover and wait until every sentinel names the new primary."""
        old = self.master_port()
        assert cli(self.sentinel_ports[0], "SENTINEL", "FAILOVER", self.master) == "OK"
        for port in self.sentinel_ports:
            wait_until(lambda p=port: int(cli(p, "SENTINEL", "get-master-addr-by-name", self.master)
                                          .split()[-1]) != old, "the failover")


@contextlib.contextmanager
def sentinel(folder: Path) -> Iterator[SentinelSetup]:
    """A primary, one replica and three sentinels watching them as `mymaster`."""
    need_redis_binaries()
    primary = RedisProcess(folder / "primary")
    replica = RedisProcess(folder / "replica", args=("--replicaof", "127.0.0.1", str(primary.port)))
    ports = free_ports(3)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        primary.start()
        replica.start()
        wait_until(lambda: "master_link_status:up" in cli(replica.port, "INFO", "replication"), "replication")
        for port in ports:
            conf = folder / f"sentinel-{port}.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                            f"sentinel monitor mymaster 127.0.0.1 {primary.port} 2\n"
                            "sentinel down-after-milliseconds mymaster 2000\n"
                            "sentinel failover-timeout mymaster 10000\n")
            procs.append(subprocess.Popen([REDIS_SERVER, str(conf), "--sentinel", "--logfile",
                                           str(folder / f"sentinel-{port}.log")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        setup = SentinelSetup(primary, replica, ports)
        for port in ports:
            wait_until(lambda p=port: "slaves=1" in cli(p, "INFO", "sentinel")
                       and "sentinels=3" in cli(p, "INFO", "sentinel"), "sentinels to see each other")
        yield setup
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
        replica.stop()
        primary.stop()
