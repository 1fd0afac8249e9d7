"""`escalator serve` as a child process, as an operator or an orchestrator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import PROJECT_CONFIG
from tests.reliability.redis_servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment without chat credentials or REDIS_URL (embedded Redis in `data_dir`) plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "MICROSOFT_", "REDIS_", "ESCALATOR_"))}
    env["ESCALATOR_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def serve_command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "adapters.cli", "serve", "--config", str(PROJECT_CONFIG), "--port", str(port),
            *extra]


def start_serve(data_dir: Path, *extra: str, log: Path | None = None,
                **env: str) -> tuple[subprocess.Popen[str], int]:
    """Start serve on a free port and wait until /healthz answers; returns the process and port.

    Its output is a pipe to read after it exits, or the file `log` for a long run: a full pipe
    nobody reads would stop the process at its next log line.
    """
    port = free_port()
    output: Any = subprocess.PIPE
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        output = log.open("a")
    proc = subprocess.Popen(serve_command(port, *extra), env=serve_env(data_dir, **env), cwd=ROOT,
                            stdout=output, stderr=subprocess.STDOUT, text=True)
    if log is not None:
        output.close()  # the child has its own copy
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
                return proc, port
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None:
                    said = proc.stdout.read() if proc.stdout else log.read_text() if log else ""
                    raise AssertionError(said or "serve died") from None
                time.sleep(0.1)
        raise AssertionError("serve did not answer /healthz")
    except BaseException:
        stop(proc)  # never leave a server (and its embedded Redis) behind a failed test
        raise


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (serve stops its embedded Redis), then SIGKILL if it has not gone within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def listening_addresses(port: int) -> set[str]:
    """Local addresses (a.b.c.d) with a socket listening on `port`, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _remote, state = line.split()[1:4]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def redis_servers_in(folder: Path) -> list[int]:
    """Pids of redis-server processes working in `folder` (the embedded Redis runs in its data dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if "redis-server" in (proc / "cmdline").read_bytes().decode(errors="replace") \
                    and (proc / "cwd").resolve() == folder.resolve() \
                    and not (proc / "stat").read_text().split(") ", 1)[-1].startswith("Z"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids
