"""The store under concurrency: versioned transitions, one winner, nothing done twice."""

from __future__ import annotations

import asyncio

import pytest

from bot.commands import ClaimCase, OpenCase
from bot.model import Actor, Case
from bot.runtime import Runtime
from bot.store import Commit, ConflictError, Write

ALICE = Actor(person="alice", platform="slack", user_id="U0ALICE", name="Alice Adams")


def actor(person: str) -> Actor:
    return Actor(person=person, platform="slack", user_id=f"U0{person.upper()}", name=person.title())


async def open_case(runtime: Runtime, title: str = "Cannot log in", **kw: object) -> str:
    reply = await runtime.bus.handle(OpenCase(actor=ALICE, title=title, **kw))  # type: ignore[arg-type]
    assert reply.ok and reply.case_id, reply.text
    return reply.case_id


async def test_fifty_concurrent_claims_of_one_case_have_exactly_one_winner(runtime: Runtime) -> None:
    case_id = await open_case(runtime)
    people = [f"p{i}" for i in range(50)]
    replies = await asyncio.gather(*(runtime.bus.handle(ClaimCase(actor=actor(p), case_id=case_id))
                                     for p in people))
    winners = [r for r in replies if r.ok and r.text.startswith("You own")]
    assert len(winners) == 1
    losers = [r for r in replies if not r.ok]
    assert len(losers) == 49 and all("already owned by" in r.text for r in losers)
    case = await runtime.store.get_case(case_id)
    assert case is not None and case.owner in people
    claims = [e for e in await runtime.store.timeline(case_id) if e.action == "claimed"]
    assert len(claims) == 1


async def test_a_stale_version_is_refused_and_leaves_no_partial_write(runtime: Runtime) -> None:
    case_id = await open_case(runtime)
    case = await runtime.store.get_case(case_id)
    assert case is not None
    before = await runtime.store.timeline(case_id)
    stale = case.model_copy(update={"title": "changed", "version": case.version + 1})
    commit = Commit(writes=[Write(record=stale, expected=case.version - 1, previous=case)],
                    timeline=[(stale, before[0])])
    with pytest.raises(ConflictError):
        await runtime.store.commit(commit)
    again = await runtime.store.get_case(case_id)
    assert again is not None and again.title == "Cannot log in"
    assert len(await runtime.store.timeline(case_id)) == len(before)


async def test_the_same_idempotency_key_opens_one_case(runtime: Runtime) -> None:
    cmd = OpenCase(actor=ALICE, title="Charged twice", key="slack:trigger:123")
    first, second = await asyncio.gather(runtime.bus.handle(cmd), runtime.bus.handle(cmd))
    third = await runtime.bus.handle(cmd)
    assert first.text == second.text == third.text
    assert len(await runtime.store.open_case_ids()) == 1


async def test_indexes_follow_the_case_without_scanning(runtime: Runtime) -> None:
    a = await open_case(runtime, customer="globex", severity="sev3")
    b = await open_case(runtime, "The API is down", customer="initech")
    assert await runtime.store.open_case_ids(tier="L1", customer="globex") == [a]
    assert b in await runtime.store.open_case_ids(tier="L3")
    await runtime.bus.handle(ClaimCase(actor=actor("ben"), case_id=a))
    assert await runtime.store.open_case_ids(owner="ben") == [a]
    from bot.commands import ResolveCase
    await runtime.bus.handle(ResolveCase(actor=actor("ben"), case_id=a, resolution="reset the password"))
    assert await runtime.store.open_case_ids(owner="ben") == []
    assert a not in await runtime.store.open_case_ids()


async def test_every_key_carries_the_prefix_hash_tag(runtime: Runtime, prefix: str) -> None:
    await open_case(runtime)
    keys = [k.decode() async for k in runtime.store.redis.scan_iter(match=f"*{prefix}*")]
    assert keys and all(k.startswith("{" + prefix + "}:") for k in keys)


def test_case_model_round_trips_through_json(example_config: object) -> None:
    from datetime import UTC, datetime
    now = datetime(2026, 11, 23, tzinfo=UTC)
    case = Case(id="ESC-1", title="x", tier="L1", opened_by=ALICE, created_at=now, updated_at=now)
    assert Case.model_validate_json(case.model_dump_json()) == case
