"""The Slack delivery worker against a misbehaving Web API: retries, Retry-After, dead letters, pacing.

The real outbox worker and the real transport run against the local Web API fake; the worker's
sleep only records and moves the fake clock, and `settle` jumps the clock to each retry's due time.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from adapters.slack.app import SlackAdapter
from adapters.slack.delivery import SlackTransport, web_client
from bot.clock import FakeClock, from_ms
from bot.messages import Address, CardField, Notice, OutboxMessage, ThreadLink, case_thread
from bot.model import ThreadRef
from bot.outbox import DeliveryWorker, RetryLater, Undeliverable
from bot.pacing import Pace
from bot.runtime import Runtime
from bot.store import Commit
from tests.adapters.slack.conftest import SlackCaller, Sleeps
from tests.adapters.slack.helpers import card, card_updates, field_value, outbox_size, replies, roots, text_of
from tests.fakes.slack_api import FakeSlackApi


async def settle(worker: DeliveryWorker, runtime: Runtime, clock: FakeClock, *, rounds: int = 200) -> None:
    """Deliver everything, jumping the clock to each delayed retry when nothing else is due."""
    delayed = runtime.store.keys.outbox_delayed("slack")
    for _ in range(rounds):
        await worker.drain()
        first = await runtime.store.redis.zrange(delayed, 0, 0, withscores=True)
        if not first:
            return
        due = from_ms(int(first[0][1]))
        if due > clock.now():
            clock.set(due)
    raise AssertionError("the outbox did not settle")


def post(channel: str, title: str, *, message_id: str, clock: FakeClock, **notice: object) -> OutboxMessage:
    return OutboxMessage(id=message_id, address=Address(platform="slack", channel=channel),
                         notice=Notice(kind="post", title=title, **notice),  # type: ignore[arg-type]
                         created_at=clock.now())


async def queue(runtime: Runtime, *messages: OutboxMessage) -> None:
    await runtime.store.commit(Commit(messages=list(messages)))


async def open_case(slack: SlackCaller, text: str = "L2 sev2 checkout fails") -> None:
    status, body = await slack.command("/escalate", text)
    assert status == 200 and body["text"].startswith("Opened"), body


# ---- rate limits and server errors --------------------------------------------------------


async def test_a_429_is_retried_after_retry_after_and_holds_the_channel_for_everyone(
        slack: SlackCaller, api: FakeSlackApi, adapter: SlackAdapter, slack_runtime: Runtime,
        clock: FakeClock, sleeps: Sleeps) -> None:
    transport = adapter.transport()
    assert transport is not None
    # One delivery at a time, so that no other post to C0L2 is already in flight when the 429 comes.
    worker = slack_runtime.worker(transport, sleep=sleeps, max_in_flight=1)
    api.fail("chat.postMessage", status=429, retry_after=7, channel="C0L2")
    await open_case(slack)
    await queue(slack_runtime, post("C0L2", "shift notes", message_id="m-other", clock=clock))
    await settle(worker, slack_runtime, clock)
    to_l2 = [c for c in api.calls if c.method == "chat.postMessage" and c.args["channel"] == "C0L2"]
    limited, after = to_l2[0], to_l2[1:]
    assert limited.status == 429
    # Nothing at all went to that channel, for any message, until Retry-After had passed.
    assert after and all(c.at - limited.at >= timedelta(seconds=7) for c in after)  # type: ignore[operator]
    assert 7 in [round(w) for w in sleeps.waits]
    assert len(roots(api, "C0L2")) == 2  # the card, once, and the other post
    assert await slack_runtime.outbox.dead_letters("slack") == []
    assert len(replies(api, "C0L2", card(api, "C0L2")["ts"])) >= 2


async def test_500s_are_retried_with_backoff_until_slack_recovers(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime,
        clock: FakeClock) -> None:
    api.fail("chat.postMessage", status=500, times=2, channel="C0L2")
    api.fail("chat.postMessage", status=503, times=1, channel="D0CLEO")
    await open_case(slack)
    started = clock.now()
    await settle(worker, slack_runtime, clock)
    assert clock.now() - started >= timedelta(seconds=2 + 4)  # two backoffs of the card
    assert len(roots(api, "C0L2")) == 1
    assert await slack_runtime.outbox.dead_letters("slack") == []
    assert await outbox_size(slack_runtime) == 0
    thread = replies(api, "C0L2", card(api, "C0L2")["ts"])
    assert any("Paging Cleo Chen" in m["text"] for m in thread)
    assert any("Escalated by" in m["text"] for m in thread)
    assert len(api.messages["D0CLEO"]) == 1


async def test_a_timeout_is_retried_not_lost(slack_runtime: Runtime, api: FakeSlackApi, clock: FakeClock,
                                             sleeps: Sleeps) -> None:
    transport = SlackTransport(store=slack_runtime.store, clock=clock, workspace_url="https://acme.slack.com",
                               client=web_client(token="xoxb-test", base_url=api.url, timeout=0.2))  # type: ignore[arg-type]
    worker = slack_runtime.worker(transport, sleep=sleeps)
    api.fail("chat.postMessage", delay=0.5)
    await queue(slack_runtime, post("C0LATE", "hello", message_id="m-slow", clock=clock))
    await settle(worker, slack_runtime, clock)
    assert await slack_runtime.outbox.dead_letters("slack") == []
    assert len(api.calls_to("chat.postMessage")) == 2  # the late one (which Slack may show) and the retry


async def test_an_unreachable_slack_is_retried(slack_runtime: Runtime, clock: FakeClock, sleeps: Sleeps) -> None:
    transport = SlackTransport(store=slack_runtime.store, clock=clock,
                               client=web_client(token="xoxb-test", base_url="http://127.0.0.1:9/api/"))
    message = post("C0X", "hello", message_id="m-1", clock=clock)
    with pytest.raises(RetryLater, match="cannot reach Slack"):
        await transport.deliver(message)


async def test_a_message_that_keeps_failing_reaches_the_dead_letter_stream(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime,
        clock: FakeClock) -> None:
    api.fail("chat.postMessage", status=500, times=None, channel="C0L2")
    await open_case(slack)
    await settle(worker, slack_runtime, clock)
    dead = await slack_runtime.outbox.dead_letters("slack")
    cards = [d for d in dead if d.message.notice.kind == "card"]
    assert len(cards) == 1
    assert cards[0].attempts == worker.max_attempts
    assert "500" in cards[0].error
    # The card's thread replies could never go out either: after waiting for their root up to the
    # outbox's wait limit, they are dead letters too, not lost.
    assert {d.error for d in dead if d.message.notice.kind != "card"} == {"thread root not posted yet"}
    assert await outbox_size(slack_runtime) == 0

    # Once Slack is back, an operator replays them and the thread appears, in order.
    api.heal()
    assert await slack_runtime.outbox.replay("slack") == len(dead)
    await settle(worker, slack_runtime, clock)
    assert len(roots(api, "C0L2")) == 1
    assert await slack_runtime.outbox.dead_letters("slack") == []


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "invalid_auth", "is_archived"])
async def test_an_error_no_retry_can_fix_is_dead_lettered_at_once(
        error: str, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime, clock: FakeClock) -> None:
    api.fail("chat.postMessage", error=error, times=None)
    await queue(slack_runtime, post("C0GONE", "hello", message_id="m-gone", clock=clock))
    await worker.drain()
    (dead,) = await slack_runtime.outbox.dead_letters("slack")
    assert dead.attempts == 1
    assert error in dead.error
    assert len(api.calls_to("chat.postMessage", ok_only=False)) == 1


# ---- the card: posted once, then updated --------------------------------------------------


async def test_card_changes_update_the_root_and_never_repost_it(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack)
    await worker.drain()
    root = card(api, "C0L2")
    for command in ("ESC-1001 ack", "ESC-1001 claim", "ESC-1001 wait customer", "ESC-1001 resume"):
        await slack.command("/case", command, user="U0CLEO")
        await worker.drain()
    assert len(roots(api, "C0L2")) == 1
    assert len(card_updates(api)) == 4
    assert {c.args["ts"] for c in card_updates(api)} == {root["ts"]}
    assert field_value(card(api, "C0L2"), "Owner") == "Cleo Chen"


async def test_a_card_delivered_again_updates_instead_of_posting(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack)
    await worker.drain()
    (card_message,) = [c for c in api.calls_to("chat.postMessage") if "thread_ts" not in c.args
                       and c.args["channel"] == "C0L2"]
    transport = worker.transport
    for stream in slack_runtime.store.keys.outboxes("slack"):
        assert await slack_runtime.store.redis.xrange(stream) == []  # delivered and acknowledged
    # A crash after posting but before the ack: the same card comes round again.
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None
    from workflows.cards import case_card

    again = OutboxMessage(id="m-again",
                          address=Address(platform="slack", channel="C0L2", thread=case_thread("ESC-1001", "L2")),
                          notice=case_card(case, slack_runtime.config, slack_runtime.clock.now()),
                          created_at=slack_runtime.clock.now())
    ts = await transport.deliver(again)
    assert ts == card_message.args.get("ts", ts)
    assert len(roots(api, "C0L2")) == 1
    assert len(card_updates(api)) == 1


async def test_an_older_card_arriving_late_is_skipped(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack)
    await worker.drain()
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None
    from workflows.cards import case_card

    def card_message(version: int, owner: str | None) -> OutboxMessage:
        state = case.model_copy(update={"version": version, "owner": owner})
        return OutboxMessage(id=f"m-v{version}", address=Address(
            platform="slack", channel="C0L2", thread=case_thread("ESC-1001", "L2")),
            notice=case_card(state, slack_runtime.config, slack_runtime.clock.now()),
            created_at=slack_runtime.clock.now())

    assert await worker.transport.deliver(card_message(5, "cleo")) is not None
    assert await worker.transport.deliver(card_message(4, None)) is None  # retried late: skipped
    assert field_value(card(api, "C0L2"), "Owner") == "Cleo Chen"
    assert len(card_updates(api)) == 1


async def test_the_card_of_a_later_change_waits_for_the_first_card_and_the_thread_ends_up_current(
        slack: SlackCaller, api: FakeSlackApi, adapter: SlackAdapter, slack_runtime: Runtime,
        clock: FakeClock) -> None:
    # (Changed with the lanes of the delivery engine: the acknowledged card used to overtake the
    # failed first card; now a thread's messages go in commit order, so it waits for it.)
    async def no_sleep(seconds: float) -> None:
        return None

    transport = adapter.transport()
    assert transport is not None
    worker = slack_runtime.worker(transport, sleep=no_sleep)
    api.fail("chat.postMessage", status=500, channel="C0L2")  # the first card fails once...
    await open_case(slack)
    await worker.drain()
    await slack.command("/case", "ESC-1001 ack", user="U0CLEO")  # ...the acknowledged card waits behind it
    await worker.drain()
    assert roots(api, "C0L2") == []
    clock.advance(seconds=60)  # the first card's retry comes due, then the acknowledged card follows
    await worker.drain()
    assert len(roots(api, "C0L2")) == 1
    assert field_value(card(api, "C0L2"), "Status") == "Acknowledged"


async def test_a_deleted_card_is_posted_again_and_remembered(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack)
    await worker.drain()
    api.messages["C0L2"] = [m for m in api.messages["C0L2"] if m.get("thread_ts")]  # someone deleted it
    await slack.command("/case", "ESC-1001 claim", user="U0CLEO")
    await worker.drain()
    (new_root,) = roots(api, "C0L2")
    ref = await slack_runtime.store.get_thread("ESC-1001", "L2", "slack")
    assert ref is not None and ref.root_id == new_root["ts"]
    assert field_value(new_root, "Owner") == "Cleo Chen"


async def test_a_reply_waits_for_its_thread_root(slack_runtime: Runtime, adapter: SlackAdapter,
                                                 clock: FakeClock) -> None:
    transport = adapter.transport()
    assert transport is not None
    reply = OutboxMessage(id="m-r",
                          address=Address(platform="slack", channel="C0L2", thread=case_thread("ESC-9", "L2")),
                          notice=Notice(kind="reply", title="hello", case_id="ESC-9"), created_at=clock.now())
    with pytest.raises(RetryLater, match="thread root not posted yet"):
        await transport.deliver(reply)


async def test_a_link_to_a_thread_not_yet_posted_waits_a_little_then_goes_without_it(
        slack_runtime: Runtime, adapter: SlackAdapter, api: FakeSlackApi, clock: FakeClock) -> None:
    transport = adapter.transport()
    assert transport is not None
    message = post("C0HELP", "Escalated to L3", message_id="m-l", clock=clock,
                   links=[ThreadLink(thread=case_thread("ESC-7", "L3"), label="Follow the case thread")])
    with pytest.raises(RetryLater, match="linked thread not posted yet"):
        await transport.deliver(message)
    await slack_runtime.store.set_thread("ESC-7", "L3", ThreadRef(platform="teams", channel="19:x", root_id="1",
                                                                   url="https://teams.example/thread"))
    await transport.deliver(message)  # another platform's thread will do
    assert "<https://teams.example/thread|Follow the case thread>" in text_of(api.messages["C0HELP"][0])
    clock.advance(minutes=1)
    late = post("C0HELP", "Escalated", message_id="m-late", clock=clock,
                links=[ThreadLink(thread=case_thread("ESC-8", "L3"), label="Follow")])
    clock.advance(minutes=1)
    await transport.deliver(late)
    assert len(api.messages["C0HELP"]) == 2


# ---- pacing -------------------------------------------------------------------------------


async def test_a_burst_to_one_channel_goes_out_three_at_once_then_one_message_per_second(
        api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime, clock: FakeClock,
        sleeps: Sleeps) -> None:
    await queue(slack_runtime, *[post("C0BUSY", f"update {i}", message_id=f"m{i}", clock=clock)
                                 for i in range(8)])
    await worker.drain()
    calls = api.calls_to("chat.postMessage")
    assert [c.args["text"] for c in calls] == [f"update {i}" for i in range(8)]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(calls)]  # type: ignore[operator]
    assert gaps == [0, 0] + [pytest.approx(1.0, abs=0.01)] * 5
    assert sleeps.waits == [pytest.approx(1.0, abs=0.01)] * 5


async def test_two_workers_share_the_pace_of_a_channel(
        api: FakeSlackApi, adapter: SlackAdapter, slack_runtime: Runtime, clock: FakeClock, sleeps: Sleeps) -> None:
    transport = adapter.transport()
    assert transport is not None
    first = DeliveryWorker(slack_runtime.outbox, transport, consumer="one", sleep=sleeps)
    second = DeliveryWorker(slack_runtime.outbox, transport, consumer="two", sleep=sleeps)
    await queue(slack_runtime, *[post("C0BUSY", f"update {i}", message_id=f"m{i}", clock=clock)
                                 for i in range(5)])
    for _ in range(3):
        await first.run_once(count=1)
        await second.run_once(count=1)
    calls = api.calls_to("chat.postMessage")
    assert [c.args["text"] for c in calls] == [f"update {i}" for i in range(5)]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(calls)]  # type: ignore[operator]
    assert gaps == [0, 0, pytest.approx(1.0, abs=0.01), pytest.approx(1.0, abs=0.01)]


async def test_other_channels_are_not_slowed_by_a_busy_one(
        api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime, clock: FakeClock, sleeps: Sleeps) -> None:
    await queue(slack_runtime, post("C0A", "a1", message_id="a1", clock=clock),
                post("C0B", "b1", message_id="b1", clock=clock),
                post("C0C", "c1", message_id="c1", clock=clock))
    await worker.drain()
    assert sleeps.waits == []


def test_pacing_is_per_channel_or_per_direct_message_within_the_workspace_budget(
        adapter: SlackAdapter, clock: FakeClock) -> None:
    transport = adapter.transport()
    assert transport is not None
    channel = post("C0L2", "x", message_id="1", clock=clock)
    dm = OutboxMessage(id="2", address=Address(platform="slack", user="U0CLEO", private=True),
                       notice=Notice(kind="direct", title="x"), created_at=clock.now())
    card_update = OutboxMessage(id="3",
                                address=Address(platform="slack", channel="C0L2", thread=case_thread("ESC-1", "L2")),
                                notice=Notice(kind="card", title="x"), created_at=clock.now())
    workspace = Pace("workspace", 10.0, 20)
    assert transport.pace(channel) == [Pace("chat:C0L2", 1.0, 3), workspace]
    assert transport.pace(dm) == [Pace("chat:dm:U0CLEO", 1.0, 3), workspace, Pace("method:conversations.open", 0)]
    assert transport.pace(card_update) == [Pace("chat:C0L2", 1.0, 3), workspace,
                                           Pace("method:chat.update", 0)]


# ---- privacy and escaping ------------------------------------------------------------------


async def test_a_private_case_stays_in_its_private_channel(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    await open_case(slack, "sev2 category:billing customer:globex refund twice charged for order 1234")
    await worker.drain()
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.private
    card(api, "G0L2PRIVATE")
    assert "C0L2" not in api.messages
    for call in api.calls_to("chat.postMessage", "chat.update"):
        if call.args["channel"] not in ("G0L2PRIVATE",) and not call.args["channel"].startswith("D"):
            assert "twice charged" not in call.dump(), call.args["channel"]
    (back,) = api.messages["C0SUPPORT"]
    assert "ESC-1001" in back["text"] and "refund" not in back["text"]


async def test_a_private_message_is_never_cross_posted_to_another_channel(
        slack_runtime: Runtime, adapter: SlackAdapter, clock: FakeClock, api: FakeSlackApi) -> None:
    transport = adapter.transport()
    assert transport is not None
    await slack_runtime.store.set_thread("ESC-5", "L2", ThreadRef(platform="slack", channel="C0L2", root_id="1.2"))
    reply = OutboxMessage(id="m-p", address=Address(platform="slack", channel="G0L2PRIVATE",
                                                   thread=case_thread("ESC-5", "L2"), private=True),
                          notice=Notice(kind="reply", title="secret", case_id="ESC-5", private=True),
                          created_at=clock.now())
    with pytest.raises(Undeliverable, match="not cross-posting"):
        await transport.deliver(reply)
    assert api.calls == []


async def test_channel_and_mention_injection_is_escaped_in_everything_posted(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker) -> None:
    # Typed literally, Slack sends `&lt;!channel&gt;`; as real mentions (should_escape), `<!channel>`.
    await open_case(slack, "L2 sev2 &lt;!channel&gt; &lt;!here&gt; &lt;@U0GUS&gt; <!channel> <!here> <@U0GUS|gus> "
                           "<!subteam^S1|@support> <https://evil.example|bank> &amp; co")
    await slack.command("/escalate", "L2 sev3 also broken", user="U0STRANGER", user_name="<!channel>")
    await worker.drain()
    posted = api.calls_to("chat.postMessage", "chat.update")
    assert posted
    for call in posted:
        dump = call.dump()
        for raw in ("<!channel>", "<!here>", "<@U0GUS>", "<@U0GUS|", "<!subteam", "<https://evil"):
            assert raw not in dump, (raw, call.args["channel"])
    title = ("&lt;!channel&gt; &lt;!here&gt; &lt;@U0GUS&gt; @channel @here @Gus Grant @support "
             "bank (https://evil.example) &amp; co")
    assert any(title in c.dump() for c in posted)
    assert any("Escalated by &lt;!channel&gt;" in c.dump() for c in posted)
    # The bot's own mentions of paged people are real mentions.
    assert any("<@U0CLEO>" in c.dump() for c in posted)


async def test_a_very_long_summary_is_cut_with_a_link_to_the_full_case(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    # Titles stop at 300 characters and a command at 4,000 (the grammar); a long resolution is
    # still longer than one Slack block, so the renderer cuts it with a link to the full case.
    await open_case(slack, "L2 sev3 " + "&lt;b&gt;" * 1300)  # as Slack sends a typed "<b>"
    await worker.drain()
    await slack.command("/case", "ESC-1001 resolve " + "&lt;b&gt;" * 1300, user="U0CLEO")
    await worker.drain()
    ref = await slack_runtime.store.get_thread("ESC-1001", "L2", "slack")
    assert ref is not None and ref.url
    for call in api.calls_to("chat.postMessage", "chat.update"):
        for block in call.blocks():
            assert len((block.get("text") or {}).get("text", "")) <= 3000
        assert len(call.blocks()) <= 50
    assert any(f"<{ref.url}|full case>" in c.dump() for c in api.calls_to("chat.postMessage", "chat.update"))


async def test_fields_survive_in_a_direct_message(slack_runtime: Runtime, adapter: SlackAdapter,
                                                   api: FakeSlackApi, clock: FakeClock) -> None:
    transport = adapter.transport()
    assert transport is not None
    dm = OutboxMessage(id="m-dm", address=Address(platform="slack", user="U0GUS", private=True),
                       notice=Notice(kind="direct", title="Digest", fields=[CardField(label="Open", value="3")]),
                       created_at=clock.now())
    await transport.deliver(dm)
    await transport.deliver(dm.model_copy(update={"id": "m-dm2"}))
    assert api.methods().count("conversations.open") == 1  # the DM channel is remembered
    assert [c.args["channel"] for c in api.calls_to("chat.postMessage")] == ["D0GUS", "D0GUS"]
