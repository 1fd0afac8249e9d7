"""Durable timers: due timers fire exactly once, even with two schedulers racing or one dying."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.clock import FakeClock
from bot.commands import Command, NudgeVendor
from bot.runtime import Runtime
from bot.scheduler import Scheduler
from bot.store import Commit
from bot.uow import Timer


async def add_timers(runtime: Runtime, clock: FakeClock, n: int) -> None:
    timers = [Timer(f"t{i}", clock.now() + timedelta(minutes=1), NudgeVendor(case_id=f"ESC-{i}")) for i in range(n)]
    await runtime.store.commit(Commit(timers=timers))


async def test_two_schedulers_racing_fire_each_timer_exactly_once(runtime: Runtime, clock: FakeClock) -> None:
    await add_timers(runtime, clock, 200)
    fired: list[str] = []

    async def record(cmd: Command) -> None:
        assert isinstance(cmd, NudgeVendor)
        fired.append(cmd.case_id)
        await asyncio.sleep(0)

    one = Scheduler(runtime.store, clock, record, batch=7)
    two = Scheduler(runtime.store, clock, record, batch=5)
    assert await one.run_due() + await two.run_due() == 0  # nothing is due yet
    clock.advance(minutes=1)
    await asyncio.gather(one.run_due(), two.run_due(), one.run_due(), two.run_due())
    assert sorted(fired) == sorted(f"ESC-{i}" for i in range(200))
    assert await one.pending() == []


async def test_a_timer_whose_process_died_fires_again_after_its_lease(runtime: Runtime, clock: FakeClock) -> None:
    await add_timers(runtime, clock, 1)
    clock.advance(minutes=1)
    dying = Scheduler(runtime.store, clock, lambda cmd: asyncio.sleep(0), lease=timedelta(minutes=2))
    assert len(await dying.claim_due()) == 1  # claimed, then the process "dies" before finishing
    fired: list[Command] = []

    async def record(cmd: Command) -> None:
        fired.append(cmd)

    other = Scheduler(runtime.store, clock, record)
    assert await other.run_due() == 0
    clock.advance(minutes=2)
    assert await other.run_due() == 1 and len(fired) == 1
    assert await other.run_due() == 0


async def test_a_cancelled_timer_never_fires(runtime: Runtime, clock: FakeClock) -> None:
    await add_timers(runtime, clock, 2)
    await runtime.store.commit(Commit(cancel_timers=["t0"]))
    clock.advance(minutes=5)
    fired: list[Command] = []

    async def record(cmd: Command) -> None:
        fired.append(cmd)

    await Scheduler(runtime.store, clock, record).run_due()
    assert [c.case_id for c in fired if isinstance(c, NudgeVendor)] == ["ESC-1"]
