"""How fast does Escalator ack a signed Slack `/escalate`? Next to a bare Bolt app, in the same run.

    .venv/bin/python bench/slack_ack.py [--requests 1000] [--concurrency 10]

A child process serves two aiohttp servers on loopback: the real Escalator web app (Bolt
`AsyncApp` with signature checks, the grammar, routing, the atomic Redis commit with its
outbox messages and timers, the ephemeral ack) and a bare Bolt `AsyncApp` whose /escalate
listener only acks. This process plays Slack: it signs every request like Slack does (fresh
`trigger_id` each, so nothing is deduplicated away) and measures ack latency (p50, p99) and
throughput, first one request at a time, then 10 in flight, over keep-alive connections with
a minimal HTTP client so the client adds as little as possible. The Web API is the local
recording fake (Bolt's one `auth.test`). Redis is REDIS_URL (default redis://127.0.0.1:6379/0),
under a throwaway key prefix that is deleted afterwards. Delivery workers do not run: this
measures the acknowledgement path only. Loopback only; a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
PROJECT_CONFIG = ROOT / "escalator.yaml"
GOALS = {"p50_ms": 2.0, "p99_ms": 10.0, "per_s": 1000.0}


# ---- the servers (child process) ------------------------------------------------------------


def serve(api_url: str, redis_url: str, prefix: str, config_path: str, ports: Any, ready: Any,
          stop: Any, breakdown: Any) -> None:
    """Child process: the Escalator app and a bare Bolt app on two loopback ports."""
    asyncio.run(_serve(api_url, redis_url, prefix, config_path, ports, ready, stop, breakdown))


async def _serve(api_url: str, redis_url: str, prefix: str, config_path: str, ports: Any, ready: Any,
                 stop: Any, breakdown: Any) -> None:
    import logging

    import redis.asyncio as aioredis
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.app import build_slack_adapter
    from adapters.web import build_web_app
    from bot.config import load_config
    from bot.redis_server import RedisHandle
    from bot.runtime import build_runtime
    from bot.settings import Settings
    from workflows import HANDLERS

    logging.disable(logging.WARNING)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    settings = Settings(slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_app_token=None,
                        slack_api_url=api_url)
    runtime = build_runtime(config=load_config(config_path), settings=settings, handlers=HANDLERS,
                            redis=RedisHandle(aioredis.Redis.from_url(redis_url), where="bench"), prefix=prefix)
    adapter = build_slack_adapter(runtime)
    full = build_web_app(runtime, [adapter], background=False)

    bare_bolt = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=api_url), signing_secret=SECRET,
                         process_before_response=True, name="bare")

    @bare_bolt.command("/escalate")
    async def just_ack(ack: Any) -> None:
        await ack()

    async def bare_handler(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bare_bolt.async_dispatch(await to_bolt_request(request)))

    bare = web.Application()
    bare.router.add_post("/slack/events", bare_handler)
    assert adapter.bolt is not None
    breakdown.update(await _in_process(runtime, adapter.bolt, bare_bolt))

    runners = []
    for app in (full, bare):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.05)
    for runner in runners:
        await runner.cleanup()
    await runtime.close()


async def _in_process(runtime: Any, bolt: Any, bare_bolt: Any, n: int = 500) -> dict[str, float]:
    """Where the time goes without HTTP: the core command alone, and each Bolt app's dispatch."""
    from slack_bolt.request.async_request import AsyncBoltRequest

    from bot.model import Actor
    from workflows.grammar import parse

    def bolt_request(text: str) -> AsyncBoltRequest:
        raw = signed_request(0, text)
        head, body = raw.split(b"\r\n\r\n", 1)
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        return AsyncBoltRequest(body=body.decode(), headers={k.lower(): v for k, v in headers.items()})

    text = "L2 sev2 customer:globex checkout fails for EU cards"
    out: dict[str, float] = {}
    for _ in range(200):
        await bolt.async_dispatch(bolt_request(text))
        await bare_bolt.async_dispatch(bolt_request(text))
    commands = [parse(text, verb="escalate", actor=Actor(person="alice", platform="slack", name="Alice"),
                      config=runtime.config, key=uuid.uuid4().hex) for _ in range(n)]
    started = time.perf_counter()
    for command in commands:
        await runtime.bus.handle(command)
    out["core"] = (time.perf_counter() - started) / n * 1000
    # The adapter's own share: the same dispatch with the core answered by a canned reply.
    real_handle = runtime.bus.handle
    canned = await real_handle(parse(text, verb="escalate", actor=Actor(name="x"), config=runtime.config))

    async def answer(command: Any) -> Any:
        return canned

    runtime.bus.handle = answer
    try:
        for name, app in (("adapter", bolt), ("bare", bare_bolt)):
            requests = [bolt_request(text) for _ in range(n)]
            started = time.perf_counter()
            for request in requests:
                await app.async_dispatch(request)
            out[name] = (time.perf_counter() - started) / n * 1000
    finally:
        runtime.bus.handle = real_handle
    started = time.perf_counter()
    for _ in range(n):
        await runtime.store.redis.ping()
    out["redis_rtt"] = (time.perf_counter() - started) / n * 1000
    return out


# ---- the caller (this process) ---------------------------------------------------------------


def signed_request(port: int, text: str) -> bytes:
    """One /escalate as Slack would send it, as raw HTTP/1.1 bytes."""
    from slack_sdk.signature import SignatureVerifier

    body = urlencode({
        "token": "legacy", "team_id": "T0ACME", "team_domain": "acme", "channel_id": "C0SUPPORT",
        "channel_name": "support", "user_id": "U0ALICE", "user_name": "alice", "command": "/escalate",
        "text": text, "api_app_id": "A0ESC", "response_url": "http://127.0.0.1:9/none",
        "trigger_id": f"{uuid.uuid4().hex}.bench"})
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    head = (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {signature}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body.encode()


class Connection:
    """A keep-alive HTTP/1.1 connection that sends prepared requests and reads whole responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


@dataclass
class Result:
    name: str
    mode: str
    latencies_ms: list[float]
    seconds: float

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    @property
    def per_s(self) -> float:
        return len(self.latencies_ms) / self.seconds


async def run(port: int, requests: list[bytes], concurrency: int, *, check: bytes | None) -> tuple[list[float], float]:
    """Send `requests` with `concurrency` connections, each one request at a time."""
    connections = [await Connection.open(port) for _ in range(concurrency)]
    latencies: list[float] = []
    queue = iter(requests)
    failures: list[str] = []

    async def worker(conn: Connection) -> None:
        for request in queue:
            started = time.perf_counter()
            status, body = await conn.send(request)
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200 or (check is not None and check not in body):
                failures.append(f"{status} {body[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for conn in connections:
        await conn.close()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return latencies, elapsed


async def bench(n: int, concurrency: int) -> int:
    from tests.fakes.slack_api import FakeSlackApi

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    config = os.environ.get("ESCALATOR_BENCH_CONFIG", str(PROJECT_CONFIG))
    async with FakeSlackApi() as api:
        ctx = mp.get_context("spawn")
        manager = ctx.Manager()
        ports, ready, stop, breakdown = manager.list(), manager.Event(), manager.Event(), manager.dict()
        child = ctx.Process(target=serve, args=(api.url, redis_url, prefix, config, ports, ready, stop, breakdown),
                            daemon=True)
        child.start()
        try:
            await asyncio.get_running_loop().run_in_executor(None, ready.wait, 60)
            if len(ports) != 2:
                raise SystemExit("the servers did not start")
            full_port, bare_port = ports[0], ports[1]
            results = []
            for name, port, check in (("escalator /escalate", full_port, b"Opened ESC-"),
                                      ("bare Bolt ack", bare_port, None)):
                text = "L2 sev2 customer:globex checkout fails for EU cards"
                await run(port, [signed_request(port, text) for _ in range(200)], concurrency, check=check)  # warm up
                for mode, conc in (("sequential", 1), (f"{concurrency} in flight", concurrency)):
                    requests = [signed_request(port, text) for _ in range(n)]
                    latencies, seconds = await run(port, requests, conc, check=check)
                    results.append(Result(name, mode, latencies, seconds))
        finally:
            stop.set()
            child.join(10)
            await _cleanup(redis_url, prefix)
    report(results, n, api.methods(), dict(breakdown))
    return 0


async def _cleanup(redis_url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    keys = [k async for k in client.scan_iter(match="{" + prefix + "}*", count=1000)]
    for i in range(0, len(keys), 500):
        await client.delete(*keys[i:i + 500])
    await client.aclose()


def report(results: list[Result], n: int, api_methods: list[str], breakdown: dict[str, float]) -> None:
    print(f"Slack ack benchmark: {n} signed requests per run, loopback, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; Web API calls during the run: {sorted(set(api_methods))}")
    print(f"{'target':22} {'mode':14} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9}")
    for r in results:
        print(f"{r.name:22} {r.mode:14} {r.p50:8.3f} {r.p99:8.3f} {r.per_s:9.0f}")
    print()
    by = {(r.name, r.mode): r for r in results}
    for mode in dict.fromkeys(r.mode for r in results):
        full, bare = by[("escalator /escalate", mode)], by[("bare Bolt ack", mode)]
        print(f"{mode:14} escalator/bare: p50 x{full.p50 / bare.p50:.2f}, p99 x{full.p99 / bare.p99:.2f}, "
              f"throughput x{full.per_s / bare.per_s:.2f}")
    if breakdown:
        print()
        print("in-process, no HTTP, mean per /escalate:")
        print(f"  core bus.handle(OpenCase)                {breakdown['core']:.3f} ms "
              f"(one Redis round trip: {breakdown['redis_rtt']:.3f} ms)")
        print(f"  Bolt + Slack adapter, core answered     {breakdown['adapter']:.3f} ms "
              "(verify, parse, ack body)")
        print(f"  bare Bolt dispatch                       {breakdown['bare']:.3f} ms")
    seq = by[("escalator /escalate", "sequential")]
    best = max(r.per_s for r in results if r.name == "escalator /escalate")
    print()
    print(f"goals: p50 <= {GOALS['p50_ms']} ms: {seq.p50:.3f} {'ok' if seq.p50 <= GOALS['p50_ms'] else 'MISSED'}; "
          f"p99 <= {GOALS['p99_ms']} ms: {seq.p99:.3f} {'ok' if seq.p99 <= GOALS['p99_ms'] else 'MISSED'}; "
          f">= {GOALS['per_s']:.0f}/s: {best:.0f} {'ok' if best >= GOALS['per_s'] else 'MISSED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per measured run")
    parser.add_argument("--concurrency", type=int, default=10, help="requests in flight in the second run")
    args = parser.parse_args()
    return asyncio.run(bench(args.requests, args.concurrency))


if __name__ == "__main__":
    raise SystemExit(main())
