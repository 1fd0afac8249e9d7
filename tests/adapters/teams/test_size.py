"""Every Teams message stays under 28 KB, whatever people write: lines joined into paragraphs, long
text and long field lists cut with a pointer to `/case`, and the card still a valid Adaptive Card."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.teams.render import card_bytes, mention_text, notice_card, reply_card
from bot.messages import CardAction, CardField, Notice, Reply, ThreadLink, case_thread
from tests.adapters.teams.harness import TeamsHarness, assert_valid_card, card_text

LIMIT = 28_000
CUT = "cut short: /case ESC-1042 shows all"
ACTIONS = [CardAction(action="acknowledge", label="Acknowledge", case_id="ESC-1042", style="primary"),
           CardAction(action="resolve", label="Resolve", case_id="ESC-1042", needs="resolution")]


def resolution(lines: int) -> str:
    return "\n".join(f"step {i}: restarted pod {i}" for i in range(lines))


def notice(**changes: Any) -> Notice:
    base: dict[str, Any] = dict(kind="reply", title="ESC-1042 resolved by Ben Brooks", case_id="ESC-1042",
                                severity="sev2", status="resolved", actions=ACTIONS)
    return Notice(**{**base, **changes})


def timeline_reply(entries: int) -> Reply:
    """What `/case` answers (workflows.queries.show_case) for a case with a long history."""
    start = datetime(2026, 11, 23, 9, 0)
    lines = [f"{(start + timedelta(minutes=i)):%a %d %b %H:%M}  Ben Brooks: paged (step {i % 3 + 1}, "
             f"nobody acknowledged)" for i in range(entries)]
    fields = [CardField(label=label, value=value) for label, value in [
        ("Customer", "Globex Corp (enterprise)"), ("Severity", "sev2"), ("Tier", "L2 Specialists"),
        ("Status", "Open, waiting for acknowledgement"), ("Watchers", "alice, ben, cleo")]]
    return Reply(title="ESC-1042 · Charged twice", text="Timeline:\n" + "\n".join(lines), fields=fields,
                 case_id="ESC-1042",
                 links=[ThreadLink(thread=case_thread("ESC-1042", "L2"), label="Open the case thread")])


SHAPES: dict[str, Any] = {
    "334 short lines": lambda: notice_card(notice(text=resolution(334))),
    "334 short paragraphs": lambda: notice_card(notice(text="\n\n".join(f"line {i}" for i in range(334)))),
    "one 100 KB line": lambda: notice_card(notice(text="x" * 100_000)),
    "one 100 KB line of non-ASCII": lambda: notice_card(notice(text="日本語のテキスト" * 12_500)),
    "200 fields": lambda: notice_card(notice(kind="card", fields=[
        CardField(label=f"Field {i}", value=f"value {i} " * 20) for i in range(200)])),
    "one 100 KB field and title": lambda: notice_card(notice(title="t" * 100_000, fields=[
        CardField(label="l" * 10_000, value="v" * 100_000)])),
    "a case with a 2,000-entry timeline": lambda: reply_card(
        timeline_reply(2_000), links=[("Open the case thread", "https://teams.microsoft.com/l/message/19%3Ax/1")]),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_worst_shapes_stay_under_28_kb_and_are_still_valid_cards(shape: str) -> None:
    card = SHAPES[shape]()
    activity = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                    "content": card}], "summary": "x" * 100}

    assert len(json.dumps(activity)) < LIMIT
    assert_valid_card(card)


@pytest.mark.parametrize("shape", ["one 100 KB line", "200 fields", "a case with a 2,000-entry timeline"])
def test_what_is_cut_says_so_and_where_to_read_it_all(shape: str) -> None:
    assert CUT in card_text(SHAPES[shape]())


def test_lines_of_a_paragraph_share_one_block_and_keep_their_line_breaks() -> None:
    card = notice_card(notice(text="first line\nsecond line\n\nnext paragraph"))

    blocks = [b for b in card["body"] if b["type"] == "RichTextBlock"]
    assert [b["inlines"][0]["text"] for b in blocks] == ["first line\nsecond line", "next paragraph"]


def test_the_text_next_to_mentions_is_cut_too() -> None:
    text, entities = mention_text([("Ben Brooks", "29:ben")], "t" * 100_000)

    assert text.startswith("<at>Ben Brooks</at> ttt") and len(text) < 400 and len(entities) == 1


def test_a_short_message_is_not_cut() -> None:
    card = notice_card(notice(text=resolution(20), fields=[CardField(label="Customer", value="Globex")]))

    assert "cut short" not in card_text(card)
    assert "step 19: restarted pod 19" in card_text(card)
    assert card_bytes(card) < 4_000


def test_the_first_lines_of_a_long_timeline_are_kept() -> None:
    text = card_text(reply_card(timeline_reply(2_000)))

    assert "Timeline:" in text and "(step 1, nobody acknowledged)" in text


async def test_a_334_line_resolution_typed_in_teams_reaches_every_place_under_28_kb(teams: TeamsHarness) -> None:
    await teams.say("escalate L2 sev3 Exports are slow")
    await teams.deliver()

    await teams.say("case ESC-1001 resolve " + resolution(334), user="ben")
    await teams.deliver()

    sizes = [len(json.dumps(call.body)) for call in teams.connector.calls]
    assert any("restarted pod" in json.dumps(call.body) for call in teams.connector.calls)
    assert max(sizes) < LIMIT
