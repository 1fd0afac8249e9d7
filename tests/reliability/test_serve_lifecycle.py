"""Starting and stopping `escalator serve`: loopback by default, fail fast and clearly, stop cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

from tests.reliability.redis_servers import free_port
from tests.reliability.serve_process import (
    ROOT,
    listening_addresses,
    redis_servers_in,
    serve_command,
    serve_env,
    start_serve,
    stop,
)


def test_serve_without_host_listens_on_loopback_only(tmp_path: Path) -> None:
    proc, port = start_serve(tmp_path / "data")
    try:
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        stop(proc)


def test_host_0_0_0_0_is_an_explicit_choice(tmp_path: Path) -> None:
    proc, port = start_serve(tmp_path / "data", "--host", "0.0.0.0")
    try:
        assert listening_addresses(port) == {"0.0.0.0"}
    finally:
        stop(proc)


def test_an_unreachable_redis_url_stops_serve_at_once_with_one_line_naming_it(tmp_path: Path) -> None:
    closed_port = free_port()
    out = subprocess.run(serve_command(free_port()), cwd=ROOT, capture_output=True, text=True, timeout=30,
                         env=serve_env(tmp_path / "data", REDIS_URL=f"redis://127.0.0.1:{closed_port}/0"))
    assert out.returncode != 0
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"REDIS_URL=redis://127.0.0.1:{closed_port}/0" in lines[0] and "Connection refused" in lines[0]
    assert "serving" not in lines[0]


def test_a_busy_port_stops_serve_with_one_line_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(serve_command(port), cwd=ROOT, capture_output=True, text=True, timeout=30,
                             env=serve_env(tmp_path / "data"))
    assert out.returncode != 0
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"port {port}" in lines[0] and "already in use" in lines[0]
    assert not redis_servers_in(tmp_path / "data"), "no embedded Redis may be left behind"


def test_sigterm_stops_serve_and_its_embedded_redis_quietly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, _port = start_serve(data)
    assert redis_servers_in(data), "the embedded Redis runs in the data dir"
    proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("serve did not exit within 15 s of SIGTERM") from None
    assert proc.returncode == 0, output
    assert not redis_servers_in(data), "the embedded redis-server outlived serve"
    assert "shutdown failed" not in output.lower() and "Traceback" not in output, output


def test_ctrl_c_stops_serve_like_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, _port = start_serve(data)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, output
    assert not redis_servers_in(data)
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "shutdown failed" not in output.lower(), output
