"""Crisis mode in Teams: the incident is a thread in the status channel (no Graph), cards valid 1.5."""

from __future__ import annotations

from typing import Any

from tests.adapters.teams.harness import TeamsHarness, assert_valid_card, button_titles, card_text

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

    # The Post update button: the core's form, for the presser; nothing to prefill before the first update.
    _, answer = await teams.press(teams.card_of(thread.root_id), "Post update", user="gus")
    form = answer["value"]
    assert inputs(form)["status"]["value"] == "investigating" and inputs(form)["incident_update_text"]["value"] == ""
    _, answer = await teams.press(form, "Post update", user="gus",
                                  inputs={"status": "identified",
                                          "incident_update_text": "The payment gateway rejects EU cards"})
    assert "INC-1 · Checkout is down" in card_text(answer["value"])  # the presser sees the card again
    await teams.deliver()
    in_thread = [c for c in teams.connector.sent if c.conversation_id == f"{STATUS};messageid={thread.root_id}"]
    assert any("Update 1 · Identified" in card_text(c.cards[0]) for c in in_thread if c.cards)
    assert "Identified" in card_text(teams.card_of(thread.root_id))
    assert teams.validate_every_card() > 0


async def test_the_post_update_form_is_prefilled_with_the_last_update_and_cancel_shows_the_card_again(
        teams: TeamsHarness) -> None:
    await teams.say("crisis declare sev2 Search is slow", user="gus")
    await teams.say("crisis INC-1 update identified The index is rebuilding, results may be stale", user="gus")
    await teams.deliver()
    thread = await teams.runtime.store.thread("incident:INC-1", "teams")
    assert thread is not None
    _, answer = await teams.press(teams.card_of(thread.root_id), "Post update", user="gus")
    form = answer["value"]
    assert_valid_card(form)
    fields = inputs(form)
    assert fields["status"]["value"] == "identified"
    assert [c["value"] for c in fields["status"]["choices"]] == ["investigating", "identified", "monitoring"]
    assert fields["incident_update_text"]["value"] == "The index is rebuilding, results may be stale"
    assert "Post an update for INC-1" in card_text(form)
    # Cancel: the incident card, as it is now, and nothing posted.
    _, back = await teams.press(form, "Cancel", user="gus")
    assert "INC-1 · Search is slow" in card_text(back["value"]) and "Post update" in button_titles(back["value"])
    # A changed status and text: the update, and the form shows it next time.
    await teams.press(form, "Post update", user="gus",
                      inputs={"status": "monitoring", "incident_update_text": "Rebuilt; we are watching it."})
    await teams.deliver()
    assert "Monitoring" in card_text(teams.card_of(thread.root_id))
    _, answer = await teams.press(teams.card_of(thread.root_id), "Post update", user="gus")
    assert inputs(answer["value"])["status"]["value"] == "monitoring"
    assert inputs(answer["value"])["incident_update_text"]["value"] == "Rebuilt; we are watching it."
    # A text only of spaces (Teams requires one; a crafted request may not): refused, nothing posted.
    _, refused = await teams.press(answer["value"], "Post update", user="gus",
                                   inputs={"status": "identified", "incident_update_text": "   "})
    assert refused["type"] == "application/vnd.microsoft.activity.message"
    assert teams.validate_every_card() > 0


def inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The card's inputs by id."""
    return {item["id"]: item for item in card["body"] if str(item.get("type", "")).startswith("Input.")}
