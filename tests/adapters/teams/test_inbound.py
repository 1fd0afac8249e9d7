"""Teams activities to commands (pure): mentions, actors, origins, the form and card buttons."""

from __future__ import annotations

from typing import Any

from botbuilder.schema import Activity

from adapters.teams.inbound import (
    actor_of,
    card_command,
    form_command,
    message_action_prefill,
    message_command,
    origin_of,
)
from bot.commands import AcknowledgeCase, EscalateCase, HandOffCase, OpenCase, ResolveCase, ShowOnCall
from bot.config import Config
from bot.messages import Reply
from tests.adapters.teams.harness import payload


def activity(name: str, **changes: Any) -> Activity:
    data = payload(name)
    data.update(changes)
    return Activity().deserialize(data)


def test_the_bots_mention_is_stripped_and_other_mentions_read_as_names(example_config: Config) -> None:
    message = activity("message_channel", text="<at>Escalator</at> escalate L2 sev2 <at>Gus Grant</at> says&nbsp;"
                                               "SSO &amp; MFA fail")

    command = message_command(message, example_config)

    assert isinstance(command, OpenCase)
    assert (command.tier, command.severity, command.title) == ("L2", "sev2", "Gus Grant says SSO & MFA fail")
    assert command.key == "teams:1732352400000"


def test_a_group_chat_message_is_parsed_the_same_way(example_config: Config) -> None:
    command = message_command(activity("message_groupchat"), example_config)

    assert isinstance(command, ShowOnCall) and command.tier == "L2"
    assert command.actor.person == "gus"


def test_the_actor_is_the_configured_person_by_teams_id_or_by_aad_id(example_config: Config) -> None:
    by_id = actor_of(activity("message_channel"), example_config)
    unknown = actor_of(activity("message_channel", **{"from": {"id": "29:nobody", "name": "Nob Ody"}}),
                       example_config)

    assert (by_id.person, by_id.platform, by_id.user_id, by_id.name) == ("alice", "teams", "29:alice", "Alice Adams")
    assert (unknown.person, unknown.name) == (None, "Nob Ody")


def test_the_origin_of_a_channel_message_names_its_channel_thread_and_link(example_config: Config) -> None:
    origin = origin_of(activity("message_channel"))

    assert (origin.platform, origin.channel, origin.thread) == ("teams", "19:l1@thread.tacv2", "1732352400000")
    assert origin.message_url is not None
    assert origin.message_url.startswith("https://teams.microsoft.com/l/message/19%3Al1%40thread.tacv2/1732352400000")


def test_the_origin_of_a_chat_is_the_chat_itself() -> None:
    origin = origin_of(activity("message_groupchat"))

    assert (origin.channel, origin.thread) == ("19:meeting-of-leads@thread.v2", None)


def test_form_fields_are_checked_like_the_slash_command(example_config: Config) -> None:
    def submit(**fields: str) -> OpenCase | Reply:
        result = form_command({"form_id": "f1", **fields}, activity("message_channel"), example_config)
        assert isinstance(result, OpenCase | Reply)
        return result

    ok = submit(tier="l2", severity="SEV1", customer="Initech", category=" Billing ", summary="Double\ncharge")
    assert isinstance(ok, OpenCase)
    assert (ok.tier, ok.severity, ok.customer, ok.category, ok.title, ok.key) == (
        "L2", "sev1", "initech", "billing", "Double charge", "teams-form:f1")
    assert isinstance(auto := submit(summary="x"), OpenCase) and auto.tier is None and auto.severity is None
    for bad, says in [({"tier": "L9"}, "Unknown tier"), ({"severity": "sev9"}, "Unknown severity"),
                      ({"customer": "acme"}, "Unknown customer"), ({"summary": " "}, "summary")]:
        refused = submit(**{"summary": "x", **bad})
        assert isinstance(refused, Reply) and not refused.ok and says in refused.text


def test_a_card_press_carries_the_text_its_show_card_asked_for(example_config: Config) -> None:
    press = activity("card_action")
    data = {"escalator": "card", "action": "escalate", "case_id": "esc-1042", "tier": "L2", "target_tier": "L3",
            "escalate_reason": " database locks "}

    escalate = card_command("escalate", data, press, example_config)
    resolve = card_command("resolve", {"action": "resolve", "case_id": "ESC-1042", "resolve_resolution": "ok"},
                           press, example_config)
    ack = card_command("acknowledge", {"action": "acknowledge", "case_id": "ESC-1042"}, press, example_config)

    assert isinstance(escalate.result, EscalateCase)
    assert (escalate.result.case_id, escalate.result.to_tier, escalate.result.reason) == (
        "ESC-1042", "L3", "database locks")
    assert (escalate.case_id, escalate.tier) == ("ESC-1042", "L2")
    assert isinstance(resolve.result, ResolveCase) and resolve.result.resolution == "ok"
    assert isinstance(ack.result, AcknowledgeCase) and ack.result.actor.person == "ben"
    assert ack.result.key == "teams:f:4412346789012345678"


def test_buttons_the_bot_does_not_know_are_refused(example_config: Config) -> None:
    press = card_command("delete_everything", {"case_id": "ESC-1"}, activity("card_action"), example_config)

    assert isinstance(press.result, Reply) and not press.result.ok


def test_escalate_this_message_prefills_the_text_and_the_link() -> None:
    prefill = message_action_prefill(payload("fetch_task")["value"])

    assert prefill == {"summary": "Initech: nobody can log in since 09:00 & the SSO page loops",
                       "message_url": payload("fetch_task")["value"]["messagePayload"]["linkToMessage"]}


def test_a_mention_of_a_configured_person_becomes_their_person_key(example_config: Config) -> None:
    activity = Activity().deserialize({
        "type": "message", "id": "1",
        "text": "<at>Escalator</at> case ESC-1001 handoff <at>Ben Brooks</at> over to you",
        "from": {"id": "29:alice", "name": "Alice Adams"}, "recipient": {"id": "28:escalator-local"},
        "conversation": {"id": "a:1", "conversationType": "personal"},
        "entities": [{"type": "mention", "text": "<at>Escalator</at>", "mentioned": {"id": "28:escalator-local"}},
                     {"type": "mention", "text": "<at>Ben Brooks</at>", "mentioned": {"id": "29:ben", "name": "Ben"}}]})
    command = message_command(activity, example_config)
    assert isinstance(command, HandOffCase) and command.to_person == "ben" and command.note == "over to you"


def test_a_mention_of_someone_unknown_stays_a_name_and_never_an_id(example_config: Config) -> None:
    activity = Activity().deserialize({
        "type": "message", "id": "2", "text": "escalate L2 <at>Sam Stranger</at> cannot log in",
        "from": {"id": "29:alice", "name": "Alice Adams"}, "recipient": {"id": "28:escalator-local"},
        "conversation": {"id": "a:1", "conversationType": "personal"},
        "entities": [{"type": "mention", "text": "<at>Sam Stranger</at>",
                      "mentioned": {"id": "29:sam", "name": "Sam"}}]})
    command = message_command(activity, example_config)
    assert isinstance(command, OpenCase) and "29:" not in command.title and "Sam Stranger" in command.title
