"""Outgrowing one Redis: a real 3-master Cluster and a Sentinel failover, through the real runtime.

The whole workflow suite also runs against a Cluster with `ESCALATOR_TEST_REDIS=cluster` (`.ci/run`
does); these tests cover what only a cluster or a failover shows.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.config import Config
from tests.reliability.conftest import connect_to, runtime_on
from tests.reliability.helpers import RecordingTransport, open_case, pool_waits
from tests.reliability.redis_servers import cli, sentinel


def other_node(url: str) -> str:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    nodes = cli(port, "CLUSTER", "NODES").splitlines()
    other = next(line.split()[1].split("@")[0] for line in nodes if "myself" not in line)
    return f"redis://{other}/0"


async def test_a_redis_url_naming_any_cluster_node_gets_the_cluster_client(cluster_url: str) -> None:
    handle, _ = connect_to(other_node(cluster_url))
    assert handle.mode == "cluster"
    # Keys of three deployments hash to different slots, so to different masters: a plain client gets MOVED.
    for prefix in ("acme", "globex", "initech"):
        await handle.client.set("{" + prefix + "}:probe", prefix)
        assert await handle.client.get("{" + prefix + "}:probe") == prefix.encode()
    await handle.close()


async def test_redis_cluster_1_forces_the_cluster_client(cluster_url: str) -> None:
    handle, _ = connect_to(cluster_url, redis_cluster=True)
    assert handle.mode == "cluster" and await handle.client.ping()
    await handle.close()


async def burst_of_slow_calls(client: Any, n: int = 12) -> list[Any]:
    """`n` calls at once that each hold a connection for 0.2 s (keys of one deployment: one slot)."""
    return list(await asyncio.gather(*(client.blpop(["{burst}:nothing-" + str(i)], timeout=0.2) for i in range(n))))


async def test_a_burst_past_the_cluster_pool_waits_instead_of_failing(cluster_url: str) -> None:
    handle, _ = connect_to(cluster_url, redis_max_connections=3)
    waits_before = pool_waits()
    assert await burst_of_slow_calls(handle.client) == [None] * 12
    assert pool_waits() - waits_before >= 9
    pipe = handle.client.pipeline(transaction=True)
    pipe.set("{burst}:a", 1)
    pipe.incr("{burst}:a")
    assert await pipe.execute() == [True, 2]
    await handle.close()


async def test_two_deployments_open_deliver_and_fire_timers_on_one_cluster(
        cluster_url: str, project_config: Config) -> None:
    handle, settings = connect_to(cluster_url)
    for _ in range(2):  # two prefixes: two hash tags, likely on two masters
        runtime = runtime_on(handle, project_config, settings)
        case_id = await open_case(runtime, "cluster smoke")
        transport = RecordingTransport()
        delivered = await runtime.worker(transport).drain()
        assert delivered >= 1 and any(m.notice.case_id == case_id for m in transport.sent)
        assert await runtime.outbox.pending("slack") == 0
        case = await runtime.store.get_case(case_id)
        assert case is not None and case.title == "cluster smoke"
        timers = await runtime.scheduler.pending()
        assert timers, "opening a case schedules its SLA and paging timers"
        assert await runtime.scheduler.run_due() >= 0
    await handle.close()


async def test_a_sentinel_failover_during_a_stream_of_new_cases_loses_none(
        tmp_path: Path, project_config: Config) -> None:
    with sentinel(tmp_path) as setup:
        handle, settings = connect_to(None, redis_sentinels=setup.sentinels, redis_sentinel_master=setup.master)
        assert handle.mode == "sentinel"
        small, _ = connect_to(None, redis_sentinels=setup.sentinels, redis_max_connections=3)
        waits_before = pool_waits()
        assert await burst_of_slow_calls(small.client) == [None] * 12, "a burst waits for a connection"
        assert pool_waits() - waits_before >= 9
        await small.close()
        runtime = runtime_on(handle, project_config, settings)
        opened: list[str] = []
        before = setup.master_port()
        switched = asyncio.Event()

        async def stream() -> None:
            """New cases without pause from before the failover until 50 after it completed."""
            after = 0
            while after < 50:
                opened.append(await open_case(runtime, f"case {len(opened)}"))
                after += switched.is_set()
                await asyncio.sleep(0.005)

        task = asyncio.create_task(stream())
        while len(opened) < 30:
            await asyncio.sleep(0.05)
        during = len(opened)
        await asyncio.to_thread(setup.failover)
        switched.set()
        await task
        assert setup.master_port() != before
        assert len(opened) - during > 50, "cases were opened during the failover"
        assert len(set(opened)) == len(opened)
        lost = [case_id for case_id in opened if await runtime.store.get_case(case_id) is None]
        assert lost == []
        await handle.close()
