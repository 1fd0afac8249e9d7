"""The one Delivery (bot.delivery) with a recording platform: routing, the first-card lock, stale
cards, the link policy, the page rules (send at once, amend later, merge) and root reconcile.

The platform is a recording fake with no SDK; Redis and the store are real, time is a FakeClock.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.delivery import AMEND_WAIT, LINK_GRACE, Delivery, Link, MaybePosted, RootGone
from bot.messages import Address, DirectRef, FileRef, Notice, OutboxMessage, ThreadLink, case_thread
from bot.model import ThreadRef
from bot.outbox import RetryLater, Undeliverable
from bot.runtime import Runtime
from tests.workflows.helpers import posted


@dataclass
class FakePlatform:
    """A PlatformClient that records every call; it can lose answers, refuse, or hold a post."""

    platform: str = "slack"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    shown: dict[str, ThreadRef] = field(default_factory=dict)  # roots in channels, by message id
    hold: asyncio.Event | None = None  # post_root waits for it (two deliveries in flight at once)
    lose_answers: int = 0  # post, then raise MaybePosted (the answer timed out)
    refuse: list[Exception] = field(default_factory=list)  # raised before anything is posted
    gone: bool = False  # the next update_root finds the root deleted
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def made(self, method: str) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == method]

    def pace(self, message: OutboxMessage) -> tuple[str, float] | None:
        return None

    async def post_root(self, channel: str, notice: Notice, links: Sequence[Link], *, message_id: str,
                        thread: str) -> ThreadRef:
        self.calls.append(("post_root", {"channel": channel, "title": notice.title, "links": list(links),
                                         "message_id": message_id, "thread": thread}))
        if self.hold is not None:
            await self.hold.wait()
        if self.refuse:
            raise self.refuse.pop(0)
        n = next(self.ids)
        ref = ThreadRef(platform="slack", channel=channel, root_id=f"root-{n}", url=f"https://chat.example/{n}")
        self.shown[message_id] = ref
        if self.lose_answers:
            self.lose_answers -= 1
            raise MaybePosted("no answer in time")
        return ref

    async def update_root(self, ref: ThreadRef, notice: Notice, links: Sequence[Link], *,
                          thread: str) -> ThreadRef:
        self.calls.append(("update_root", {"ref": ref, "title": notice.title, "links": list(links)}))
        if self.gone:
            self.gone = False
            raise RootGone("deleted")
        return ref

    async def find_root(self, channel: str, message_id: str) -> ThreadRef | None:
        self.calls.append(("find_root", {"channel": channel, "message_id": message_id}))
        return self.shown.get(message_id)

    async def reply(self, ref: ThreadRef, notice: Notice, links: Sequence[Link]) -> str:
        self.calls.append(("reply", {"ref": ref, "title": notice.title, "links": list(links)}))
        return f"reply-{next(self.ids)}"

    async def direct(self, user: str, notice: Notice, links: Sequence[Link]) -> DirectRef:
        self.calls.append(("direct", {"user": user, "title": notice.title, "text": notice.text,
                                      "links": list(links)}))
        return DirectRef(conversation=f"D-{user}", message_id=f"dm-{next(self.ids)}")

    async def update_direct(self, ref: DirectRef, notice: Notice, links: Sequence[Link]) -> None:
        self.calls.append(("update_direct", {"ref": ref, "kind": notice.kind, "title": notice.title,
                                             "links": list(links)}))

    async def post(self, channel: str, reply_to: str | None, notice: Notice, links: Sequence[Link]) -> str:
        self.calls.append(("post", {"channel": channel, "reply_to": reply_to, "title": notice.title,
                                    "links": list(links)}))
        return f"post-{next(self.ids)}"

    async def upload(self, channel: str | None, user: str | None, notice: Notice) -> str:
        assert notice.file is not None
        self.calls.append(("upload", {"channel": channel, "user": user, "filename": notice.file.filename}))
        return f"file-{next(self.ids)}"


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def delivery(runtime: Runtime, platform: FakePlatform, clock: FakeClock) -> Delivery:
    return Delivery(client=platform, store=runtime.store, clock=clock)


_ids = itertools.count(1)


def message(kind: str, title: str, clock: FakeClock, *, links: Sequence[ThreadLink] = (),
            version: int | None = None, file: FileRef | None = None, case_id: str = "ESC-1042",
            **address: Any) -> OutboxMessage:
    notice = Notice(kind=kind, title=title, case_id=case_id, links=list(links), case_version=version,  # type: ignore[arg-type]
                    file=file, severity="sev1", text=f"{title} summary\nWhy you: on call")
    return OutboxMessage(id=f"m{next(_ids)}", address=Address(platform="slack", **address), notice=notice,
                         created_at=clock.now())


def card(clock: FakeClock, version: int = 1, title: str = "ESC-1042 card") -> OutboxMessage:
    return message("card", title, clock, version=version, channel="C0L2", thread=case_thread("ESC-1042", "L2"))


def in_thread(kind: str, title: str, clock: FakeClock, **kw: Any) -> OutboxMessage:
    return message(kind, title, clock, channel="C0L2", thread=case_thread("ESC-1042", "L2"), **kw)


def to_l3(label: str = "Open the case thread") -> ThreadLink:
    return ThreadLink(thread=case_thread("ESC-1042", "L3"), label=label)


async def post_l3(runtime: Runtime, platform: str = "slack", url: str | None = "https://chat.example/l3") -> None:
    await runtime.store.set_thread("ESC-1042", "L3", ThreadRef(platform=platform,  # type: ignore[arg-type]
                                                               channel="C0L3", root_id="l3", url=url))


# ---- routing by kind ------------------------------------------------------------------------


async def test_the_first_card_posts_the_root_and_later_cards_update_it(
        delivery: Delivery, platform: FakePlatform, runtime: Runtime, clock: FakeClock) -> None:
    assert await delivery.deliver(card(clock, 1)) == "root-1"
    assert await delivery.deliver(card(clock, 2, "acknowledged")) == "root-1"
    assert [name for name, _ in platform.calls] == ["post_root", "update_root"]
    assert platform.made("post_root")[0]["thread"] == "case:ESC-1042:L2"
    assert await runtime.store.get_thread("ESC-1042", "L2", "slack") == platform.shown[
        platform.made("post_root")[0]["message_id"]]


async def test_replies_and_in_thread_pages_wait_for_the_root_then_go_under_it(
        delivery: Delivery, platform: FakePlatform, clock: FakeClock) -> None:
    reply = in_thread("reply", "Ben acknowledged", clock)
    with pytest.raises(RetryLater, match="thread root not posted yet") as waited:
        await delivery.deliver(reply)
    assert waited.value.waiting
    await delivery.deliver(card(clock))
    await delivery.deliver(reply)
    await delivery.deliver(in_thread("page", "Paging Ben", clock))
    assert [(name, args["ref"].root_id) for name, args in platform.calls if name == "reply"] == [
        ("reply", "root-1"), ("reply", "root-1")]


async def test_a_message_to_a_person_is_a_direct_message_and_to_a_channel_a_post(
        delivery: Delivery, platform: FakePlatform, clock: FakeClock) -> None:
    await delivery.deliver(message("direct", "ESC-1042 is yours", clock, user="U0BEN"))
    await delivery.deliver(message("post", "Escalated as ESC-1042", clock, channel="C0HELP", reply_to="1.5"))
    await delivery.deliver(message("post", "Status", clock, channel="C0STATUS"))
    assert platform.made("direct")[0]["user"] == "U0BEN"
    assert [(p["channel"], p["reply_to"]) for p in platform.made("post")] == [("C0HELP", "1.5"), ("C0STATUS", None)]


async def test_an_upload_goes_to_the_person_or_the_channel_and_needs_a_file(
        delivery: Delivery, platform: FakePlatform, clock: FakeClock) -> None:
    chart = FileRef(filename="digest.png", mime_type="image/png", data_b64=base64.b64encode(b"\x89PNG").decode())
    assert await delivery.deliver(message("upload", "Weekly digest", clock, file=chart, user="U0BEN")) == "file-1"
    await delivery.deliver(message("upload", "Weekly digest", clock, file=chart, channel="C0DIGEST"))
    assert [(u["user"], u["channel"], u["filename"]) for u in platform.made("upload")] == [
        ("U0BEN", None, "digest.png"), (None, "C0DIGEST", "digest.png")]
    with pytest.raises(Undeliverable, match="without a file"):
        await delivery.deliver(message("upload", "Weekly digest", clock, channel="C0DIGEST"))


# ---- the first-card lock and stale cards ----------------------------------------------------


async def test_two_deliveries_racing_for_the_first_card_post_one_root(
        runtime: Runtime, platform: FakePlatform, clock: FakeClock) -> None:
    platform.hold = asyncio.Event()
    one = Delivery(client=platform, store=runtime.store, clock=clock)
    two = Delivery(client=platform, store=runtime.store, clock=clock)  # another process, same Redis
    first, second = card(clock, 1), card(clock, 2, "claimed")
    posting = asyncio.create_task(one.deliver(first))
    while not platform.made("post_root"):
        await asyncio.sleep(0)
    with pytest.raises(RetryLater, match="another worker is posting") as waited:
        await two.deliver(second)
    assert waited.value.waiting
    platform.hold.set()
    assert await posting == "root-1"
    assert await two.deliver(second) == "root-1"  # the loser's retry updates the winner's root
    assert len(platform.made("post_root")) == 1
    assert [u["title"] for u in platform.made("update_root")] == ["claimed"]


async def test_a_card_older_than_the_one_shown_is_skipped(
        delivery: Delivery, platform: FakePlatform, clock: FakeClock) -> None:
    await delivery.deliver(card(clock, 3, "v3"))
    assert await delivery.deliver(card(clock, 2, "v2")) is None
    assert await delivery.deliver(card(clock, 3, "v3 again")) == "root-1"  # the same version is a retry
    assert [name for name, _ in platform.calls] == ["post_root", "update_root"]


async def test_a_deleted_root_is_posted_again_and_remembered(
        delivery: Delivery, platform: FakePlatform, runtime: Runtime, clock: FakeClock) -> None:
    await delivery.deliver(card(clock, 1))
    platform.gone = True
    assert await delivery.deliver(card(clock, 2)) == "root-2"
    ref = await runtime.store.get_thread("ESC-1042", "L2", "slack")
    assert ref is not None and ref.root_id == "root-2"


# ---- root reconcile after a post that got no answer -----------------------------------------


async def test_a_root_post_that_got_no_answer_is_found_and_reused_not_posted_again(
        delivery: Delivery, platform: FakePlatform, runtime: Runtime, clock: FakeClock) -> None:
    platform.lose_answers = 1
    first = card(clock, 1)
    with pytest.raises(MaybePosted):
        await delivery.deliver(first)
    assert await delivery.deliver(first) == "root-1"
    assert len(platform.made("post_root")) == 1
    assert platform.made("find_root") == [{"channel": "C0L2", "message_id": first.id}]
    ref = await runtime.store.get_thread("ESC-1042", "L2", "slack")
    assert ref is not None and ref.root_id == "root-1"


async def test_a_newer_card_after_a_lost_answer_updates_the_root_the_lost_post_left(
        delivery: Delivery, platform: FakePlatform, clock: FakeClock) -> None:
    platform.lose_answers = 1
    with pytest.raises(MaybePosted):
        await delivery.deliver(card(clock, 1))
    assert await delivery.deliver(card(clock, 2, "acknowledged")) == "root-1"
    assert len(platform.made("post_root")) == 1
    assert [u["title"] for u in platform.made("update_root")] == ["acknowledged"]


async def test_a_refused_root_post_is_posted_again_without_searching_for_it(
        delivery: Delivery, platform: FakePlatform, clock: FakeClock) -> None:
    platform.refuse.append(RetryLater("rate limited", after=3))
    first = card(clock, 1)
    with pytest.raises(RetryLater, match="rate limited"):
        await delivery.deliver(first)
    assert await delivery.deliver(first) == "root-1"
    assert platform.made("find_root") == []
    assert len(platform.made("post_root")) == 2


# ---- the link policy --------------------------------------------------------------------------


async def test_a_link_to_a_missing_thread_waits_a_grace_period_then_goes_without_it(
        delivery: Delivery, platform: FakePlatform, clock: FakeClock) -> None:
    moved = message("post", "Escalated to L3", clock, channel="C0HELP", links=[to_l3()])
    with pytest.raises(RetryLater, match="linked thread not posted yet: case:ESC-1042:L3") as waited:
        await delivery.deliver(moved)
    assert waited.value.waiting and platform.calls == []
    clock.advance(LINK_GRACE)
    await delivery.deliver(moved)
    assert platform.made("post")[0]["links"] == []


async def test_a_link_resolves_to_this_platforms_thread_first_else_any_with_a_url(
        delivery: Delivery, platform: FakePlatform, runtime: Runtime, clock: FakeClock) -> None:
    await post_l3(runtime, "teams", "https://teams.example/l3")
    await delivery.deliver(message("post", "see L3", clock, channel="C0HELP", links=[to_l3("L3")]))
    await post_l3(runtime, "slack", "https://acme.slack.com/l3")
    await delivery.deliver(message("post", "see L3", clock, channel="C0HELP", links=[to_l3("L3")]))
    assert [p["links"] for p in platform.made("post")] == [[("L3", "https://teams.example/l3")],
                                                           [("L3", "https://acme.slack.com/l3")]]


# ---- pages: at once, amended later, merged ----------------------------------------------------


async def test_a_direct_page_goes_out_at_once_and_is_amended_with_the_link_once_the_thread_exists(
        delivery: Delivery, platform: FakePlatform, runtime: Runtime, clock: FakeClock) -> None:
    page = message("page", "You are paged for ESC-1042 (sev1)", clock, user="U0BEN", links=[to_l3()])
    assert await delivery.deliver(page) == "dm-1"
    assert platform.made("direct")[0]["links"] == []
    assert platform.made("direct")[0]["text"].startswith("You are paged for ESC-1042 (sev1) summary")
    await delivery.deliver(page)  # delivered again after a crash: still one amend
    [amend] = [m for m in await posted(runtime) if m.notice.kind == "amend"]
    assert amend.notice.amends == DirectRef(conversation="D-U0BEN", message_id="dm-1")

    clock.advance(minutes=2)  # far past the link grace: an amend waits for its thread, not a grace
    with pytest.raises(RetryLater, match="case:ESC-1042:L3") as waited:
        await delivery.deliver(amend)
    assert waited.value.waiting and platform.made("update_direct") == []
    await post_l3(runtime)
    assert await delivery.deliver(amend) == "dm-1"
    [updated] = platform.made("update_direct")
    assert updated["ref"] == amend.notice.amends and updated["kind"] == "page"
    assert updated["links"] == [("Open the case thread", "https://chat.example/l3")]


async def test_a_direct_page_whose_links_resolve_needs_no_amend(
        delivery: Delivery, platform: FakePlatform, runtime: Runtime, clock: FakeClock) -> None:
    await post_l3(runtime)
    await delivery.deliver(message("page", "You are paged", clock, user="U0BEN", links=[to_l3()]))
    assert platform.made("direct")[0]["links"] == [("Open the case thread", "https://chat.example/l3")]
    assert [m for m in await posted(runtime) if m.notice.kind == "amend"] == []


async def test_an_amend_whose_thread_never_appears_is_dropped_after_its_wait(
        delivery: Delivery, platform: FakePlatform, runtime: Runtime, clock: FakeClock) -> None:
    await delivery.deliver(message("page", "You are paged", clock, user="U0BEN", links=[to_l3()]))
    [amend] = [m for m in await posted(runtime) if m.notice.kind == "amend"]
    clock.advance(AMEND_WAIT + timedelta(seconds=1))
    assert await delivery.deliver(amend) is None
    assert platform.made("update_direct") == []


async def test_several_pages_to_one_person_merge_into_one_direct_message(
        delivery: Delivery, platform: FakePlatform, clock: FakeClock) -> None:
    pages = [message("page", f"You are paged for {case} (sev1)", clock, case_id=case, user="U0BEN",
                     links=[ThreadLink(thread=case_thread(case, "L3"), label="Open the case thread")])
             for case in ("ESC-1042", "ESC-1043", "ESC-1044")]
    merged = delivery.merge(pages)
    assert merged is not None
    assert merged.notice.title == "Paged for ESC-1042, ESC-1043, ESC-1044"
    assert merged.notice.text.splitlines() == [
        f"{case} (sev1): You are paged for {case} (sev1) summary" for case in ("ESC-1042", "ESC-1043", "ESC-1044")]
    assert [link.label for link in merged.notice.links] == ["Open ESC-1042", "Open ESC-1043", "Open ESC-1044"]
    assert merged.address.user == "U0BEN" and merged.notice.kind == "page"
    assert delivery.merge(pages) == merged  # the same pages merge to the same message id
    await delivery.deliver(merged)
    assert len(platform.made("direct")) == 1


async def test_only_page_direct_messages_to_one_person_merge(delivery: Delivery, clock: FakeClock) -> None:
    ben = message("page", "paged", clock, user="U0BEN")
    assert delivery.merge([ben]) is None
    assert delivery.merge([ben, message("page", "paged", clock, user="U0CLEO")]) is None
    assert delivery.merge([ben, message("direct", "fyi", clock, user="U0BEN")]) is None
    assert delivery.merge([ben, in_thread("page", "Paging Ben", clock)]) is None
