"""Digests: who may ask, what they say, and when they are sent (cron in local time, exactly once)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.clock import FakeClock
from bot.commands import AcknowledgeCase, EscalateCase, OpenCase, PlanDigests, ResolveCase, ShowDigest
from bot.config import Config, Digest
from bot.messages import OutboxMessage
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.scheduler import Scheduler
from bot.settings import Settings
from tests.workflows.helpers import person, posted, run
from workflows.grammar import parse

PNG = b"\x89PNG\r\n\x1a\n"


def with_digests(config: Config, *digests: Digest) -> Config:
    return config.model_copy(update={"digests": list(digests)})


@pytest.fixture
async def digest_runtime(example_config: Config, redis_client: aioredis.Redis, clock: FakeClock,
                         prefix: str) -> AsyncIterator[Runtime]:
    from workflows import HANDLERS

    config = with_digests(example_config, Digest(name="daily", to=["gus", "hana"], every="0 8 * * *"),
                          Digest(name="weekly", to=["gus"], every="0 8 * * 1"))
    yield build_runtime(config=config, settings=Settings(), handlers=HANDLERS, clock=clock,
                        redis=RedisHandle(redis_client, where="test"), prefix=prefix)


def digests_to(messages: list[OutboxMessage], user: str) -> list[OutboxMessage]:
    return [m for m in messages if m.address.user == user and m.notice.kind == "direct"
            and m.notice.title.startswith("Digest")]


async def test_a_manager_gets_the_digest_as_text_and_a_png_chart_on_every_platform(
        digest_runtime: Runtime) -> None:
    rt = digest_runtime
    alice = person(rt, "alice")
    for title in ("Card declined at checkout", "Card declined again", "Password reset loop"):
        opened = await run(rt, OpenCase(actor=alice, title=title, tier="L1", category="payments"))
        assert opened.case_id
    await run(rt, AcknowledgeCase(actor=alice, case_id="ESC-1001"))
    await run(rt, ResolveCase(actor=alice, case_id="ESC-1001", resolution="card re-enabled"))
    await run(rt, EscalateCase(actor=alice, case_id="ESC-1002", reason="processor bug"))
    reply = await run(rt, ShowDigest(actor=person(rt, "gus"), name="weekly", since="7d"))
    assert reply.ok and "3 opened" in reply.text
    for platform, user in (("slack", "U0GUS"), ("teams", "29:gus")):
        messages = [m for m in await posted(rt, platform) if m.address.user == user]
        text = next(m.notice for m in messages if m.notice.kind == "direct" and m.notice.title.startswith("Digest"))
        upload = next(m.notice for m in messages if m.notice.kind == "upload")
        fields = {f.label: f.value for f in text.fields}
        assert "L1: opened 3 (sev3 3), resolved 1, open now 1" in fields["Volume"]
        assert "First-contact resolution at L1: 1 of 1 resolved (100%)" in fields["Tier mix"]
        assert "L1: 1 of 3 escalated (33%)" in fields["Escalations"]
        assert "categories: payments 3" in fields["Recurring problems"]
        assert fields["Swarms"] == "no swarms in this period"
        assert upload.file is not None and base64.b64decode(upload.file.data_b64).startswith(PNG)


@pytest.mark.parametrize(("who", "text", "answer"), [
    ("alice", "", "Digests are for managers"),
    ("gus", "monthly", "There is no digest 'monthly' (known: daily, weekly)"),
    ("gus", "since:2099-01-01", "is in the future"),
    ("gus", "since:lately", "'lately' is not a period"),
    ("gus", "since:0d", "covers no time"),
])
async def test_bad_digest_requests_get_a_short_answer_only_the_caller_sees(
        digest_runtime: Runtime, who: str, text: str, answer: str) -> None:
    rt = digest_runtime
    command = parse(text, verb="digest", actor=person(rt, who), config=rt.config)
    assert isinstance(command, ShowDigest)
    reply = await run(rt, command)
    assert not reply.ok and answer in reply.text
    assert await posted(rt, "slack") == [] and await posted(rt, "teams") == []


async def test_a_recipient_who_is_not_a_manager_may_ask_for_their_digest(digest_runtime: Runtime) -> None:
    rt = digest_runtime
    reply = await run(rt, ShowDigest(actor=person(rt, "hana"), name="daily"))
    assert reply.ok
    assert digests_to(await posted(rt, "slack"), "U0HANA")
    refused = await run(rt, ShowDigest(actor=person(rt, "hana"), name="weekly"))
    assert not refused.ok


async def test_a_daily_digest_fires_at_eight_local_time_across_the_dst_change(
        digest_runtime: Runtime, clock: FakeClock) -> None:
    rt = digest_runtime
    clock.set(datetime(2026, 10, 23, 12, 0, tzinfo=UTC))  # Berlin leaves summer time on Sunday 25 October
    await run(rt, PlanDigests())
    for _ in range(4 * 24):
        clock.advance(hours=1)
        await rt.scheduler.run_due()
    sent = sorted(m.created_at for m in digests_to(await posted(rt, "slack"), "U0GUS")
                  if "daily" in m.notice.title)
    assert sent == [datetime(2026, 10, 24, 6, tzinfo=UTC), datetime(2026, 10, 25, 7, tzinfo=UTC),
                    datetime(2026, 10, 26, 7, tzinfo=UTC), datetime(2026, 10, 27, 7, tzinfo=UTC)]


async def test_two_schedulers_send_each_digest_exactly_once(digest_runtime: Runtime, clock: FakeClock) -> None:
    rt = digest_runtime
    clock.set(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
    await run(rt, PlanDigests())
    await run(rt, PlanDigests())  # a second process starting does not add a second timer
    other = Scheduler(rt.store, clock, rt.bus.handle)
    clock.advance(hours=1, minutes=1)
    await asyncio.gather(rt.scheduler.run_due(), other.run_due())
    titles = [m.notice.title for m in digests_to(await posted(rt, "slack"), "U0GUS")]
    assert sum("daily" in t for t in titles) == 1 and sum("weekly" in t for t in titles) == 1


async def test_a_digest_missed_while_down_is_sent_once_at_start_with_its_own_period(
        digest_runtime: Runtime, clock: FakeClock) -> None:
    rt = digest_runtime
    clock.set(datetime(2026, 11, 16, 12, 0, tzinfo=UTC))  # Monday
    await run(rt, PlanDigests())
    clock.set(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))  # down since; Monday 23rd's weekly was missed
    await run(rt, PlanDigests())
    await rt.scheduler.run_due()
    await run(rt, PlanDigests())  # another process starts: nothing more to catch up
    await rt.scheduler.run_due()
    weekly = [m for m in digests_to(await posted(rt, "slack"), "U0GUS") if "weekly" in m.notice.title]
    assert [m.notice.title for m in weekly] == [
        "Digest weekly: Mon 16 Nov 08:00 → Mon 23 Nov 08:00 (Europe/Berlin)"]
    daily = [m for m in digests_to(await posted(rt, "slack"), "U0GUS") if "daily" in m.notice.title]
    assert [m.notice.title for m in daily] == ["Digest daily: Tue 24 Nov 08:00 → Wed 25 Nov 08:00 (Europe/Berlin)"]
    due = dict(await rt.scheduler.pending())
    assert due["digest:weekly"] == datetime(2026, 11, 30, 7, tzinfo=UTC).timestamp() * 1000
    assert due["digest:daily"] == datetime(2026, 11, 26, 7, tzinfo=UTC).timestamp() * 1000


def test_the_digest_and_csat_words_parse_into_commands(example_config: Config) -> None:
    from bot.commands import RecordCsat
    from bot.model import Actor

    actor = Actor(person="gus", name="Gus")
    assert parse("weekly since:7d", verb="digest", actor=actor, config=example_config) == ShowDigest(
        actor=actor, name="weekly", since="since:7d")
    assert parse("ESC-1042 csat 4 quick fix", verb="case", actor=actor, config=example_config) == RecordCsat(
        actor=actor, case_id="ESC-1042", score=4, comment="quick fix")
    bad = parse("ESC-1042 csat 9", verb="case", actor=actor, config=example_config)
    assert not isinstance(bad, RecordCsat) and "from 1 to 5" in bad.text



async def test_swarm_crisis_and_knowledge_base_rollups_appear_once_their_keys_exist(
        digest_runtime: Runtime) -> None:
    from bot.store import Commit
    from bot.store import Counter as Change
    from workflows.rollups import day

    rt = digest_runtime
    today = day(rt.config, rt.clock.now())
    await rt.store.commit(Commit(counters=[Change("incr", f"swarm:{today}", "swarms", 2),
                                           Change("incr", f"swarm:{today}", "helpers", 5)]))
    await rt.store.redis.set(rt.store.rollup_key(f"kb-suggested:{today}"), 3)
    await run(rt, OpenCase(actor=person(rt, "alice"), title="Export times out", tier="L1"))
    await run(rt, ShowDigest(actor=person(rt, "gus"), name="weekly", since="1d"))
    (text,) = [m.notice for m in digests_to(await posted(rt, "slack"), "U0GUS")]
    fields = {f.label: f.value for f in text.fields}
    assert fields["Swarms"] == "helpers 5, swarms 2"
    assert fields["Incidents"] == "no incidents in this period"
    assert "L0 deflection: 3 solved by a knowledge-base suggestion (75% of requests)" in fields["Tier mix"]
