"""With MICROSOFT_APP_ID set, only requests carrying a Bot Framework token for this bot get in.

Tokens are checked by botbuilder itself. The Bot Framework's signing keys are replaced by a test
key pair in botbuilder's key cache (the one edge we cannot reach offline); everything else is
the real validation path: issuer, signature, audience (our app id), expiry and service URL.
"""

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
from tests.adapters.teams.conftest import local_settings, with_teams_service_url
from tests.adapters.teams.harness import payload
from tests.fakes.bot_connector import FakeBotConnector

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


def escalation(service_url: str) -> dict[str, Any]:
    activity = payload("message_channel")
    activity["serviceUrl"] = service_url
    return activity


async def stored_keys(redis_client: aioredis.Redis, prefix: str) -> list[bytes]:
    return [k async for k in redis_client.scan_iter(match="{" + prefix + "}*")]


BAD_HEADERS = {
    "no header": lambda keys, url: None,
    "not a JWT": lambda keys, url: "Bearer not-a-jwt",
    "not a bearer token": lambda keys, url: "Basic YWRtaW46YWRtaW4=",
    "signed by someone else": lambda keys, url: "Bearer " + token(keys["attacker"], service_url=url),
    "for another bot": lambda keys, url: "Bearer " + token(keys["bf"], service_url=url, aud="someone-else"),
    "from another issuer": lambda keys, url: "Bearer " + token(keys["bf"], service_url=url,
                                                               iss="https://evil.example"),
    "for another service URL": lambda keys, url: "Bearer " + token(keys["bf"], service_url="https://evil.example/"),
    "expired": lambda keys, url: "Bearer " + token(keys["bf"], service_url=url, expires_in=-3600),
}


@pytest.mark.parametrize("case", list(BAD_HEADERS))
async def test_requests_without_a_valid_token_get_401_and_change_nothing(
        case: str, secured: TestClient, keys: dict[str, Any], connector: FakeBotConnector,
        redis_client: aioredis.Redis, prefix: str) -> None:
    header = BAD_HEADERS[case](keys, connector.url)

    response = await secured.post("/api/messages", json=escalation(connector.url),
                                  headers={"Authorization": header} if header else {})

    assert response.status == 401
    assert await stored_keys(redis_client, prefix) == []  # no case, no reference, no outbox entry
    assert connector.calls == []


async def test_a_token_the_bot_framework_signed_for_this_bot_is_accepted(
        secured: TestClient, keys: dict[str, Any], connector: FakeBotConnector,
        redis_client: aioredis.Redis, prefix: str) -> None:
    install = payload("install_personal")
    install["serviceUrl"] = connector.url

    response = await secured.post("/api/messages", json=install, headers={
        "Authorization": "Bearer " + token(keys["bf"], service_url=connector.url)})

    assert response.status == 201
    assert await stored_keys(redis_client, prefix)  # the 1:1 conversation reference was kept


def test_a_single_tenant_bot_without_a_tenant_or_password_says_which_variable_is_missing(
        teams_runtime: Runtime) -> None:
    teams_runtime.settings = local_settings(microsoft_app_id=APP_ID, microsoft_app_type="SingleTenant")

    with pytest.raises(ValueError, match="MICROSOFT_APP_TENANT_ID"):
        build_teams_adapter(teams_runtime)
