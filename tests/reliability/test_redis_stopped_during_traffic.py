"""Redis stopped for 10 s while Slack commands keep coming: quick clear answers, not ready, then all resumes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.slack_api import FakeSlackApi
from tests.reliability.redis_servers import RedisProcess, need_redis_binaries
from tests.reliability.traffic import (
    BUSY,
    Escalations,
    cards,
    missing,
    pages,
    serve_async,
    spread_config,
    stop_async,
    until,
)

OUTAGE_S = 10


@pytest.fixture
async def api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as fake:
        yield fake


async def readyz(port: int) -> int:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{port}/readyz", timeout=aiohttp.ClientTimeout(total=3)) as response:
        return response.status


async def test_redis_stopped_for_10_s_gets_callers_a_quick_answer_readyz_503_and_then_loses_nothing(
        api: FakeSlackApi, tmp_path: Path) -> None:
    need_redis_binaries()
    # Written to disk on every change, so a restart on the same port brings the same data back.
    redis = RedisProcess(tmp_path / "redis", args=("--appendonly", "yes", "--appendfsync", "always")).start()
    proc, port = await serve_async(tmp_path / "data", spread_config(tmp_path / "cfg", repage=False), api, redis.url)
    escalations = Escalations(api)
    try:
        before = escalations.new(10, "before")
        await escalations.burst([port], before)
        assert len(escalations.cases_by_trigger()) == 10

        redis.stop()
        stopped = time.monotonic()
        during = escalations.new(8, "during")
        async with aiohttp.ClientSession() as session:
            answers = [await escalations.send(session, port, t, timeout=3) for t in during]
        # Each caller heard back within Slack's 3 s with an answer saying it was not done.
        assert all(a.status == 200 and a.case_id is None and a.text for a in answers), \
            [a for a in answers if not (a.status == 200 and a.case_id is None and a.text)]
        assert all("try again" in a.text.lower() or BUSY in a.text for a in answers), answers
        assert await readyz(port) == 503
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        redis.start()

        for _ in range(60):  # the users try again
            await escalations.burst([port], [t for t in during if t not in escalations.cases_by_trigger()],
                                    timeout=3)
            if set(escalations.cases_by_trigger()) >= set(during):
                break
            await asyncio.sleep(0.5)
        after = escalations.new(10, "after")
        await escalations.burst([port], after)
        by_trigger = escalations.cases_by_trigger()
        assert set(by_trigger) == set(before + during + after)
        assert all(len(ids) == 1 for ids in by_trigger.values())
        opened = {next(iter(ids)) for ids in by_trigger.values()}
        assert len(opened) == 28
        await until(lambda: set(cards(api)) >= opened and set(pages(api)) >= opened,
                    "every card and page delivered after the outage", limit_s=90, detail=lambda: missing(api, opened))
        assert await readyz(port) == 200
    finally:
        await stop_async(proc)
        redis.stop()
    assert all(n == 1 for n in cards(api).values()), cards(api)
