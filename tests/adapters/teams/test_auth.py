"""With MICROSOFT_APP_ID set, only requests carrying a Bot Framework token for this bot get in.

Tokens are checked by botbuilder itself. The Bot Framework's signing keys are replaced by a test
key pair in botbuilder's key cache (the one edge we cannot reach offline); everything else is
the real validation path: issuer, signature, audience (our app id), expiry and service URL.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from adapters.teams.app import build_teams_adapter
from bot.runtime import Runtime
from tests.adapters.teams.conftest import APP_ID, local_settings, token
from tests.adapters.teams.harness import payload
from tests.fakes.bot_connector import FakeBotConnector


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
