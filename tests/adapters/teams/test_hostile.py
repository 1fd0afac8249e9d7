"""Hostile and odd requests to /api/messages: refused with a short 4xx before botbuilder parses them,
local mode trusts only this machine and the configured service URL, and nobody but a Bot Framework
token can decide where a person's direct messages go."""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import jwt
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botframework.connector.auth import AuthenticationConstants
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor, _OpenIdMetadata
from jwt.algorithms import RSAAlgorithm
from structlog.testing import capture_logs

from adapters.teams.app import build_teams_adapter
from adapters.teams.delivery import REFS, USERS, reference_from_json
from adapters.web import build_web_app
from bot.clock import FakeClock
from bot.messages import Address, Notice, OutboxMessage
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.store import Commit
from tests.adapters.teams.conftest import APP_ID, KID, local_settings, token
from tests.adapters.teams.harness import TeamsHarness, find_action, payload
from tests.adapters.text import UNSAFE, strings
from tests.fakes.bot_connector import FakeBotConnector


def without(key: str) -> dict[str, Any]:
    activity = payload("message_channel")
    del activity[key]
    return activity


def changed(**fields: Any) -> dict[str, Any]:
    return {**payload("message_channel"), **fields}


NOT_ACTIVITIES: dict[str, Any] = {
    "null": None,
    "a list": [],
    "a string": "escalate L2 sev1 everything",
    "a number": 5,
    "an object without a type": without("type"),
    "no conversation": without("conversation"),
    "a conversation that is a string": changed(conversation="19:l1@thread.tacv2"),
    "a conversation without an id": changed(conversation={"conversationType": "channel"}),
    "no serviceUrl": without("serviceUrl"),
    "a sender that is a list": changed(**{"from": ["29:ben"]}),
}


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info] == []


async def post_json(client: TestClient[Any, Any], body: Any, headers: dict[str, str] | None = None) -> int:
    response = await client.post("/api/messages", data=json.dumps(body),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    await response.read()
    return response.status


@pytest.mark.parametrize("case", list(NOT_ACTIVITIES))
async def test_a_body_that_is_not_an_activity_gets_400_without_a_traceback(
        case: str, teams: TeamsHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = NOT_ACTIVITIES[case]
    if isinstance(body, dict) and "serviceUrl" in body:
        body["serviceUrl"] = teams.connector.url

    assert await post_json(teams.client, body) == 400
    assert teams.connector.calls == []
    assert_no_tracebacks(caplog)


@pytest.mark.parametrize("case", list(NOT_ACTIVITIES))
async def test_with_authentication_on_a_body_that_is_not_an_activity_also_gets_400(
        case: str, secured: TestClient[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    assert await post_json(secured, NOT_ACTIVITIES[case]) == 400
    assert_no_tracebacks(caplog)


ODD_ACTIVITIES: dict[str, dict[str, Any]] = {
    "an empty conversation id": {"conversation": {"id": ""}},
    "an action that is a string": {"type": "invoke", "name": "adaptiveCard/action", "value": {"action": "x"}},
    "a submit whose value is a string": {"type": "invoke", "name": "composeExtension/submitAction", "value": "x"},
    "a fetch whose value is a number": {"type": "invoke", "name": "composeExtension/fetchTask", "value": 5},
    "entities that are a string": {"entities": "x"},
    "attachments that are numbers": {"attachments": [5]},
}


@pytest.mark.parametrize("case", list(ODD_ACTIVITIES))
async def test_an_activity_with_parts_of_the_wrong_type_gets_a_4xx_or_a_plain_answer_never_a_crash(
        case: str, teams: TeamsHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    activity = {**teams.activity("message_channel", text="escalate L2 sev2 printer"), **ODD_ACTIVITIES[case]}

    with capture_logs() as logged:
        status = await post_json(teams.client, activity)

    assert status < 500
    assert [e["event"] for e in logged if e.get("log_level") == "error"] == []
    assert_no_tracebacks(caplog)


async def test_a_body_that_is_not_json_gets_400(teams: TeamsHarness) -> None:
    response = await teams.client.post("/api/messages", data=b'{"type": "message", "text": ',
                                       headers={"Content-Type": "application/json"})
    assert response.status == 400


async def test_a_body_over_a_megabyte_gets_413_before_it_is_read(
        teams: TeamsHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    activity = teams.activity("message_channel", text="escalate L2 " + "x" * 1_000_000)

    status, _ = await teams.post(activity)

    assert status == 413
    assert await teams.runtime.store.open_case_ids() == []
    assert_no_tracebacks(caplog)


async def test_a_message_longer_than_slack_allows_gets_a_short_answer_and_opens_nothing(teams: TeamsHarness) -> None:
    status, _ = await teams.say("escalate L2 sev1 " + "printer on fire " * 2_600)

    assert status in (200, 201)
    [reply] = teams.replies()
    assert "too long" in reply["text"] and len(reply["text"]) < 300
    assert await teams.runtime.store.open_case_ids() == []


@pytest.mark.parametrize("name", ["composeExtension/query", "task/fetch", "config/fetch", "no/such-invoke"])
async def test_an_invoke_nobody_handles_gets_200_with_an_empty_body(
        name: str, teams: TeamsHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    activity = teams.activity("card_action", name=name, value={"commandId": "x", "queryOptions": {}})

    status, body = await teams.post(activity)

    assert status == 200 and body is None
    assert_no_tracebacks(caplog)


# ---- local mode: this machine only, the configured service URL only -------------------------------


@pytest.fixture
async def attacker() -> AsyncIterator[FakeBotConnector]:
    """Somebody else's 'Bot Connector': nothing may ever be sent here."""
    async with FakeBotConnector() as fake:
        yield fake


def calling_from(remote: str) -> Any:
    """What a request from another machine looks like to the app (as a proxy's middleware sets it)."""
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request.clone(remote=remote))
        return response
    return middleware


async def served(runtime: Runtime, remote: str) -> AsyncIterator[TestClient[Any, Any]]:
    adapter = build_teams_adapter(runtime)
    app = build_web_app(runtime, [adapter], background=False)
    app.middlewares.append(calling_from(remote))
    async with TestClient(TestServer(app)) as client:
        yield client
    await adapter.stop()


def gus_escalating(service_url: str) -> dict[str, Any]:
    activity = payload("message_personal")
    activity.update(serviceUrl=service_url, text="escalate L3 sev1 customer:globex everything is down",
                    id="1732360000999")
    activity["from"] = {"id": "29:gus", "name": "Gus Grant"}
    return activity


@pytest.mark.parametrize("remote", ["192.0.2.44", "10.0.0.7", "2001:db8::5", "::ffff:203.0.113.9"])
async def test_in_local_mode_a_caller_from_another_machine_is_refused_whoever_it_claims_to_be(
        remote: str, teams_runtime: Runtime, connector: FakeBotConnector) -> None:
    async for client in served(teams_runtime, remote):
        status = await post_json(client, gus_escalating(connector.url))

    assert status == 401
    assert await teams_runtime.store.open_case_ids() == []
    assert connector.calls == []


@pytest.mark.parametrize("remote", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
async def test_in_local_mode_a_caller_on_this_machine_is_served(
        remote: str, teams_runtime: Runtime, connector: FakeBotConnector) -> None:
    async for client in served(teams_runtime, remote):
        status = await post_json(client, gus_escalating(connector.url))

    assert status in (200, 201)
    assert await teams_runtime.store.open_case_ids() == ["ESC-1001"]


async def test_escalator_allow_unauthenticated_teams_lets_other_machines_in(
        teams_runtime: Runtime, connector: FakeBotConnector, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATOR_ALLOW_UNAUTHENTICATED_TEAMS", "1")
    teams_runtime.settings = local_settings()

    async for client in served(teams_runtime, "192.0.2.44"):
        status = await post_json(client, gus_escalating(connector.url))

    assert status in (200, 201)
    assert await teams_runtime.store.open_case_ids() == ["ESC-1001"]


async def test_in_local_mode_a_service_url_other_than_the_configured_one_is_refused(
        teams: TeamsHarness, attacker: FakeBotConnector) -> None:
    status = await post_json(teams.client, gus_escalating(attacker.url))

    assert status == 401
    assert await teams.runtime.store.open_case_ids() == []
    assert attacker.calls == [] and teams.connector.calls == []


async def test_in_local_mode_no_activity_stores_a_conversation_reference(teams: TeamsHarness) -> None:
    await teams.post(teams.activity("install_personal", user="ben"))
    await teams.post(teams.activity("team_added", user="gus"))
    await teams.say("help", user="hana", where="personal")

    store = teams.runtime.store
    assert await store.get_ref(USERS, "29:ben") is None
    assert await store.get_ref(USERS, "29:hana") is None
    assert await store.get_ref(REFS, "19:supportteam@thread.tacv2") is None


async def test_a_fake_chat_from_ben_does_not_change_where_bens_direct_messages_go(
        teams: TeamsHarness, attacker: FakeBotConnector) -> None:
    await teams.remember("install_personal", user="ben")  # Ben's real 1:1 chat (an authenticated install)
    for service_url in (attacker.url, teams.connector.url):
        fake = teams.activity("message_personal", user="ben", text="help")
        fake["conversation"]["id"] = "a:1attacker-chat"
        fake["serviceUrl"] = service_url
        await teams.post(fake)

    direct = OutboxMessage(id="dm-ben", address=Address(platform="teams", user="29:ben", private=True),
                           notice=Notice(kind="direct", title="You are paged for ESC-1001 (sev1)"),
                           created_at=teams.runtime.clock.now())
    await teams.runtime.store.commit(Commit(messages=[direct]))
    await teams.deliver()

    [sent] = [c for c in teams.connector.sent if c.body.get("summary")]
    assert sent.conversation_id == "a:1personal-ben"
    assert attacker.calls == []
    ben = reference_from_json(await teams.runtime.store.get_ref(USERS, "29:ben") or "")
    assert ben.service_url == teams.connector.url and ben.conversation.id == "a:1personal-ben"


# ---- authentication on: references only for the token's own service URL -------------------------


EMULATOR_ISSUER = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"


@pytest.fixture
def emulator_keys(keys: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Our test key as the Bot Framework Emulator's signing key (its tokens carry no serviceurl)."""
    url = AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL
    metadata = _OpenIdMetadata(url)
    jwk = json.loads(RSAAlgorithm.to_jwk(keys["bf"].public_key()))
    metadata.keys = [{**jwk, "kid": KID}]
    metadata.last_updated = datetime.now()
    monkeypatch.setitem(JwtTokenExtractor.metadataCache, url, metadata)


def emulator_token(key: Any) -> str:
    now = int(time.time())
    claims = {"iss": EMULATOR_ISSUER, "aud": APP_ID, "appid": APP_ID, "ver": "1.0", "nbf": now - 10,
              "exp": now + 3600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


async def test_authenticated_installs_keep_references_for_the_tokens_service_url(
        secured: TestClient[Any, Any], keys: dict[str, Any], connector: FakeBotConnector,
        secured_store: Any) -> None:
    header = {"Authorization": "Bearer " + token(keys["bf"], service_url=connector.url)}
    for fixture, user in (("install_personal", ("29:ben", "Ben Brooks")), ("team_added", ("29:gus", "Gus Grant"))):
        activity = payload(fixture)
        activity.update(serviceUrl=connector.url, id=f"f:{fixture}")
        activity["from"] = {**activity["from"], "id": user[0], "name": user[1]}
        assert await post_json(secured, activity, header) in (200, 201)

    ben = reference_from_json(await secured_store.get_ref(USERS, "29:ben") or "")
    assert ben.conversation.id == "a:1personal-ben" and ben.service_url == connector.url
    assert await secured_store.get_ref(USERS, "aaaaaaaa-0000-4000-8000-000000000002") is not None
    team = json.loads(await secured_store.get_ref(REFS, "19:supportteam@thread.tacv2") or "{}")
    assert team["conversation"]["conversationType"] == "channel"
    assert await secured_store.get_ref(USERS, "29:gus") is None  # a team install is not a 1:1 chat


async def test_a_token_that_names_no_service_url_stores_no_reference(
        secured: TestClient[Any, Any], keys: dict[str, Any], emulator_keys: None, attacker: FakeBotConnector,
        secured_store: Any) -> None:
    install = payload("install_personal")
    install["serviceUrl"] = attacker.url

    status = await post_json(secured, install, {"Authorization": "Bearer " + emulator_token(keys["bf"])})

    assert status in (200, 201)  # botbuilder accepts an Emulator token, which is signed but names no serviceUrl
    assert await secured_store.get_ref(USERS, "29:ben") is None


@pytest.fixture
def secured_store(redis_client: aioredis.Redis, prefix: str, example_config: Any, clock: FakeClock) -> Any:
    """The `secured` server's store (the same Redis prefix)."""
    from workflows import HANDLERS

    return build_runtime(config=example_config, settings=local_settings(), handlers=HANDLERS, clock=clock,
                         redis=RedisHandle(redis_client, where="test"), prefix=prefix).store


# ---- redelivery ----------------------------------------------------------------------------------


async def test_a_redelivered_card_press_gets_the_same_card_and_posts_nothing_new(teams: TeamsHarness) -> None:
    await teams.say("escalate L2 sev2 customer:initech Cannot log in")
    await teams.deliver()
    thread = await teams.runtime.store.get_thread("ESC-1001", "L2", "teams")
    assert thread is not None
    card = teams.card_of(thread.root_id)
    action = find_action(card, "Acknowledge")
    press = teams.activity("card_action", user="ben")
    press["value"]["action"] = {"type": "Action.Execute", "title": "Acknowledge", "verb": action["verb"],
                                "data": action.get("data", {})}

    first = await teams.post(copy.deepcopy(press))
    await teams.deliver()
    calls = len(teams.connector.calls)
    second = await teams.post(copy.deepcopy(press))
    await teams.deliver()

    assert first[0] == second[0] == 200
    assert second[1]["type"] == first[1]["type"] == "application/vnd.microsoft.card.adaptive"
    assert len(teams.connector.calls) == calls


# ---- control characters and bidi overrides ------------------------------------------------------

async def test_control_characters_and_bidi_overrides_in_a_title_are_never_posted(teams: TeamsHarness) -> None:
    await teams.say("escalate L2 sev2 customer:globex Printer\u202e erif no\x00 \x1b[31mnow\x07 "
                    "\u2066isolated\u2069 \x85x")
    await teams.deliver()
    await teams.say("case ESC-1001", user="ben", where="personal")

    texts = [(call.op, path, text) for call in teams.connector.calls for path, text in strings(call.body)]
    assert any("Printer erif no" in text for _, _, text in texts)
    assert [(op, path) for op, path, text in texts if any(ch in text for ch in UNSAFE)] == []


def test_card_text_and_mention_text_drop_control_characters_but_keep_line_breaks() -> None:
    from adapters.teams.render import escape_text, run

    assert run("a\tb\nc\x00d\u202ee\x9f")["text"] == "a\tb\ncde"
    assert escape_text("<at>x</at>\u2067\x00") == "&lt;at&gt;x&lt;/at&gt;"
