"""A digest on Teams: the text as a card, the chart as an image card valid for 1.5 and under the size limit."""

from __future__ import annotations

import base64
import json

from adapters.teams.render import MAX_IMAGE_CARD_BYTES
from bot.messages import FileRef, Notice
from tests.adapters.teams.harness import TeamsHarness, card_text
from tests.adapters.teams.test_delivery import enqueue, message

PNG = b"\x89PNG\r\n\x1a\n"


async def test_a_manager_asks_for_a_digest_and_sees_the_text_and_the_chart_in_their_chat(
        teams: TeamsHarness) -> None:
    await teams.remember("install_personal", user="gus")
    await teams.say("escalate L1 sev2 Card declined at checkout", user="alice")
    status, _ = await teams.say("digest since:7d", user="gus", where="personal")
    assert status in (200, 201)
    await teams.deliver()
    to_gus = [c for c in teams.connector.sent if c.conversation_id.startswith("a:1personal")]  # the 1:1 chat
    cards = [card for c in to_gus for card in c.cards]
    text = next(c for c in cards if "Digest daily-support" in card_text(c))
    assert "L1: opened 1 (sev2 1)" in card_text(text)
    (chart,) = [c for c in cards if any(b["type"] == "Image" for b in c["body"])]
    (image,) = [b for b in chart["body"] if b["type"] == "Image"]
    assert base64.b64decode(image["url"].split(",", 1)[1]).startswith(PNG)
    assert len(json.dumps(chart)) < MAX_IMAGE_CARD_BYTES
    assert teams.validate_every_card() >= 2


async def test_an_image_too_large_for_a_teams_card_is_not_sent(teams: TeamsHarness) -> None:
    await teams.remember("install_personal", user="ben")
    big = FileRef(filename="huge.png", mime_type="image/png", data_b64="A" * (MAX_IMAGE_CARD_BYTES + 1))
    await enqueue(teams, message(Notice(kind="upload", title="Weekly digest", file=big), user="29:ben"))
    await teams.deliver()
    assert [c for c in teams.connector.sent if c.cards] == []
