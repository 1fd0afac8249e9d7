"""Rollups against a brute force: random case histories through the real workflows, then the
digest's numbers (from counters and histograms) equal what loading every case and timeline says."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FakeClock
from bot.commands import (
    AcknowledgeCase,
    Command,
    EscalateCase,
    OpenCase,
    RecordCsat,
    ReopenCase,
    ResolveCase,
)
from bot.config import Config
from bot.model import Case
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from tests.conftest import make_client
from tests.workflows.helpers import person, run
from workflows.digest.report import gather, numbers, period_days
from workflows.digest.schedule import Period
from workflows.digest.stats import Histogram

START = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # a Monday, 08:00 in Berlin

STEP = st.tuples(
    st.sampled_from(["open", "open", "ack", "escalate", "resolve", "resolve", "reopen", "csat", "wait"]),
    st.integers(0, 30),  # which case (modulo the cases open so far)
    st.integers(1, 600),  # minutes to move the clock first
    st.integers(1, 5),  # a CSAT score, a severity
)


async def _history(rt: Runtime, clock: FakeClock, steps: list[tuple[str, int, int, int]]) -> None:
    alice = person(rt, "alice")
    ids: list[str] = []
    for kind, pick, minutes, n in steps:
        clock.advance(minutes=minutes)
        await rt.scheduler.run_due()  # SLA warnings and breaches fire as time passes
        command: Command | None = None
        target = ids[pick % len(ids)] if ids else None
        if kind == "open" or target is None:
            reply = await run(rt, OpenCase(actor=alice, title=f"Login timeout on checkout page {n}",
                                           severity=f"sev{min(n, 4)}", tier="L1",
                                           customer=["globex", "smallco", None][n % 3],
                                           category=["payments", "network", None][n % 3]))
            if reply.case_id:
                ids.append(reply.case_id)
            continue
        if kind == "ack":
            command = AcknowledgeCase(actor=alice, case_id=target)
        elif kind == "escalate":
            command = EscalateCase(actor=alice, case_id=target, reason="needs a specialist")
        elif kind == "resolve":
            command = ResolveCase(actor=alice, case_id=target, resolution="fixed")
        elif kind == "reopen":
            command = ReopenCase(actor=alice, case_id=target, reason="came back")
        elif kind == "csat":
            command = RecordCsat(actor=alice, case_id=target, score=n)
        if command is not None:
            await run(rt, command)


async def _brute_force(rt: Runtime, period: Period) -> dict[str, object]:
    """Load every case and its timeline; count what happened in the period."""
    tz = rt.config.tz
    ids = [m.decode() for m in await rt.store.redis.zrange(rt.store.keys.created("case"), 0, -1)]
    opened: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    escalated: Counter[str] = Counter()
    fcr = 0
    csat: dict[str, list[int]] = {}
    tta: dict[str, Histogram] = {}
    ttr: dict[str, Histogram] = {}
    breaches: Counter[str] = Counter()
    warnings: Counter[str] = Counter()

    days = set(period_days(period, rt.config))

    def inside(at: datetime) -> bool:
        return at.astimezone(tz).date() in days

    for case_id in ids:
        case = await rt.store.get_case(case_id)
        assert isinstance(case, Case)
        timeline = await rt.store.timeline(case_id)
        entered_at = case.created_at
        moved = False
        scores: dict[str, tuple[str, int, datetime]] = {}
        for e in timeline:
            if e.action == "opened" and inside(e.at):
                opened[e.tier or ""] += 1
            if e.action == "escalated":
                if inside(e.at):
                    escalated[e.tier or ""] += 1
                moved = True
            if e.action in ("escalated", "opened"):
                entered_at = e.at
            if e.action == "acknowledged" and inside(e.at):
                tta.setdefault(e.tier or "", Histogram()).add((e.at - entered_at).total_seconds())
            if e.action == "resolved" and inside(e.at):
                resolved[e.tier or ""] += 1
                ttr.setdefault(e.tier or "", Histogram()).add((e.at - case.created_at).total_seconds())
                if not moved and e.tier == "L1":
                    fcr += 1
            if e.action == "csat":
                scores["last"] = (e.tier or "", int(e.detail.split("/")[0]), e.at)
            if e.action == "sla breach" and inside(e.at):
                breaches[e.tier or ""] += 1
            if e.action == "sla warning" and inside(e.at):
                warnings[e.tier or ""] += 1
        if "last" in scores and inside(scores["last"][2]):
            tier, score, _ = scores["last"]
            csat.setdefault(tier, []).append(score)
    return {"opened": opened, "resolved": resolved, "escalated": escalated, "fcr": fcr,
            "csat": {t: (sum(v), len(v)) for t, v in csat.items()},
            "tta": {t: h for t, h in tta.items() if h.count}, "ttr": {t: h for t, h in ttr.items() if h.count},
            "breaches": breaches, "warnings": warnings}


def _nonzero(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=25))
async def test_digest_numbers_equal_a_brute_force_over_every_case(
        example_config: Config, redis_location: dict[str, object], steps: list[tuple[str, int, int, int]]) -> None:
    client: aioredis.Redis = make_client(redis_location)  # type: ignore[arg-type]
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    clock = FakeClock(START)
    from workflows import HANDLERS

    rt = build_runtime(config=example_config, settings=Settings(), handlers=HANDLERS, clock=clock,
                       redis=RedisHandle(client, where="test"), prefix=prefix)
    try:
        await _history(rt, clock, steps)
        period = Period(START - timedelta(days=1), clock.now() + timedelta(days=2))
        totals = await gather(rt.store, rt.config, period)
        got = numbers(totals, rt.config)
        want = await _brute_force(rt, period)
        assert _nonzero(got.opened) == dict(want["opened"])  # type: ignore[call-overload]
        assert _nonzero(got.resolved) == dict(want["resolved"])  # type: ignore[call-overload]
        assert _nonzero(got.escalated) == dict(want["escalated"])  # type: ignore[call-overload]
        assert got.fcr == want["fcr"]
        assert {t: v for t, v in got.csat.items() if v[1]} == want["csat"]
        assert {t: h for t, h in totals.tta.items() if h.count} == want["tta"]
        assert {t: h for t, h in totals.ttr.items() if h.count} == want["ttr"]
        assert _nonzero(got.sla_breaches) == dict(want["breaches"])  # type: ignore[call-overload]
        assert _nonzero(got.sla_warnings) == dict(want["warnings"])  # type: ignore[call-overload]
    finally:
        keys = [k async for k in client.scan_iter(match="{" + prefix + "}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_counters_commit_with_the_change_and_top_lists_keep_only_the_worst(runtime: Runtime) -> None:
    from bot.store import Commit
    from bot.store import Counter as Change

    store = runtime.store
    changes = [Change("incr", "d:x", "open:L1", 2), Change("incr", "d:x", "open:L1", -1),
               Change("max", "last", "daily", 5), Change("max", "last", "daily", 3)]
    changes += [Change("top", "worst", f"ESC-{i}", i * 10, 3) for i in range(1, 6)]
    changes.append(Change("top", "worst", "ESC-3", 5, 3))  # a lower score never lowers a member
    await store.commit(Commit(counters=changes))
    assert await store.redis.hget(store.rollup_key("d:x"), "open:L1") == b"1"
    assert await store.redis.hget(store.rollup_key("last"), "daily") == b"5"
    worst = await store.redis.zrange(store.rollup_key("worst"), 0, -1, withscores=True)
    assert worst == [(b"ESC-3", 30.0), (b"ESC-4", 40.0), (b"ESC-5", 50.0)]


async def test_a_second_csat_score_replaces_the_first_in_the_rollups(runtime: Runtime) -> None:
    alice = person(runtime, "alice")
    opened = await run(runtime, OpenCase(actor=alice, title="Slow dashboard", tier="L1"))
    assert opened.case_id
    await run(runtime, ResolveCase(actor=alice, case_id=opened.case_id, resolution="cache cleared"))
    first = await run(runtime, RecordCsat(actor=alice, case_id=opened.case_id, score=2))
    second = await run(runtime, RecordCsat(actor=alice, case_id=opened.case_id, score=5, comment="great"))
    assert first.ok and "replacing" in second.text
    now = runtime.clock.now()
    totals = await gather(runtime.store, runtime.config, Period(now - timedelta(days=1), now + timedelta(days=1)))
    assert numbers(totals, runtime.config).csat == {"L1": (5, 1)}
    timeline = await runtime.store.timeline(opened.case_id)
    assert [e.detail for e in timeline if e.action == "csat"] == ["2/5", "5/5: great"]


async def test_an_sla_breach_counts_once_and_lists_the_case_among_the_worst(runtime: Runtime) -> None:
    alice = person(runtime, "alice")
    opened = await run(runtime, OpenCase(actor=alice, title="Checkout down", tier="L1", severity="sev2"))
    assert opened.case_id
    clock = runtime.clock
    assert isinstance(clock, FakeClock)
    for _ in range(3):
        clock.advance(hours=3)
        await runtime.scheduler.run_due()
    await run(runtime, ResolveCase(actor=alice, case_id=opened.case_id, resolution="restarted"))
    now = clock.now()
    totals = await gather(runtime.store, runtime.config, Period(now - timedelta(days=1), now + timedelta(days=1)))
    got = numbers(totals, runtime.config)
    assert sum(got.sla_breaches.values()) >= 1
    assert any(member.startswith(f"{opened.case_id}|L1|") and minutes > 0
               for member, minutes in totals.breaches.items())
