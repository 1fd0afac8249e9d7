"""Messages to the bot, the escalation form and the message action, through the real CloudAdapter
endpoint over HTTP (auth off), with replies landing on the fake Bot Connector."""

from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from adapters.teams.app import build_teams_adapter
from adapters.web import build_web_app
from bot.clock import FakeClock
from bot.commands import AcknowledgeCase, Command, OpenCase
from bot.config import Config
from bot.messages import Reply
from bot.redis_server import RedisHandle
from bot.runtime import build_runtime
from tests.adapters.teams.conftest import local_settings, with_teams_service_url
from tests.adapters.teams.harness import TeamsHarness, assert_valid_card, card_text
from tests.fakes.bot_connector import FakeBotConnector


async def test_escalate_in_a_channel_opens_the_case_and_answers_in_the_callers_thread(teams: TeamsHarness) -> None:
    status, _ = await teams.say("escalate L2 sev2 customer:initech Cannot log in")

    assert status == 201
    case = await teams.runtime.store.get_case("ESC-1001")
    assert case is not None
    assert (case.tier, case.severity.value, case.customer, case.title) == ("L2", "sev2", "initech", "Cannot log in")
    assert case.opened_by.person == "alice" and case.opened_by.platform == "teams"
    assert case.origin is not None and case.origin.channel == "19:l1@thread.tacv2"
    [answer] = teams.connector.of("reply_to_activity")
    assert answer.conversation_id == f"19:l1@thread.tacv2;messageid={case.origin.thread}"
    assert "Opened ESC-1001 in L2" in answer.body["text"]
    assert answer.body["textFormat"] == "plain"


async def test_a_redelivered_message_opens_one_case_and_is_answered_once(teams: TeamsHarness) -> None:
    activity = teams.activity("message_channel", text="escalate L2 Printer on fire")

    await teams.post(activity)
    await teams.post(activity)

    assert await teams.runtime.store.open_case_ids() == ["ESC-1001"]
    assert len(teams.replies()) == 1  # Teams redelivers what it thinks we missed: no second "Opened ESC-1001"


async def test_case_shows_the_case_and_its_timeline_as_a_card(teams: TeamsHarness) -> None:
    await teams.say("escalate L2 sev3 Exports are slow")
    await teams.deliver()

    await teams.say("case ESC-1001", user="ben", where="personal")

    card = teams.replies()[-1]["attachments"][0]["content"]
    assert_valid_card(card)
    text = card_text(card)
    assert "ESC-1001 · Exports are slow" in text and "Timeline:" in text
    assert [a["title"] for a in card["actions"]] == ["Open the case thread"]
    assert card["actions"][0]["url"].startswith("https://teams.microsoft.com/l/message/19%3Al2%40thread.tacv2/")


async def test_oncall_in_a_group_chat_answers_in_that_chat(teams: TeamsHarness) -> None:
    await teams.say("oncall L2", user="gus", where="groupchat")

    [answer] = teams.connector.of("reply_to_activity")
    assert answer.conversation_id == "19:meeting-of-leads@thread.v2"
    assert "On call now" in card_text(answer.cards[0])


async def test_help_in_a_personal_chat_lists_the_commands(teams: TeamsHarness) -> None:
    await teams.say("help", user="ben", where="personal")

    answer = teams.replies()[-1]
    text = card_text(answer["attachments"][0]["content"])
    assert "Escalator commands" in text and "/oncall" in text


async def test_words_the_bot_does_not_know_get_the_help_and_nothing_happens(teams: TeamsHarness) -> None:
    await teams.say("please fix everything")

    assert "Escalator commands" in card_text(teams.replies()[-1]["attachments"][0]["content"])
    assert await teams.runtime.store.open_case_ids() == []


async def test_wrong_input_gets_a_usage_message_and_no_case(teams: TeamsHarness) -> None:
    await teams.say("escalate L9 sev2 Something")

    text = card_text(teams.replies()[-1]["attachments"][0]["content"])
    assert "not a known tier" in text and "Usage: /escalate" in text
    assert await teams.runtime.store.open_case_ids() == []


async def test_escalate_without_text_answers_with_the_form_card(teams: TeamsHarness) -> None:
    await teams.say("escalate")

    form = teams.replies()[-1]["attachments"][0]["content"]
    assert_valid_card(form)
    inputs = {e["id"]: e["type"] for e in form["body"] if e["type"].startswith("Input.")}
    assert inputs == {"tier": "Input.ChoiceSet", "severity": "Input.ChoiceSet", "customer": "Input.ChoiceSet",
                      "category": "Input.Text", "summary": "Input.Text"}
    tiers = next(e for e in form["body"] if e.get("id") == "tier")
    assert [c["value"] for c in tiers["choices"]] == ["L1", "L2", "L3", "vendor"]
    assert form["actions"][0]["type"] == "Action.Execute"


async def test_submitting_the_form_opens_the_case_once_and_replaces_the_form(teams: TeamsHarness) -> None:
    await teams.say("escalate")
    form = teams.replies()[-1]["attachments"][0]["content"]
    fields = {"tier": "L2", "severity": "sev1", "customer": "globex", "category": "API",
              "summary": "  Webhooks   fail with 500  "}

    status, body = await teams.press(form, "Escalate", user="alice", inputs=fields)
    again_status, again = await teams.press(form, "Escalate", user="alice", inputs=fields)  # a double click

    assert (status, again_status) == (200, 200)
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert "Opened ESC-1001 in L2" in card_text(body["value"])
    assert "Opened ESC-1001" in card_text(again["value"])
    assert await teams.runtime.store.open_case_ids() == ["ESC-1001"]
    case = await teams.runtime.store.get_case("ESC-1001")
    assert case is not None
    assert (case.title, case.severity.value, case.customer, case.category) == (
        "Webhooks fail with 500", "sev1", "globex", "api")


async def test_a_form_with_no_summary_is_refused_to_the_submitter_only(teams: TeamsHarness) -> None:
    await teams.say("escalate")
    form = teams.replies()[-1]["attachments"][0]["content"]

    status, body = await teams.press(form, "Escalate", inputs={"tier": "L2", "summary": "   "})

    assert status == 200
    assert body == {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                    "value": "Add a short summary of the problem."}
    assert await teams.runtime.store.open_case_ids() == []


async def test_the_form_sent_with_action_submit_also_opens_the_case(teams: TeamsHarness) -> None:
    activity = teams.activity("message_channel", text="")
    activity.pop("text")
    activity["value"] = {"escalator": "open_case", "form_id": "legacy-1", "tier": "L1", "severity": "sev3",
                         "summary": "Password reset mails do not arrive"}

    await teams.post(activity)

    case = await teams.runtime.store.get_case("ESC-1001")
    assert case is not None and case.title == "Password reset mails do not arrive" and case.tier == "L1"


async def test_escalate_this_message_returns_the_prefilled_form_in_a_task_module(teams: TeamsHarness) -> None:
    status, body = await teams.post(teams.activity("fetch_task"))

    assert status == 200
    info = body["task"]["value"]
    assert body["task"]["type"] == "continue" and info["title"] == "Escalate this message"
    form = info["card"]["content"]
    assert_valid_card(form)
    summary = next(e for e in form["body"] if e.get("id") == "summary")
    assert summary["value"] == "Initech: nobody can log in since 09:00 & the SSO page loops"
    submit = form["actions"][0]
    assert submit["type"] == "Action.Submit"  # task modules do not support Action.Execute
    assert submit["data"]["message_url"].startswith("https://teams.microsoft.com/l/message/19:l1@thread.tacv2/")


async def test_submitting_the_message_action_opens_the_case_linked_to_the_message(teams: TeamsHarness) -> None:
    _, fetched = await teams.post(teams.activity("fetch_task"))
    form = fetched["task"]["value"]["card"]["content"]
    submit = teams.activity("fetch_task", name="composeExtension/submitAction")
    submit["value"]["data"] = {**form["actions"][0]["data"], "tier": "L2", "severity": "sev2",
                               "customer": "initech", "category": "sso",
                               "summary": "Initech: nobody can log in since 09:00"}

    status, body = await teams.post(submit)

    assert status == 200
    assert body["task"]["type"] == "message" and "Opened ESC-1001 in L2" in body["task"]["value"]
    case = await teams.runtime.store.get_case("ESC-1001")
    assert case is not None and case.origin is not None
    assert case.origin.message_url == submit["value"]["messagePayload"]["linkToMessage"]
    await teams.deliver()
    thread_root = case.origin.thread
    link_back = teams.connector.in_conversation(f"19:l1@thread.tacv2;messageid={thread_root}")
    assert link_back and "Escalated to L2 Specialists as ESC-1001" in card_text(link_back[0].cards[0])


async def test_a_crash_inside_a_turn_gets_the_caller_an_apology_not_an_error_page(
        example_config: Config, redis_client: aioredis.Redis, clock: FakeClock, prefix: str,
        connector: FakeBotConnector) -> None:
    async def broken(command: Command, context: object) -> Reply:
        raise RuntimeError("a bug")

    runtime = build_runtime(config=with_teams_service_url(example_config, connector.url), settings=local_settings(),
                            handlers={OpenCase: broken, AcknowledgeCase: broken}, clock=clock,
                            redis=RedisHandle(redis_client, where="test"), prefix=prefix)
    adapter = build_teams_adapter(runtime)
    async with TestClient(TestServer(build_web_app(runtime, [adapter], background=False))) as client:
        teams = TeamsHarness(client=client, adapter=adapter, runtime=runtime, connector=connector,
                             worker=runtime.worker(adapter.transport()))  # type: ignore[arg-type]
        status, _ = await teams.say("escalate L2 Printer on fire")
        press_status, body = await teams.press(
            {"actions": [{"type": "Action.Execute", "title": "Acknowledge", "verb": "acknowledge",
                          "data": {"escalator": "card", "action": "acknowledge", "case_id": "ESC-1"}}]},
            "Acknowledge")
    await adapter.stop()

    assert status == 201 and teams.replies()[-1]["text"].startswith("Sorry, something went wrong")
    assert press_status == 200 and body["type"] == "application/vnd.microsoft.activity.message"
    assert body["value"].startswith("Sorry, something went wrong")
