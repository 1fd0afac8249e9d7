"""Escalations per second with 1 and 2 `escalator serve` processes on one Redis, and a 500-request burst.

    .venv/bin/python bench/scale.py [--requests 1000] [--concurrency 50] [--burst 500]

Each run starts real `escalator serve` processes (REDIS_URL: a throwaway redis-server on a free
loopback port; SLACK_API_URL: the recording fake Web API in this process) and plays Slack: signed
`/escalate` requests over HTTP, each with a fresh trigger id, spread round-robin over the
processes as a load balancer would. Delivery workers run too (they share the cores). This
process is the load generator, so on a 2-core machine it competes with the servers: the ratio is
what two processes give on the cores there are, not a clean per-core figure. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.slack_api import FakeSlackApi  # noqa: E402
from tests.reliability.redis_servers import RedisProcess  # noqa: E402
from tests.reliability.traffic import Answer, Escalations, serve_async, spread_config, stop_async  # noqa: E402


async def throughput(api: FakeSlackApi, ports: list[int], requests: int, concurrency: int) -> tuple[float, int]:
    """Escalations per second at `concurrency` in flight; and how many did not open a case."""
    import aiohttp

    escalations = Escalations(api)
    triggers = escalations.new(requests, f"tp{len(ports)}")
    queue = list(enumerate(triggers))

    async def client(session: aiohttp.ClientSession) -> None:
        while queue:
            i, trigger = queue.pop()
            await escalations.send(session, ports[i % len(ports)], trigger)

    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    return requests / elapsed, sum(1 for a in escalations.answers if not a.case_id)


async def run_with(processes: int, args: argparse.Namespace, folder: Path) -> dict[str, object]:
    redis = RedisProcess(folder / f"redis{processes}").start()
    async with FakeSlackApi() as api:
        config = spread_config(folder / f"cfg{processes}", repage=False)
        started = [await serve_async(folder / f"data{processes}-{i}", config, api, redis.url)
                   for i in range(processes)]
        ports = [port for _, port in started]
        try:
            await throughput(api, ports, 100, args.concurrency)  # warm up (imports, connections)
            per_s, failed = await throughput(api, ports, args.requests, args.concurrency)
            result: dict[str, object] = {"per_s": per_s, "failed": failed}
            if processes == 1:
                result.update(await burst(api, ports, args.burst))
            return result
        finally:
            for proc, _ in started:
                await stop_async(proc)
            redis.stop()


async def burst(api: FakeSlackApi, ports: list[int], size: int) -> dict[str, object]:
    """`size` requests at once; the busy ones retried (same trigger ids) until each has its case."""
    escalations = Escalations(api)
    triggers = escalations.new(size, "burst")
    first: list[Answer] = await escalations.burst(ports, triggers, timeout=3)
    waiting, rounds = [a.trigger for a in first if a.busy], 0
    while waiting and rounds < 10:
        rounds += 1
        waiting = [a.trigger for a in await escalations.burst(ports, waiting, timeout=3) if a.busy]
    by_trigger = escalations.cases_by_trigger()
    opened = [a for a in first if a.case_id]
    latencies = sorted(a.seconds for a in opened) or [0.0]
    return {
        "burst_cases_first": len(opened),
        "burst_busy_first": sum(1 for a in first if a.busy),
        "burst_other": sum(1 for a in first if not (a.case_id or a.busy)),
        "burst_retry_rounds": rounds,
        "burst_cases_in_the_end": len(by_trigger),
        "burst_duplicates": sum(len(ids) - 1 for ids in by_trigger.values()),
        "burst_p50_s": statistics.median(latencies),
        "burst_max_s": max(a.seconds for a in first),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--burst", type=int, default=500)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="escalator-scale-"))
    try:
        one = await run_with(1, args, folder)
        two = await run_with(2, args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    cores = len(os.sched_getaffinity(0))
    print(f"\nescalations per second, {args.requests} signed /escalate over HTTP, {args.concurrency} in flight, "
          f"{cores} cores (load generator included)")
    print(f"{'processes':>10} {'per second':>11} {'not opened':>11}")
    for n, result in ((1, one), (2, two)):
        print(f"{n:>10} {float(result['per_s']):>11.0f} {result['failed']:>11}")  # type: ignore[arg-type]
    print(f"ratio 2/1: {float(two['per_s']) / float(one['per_s']):.2f}")  # type: ignore[arg-type]
    print(f"\nburst of {args.burst} at once against 1 process (Slack's 3 s as the client timeout)")
    for key, value in one.items():
        if key.startswith("burst_"):
            shown = f"{value:.2f}" if isinstance(value, float) else str(value)
            print(f"  {key.removeprefix('burst_').replace('_', ' '):<22} {shown}")


if __name__ == "__main__":
    asyncio.run(main())
