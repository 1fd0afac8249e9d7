"""A private case's card buttons pressed in Teams by someone who is not one of its insiders."""

from __future__ import annotations

from tests.adapters.teams.harness import TeamsHarness


async def test_an_outsider_pressing_a_private_card_is_refused_and_nothing_changes(teams: TeamsHarness) -> None:
    await teams.say("escalate sev2 customer:initech category:billing Charged twice", user="alice")
    case = await teams.runtime.store.get_case("ESC-1001")
    assert case is not None and case.private
    card = await teams.adapter.bot.current_card("ESC-1001", "L2")
    assert card is not None
    status, body = await teams.press(card, "Acknowledge", user="stranger")
    assert status == 200
    assert body["type"] == "application/vnd.microsoft.activity.message"
    assert body["value"] == "You don't have access to ESC-1001."
    after = await teams.runtime.store.get_case("ESC-1001")
    assert after is not None and after.acknowledged_at is None and after.version == case.version


async def test_an_insider_pressing_it_acts(teams: TeamsHarness) -> None:
    await teams.say("escalate sev2 customer:initech category:billing Charged twice", user="alice")
    card = await teams.adapter.bot.current_card("ESC-1001", "L2")
    assert card is not None
    status, body = await teams.press(card, "Acknowledge", user="gus")
    assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    after = await teams.runtime.store.get_case("ESC-1001")
    assert after is not None and after.acknowledged_by == "gus"
