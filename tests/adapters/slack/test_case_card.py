"""The case card in Slack: posted once, updated in place, and every button on it, over HTTP."""

from __future__ import annotations

from adapters.slack.app import SlackAdapter
from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import buttons, card, card_updates, field_value, opened_view, replies, roots, text_of
from tests.fakes.slack_api import FakeSlackApi


async def open_case(slack: SlackCaller, worker: DeliveryWorker, text: str = "L2 sev2 checkout fails") -> None:
    status, body = await slack.command("/escalate", text)
    assert status == 200 and body["text"].startswith("Opened ESC-"), body
    await worker.drain()


async def timeline_actions(runtime: Runtime, case_id: str = "ESC-1001") -> list[str]:
    return [e.action for e in await runtime.store.timeline(case_id)]


async def test_the_card_shows_the_case_and_its_buttons(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker) -> None:
    await open_case(slack, worker, "L2 sev2 customer:globex checkout fails")
    message = card(api, "C0L2")
    text = text_of(message)
    assert "ESC-1001 · checkout fails" in text
    assert field_value(message, "Customer") == "Globex Corp (enterprise)"
    assert field_value(message, "Severity") == "sev2"
    assert field_value(message, "Tier") == "L2 Specialists"
    assert field_value(message, "Status") == "Open, waiting for acknowledgement"
    assert field_value(message, "Owner") == "nobody"
    assert (field_value(message, "SLA") or "").startswith("acknowledge by")
    assert list(buttons(message)) == ["acknowledge", "claim", "escalate", "resolve"]
    assert buttons(message)["escalate"]["text"]["text"] == "Escalate ▸ L3"
    # The thread carries the timeline: who escalated, who was paged (mentioned).
    thread = replies(api, "C0L2", message["ts"])
    assert any("<@U0CLEO>" in m["text"] and "Paging Cleo Chen" in m["text"] for m in thread)


async def test_the_card_root_and_its_permalink_are_remembered(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack, worker)
    ref = await slack_runtime.store.get_thread("ESC-1001", "L2", "slack")
    assert ref is not None
    assert ref.channel == "C0L2"
    assert ref.root_id == card(api, "C0L2")["ts"]
    assert ref.url == f"https://acme.slack.com/archives/C0L2/p{ref.root_id.replace('.', '')}"


async def test_acknowledge_updates_the_card_in_place_and_tells_the_clicker(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, adapter: SlackAdapter,
        slack_runtime: Runtime) -> None:
    await open_case(slack, worker)
    before = card(api, "C0L2")
    status, body = await slack.click(buttons(before)["acknowledge"], user="U0CLEO")
    assert status == 200 and body is None
    await adapter.flush()
    (follow_up,) = api.calls_to("response_url")
    assert follow_up.args["response_type"] == "ephemeral"
    assert follow_up.args["text"] == "You acknowledged ESC-1001; paging stopped."
    posts_before = len(api.calls_to("chat.postMessage"))
    await worker.drain()
    after = card(api, "C0L2")
    assert after["ts"] == before["ts"]
    assert field_value(after, "Status") == "Acknowledged"
    assert "acknowledge" not in buttons(after)
    (update,) = card_updates(api)
    assert update.args["ts"] == before["ts"]
    # The only new posts are thread replies; the card was not posted again.
    new_posts = api.calls_to("chat.postMessage")[posts_before:]
    assert new_posts and all(c.args.get("thread_ts") == before["ts"] for c in new_posts)
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.acknowledged_by == "cleo"


async def test_claim_makes_the_clicker_the_owner(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack, worker)
    await slack.click(buttons(card(api, "C0L2"))["claim"], user="U0BEN")
    await worker.drain()
    assert field_value(card(api, "C0L2"), "Owner") == "Ben Brooks"
    assert "claim" not in buttons(card(api, "C0L2"))


async def test_escalate_asks_for_a_reason_then_moves_the_case_up(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack, worker)
    l2_card = card(api, "C0L2")
    await slack.click(buttons(l2_card)["escalate"], user="U0CLEO", trigger_id="tr-esc")
    (call,) = api.calls_to("views.open")
    assert call.args["trigger_id"] == "tr-esc"
    view = opened_view(api)
    assert view["callback_id"] == "case_reason"
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.tier == "L2"  # nothing happens before the reason is given

    status, body = await slack.submit(view, {"reason": "needs a <!here> database fix"}, user="U0CLEO")
    assert status == 200 and body["response_action"] == "update"
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.tier == "L3"
    await worker.drain()
    l3_card = card(api, "C0L3")
    assert field_value(l3_card, "Tier") == "L3 Engineering"
    moved = card(api, "C0L2")
    assert moved["ts"] == l2_card["ts"]
    assert field_value(moved, "Status") == "Moved to L3 Engineering"
    assert buttons(moved) == {}
    assert f"archives/C0L3/p{l3_card['ts'].replace('.', '')}" in text_of(moved)
    # The new tier is paged in its thread, and the paged people by DM with a link to it.
    l3_thread = replies(api, "C0L3", l3_card["ts"])
    assert any("<@U0DEV>" in m["text"] or "<@U0ERIN>" in m["text"] for m in l3_thread)
    # A page goes out before its thread exists, and is amended with the link once the thread is posted.
    slack_runtime.clock.advance(seconds=1)  # type: ignore[attr-defined]
    await worker.drain()
    dms = [c for c in api.calls_to("chat.postMessage") + api.calls_to("chat.update")
           if c.args["channel"].startswith("D0") and "paged for ESC-1001" in c.args["text"] and "L3" in c.dump()]
    paged = {c.args["channel"] for c in dms}
    assert paged and all(any("archives/C0L3" in c.dump() for c in dms if c.args["channel"] == ch) for ch in paged)
    # The reason was escaped on its way to both threads.
    assert any("&lt;!here&gt;" in c.dump() for c in api.calls_to("chat.postMessage"))
    assert all("<!here>" not in c.dump() for c in api.calls)


async def test_resolve_asks_for_the_resolution_then_offers_reopen(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack, worker)
    await slack.click(buttons(card(api, "C0L2"))["resolve"], user="U0CLEO")
    view = opened_view(api)
    assert view["callback_id"] == "case_reason"
    _status, body = await slack.submit(view, {"reason": "refunded the double charge"}, user="U0CLEO")
    assert body["response_action"] == "update"
    await worker.drain()
    resolved = card(api, "C0L2")
    assert field_value(resolved, "Status") == "Resolved"
    assert field_value(resolved, "Resolution") == "refunded the double charge"
    assert list(buttons(resolved)) == ["reopen"]

    await slack.click(buttons(resolved)["reopen"], user="U0CLEO")
    await worker.drain()
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.is_open and case.reopened == 1
    assert "resolve" in buttons(card(api, "C0L2"))


async def test_a_resolution_left_empty_is_asked_for_again(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack, worker)
    await slack.click(buttons(card(api, "C0L2"))["resolve"], user="U0CLEO")
    _status, body = await slack.submit(opened_view(api), {"reason": ""}, user="U0CLEO")
    assert body == {"response_action": "errors", "errors": {"reason": "Please describe the resolution."}}
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.is_open


async def test_a_double_click_on_acknowledge_acknowledges_once(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, adapter: SlackAdapter,
        slack_runtime: Runtime) -> None:
    await open_case(slack, worker)
    button = buttons(card(api, "C0L2"))["acknowledge"]
    await slack.click(button, user="U0CLEO", action_ts="1700000100.000001")
    await slack.click(button, user="U0CLEO", action_ts="1700000100.000002")
    await adapter.flush()
    assert (await timeline_actions(slack_runtime)).count("acknowledged") == 1
    assert [c.args["text"] for c in api.calls_to("response_url")] == [
        "You acknowledged ESC-1001; paging stopped."] * 2
    updates_before = len(card_updates(api))
    await worker.drain()
    assert len(card_updates(api)) == updates_before + 1


async def test_a_double_click_on_escalate_moves_the_case_up_once_and_pages_once(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack, worker)
    button = buttons(card(api, "C0L2"))["escalate"]
    await slack.click(button, user="U0CLEO")
    await slack.click(button, user="U0CLEO")
    first, second = opened_view(api, 0), opened_view(api, 1)
    await slack.submit(first, {"reason": "database"}, user="U0CLEO", view_id="V1", view_hash="a")
    await slack.submit(second, {"reason": "database"}, user="U0CLEO", view_id="V2", view_hash="b")
    assert (await timeline_actions(slack_runtime)).count("escalated") == 1
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.tier == "L3"
    await worker.drain()
    assert len(roots(api, "C0L3")) == 1
    pages = [m for m in api.messages["C0L3"] if m.get("thread_ts") and "Paging" in m["text"]]
    assert len(pages) == 1


async def test_two_people_claiming_at_once_leaves_one_owner(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, adapter: SlackAdapter,
        slack_runtime: Runtime) -> None:
    import asyncio

    await open_case(slack, worker)
    button = buttons(card(api, "C0L2"))["claim"]
    await asyncio.gather(slack.click(button, user="U0BEN"), slack.click(button, user="U0CLEO"))
    await adapter.flush()
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.owner in ("ben", "cleo")
    answers = sorted(c.args["text"] for c in api.calls_to("response_url"))
    assert answers[1] == "You own ESC-1001 now."
    assert "already owned by" in answers[0]


async def test_a_button_click_with_a_forged_value_does_nothing(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack, worker)
    status, _ = await slack.click({"action_id": "case_claim", "value": '{"a":"explode","c":"ESC-1001"}',
                                   "text": {"type": "plain_text", "text": "Claim"}})
    assert status == 200
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.owner is None
