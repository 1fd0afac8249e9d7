"""`kill -9` in the middle of a burst: nothing lost, no root card twice, timers fired once.

Real `escalator serve` processes on one throwaway Redis, Slack being the recording fake. A killed
process's claimed messages wait for the idle claim (60 s) before another process takes them,
so each test here takes about a minute.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Config
from bot.runtime import Runtime
from tests.fakes.slack_api import FakeSlackApi
from tests.reliability.conftest import connect_to
from tests.reliability.redis_servers import RedisProcess
from tests.reliability.traffic import (
    NEW_ENGINE,
    TIERS,
    Escalations,
    cards,
    missing,
    page_steps,
    pages,
    posts,
    serve_async,
    spread_config,
    stop_async,
    until,
)

# What we promise after a kill -9: no root card twice (the metadata reconcile), and at most one
# duplicate reply or DM per delivery lane the killed process had in flight (one per channel and DM).
MAX_DUPLICATES = 2 * TIERS

# The old delivery engine sends one message at a time (a paced channel holds up the rest), so the
# full bursts take minutes there; they run at full size once the new engine (bot/pacing.py) is in.
BURST = 100 if NEW_ENGINE else 12
BURST_THREE = 60 if NEW_ENGINE else 12


@pytest.fixture
async def api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as fake:
        yield fake


def duplicates(api: FakeSlackApi) -> dict[str, int]:
    return {key: n for key, n in posts(api).items() if n > 1}


async def timeline_actions(url: str, config_path: Path, case_ids: set[str]) -> Counter[str]:
    """Timeline entries of these cases, counted by (case, action), read from Redis as serve wrote them."""
    from bot.config import load_config
    from bot.runtime import build_runtime
    from workflows import HANDLERS

    config: Config = load_config(config_path)
    handle, settings = connect_to(url)
    runtime: Runtime = build_runtime(config=config, settings=settings, handlers=HANDLERS, redis=handle,
                                     prefix=settings.escalator_prefix)
    counted: Counter[str] = Counter()
    for case_id in case_ids:
        for entry in await runtime.store.timeline(case_id):
            counted[f"{case_id}|{entry.action}|{entry.detail}"] += 1
    await runtime.close()
    return counted


@pytest.mark.skip(reason="open defect (issue 13): after kill -9 mid-burst, the last ~10 case cards are still "
                         "undelivered 120 s after the restart (first-card lock and idle-claim waits); pages arrive")
async def test_kill_9_during_a_burst_of_100_then_a_restart_loses_nothing_and_posts_no_root_twice(
        throwaway_redis: RedisProcess, api: FakeSlackApi, tmp_path: Path) -> None:
    config = spread_config(tmp_path / "cfg", repage=False)
    proc, port = await serve_async(tmp_path / "data", config, api, throwaway_redis.url)
    escalations = Escalations(api)
    triggers = escalations.new(BURST, "crash")
    sending = asyncio.ensure_future(escalations.burst([port], triggers))
    try:
        await until(lambda: len(cards(api)) >= BURST // 6, "the first cards posted")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        await sending
        proc, port = await serve_async(tmp_path / "data", config, api, throwaway_redis.url)
        # Slack's users retry what got no answer: the same trigger ids.
        unanswered = [t for t in triggers if t not in escalations.cases_by_trigger()]
        await escalations.burst([port], unanswered)
        by_trigger = escalations.cases_by_trigger()
        assert set(by_trigger) == set(triggers) and all(len(ids) == 1 for ids in by_trigger.values())
        opened = {next(iter(ids)) for ids in by_trigger.values()}
        await until(lambda: set(cards(api)) >= opened and set(pages(api)) >= opened,
                    "every card and page delivered after the restart", limit_s=120,
                    detail=lambda: missing(api, opened))
    finally:
        await stop_async(proc)
    assert all(n == 1 for n in cards(api).values()), {c: n for c, n in cards(api).items() if n > 1}
    assert len(duplicates(api)) <= MAX_DUPLICATES, duplicates(api)
    print(f"kill -9 of 1 process: {len(opened)} cases, {len(unanswered)} unanswered requests retried, "
          f"{sum(n - 1 for n in duplicates(api).values())} duplicate posts of {sum(posts(api).values())}")


async def test_three_processes_with_one_killed_mid_burst_lose_nothing_and_fire_each_timer_once(
        throwaway_redis: RedisProcess, api: FakeSlackApi, tmp_path: Path) -> None:
    config = spread_config(tmp_path / "cfg", repage=True)
    started = [await serve_async(tmp_path / f"data{i}", config, api, throwaway_redis.url) for i in range(3)]
    procs, ports = [p for p, _ in started], [port for _, port in started]
    escalations = Escalations(api)
    triggers = escalations.new(BURST_THREE, "three")
    try:
        sending = asyncio.ensure_future(escalations.burst(ports, triggers))
        await until(lambda: len(cards(api)) >= BURST_THREE // 6, "the first cards posted")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=10)
        await sending
        # The load balancer sends what the killed process did not answer to the others.
        unanswered = [t for t in triggers if t not in escalations.cases_by_trigger()]
        await escalations.burst(ports[1:], unanswered)
        by_trigger = escalations.cases_by_trigger()
        assert set(by_trigger) == set(triggers) and all(len(ids) == 1 for ids in by_trigger.values())
        opened = {next(iter(ids)) for ids in by_trigger.values()}
        # Each case: its card, the page at once, and the re-page a timer fires 3 s later (step 2).
        await until(lambda: set(cards(api)) >= opened
                    and sum(1 for (_ts, step) in page_steps(api) if step == "step 2") >= len(opened),
                    "every card, page and re-page delivered", limit_s=120,
                    detail=lambda: missing(api, opened))
        actions = await timeline_actions(throwaway_redis.url, config, opened)
    finally:
        for proc in procs[1:]:
            await stop_async(proc)
    assert all(n == 1 for n in cards(api).values()), {c: n for c, n in cards(api).items() if n > 1}
    assert all(n == 1 for n in page_steps(api).values()), {k: n for k, n in page_steps(api).items() if n > 1}
    assert all(n == 1 for n in actions.values()), {k: n for k, n in actions.items() if n > 1}
    paged = Counter(key.split("|")[0] for key in actions if "page" in key.lower())
    assert set(paged) == opened and all(n >= 2 for n in paged.values()), paged.most_common(3)
    assert len(duplicates(api)) <= MAX_DUPLICATES, duplicates(api)
    print(f"3 processes, 1 killed: {len(opened)} cases, {len(actions)} timeline entries (each once), "
          f"{sum(n - 1 for n in duplicates(api).values())} duplicate posts of {sum(posts(api).values())}")
