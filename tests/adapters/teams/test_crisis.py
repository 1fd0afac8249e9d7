"""Crisis mode in Teams: the incident is a thread in the status channel (no Graph), cards valid 1.5."""

from __future__ import annotations

from tests.adapters.teams.harness import TeamsHarness, card_text

STATUS = "19:status@thread.tacv2"


async def test_an_incident_runs_as_a_thread_in_the_teams_status_channel_with_its_card_updated_in_place(
        teams: TeamsHarness) -> None:
    status, _ = await teams.say("crisis declare sev1 component:checkout customers:initech Checkout is down",
                                user="gus")
    assert status == 201
    assert "Declared INC-1" in teams.replies()[-1]["text"]
    await teams.deliver()
    roots = [c for c in teams.connector.created if c.body.get("channelData", {}).get("channel") == {"id": STATUS}]
    card_root = next(c for c in roots if c.cards and "INC-1 · Checkout is down" in card_text(c.cards[0]))
    thread = await teams.runtime.store.thread("incident:INC-1", "teams")
    assert thread is not None and thread.channel == STATUS
    initech = [c for c in teams.connector.created
               if c.body.get("channelData", {}).get("channel") == {"id": "19:initech@thread.tacv2"}]
    assert initech and "Service status: Investigating" in card_text(initech[0].cards[0])
    assert "INC-1" not in card_text(initech[0].cards[0]) and "Gus" not in card_text(initech[0].cards[0])
    del card_root

    # The Post update button: the first word of the text may be the status.
    await teams.press(teams.card_of(thread.root_id), "Post update", user="gus",
                      inputs={"incident_update_reason": "identified The payment gateway rejects EU cards"})
    await teams.deliver()
    in_thread = [c for c in teams.connector.sent if c.conversation_id == f"{STATUS};messageid={thread.root_id}"]
    assert any("Update 1 · Identified" in card_text(c.cards[0]) for c in in_thread if c.cards)
    assert "Identified" in card_text(teams.card_of(thread.root_id))
    assert teams.validate_every_card() > 0
