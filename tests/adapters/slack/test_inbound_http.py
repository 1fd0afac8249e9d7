"""Slack's side of the conversation over HTTP: signed requests to the real Bolt app on /slack/events."""

from __future__ import annotations

import time

from adapters.slack.app import build_slack_adapter
from adapters.web import build_web_app
from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from bot.settings import Settings
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import opened_view, outbox_size, text_of
from tests.fakes.slack_api import FakeSlackApi


async def open_cases(runtime: Runtime) -> list[str]:
    return await runtime.store.open_case_ids()


# ---- verification ---------------------------------------------------------------------------


async def test_a_request_signed_with_the_wrong_secret_gets_401_and_changes_nothing(
        slack: SlackCaller, slack_runtime: Runtime, api: FakeSlackApi) -> None:
    status, _ = await slack.post(slack.command_body("/escalate", "L2 sev2 checkout fails"),
                                 "application/x-www-form-urlencoded", secret="not-the-secret")
    assert status == 401
    assert await open_cases(slack_runtime) == []
    assert await outbox_size(slack_runtime) == 0
    assert api.calls == []


async def test_a_stale_signed_request_gets_401(slack: SlackCaller, slack_runtime: Runtime) -> None:
    status, _ = await slack.post(slack.command_body("/escalate", "L2 sev2 checkout fails"),
                                 "application/x-www-form-urlencoded", timestamp=int(time.time()) - 600)
    assert status == 401
    assert await open_cases(slack_runtime) == []


async def test_an_unsigned_request_gets_401(slack: SlackCaller, slack_runtime: Runtime) -> None:
    status, _ = await slack.post(slack.command_body("/case", "ESC-1001"), "application/x-www-form-urlencoded",
                                 sign=False)
    assert status == 401


async def test_a_body_changed_after_signing_gets_401(slack: SlackCaller, slack_runtime: Runtime) -> None:
    body = slack.command_body("/escalate", "L2 sev2 checkout fails")
    ts = str(int(time.time()))
    from slack_sdk.signature import SignatureVerifier

    signature = SignatureVerifier(slack.secret).generate_signature(timestamp=ts, body=body)
    response = await slack.client.post("/slack/events", data=body.replace("L2", "L3").encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature})
    assert response.status == 401
    assert await open_cases(slack_runtime) == []


async def test_a_body_that_is_not_text_gets_400(slack: SlackCaller, slack_runtime: Runtime) -> None:
    response = await slack.client.post("/slack/events", data=b"\xff\xfe\x00garbage", headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert response.status in (400, 401)
    assert await open_cases(slack_runtime) == []


async def test_without_a_signing_secret_every_request_is_refused(runtime: Runtime, api: FakeSlackApi) -> None:
    runtime.settings = Settings(slack_bot_token="xoxb-test", slack_signing_secret=None, slack_app_token=None,
                                slack_api_url=api.url)
    adapter = build_slack_adapter(runtime)
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(build_web_app(runtime, [adapter], background=False))) as client:
        caller = SlackCaller(client=client, api=api, secret="a-guess")
        status, _ = await caller.command("/escalate", "L2 sev2 checkout fails")
    assert status == 503
    assert adapter.transport() is not None  # it can still deliver what others queued


async def test_without_a_bot_token_slack_is_off_but_the_server_runs(runtime: Runtime) -> None:
    runtime.settings = Settings(slack_bot_token=None, slack_signing_secret=None, slack_app_token=None)
    adapter = build_slack_adapter(runtime)
    assert adapter.transport() is None
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(build_web_app(runtime, [adapter], background=False))) as client:
        response = await client.post("/slack/events", data=b"x")
        health = await client.get("/healthz")
    assert response.status == 503
    assert health.status == 200


# ---- slash commands -------------------------------------------------------------------------


async def test_escalate_with_text_opens_a_case_and_answers_only_the_caller(
        slack: SlackCaller, slack_runtime: Runtime, api: FakeSlackApi) -> None:
    status, body = await slack.command("/escalate", "L2 sev2 customer:globex checkout fails for EU cards")
    assert status == 200
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith("Opened ESC-1001 in L2")
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None
    assert (case.tier, case.severity.value, case.customer) == ("L2", "sev2", "globex")
    assert case.title == "checkout fails for EU cards"
    assert case.opened_by.person == "alice"
    assert case.origin is not None and case.origin.channel == "C0SUPPORT"
    # Nothing is posted from the request: the card waits in the outbox for the delivery worker.
    assert api.methods() == ["auth.test"]
    assert await outbox_size(slack_runtime) > 0


async def test_escalate_with_wrong_words_gets_usage_only_the_caller_sees(
        slack: SlackCaller, slack_runtime: Runtime) -> None:
    status, body = await slack.command("/escalate", "L9 sev2 checkout fails")
    assert status == 200
    assert body["response_type"] == "ephemeral"
    assert "Usage: /escalate" in body["text"]
    assert await open_cases(slack_runtime) == []


async def test_escalate_for_an_unknown_customer_says_which_customers_exist(slack: SlackCaller) -> None:
    _, body = await slack.command("/escalate", "L2 customer:nobody checkout fails")
    assert "Unknown customer 'nobody'" in body["text"]
    assert "globex" in body["text"]


async def test_case_command_shows_the_case_to_the_caller(slack: SlackCaller) -> None:
    await slack.command("/escalate", "L2 sev2 checkout fails")
    status, body = await slack.command("/case", "ESC-1001", user="U0CLEO")
    assert status == 200
    assert body["response_type"] == "ephemeral"
    assert "ESC-1001" in text_of(body)
    assert "checkout fails" in text_of(body)


async def test_case_command_acknowledges_and_claims(slack: SlackCaller, slack_runtime: Runtime) -> None:
    await slack.command("/escalate", "L2 sev2 checkout fails")
    _, ack = await slack.command("/case", "ESC-1001 ack", user="U0CLEO", user_name="cleo")
    _, claim = await slack.command("/case", "ESC-1001 claim", user="U0CLEO", user_name="cleo")
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None
    assert case.acknowledged_by == "cleo"
    assert case.owner == "cleo"
    assert ack["response_type"] == claim["response_type"] == "ephemeral"


async def test_case_command_for_a_missing_case_says_so(slack: SlackCaller) -> None:
    _, body = await slack.command("/case", "ESC-4242")
    assert "There is no case ESC-4242" in body["text"]


async def test_oncall_command_says_who_is_on_call(slack: SlackCaller) -> None:
    status, body = await slack.command("/oncall", "L2")
    assert status == 200
    assert body["response_type"] == "ephemeral"
    assert "l2-primary" in text_of(body)


async def test_an_unknown_command_gets_the_help(slack: SlackCaller) -> None:
    status, body = await slack.command("/frobnicate", "now")
    assert status == 200
    assert "Escalator commands" in body["text"]


async def test_the_same_slash_command_delivered_twice_opens_one_case(
        slack: SlackCaller, slack_runtime: Runtime) -> None:
    body = slack.command_body("/escalate", "L2 sev2 checkout fails", trigger_id="tr-same")
    first = await slack.post(body, "application/x-www-form-urlencoded")
    second = await slack.post(body, "application/x-www-form-urlencoded", headers={"X-Slack-Retry-Num": "1"})
    assert first[0] == second[0] == 200
    assert await open_cases(slack_runtime) == ["ESC-1001"]
    assert second[1]["text"] == first[1]["text"]


# ---- the form -------------------------------------------------------------------------------


async def test_escalate_without_text_opens_the_form(slack: SlackCaller, api: FakeSlackApi,
                                                    slack_runtime: Runtime) -> None:
    status, body = await slack.command("/escalate", "", trigger_id="tr-form")
    assert status == 200
    assert body is None  # an empty ack: the modal is the answer
    (call,) = api.calls_to("views.open")
    assert call.args["trigger_id"] == "tr-form"
    view = opened_view(api)
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert {"tier", "severity", "customer", "category", "summary"} <= set(blocks)
    tiers = [o["value"] for o in blocks["tier"]["element"]["options"]]
    assert tiers == ["auto", "L0", "L1", "L2", "L3", "vendor"]
    customers = [o["value"] for o in blocks["customer"]["element"]["options"]]
    assert customers == ["globex", "initech", "smallco"]
    assert await open_cases(slack_runtime) == []


async def test_submitting_the_form_opens_the_case_it_describes(
        slack: SlackCaller, api: FakeSlackApi, slack_runtime: Runtime) -> None:
    await slack.command("/escalate", "", channel="C0HELP")
    view = opened_view(api)
    status, body = await slack.submit(view, {"tier": "L3", "severity": "sev1", "customer": "smallco",
                                             "category": "API", "summary": "webhooks\nstopped   firing"})
    assert status == 200
    assert body["response_action"] == "update"
    assert "Opened ESC-1001" in str(body["view"])
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None
    assert (case.tier, case.severity.value, case.customer, case.category) == ("L3", "sev1", "smallco", "api")
    assert case.title == "webhooks stopped firing"
    assert case.origin is not None and case.origin.channel == "C0HELP"


async def test_the_form_left_to_routing_lets_the_rules_choose_the_tier(
        slack: SlackCaller, api: FakeSlackApi, slack_runtime: Runtime) -> None:
    await slack.command("/escalate", "")
    await slack.submit(opened_view(api), {"tier": "auto", "severity": None, "summary": "everything is down"})
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.tier == "L3"  # the "down" keyword rule


async def test_a_form_without_a_summary_comes_back_with_the_problem(
        slack: SlackCaller, api: FakeSlackApi, slack_runtime: Runtime) -> None:
    await slack.command("/escalate", "")
    status, body = await slack.submit(opened_view(api), {"tier": "L2", "summary": "   "})
    assert status == 200
    assert body == {"response_action": "errors", "errors": {"summary": "Add a short summary of the problem."}}
    assert await open_cases(slack_runtime) == []


async def test_the_same_form_submitted_twice_opens_one_case(
        slack: SlackCaller, api: FakeSlackApi, slack_runtime: Runtime) -> None:
    await slack.command("/escalate", "")
    view = opened_view(api)
    await slack.submit(view, {"tier": "L2", "summary": "checkout fails"}, view_id="V1", view_hash="h9")
    await slack.submit(view, {"tier": "L2", "summary": "checkout fails"}, view_id="V1", view_hash="h9")
    assert await open_cases(slack_runtime) == ["ESC-1001"]


async def test_escalate_this_message_prefills_the_form_with_the_message_and_its_permalink(
        slack: SlackCaller, api: FakeSlackApi, slack_runtime: Runtime, worker: DeliveryWorker) -> None:
    message = {"type": "message", "user": "U0CUSTOMER", "ts": "1699999999.000200",
               "text": "Hi <@U0ALICE>, refunds fail with &lt;error 42&gt; since <https://status.example|the update>"}
    status, _body = await slack.shortcut(message, channel="C0SUPPORT", trigger_id="tr-short")
    assert status == 200
    (call,) = api.calls_to("views.open")
    assert call.args["trigger_id"] == "tr-short"
    view = opened_view(api)
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["summary"]["element"]["initial_value"] == (
        "Hi @alice, refunds fail with <error 42> since the update (https://status.example)")
    link = "https://acme.slack.com/archives/C0SUPPORT/p1699999999000200"
    assert link in str(view["blocks"][0])

    await slack.submit(view, {"tier": "L2", "severity": "sev3",
                              "summary": blocks["summary"]["element"]["initial_value"]})
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.origin is not None
    assert case.origin.message_url == link
    assert case.origin.thread == "1699999999.000200"
    await worker.drain()
    # The case thread links back to the message, and the link-back is threaded under it.
    assert any(link in text_of(m) for m in api.messages["C0L2"])
    (back,) = [m for m in api.messages["C0SUPPORT"]]
    assert back["thread_ts"] == "1699999999.000200"


async def test_a_form_that_cannot_be_opened_gets_a_typed_alternative(
        slack: SlackCaller, api: FakeSlackApi) -> None:
    api.fail("views.open", error="expired_trigger_id")
    status, body = await slack.command("/escalate", "")
    assert status == 200
    assert "could not open the form" in body["text"]


# ---- mentions (the Events API) ---------------------------------------------------------------


async def test_a_mention_opens_a_case_and_a_retried_event_does_nothing_more(
        slack: SlackCaller, api: FakeSlackApi, slack_runtime: Runtime, worker: DeliveryWorker) -> None:
    event = {"type": "app_mention", "user": "U0ALICE", "channel": "C0SUPPORT", "ts": "1700000001.000100",
             "text": "<@U0BOT> escalate L2 sev2 invoices are doubled"}
    first = await slack.event(event, event_id="Ev0001")
    second = await slack.event(event, event_id="Ev0001", retry=1)
    third = await slack.event(event, event_id="Ev0001", retry=2)
    assert first[0] == second[0] == third[0] == 200
    assert await open_cases(slack_runtime) == ["ESC-1001"]
    await worker.drain()
    dms = [c for c in api.calls_to("chat.postMessage") if c.args["channel"] == "D0ALICE"]
    assert len(dms) == 1  # the answer to the caller, once
    assert "Opened ESC-1001" in dms[0].args["text"]
