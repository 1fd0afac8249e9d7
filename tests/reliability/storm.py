"""The 60 s 429 storm, run alongside the rest of the suite: its minute of waiting costs no test time.

A 429 storm that lasts 60 s (issue 13) is 60 s of real time for a real `escalator serve`. Nothing
in that minute needs the test process, so the storm starts when the suite's first reliability test
starts, on an event loop of its own (a thread) with its own Redis, fake Slack and serve process, and
ends after exactly `seconds`; the storm test (which may run minutes later) then checks the outcome.
Run alone, the storm test simply waits out the minute.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from tests.fakes.slack_api import FakeSlackApi
from tests.reliability.redis_servers import RedisProcess
from tests.reliability.serve_process import stop
from tests.reliability.traffic import Escalations, serve_slack, spread_config

T = TypeVar("T")
CHANNEL = "C0T0"  # the first tier's channel: every 20th case of the burst goes there
CASES = 40


class BackgroundStorm:
    """Starts serve, opens `CASES` cases, makes Slack answer 429 on `CHANNEL` for `seconds`, then heals."""

    def __init__(self, folder: Path, seconds: float) -> None:
        self.folder = folder
        self.seconds = seconds
        self.redis = RedisProcess(folder / "redis")
        self.api = FakeSlackApi()
        self.opened: set[str] = set()
        self.started = 0.0
        self.healed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="storm", daemon=True)
        self._proc: Any = None
        self.port = 0

    def start(self) -> BackgroundStorm:
        self.redis.start()
        self._thread.start()
        self._call(self.api.start())
        self._proc, self.port = serve_slack(self.folder / "data", spread_config(self.folder / "cfg", repage=False),
                                            self.api, self.redis.url)
        self._call(self._storm())
        return self

    async def _storm(self) -> None:
        self.api.fail("chat.postMessage", status=429, retry_after=1, times=None, channel=CHANNEL)
        self.started = time.monotonic()
        self._loop.call_later(self.seconds, self._heal)
        escalations = Escalations(self.api)
        await escalations.burst([self.port], escalations.new(CASES, "storm"))
        self.opened = {next(iter(ids)) for ids in escalations.cases_by_trigger().values()}

    def _heal(self) -> None:
        self.api.heal()
        self.healed.set()

    async def wait_healed(self) -> None:
        """Until the storm is over (at once if the rest of the suite took longer than it)."""
        await asyncio.to_thread(self.healed.wait, self.seconds + 30)

    def stop(self) -> None:
        if self._proc is not None:
            stop(self._proc)
        if self._thread.is_alive():
            self._call(self.api.stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()
        self.redis.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=120)
