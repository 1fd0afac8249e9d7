"""`escalator serve` as a process: one port with /healthz, /metrics, /slack/events and /api/messages."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT_CONFIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "MICROSOFT_")) and k != "REDIS_URL"}
    env["ESCALATOR_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen([sys.executable, "-m", "adapters.cli", "serve", "--config", str(PROJECT_CONFIG),
                             "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None:
                    raise AssertionError(proc.stdout.read() if proc.stdout else "server died") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_starts_without_credentials_or_redis_and_reports_health(server: str) -> None:
    with urllib.request.urlopen(f"{server}/healthz", timeout=5) as resp:
        assert resp.status == 200
        assert b'"status": "ok"' in resp.read()


def test_metrics_are_exposed_for_prometheus(server: str) -> None:
    with urllib.request.urlopen(f"{server}/metrics", timeout=5) as resp:
        body = resp.read().decode()
    assert "escalator_outbox_pending" in body and "escalator_commands_total" in body


def test_unsigned_slack_requests_are_refused(server: str) -> None:
    req = urllib.request.Request(f"{server}/slack/events", data=b"command=/escalate&text=x", method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code in (401, 503)


def test_serve_reports_readiness_with_redis_tasks_and_outbox_figures(server: str) -> None:
    with urllib.request.urlopen(f"{server}/readyz", timeout=5) as resp:
        assert resp.status == 200
        body = json.loads(resp.read())
    assert body["status"] == "ready" and body["redis"]["ok"] is True
    assert body["tasks"]["scheduler"] == "running"
    assert set(body["outbox"]) == {"slack", "teams"}
