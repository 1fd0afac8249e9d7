"""SLA clocks per tier: acknowledge and resolve targets, warned at 80% and breached at 100%, once each.

Clocks pause while the case waits on the customer or a vendor when the tier's SLA says so.
"""

from __future__ import annotations

from datetime import datetime

from bot.bus import Context
from bot.commands import CheckSla
from bot.config import Config
from bot.durations import format_duration
from bot.messages import Reply
from bot.model import SYSTEM, Case, CaseStatus, SlaClock
from bot.uow import Timer, UnitOfWork
from workflows import rollups
from workflows.cards import local_time, record, reply, tell


def timer_id(case: Case, clock: SlaClock, level: str) -> str:
    return f"{case.id}:sla:{clock.kind}:{clock.tier}:{level}"


def start_clocks(case: Case, config: Config, now: datetime, uow: UnitOfWork) -> None:
    tier = config.tier(case.tier)
    if tier.sla is None:
        return
    case.sla = [c for c in case.sla if c.tier != tier.id]
    for kind, target in (("acknowledge", tier.sla.acknowledge), ("resolve", tier.sla.resolve)):
        if target is None:
            continue
        clock = SlaClock(kind=kind, tier=tier.id, started_at=now, target=target,
                         warn_at=tier.sla.warn_at)
        case.sla.append(clock)
        schedule(case, clock, uow)


def schedule(case: Case, clock: SlaClock, uow: UnitOfWork) -> None:
    if not clock.warned:
        uow.schedule(Timer(timer_id(case, clock, "warn"), clock.warn_due_at,
                               CheckSla(case_id=case.id, kind=clock.kind, tier=clock.tier, level="warn")))
    if not clock.breached:
        uow.schedule(Timer(timer_id(case, clock, "breach"), clock.due_at,
                               CheckSla(case_id=case.id, kind=clock.kind, tier=clock.tier, level="breach")))


def cancel(case: Case, clock: SlaClock, uow: UnitOfWork) -> None:
    uow.cancel(timer_id(case, clock, "warn"), timer_id(case, clock, "breach"))


def meet(case: Case, kind: str, now: datetime, uow: UnitOfWork) -> None:
    """The target was reached (acknowledged / resolved): stop the clock."""
    for clock in case.sla:
        if clock.kind == kind and clock.tier == case.tier and clock.met_at is None:
            clock.met_at = now
            cancel(case, clock, uow)


def stop_tier(case: Case, tier: str, now: datetime, uow: UnitOfWork) -> None:
    """The case left `tier`: its clocks there stop (a breach already recorded stays recorded)."""
    for clock in case.sla:
        if clock.tier == tier and clock.met_at is None:
            clock.met_at = now
            cancel(case, clock, uow)


def pause(case: Case, on: str, config: Config, now: datetime, uow: UnitOfWork) -> bool:
    tier = config.tier(case.tier)
    if tier.sla is None or on not in tier.sla.pause_when:
        return False
    for clock in case.sla:
        if clock.tier == case.tier and clock.running:
            clock.paused_since = now
            cancel(case, clock, uow)
    return True


def resume(case: Case, now: datetime, uow: UnitOfWork) -> None:
    for clock in case.sla:
        if clock.tier == case.tier and clock.met_at is None and clock.paused_since is not None:
            clock.paused_total += now - clock.paused_since
            clock.paused_since = None
            schedule(case, clock, uow)


def leads(case: Case, config: Config) -> list[str]:
    """Who hears about a breach: the tier lead, else the managers."""
    tier = config.find_tier(case.tier)
    if tier and tier.lead:
        return [tier.lead]
    return [key for key, p in config.people.items() if "manager" in p.roles]


async def check_sla(cmd: CheckSla, ctx: Context) -> Reply:
    config, now = ctx.config, ctx.clock.now()

    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        clock = next((c for c in case.sla if c.kind == cmd.kind and c.tier == cmd.tier), None)
        if clock is None or clock.met_at is not None or clock.paused_since is not None:
            return Reply(text="no clock running")
        if case.status == CaseStatus.RESOLVED:
            return Reply(text="resolved")
        due = clock.warn_due_at if cmd.level == "warn" else clock.due_at
        if now < due:  # the clock was paused meanwhile: fire at the new time
            schedule(case, clock, uow)
            return Reply(text="rescheduled")
        if cmd.level == "warn":
            if clock.warned or clock.breached:
                return Reply(text="already warned")
            if now >= clock.due_at:  # fired late (downtime): the breach notice says it all
                clock.warned = True
                return Reply(text="warning skipped, breach follows")
            clock.warned = True
            left = format_duration(clock.due_at - now)
            reply(case, uow, f"SLA warning: {cmd.kind} due in {left}",
                  f"{case.id} must be {_verb(cmd.kind)} by {local_time(config, clock.due_at)} "
                  f"({format_duration(clock.target)} target for {clock.tier}).")
            record(uow, case, SYSTEM, "sla warning", f"{cmd.kind} due in {left}")
            rollups.sla_warned(uow, case, clock)
        else:
            if clock.breached:
                return Reply(text="already breached")
            clock.breached = True
            clock.warned = True
            reply(case, uow, f"SLA breached: {cmd.kind} target of {format_duration(clock.target)} missed",
                  f"{case.id} was not {_verb(cmd.kind)} within {format_duration(clock.target)} in {clock.tier}.")
            for lead in leads(case, config):
                tell(case, uow, lead, f"SLA breach on {case.id} ({case.severity.value})",
                     f"{case.title}: {cmd.kind} target of {format_duration(clock.target)} in {clock.tier} missed.")
            record(uow, case, SYSTEM, "sla breach", f"{cmd.kind} target {format_duration(clock.target)}")
            rollups.sla_breached(uow, case, clock)
        return Reply(text=f"sla {cmd.level}")

    return await ctx.update(cmd.case_id, mutate)


def _verb(kind: str) -> str:
    return "acknowledged" if kind == "acknowledge" else "resolved"

