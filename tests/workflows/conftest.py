"""Workflow fixtures: `rt`, a runtime whose config has a `swarm.skills` map (tests/workflows/swarming.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.clock import FakeClock
from bot.config import Config
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from tests.workflows.swarming import swarm_config


@pytest.fixture
async def rt(example_config: Config, redis_client: aioredis.Redis, clock: FakeClock,
             prefix: str) -> AsyncIterator[Runtime]:
    from workflows import HANDLERS

    yield build_runtime(config=swarm_config(example_config), settings=Settings(), handlers=HANDLERS, clock=clock,
                        redis=RedisHandle(redis_client, where="test"), prefix=prefix)
