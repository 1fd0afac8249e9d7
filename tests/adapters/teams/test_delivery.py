"""The Teams delivery transport against the fake Bot Connector: proactive threads, replies, updates,
mentions, 1:1 messages, pacing, retries honouring Retry-After, and dead letters."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from adapters.teams.delivery import USERS, TeamsTransport
from bot.clock import FakeClock
from bot.messages import (
    Address,
    CardAction,
    CardField,
    FileRef,
    Mention,
    Notice,
    OutboxMessage,
    ThreadLink,
    case_thread,
)
from bot.model import ThreadRef
from bot.pacing import Pace
from bot.store import Commit
from tests.adapters.teams.harness import TeamsHarness, card_text

L2 = "19:l2@thread.tacv2"


def message(notice: Notice, **address: object) -> OutboxMessage:
    return OutboxMessage(id=uuid.uuid4().hex, address=Address(platform="teams", **address),  # type: ignore[arg-type]
                         notice=notice, created_at=FakeClock().now())


def case_card(version: int = 1, status: str = "open", title: str = "ESC-1042 · Cannot log in") -> Notice:
    return Notice(kind="card", title=title, case_id="ESC-1042", severity="sev2", status=status,
                  case_version=version, fields=[CardField(label="Status", value=status)],
                  actions=[CardAction(action="acknowledge", label="Acknowledge", case_id="ESC-1042")])


def in_thread(notice: Notice, tier: str = "L2", channel: str = L2) -> OutboxMessage:
    return message(notice, channel=channel, thread=case_thread("ESC-1042", tier))


async def enqueue(teams: TeamsHarness, *messages: OutboxMessage) -> None:
    await teams.runtime.store.commit(Commit(messages=list(messages)))


async def posted_root(teams: TeamsHarness) -> ThreadRef:
    await enqueue(teams, in_thread(case_card()))
    await teams.deliver()
    thread = await teams.runtime.store.get_thread("ESC-1042", "L2", "teams")
    assert thread is not None
    return thread


async def test_the_first_card_opens_a_new_thread_in_the_tier_channel_and_stores_it(teams: TeamsHarness) -> None:
    thread = await posted_root(teams)

    [create] = teams.connector.created
    assert create.body["isGroup"] is True
    assert create.body["channelData"]["channel"] == {"id": L2}
    assert create.body["channelData"]["tenant"] == {"id": "00000000-0000-0000-0000-000000000001"}
    assert create.body["tenantID"] == "00000000-0000-0000-0000-000000000001"
    assert create.cards and "ESC-1042 · Cannot log in" in card_text(create.cards[0])
    assert create.authorization is None  # local mode: no token leaves the process
    assert thread.channel == L2 and thread.root_id == teams.connector.messages[thread.root_id].id
    assert thread.url == (f"https://teams.microsoft.com/l/message/19%3Al2%40thread.tacv2/{thread.root_id}"
                          f"?tenantId=00000000-0000-0000-0000-000000000001&parentMessageId={thread.root_id}")


async def test_later_events_are_replies_in_the_case_thread(teams: TeamsHarness) -> None:
    thread = await posted_root(teams)

    await enqueue(teams, in_thread(Notice(kind="reply", title="Ben Brooks acknowledged", case_id="ESC-1042")))
    await teams.deliver()

    [reply] = teams.connector.sent
    assert reply.op == "send_to_conversation"
    assert reply.conversation_id == f"{L2};messageid={thread.root_id}"
    assert "Ben Brooks acknowledged" in card_text(reply.cards[0])


async def test_a_reply_waits_until_its_thread_root_is_posted(teams: TeamsHarness) -> None:
    await enqueue(teams, in_thread(Notice(kind="reply", title="too early", case_id="ESC-1042")))
    await teams.deliver()

    assert teams.connector.calls == []
    assert await teams.runtime.outbox.pending("teams") == 1


async def test_card_updates_edit_the_root_message_and_never_repost_it(teams: TeamsHarness) -> None:
    thread = await posted_root(teams)

    await enqueue(teams, in_thread(case_card(version=2, status="acknowledged")))
    await teams.deliver()

    assert len(teams.connector.created) == 1
    [update] = teams.connector.updated
    assert update.conversation_id == f"{L2};messageid={thread.root_id}" and update.activity_id == thread.root_id
    assert update.body["id"] == thread.root_id
    assert "acknowledged" in card_text(teams.card_of(thread.root_id))


async def test_a_card_older_than_the_one_shown_is_skipped(teams: TeamsHarness) -> None:
    await enqueue(teams, in_thread(case_card(version=3, status="acknowledged")))
    await teams.deliver()
    await enqueue(teams, in_thread(case_card(version=2, status="open")))
    await teams.deliver()

    assert teams.connector.updated == []
    assert await teams.runtime.outbox.dead_letters("teams") == []


async def test_the_same_outbox_message_is_delivered_once(teams: TeamsHarness) -> None:
    await posted_root(teams)
    once = in_thread(Notice(kind="reply", title="only once", case_id="ESC-1042"))

    await enqueue(teams, once, once)
    await teams.deliver()

    assert len(teams.connector.sent) == 1


async def test_pages_mention_the_paged_people_in_the_thread(teams: TeamsHarness) -> None:
    thread = await posted_root(teams)
    page = Notice(kind="page", title="Paging Ben Brooks, Cleo Chen (step 1)", case_id="ESC-1042",
                  text="<at>Gus Grant</at> [click](https://evil.example) **now**",
                  mentions=[Mention(person="ben", name="Ben Brooks", user_id="29:ben"),
                            Mention(person="cleo", name="Cleo Chen", user_id=None)])

    await enqueue(teams, in_thread(page))
    await teams.deliver()

    [sent] = teams.connector.sent
    assert sent.conversation_id == f"{L2};messageid={thread.root_id}"
    assert sent.body["text"] == "<at>Ben Brooks</at> Cleo Chen paged for ESC-1042"
    assert sent.body["entities"] == [{"type": "mention", "text": "<at>Ben Brooks</at>",
                                      "mentioned": {"id": "29:ben", "name": "Ben Brooks"}}]
    # The user's text is shown literally on the card: no mention, no link, no bold.
    runs = [r for block in sent.cards[0]["body"] if block["type"] == "RichTextBlock" for r in block["inlines"]]
    assert {"type": "TextRun", "text": "<at>Gus Grant</at> [click](https://evil.example) **now**"} in runs


async def test_a_direct_page_uses_the_persons_stored_1to1_chat(teams: TeamsHarness) -> None:
    await teams.remember("install_personal", user="ben")
    await posted_root(teams)
    page = Notice(kind="page", title="You are paged for ESC-1042 (sev2)", case_id="ESC-1042",
                  links=[ThreadLink(thread=case_thread("ESC-1042", "L2"), label="Open the case thread")])

    await enqueue(teams, message(page, user="29:ben", private=True))
    await teams.deliver()

    [sent] = teams.connector.sent
    assert sent.conversation_id == "a:1personal-ben"
    thread = await teams.runtime.store.get_thread("ESC-1042", "L2", "teams")
    assert thread is not None
    assert [(a["title"], a["url"]) for a in sent.cards[0]["actions"]] == [("Open the case thread", thread.url)]


async def test_a_direct_message_to_someone_without_a_chat_opens_one_in_the_tenant(teams: TeamsHarness) -> None:
    await enqueue(teams, message(Notice(kind="direct", title="ESC-1042 is yours now"), user="29:gus", private=True))
    await teams.deliver()

    [create] = teams.connector.created
    assert create.body["isGroup"] is False and create.body["members"] == [{"id": "29:gus"}]
    assert create.body["tenantID"] == "00000000-0000-0000-0000-000000000001"
    [sent] = teams.connector.sent
    assert sent.conversation_id == "a:personal-29:gus"
    assert await teams.runtime.store.get_ref(USERS, "29:gus") is not None  # the next one reuses the chat


async def test_a_link_back_post_replies_in_the_origin_thread(teams: TeamsHarness) -> None:
    await posted_root(teams)
    post = Notice(kind="post", title="Escalated to L2 Specialists as ESC-1042 · Cannot log in", case_id="ESC-1042",
                  links=[ThreadLink(thread=case_thread("ESC-1042", "L2"), label="Follow the case thread")])

    await enqueue(teams, message(post, channel="19:l1@thread.tacv2", reply_to="1732352400000"))
    await teams.deliver()

    [sent] = teams.connector.sent
    assert sent.conversation_id == "19:l1@thread.tacv2;messageid=1732352400000"
    assert sent.cards[0]["actions"][0]["title"] == "Follow the case thread"


async def test_a_link_to_a_thread_nobody_posted_yet_waits(teams: TeamsHarness) -> None:
    post = Notice(kind="post", title="see the L3 thread", links=[ThreadLink(thread=case_thread("ESC-1042", "L3"),
                                                                               label="L3 thread")])
    await enqueue(teams, message(post, channel="19:status@thread.tacv2"))
    await teams.deliver()
    assert teams.connector.calls == []

    await teams.runtime.store.set_thread("ESC-1042", "L3", ThreadRef(platform="slack", channel="C0L3",
                                                                     root_id="1.2", url="https://acme.slack.com/x"))
    teams.runtime.clock.advance(seconds=5)  # type: ignore[attr-defined]
    await teams.deliver()
    [post_call] = teams.connector.created
    assert post_call.cards[0]["actions"] == [{"type": "Action.OpenUrl", "title": "L3 thread",
                                              "url": "https://acme.slack.com/x"}]


async def test_messages_in_one_thread_are_paced_at_seven_a_second(teams: TeamsHarness) -> None:
    await posted_root(teams)
    teams.sleeps.clear()
    transport = teams.adapter.transport()
    assert isinstance(transport, TeamsTransport)
    replies = [in_thread(Notice(kind="reply", title=f"update {i}", case_id="ESC-1042")) for i in range(10)]

    await enqueue(teams, *replies)
    await teams.deliver()

    bot = Pace("bot", 50.0, 50)
    assert transport.pace(replies[0]) == [Pace("case:ESC-1042:L2", 7.0, 7), bot]
    assert transport.pace(message(Notice(kind="direct", title="x"), user="29:ben")) == [Pace("29:ben", 7.0, 7), bot]
    # the root and six replies go at once (a burst of 7), then one every 1/7 s (the fake clock stands still)
    assert teams.sleeps == pytest.approx([1 / 7] * 4, abs=0.002)
    assert [card_text(c.cards[0]) for c in teams.connector.sent] == [f"update {i}" for i in range(10)]


async def test_429_is_retried_after_the_retry_after_the_connector_asked_for(teams: TeamsHarness) -> None:
    await posted_root(teams)
    teams.connector.fail_next(429, retry_after=3, op="send_to_conversation")

    await enqueue(teams, in_thread(Notice(kind="reply", title="after a 429", case_id="ESC-1042")))
    await teams.deliver()
    assert teams.connector.sent == []
    [retry] = await teams.runtime.redis.client.zrange(teams.runtime.store.keys.outbox_delayed("teams"), 0, -1,
                                                      withscores=True)
    due_in_ms = retry[1] - teams.runtime.clock.now().timestamp() * 1000
    assert due_in_ms == pytest.approx(3000)  # the retry waits exactly what Teams asked for

    # (Changed with the delivery engine: a thread keeps its order, so a later reply waits behind
    # the rate-limited one instead of going first after the hold.)
    await enqueue(teams, in_thread(Notice(kind="reply", title="same thread, meanwhile", case_id="ESC-1042")))
    await teams.deliver()
    assert teams.connector.sent == []

    teams.runtime.clock.advance(seconds=3)  # type: ignore[attr-defined]
    await teams.deliver()
    assert [card_text(c.cards[0]) for c in teams.connector.sent] == ["after a 429", "same thread, meanwhile"]
    assert [c.status for c in teams.connector.calls if c.op == "send_to_conversation"] == [429, 200, 200]
    assert await teams.runtime.outbox.dead_letters("teams") == []


@pytest.mark.parametrize("status", [412, 502, 504])
async def test_busy_and_gateway_errors_are_retried_with_backoff(teams: TeamsHarness, status: int) -> None:
    await posted_root(teams)
    teams.connector.fail_next(status, op="send_to_conversation")

    await enqueue(teams, in_thread(Notice(kind="reply", title="eventually", case_id="ESC-1042")))
    await teams.deliver()
    teams.runtime.clock.advance(seconds=2)  # type: ignore[attr-defined]
    await teams.deliver()

    assert len(teams.connector.sent) == 1
    assert await teams.runtime.outbox.dead_letters("teams") == []


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_refusals_go_straight_to_the_dead_letters(teams: TeamsHarness, status: int) -> None:
    await posted_root(teams)
    teams.connector.fail_next(status, op="send_to_conversation")

    await enqueue(teams, in_thread(Notice(kind="reply", title="refused", case_id="ESC-1042")))
    await teams.deliver()

    [dead] = await teams.runtime.outbox.dead_letters("teams")
    assert dead.attempts == 1 and f"HTTP {status}" in dead.error
    assert dead.message.notice.title == "refused"


async def test_a_connector_that_keeps_failing_ends_in_the_dead_letters(teams: TeamsHarness) -> None:
    await posted_root(teams)
    teams.connector.fail_next(502, times=6, op="send_to_conversation")

    await enqueue(teams, in_thread(Notice(kind="reply", title="doomed", case_id="ESC-1042")))
    for _ in range(6):
        await teams.deliver()
        teams.runtime.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]

    [dead] = await teams.runtime.outbox.dead_letters("teams")
    assert dead.attempts == 6 and "502" in dead.error
    assert teams.connector.sent == []


async def test_a_failed_root_post_is_retried_and_posted_once(teams: TeamsHarness) -> None:
    teams.connector.fail_next(429, retry_after=1, op="create_conversation")

    await enqueue(teams, in_thread(case_card()))
    await teams.deliver()
    teams.runtime.clock.advance(seconds=1)  # type: ignore[attr-defined]
    await teams.deliver()

    assert len(teams.connector.created) == 1
    assert await teams.runtime.store.get_thread("ESC-1042", "L2", "teams") is not None


async def test_people_configured_by_entra_object_id_are_mentioned_by_their_teams_id(teams: TeamsHarness) -> None:
    await teams.remember("message_personal", user="ben")  # Teams tells us Ben's 29: id and Entra id
    await posted_root(teams)
    aad = "aaaaaaaa-0000-4000-8000-000000000002"
    page = Notice(kind="page", title="Paging Ben Brooks", case_id="ESC-1042",
                  mentions=[Mention(person="ben", name="Ben Brooks", user_id=aad)])

    await enqueue(teams, in_thread(page), message(Notice(kind="direct", title="ESC-1042 is yours"), user=aad))
    await teams.deliver()

    # (two lanes, the thread and the chat: no order between them)
    mention, direct = sorted(teams.connector.sent[-2:], key=lambda c: not c.conversation_id.startswith(L2))
    assert mention.body["entities"][0]["mentioned"]["id"] == "29:ben"
    assert direct.conversation_id == "a:1personal-ben"  # the 1:1 chat is found by Entra id too


async def test_a_link_that_never_resolves_is_left_out_rather_than_losing_the_message(teams: TeamsHarness) -> None:
    thread = await posted_root(teams)
    moved = Notice(kind="reply", title="Escalated to L3 Engineering by Alice Adams", case_id="ESC-1042",
                   links=[ThreadLink(thread=case_thread("ESC-1042", "L3"), label="Continue in L3")])
    await enqueue(teams, in_thread(moved))
    for _ in range(3):  # Slack is down: its L3 thread never appears
        await teams.deliver()
        teams.runtime.clock.advance(seconds=61)  # type: ignore[attr-defined]
    await teams.deliver()

    [sent] = teams.connector.in_conversation(f"{L2};messageid={thread.root_id}")
    assert "Escalated to L3 Engineering" in card_text(sent.cards[0]) and "actions" not in sent.cards[0]
    assert await teams.runtime.outbox.dead_letters("teams") == []


async def test_a_direct_page_is_not_held_back_by_a_missing_thread_and_gets_its_link_once_posted(
        teams: TeamsHarness) -> None:
    await teams.remember("install_personal", user="ben")
    teams.connector.fail_next(429, retry_after=30, op="create_conversation")  # the tier channel is held
    page = Notice(kind="page", title="You are paged for ESC-1042 (sev1)", case_id="ESC-1042",
                  links=[ThreadLink(thread=case_thread("ESC-1042", "L2"), label="Open the case thread")])

    await enqueue(teams, in_thread(case_card()), message(page, user="29:ben", private=True))
    await teams.deliver()

    [sent] = teams.connector.sent
    assert sent.conversation_id == "a:1personal-ben" and "actions" not in sent.cards[0]
    assert await teams.runtime.store.get_thread("ESC-1042", "L2", "teams") is None

    teams.runtime.clock.advance(seconds=30)  # type: ignore[attr-defined]
    await teams.deliver()  # the card is posted; the page's amend, waiting for it, comes due a little later
    teams.runtime.clock.advance(seconds=10)  # type: ignore[attr-defined]
    await teams.deliver()
    thread = await teams.runtime.store.get_thread("ESC-1042", "L2", "teams")
    assert thread is not None
    [update] = [u for u in teams.connector.updated if u.conversation_id == "a:1personal-ben"]
    assert update.status == 200  # the DM sent before (an unknown activity would be a 404)
    assert teams.connector.messages[update.activity_id or ""].conversation_id == "a:1personal-ben"
    assert [(a["title"], a["url"]) for a in update.cards[0]["actions"]] == [("Open the case thread", thread.url)]
    assert len(teams.connector.sent) == 1


async def test_an_image_upload_to_a_person_is_sent_inline_in_their_chat(teams: TeamsHarness) -> None:
    await teams.remember("install_personal", user="ben")
    chart = FileRef(filename="digest.png", mime_type="image/png", data_b64="iVBORw0KGgo=")
    await enqueue(teams, message(Notice(kind="upload", title="Weekly digest", file=chart), user="29:ben"))
    await teams.deliver()

    [sent] = teams.connector.sent
    assert sent.conversation_id == "a:1personal-ben"
    [card] = sent.cards
    images = [b for b in card["body"] if b["type"] == "Image"]
    assert [i["url"] for i in images] == ["data:image/png;base64,iVBORw0KGgo="]
    assert teams.validate_every_card() == 1
