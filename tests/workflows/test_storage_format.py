"""Data written before the compact stored form (bot.codec) keeps working: a case and its timeline as the
previous release left them in Redis are read, changed by the real workflows (version checks and all),
and shown, with old and new timeline entries side by side."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.clock import FakeClock
from bot.codec import SEP
from bot.commands import AcknowledgeCase, ShowCase
from bot.model import CaseStatus
from bot.runtime import Runtime
from bot.store import Commit, ConflictError, Write
from tests.workflows.helpers import person, run
from workflows.crisis import read_cases

# Exactly what the previous release stored for a case escalated to L2 (long keys, every field, ISO times).
OLD_CASE = (
    '{"id":"ESC-1001","version":3,"created_at":"2026-11-23T09:00:00Z","title":"Card declined at checkout for '
    'merchant","customer":"globex","category":"payments","severity":"sev3","tier":"L2","status":"open",'
    '"owner":null,"watchers":["hana"],"informed":["hana","cleo"],"private":true,"swarm":false,"notify_csm":false,'
    '"rule":4,"origin":null,"opened_by":{"person":"alice","platform":"slack","user_id":"U0ALICE","name":"Alice '
    'Adams","system":false},"updated_at":"2026-11-23T09:33:00Z","acknowledged_at":null,"acknowledged_by":null,'
    '"resolved_at":null,"resolved_tier":null,"resolution":null,"reopened":0,"tiers":[{"tier":"L1","at":'
    '"2026-11-23T09:00:00Z","reason":"tier chosen by Alice Adams; private because category payments is '
    'sensitive","private":true},{"tier":"L2","at":"2026-11-23T09:33:00Z","reason":"processor returns 500",'
    '"private":true}],"sla":[{"kind":"acknowledge","tier":"L1","started_at":"2026-11-23T09:00:00Z","target":'
    '"PT15M","warn_at":0.8,"paused_since":null,"paused_total":"PT0S","warned":false,"breached":false,"met_at":'
    '"2026-11-23T09:03:00Z"},{"kind":"resolve","tier":"L1","started_at":"2026-11-23T09:00:00Z","target":"PT8H",'
    '"warn_at":0.8,"paused_since":null,"paused_total":"PT0S","warned":false,"breached":false,"met_at":'
    '"2026-11-23T09:33:00Z"},{"kind":"acknowledge","tier":"L2","started_at":"2026-11-23T09:33:00Z","target":'
    '"PT10M","warn_at":0.8,"paused_since":null,"paused_total":"PT0S","warned":false,"breached":false,"met_at":'
    'null},{"kind":"resolve","tier":"L2","started_at":"2026-11-23T09:33:00Z","target":"P1D","warn_at":0.8,'
    '"paused_since":null,"paused_total":"PT0S","warned":false,"breached":false,"met_at":null}],"paging":{"policy":'
    '"l2-default","tier":"L2","steps":[{"targets":[{"kind":"schedule","name":"l2-primary"}],"wait":"PT10M",'
    '"skip_off_hours":true},{"targets":[{"kind":"schedule","name":"l2-primary"},{"kind":"person","name":"gus"}],'
    '"wait":"PT15M","skip_off_hours":true},{"targets":[{"kind":"channel","name":""}],"wait":null,'
    '"skip_off_hours":true}],"repeat":1,"step":1,"round":0,"started_at":"2026-11-23T09:33:00Z","next_at":'
    '"2026-11-23T09:43:00Z","stopped_at":null,"stopped_by":null,"paged":["cleo"]},"vendor":null,"incident":null}'
)
OLD_TIMELINE = [
    '{"at":"2026-11-23T09:00:00Z","actor":"Alice Adams","action":"opened","detail":"sev3 in L1 (tier chosen by '
    'Alice Adams; private because category payments is sensitive), private: Card declined at checkout for '
    'merchant","tier":"L1"}',
    '{"at":"2026-11-23T09:00:00Z","actor":"Escalator","action":"notified","detail":"Hana Ito: the customer '
    'success manager of Globex Corp","tier":"L1"}',
    '{"at":"2026-11-23T09:03:00Z","actor":"Alice Adams","action":"acknowledged","detail":"","tier":"L1"}',
    '{"at":"2026-11-23T09:33:00Z","actor":"Alice Adams","action":"escalated","detail":"L1 → L2: processor '
    'returns 500","tier":"L1"}',
    '{"at":"2026-11-23T09:33:00Z","actor":"Escalator","action":"paged","detail":"Cleo Chen (step 1 of 3)",'
    '"tier":"L2"}',
]


async def write_old_case(rt: Runtime) -> None:
    """The case, its indexes and its timeline, with raw Redis commands as the previous release wrote them."""
    k, redis = rt.store.keys, rt.store.redis
    await redis.hset(k.record("case", "ESC-1001"), mapping={"v": "3", "d": OLD_CASE})
    await redis.zadd(k.created("case"), {"ESC-1001": 1795424400000})
    for index in (k.open_all, k.open_by("tier", "L2"), k.open_by("customer", "globex")):
        await redis.sadd(index, "ESC-1001")
    await redis.rpush(k.timeline("ESC-1001"), *OLD_TIMELINE)
    await redis.set(k.case_seq, 1)


async def test_a_case_stored_by_the_previous_release_is_read_changed_and_shown(
        runtime: Runtime, clock: FakeClock) -> None:
    rt = runtime
    await write_old_case(rt)
    case = await rt.store.get_case("ESC-1001")
    assert case is not None and case.version == 3 and case.tier == "L2" and case.private
    assert case.paging is not None and case.paging.paged == ["cleo"] and case.paging.steps[2].wait is None
    assert [(c.kind, c.tier, c.target.total_seconds(), c.met_at) for c in case.sla] == [
        ("acknowledge", "L1", 900, datetime(2026, 11, 23, 9, 3, tzinfo=UTC)),
        ("resolve", "L1", 8 * 3600, datetime(2026, 11, 23, 9, 33, tzinfo=UTC)),
        ("acknowledge", "L2", 600, None), ("resolve", "L2", 86400, None)]
    old = await rt.store.timeline("ESC-1001")
    assert [(e.action, e.detail, e.tier) for e in old][2:4] == [
        ("acknowledged", "", "L1"), ("escalated", "L1 → L2: processor returns 500", "L1")]
    assert old[4].at == datetime(2026, 11, 23, 9, 33, tzinfo=UTC)

    clock.set(datetime(2026, 11, 23, 9, 36, tzinfo=UTC))
    reply = await run(rt, AcknowledgeCase(actor=person(rt, "cleo"), case_id="ESC-1001"))
    assert reply.ok, reply.text
    after = await rt.store.get_case("ESC-1001")
    assert after is not None and after.version == 4 and after.status == CaseStatus.ACKNOWLEDGED
    assert after.acknowledged_by == "cleo" and after.paging is not None and not after.paging.active
    acknowledge = after.clock("acknowledge")
    assert acknowledge is not None and acknowledge.met_at == clock.now()
    assert after.model_copy(update={"version": 3, "status": case.status, "acknowledged_at": None,
                                    "acknowledged_by": None, "owner": None, "paging": case.paging,
                                    "sla": case.sla, "updated_at": case.updated_at}) == case

    # Stored compactly from now on; the old timeline entries are left as they were, the new ones appended.
    raw = await rt.store.redis.hget(rt.store.keys.record("case", "ESC-1001"), "d")
    assert raw.startswith(b'{"id":"ESC-1001","v":4,') and len(raw) < len(OLD_CASE) / 2
    stored = await rt.store.redis.lrange(rt.store.keys.timeline("ESC-1001"), 0, -1)
    assert [s.decode() for s in stored[:5]] == OLD_TIMELINE
    assert all(SEP.encode() in s for s in stored[5:]) and len(stored) > 5
    entries = await rt.store.timeline("ESC-1001")
    assert entries[:5] == old
    assert (entries[5].actor, entries[5].action, entries[5].at) == ("Cleo Chen", "acknowledged", clock.now())

    # The same record through a raw reader (crisis matching reads records in one pipeline, not via the store).
    assert await read_cases(rt.store, ["ESC-1001"]) == [after]

    shown = await run(rt, ShowCase(actor=person(rt, "cleo"), case_id="ESC-1001"))
    assert shown.ok
    lines = shown.text.splitlines()
    assert lines[1].endswith("Alice Adams: opened (sev3 in L1 (tier chosen by Alice Adams; private because category "
                             "payments is sensitive), private: Card declined at checkout for merchant)")
    assert any(line.endswith("Cleo Chen: acknowledged (paging stopped)") for line in lines[6:])


async def test_version_checks_hold_across_the_formats(runtime: Runtime, clock: FakeClock) -> None:
    """A writer that read the old record at version 3 loses to the workflow that committed version 4."""
    rt = runtime
    await write_old_case(rt)
    stale = await rt.store.get_case("ESC-1001")
    assert stale is not None
    clock.set(datetime(2026, 11, 23, 9, 36, tzinfo=UTC))
    assert (await run(rt, AcknowledgeCase(actor=person(rt, "cleo"), case_id="ESC-1001"))).ok
    late = stale.model_copy(update={"title": "changed", "version": 4})
    with pytest.raises(ConflictError, match="at version 4"):
        await rt.store.commit(Commit(writes=[Write(record=late, expected=3, previous=stale)]))
    now = await rt.store.get_case("ESC-1001")
    assert now is not None and now.title == "Card declined at checkout for merchant" and now.version == 4
