"""DM pages on Slack, end to end: /escalate through the real Bolt app, the real outbox worker and
SlackTransport against the recording Web API, on a FakeClock.

- Pages to one person inside one pacing window (the DM bucket's refill time, 3 s) make one DM:
  the first page posts it, later ones update it in place to list every case, and each one also
  notifies the person with a reply under that DM that @mentions them (an edit notifies nobody).
  A page after the window is a new DM.
- A page whose case thread is held back (the tier channel answers 429) goes out at once with a
  link to the tier channel (`<#C0L3>`), and is updated with the thread's link once it is posted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from adapters.slack.app import SlackAdapter
from bot.clock import FakeClock, from_ms
from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import card, roots, text_of
from tests.fakes.slack_api import FakeSlackApi

ERIN, ERIN_DM = "U0ERIN", "D0ERIN"  # on call for L3 (schedule l3-primary) on the FakeClock's Monday


class StillSleeps:
    """A worker sleep that moves nothing: the test alone decides when time passes (pacing still
    holds, the worker carries on from where each sleep would have ended)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def escalate(slack: SlackCaller, text: str) -> str:
    status, body = await slack.command("/escalate", text)
    assert status == 200 and body["text"].startswith("Opened"), body
    return str(body["text"].split()[1])


def page_posts(api: FakeSlackApi) -> list[Any]:
    """chat.postMessage calls to Erin's DM: top-level DMs and replies under them."""
    return [c for c in api.calls_to("chat.postMessage") if c.args.get("channel") == ERIN_DM]


def dm_updates(api: FakeSlackApi) -> list[Any]:
    return [c for c in api.calls_to("chat.update") if c.args.get("channel") == ERIN_DM]


async def test_pages_inside_one_pacing_window_make_one_dm_updated_in_place_and_each_one_notifies(
        slack: SlackCaller, api: FakeSlackApi, adapter: SlackAdapter, slack_runtime: Runtime,
        clock: FakeClock) -> None:
    transport = adapter.transport()
    assert transport is not None
    worker = slack_runtime.worker(transport, sleep=StillSleeps())

    cases = []
    for i in range(3):  # one every second: each arrives after the DM before it was sent
        cases.append(await escalate(slack, f"L3 sev1 checkout down in region {i}"))
        await worker.drain()
        clock.advance(seconds=1)

    [dm] = roots(api, ERIN_DM)  # one DM, posted once ...
    assert [c.args.get("thread_ts") for c in page_posts(api)] == [None, dm["ts"], dm["ts"]]
    updates = dm_updates(api)
    assert len(updates) >= 2 and all(u.args["ts"] == dm["ts"] for u in updates)
    # ... that now lists every case, each with its thread's link.
    shown = text_of(dm)
    assert shown.startswith(f"Paged for {cases[0]}, {cases[1]}, {cases[2]}")
    for case in cases:
        assert f"{case} (sev1): checkout down in region" in shown
    assert shown.count("archives/C0L3/p") == 3
    # Each later page notified Erin: a reply under the DM that @mentions her, naming the new case.
    notes = [m for m in api.messages[ERIN_DM] if m.get("thread_ts") == dm["ts"]]
    assert [m["text"].split(":")[0] for m in notes] == [f"<@{ERIN}> Also paged for {cases[1]}",
                                                        f"<@{ERIN}> Also paged for {cases[2]}"]

    clock.advance(seconds=5)  # past the window: the next page is a DM of its own
    later = await escalate(slack, "L3 sev1 payments down")
    await worker.drain()
    first, second = roots(api, ERIN_DM)
    assert first["ts"] == dm["ts"] and later not in text_of(first)
    assert text_of(second).startswith(f"You are paged for {later} (sev1)")
    assert await slack_runtime.outbox.dead_letters("slack") == []
    assert await slack_runtime.outbox.pending("slack") == 0


async def settle(worker: DeliveryWorker, runtime: Runtime, clock: FakeClock) -> None:
    """Deliver everything, jumping the clock to each delayed retry when nothing else is due."""
    delayed = runtime.store.keys.outbox_delayed("slack")
    for _ in range(200):
        await worker.drain()
        first = await runtime.store.redis.zrange(delayed, 0, 0, withscores=True)
        if not first:
            return
        clock.set(max(clock.now(), from_ms(int(first[0][1]))))
    raise AssertionError("the outbox did not settle")


async def test_a_page_held_from_its_thread_by_429s_links_the_tier_channel_then_the_thread(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime,
        clock: FakeClock) -> None:
    api.fail("chat.postMessage", status=429, retry_after=30, channel="C0L3")
    case = await escalate(slack, "L3 sev1 login broken for everyone")
    started = clock.now()
    await worker.drain()

    # The page went at once, with what is known and where the thread will be.
    [dm] = roots(api, ERIN_DM)
    [post] = page_posts(api)
    sent = text_of({"text": post.args.get("text"), "blocks": post.blocks()})
    assert f"You are paged for {case} (sev1)" in sent and "login broken for everyone" in sent
    assert "L3 Engineering" in sent  # the tier
    assert "Case thread not posted yet: it will be in <#C0L3>" in sent and "archives/" not in sent
    # ... while the tier channel was held: the page did not wait for its 30 s.
    assert post.at == started
    to_tier = [c.status for c in api.calls_to("chat.postMessage", ok_only=False) if c.args["channel"] == "C0L3"]
    assert to_tier[0] == 429

    await settle(worker, slack_runtime, clock)
    assert clock.now() - started >= timedelta(seconds=30)
    thread = card(api, "C0L3")
    # The same DM, updated: the thread's link instead of the channel.
    [again] = roots(api, ERIN_DM)
    assert again["ts"] == dm["ts"] and dm_updates(api)
    now = text_of(again)
    assert f"archives/C0L3/p{thread['ts'].replace('.', '')}" in now and "<#C0L3>" not in now
    assert len([c for c in page_posts(api) if not c.args.get("thread_ts")]) == 1
    assert await slack_runtime.outbox.dead_letters("slack") == []
