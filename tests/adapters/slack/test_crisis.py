"""Crisis mode in Slack against the recording Web API: the incident channel, invites, fan-out, fallback."""

from __future__ import annotations

from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import buttons, field_value, opened_view, replies, roots, text_of
from tests.fakes.slack_api import FakeSlackApi


def incident_card(api: FakeSlackApi, channel: str) -> dict:  # type: ignore[type-arg]
    (found,) = [m for m in roots(api, channel) if "INC-1 ·" in text_of(m) and "incident_resolve" in buttons(m)]
    return found


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

    # The Post update button asks for the text; its first word may be the status.
    await slack.click(buttons(incident_card(api, channel))["incident_update"], user="U0ERIN", channel=channel)
    await slack.submit(opened_view(api), {"reason": "monitoring A fix is deployed"}, user="U0ERIN")
    await worker.drain()
    assert field_value(incident_card(api, channel), "Status") == "Monitoring"


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
