"""Fixtures of the reliability suite: throwaway Redis servers, a Cluster, a runtime on any of them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Config, load_config
from bot.redis_server import RedisHandle, connect
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from tests.conftest import PROJECT_CONFIG
from tests.reliability.redis_servers import RedisProcess, cluster, need_redis_binaries
from tests.reliability.storm import BackgroundStorm

STORM_S = float(os.environ.get("ESCALATOR_TEST_STORM_S", "60"))


@pytest.fixture(scope="session")
def project_config() -> Config:
    return load_config(PROJECT_CONFIG)


@pytest.fixture(scope="session")
def storm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundStorm]:
    """The 429 storm (tests/reliability/storm.py), running in the background from its start."""
    need_redis_binaries()
    running = BackgroundStorm(tmp_path_factory.mktemp("storm"), STORM_S)
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="session", autouse=True)
def _storm_starts_first(request: pytest.FixtureRequest) -> None:
    """Start the storm with the first reliability test when its test is selected, so its minute
    passes while the others run."""
    if any("storm" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.getfixturevalue("storm")


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, which it may stop and start again."""
    need_redis_binaries()
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url


def runtime_on(handle: RedisHandle, config: Config, settings: Settings) -> Runtime:
    from workflows import HANDLERS

    return build_runtime(config=config, settings=settings, handlers=HANDLERS, redis=handle,
                         prefix=f"rel-{uuid.uuid4().hex[:8]}")


def connect_to(url: str | None = None, **settings: object) -> tuple[RedisHandle, Settings]:
    s = Settings(redis_url=url, **settings)  # type: ignore[arg-type]
    return connect(url, Path("/nonexistent"), s), s
