"""The worst text a caller can send does not stall the event loop: other requests keep being served.

The worst input is 40 KB of digits and '@' (what scrubbing of phone numbers, card numbers and
mentions works hardest on). A probe task wakes every millisecond and notes how much CPU time the
loop's thread spent between two of its wakes: that is how long the loop was held by one stretch
of work. CPU time, not wall time, so a busy machine that pauses the whole process does not count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapters.slack.app import build_slack_adapter
from adapters.web import build_web_app
from bot.config import Config
from tests.fakes.slack_api import FakeSlackApi
from tests.reliability.conftest import connect_to, runtime_on
from tests.reliability.redis_servers import RedisProcess
from tests.reliability.traffic import SECRET, TOKEN, Escalations, until

LIMIT_S = 0.050
WORST = ("0123456789@" * 4000)[:40_000 - len("L1 sev3 ")]  # the longest command accepted


class LoopProbe:
    """The longest stretch of loop-thread CPU time between two wakes of a 1 ms ticker."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.thread_time()
        while True:
            await asyncio.sleep(0.001)
            now = time.thread_time()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> LoopProbe:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


@pytest.fixture
async def api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as fake:
        yield fake


async def test_the_worst_40_kb_escalation_never_holds_the_event_loop_for_more_than_50_ms(
        throwaway_redis: RedisProcess, project_config: Config, api: FakeSlackApi, tmp_path: Path) -> None:
    handle, settings = connect_to(throwaway_redis.url, slack_bot_token=TOKEN, slack_signing_secret=SECRET,
                                  slack_api_url=api.url)
    runtime = runtime_on(handle, project_config, settings)
    server = TestServer(build_web_app(runtime, [build_slack_adapter(runtime)]), host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    escalations = Escalations(api)
    escalations.texts["tr-worst"] = f"L1 sev3 {WORST}"
    try:
        with LoopProbe() as probe:
            async with aiohttp.ClientSession() as session:
                answer = await escalations.send(session, server.port, "tr-worst")
            assert answer.case_id, answer
            # The case card, rendered from the scrubbed text and posted by the delivery worker.
            await until(lambda: any(c.args.get("channel") == "C0L1" for c in api.calls_to("chat.postMessage")),
                        "the case card posted")
    finally:  # a failure must not leave the server's workers running into the next test
        await server.close()
        await runtime.close()
    print(f"longest loop stretch: {probe.longest * 1000:.1f} ms")
    assert probe.longest < LIMIT_S, f"the loop was held {probe.longest * 1000:.0f} ms"
