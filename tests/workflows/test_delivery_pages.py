"""The page rules of the one Delivery (bot.delivery) with a recording platform, real Redis and a
FakeClock: pages inside one pacing window fold into the DM sent before (updated in place, each
fold notifying), a fold delivered twice is done once, amends redraw the whole DM, a DM that can
no longer be edited gives way to a new one, and the tier channel stands in for a missing thread.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.delivery import Delivery, Link, MergedPage
from bot.messages import Address, ChannelLink, DirectRef, Notice, OutboxMessage, ThreadLink, case_thread
from bot.model import ThreadRef
from bot.outbox import RetryLater, Undeliverable
from bot.pacing import Pace
from bot.runtime import Runtime
from tests.workflows.helpers import posted
from tests.workflows.test_delivery_base import FakePlatform

_ids = itertools.count(1)


@dataclass
class PacedPlatform(FakePlatform):
    """The recording platform with a DM bucket (1/s, burst 3: a 3 s window) and a notify call."""

    notifies: bool = True
    refuse_updates: bool = False

    def pace(self, message: OutboxMessage) -> list[Pace]:  # type: ignore[override]
        return [Pace(f"dm:{message.address.user}", 1.0, 3)]

    async def direct(self, user: str, notice: Notice, links: Sequence[Link]) -> DirectRef:
        ref = await super().direct(user, notice, links)
        self.calls[-1][1]["channels"] = [c.label for c in notice.channel_links]
        return ref

    async def update_direct(self, ref: DirectRef, notice: Notice, links: Sequence[Link]) -> None:
        if self.refuse_updates:
            raise Undeliverable("Slack refused the message: cant_update_message")
        await super().update_direct(ref, notice, links)
        self.calls[-1][1].update(text=notice.text, channels=[c.label for c in notice.channel_links])

    def __getattr__(self, name: str) -> Any:
        if name == "notify_direct" and self.notifies:
            return self._notify_direct
        raise AttributeError(name)

    async def _notify_direct(self, user: str, ref: DirectRef, notice: Notice, links: Sequence[Link]) -> str:
        self.calls.append(("notify_direct", {"user": user, "ref": ref, "title": notice.title, "text": notice.text}))
        return f"note-{next(self.ids)}"


@pytest.fixture
def platform() -> PacedPlatform:
    return PacedPlatform()


@pytest.fixture
def delivery(runtime: Runtime, platform: PacedPlatform, clock: FakeClock) -> Delivery:
    return Delivery(client=platform, store=runtime.store, clock=clock)


def page(case: str, clock: FakeClock, *, user: str = "U0BEN", tier: str = "L3") -> OutboxMessage:
    thread = case_thread(case, tier)
    notice = Notice(kind="page", title=f"You are paged for {case} (sev1)", case_id=case, severity="sev1",
                    text=f"{case} is down\nWhy you: on call", private=True,
                    links=[ThreadLink(thread=thread, label="Open the case thread")],
                    channel_links=[ChannelLink(thread=thread, platform="slack", channel=f"C0{tier}",
                                               label=f"{tier} Engineering channel"),
                                   ChannelLink(thread=thread, platform="teams", channel=f"19:{tier}@thread.tacv2",
                                               label=f"{tier} Engineering channel (Teams)")])
    return OutboxMessage(id=f"p{next(_ids)}", address=Address(platform="slack", user=user, private=True),
                         notice=notice, created_at=clock.now())


async def post_thread(runtime: Runtime, case: str, tier: str = "L3") -> str:
    url = f"https://chat.example/{case}"
    await runtime.store.set_thread(case, tier, ThreadRef(platform="slack", channel=f"C0{tier}", root_id=case,
                                                         url=url))
    return url


def amends(messages: list[OutboxMessage]) -> list[OutboxMessage]:
    return [m for m in messages if m.notice.kind == "amend"]


async def test_pages_inside_the_window_fold_into_the_dm_and_each_notifies_later_ones_get_a_new_dm(
        delivery: Delivery, platform: PacedPlatform, clock: FakeClock) -> None:
    assert await delivery.deliver(page("ESC-1042", clock)) == "dm-1"
    clock.advance(seconds=1)
    assert await delivery.deliver(page("ESC-1043", clock)) == "dm-1"
    clock.advance(seconds=1.5)
    assert await delivery.deliver(page("ESC-1044", clock)) == "dm-1"

    assert len(platform.made("direct")) == 1
    updates = platform.made("update_direct")
    assert [u["ref"].message_id for u in updates] == ["dm-1", "dm-1"]
    assert updates[-1]["title"] == "Paged for ESC-1042, ESC-1043, ESC-1044"
    cases = ("ESC-1042", "ESC-1043", "ESC-1044")
    assert updates[-1]["text"].splitlines() == [f"{c} (sev1): {c} is down" for c in cases]
    assert [(n["title"], n["ref"].message_id) for n in platform.made("notify_direct")] == [
        ("Also paged for ESC-1043", "dm-1"), ("Also paged for ESC-1044", "dm-1")]

    clock.advance(seconds=0.6)  # 3.1 s after the DM: the window is over
    assert await delivery.deliver(page("ESC-1045", clock)) != "dm-1"
    assert [d["title"] for d in platform.made("direct")] == ["You are paged for ESC-1042 (sev1)",
                                                             "You are paged for ESC-1045 (sev1)"]
    assert len(platform.made("update_direct")) == 2


async def test_without_a_notify_call_a_fold_notifies_with_a_new_dm(
        delivery: Delivery, platform: PacedPlatform, clock: FakeClock) -> None:
    platform.notifies = False
    await delivery.deliver(page("ESC-1042", clock))
    await delivery.deliver(page("ESC-1043", clock))
    assert [d["title"] for d in platform.made("direct")] == ["You are paged for ESC-1042 (sev1)",
                                                             "Also paged for ESC-1043"]
    assert platform.made("update_direct")[0]["title"] == "Paged for ESC-1042, ESC-1043"


async def test_pages_merged_in_the_queue_then_a_later_one_fold_into_one_dm(
        delivery: Delivery, platform: PacedPlatform, clock: FakeClock) -> None:
    merged = delivery.merge([page("ESC-1042", clock), page("ESC-1043", clock)])
    assert isinstance(merged, MergedPage)
    await delivery.deliver(merged)
    await delivery.deliver(page("ESC-1044", clock))
    assert [d["title"] for d in platform.made("direct")] == ["Paged for ESC-1042, ESC-1043"]
    assert platform.made("update_direct")[0]["title"] == "Paged for ESC-1042, ESC-1043, ESC-1044"
    assert [n["title"] for n in platform.made("notify_direct")] == ["Also paged for ESC-1044"]


async def test_a_page_delivered_again_after_a_crash_is_neither_posted_nor_folded_twice(
        delivery: Delivery, platform: PacedPlatform, clock: FakeClock, runtime: Runtime) -> None:
    first, second = page("ESC-1042", clock), page("ESC-1043", clock)
    await delivery.deliver(first)
    await delivery.deliver(second)
    await delivery.deliver(first)
    await delivery.deliver(second)
    assert len(platform.made("direct")) == 1
    assert len(platform.made("update_direct")) == 1 and len(platform.made("notify_direct")) == 1
    assert len(amends(await posted(runtime))) == 2  # one per page, never two


async def test_amends_redraw_the_whole_dm_with_every_link_known_and_the_channel_of_what_is_missing(
        delivery: Delivery, platform: PacedPlatform, clock: FakeClock, runtime: Runtime) -> None:
    await delivery.deliver(page("ESC-1042", clock))
    await delivery.deliver(page("ESC-1043", clock, tier="L2"))
    # Sent before either thread existed: this platform's tier channels stand in for them.
    assert platform.made("direct")[0]["channels"] == ["L3 Engineering channel"]
    assert platform.made("update_direct")[0]["channels"] == ["L3 Engineering channel", "L2 Engineering channel"]
    amend_1042, amend_1043 = amends(await posted(runtime))
    assert amend_1042.notice.amends == amend_1043.notice.amends == DirectRef(conversation="D-U0BEN",
                                                                               message_id="dm-1")

    url = await post_thread(runtime, "ESC-1042")
    assert await delivery.deliver(amend_1042) == "dm-1"
    redrawn = platform.made("update_direct")[-1]
    assert redrawn["title"] == "Paged for ESC-1042, ESC-1043"  # both cases, not just the amended one
    assert redrawn["links"] == [("Open ESC-1042", url)] and redrawn["channels"] == ["L2 Engineering channel"]
    with pytest.raises(RetryLater) as waiting:  # ESC-1043's thread is still missing
        await delivery.deliver(amend_1043)
    assert waiting.value.waiting

    url_1043 = await post_thread(runtime, "ESC-1043", tier="L2")
    await delivery.deliver(amend_1043)
    final = platform.made("update_direct")[-1]
    assert final["links"] == [("Open ESC-1042", url), ("Open ESC-1043", url_1043)] and final["channels"] == []
    count = len(platform.made("update_direct"))
    await delivery.deliver(amend_1042)  # delivered again: nothing new to show, no update
    assert len(platform.made("update_direct")) == count


async def test_a_dm_that_can_no_longer_be_edited_gives_way_to_a_new_dm(
        delivery: Delivery, platform: PacedPlatform, clock: FakeClock) -> None:
    await delivery.deliver(page("ESC-1042", clock))
    platform.refuse_updates = True
    assert await delivery.deliver(page("ESC-1043", clock)) != "dm-1"
    assert [d["title"] for d in platform.made("direct")] == ["You are paged for ESC-1042 (sev1)",
                                                             "You are paged for ESC-1043 (sev1)"]
    assert platform.made("notify_direct") == []


async def test_a_fold_waits_while_an_amend_is_redrawing_the_same_dm(
        delivery: Delivery, platform: PacedPlatform, clock: FakeClock) -> None:
    await delivery.deliver(page("ESC-1042", clock))
    dm = DirectRef(conversation="D-U0BEN", message_id="dm-1")
    async with delivery._page_lock(dm, "an-amend"):
        with pytest.raises(RetryLater) as waiting:
            await delivery.deliver(page("ESC-1043", clock))
    assert waiting.value.waiting and platform.made("update_direct") == []
    await delivery.deliver(page("ESC-1043", clock))  # the lock is free again
    assert len(platform.made("update_direct")) == 1


async def test_a_page_whose_thread_exists_shows_its_link_and_no_channel(
        delivery: Delivery, platform: PacedPlatform, clock: FakeClock, runtime: Runtime) -> None:
    url = await post_thread(runtime, "ESC-1042")
    await delivery.deliver(page("ESC-1042", clock))
    [sent] = platform.made("direct")
    assert sent["links"] == [("Open the case thread", url)] and sent["channels"] == []
    assert amends(await posted(runtime)) == []
