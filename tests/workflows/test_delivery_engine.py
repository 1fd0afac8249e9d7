"""The delivery engine: lanes keep order, pages go first, a 429 holds only its channel, pages to one
person merge, a stopping worker hands back what it holds, a crash loses nothing.

Real Redis and the real commit; the transports are fakes that record what they were given (the
platform edge we don't own). Time is the FakeClock: the worker's sleep moves it.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock, FakeClock, SystemClock, from_ms
from bot.messages import Address, Notice, OutboxMessage
from bot.outbox import GROUP, DeliveryWorker, Outbox, RetryLater, Undeliverable
from bot.pacing import Pace
from bot.runtime import Runtime
from bot.store import Commit
from tests.workflows.helpers import Sleeps


@dataclass
class Recorder:
    """Records deliveries (with the fake time they happened at); optional per-channel 429 storms."""

    clock: Clock
    platform: str = "slack"
    delivered: list[OutboxMessage] = field(default_factory=list)
    at: list[float] = field(default_factory=list)
    storm_until: dict[str, float] = field(default_factory=dict)  # channel -> epoch s the 429s stop
    retry_after: float = 1.0
    latency: float = 0.0  # real seconds a delivery takes (to have many in flight)
    merges: list[list[str]] = field(default_factory=list)

    def pace(self, message: OutboxMessage) -> list[Pace]:
        address = message.address
        key = f"chat:{address.channel}" if address.channel else f"chat:dm:{address.user}"
        return [Pace(key, 1.0, 3)]

    async def deliver(self, message: OutboxMessage) -> str | None:
        channel = message.address.channel or ""
        if self.clock.now().timestamp() < self.storm_until.get(channel, 0):
            raise RetryLater("rate limited (429)", after=self.retry_after, rate_limited=True)
        self.delivered.append(message)  # the platform has it from here on
        self.at.append(self.clock.now().timestamp())
        if self.latency:
            await asyncio.sleep(random.uniform(0, self.latency))
        return f"ts-{len(self.delivered)}"

    def ids(self) -> list[str]:
        return [m.id for m in self.delivered]


@dataclass
class MergingRecorder(Recorder):
    def merge(self, messages: list[OutboxMessage]) -> OutboxMessage | None:
        self.merges.append([m.id for m in messages])
        ids = ", ".join(m.notice.case_id or "" for m in messages)
        return messages[0].model_copy(update={"id": "merged-" + messages[0].id,
                                              "notice": messages[0].notice.model_copy(
                                                  update={"title": f"Paged for {ids}"})})


def post(n: int, channel: str, clock: Clock, *, kind: str = "post", priority: int = -1) -> OutboxMessage:
    return OutboxMessage(id=f"{channel}-{n}", address=Address(platform="slack", channel=channel),
                         notice=Notice(kind=kind, title=f"{channel} {n}"),  # type: ignore[arg-type]
                         created_at=clock.now(), priority=priority)


def page(n: int, user: str, clock: FakeClock) -> OutboxMessage:
    return OutboxMessage(id=f"page-{user}-{n}", address=Address(platform="slack", user=user, private=True),
                         notice=Notice(kind="page", title=f"You are paged for ESC-{n}", case_id=f"ESC-{n}"),
                         created_at=clock.now())


async def commit(runtime: Runtime, *messages: OutboxMessage) -> None:
    await runtime.store.commit(Commit(messages=list(messages)))


async def settle(worker: DeliveryWorker, runtime: Runtime, clock: FakeClock, *, rounds: int = 500) -> None:
    """Deliver everything, jumping the clock to each delayed retry when nothing else is due."""
    delayed = runtime.store.keys.outbox_delayed("slack")
    for _ in range(rounds):
        await worker.drain()
        first = await runtime.store.redis.zrange(delayed, 0, 0, withscores=True)
        if not first:
            if await runtime.outbox.pending("slack") == 0:
                return
            continue
        due = from_ms(int(first[0][1]))
        if due > clock.now():
            clock.set(due)
    raise AssertionError("the outbox did not settle")


def by_lane(messages: list[OutboxMessage]) -> dict[str, list[str]]:
    lanes: dict[str, list[str]] = defaultdict(list)
    for message in messages:
        lanes[message.lane].append(message.id)
    return lanes


# ---- no head-of-line blocking, holds ------------------------------------------------------------


async def test_a_429_storm_on_one_channel_does_not_delay_a_direct_message(runtime: Runtime, clock: FakeClock) -> None:
    start = clock.now().timestamp()
    transport = Recorder(clock, storm_until={"C0L3": start + 60})
    await commit(runtime, *(post(i, "C0L3", clock) for i in range(10)))
    await commit(runtime, page(1, "U0BEN", clock))
    worker = runtime.worker(transport, sleep=Sleeps(clock))
    await worker.drain()
    assert transport.ids() == ["page-U0BEN-1"]
    assert transport.at == [start]  # at once: it waited neither for the channel's hold nor its pace
    assert await runtime.outbox.pending("slack") == 10


async def test_a_minute_of_429s_ends_with_every_message_delivered_once_and_no_dead_letters(
        runtime: Runtime, clock: FakeClock) -> None:
    start = clock.now().timestamp()
    transport = Recorder(clock, storm_until={"C0L3": start + 60})
    sent = [post(i, "C0L3", clock) for i in range(12)] + [post(i, "C0L2", clock) for i in range(5)]
    await commit(runtime, *sent)
    worker = runtime.worker(transport, sleep=Sleeps(clock), max_attempts=3)
    await settle(worker, runtime, clock)
    assert sorted(transport.ids()) == sorted(m.id for m in sent)  # each exactly once
    assert [m.id for m in transport.delivered if m.address.channel == "C0L3"] == [f"C0L3-{i}" for i in range(12)]
    assert await runtime.outbox.dead_letters("slack") == []
    assert clock.now().timestamp() >= start + 60


async def test_a_message_rate_limited_past_the_max_age_is_dead_lettered_with_the_reason(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = Recorder(clock, storm_until={"C0L3": clock.now().timestamp() + 7200}, retry_after=300)
    await commit(runtime, post(1, "C0L3", clock))
    await settle(runtime.worker(transport, sleep=Sleeps(clock), max_attempts=2), runtime, clock)
    [dead] = await runtime.outbox.dead_letters("slack")
    assert "still rate limited after 60 min" in dead.error and dead.attempts == 0
    assert transport.delivered == []


# ---- order -------------------------------------------------------------------------------------


async def test_thread_order_holds_with_sixteen_deliveries_in_flight(runtime: Runtime, clock: FakeClock) -> None:
    transport = Recorder(clock, latency=0.003)
    transport.pace = lambda message: []  # type: ignore[method-assign]
    sent = [post(n, f"C{lane:02d}", clock) for n in range(10) for lane in range(20)]
    random.shuffle(sent)
    for i in range(0, 200, 25):
        await commit(runtime, *sent[i:i + 25])
    worker = runtime.worker(transport, max_in_flight=16)
    await worker.drain()
    assert len(transport.delivered) == 200
    assert by_lane(transport.delivered) == by_lane(sent)
    assert 1 < worker.in_flight_peak <= 16


async def test_thread_order_holds_across_two_workers(runtime: Runtime) -> None:
    clock = SystemClock()  # two workers running on their own: real time, so their polls come round
    outbox = Outbox(runtime.store, clock)
    transport = Recorder(clock, latency=0.003)
    transport.pace = lambda message: []  # type: ignore[method-assign]
    sent = [post(n, f"C{lane:02d}", clock) for n in range(10) for lane in range(20)]
    random.shuffle(sent)
    await commit(runtime, *sent)
    one = DeliveryWorker(outbox, transport, consumer="one", read_count=10)
    two = DeliveryWorker(outbox, transport, consumer="two", read_count=10)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run_forever(stop)) for w in (one, two)]
    for _ in range(600):
        if len(transport.delivered) >= 200:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    assert len(transport.delivered) == 200
    assert by_lane(transport.delivered) == by_lane(sent)
    assert one.finished > 0 and two.finished > 0  # both took part


async def test_a_redelivered_entry_whose_seq_is_done_is_skipped(runtime: Runtime, clock: FakeClock) -> None:
    transport = Recorder(clock)
    await commit(runtime, post(1, "C0L2", clock))
    worker = runtime.worker(transport)
    await worker.drain()
    # The same lane slot again under another message id, as after a crash between send and ack.
    again = post(99, "C0L2", clock)
    await runtime.store.redis.xadd(runtime.store.keys.outbox("slack", 1),
                                   {"m": again.model_dump_json(), "a": "0", "l": again.lane, "s": "1"})
    assert await worker.drain() == 1
    assert transport.ids() == ["C0L2-1"]
    assert await runtime.outbox.pending("slack") == 0


async def test_a_replayed_dead_letter_is_delivered_although_its_lane_moved_on(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = Recorder(clock)
    await commit(runtime, post(1, "C0L2", clock))
    failing = runtime.worker(_Refusing(clock))
    await failing.drain()
    await commit(runtime, post(2, "C0L2", clock))
    worker = runtime.worker(transport)
    await worker.drain()
    assert transport.ids() == ["C0L2-2"]
    assert await runtime.outbox.replay("slack") == 1
    await worker.drain()
    assert transport.ids() == ["C0L2-2", "C0L2-1"]


@dataclass
class _Refusing(Recorder):
    async def deliver(self, message: OutboxMessage) -> str | None:
        raise Undeliverable("channel_not_found")


# ---- priority and merge --------------------------------------------------------------------------


async def test_a_page_committed_after_500_bulk_messages_is_delivered_among_the_first(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = Recorder(clock)
    transport.pace = lambda message: []  # type: ignore[method-assign]
    await commit(runtime, *(post(i, f"C{i % 50:02d}", clock, priority=2) for i in range(500)))
    await commit(runtime, page(1, "U0BEN", clock))
    await runtime.worker(transport).drain()
    assert len(transport.delivered) == 501
    assert transport.ids().index("page-U0BEN-1") < 16


async def test_pages_to_one_person_due_together_are_merged_into_one_message(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = MergingRecorder(clock)
    await commit(runtime, *(page(n, "U0BEN", clock) for n in range(1042, 1047)))
    worker = runtime.worker(transport)
    assert await worker.drain() == 5
    assert transport.ids() == ["merged-page-U0BEN-1042"]
    assert transport.delivered[0].notice.title == "Paged for ESC-1042, ESC-1043, ESC-1044, ESC-1045, ESC-1046"
    assert await runtime.outbox.pending("slack") == 0
    lane = await runtime.store.redis.hgetall(runtime.store.keys.lane("slack", "dm:U0BEN"))
    assert lane[b"done"] == lane[b"seq"] == b"5"
    for n in range(1042, 1047):  # each page counts as sent: a redelivery is skipped
        assert await runtime.outbox.was_sent("slack", f"page-U0BEN-{n}")


# ---- shutdown and crashes ------------------------------------------------------------------------


async def test_a_stopping_worker_hands_back_what_it_holds_so_another_takes_it_at_once(
        runtime: Runtime, clock: FakeClock) -> None:
    slow = Recorder(clock)
    slow.pace = lambda message: [Pace("chat:all", 0.001)]  # type: ignore[method-assign]
    await commit(runtime, *(post(i, f"C{i:02d}", clock) for i in range(20)))
    first = runtime.worker(slow)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run_forever(stop))
    for _ in range(200):
        if slow.delivered and len(first._held) == 19:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 15)
    assert len(slow.delivered) == 1  # one went; the bucket holds the rest back for 1000 s
    other = Recorder(clock)
    other.pace = lambda message: []  # type: ignore[method-assign]
    # Another process, with the default 60 s claim idle time: only handed-back entries qualify.
    second = DeliveryWorker(runtime.outbox, other, consumer="another-process")
    await second.drain()
    assert len(other.delivered) == 19


async def test_a_worker_killed_mid_burst_loses_nothing_and_repeats_at_most_its_in_flight_deliveries(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = Recorder(clock, latency=0.01)
    transport.pace = lambda message: []  # type: ignore[method-assign]
    sent = [post(n, f"C{lane:02d}", clock) for n in range(10) for lane in range(10)]
    await commit(runtime, *sent)
    killed = DeliveryWorker(runtime.outbox, transport, consumer="killed", max_in_flight=4)
    task = asyncio.create_task(killed.run_forever(asyncio.Event()))
    for _ in range(30_000):
        if len(transport.delivered) >= 30:
            break
        await asyncio.sleep(0.001)
    task.cancel()  # like kill -9: no hand-back, no acknowledgements for what was in flight
    await asyncio.gather(task, return_exceptions=True)
    survivor = DeliveryWorker(runtime.outbox, transport, consumer="survivor", claim_idle_ms=0)
    await asyncio.wait_for(survivor.drain(), 60)
    ids = transport.ids()
    assert set(ids) == {m.id for m in sent}  # 0 lost
    duplicates = len(ids) - len(set(ids))
    assert duplicates <= 4  # at most what was in flight when it died
    for lane, order in by_lane(transport.delivered).items():
        assert list(dict.fromkeys(order)) == by_lane(sent)[lane]  # still in order
    pending = await runtime.store.redis.xpending(runtime.store.keys.outbox("slack", 1), GROUP)
    assert pending["pending"] == 0


async def test_a_killed_worker_is_taken_over_once_its_word_lapses_not_after_the_idle_claim(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = Recorder(clock, latency=0.01)
    transport.pace = lambda message: []  # type: ignore[method-assign]
    sent = [post(n, f"C{lane:02d}", clock) for n in range(6) for lane in range(10)]
    await commit(runtime, *sent)
    killed = DeliveryWorker(runtime.outbox, transport, consumer="killed", max_in_flight=4, alive_ttl_ms=600)
    task = asyncio.create_task(killed.run_forever(asyncio.Event()))
    await until(lambda: len(transport.delivered) >= 10, "the first deliveries")
    task.cancel()  # like kill -9: no hand-back, no acknowledgements for what was in flight
    await asyncio.gather(task, return_exceptions=True)
    # A running survivor with the default 60 s idle claim: only the lapsed liveness lets it take over.
    survivor = DeliveryWorker(runtime.outbox, transport, consumer="survivor", alive_ttl_ms=600)
    stop = asyncio.Event()
    running = asyncio.create_task(survivor.run_forever(stop))
    await until(lambda: set(transport.ids()) == {m.id for m in sent}, "every message delivered", limit_s=10)
    await until(forgotten(runtime, "killed"), "the dead worker forgotten", poll=True)
    stop.set()
    await asyncio.wait_for(running, 15)
    assert len(transport.ids()) - len(set(transport.ids())) <= 4  # at most what was in flight when it died
    for lane, order in by_lane(transport.delivered).items():
        assert list(dict.fromkeys(order)) == by_lane(sent)[lane]


def forgotten(runtime: Runtime, consumer: str) -> Any:
    """A check: `consumer` is gone from the delivery group and from the register of workers."""
    async def check() -> bool:
        redis, keys = runtime.store.redis, runtime.store.keys
        consumers = await redis.xinfo_consumers(keys.outbox("slack", 1), GROUP)
        workers = await redis.smembers(f"{keys.base}:workers:slack")
        return all(c["name"] not in (consumer, consumer.encode()) for c in consumers) \
            and consumer.encode() not in workers
    return check


async def test_a_worker_presumed_dead_while_stalled_delivers_nothing_its_successor_holds(
        runtime: Runtime, clock: FakeClock) -> None:
    stalled_transport = Recorder(clock)
    stalled_transport.pace = lambda message: []  # type: ignore[method-assign]
    stalled = DeliveryWorker(Outbox(runtime.store, clock), stalled_transport, consumer="stalled", alive_ttl_ms=600)
    stop = asyncio.Event()
    first = asyncio.create_task(stalled.run_forever(stop))
    await until(lambda: stalled._alive, "the first worker says it lives")
    # Its delivery loop and its heartbeat freeze (a stalled process, Redis out of its reach) ...
    thaw, frozen = asyncio.Event(), asyncio.Event()
    beat, housekeeping = stalled.outbox.beat, stalled._housekeeping

    async def frozen_beat(*args: Any) -> bool:
        await thaw.wait()
        return await beat(*args)

    async def frozen_housekeeping() -> None:
        frozen.set()
        await thaw.wait()
        await housekeeping()

    stalled.outbox.beat = frozen_beat  # type: ignore[method-assign]
    stalled._housekeeping = frozen_housekeeping  # type: ignore[method-assign]
    await asyncio.wait_for(frozen.wait(), 5)
    # ... while its reader takes in 20 messages, which a second worker then takes over.
    sent = [post(1, f"C{lane:02d}", clock) for lane in range(20)]
    await commit(runtime, *sent)
    await until(lambda: len(stalled._held) == 20, "the stalled worker holds the messages")
    gate = Recorder(clock)
    gate.pace = lambda message: []  # type: ignore[method-assign]
    release = asyncio.Event()
    deliver = gate.deliver

    async def held_deliver(message: OutboxMessage) -> str | None:
        await release.wait()
        return await deliver(message)

    gate.deliver = held_deliver  # type: ignore[method-assign]
    successor = DeliveryWorker(runtime.outbox, gate, consumer="successor", alive_ttl_ms=600)
    second = asyncio.create_task(successor.run_forever(stop))
    await until(lambda: len(successor._held) == 20, "the successor took over", limit_s=10)
    thaw.set()  # the first worker thaws, learns it was presumed dead, and lets go
    await until(lambda: not stalled._held, "the first worker let go")
    await asyncio.sleep(0.3)
    release.set()
    await until(lambda: len(gate.delivered) == 20, "the successor delivered")
    stop.set()
    await asyncio.wait_for(asyncio.gather(first, second), 15)
    assert stalled_transport.delivered == []
    assert sorted(gate.ids()) == sorted(m.id for m in sent)


async def until(check: Any, what: str, limit_s: float = 5, *, poll: bool = False) -> None:
    """Wait (bounded, real time) until `check()` (an async check with `poll`)."""
    for _ in range(int(limit_s / 0.02)):
        if (await check()) if poll else check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


# ---- backlog figures and retries -------------------------------------------------------------------


async def test_pending_and_the_oldest_pending_age_count_every_priority_stream_and_the_retries(
        runtime: Runtime, clock: FakeClock) -> None:
    await commit(runtime, post(1, "C0L2", clock), page(1, "U0BEN", clock), post(2, "C0L2", clock, priority=2))
    clock.advance(seconds=90)
    assert await runtime.outbox.pending("slack") == 3
    assert await runtime.outbox.oldest_pending_age_s("slack") == 90
    transport = Recorder(clock, storm_until={"C0L2": clock.now().timestamp() + 60})
    # One pass (a drain would retry the 429 every real second of its 50 rounds: the clock is fake).
    await runtime.worker(transport).run_once()
    assert await runtime.outbox.pending("slack") == 2  # the page went; C0L2's first post waits for a retry
    assert await runtime.outbox.oldest_pending_age_s("slack") == 90
    clock.advance(seconds=60)
    await settle(runtime.worker(transport), runtime, clock)
    assert await runtime.outbox.oldest_pending_age_s("slack") == 0


async def test_a_retried_message_comes_back_in_its_lane_order_not_as_a_replay(
        runtime: Runtime, clock: FakeClock) -> None:
    transport = Recorder(clock, storm_until={"C0L2": clock.now().timestamp() + 1})
    await commit(runtime, post(1, "C0L2", clock))
    worker = runtime.worker(transport)
    await worker.drain()
    clock.advance(seconds=1)
    await runtime.outbox.move_due("slack", int(clock.now().timestamp() * 1000))
    [(_, data)] = await runtime.store.redis.xrange(runtime.store.keys.outbox("slack", 1))
    assert data[b"l"] == b"channel:C0L2" and data[b"s"] == b"1" and b"x" not in data
