"""The outbox: delivery, retry with backoff and Retry-After, dead letters, replay, reclaim, pacing.

(The engine's new rules, lanes, priorities, holds and hand-back, are in test_delivery_engine.py.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clock import FakeClock
from bot.messages import Address, Notice, OutboxMessage
from bot.outbox import DeliveryWorker, RetryLater, Undeliverable
from bot.pacing import Pace
from bot.runtime import Runtime
from bot.store import Commit
from tests.workflows.helpers import Sleeps


@dataclass
class RecordingTransport:
    """A transport that records deliveries and fails on demand (the platform edge we don't own)."""

    platform: str = "slack"
    fail: list[Exception] = field(default_factory=list)
    delivered: list[OutboxMessage] = field(default_factory=list)
    calls: int = 0
    gap: float | None = None

    def pace(self, message: OutboxMessage) -> list[Pace]:
        return [Pace(f"chat:{message.address.channel}", 1 / self.gap)] if self.gap else []

    async def deliver(self, message: OutboxMessage) -> str | None:
        self.calls += 1
        if self.fail:
            raise self.fail.pop(0)
        self.delivered.append(message)
        return f"ts-{len(self.delivered)}"


def message(n: int, channel: str = "C0L1") -> OutboxMessage:
    return OutboxMessage(id=f"m{n}", address=Address(platform="slack", channel=channel),
                         notice=Notice(kind="post", title=f"hello {n}"), created_at=FakeClock().now())


async def enqueue(runtime: Runtime, *messages: OutboxMessage) -> None:
    await runtime.store.commit(Commit(messages=list(messages)))


async def test_messages_are_delivered_once_and_removed(runtime: Runtime) -> None:
    transport = RecordingTransport()
    await enqueue(runtime, message(1), message(2))
    worker = runtime.worker(transport)
    assert await worker.drain() == 2
    assert [m.id for m in transport.delivered] == ["m1", "m2"]
    assert await runtime.outbox.pending("slack") == 0
    await enqueue(runtime, message(1))  # the same message id again: already sent, not repeated
    await worker.drain()
    assert len(transport.delivered) == 2


async def test_a_failed_delivery_is_retried_with_backoff_then_succeeds(runtime: Runtime, clock: FakeClock) -> None:
    transport = RecordingTransport(fail=[RetryLater("500 from slack"), RetryLater("timeout")])
    await enqueue(runtime, message(1))
    worker = runtime.worker(transport, base_delay_s=2.0)
    await worker.drain()
    assert transport.delivered == [] and await runtime.outbox.pending("slack") == 1
    clock.advance(seconds=1)
    await worker.drain()
    assert transport.calls == 1  # not due yet
    clock.advance(seconds=1)
    await worker.drain()
    assert transport.calls == 2  # second failure: next try after 4 s
    clock.advance(seconds=4)
    await worker.drain()
    assert [m.id for m in transport.delivered] == ["m1"]


async def test_retry_after_is_honoured_and_holds_the_channel_for_every_worker(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = RecordingTransport(fail=[RetryLater("429", after=30, rate_limited=True)], gap=1.0)
    sleeps = Sleeps(clock)
    await enqueue(runtime, message(1))
    worker = runtime.worker(transport, sleep=sleeps)
    await worker.drain()
    clock.advance(seconds=29)
    await worker.drain()
    assert transport.calls == 1
    clock.advance(seconds=1)
    await worker.drain()
    assert len(transport.delivered) == 1
    await enqueue(runtime, message(2))
    other = runtime.worker(RecordingTransport(gap=1.0), sleep=sleeps)
    await other.drain()
    assert sleeps.waits and sleeps.waits[-1] <= 1.0


async def test_a_message_that_keeps_failing_goes_to_dead_letters_and_can_be_replayed(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = RecordingTransport(fail=[RetryLater("500")] * 3)
    await enqueue(runtime, message(1))
    worker = runtime.worker(transport, max_attempts=3, base_delay_s=1)
    for _ in range(5):
        await worker.drain()
        clock.advance(seconds=10)
    dead = await runtime.outbox.dead_letters("slack")
    assert [(d.message.id, d.attempts, d.error) for d in dead] == [("m1", 3, "500")]
    assert await runtime.outbox.pending("slack") == 0
    assert await runtime.outbox.replay("slack") == 1
    await worker.drain()
    assert [m.id for m in transport.delivered] == ["m1"]
    assert await runtime.outbox.dead_letters("slack") == []


async def test_a_message_waiting_past_the_wait_limit_counts_its_attempts_again(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = RecordingTransport(fail=[RetryLater("thread root not posted yet", waiting=True)] * 50)
    await enqueue(runtime, message(1))
    worker = runtime.worker(transport, max_attempts=2)
    for _ in range(60):
        await worker.drain()
        clock.advance(minutes=1)
    dead = await runtime.outbox.dead_letters("slack")
    assert [(d.message.id, d.attempts) for d in dead] == [("m1", 2)]


async def test_a_permanent_failure_is_dead_lettered_at_once(runtime: Runtime) -> None:
    transport = RecordingTransport(fail=[Undeliverable("channel_not_found")])
    await enqueue(runtime, message(1))
    await runtime.worker(transport).drain()
    dead = await runtime.outbox.dead_letters("slack")
    assert len(dead) == 1 and dead[0].error == "channel_not_found" and dead[0].attempts == 1


async def test_messages_of_a_killed_worker_are_claimed_by_another(runtime: Runtime) -> None:
    await enqueue(runtime, message(1), message(2))
    await runtime.outbox.ensure_group("slack")
    # A worker reads both messages and dies before delivering them (nothing acknowledged).
    stream = runtime.store.keys.outbox("slack", 1)
    read = await runtime.store.redis.xreadgroup("delivery", "dead-worker", {stream: ">"}, count=10)
    assert len(read[0][1]) == 2
    survivor = RecordingTransport()
    worker = DeliveryWorker(runtime.outbox, survivor, consumer="survivor", claim_idle_ms=0)
    await worker.drain()
    assert sorted(m.id for m in survivor.delivered) == ["m1", "m2"]
    pending = await runtime.store.redis.xpending(stream, "delivery")
    assert pending["pending"] == 0


async def test_a_burst_to_one_channel_is_paced_across_workers(runtime: Runtime, clock: FakeClock) -> None:
    sleeps = Sleeps(clock)
    await enqueue(runtime, *(message(i) for i in range(5)), message(9, channel="C0OTHER"))
    a = runtime.worker(RecordingTransport(gap=1.0), sleep=sleeps)
    await a.run_once(count=3)
    b = runtime.worker(RecordingTransport(gap=1.0), sleep=sleeps)
    await b.drain()
    # five messages to C0L1 took four one-second gaps in all; C0OTHER did not wait for C0L1
    assert sum(sleeps.waits) == 4.0


async def test_waiting_for_a_thread_root_uses_no_attempts_until_the_wait_limit(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = RecordingTransport(fail=[RetryLater("thread root not posted yet", waiting=True)] * 9, gap=1.0)
    await enqueue(runtime, message(1))
    worker = runtime.worker(transport, max_attempts=3, sleep=Sleeps(clock))
    for _ in range(40):
        await worker.drain()
        clock.advance(seconds=2)
    assert [m.id for m in transport.delivered] == ["m1"]  # 9 waits, no dead letter, no channel hold
    assert await runtime.outbox.dead_letters("slack") == []
