"""Slack has no idempotency key: a card post that timed out may be in the channel. Every root carries
metadata with its outbox message id, and the retry looks for it in the channel's history first.

The real outbox worker, the real Delivery and Slack client run against the local Web API fake, which
can post a message and then answer later than the client waits.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from adapters.slack.delivery import CARD_EVENT, SlackTransport, web_client
from bot.clock import FakeClock
from bot.delivery import MaybePosted
from bot.messages import Address, FileRef, Notice, OutboxMessage, ThreadLink, case_thread
from bot.runtime import Runtime
from bot.store import Commit
from tests.adapters.slack.conftest import Sleeps
from tests.adapters.slack.helpers import roots, text_of
from tests.adapters.slack.test_delivery import settle
from tests.fakes.slack_api import FakeSlackApi

MANIFEST = Path(__file__).resolve().parents[3] / "adapters" / "slack" / "manifest.yaml"


def impatient(runtime: Runtime, api: FakeSlackApi, clock: FakeClock) -> SlackTransport:
    """A transport whose client gives up after 0.2 s."""
    return SlackTransport(store=runtime.store, clock=clock, workspace_url="https://acme.slack.com",
                          client=web_client(token="xoxb-test", base_url=api.url, timeout=0.2))  # type: ignore[arg-type]


def case_card(clock: FakeClock, *, message_id: str = "m-card", version: int = 1, title: str = "ESC-1042 card"
              ) -> OutboxMessage:
    return OutboxMessage(id=message_id,
                         address=Address(platform="slack", channel="C0L2", thread=case_thread("ESC-1042", "L2")),
                         notice=Notice(kind="card", title=title, case_id="ESC-1042", case_version=version),
                         created_at=clock.now())


async def test_every_root_post_carries_its_message_id_and_thread_in_metadata(
        slack_runtime: Runtime, api: FakeSlackApi, clock: FakeClock) -> None:
    await impatient(slack_runtime, api, clock).deliver(case_card(clock))
    (root,) = roots(api, "C0L2")
    assert root["metadata"] == {"event_type": CARD_EVENT,
                                "event_payload": {"message_id": "m-card", "thread": "case:ESC-1042:L2"}}


async def test_a_root_post_whose_answer_timed_out_is_found_in_history_not_posted_twice(
        slack_runtime: Runtime, api: FakeSlackApi, clock: FakeClock, sleeps: Sleeps) -> None:
    transport = impatient(slack_runtime, api, clock)
    worker = slack_runtime.worker(transport, sleep=sleeps)
    api.fail("chat.postMessage", delay=0.5, done_first=True, channel="C0L2")  # posted; the answer comes too late
    await slack_runtime.store.commit(Commit(messages=[case_card(clock)]))
    await settle(worker, slack_runtime, clock)

    (root,) = roots(api, "C0L2")  # exactly one card in the channel
    [history] = api.calls_to("conversations.history")
    assert history.args["channel"] == "C0L2" and str(history.args["include_all_metadata"]).lower() in ("1", "true")
    ref = await slack_runtime.store.get_thread("ESC-1042", "L2", "slack")
    assert ref is not None and ref.root_id == root["ts"]
    assert await slack_runtime.outbox.dead_letters("slack") == []


async def test_a_newer_card_after_a_timed_out_post_updates_the_card_it_finds(
        slack_runtime: Runtime, api: FakeSlackApi, clock: FakeClock) -> None:
    transport = impatient(slack_runtime, api, clock)
    api.fail("chat.postMessage", delay=0.5, done_first=True, channel="C0L2")
    first = case_card(clock)
    with pytest.raises(MaybePosted, match="may be posted"):
        await transport.deliver(first)
    await transport.deliver(case_card(clock, message_id="m-card-2", version=2, title="ESC-1042 acknowledged"))
    (root,) = roots(api, "C0L2")
    assert "acknowledged" in text_of(root)
    assert [c.args["ts"] for c in api.calls_to("chat.update")] == [root["ts"]]


async def test_a_root_post_refused_with_a_500_is_posted_again_without_reading_history(
        slack_runtime: Runtime, api: FakeSlackApi, clock: FakeClock, sleeps: Sleeps) -> None:
    worker = slack_runtime.worker(impatient(slack_runtime, api, clock), sleep=sleeps)
    api.fail("chat.postMessage", status=500, channel="C0L2")
    await slack_runtime.store.commit(Commit(messages=[case_card(clock)]))
    await settle(worker, slack_runtime, clock)
    assert len(roots(api, "C0L2")) == 1
    assert api.calls_to("conversations.history") == []


async def test_a_page_to_a_person_is_not_held_back_by_a_missing_thread_and_gets_its_link_later(
        slack_runtime: Runtime, api: FakeSlackApi, clock: FakeClock, sleeps: Sleeps) -> None:
    transport = impatient(slack_runtime, api, clock)
    worker = slack_runtime.worker(transport, sleep=sleeps)
    api.fail("chat.postMessage", status=429, retry_after=30, channel="C0L2")  # the tier channel is held
    page = OutboxMessage(id="m-page", address=Address(platform="slack", user="U0CLEO", private=True),
                         notice=Notice(kind="page", title="You are paged for ESC-1042 (sev1)", case_id="ESC-1042",
                                       links=[ThreadLink(thread=case_thread("ESC-1042", "L2"),
                                                         label="Open the case thread")]),
                         created_at=clock.now())
    await slack_runtime.store.commit(Commit(messages=[case_card(clock), page]))
    await worker.drain()
    (dm,) = api.messages["D0CLEO"]
    assert "You are paged for ESC-1042" in text_of(dm) and "Open the case thread" not in text_of(dm)
    assert roots(api, "C0L2") == []

    await settle(worker, slack_runtime, clock)  # the hold ends, the card is posted, the DM gets its link
    ref = await slack_runtime.store.get_thread("ESC-1042", "L2", "slack")
    assert ref is not None and ref.url
    (dm,) = api.messages["D0CLEO"]
    assert f"<{ref.url}|Open the case thread>" in text_of(dm)


async def test_an_upload_to_a_person_goes_to_their_direct_message(
        slack_runtime: Runtime, api: FakeSlackApi, clock: FakeClock) -> None:
    chart = FileRef(filename="digest.png", mime_type="image/png", data_b64=base64.b64encode(b"\x89PNG-bytes").decode())
    upload = OutboxMessage(id="m-up", address=Address(platform="slack", user="U0GUS"),
                           notice=Notice(kind="upload", title="Weekly digest", text="3 cases open", file=chart),
                           created_at=clock.now())
    file_id = await impatient(slack_runtime, api, clock).deliver(upload)
    assert file_id is not None
    assert api.files[file_id]["content"] == b"\x89PNG-bytes"
    assert (api.files[file_id]["channel"], api.files[file_id]["title"]) == ("D0GUS", "Weekly digest")


def test_the_manifest_asks_for_the_history_scopes_the_reconcile_needs() -> None:
    scopes = set(yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["oauth_config"]["scopes"]["bot"])
    assert {"channels:history", "groups:history", "files:write"} <= scopes
