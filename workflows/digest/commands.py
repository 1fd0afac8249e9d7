"""Digest commands: `/digest` on demand, each configured digest on its schedule, and CSAT scores.

Scheduled digests run on the core's timers (one timer per digest name, `digest:<name>`), so the
scheduler's claim sends each once across processes; the commit that queues a digest also stores
its fire time as the digest's last run and schedules the next one, under an idempotency key per
(name, fire time). At start `PlanDigests` compares the stored last run with the cron: a run missed
while the bot was down is sent once, due now, with the period it would have had.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import structlog

from bot.bus import Context, Handler
from bot.clock import to_ms
from bot.commands import Command, PlanDigests, RecordCsat, SendDigest, ShowDigest
from bot.config import Config, Digest
from bot.errors import NotAllowed, UserError
from bot.messages import Audience, ChannelPost, FileRef, Notice, PersonDirect, Reply
from bot.model import Actor, TimelineEntry
from bot.store import Store
from bot.uow import Timer, UnitOfWork
from workflows import rollups
from workflows.cards import reply
from workflows.digest.articles import read_articles
from workflows.digest.chart import render_chart
from workflows.digest.report import Digest as Report
from workflows.digest.report import compose, gather, open_now
from workflows.digest.schedule import Period, missed_run, next_fire, parse_since, period_for, previous_period

log = structlog.get_logger("escalator.digest")

LAST_RUN = "digest-last"  # rollup hash: digest name -> fire time (ms) of the last one sent
DEFAULT_SPAN = timedelta(days=7)


def timer_id(name: str) -> str:
    return f"digest:{name}"


# ---- building one ---------------------------------------------------------------------------


async def build(store: Store, config: Config, name: str, period: Period, *, today: bool = False) -> Report:
    """The digest of `period`, compared with the period before: rollups (and the knowledge base's
    articles, for the recurring problems they cover), never every case.

    `today`: count the day the period ends on too (on demand, "so far today" matters).
    """
    current, before, open_cases, articles = await asyncio.gather(
        gather(store, config, period, through_end_day=today),
        gather(store, config, previous_period(period, config.tz), through_end_day=today),
        open_now(store, config), read_articles(store))
    return compose(name, period, config, current, before, open_cases, articles)


async def chart_png(report: Report) -> bytes | None:
    """The chart, drawn in a worker thread (matplotlib is CPU-bound); None if it cannot be drawn."""
    try:
        return await asyncio.to_thread(render_chart, report.chart)
    except Exception:  # the text digest stands on its own
        log.exception("digest chart failed", title=report.title)
        return None


def notices(report: Report, png: bytes | None, *, bulk: bool) -> list[Notice]:
    text = Notice(kind="direct", title=report.title, text=report.summary, fields=report.sections,
                  links=report.links, bulk=bulk)
    if png is None:
        return [text]
    slug = report.chart.title.split(":")[0].replace(" ", "-")
    upload = Notice(kind="upload", title=f"{report.chart.title}: tier mix and time to resolve", bulk=bulk,
                    file=FileRef(filename=f"digest-{slug}.png", mime_type="image/png",
                                 data_b64=base64.b64encode(png).decode()))
    return [text, upload]


# ---- on demand --------------------------------------------------------------------------------


def may_read(config: Config, actor: Actor, digest: Digest | None) -> bool:
    """Managers, and the recipients of the digest asked for."""
    person = config.people.get(actor.person or "")
    if person is None:
        return False
    return "manager" in person.roles or (digest is not None and actor.person in digest.to)


def _choose(config: Config, actor: Actor, name: str | None) -> Digest | None:
    if name:
        found = next((d for d in config.digests if d.name.lower() == name.lower()), None)
        if found is None:
            known = ", ".join(d.name for d in config.digests) or "none configured"
            raise UserError(f"There is no digest '{name}' (known: {known}).")
        return found
    mine = [d for d in config.digests if actor.person in d.to]
    candidates = mine or config.digests
    return candidates[0] if candidates else None


async def show_digest(cmd: ShowDigest, ctx: Context) -> Reply:
    config, now = ctx.config, ctx.clock.now()
    digest = _choose(config, cmd.actor, cmd.name)
    if not may_read(config, cmd.actor, digest):
        raise NotAllowed("Digests are for managers and the digest's recipients.")
    if cmd.since:
        try:
            period = parse_since(cmd.since, now, config.tz)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    elif digest is not None:
        period = period_for(digest.every, config.tz, now)
    else:
        period = Period(now - DEFAULT_SPAN, now)
    name = digest.name if digest else "on-demand"
    report = await build(ctx.store, config, name, period, today=True)
    png = await chart_png(report)
    person = cmd.actor.person or ""

    async def work(uow: UnitOfWork) -> Reply:
        for notice in notices(report, png, bulk=False):
            uow.say(notice, PersonDirect(person=person))
        return Reply(text=f"Your digest '{name}' is on its way as a direct message.\n{report.summary}")

    return await ctx.run(work, key=cmd.key)


# ---- on schedule ------------------------------------------------------------------------------


def _audiences(digest: Digest) -> list[Audience]:
    people: list[Audience] = [PersonDirect(person=p) for p in digest.to]
    return people + [ChannelPost(platform=p, channel=c) for p, c in digest.channels.items() if c]


async def _last_runs(store: Store) -> dict[str, datetime]:
    raw = await store.redis.hgetall(store.rollup_key(LAST_RUN))
    out = {}
    for k, v in raw.items():
        key = k.decode() if isinstance(k, bytes) else str(k)
        out[key] = datetime.fromtimestamp(int(v) / 1000, UTC)
    return out


def _schedule_next(uow: UnitOfWork, digest: Digest, after: datetime) -> None:
    fire = next_fire(digest.every, uow.config.tz, after)
    uow.schedule(Timer(timer_id(digest.name), fire, SendDigest(name=digest.name, fire_at=fire)))


async def plan_digests(cmd: PlanDigests, ctx: Context) -> Reply:
    """Schedule every digest; a run missed while down is due now, with its original period."""
    config, now = ctx.config, ctx.clock.now()
    last_runs = await _last_runs(ctx.store)

    async def work(uow: UnitOfWork) -> Reply:
        missed_names = []
        for digest in config.digests:
            last = last_runs.get(digest.name)
            if last is None:  # from now on a missed run can be told apart from a new digest
                uow.keep_max(LAST_RUN, digest.name, to_ms(now))
            missed = missed_run(digest.every, config.tz, last, now)
            if missed is not None:
                missed_names.append(digest.name)
                uow.schedule(Timer(timer_id(digest.name), now, SendDigest(name=digest.name, fire_at=missed.end)))
            else:
                _schedule_next(uow, digest, now)
        return Reply(text="Digests planned" + (f"; sending missed: {', '.join(missed_names)}" if missed_names
                                                else "."))

    return await ctx.run(work)


async def send_digest(cmd: SendDigest, ctx: Context) -> Reply:
    config = ctx.config
    digest = next((d for d in config.digests if d.name == cmd.name), None)
    if digest is None:
        return Reply(text=f"digest {cmd.name} is no longer configured")
    last = (await _last_runs(ctx.store)).get(digest.name)
    fire_ms = to_ms(cmd.fire_at)
    if last is not None and to_ms(last) >= fire_ms:  # sent already (a timer fired twice)
        async def keep_schedule(uow: UnitOfWork) -> Reply:
            _schedule_next(uow, digest, max(cmd.fire_at, uow.now))
            return Reply(text="already sent")
        return await ctx.run(keep_schedule)
    report = await build(ctx.store, config, digest.name, period_for(digest.every, config.tz, cmd.fire_at))
    png = await chart_png(report)

    async def work(uow: UnitOfWork) -> Reply:
        for notice in notices(report, png, bulk=True):
            uow.say(notice, *_audiences(digest))
        uow.keep_max(LAST_RUN, digest.name, fire_ms)
        _schedule_next(uow, digest, max(cmd.fire_at, uow.now))
        return Reply(text=f"digest {digest.name} sent")

    return await ctx.run(work, key=f"digest:{digest.name}:{fire_ms}")


# ---- CSAT -------------------------------------------------------------------------------------


async def record_csat(cmd: RecordCsat, ctx: Context) -> Reply:
    """A customer's score for a case; a second score replaces the first (in the rollups too)."""
    earlier = [e for e in await ctx.store.timeline(cmd.case_id.upper()) if e.action == "csat"]

    async def work(uow: UnitOfWork) -> Reply:
        case = await uow.case(cmd.case_id)
        if earlier:
            old = earlier[-1]
            score = int(old.detail.split("/", 1)[0])
            rollups.csat(uow, old.tier or case.tier, score, old.at, undo=True)
        tier = case.resolved_tier if not case.is_open and case.resolved_tier else case.tier
        rollups.csat(uow, tier, cmd.score, uow.now)
        detail = f"{cmd.score}/5" + (f": {cmd.comment}" if cmd.comment else "")
        uow.record(case, TimelineEntry(at=uow.now, actor=cmd.actor.name, action="csat", detail=detail, tier=tier))
        reply(case, uow, f"CSAT {cmd.score}/5 recorded by {cmd.actor.name}", cmd.comment)
        again = " (replacing the earlier score)" if earlier else ""
        return Reply(text=f"Recorded CSAT {cmd.score}/5 for {case.id}{again}.", case_id=case.id)

    return await ctx.run(work, key=cmd.key)


HANDLERS: dict[type[Command], Handler] = {
    ShowDigest: show_digest, PlanDigests: plan_digests, SendDigest: send_digest, RecordCsat: record_csat,
}
