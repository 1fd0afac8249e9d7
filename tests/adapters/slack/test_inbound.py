"""Payload -> command, pure: actors, keys that make retries and double clicks idempotent, forms."""

from __future__ import annotations

import json

from adapters.slack import inbound
from bot.commands import AcknowledgeCase, EscalateCase, OpenCase, ShowCase
from bot.config import Config
from bot.messages import Reply


def command(text: str, **extra: str) -> dict[str, str]:
    return {"command": "/escalate", "text": text, "user_id": "U0ALICE", "user_name": "alice",
            "channel_id": "C0SUPPORT", "trigger_id": "tr-1", **extra}


def test_a_configured_slack_user_is_their_person(example_config: Config) -> None:
    actor = inbound.actor_for("U0CLEO", "cleo.c", example_config)
    assert (actor.person, actor.name, actor.platform, actor.user_id) == ("cleo", "Cleo Chen", "slack", "U0CLEO")


def test_an_unknown_slack_user_keeps_their_display_name(example_config: Config) -> None:
    actor = inbound.actor_for("U0NEW", "newbie", example_config)
    assert (actor.person, actor.name) == (None, "newbie")


def test_a_slash_command_keys_on_its_trigger_id(example_config: Config) -> None:
    result = inbound.slash_command(command("L2 sev2 checkout fails"), example_config)
    assert isinstance(result, OpenCase)
    assert result.key == "slack:cmd:tr-1"
    assert result.origin is not None and result.origin.channel == "C0SUPPORT"


def test_case_and_oncall_commands_map_to_their_verbs(example_config: Config) -> None:
    shown = inbound.slash_command(command("ESC-1001", command="/case"), example_config)
    assert isinstance(shown, ShowCase) and shown.case_id == "ESC-1001"
    ack = inbound.slash_command(command("esc-1001 ack", command="/case"), example_config)
    assert isinstance(ack, AcknowledgeCase)


def test_escalate_without_text_asks_for_the_form(example_config: Config) -> None:
    result = inbound.slash_command(command(""), example_config)
    assert isinstance(result, Reply) and result.form == "escalate"
    form = inbound.form_for_command(command(""), result)
    assert json.loads(form.metadata) == {"o": {"platform": "slack", "channel": "C0SUPPORT"}}


def test_a_mention_drops_the_bot_and_keys_on_the_event(example_config: Config) -> None:
    event = {"user": "U0ALICE", "channel": "C0SUPPORT", "ts": "1.2", "text": "<@U0BOT> escalate L3 api down"}
    result = inbound.mention_command(event, "Ev1", example_config)
    assert isinstance(result, OpenCase)
    assert (result.title, result.tier, result.key) == ("api down", "L3", "slack:event:Ev1")
    assert result.origin is not None and result.origin.thread == "1.2"


def test_slack_markup_becomes_plain_words() -> None:
    text = ("<@U1|ann> and <@U2> in <#C1|general>: <!here> <!subteam^S1|@support> <!date^1|Tuesday> "
            "see <https://x.example|docs> or <https://y.example> &lt;b&gt; &amp;")
    assert inbound.plain_text(text) == ("@ann and @someone in #general: @here @support @Tuesday "
                                        "see docs (https://x.example) or https://y.example <b> &")


def test_a_permalink_is_built_like_slacks() -> None:
    assert inbound.permalink("https://acme.slack.com/", "C1", "1700000000.000200") == \
        "https://acme.slack.com/archives/C1/p1700000000000200"
    assert inbound.permalink("https://acme.slack.com", "C1", "1.2", thread_ts="1.1") == \
        "https://acme.slack.com/archives/C1/p12?thread_ts=1.1&cid=C1"
    assert inbound.permalink(None, "C1", "1.2") is None


def test_the_shortcut_form_carries_the_message_and_where_it_came_from() -> None:
    body = {"team": {"id": "T1", "domain": "acme"}, "channel": {"id": "C0SUPPORT"},
            "message": {"ts": "5.6", "thread_ts": "5.0", "text": "help &lt;now&gt;"}}
    form = inbound.form_for_shortcut(body)
    assert form.prefill == {"summary": "help <now>"}
    assert form.source_url == "https://acme.slack.com/archives/C0SUPPORT/p56?thread_ts=5.0&cid=C0SUPPORT"
    assert form.origin is not None and form.origin.thread == "5.0"


def submission(values: dict[str, object], meta: str = "{}") -> dict[str, object]:
    state = {}
    for block, value in values.items():
        if block in ("tier", "severity", "customer"):
            state[block] = {"value": {"type": "static_select",
                                      "selected_option": {"value": value} if value else None}}
        else:
            state[block] = {"value": {"type": "plain_text_input", "value": value}}
    return {"user": {"id": "U0ALICE", "name": "alice"},
            "view": {"id": "V1", "hash": "h1", "private_metadata": meta, "state": {"values": state}}}


def test_the_form_submission_becomes_open_case_keyed_on_view_and_hash(example_config: Config) -> None:
    meta = json.dumps({"o": {"platform": "slack", "channel": "C0HELP"}})
    result = inbound.escalate_submission(submission(
        {"tier": "auto", "severity": "sev2", "customer": "globex", "category": "Data Loss",
         "summary": "  rows\n missing "}, meta), example_config)
    assert isinstance(result, OpenCase)
    assert (result.tier, result.severity, result.customer, result.category, result.title) == (
        None, "sev2", "globex", "data-loss", "rows missing")
    assert result.key == "slack:view:V1:h1"
    assert result.origin is not None and result.origin.channel == "C0HELP"


def test_a_forged_form_value_is_refused(example_config: Config) -> None:
    result = inbound.escalate_submission(submission({"tier": "L9", "severity": "sev9", "customer": "nope",
                                                     "summary": "x"}), example_config)
    assert result == {"tier": "Unknown tier 'L9' (known: L0, L1, L2, L3, vendor).",
                      "severity": "Unknown severity 'sev9' (use sev1 to sev4).",
                      "customer": "Unknown customer 'nope' (known: globex, initech, smallco)."}


def test_a_double_click_gets_the_same_key_and_a_newer_card_a_new_one(example_config: Config) -> None:
    def click(version: int, action_ts: str, user: str = "U0CLEO") -> inbound.ButtonPress | None:
        value = json.dumps({"c": "ESC-1", "a": "claim", "v": version})
        return inbound.button_press({"user": {"id": user}, "actions": [{"value": value, "action_ts": action_ts}]},
                                    example_config)

    first, second, later, other = click(3, "1.1"), click(3, "1.2"), click(4, "1.3"), click(3, "1.4", "U0BEN")
    assert first is not None and second is not None and later is not None and other is not None
    assert first.key == second.key == "slack:btn:ESC-1:claim:v3:U0CLEO"
    assert later.key != first.key
    assert other.key != first.key


def test_a_button_without_a_version_keys_on_its_action_ts(example_config: Config) -> None:
    value = json.dumps({"c": "ESC-1", "a": "acknowledge"})
    press = inbound.button_press({"user": {"id": "U0CLEO"}, "actions": [{"value": value, "action_ts": "9.9"}]},
                                 example_config)
    assert press is not None and press.key == "slack:btn:ESC-1:acknowledge:9.9:U0CLEO"


def test_buttons_that_are_not_ours_are_ignored(example_config: Config) -> None:
    for value in ("", "nope", json.dumps({"a": "delete", "c": "ESC-1"}), json.dumps({"a": "claim"})):
        assert inbound.button_press({"user": {"id": "U1"}, "actions": [{"value": value}]}, example_config) is None


def test_the_reason_form_becomes_the_buttons_command_with_the_buttons_key(example_config: Config) -> None:
    press = inbound.ButtonPress(action="escalate", case_id="ESC-1", actor=inbound.actor_for("U0CLEO", None,
                                                                                            example_config),
                                key="slack:btn:ESC-1:escalate:v2:U0CLEO", target_tier="L3", needs="reason")
    result = inbound.reason_submission(submission({"reason": "db is down"}, press.metadata), example_config)
    assert isinstance(result, EscalateCase)
    assert (result.case_id, result.to_tier, result.reason, result.key) == (
        "ESC-1", "L3", "db is down", "slack:btn:ESC-1:escalate:v2:U0CLEO")
    empty = inbound.reason_submission(submission({"reason": ""}, press.metadata), example_config)
    assert empty == {"reason": "Please give a reason for escalating."}
    expired = inbound.reason_submission(submission({"reason": "x"}, "garbage"), example_config)
    assert isinstance(expired, dict) and "expired" in expired["reason"]
