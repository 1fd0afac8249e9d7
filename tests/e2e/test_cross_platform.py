"""One case, two platforms: Teams and Slack served by one server, one runtime, both fakes running.

Teams L1 (which also has a Slack channel) escalates to L3, which lives only on Slack: the Slack
thread opens, the Teams thread gets a link to it, and acknowledging on either platform updates
the case card on both where the tier has both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from adapters.slack.app import SlackAdapter, build_slack_adapter
from adapters.teams.app import TeamsAdapter, build_teams_adapter
from adapters.web import build_web_app
from bot.clock import FakeClock
from bot.config import Config
from bot.model import CaseStatus
from bot.outbox import DeliveryWorker
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import buttons, card, field_value, replies, text_of
from tests.adapters.teams.conftest import with_teams_service_url
from tests.adapters.teams.harness import TeamsHarness, button_titles, card_text
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import FakeSlackApi

SIGNING_SECRET = "cross-platform-secret"


@dataclass
class Both:
    runtime: Runtime
    teams: TeamsHarness
    slack: SlackCaller
    api: FakeSlackApi
    slack_adapter: SlackAdapter
    slack_worker: DeliveryWorker

    async def deliver(self) -> None:
        """Run both delivery workers until both are idle; waits (links to a thread the other
        platform has not posted yet, pacing) pass on the fake clock."""
        idle = 0
        for _ in range(20):
            moved = await self.slack_worker.drain() + await self.teams.deliver()
            idle = idle + 1 if moved == 0 else 0
            if idle == 2 and await self.pending() == 0:
                return
            self.runtime.clock.advance(seconds=3)  # type: ignore[attr-defined]
        raise AssertionError(f"outbox did not drain: {await self.pending()} messages left")

    async def pending(self) -> int:
        return await self.runtime.outbox.pending("slack") + await self.runtime.outbox.pending("teams")


@pytest.fixture
async def both(example_config: Config, redis_client: aioredis.Redis, clock: FakeClock,
               prefix: str) -> AsyncIterator[Both]:
    from workflows import HANDLERS

    async with FakeBotConnector() as connector, FakeSlackApi(clock=clock.now) as api:
        settings = Settings(slack_bot_token="xoxb-cross", slack_signing_secret=SIGNING_SECRET,  # type: ignore[arg-type]
                            slack_app_token=None, slack_api_url=api.url, microsoft_app_id="",
                            microsoft_app_password="", microsoft_app_tenant_id="")
        config = with_teams_service_url(example_config, connector.url)
        slack_settings = config.platform_settings("slack").model_copy(update={"url": "https://acme.slack.com/"})
        config = config.model_copy(update={"platforms": {**config.platforms, "slack": slack_settings}})
        runtime = build_runtime(config=config, settings=settings, handlers=HANDLERS, clock=clock,
                                redis=RedisHandle(redis_client, where="test"), prefix=prefix)
        teams_adapter: TeamsAdapter = build_teams_adapter(runtime)
        slack_adapter = build_slack_adapter(runtime)
        teams_transport, slack_transport = teams_adapter.transport(), slack_adapter.transport()
        assert teams_transport is not None and slack_transport is not None

        async def sleep(seconds: float) -> None:
            clock.advance(seconds=seconds)

        app = build_web_app(runtime, [slack_adapter, teams_adapter], background=False)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            teams = TeamsHarness(client=client, adapter=teams_adapter, runtime=runtime, connector=connector,
                                 worker=runtime.worker(teams_transport, sleep=sleep))
            yield Both(runtime=runtime, teams=teams, slack=SlackCaller(client=client, api=api, secret=SIGNING_SECRET),
                       api=api, slack_adapter=slack_adapter, slack_worker=runtime.worker(slack_transport, sleep=sleep))
            teams.validate_every_card()
            await slack_adapter.stop()
        await teams_adapter.stop()


async def teams_root(both: Both, tier: str) -> str:
    thread = await both.runtime.store.get_thread("ESC-1001", tier, "teams")
    assert thread is not None, f"no Teams thread in {tier}"
    return thread.root_id


async def test_a_teams_l1_case_escalated_to_slack_only_l3_opens_the_slack_thread_and_links_it_in_teams(
        both: Both) -> None:
    teams, api = both.teams, both.api
    await teams.say("escalate L1 sev2 customer:globex EU card payments fail at checkout")
    await both.deliver()
    l1_root = await teams_root(both, "L1")
    l1_thread = f"19:l1@thread.tacv2;messageid={l1_root}"
    assert "ESC-1001 · EU card payments fail at checkout" in text_of(card(api, "C0L1"))  # L1 is on both

    # Acknowledged on Teams: both L1 cards show it.
    status, body = await teams.press(teams.card_of(l1_root), "Acknowledge", user="alice", conversation=l1_thread)
    assert status == 200 and "Acknowledged" in card_text(body["value"])
    await both.deliver()
    assert field_value(card(api, "C0L1"), "Status") == "Acknowledged"
    assert "Acknowledged" in card_text(teams.card_of(l1_root))

    # Escalated from the Teams thread to L3, which has only a Slack channel.
    thread_message = teams.activity("message_channel", user="alice",
                                    text="escalate ESC-1001 L3 the payment gateway rejects EU cards")
    thread_message["conversation"]["id"] = l1_thread
    status, _ = await teams.post(thread_message)
    assert status == 201 and "ESC-1001 escalated to L3 Engineering" in teams.replies()[-1]["text"]
    await both.deliver()

    slack_l3 = await both.runtime.store.get_thread("ESC-1001", "L3", "slack")
    assert slack_l3 is not None and slack_l3.url
    l3_card = card(api, "C0L3")
    assert "ESC-1001 · EU card payments fail at checkout" in text_of(l3_card)
    assert await both.runtime.store.get_thread("ESC-1001", "L3", "teams") is None  # L3 is Slack-only
    links = [(a["title"], a["url"]) for c in teams.connector.in_conversation(l1_thread) for cd in c.cards
             for a in cd.get("actions", []) if a["type"] == "Action.OpenUrl"]
    assert ("Continue in L3", slack_l3.url) in links
    assert [(a["title"], a["url"]) for a in teams.card_of(l1_root)["actions"]] == [("Now in L3", slack_l3.url)]
    assert "Moved to L3 Engineering" in card_text(teams.card_of(l1_root))

    # Acknowledged on Slack, in L3: the case and the Slack card follow.
    await both.slack.click(buttons(l3_card)["acknowledge"], user="U0DEV", channel="C0L3", message_ts=l3_card["ts"])
    await both.slack_adapter.flush()
    await both.deliver()
    case = await both.runtime.store.get_case("ESC-1001")
    assert case is not None and case.status == CaseStatus.ACKNOWLEDGED and case.acknowledged_by == "dev"
    assert field_value(card(api, "C0L3"), "Status") == "Acknowledged"
    assert any("Dev Patel acknowledged" in m["text"] for m in replies(api, "C0L3", l3_card["ts"]))


async def test_acknowledging_on_slack_updates_the_teams_card_of_the_same_case(both: Both) -> None:
    teams, api = both.teams, both.api
    await teams.say("escalate L2 sev3 customer:smallco Invoices show the wrong VAT", user="alice")
    await both.deliver()
    l2_root = await teams_root(both, "L2")
    slack_card: dict[str, Any] = card(api, "C0L2")
    posts = len(teams.connector.created)

    await both.slack.click(buttons(slack_card)["acknowledge"], user="U0BEN", channel="C0L2",
                           message_ts=slack_card["ts"])
    await both.slack_adapter.flush()
    await both.deliver()

    teams_card = teams.card_of(l2_root)
    assert "Acknowledged" in card_text(teams_card) and "Acknowledge" not in button_titles(teams_card)
    assert len(teams.connector.created) == posts  # updated in place, not reposted
    assert teams.connector.updated[-1].activity_id == l2_root
    assert field_value(card(api, "C0L2"), "Status") == "Acknowledged"
