"""Rendering neutral notices and replies as Adaptive Cards 1.5: valid, literal, with the right buttons."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.teams.render import (
    escalation_form,
    mention_text,
    notice_card,
    reply_card,
)
from bot.config import Config
from bot.messages import CardAction, CardField, Mention, Notice, Reply
from tests.adapters.teams.harness import assert_valid_card, card_text

HOSTILE = "Login broken [click here](https://evil.example) <at>Gus Grant</at> **urgent** {{DATE(2026-01-01)}}"


def full_notice(kind: str = "card", **changes: Any) -> Notice:
    base: dict[str, Any] = dict(
        kind=kind, title=f"ESC-1042 · {HOSTILE}", text="first line\n\nsecond line", case_id="ESC-1042",
        severity="sev1", status="open", private=True, case_version=4,
        fields=[CardField(label="Customer", value="Initech (enterprise)"),
                CardField(label="Resolution", value=HOSTILE)],
        actions=[CardAction(action="acknowledge", label="Acknowledge", case_id="ESC-1042", style="primary"),
                 CardAction(action="claim", label="Claim", case_id="ESC-1042"),
                 CardAction(action="escalate", label="Escalate ▸ L3", case_id="ESC-1042", needs="reason",
                            target_tier="L3"),
                 CardAction(action="resolve", label="Resolve", case_id="ESC-1042", style="danger",
                            needs="resolution")],
        mentions=[Mention(person="ben", name="Ben Brooks", user_id="29:ben")])
    base.update(changes)
    return Notice(**base)


@pytest.mark.parametrize("kind", ["card", "reply", "page", "direct", "post"])
def test_every_kind_of_notice_is_a_valid_adaptive_card_1_5(kind: str) -> None:
    card = notice_card(full_notice(kind), tier="L2", links=[("Now in L3", "https://acme.slack.com/archives/C0L3/p1")])

    assert_valid_card(card)


def test_a_minimal_notice_and_every_reply_shape_are_valid_cards() -> None:
    assert_valid_card(notice_card(Notice(kind="reply", title="x")))
    assert_valid_card(reply_card(Reply(text="")))
    assert_valid_card(reply_card(Reply(text="a\nb", title="ESC-1 · t", fields=[CardField(label="a", value="b")]),
                                 links=[("Open the case thread", "https://teams.microsoft.com/l/message/x/1")]))


def test_user_text_is_shown_literally_and_never_as_markdown_links_or_mentions() -> None:
    card = notice_card(full_notice())

    text_blocks = [n for n in _walk(card) if n.get("type") == "TextBlock"]
    runs = [n["text"] for n in _walk(card) if n.get("type") == "TextRun"]
    assert text_blocks == []  # TextBlocks render markdown; all our text is in TextRuns
    assert f"ESC-1042 · {HOSTILE}" in runs and HOSTILE in runs
    assert "[" not in card["fallbackText"] and "<at>" not in card["fallbackText"]
    assert "msteams" not in json.dumps(card)  # a card never carries mention entities


def test_buttons_execute_verbs_and_ask_for_text_in_a_show_card_first() -> None:
    card = notice_card(full_notice(), tier="L2")

    ack, claim, escalate, resolve = card["actions"]
    assert ack == {"type": "Action.Execute", "title": "Acknowledge", "verb": "acknowledge", "style": "positive",
                   "data": {"escalator": "card", "action": "acknowledge", "case_id": "ESC-1042", "tier": "L2"}}
    assert claim["verb"] == "claim" and "style" not in claim
    assert escalate["type"] == "Action.ShowCard" and resolve["type"] == "Action.ShowCard"
    [reason] = escalate["card"]["body"]
    assert reason["type"] == "Input.Text" and reason["isRequired"] is True and reason["id"] == "escalate_reason"
    assert escalate["card"]["actions"][0]["data"]["target_tier"] == "L3"
    assert resolve["card"]["body"][0]["id"] == "resolve_resolution"
    assert resolve["card"]["actions"][0]["style"] == "destructive"


def test_the_card_header_shows_severity_privacy_and_resolved_state() -> None:
    sev1 = notice_card(full_notice())
    resolved = notice_card(full_notice(status="resolved", severity="sev3", private=False))

    assert sev1["body"][0]["style"] == "attention" and "SEV1" in card_text(sev1) and "private" in card_text(sev1)
    assert resolved["body"][0]["style"] == "good" and "private" not in card_text(resolved)


def test_mentions_escape_names_and_only_people_with_a_teams_id_are_mentioned() -> None:
    text, entities = mention_text([("Ben <Brooks>", "29:ben"), ("Cleo Chen", None)], "paged for ESC-1 <now>")

    assert text == "<at>Ben &lt;Brooks&gt;</at> Cleo Chen paged for ESC-1 &lt;now&gt;"
    assert entities == [{"type": "mention", "text": "<at>Ben &lt;Brooks&gt;</at>",
                         "mentioned": {"id": "29:ben", "name": "Ben <Brooks>"}}]


def test_the_form_offers_staffed_tiers_severities_and_customers_and_keeps_prefill(example_config: Config) -> None:
    form = escalation_form(example_config, form_id="f1", mode="submit",
                           prefill={"summary": HOSTILE, "message_url": "https://teams.microsoft.com/l/message/a/1"})

    assert_valid_card(form)
    by_id = {e["id"]: e for e in form["body"] if "id" in e}
    assert [c["value"] for c in by_id["tier"]["choices"]] == ["L1", "L2", "L3", "vendor"]  # L0 has no channel
    assert [c["value"] for c in by_id["severity"]["choices"]] == ["sev1", "sev2", "sev3", "sev4"]
    assert {c["value"] for c in by_id["customer"]["choices"]} == {"globex", "initech", "smallco"}
    assert by_id["summary"]["value"] == HOSTILE  # an input value is never rendered as markdown
    assert form["actions"][0]["data"] == {"escalator": "open_case", "form_id": "f1",
                                          "message_url": "https://teams.microsoft.com/l/message/a/1"}


def _walk(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out += _walk(value)
    elif isinstance(node, list):
        for item in node:
            out += _walk(item)
    return out
