"""The swarming scenario in Teams: the real CloudAdapter, the fake Bot Connector, every card valid 1.5."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.clock import FakeClock
from bot.config import load_config
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from tests.adapters.teams.conftest import local_settings, with_teams_service_url
from tests.adapters.teams.harness import TeamsHarness, button_titles, card_text, find_action
from tests.e2e.test_swarm_console import SWARM_CONFIG
from tests.fakes.bot_connector import FakeBotConnector

SWARM_CHANNEL = "19:swarm@thread.tacv2"


@pytest.fixture
async def teams_runtime(redis_client: aioredis.Redis, clock: FakeClock, prefix: str,
                        connector: FakeBotConnector) -> Runtime:
    """The swarm scenario's config (skills, a one-person L3 rotation) instead of the example's."""
    from workflows import HANDLERS

    return build_runtime(config=with_teams_service_url(load_config(SWARM_CONFIG), connector.url),
                         settings=local_settings(), handlers=HANDLERS, clock=clock,
                         redis=RedisHandle(redis_client, where="test"), prefix=prefix)


def as_person(activity: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    activity["from"] = {**activity["from"], "id": f"29:{key}", "name": name}
    return activity


async def press(teams: TeamsHarness, card: dict[str, Any], title: str, key: str, name: str,
                inputs: dict[str, str] | None = None) -> tuple[int, Any]:
    """Press a button as `key` (the harness knows only some people), as Teams sends it."""
    action = find_action(card, title)
    activity = as_person(teams.activity("card_action"), key, name)
    activity["value"]["action"] = {"type": "Action.Execute", "title": title, "verb": action["verb"],
                                   "data": {**action.get("data", {}), **(inputs or {})}}
    return await teams.post(activity)


async def say(teams: TeamsHarness, text: str, key: str, name: str) -> str:
    await teams.post(as_person(teams.activity("message_personal", text=text), key, name))
    return card_text(teams.replies()[-1]["attachments"][0]["content"]) if teams.replies()[-1].get(
        "attachments") else str(teams.replies()[-1].get("text"))


def invitation(teams: TeamsHarness, key: str) -> dict[str, Any]:
    """The latest swarm invitation in `key`'s personal chat."""
    found = []
    for call in teams.connector.calls:
        members = [m.get("id") for m in call.body.get("members") or []] if call.op == "create_conversation" else []
        mine = f"29:{key}" in members or call.conversation_id == f"a:personal-29:{key}"
        found += [c for c in call.cards if mine and "Join the swarm on ESC-1001?" in card_text(c)]
    assert found, f"no invitation to {key}"
    return found[-1]


async def swarm_card(teams: TeamsHarness) -> dict[str, Any]:
    ref = await teams.runtime.store.thread("swarm:ESC-1001", "teams")
    assert ref is not None and ref.channel == SWARM_CHANNEL
    return teams.card_of(ref.root_id)


async def thread_text(teams: TeamsHarness) -> str:
    ref = await teams.runtime.store.thread("swarm:ESC-1001", "teams")
    assert ref is not None
    calls = teams.connector.in_conversation(f"{SWARM_CHANNEL};messageid={ref.root_id}")
    return "\n".join(card_text(c) for call in calls for c in call.cards)


async def settle(teams: TeamsHarness) -> None:
    await teams.runtime.scheduler.run_due()
    await teams.deliver()


async def test_an_outage_swarm_runs_in_teams_from_escalation_to_a_suggested_article(
        teams: TeamsHarness, clock: FakeClock) -> None:
    opened = await say(teams, "escalate Checkout down for all users at globex", "alice", "Alice Adams")
    assert "Opened ESC-1001 in L3 Engineering" in opened
    await settle(teams)
    card = await swarm_card(teams)
    assert "Missing" in card_text(card) and "payments, network" in card_text(card)
    assert button_titles(card) == ["Join", "Leave", "End swarm"]
    assert "Ben Brooks: payments; no open cases" in await thread_text(teams)

    # Ben joins from his invitation, Dev declines from his: Fay is asked instead.
    status, body = await press(teams, invitation(teams, "ben"), "Join", "ben", "Ben Brooks")
    assert status == 200 and body["value"] == "You joined the swarm on ESC-1001."
    await press(teams, invitation(teams, "dev"), "Decline", "dev", "Dev Patel")
    await settle(teams)
    assert "Ben Brooks joined" in await thread_text(teams) and "Dev Patel declined" in await thread_text(teams)
    invitation(teams, "fay")
    assert "Fay Fischer" in card_text(await swarm_card(teams))  # updated in place: now invited

    # Fay does not answer within ten minutes: Gus is asked, and joins from the swarm card.
    clock.advance(minutes=11)
    await settle(teams)
    assert "Fay Fischer did not answer in 11m" in await thread_text(teams)
    invitation(teams, "gus")
    await press(teams, await swarm_card(teams), "Join", "gus", "Gus Grant")
    await settle(teams)
    _, twice = await press(teams, await swarm_card(teams), "Join", "gus", "Gus Grant")
    assert twice["value"] == "You are already in the swarm on ESC-1001."

    # Ben ends it from the card's "End swarm", which asks for the resolution (cause: and environment: parsed).
    text = ("restarted the gateway connection pool for jane@shop.example card 4111 1111 1111 1111 "
            "cause: gateway connection pool exhausted environment: EU checkout")
    _, ended = await press(teams, await swarm_card(teams), "End swarm", "ben", "Ben Brooks",
                           inputs={"swarm_end_resolution": text})
    assert "KB-1 drafted for review" in ended["value"]
    await settle(teams)
    assert button_titles(await swarm_card(teams)) == []
    thread = await thread_text(teams)
    assert "Thank you, Erin Ortiz, Ben Brooks, Gus Grant!" in thread
    draft = thread.split("Knowledge-base draft KB-1 for review")[1]
    assert "gateway connection pool exhausted" in draft and "EU checkout" in draft
    for secret in ("jane@shop.example", "4111", "Globex", "globex"):
        assert secret not in draft

    # A manager publishes it; a later escalation with similar words is pointed at it.
    assert "KB-1 published." in await say(teams, "kb KB-1 publish", "gus", "Gus Grant")
    later = await say(teams, "escalate checkout gateway connection pool exhausted again", "alice", "Alice Adams")
    assert "KB-1 may solve this: Checkout down for all users at the customer" in later
    assert teams.validate_every_card() > 10
