"""Crisis mode in Slack against the recording Web API: the incident channel, invites, fan-out, fallback."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import buttons, field_value, opened_view, replies, roots, text_of
from tests.fakes.slack_api import FakeSlackApi


def incident_card(api: FakeSlackApi, channel: str) -> dict:  # type: ignore[type-arg]
    (found,) = [m for m in roots(api, channel) if "INC-1 ·" in text_of(m) and "incident_resolve" in buttons(m)]
    return found


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    (found,) = [b for b in view["blocks"] if b.get("block_id") == block_id]
    return dict(found["element"])


def selected(view: dict[str, Any], block_id: str) -> str | None:
    option = block(view, block_id).get("initial_option")
    return str(option["value"]) if option else None


def initial_text(view: dict[str, Any], block_id: str) -> str | None:
    value = block(view, block_id).get("initial_value")
    return str(value) if value is not None else None


async def submit_update(slack: SlackCaller, view: dict[str, Any], status: str, text: str, *,
                        user: str) -> tuple[int, Any]:
    """Submit the Post update modal as Slack does: a static select and a text input."""
    state = {"status": {"value": {"type": "static_select", "selected_option": {"value": status}}},
             "update": {"value": {"type": "plain_text_input", "value": text}}}
    return await slack.interact({
        "type": "view_submission", "team": slack.team, "user": slack.user(user, "someone"), "api_app_id": "A0ESC",
        "token": "legacy", "trigger_id": f"tr-{uuid.uuid4().hex}",
        "view": {**view, "id": f"V{uuid.uuid4().hex[:8]}", "hash": "h1", "state": {"values": state},
                 "team_id": slack.team["id"], "app_id": "A0ESC"}})


async def test_declaring_makes_an_incident_channel_invites_its_people_and_fans_updates_out(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    _, opened = await slack.command("/escalate", "L2 sev2 customer:globex checkout fails for EU cards")
    assert opened["response_type"] == "ephemeral"
    _, answer = await slack.command("/crisis", "declare sev1 component:checkout Checkout is down",
                                    user="U0ERIN", user_name="erin")
    assert "Declared INC-1" in answer["text"] and "Linked 1 open case" in answer["text"]
    await worker.drain()
    (create,) = api.calls_to("conversations.create")
    assert create.args["name"] == "inc-1-checkout-is-down"
    (invite,) = api.calls_to("conversations.invite")
    channel = str(invite.args["channel"])
    assert channel.startswith("C0NEW") and "U0ERIN" in str(invite.args["users"])
    card = incident_card(api, channel)
    assert field_value(card, "Commander") == "Erin Ortiz" and field_value(card, "Linked cases") == "1"
    assert {"incident_update", "incident_link", "incident_role", "incident_resolve"} <= set(buttons(card))
    assert any("Incident INC-1 declared" in text_of(m) for m in roots(api, "C0STATUS"))
    assert any("Service status" in text_of(m) for m in roots(api, "C0GLOBEXSHARED"))

    # A status update reaches the incident channel, the status channel, the case thread and the customer.
    _, answer = await slack.command("/crisis", "INC-1 update identified The payment gateway rejects EU cards",
                                    user="U0ERIN", user_name="erin")
    assert "Update 1 of INC-1 posted" in answer["text"]
    await worker.drain()
    assert any("Update 1" in text_of(m) for m in replies(api, channel, card["ts"]))
    assert any("Identified" in text_of(m) for m in roots(api, "C0STATUS"))
    (case_root,) = [m for m in roots(api, "C0L2") if "ESC-1001" in text_of(m)]
    assert field_value(case_root, "Incident") == "INC-1"
    assert any("INC-1 update" in text_of(m) for m in replies(api, "C0L2", case_root["ts"]))
    customer = [text_of(m) for m in roots(api, "C0GLOBEXSHARED")]
    assert len(customer) == 2 and "rejects EU cards" in customer[-1]
    assert not any("ESC-" in t or "INC-" in t or "Erin" in t for t in customer)

    # A role holder named later is invited to the channel too, once.
    await slack.command("/crisis", "INC-1 role communications hana", user="U0ERIN", user_name="erin")
    await slack.command("/crisis", "INC-1 note hana is on the customer calls", user="U0ERIN", user_name="erin")
    await worker.drain()
    later = api.calls_to("conversations.invite")[1:]
    assert [(c.args["channel"], c.args["users"]) for c in later] == [(channel, "U0HANA")]

    # The Post update button opens the core's form, prefilled with the last update: status and text.
    await slack.click(buttons(incident_card(api, channel))["incident_update"], user="U0ERIN", channel=channel)
    form = opened_view(api)
    assert form["callback_id"] == "incident_update"
    assert selected(form, "status") == "identified"
    assert initial_text(form, "update") == "The payment gateway rejects EU cards"
    _, done = await submit_update(slack, form, "monitoring", "A fix is deployed", user="U0ERIN")
    assert done["response_action"] == "update" and "Update 2 of INC-1 posted" in json.dumps(done["view"])
    await worker.drain()
    assert field_value(incident_card(api, channel), "Status") == "Monitoring"
    assert any("A fix is deployed" in text_of(m) for m in replies(api, channel, card["ts"]))


async def test_when_slack_refuses_the_channel_the_incident_runs_in_a_status_channel_thread_and_says_so(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker) -> None:
    api.fail("conversations.create", error="restricted_action")
    _, answer = await slack.command("/crisis", "declare sev2 Search is slow", user="U0GUS", user_name="gus")
    assert "Declared INC-1" in answer["text"]
    await worker.drain()
    assert not api.calls_to("conversations.invite")
    status = [text_of(m) for m in roots(api, "C0STATUS")]
    assert any("Could not create a channel" in t and "restricted_action" in t for t in status)
    card = incident_card(api, "C0STATUS")
    await slack.command("/crisis", "INC-1 note checking the index", user="U0GUS", user_name="gus")
    await worker.drain()
    assert any("checking the index" in text_of(m) for m in replies(api, "C0STATUS", card["ts"]))
    assert len(api.calls_to("conversations.create", ok_only=False)) == 1  # not asked again


async def test_the_update_form_starts_empty_before_the_first_update_and_refuses_an_empty_text(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker) -> None:
    await slack.command("/crisis", "declare sev2 Search is slow", user="U0GUS", user_name="gus")
    await worker.drain()
    channel = str(api.calls_to("conversations.invite")[0].args["channel"])
    await slack.click(buttons(incident_card(api, channel))["incident_update"], user="U0GUS", channel=channel)
    form = opened_view(api)
    assert selected(form, "status") == "investigating" and initial_text(form, "update") is None
    _, refused = await submit_update(slack, form, "identified", "   ", user="U0GUS")
    assert refused["response_action"] == "errors" and "update" in refused["errors"]
    await worker.drain()
    assert field_value(incident_card(api, channel), "Status") == "Investigating"  # nothing changed


async def test_the_post_incident_report_is_uploaded_as_a_markdown_file_in_the_incident_channel(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await slack.command("/escalate", "L2 sev2 customer:globex checkout fails for EU cards")
    slack_runtime.clock.advance(minutes=10)  # type: ignore[attr-defined]
    await slack.command("/crisis", "declare sev1 component:checkout Checkout is down", user="U0ERIN",
                        user_name="erin")
    await worker.drain()
    channel = str(api.calls_to("conversations.invite")[0].args["channel"])
    slack_runtime.clock.advance(minutes=5)  # type: ignore[attr-defined]
    await slack.command("/crisis", "INC-1 update identified The gateway rejects EU cards", user="U0ERIN",
                        user_name="erin")
    slack_runtime.clock.advance(minutes=40)  # type: ignore[attr-defined]
    _, answer = await slack.command("/crisis", "INC-1 resolve Checkout works again --resolve-cases",
                                    user="U0ERIN", user_name="erin")
    assert "INC-1 resolved" in answer["text"]
    await worker.drain()
    # The report text in the incident space, and the same report as INC-1-report.md, through the
    # external upload flow: an upload URL, the bytes, then the file shared in the incident channel.
    assert any("Post-incident report" in text_of(m) for m in api.messages[channel])
    (asked,) = api.calls_to("files.getUploadURLExternal")
    assert asked.args["filename"] == "INC-1-report.md"
    (sent,) = api.calls_to("upload")
    (shared,) = api.calls_to("files.completeUploadExternal")
    assert shared.args["channel_id"] == channel and sent.args["id"] == asked_id(api, asked)
    file = api.files[sent.args["id"]]
    body = file["content"].decode()
    assert file["channel"] == channel and int(asked.args["length"]) == len(file["content"])
    assert body.startswith("# INC-1 · Checkout is down\n")
    for line in ("## Durations", "- Time to declare (from the first linked case): 10m",
                 "- Time to first update: 5m", "- Time to resolve: 45m", "## Update punctuality",
                 "- 1 of 2 updates on time", "## Timeline", "Erin Ortiz: declared (sev1: Checkout is down)",
                 "Erin Ortiz: status update (Identified (on time): The gateway rejects EU cards)",
                 "Erin Ortiz: resolved (Checkout works again)"):
        assert line in body, line

    # /crisis INC-1 report: the text for the caller, and the file uploaded again.
    _, shown = await slack.command("/crisis", "INC-1 report", user="U0ALICE", user_name="alice")
    assert "Time to resolve: 45m" in json.dumps(shown)
    await worker.drain()
    assert len(api.calls_to("files.completeUploadExternal")) == 2
    again = api.files[api.calls_to("upload")[-1].args["id"]]
    assert again["channel"] == channel and b"- Time to resolve: 45m" in again["content"]


def asked_id(api: FakeSlackApi, asked: Any) -> str:
    """The file id the fake handed out for a files.getUploadURLExternal call."""
    (found,) = [f for f, v in api.files.items() if v.get("filename") == asked.args["filename"]
                and str(v.get("length")) == str(asked.args["length"])]
    return found
