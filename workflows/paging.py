"""Paging: the tier's policy steps, run in order until someone acknowledges.

The policy is frozen onto the case when paging starts, so config edits don't change a running
page. Each step pages its targets (who is on call now, named people, the channel), skipping
people outside working hours where the step allows it, and schedules the next step.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.bus import Context
from bot.commands import RunPageStep, ShowOnCall
from bot.config import Config
from bot.durations import format_duration
from bot.errors import NotFound
from bot.messages import Reply
from bot.model import SYSTEM, Case, FrozenStep, PageTarget, Paging
from bot.uow import Timer, UnitOfWork
from workflows.cards import local_time, mention, person_name, record, reply, tell, tier_label
from workflows.policy import available, hours_label, who_is_on_call

REPEAT_WAIT = timedelta(minutes=10)  # a last step without `wait` repeats after this long


def timer_id(case: Case) -> str:
    return f"{case.id}:page"


def freeze(policy_name: str, tier: str, config: Config, now: datetime) -> Paging:
    policy = config.policies[policy_name]
    steps = []
    for step in policy.steps:
        targets = []
        for target in step.notify:
            kind, _, name = target.partition(":")
            targets.append(PageTarget(kind=kind, name=name))
        steps.append(FrozenStep(targets=targets, wait=step.wait, skip_off_hours=step.skip_off_hours))
    return Paging(policy=policy_name, tier=tier, steps=steps, repeat=policy.repeat, started_at=now)


def start(case: Case, config: Config, now: datetime, uow: UnitOfWork) -> list[str]:
    """Start the tier's policy on the case; return who was paged at the first step."""
    stop(case, "escalation", now, uow, quiet=True)
    tier = config.tier(case.tier)
    if not tier.policy:
        case.paging = None
        return []
    case.paging = freeze(tier.policy, tier.id, config, now)
    return run_step(case, config, now, uow)


def stop(case: Case, by: str, now: datetime, uow: UnitOfWork, *, quiet: bool = False) -> bool:
    """Stop paging at once, including the step timer already scheduled."""
    paging = case.paging
    if paging is None or not paging.active:
        return False
    paging.stopped_at = now
    paging.stopped_by = by
    paging.next_at = None
    uow.cancel(timer_id(case))
    if not quiet:
        record(uow, case, SYSTEM, "paging stopped", f"by {by}")
    return True


def resolve_targets(step: FrozenStep, config: Config, now: datetime) -> tuple[list[tuple[str, str]], list[str], bool]:
    """(person, why) pairs to page, problems to report, and whether the whole channel is alerted."""
    people: list[tuple[str, str]] = []
    problems: list[str] = []
    channel = False
    for target in step.targets:
        if target.kind == "channel":
            channel = True
            continue
        if target.kind == "schedule":
            schedule = config.schedules.get(target.name)
            if schedule is None:
                problems.append(f"schedule {target.name} no longer exists")
                continue
            person_key = who_is_on_call(schedule, now, config.tz).now
            why = f"on call for {target.name}"
        else:
            person_key, why = target.name, "named in the paging policy"
        person = config.people.get(person_key)
        if person is None:
            problems.append(f"{person_key} is not a configured person")
            continue
        if step.skip_off_hours and not available(person, now, config.tz):
            problems.append(f"skipped {person.name}: outside working hours ({hours_label(person, config.tz)})")
            continue
        if person_key not in [p for p, _ in people]:
            people.append((person_key, why))
    return people, problems, channel


def run_step(case: Case, config: Config, now: datetime, uow: UnitOfWork) -> list[str]:
    """Page the current step's targets and schedule the next step (or the repeat, or the end)."""
    paging = case.paging
    assert paging is not None and paging.active
    step = paging.steps[paging.step]
    people, problems, channel = resolve_targets(step, config, now)
    tier = config.tier(paging.tier)
    if channel:
        people += [(m, "member of the tier") for m in tier.members if m not in [p for p, _ in people]]
    label = f"step {paging.step + 1} of {len(paging.steps)}" + (f", round {paging.round + 1}" if paging.round else "")

    nxt = _next(paging)
    wait = step.wait or (REPEAT_WAIT if nxt else None)
    if nxt and wait:
        paging.next_at = now + wait
        uow.schedule(Timer(timer_id(case), now + wait,
                               RunPageStep(case_id=case.id, step=nxt[0], round=nxt[1])))
        then = f"Next step in {format_duration(wait)} ({local_time(config, now + wait)}) unless someone acknowledges."
    else:
        paging.next_at = None
        then = "This is the last step of the paging policy."

    names = ", ".join(person_name(config, p) for p, _ in people)
    if people or channel:
        who = names + (" and the whole channel" if channel else "") if people else "the whole channel"
        reasons = "; ".join(f"{person_name(config, p)}: {why}" for p, why in people)
        if channel:
            reasons = (reasons + "; " if reasons else "") + f"the {tier.id} channel: policy step alerts everyone"
        reply(case, uow, f"Paging {who} ({label})", f"Why: {reasons}. {then}",
              mentions=[mention(config, p) for p, _ in people], kind="page", tier=paging.tier)
        for person_key, why in people:
            tell(case, uow, person_key, f"You are paged for {case.id} ({case.severity.value})",
                 f"{case.title}\nWhy you: {why} ({tier_label(config, paging.tier)}, {label}). {then}", kind="page")
            if person_key not in paging.paged:
                paging.paged.append(person_key)
        record(uow, case, SYSTEM, "paged", f"{who} ({label})")
    for problem in problems:
        record(uow, case, SYSTEM, "paging problem", problem)
    if not people and not channel:
        detail = "; ".join(problems) or "the step has no one to page"
        reply(case, uow, f"Nobody could be paged ({label})", f"{detail}. {then}", tier=paging.tier)
        record(uow, case, SYSTEM, "nobody paged", f"{label}: {detail}")
    if nxt:
        paging.step, paging.round = nxt
    else:  # exhausted: paging stays active until acknowledged, but nothing more is scheduled
        paging.step = len(paging.steps)
        record(uow, case, SYSTEM, "paging policy exhausted", f"{paging.policy}: no acknowledgement yet")
    return [p for p, _ in people]


def _next(paging: Paging) -> tuple[int, int] | None:
    if paging.step + 1 < len(paging.steps):
        return paging.step + 1, paging.round
    if paging.round < paging.repeat:
        return 0, paging.round + 1
    return None


async def run_page_step(cmd: RunPageStep, ctx: Context) -> Reply:
    """A step timer fired: page, unless someone acknowledged or the timer is stale."""
    config, now = ctx.config, ctx.clock.now()

    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        paging = case.paging
        if paging is None or not paging.active or not case.is_open:
            return Reply(text="paging already stopped")
        if (paging.step, paging.round) != (cmd.step, cmd.round):
            return Reply(text="stale paging timer")
        run_step(case, config, now, uow)
        return Reply(text="paged")

    return await ctx.update(cmd.case_id, mutate)


async def show_on_call(cmd: ShowOnCall, ctx: Context) -> Reply:
    """Who is on call now and next, per tier (from the schedules its policy pages)."""
    config, now = ctx.config, ctx.clock.now()
    tiers = [config.tier(cmd.tier)] if cmd.tier else [t for t in config.tiers if t.policy]
    if cmd.tier and not tiers[0].policy:
        raise NotFound(f"{tiers[0].id} has no paging policy; its channel sees every new case.")
    lines = []
    for tier in tiers:
        policy = config.policies[tier.policy or ""]
        schedules = []
        for step in policy.steps:
            for target in step.notify:
                kind, _, name = target.partition(":")
                if kind == "schedule" and name not in schedules:
                    schedules.append(name)
        for name in schedules:
            oc = who_is_on_call(config.schedules[name], now, config.tz)
            person = config.people[oc.now]
            off = "" if available(person, now, config.tz) else " (outside working hours now)"
            lines.append(f"{tier.id} ({name}): {person.name}{off} until {local_time(config, oc.until)}; "
                         f"next {person_name(config, oc.next)}")
        if not schedules:
            named = [t.partition(":")[2] for s in policy.steps for t in s.notify if t.startswith("person:")]
            lines.append(f"{tier.id}: no rotation; pages {', '.join(person_name(config, p) for p in named)}")
    return Reply(text="\n".join(lines) or "No tier has a paging policy.", title="On call now")
