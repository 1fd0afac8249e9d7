"""Paging with a fake clock: steps, waits, repeat, acknowledgement stops everything, nobody on call."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import FakeClock
from bot.commands import AcknowledgeCase, OpenCase, ShowOnCall
from bot.messages import case_thread_of
from bot.runtime import Runtime
from tests.workflows.helpers import pages_to, person, posted, run


async def open_l2(runtime: Runtime) -> str:
    reply = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Charged twice", severity="sev2",
                                        customer="globex", category="billing"))
    assert reply.case_id
    return reply.case_id


async def test_policy_steps_page_in_order_with_their_waits_and_repeat(runtime: Runtime, clock: FakeClock) -> None:
    case_id = await open_l2(runtime)  # 09:00 UTC Monday = 10:00 CET: cleo is on call for l2-primary
    assert len(await pages_to(runtime, "U0CLEO")) == 1 and await pages_to(runtime, "U0GUS") == []
    clock.advance(minutes=9, seconds=59)
    await runtime.scheduler.run_due()
    assert await pages_to(runtime, "U0GUS") == []
    clock.advance(seconds=1)
    await runtime.scheduler.run_due()  # step 2: on call again plus the manager
    assert len(await pages_to(runtime, "U0CLEO")) == 2 and len(await pages_to(runtime, "U0GUS")) == 1
    clock.advance(minutes=15)
    await runtime.scheduler.run_due()  # step 3: the whole channel
    thread_pages = [m for m in await posted(runtime) if m.notice.kind == "page" and case_thread_of(m.address.thread)]
    assert "whole channel" in thread_pages[-1].notice.title
    clock.advance(minutes=10)
    await runtime.scheduler.run_due()  # repeat: 1 -> round 2 starts at step 1
    assert len(await pages_to(runtime, "U0CLEO")) == 3
    for _ in range(4):
        clock.advance(minutes=30)
        await runtime.scheduler.run_due()
    # round 2 ran its three steps and paging ends: 3 + 1 (step 2 of round 2) pages for cleo in all
    assert len(await pages_to(runtime, "U0CLEO")) == 4
    case = await runtime.store.get_case(case_id)
    assert case and case.paging and case.paging.next_at is None
    assert any(e.action == "paging policy exhausted" for e in await runtime.store.timeline(case_id))


async def test_acknowledging_stops_the_next_page_step_already_scheduled(runtime: Runtime, clock: FakeClock) -> None:
    case_id = await open_l2(runtime)
    reply = await run(runtime, AcknowledgeCase(actor=person(runtime, "cleo"), case_id=case_id))
    assert reply.ok and "paging stopped" in reply.text
    assert not [t for t, _ in await runtime.scheduler.pending() if t.endswith(":page")]
    clock.advance(hours=2)
    await runtime.scheduler.run_due()
    assert len(await pages_to(runtime, "U0CLEO")) == 1 and await pages_to(runtime, "U0GUS") == []


async def test_a_page_says_why_and_when_the_next_step_comes(runtime: Runtime) -> None:
    await open_l2(runtime)
    page = (await pages_to(runtime, "U0CLEO"))[0]
    assert "on call for l2-primary" in page.notice.text and "Next step in 10m" in page.notice.text
    in_thread = next(m for m in await posted(runtime) if m.notice.kind == "page" and case_thread_of(m.address.thread))
    assert [m.user_id for m in in_thread.notice.mentions] == ["U0CLEO"]


async def test_a_config_edit_does_not_change_a_running_page(runtime: Runtime, clock: FakeClock) -> None:
    case_id = await open_l2(runtime)
    policies = dict(runtime.config.policies)
    edited = policies["l2-default"].model_copy(update={"steps": policies["l2-default"].steps[:1], "repeat": 0})
    runtime.bus.context.config = runtime.config.model_copy(update={"policies": {**policies, "l2-default": edited}})
    clock.advance(minutes=10)
    await runtime.scheduler.run_due()
    assert len(await pages_to(runtime, "U0GUS")) == 1  # the frozen step 2 still ran
    case = await runtime.store.get_case(case_id)
    assert case and case.paging and len(case.paging.steps) == 3


async def test_people_outside_working_hours_are_skipped_and_nobody_on_call_is_reported(
        runtime: Runtime, clock: FakeClock) -> None:
    # Monday 03:00 UTC = Sunday night in New York; l3-primary this week is erin, so pick the week of dev.
    clock.set(datetime(2026, 11, 30, 8, 30, tzinfo=UTC))
    reply = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="DB is slow", tier="L3"))
    case_id = reply.case_id or ""
    timeline = await runtime.store.timeline(case_id)
    assert any("skipped Dev Patel: outside working hours (09:00-17:00 America/New_York)" in e.detail
               for e in timeline)
    nobody = [m for m in await posted(runtime) if m.notice.title.startswith("Nobody could be paged")]
    assert nobody and "Next step in 5m" in nobody[0].notice.text
    clock.advance(minutes=5)
    await runtime.scheduler.run_due()  # step 2 names erin and gus: both reachable
    assert len(await pages_to(runtime, "U0ERIN")) == 1


async def test_oncall_shows_who_is_on_call_now_and_next(runtime: Runtime) -> None:
    reply = await run(runtime, ShowOnCall(actor=person(runtime, "alice")))
    assert "L2 (l2-primary): Cleo Chen until Mon 30 Nov 09:00 CET; next Ben Brooks" in reply.text
    only = await run(runtime, ShowOnCall(actor=person(runtime, "alice"), tier="L1"))
    assert not only.ok and "no paging policy" in only.text
