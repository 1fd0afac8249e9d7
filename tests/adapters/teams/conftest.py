"""Fixtures for the Teams adapter: the fake Bot Connector, a runtime whose Teams service URL points
at it, and the real CloudAdapter endpoint served over HTTP with authentication off (`teams`) or on
(`secured`: MICROSOFT_APP_ID set, tokens signed by a test key botbuilder takes for the Bot Framework's)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import jwt
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from botframework.connector.auth import AuthenticationConstants
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor, _OpenIdMetadata
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

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


APP_ID = "11111111-2222-4333-8444-555555555555"
KID = "bf-test-key"
ISSUER = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    """The 'Bot Framework' signing key and an attacker's key, made once per module."""
    return {"bf": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "attacker": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


@pytest.fixture
def bot_framework_keys(keys: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Put our test key where botbuilder caches the Bot Framework's OpenID keys (no network)."""
    metadata = _OpenIdMetadata(AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL)
    jwk = json.loads(RSAAlgorithm.to_jwk(keys["bf"].public_key()))
    metadata.keys = [{**jwk, "kid": KID, "endorsements": ["msteams"]}]
    metadata.last_updated = datetime.now()
    monkeypatch.setitem(JwtTokenExtractor.metadataCache,
                        AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL, metadata)


def token(key: Any, *, service_url: str, aud: str = APP_ID, iss: str = ISSUER, expires_in: int = 3600) -> str:
    now = int(time.time())
    claims = {"iss": iss, "aud": aud, "serviceurl": service_url, "nbf": now - 10, "exp": now + expires_in}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


@pytest.fixture
async def secured(example_config: Config, redis_client: aioredis.Redis, clock: FakeClock, prefix: str,
                  connector: FakeBotConnector, bot_framework_keys: None) -> AsyncIterator[TestClient]:
    from workflows import HANDLERS

    runtime = build_runtime(config=with_teams_service_url(example_config, connector.url),
                            settings=local_settings(microsoft_app_id=APP_ID, microsoft_app_password="s3cret"),
                            handlers=HANDLERS, clock=clock, redis=RedisHandle(redis_client, where="test"),
                            prefix=prefix)
    adapter = build_teams_adapter(runtime)
    async with TestClient(TestServer(build_web_app(runtime, [adapter], background=False))) as client:
        yield client
    await adapter.stop()
