"""Block Kit rendering, pure: escaping, mentions, limits, buttons, forms."""

from __future__ import annotations

import json

import pytest
from slack_sdk.models.blocks import Block

from adapters.slack import render
from bot.config import Config
from bot.messages import CardAction, CardField, Mention, Notice, Reply


def all_text(message: render.SlackMessage) -> str:
    return json.dumps({"text": message.text, "blocks": message.blocks})


@pytest.mark.parametrize(("raw", "escaped"), [
    ("<!channel>", "&lt;!channel&gt;"),
    ("<!here|here>", "&lt;!here|here&gt;"),
    ("<@U0GUS>", "&lt;@U0GUS&gt;"),
    ("a & b", "a &amp; b"),
    ("&lt;", "&amp;lt;"),
    ("<https://evil.example|your bank>", "&lt;https://evil.example|your bank&gt;"),
])
def test_user_text_is_escaped(raw: str, escaped: str) -> None:
    assert render.escape(raw) == escaped


def test_every_piece_of_a_notice_is_escaped() -> None:
    notice = Notice(kind="card", title="<!channel> title", text="<!here> text",
                    fields=[CardField(label="<@U1> label", value="<!everyone> value")],
                    actions=[CardAction(action="claim", label="<!channel>", case_id="ESC-1")], case_id="ESC-1")
    dumped = all_text(render.render_notice(notice))
    for raw in ("<!channel>", "<!here>", "<@U1>", "<!everyone>"):
        assert raw not in dumped.replace('"text": "<!channel>"', "")  # a button label is plain text
    assert "&lt;!channel&gt; title" in dumped


def test_only_configured_user_ids_become_mentions() -> None:
    notice = Notice(kind="page", title="Paging", mentions=[
        Mention(person="cleo", name="Cleo", user_id="U0CLEO"),
        Mention(person="zed", name="<!channel> Zed", user_id=None),
        Mention(person="bad", name="Bad", user_id="<!channel>")])
    message = render.render_notice(notice)
    head = message.blocks[0]["text"]["text"]
    assert head.startswith("<@U0CLEO> @&lt;!channel&gt; Zed @Bad *Paging*")
    assert message.text.startswith("<@U0CLEO>")


def test_links_are_only_made_from_safe_urls() -> None:
    assert render.link("https://acme.slack.com/archives/C1/p1", "case <1>") == \
        "<https://acme.slack.com/archives/C1/p1|case &lt;1&gt;>"
    assert render.link("javascript:alert(1)", "x") == "x"
    assert render.link("https://a.example/|<!channel>", "x") == "x"


def test_long_text_is_cut_at_3000_characters_with_a_link_to_the_case() -> None:
    notice = Notice(kind="reply", title="Log", text="<" * 5000, case_id="ESC-1")
    message = render.render_notice(notice, case_url="https://acme.slack.com/archives/C1/p1")
    section = message.blocks[0]["text"]["text"]
    assert len(section) <= 3000
    assert section.endswith("… <https://acme.slack.com/archives/C1/p1|full case>")
    assert section.split("…")[0].endswith("&lt;")  # never cut inside an entity
    without_url = render.render_notice(notice)
    assert without_url.blocks[0]["text"]["text"].endswith("(cut short: /case ESC-1 shows all)")


def test_a_cut_never_leaves_half_an_entity() -> None:
    assert render.cut("ab&amp;cd", 5, "…") == "ab…"
    assert render.cut("abc", 5) == "abc"


def test_more_than_fifty_blocks_are_cut_and_the_buttons_kept() -> None:
    fields = [CardField(label=f"F{i}", value="v") for i in range(700)]
    notice = Notice(kind="card", title="Big", fields=fields, case_id="ESC-1",
                    actions=[CardAction(action="claim", label="Claim", case_id="ESC-1")])
    message = render.render_notice(notice, case_url="https://acme.slack.com/archives/C1/p1")
    assert len(message.blocks) == 50
    assert message.blocks[-1]["type"] == "actions"
    assert "more parts not shown" in message.blocks[-2]["elements"][0]["text"]
    assert all(Block.parse(b) is not None for b in message.blocks)


def test_fields_go_ten_to_a_section_and_are_cut_at_2000() -> None:
    notice = Notice(kind="card", title="T", fields=[CardField(label=f"F{i}", value="x" * 3000) for i in range(12)])
    message = render.render_notice(notice)
    sections = [b for b in message.blocks if b.get("fields")]
    assert [len(s["fields"]) for s in sections] == [10, 2]
    assert all(len(f["text"]) <= 2000 for s in sections for f in s["fields"])


def test_buttons_carry_the_case_action_tier_and_card_version() -> None:
    notice = Notice(kind="card", title="T", case_id="ESC-1", case_version=7, actions=[
        CardAction(action="acknowledge", label="Acknowledge", case_id="ESC-1", style="primary"),
        CardAction(action="escalate", label="Escalate ▸ L3", case_id="ESC-1", needs="reason", target_tier="L3"),
        CardAction(action="resolve", label="Resolve", case_id="ESC-1", style="danger", needs="resolution")])
    (actions,) = [b for b in render.render_notice(notice).blocks if b["type"] == "actions"]
    by_id = {e["action_id"]: e for e in actions["elements"]}
    assert list(by_id) == ["case_acknowledge", "case_escalate", "case_resolve"]
    assert json.loads(by_id["case_escalate"]["value"]) == {"c": "ESC-1", "a": "escalate", "t": "L3", "n": "reason",
                                                           "v": 7}
    assert by_id["case_acknowledge"]["style"] == "primary"
    assert by_id["case_resolve"]["style"] == "danger"
    assert "style" not in by_id["case_escalate"]


def test_a_private_card_says_it_stays_in_its_channel() -> None:
    message = render.render_notice(Notice(kind="card", title="T", private=True, case_id="ESC-1"))
    assert ":lock:" in all_text(message)


def test_a_reply_to_the_caller_shows_problems_with_a_warning() -> None:
    message = render.render_reply(Reply(text="Unknown tier <x>", ok=False))
    assert message.text == ":warning: Unknown tier &lt;x&gt;"


def test_the_escalation_form_is_prefilled(example_config: Config) -> None:
    view = render.escalate_form(example_config, prefill={"tier": "l2", "severity": "sev1", "customer": "globex",
                                                         "category": "billing", "summary": "x" * 4000},
                                metadata="{}", source_url="https://acme.slack.com/archives/C1/p1")
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["tier"]["element"]["initial_option"]["value"] == "L2"
    assert blocks["severity"]["element"]["initial_option"]["value"] == "sev1"
    assert blocks["customer"]["element"]["initial_option"]["value"] == "globex"
    assert blocks["category"]["element"]["initial_value"] == "billing"
    assert len(blocks["summary"]["element"]["initial_value"]) == 3000
    assert "<https://acme.slack.com/archives/C1/p1|this message>" in json.dumps(view["blocks"][0])
    assert view["callback_id"] == "escalate_form"


def test_the_reason_form_names_the_case_and_target() -> None:
    view = render.reason_form(action="escalate", case_id="ESC-1001", target_tier="L3", metadata="{}")
    assert view["title"]["text"] == "Escalate ESC-1001"
    assert "to *L3*" in view["blocks"][0]["text"]["text"]
    assert view["blocks"][1]["block_id"] == "reason"
