"""A digest on Slack: /digest over signed HTTP, the text as a DM, the chart through the external upload flow."""

from __future__ import annotations

from adapters.slack.app import SlackAdapter
from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import text_of
from tests.fakes.slack_api import FakeSlackApi

PNG = b"\x89PNG\r\n\x1a\n"


async def test_a_manager_runs_digest_and_gets_the_text_and_the_chart_uploaded_into_their_dm(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime,
        adapter: SlackAdapter) -> None:
    status, body = await slack.command("/escalate", "L1 sev2 Card declined at checkout")
    assert status == 200
    status, body = await slack.command("/digest", "since:7d", user="U0GUS", user_name="gus")
    assert status == 200 and "on its way" in str(body)
    await worker.drain()
    methods = [c.method for c in api.calls]
    assert methods.index("files.getUploadURLExternal") < methods.index("upload") < methods.index(
        "files.completeUploadExternal")
    (file,) = api.files.values()
    assert file["content"].startswith(PNG) and file["channel"] == "D0GUS"
    (dm,) = [m for m in api.messages["D0GUS"] if "Digest" in text_of(m)]
    assert "L1: opened 1 (sev2 1)" in text_of(dm)


async def test_someone_who_is_not_a_manager_is_refused_and_nothing_is_sent(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker) -> None:
    status, body = await slack.command("/digest", "", user="U0ALICE", user_name="alice")
    assert status == 200 and "Digests are for managers" in str(body)
    await worker.drain()
    assert not api.calls_to("files.getUploadURLExternal") and "D0ALICE" not in api.messages
