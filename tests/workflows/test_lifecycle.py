"""The lifecycle under concurrent actions: acknowledge, claim, hand off, watch, resolve, reopen."""

from __future__ import annotations

import asyncio

from bot.commands import (
    AcknowledgeCase,
    AddWatcher,
    ClaimCase,
    HandOffCase,
    OpenCase,
    ReopenCase,
    ResolveCase,
    SetWaiting,
)
from bot.messages import case_thread_of
from bot.model import CaseStatus
from bot.runtime import Runtime
from tests.workflows.helpers import person, posted, run


async def open_case(runtime: Runtime, **kw: object) -> str:
    reply = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Export fails", **kw))  # type: ignore[arg-type]
    assert reply.case_id
    return reply.case_id


async def test_two_simultaneous_acknowledgements_record_one(runtime: Runtime) -> None:
    case_id = await open_case(runtime, tier="L2")
    a, b = await asyncio.gather(run(runtime, AcknowledgeCase(actor=person(runtime, "ben"), case_id=case_id)),
                                run(runtime, AcknowledgeCase(actor=person(runtime, "cleo"), case_id=case_id)))
    texts = sorted([a.text, b.text])
    assert texts[0].startswith("ESC-1001 was already acknowledged by") and texts[1].startswith("You acknowledged")
    acks = [e for e in await runtime.store.timeline(case_id) if e.action == "acknowledged"]
    assert len(acks) == 1


async def test_claiming_acknowledges_and_a_second_claim_is_refused(runtime: Runtime) -> None:
    case_id = await open_case(runtime, tier="L2")
    assert (await run(runtime, ClaimCase(actor=person(runtime, "ben"), case_id=case_id))).ok
    refused = await run(runtime, ClaimCase(actor=person(runtime, "cleo"), case_id=case_id))
    assert not refused.ok and "already owned by Ben Brooks" in refused.text
    case = await runtime.store.get_case(case_id)
    assert case and case.owner == "ben" and case.acknowledged_by == "ben" and case.paging
    assert case.paging.stopped_at is not None


async def test_the_card_is_updated_in_place_on_every_change(runtime: Runtime) -> None:
    case_id = await open_case(runtime, tier="L2")
    await run(runtime, ClaimCase(actor=person(runtime, "ben"), case_id=case_id))
    await run(runtime, ResolveCase(actor=person(runtime, "ben"), case_id=case_id, resolution="fixed export"))
    cards = [m for m in await posted(runtime) if m.notice.kind == "card" and m.address.channel == "C0L2"]
    assert [c.notice.status for c in cards] == ["open", "acknowledged", "resolved"]
    assert [c.notice.case_version for c in cards] == sorted(c.notice.case_version or 0 for c in cards)
    assert [a.action for a in cards[-1].notice.actions] == ["reopen"]
    assert {case_thread_of(c.address.thread) for c in cards} == {(case_id, "L2")}


async def test_hand_off_and_watchers_tell_the_people_concerned(runtime: Runtime) -> None:
    case_id = await open_case(runtime, tier="L2")
    await run(runtime, ClaimCase(actor=person(runtime, "ben"), case_id=case_id))
    reply = await run(runtime, HandOffCase(actor=person(runtime, "ben"), case_id=case_id, to_person="cleo",
                                           note="logs attached"))
    assert reply.ok
    await run(runtime, AddWatcher(actor=person(runtime, "ben"), case_id=case_id, person="gus"))
    unknown = await run(runtime, AddWatcher(actor=person(runtime, "ben"), case_id=case_id, person="zed"))
    assert not unknown.ok and "Unknown person 'zed'" in unknown.text
    case = await runtime.store.get_case(case_id)
    assert case and case.owner == "cleo" and {"ben", "gus"} <= set(case.watchers)
    dms = {m.address.user: m.notice.title for m in await posted(runtime) if m.notice.kind == "direct"}
    assert dms["U0CLEO"] == f"{case_id} is yours now" and dms["U0GUS"].startswith("Ben Brooks added you")


async def test_resolve_records_the_tier_and_reopen_restarts_the_resolve_clock(runtime: Runtime, clock: object) -> None:
    case_id = await open_case(runtime, tier="L2")
    await run(runtime, ResolveCase(actor=person(runtime, "cleo"), case_id=case_id, resolution="cleared cache"))
    again = await run(runtime, ResolveCase(actor=person(runtime, "ben"), case_id=case_id, resolution="x"))
    assert "already resolved" in again.text
    case = await runtime.store.get_case(case_id)
    assert case and case.status == CaseStatus.RESOLVED and case.resolved_tier == "L2"
    assert case_id not in await runtime.store.open_case_ids()
    clock.advance(hours=1)  # type: ignore[attr-defined]
    await run(runtime, ReopenCase(actor=person(runtime, "alice"), case_id=case_id, reason="came back"))
    case = await runtime.store.get_case(case_id)
    assert case and case.is_open and case.reopened == 1 and case_id in await runtime.store.open_case_ids()
    resolve_clock = case.clock("resolve")
    assert resolve_clock and resolve_clock.started_at == clock.now()  # type: ignore[attr-defined]


async def test_waiting_on_the_customer_keeps_clocks_running_unless_the_tier_pauses_them(runtime: Runtime) -> None:
    case_id = await open_case(runtime, tier="L2")
    reply = await run(runtime, SetWaiting(actor=person(runtime, "ben"), case_id=case_id, on="customer"))
    assert reply.ok
    case = await runtime.store.get_case(case_id)
    assert case and case.status == CaseStatus.WAITING_CUSTOMER
    assert all(c.paused_since is None for c in case.sla)
    await run(runtime, SetWaiting(actor=person(runtime, "ben"), case_id=case_id, on="none"))
    case = await runtime.store.get_case(case_id)
    assert case and case.status == CaseStatus.OPEN
