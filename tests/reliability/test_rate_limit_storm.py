"""A 429 storm is Slack asking us to wait: once it passes, every message is delivered once, none dead."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.slack_api import FakeSlackApi
from tests.reliability.redis_servers import RedisProcess
from tests.reliability.traffic import (
    NEW_ENGINE,
    Escalations,
    cards,
    dead_letters,
    missing,
    page_steps,
    posts,
    serve_async,
    spread_config,
    stop_async,
    until,
)

STORM_S = float(os.environ.get("ESCALATOR_TEST_STORM_S", "60"))


@pytest.fixture
async def api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as fake:
        yield fake


@pytest.mark.skipif(not NEW_ENGINE, reason="needs the new delivery engine (bot/pacing.py): the old one spends "
                                           "an attempt on every 429 and dead-letters the card after 6")
async def test_a_60_s_429_storm_on_the_tier_channel_ends_with_every_message_delivered_once_and_none_dead(
        throwaway_redis: RedisProcess, api: FakeSlackApi, tmp_path: Path) -> None:
    proc, port = await serve_async(tmp_path / "data", spread_config(tmp_path / "cfg", repage=False), api,
                                   throwaway_redis.url)
    try:
        api.fail("chat.postMessage", status=429, retry_after=1, times=None, channel="C0T0")
        escalations = Escalations(api)
        triggers = escalations.new(40, "storm")  # every 20th goes to T0, the storming channel
        await escalations.burst([port], triggers)
        opened = {next(iter(ids)) for ids in escalations.cases_by_trigger().values()}
        assert len(opened) == 40
        await asyncio.sleep(STORM_S)
        limited = [c for c in api.calls_to("chat.postMessage", ok_only=False) if c.status == 429]
        assert limited, "the storm hit the tier channel"
        api.heal()
        await until(lambda: set(cards(api)) >= opened, "every card delivered after the storm", limit_s=60,
                    detail=lambda: missing(api, opened))
        await until(lambda: len(page_steps(api)) >= len(opened), "every page in its case thread", limit_s=60)
        assert await dead_letters(port) == 0
    finally:
        await stop_async(proc)
    assert all(n == 1 for n in cards(api).values()), cards(api)
    assert all(n == 1 for n in page_steps(api).values()), page_steps(api)
    assert all(n == 1 for n in posts(api).values()), {k: n for k, n in posts(api).items() if n > 1}
