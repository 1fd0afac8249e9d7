"""One case from start to end in Slack, the way a support team lives it, against the real libraries.

/escalate -> card and thread in L2 -> the on-call engineer is paged (thread + DM) -> nobody
answers, the policy's next step pages more people -> Acknowledge stops paging -> Escalate ▸ L3
with a reason -> L3 is paged -> Resolve with the resolution -> the opener hears about it.
"""

from __future__ import annotations

from adapters.slack.app import SlackAdapter
from bot.clock import FakeClock
from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import buttons, card, field_value, opened_view, replies, roots
from tests.fakes.slack_api import FakeSlackApi


def dms_to(api: FakeSlackApi, user: str) -> list[str]:
    """What the bot wrote to `user` by DM: posts, and updates of them (a page amended with its link)."""
    return [c.dump() for c in api.calls_to("chat.postMessage") + api.calls_to("chat.update")
            if c.args["channel"] == "D" + user[1:]]


async def test_a_case_goes_from_escalate_to_resolved_in_slack(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, adapter: SlackAdapter,
        slack_runtime: Runtime, clock: FakeClock) -> None:
    # Alice escalates from the support channel.
    _, answer = await slack.command("/escalate", "L2 sev2 customer:globex checkout fails for EU cards")
    assert answer["response_type"] == "ephemeral" and "Paging Cleo Chen" in answer["text"]
    await worker.drain()
    clock.advance(seconds=1)  # the page went first; its link is added once the thread is posted
    await worker.drain()
    l2 = card(api, "C0L2")
    assert any("<@U0CLEO>" in m["text"] for m in replies(api, "C0L2", l2["ts"]))
    assert any("You are paged for ESC-1001" in t and "archives/C0L2" in t for t in dms_to(api, "U0CLEO"))
    assert any("Follow the case thread" in str(m["blocks"]) for m in api.messages["C0SUPPORT"])

    # Ten quiet minutes: the policy's second step pages Cleo again and Gus.
    clock.advance(minutes=10, seconds=1)
    assert await slack_runtime.scheduler.run_due() >= 1
    await worker.drain()
    pages = [m for m in replies(api, "C0L2", l2["ts"]) if m["text"].startswith("<@")]
    assert len(pages) == 2 and "<@U0GUS>" in pages[1]["text"]

    # Cleo acknowledges from the card: paging stops, the card says so.
    await slack.click(buttons(card(api, "C0L2"))["acknowledge"], user="U0CLEO")
    await worker.drain()
    assert field_value(card(api, "C0L2"), "Status") == "Acknowledged"
    clock.advance(minutes=30)
    await slack_runtime.scheduler.run_due()
    await worker.drain()
    assert len([m for m in replies(api, "C0L2", l2["ts"]) if m["text"].startswith("<@")]) == 2

    # It needs engineering: Escalate ▸ L3 with a reason.
    await slack.click(buttons(card(api, "C0L2"))["escalate"], user="U0CLEO")
    await slack.submit(opened_view(api), {"reason": "the payment service rejects EU cards"}, user="U0CLEO")
    await worker.drain()
    l3 = card(api, "C0L3")
    assert field_value(card(api, "C0L2"), "Status") == "Moved to L3 Engineering"
    l3_pages = [m for m in replies(api, "C0L3", l3["ts"]) if m["text"].startswith("<@")]
    assert l3_pages

    # Erin acknowledges in L3 and resolves with the resolution.
    await slack.click(buttons(card(api, "C0L3"))["acknowledge"], user="U0ERIN")
    await slack.click(buttons(card(api, "C0L3"))["resolve"], user="U0ERIN")
    await slack.submit(opened_view(api), {"reason": "rolled back the card validation change"}, user="U0ERIN")
    await worker.drain()
    await adapter.flush()
    resolved = card(api, "C0L3")
    assert field_value(resolved, "Status") == "Resolved"
    assert field_value(resolved, "Resolution") == "rolled back the card validation change"
    assert list(buttons(resolved)) == ["reopen"]
    assert any("ESC-1001 is resolved" in t for t in dms_to(api, "U0ALICE"))

    # One card per tier thread, ever: every change was an update.
    assert len(roots(api, "C0L2")) == 1 and len(roots(api, "C0L3")) == 1
    assert await slack_runtime.outbox.dead_letters("slack") == []
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and not case.is_open and case.resolved_tier == "L3"
