"""The swarming scenario in Slack: signed requests in, the recording Web API out, real Bolt and delivery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.clock import FakeClock
from bot.config import load_config
from bot.outbox import DeliveryWorker
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import buttons, field_value, opened_view, replies, roots, text_of
from tests.e2e.test_swarm_console import SWARM_CONFIG
from tests.fakes.slack_api import FakeSlackApi


@pytest.fixture
async def runtime(redis_client: aioredis.Redis, clock: FakeClock, prefix: str) -> AsyncIterator[Runtime]:
    """The swarm scenario's config (skills, a one-person L3 rotation) instead of the example's."""
    from workflows import HANDLERS

    yield build_runtime(config=load_config(SWARM_CONFIG), settings=Settings(), handlers=HANDLERS, clock=clock,
                        redis=RedisHandle(redis_client, where="test"), prefix=prefix)


def swarm_card(api: FakeSlackApi) -> dict[str, Any]:
    (found,) = [m for m in roots(api, "C0SWARM") if "Swarm on ESC-1001" in text_of(m)]
    return found


def invitation(api: FakeSlackApi, user: str) -> dict[str, Any]:
    dms = [m for m in api.messages.get("D" + user[1:], []) if "Join the swarm on ESC-1001?" in text_of(m)]
    assert dms, f"no invitation to {user}"
    return dms[-1]


def thread_text(api: FakeSlackApi) -> str:
    return "\n".join(text_of(m) for m in replies(api, "C0SWARM", swarm_card(api)["ts"]))


async def settle(runtime: Runtime, worker: DeliveryWorker) -> None:
    await runtime.scheduler.run_due()
    await worker.drain()


async def test_an_outage_swarm_runs_in_slack_from_escalation_to_a_suggested_article(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime,
        clock: FakeClock) -> None:
    _, answer = await slack.command("/escalate", "Checkout down for all users at globex")
    assert "Opened ESC-1001 in L3 Engineering" in answer["text"]
    await settle(slack_runtime, worker)
    card = swarm_card(api)
    assert field_value(card, "Missing") == "payments, network" and field_value(card, "Lead") == "Erin Ortiz"
    assert "Ben Brooks: payments; no open cases" in thread_text(api)
    assert set(buttons(card)) == {"swarm_join", "swarm_leave", "swarm_end"}

    # Ben joins from his invitation, Dev declines from his: Fay is asked instead.
    await slack.click(buttons(invitation(api, "U0BEN"))["swarm_join"], user="U0BEN", channel="D0BEN")
    await slack.click(buttons(invitation(api, "U0DEV"))["swarm_decline"], user="U0DEV", channel="D0DEV")
    await settle(slack_runtime, worker)
    assert "Ben Brooks joined" in thread_text(api) and "Dev Patel declined" in thread_text(api)
    assert field_value(swarm_card(api), "Invited") == "Fay Fischer"  # the card is updated in place
    invitation(api, "U0FAY")

    # Fay does not answer within ten minutes: Gus is asked, and joins from the swarm card.
    clock.advance(minutes=11)
    await settle(slack_runtime, worker)
    assert "Fay Fischer did not answer in 11m" in thread_text(api)
    invitation(api, "U0GUS")
    await slack.click(buttons(swarm_card(api))["swarm_join"], user="U0GUS", channel="C0SWARM")
    await settle(slack_runtime, worker)
    assert field_value(swarm_card(api), "Missing") == "nothing"
    _, again = await slack.command("/swarm", "ESC-1001 join", user="U0GUS", user_name="gus")
    assert again["response_type"] == "ephemeral" and "already in the swarm" in again["text"]

    # Ben ends it from the card: the modal asks for the resolution; cause and environment are parsed.
    await slack.click(buttons(swarm_card(api))["swarm_end"], user="U0BEN", channel="C0SWARM")
    view = opened_view(api)
    assert view["title"]["text"] == "End swarm ESC-1001"
    await slack.submit(view, {"reason": "restarted the gateway connection pool for jane@shop.example card "
                                        "4111 1111 1111 1111 cause: gateway connection pool exhausted "
                                        "environment: EU checkout"}, user="U0BEN")
    await settle(slack_runtime, worker)
    assert field_value(swarm_card(api), "Status") == "Ended" and not buttons(swarm_card(api))
    thread = thread_text(api)
    assert "Thank you, Erin Ortiz, Ben Brooks, Gus Grant!" in thread
    draft = thread.split("Knowledge-base draft KB-1 for review")[1]
    assert "gateway connection pool exhausted" in draft and "EU checkout" in draft
    for secret in ("jane@shop.example", "4111", "Globex", "globex"):
        assert secret not in draft
    assert any("swarm" in text_of(m).lower() for m in api.messages["C0L3"] if m.get("thread_ts"))

    # The lead publishes it; a later escalation with similar words is pointed at it.
    _, published = await slack.command("/kb", "KB-1 publish", user="U0ERIN", user_name="erin")
    assert published["text"] == "KB-1 published."
    _, later = await slack.command("/escalate", "checkout gateway connection pool exhausted again")
    assert "KB-1 may solve this: Checkout down for all users at the customer" in later["text"]
