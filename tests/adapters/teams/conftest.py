"""Fixtures for the Teams adapter: the fake Bot Connector, a runtime whose Teams service URL points
at it, and the real CloudAdapter endpoint served over HTTP with authentication off."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from adapters.teams.app import build_teams_adapter
from adapters.web import build_web_app
from bot.clock import FakeClock
from bot.config import Config
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from tests.adapters.teams.harness import TeamsHarness
from tests.fakes.bot_connector import FakeBotConnector


@pytest.fixture
async def connector() -> AsyncIterator[FakeBotConnector]:
    async with FakeBotConnector() as fake:
        yield fake


def with_teams_service_url(config: Config, url: str) -> Config:
    """The example config, with Teams' service URL pointing at a fake connector."""
    teams = config.platform_settings("teams")
    assert teams is not None
    platforms = {**config.platforms, "teams": teams.model_copy(update={"service_url": url})}
    return config.model_copy(update={"platforms": platforms})


def local_settings(**overrides: str) -> Settings:
    """Settings with no Microsoft credentials (local mode), whatever the environment says."""
    values = {"microsoft_app_id": "", "microsoft_app_password": "", "microsoft_app_tenant_id": "",
              "microsoft_app_type": "", **overrides}
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def teams_runtime(example_config: Config, redis_client: aioredis.Redis, clock: FakeClock, prefix: str,
                        connector: FakeBotConnector) -> Runtime:
    from workflows import HANDLERS

    return build_runtime(config=with_teams_service_url(example_config, connector.url),
                         settings=local_settings(), handlers=HANDLERS, clock=clock,
                         redis=RedisHandle(redis_client, where="test"), prefix=prefix)


@pytest.fixture
async def teams(teams_runtime: Runtime, connector: FakeBotConnector) -> AsyncIterator[TeamsHarness]:
    adapter = build_teams_adapter(teams_runtime)
    transport = adapter.transport()
    assert transport is not None, "local mode with a local service URL must deliver"
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    worker = teams_runtime.worker(transport, sleep=sleep)
    app = build_web_app(teams_runtime, [adapter], background=False)
    async with TestClient(TestServer(app)) as client:
        harness = TeamsHarness(client=client, adapter=adapter, runtime=teams_runtime, connector=connector,
                               worker=worker, sleeps=sleeps)
        yield harness
        harness.validate_every_card()
    await adapter.stop()
