"""Case card buttons (Action.Execute): each answers HTTP 200 with the refreshed card for the presser,
and the delivery worker then updates the thread's root message in place for everyone else."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botbuilder.integration.aiohttp import CloudAdapter

from adapters.teams.app import EscalatorCloudAdapter
from bot.model import CaseStatus
from tests.adapters.teams.harness import TeamsHarness, button_titles, card_text

CARD = "application/vnd.microsoft.card.adaptive"


async def open_case(teams: TeamsHarness, text: str = "escalate L2 sev2 customer:initech Cannot log in",
                    tier: str = "L2") -> str:
    """Open a case from L1 and deliver its card; return the root activity id of its thread."""
    await teams.say(text)
    await teams.deliver()
    thread = await teams.runtime.store.get_thread("ESC-1001", tier, "teams")
    assert thread is not None
    return thread.root_id


def thread_of(root_id: str, channel: str = "19:l2@thread.tacv2") -> str:
    return f"{channel};messageid={root_id}"


async def test_acknowledge_refreshes_the_card_for_the_presser_and_in_place_for_everyone(teams: TeamsHarness) -> None:
    root = await open_case(teams)
    posts = len(teams.connector.created)

    status, body = await teams.press(teams.card_of(root), "Acknowledge", user="ben", conversation=thread_of(root))

    assert status == 200
    assert body["statusCode"] == 200 and body["type"] == CARD
    assert "Acknowledged" in card_text(body["value"])
    assert "Acknowledge" not in button_titles(body["value"])
    case = await teams.runtime.store.get_case("ESC-1001")
    assert case is not None and case.status == CaseStatus.ACKNOWLEDGED and case.acknowledged_by == "ben"

    await teams.deliver()
    assert len(teams.connector.created) == posts  # never reposted
    [update] = teams.connector.updated
    assert update.conversation_id == thread_of(root) and update.activity_id == root
    assert card_text(teams.card_of(root)) == card_text(body["value"])
    replies = teams.connector.in_conversation(thread_of(root))
    assert any("Ben Brooks acknowledged" in card_text(c.cards[0]) for c in replies)


async def test_claim_makes_the_presser_the_owner(teams: TeamsHarness) -> None:
    root = await open_case(teams)

    status, body = await teams.press(teams.card_of(root), "Claim", user="alice")

    assert status == 200 and body["type"] == CARD
    assert "Alice Adams" in card_text(body["value"]) and "Claim" not in button_titles(body["value"])
    case = await teams.runtime.store.get_case("ESC-1001")
    assert case is not None and case.owner == "alice"


async def test_escalate_asks_for_a_reason_then_moves_the_case_to_the_next_tier(teams: TeamsHarness) -> None:
    root = await open_case(teams, "escalate L1 sev3 SSO loops for some users", tier="L1")
    card = teams.card_of(root)
    assert "Escalate ▸ L2" in button_titles(card)
    show = next(a for a in card["actions"] if a["title"] == "Escalate ▸ L2")
    assert show["type"] == "Action.ShowCard" and show["card"]["body"][0]["type"] == "Input.Text"

    _, refused = await teams.press(card, "Escalate ▸ L2", inputs={"escalate_reason": "  "})
    status, body = await teams.press(card, "Escalate ▸ L2", user="alice",
                                     inputs={"escalate_reason": "needs SSO specialists"},
                                     conversation=thread_of(root, "19:l1@thread.tacv2"))

    assert refused["type"] == "application/vnd.microsoft.activity.message"
    assert "reason" in refused["value"]
    assert status == 200 and body["type"] == CARD
    assert "Moved to L2 Specialists" in card_text(body["value"])
    await teams.deliver()
    l2 = await teams.runtime.store.get_thread("ESC-1001", "L2", "teams")
    assert l2 is not None and l2.channel == "19:l2@thread.tacv2"
    old_card = teams.card_of(root)
    assert [(a["title"], a["url"]) for a in old_card["actions"]] == [("Now in L2", l2.url)]
    pointer = teams.connector.in_conversation(thread_of(root, "19:l1@thread.tacv2"))[-1]
    assert "Escalated to L2 Specialists by Alice Adams" in card_text(pointer.cards[0])


async def test_resolve_asks_for_the_resolution_and_then_offers_reopen(teams: TeamsHarness) -> None:
    root = await open_case(teams)
    _, refused = await teams.press(teams.card_of(root), "Resolve", inputs={})

    status, body = await teams.press(teams.card_of(root), "Resolve", user="ben",
                                     inputs={"resolve_resolution": "Reset the SSO certificate"})

    assert "resolution" in refused["value"]
    assert status == 200 and button_titles(body["value"]) == ["Reopen"]
    assert "Reset the SSO certificate" in card_text(body["value"])
    assert body["value"]["body"][0]["style"] == "good"
    case = await teams.runtime.store.get_case("ESC-1001")
    assert case is not None and case.status == CaseStatus.RESOLVED


async def test_reopen_puts_a_resolved_case_back_to_work(teams: TeamsHarness) -> None:
    root = await open_case(teams)
    await teams.press(teams.card_of(root), "Resolve", inputs={"resolve_resolution": "Restarted the IdP"})
    await teams.deliver()

    status, body = await teams.press(teams.card_of(root), "Reopen", user="alice")

    assert status == 200 and body["type"] == CARD
    assert "Resolve" in button_titles(body["value"])
    case = await teams.runtime.store.get_case("ESC-1001")
    assert case is not None and case.is_open and case.reopened == 1


async def test_the_same_invoke_delivered_twice_acts_once(teams: TeamsHarness) -> None:
    await open_case(teams)
    activity = teams.activity("card_action", user="ben")
    activity["value"]["action"] = {"type": "Action.Execute", "verb": "acknowledge",
                                   "data": {"escalator": "card", "action": "acknowledge", "case_id": "ESC-1001",
                                            "tier": "L2"}}
    first, _ = await teams.post(activity)
    second, body = await teams.post(activity)

    assert (first, second) == (200, 200) and body["type"] == CARD
    timeline = await teams.runtime.store.timeline("ESC-1001")
    assert [e.action for e in timeline].count("acknowledged") == 1


async def test_a_plain_cloud_adapter_answers_action_execute_with_500_which_ours_fixes(
        teams: TeamsHarness) -> None:
    """Pins the botbuilder 4.17.1 bug our subclass works around (double-serialized invoke bodies)."""
    await open_case(teams)
    activity = teams.activity("card_action", user="ben")
    activity["value"]["action"] = {"type": "Action.Execute", "verb": "claim",
                                   "data": {"escalator": "card", "action": "claim", "case_id": "ESC-1001"}}
    plain = CloudAdapter(teams.adapter.cloud.bot_framework_authentication)
    assert isinstance(teams.adapter.cloud, EscalatorCloudAdapter)

    async def endpoint(request: web.Request) -> web.Response:
        return await plain.process(request, teams.adapter.bot)

    app = web.Application()
    app.router.add_post("/api/messages", endpoint)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/api/messages", json=activity)
    assert response.status == 500

    status, body = await teams.post(activity)
    assert status == 200 and body["type"] == CARD
