"""SLA clocks: a warning at 80% and a breach at 100%, each exactly once; pauses move the due time."""

from __future__ import annotations

from bot.clock import FakeClock
from bot.commands import AcknowledgeCase, OpenCase, SetWaiting
from bot.config import Config
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from tests.workflows.helpers import person, posted, run


async def sla_notices(runtime: Runtime, case_id: str) -> list[str]:
    return [m.notice.title for m in await posted(runtime)
            if str(m.address.thread).startswith(f"case:{case_id}:") and m.notice.title.startswith("SLA")]


async def test_the_acknowledge_clock_warns_at_80_percent_and_breaches_at_100_once(
        runtime: Runtime, clock: FakeClock) -> None:
    reply = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Slow reports", tier="L2"))
    case_id = reply.case_id or ""
    clock.advance(minutes=7, seconds=59)
    await runtime.scheduler.run_due()
    assert await sla_notices(runtime, case_id) == []
    clock.advance(seconds=1)
    await runtime.scheduler.run_due()
    assert await sla_notices(runtime, case_id) == ["SLA warning: acknowledge due in 2m"]
    clock.advance(minutes=2)
    await runtime.scheduler.run_due()
    clock.advance(minutes=30)
    await runtime.scheduler.run_due()
    assert await sla_notices(runtime, case_id) == ["SLA warning: acknowledge due in 2m",
                                                   "SLA breached: acknowledge target of 10m missed"]
    breach_dms = [m for m in await posted(runtime) if m.address.user == "U0GUS" and "SLA breach" in m.notice.title]
    assert len(breach_dms) == 1  # no tier lead: the manager hears of it
    case = await runtime.store.get_case(case_id)
    assert case and (clock_ := case.clock("acknowledge")) and clock_.breached and clock_.warned


async def test_acknowledging_in_time_stops_the_acknowledge_clock(runtime: Runtime, clock: FakeClock) -> None:
    reply = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Slow reports", tier="L2"))
    clock.advance(minutes=3)
    await run(runtime, AcknowledgeCase(actor=person(runtime, "cleo"), case_id=reply.case_id or ""))
    clock.advance(hours=1)
    await runtime.scheduler.run_due()
    assert await sla_notices(runtime, reply.case_id or "") == []


async def test_waiting_on_the_customer_pauses_clocks_when_the_tier_says_so(
        runtime: Runtime, example_config: Config, clock: FakeClock) -> None:
    tiers = [t.model_copy(update={"sla": t.sla.model_copy(update={"pause_when": ["customer"]})})
             if t.id == "L2" and t.sla else t for t in example_config.tiers]
    config = example_config.model_copy(update={"tiers": tiers})
    rt = build_runtime(config=config, settings=Settings(), handlers=runtime.bus.handlers, clock=clock,
                       redis=runtime.redis, prefix=runtime.store.keys.prefix)
    reply = await run(rt, OpenCase(actor=person(rt, "alice"), title="Needs logs", tier="L2"))
    case_id = reply.case_id or ""
    clock.advance(minutes=5)
    await run(rt, SetWaiting(actor=person(rt, "ben"), case_id=case_id, on="customer"))
    clock.advance(hours=2)  # waiting: no warning, no breach
    await rt.scheduler.run_due()
    assert await sla_notices(rt, case_id) == []
    await run(rt, SetWaiting(actor=person(rt, "ben"), case_id=case_id, on="none"))
    clock.advance(minutes=2, seconds=59)  # 5m + 2m59s of the 8m warning point used
    await rt.scheduler.run_due()
    assert await sla_notices(rt, case_id) == []
    clock.advance(seconds=1)
    await rt.scheduler.run_due()
    assert await sla_notices(rt, case_id) == ["SLA warning: acknowledge due in 2m"]
    case = await rt.store.get_case(case_id)
    assert case and (c := case.clock("acknowledge")) and c.paused_total.total_seconds() == 7200
