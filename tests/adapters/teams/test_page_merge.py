"""DM pages on Teams against the fake Bot Connector, on a FakeClock: pages inside one pacing window
(the 1:1 chat's bucket refill time, 1 s) fold into one page message updated in place, each one
notifying by a new message in the chat (a 1:1 chat has no threads); a page held from its thread
names the tier channel (a deep link when the team's Entra group id is known) until the thread exists."""

from __future__ import annotations

import uuid
from typing import Any

from adapters.teams.app import build_teams_adapter
from adapters.teams.delivery import TeamsTransport
from bot.clock import FakeClock
from bot.messages import Address, ChannelLink, Notice, OutboxMessage, ThreadLink, case_thread
from bot.runtime import Runtime
from bot.store import Commit
from tests.adapters.teams.harness import TENANT, TeamsHarness, assert_valid_card, card_text
from tests.adapters.teams.test_delivery import case_card, in_thread

L2 = "19:l2@thread.tacv2"
BEN_CHAT = "a:1personal-ben"
GROUP = "0f5b7c1e-2d3a-4b5c-8d9e-0a1b2c3d4e5f"


def page(case: str, clock: FakeClock) -> OutboxMessage:
    """A page to Ben as the paging workflow words it: the thread link and where that thread will be."""
    notice = Notice(kind="page", title=f"You are paged for {case} (sev1)", case_id=case, severity="sev1",
                    text=f"Checkout down for {case}\nWhy you: on call for l2-primary (L2 Specialists, step 1 of 3).",
                    links=[ThreadLink(thread=case_thread(case, "L2"), label="Open the case thread")],
                    channel_links=[ChannelLink(thread=case_thread(case, "L2"), platform="teams", channel=L2,
                                               label="L2 Specialists channel"),
                                   ChannelLink(thread=case_thread(case, "L2"), platform="slack", channel="C0L2",
                                               label="L2 Specialists channel")],
                    private=True)
    return OutboxMessage(id=uuid.uuid4().hex, address=Address(platform="teams", user="29:ben", private=True),
                         notice=notice, created_at=clock.now())


async def enqueue(runtime: Runtime, *messages: OutboxMessage) -> None:
    await runtime.store.commit(Commit(messages=list(messages)))


def card_of(call: Any) -> dict[str, Any]:
    card: dict[str, Any] = call.cards[0]
    assert_valid_card(card)
    return card


async def test_pages_inside_one_pacing_window_fold_into_one_message_and_each_one_notifies(
        teams: TeamsHarness, clock: FakeClock) -> None:
    await teams.remember("install_personal", user="ben")
    cases = ["ESC-1042", "ESC-1043", "ESC-1044"]
    for case in cases:
        await enqueue(teams.runtime, page(case, clock))
        await teams.deliver()
        clock.advance(seconds=0.3)

    sent = teams.connector.in_conversation(BEN_CHAT)
    first, *notes = sent
    assert card_text(card_of(first)).startswith("You are paged for ESC-1042 (sev1)")
    # The later pages each notified Ben with a message of their own, naming the new case ...
    assert [card_text(card_of(n)).split(" ")[:4] for n in notes] == [["Also", "paged", "for", "ESC-1043"],
                                                                     ["Also", "paged", "for", "ESC-1044"]]
    # ... and the first message was updated in place to list every case.
    in_chat = [m for m in teams.connector.messages.values() if m.conversation_id == BEN_CHAT]
    updates = [u for u in teams.connector.updated if u.conversation_id == BEN_CHAT]
    assert len(in_chat) == 3 and [u.activity_id for u in updates] == [in_chat[0].id, in_chat[0].id]
    shown = card_text(in_chat[0].activity["attachments"][0]["content"])
    assert shown.startswith("Paged for ESC-1042, ESC-1043, ESC-1044")
    for case in cases:
        assert f"{case} (sev1): Checkout down for {case}" in shown
    assert "Case thread not posted yet: it will be in the L2 Specialists channel." in shown

    clock.advance(seconds=2)  # past the window: a new page message
    await enqueue(teams.runtime, page("ESC-1045", clock))
    await teams.deliver()
    last = teams.connector.in_conversation(BEN_CHAT)[-1]
    assert card_text(card_of(last)).startswith("You are paged for ESC-1045 (sev1)")
    assert len([u for u in teams.connector.updated if u.conversation_id == BEN_CHAT]) == 2
    assert await teams.runtime.outbox.dead_letters("teams") == []


async def test_a_page_held_from_its_thread_names_the_tier_channel_then_links_the_thread(
        teams: TeamsHarness, clock: FakeClock) -> None:
    await teams.remember("install_personal", user="ben")
    teams.connector.fail_next(429, retry_after=30, op="create_conversation")  # the tier channel is held
    await enqueue(teams.runtime, in_thread(case_card()), page("ESC-1042", clock))
    await teams.deliver()

    [sent] = teams.connector.in_conversation(BEN_CHAT)
    card = card_of(sent)
    # No team group id configured (`team_id` is the team's thread id): the channel by name, no link.
    assert "Case thread not posted yet: it will be in the L2 Specialists channel." in card_text(card)
    assert "actions" not in card
    assert await teams.runtime.store.get_thread("ESC-1042", "L2", "teams") is None

    clock.advance(seconds=30)
    await teams.deliver()
    clock.advance(seconds=10)
    await teams.deliver()
    thread = await teams.runtime.store.get_thread("ESC-1042", "L2", "teams")
    assert thread is not None
    [update] = [u for u in teams.connector.updated if u.conversation_id == BEN_CHAT]
    assert [(a["title"], a["url"]) for a in card_of(update)["actions"]] == [("Open the case thread", thread.url)]
    assert "not posted yet" not in card_text(card_of(update))
    assert len(teams.connector.in_conversation(BEN_CHAT)) == 1


async def test_with_the_teams_group_id_the_page_deep_links_the_tier_channel(
        teams: TeamsHarness, clock: FakeClock) -> None:
    await teams.remember("install_personal", user="ben")
    delivery = TeamsTransport(store=teams.runtime.store, clock=clock, connectors=teams.adapter.connectors,
                              service_url=teams.connector.url, bot_id="28:escalator-local", tenant_id=TENANT,
                              group_id=GROUP)
    await delivery.deliver(page("ESC-1042", clock))
    [sent] = teams.connector.in_conversation(BEN_CHAT)
    [action] = card_of(sent)["actions"]
    assert action["type"] == "Action.OpenUrl" and action["title"] == "Go to the L2 Specialists channel"
    assert action["url"] == ("https://teams.microsoft.com/l/channel/19%3Al2%40thread.tacv2/L2%20Specialists%20channel"
                             f"?groupId={GROUP}&tenantId={TENANT}")


def test_the_group_id_is_taken_from_team_id_only_when_it_is_an_entra_group_id(teams_runtime: Runtime) -> None:
    adapter = build_teams_adapter(teams_runtime)
    assert adapter.delivery is not None and adapter.delivery.teams.group_id is None  # "19:...@thread.tacv2"
    teams_settings = teams_runtime.config.platform_settings("teams")
    assert teams_settings is not None
    platforms = {**teams_runtime.config.platforms, "teams": teams_settings.model_copy(update={"team_id": GROUP})}
    teams_runtime.config = teams_runtime.config.model_copy(update={"platforms": platforms})
    grouped = build_teams_adapter(teams_runtime)
    assert grouped.delivery is not None and grouped.delivery.teams.group_id == GROUP
