"""Card buttons of a private case pressed by an outsider (someone who can see the message) are refused."""

from __future__ import annotations

import pytest

from adapters.slack.app import SlackAdapter
from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import buttons, card
from tests.fakes.slack_api import FakeSlackApi


async def open_private_case(slack: SlackCaller, worker: DeliveryWorker) -> dict[str, object]:
    status, body = await slack.command("/escalate", "sev2 customer:globex category:billing Charged twice")
    assert status == 200 and body["text"].startswith("Opened ESC-1001"), body
    await worker.drain()
    return card(slack.api, "G0L2PRIVATE")


@pytest.mark.parametrize("action", ["acknowledge", "claim"])
async def test_an_outsider_pressing_a_private_card_button_is_refused(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, adapter: SlackAdapter,
        slack_runtime: Runtime, action: str) -> None:
    message = await open_private_case(slack, worker)
    status, _ = await slack.click(buttons(message)[action], user="U0DEV", channel="G0L2PRIVATE")
    assert status == 200
    await adapter.flush()
    (follow_up,) = api.calls_to("response_url")
    assert follow_up.args["response_type"] == "ephemeral"
    assert "You don't have access to ESC-1001." in follow_up.args["text"]
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.acknowledged_at is None and case.owner is None


async def test_an_insider_pressing_the_same_button_acts(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, adapter: SlackAdapter,
        slack_runtime: Runtime) -> None:
    message = await open_private_case(slack, worker)
    await slack.click(buttons(message)["acknowledge"], user="U0CLEO", channel="G0L2PRIVATE")
    await adapter.flush()
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.acknowledged_by == "cleo"


async def test_an_outsider_cannot_read_a_private_case_with_a_slash_command(slack: SlackCaller,
                                                                            worker: DeliveryWorker) -> None:
    await open_private_case(slack, worker)
    status, body = await slack.command("/case", "ESC-1001 watch", user="U0DEV", user_name="dev")
    assert status == 200 and "You don't have access to ESC-1001." in body["text"]
    status, body = await slack.command("/case", "ESC-1001", user="U0DEV", user_name="dev")
    assert "Charged" not in str(body)
