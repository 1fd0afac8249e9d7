"""The case lifecycle inside a tier: acknowledge, claim, hand off, watch, wait, resolve, reopen.

Each handler is one atomic, versioned update: two people claiming at once, exactly one wins;
a second acknowledgement (a double click, a retry) changes nothing and says who was first. The
guards and their wording live on the Case (bot.model); handlers add what is said and scheduled.
"""

from __future__ import annotations

from bot.bus import Context, Handler
from bot.commands import (
    AcknowledgeCase,
    AddWatcher,
    ClaimCase,
    Command,
    HandOffCase,
    NudgeVendor,
    ReopenCase,
    ResolveCase,
    SetWaiting,
)
from bot.durations import format_duration
from bot.errors import NotFound
from bot.events import CaseAcknowledged, CaseReopened, CaseResolved
from bot.messages import Reply
from bot.model import SYSTEM, Actor, Case, CaseStatus, SlaClock
from bot.uow import Timer, UnitOfWork
from workflows import paging, sla
from workflows.cards import mention, person_name, record, reply, tell, tier_label
from workflows.escalation import vendor_nudge_timer


def _who(actor: Actor) -> str:
    return actor.person or actor.user_id or actor.name


def _acknowledge(case: Case, actor: Actor, uow: UnitOfWork) -> bool:
    now = uow.now
    if not case.acknowledge(_who(actor), now):
        return False
    stopped = paging.stop(case, actor.name, now, uow, quiet=True)
    sla.meet(case, "acknowledge", now, uow)
    if case.vendor and case.vendor.last_heard is None:
        case.vendor.last_heard = now
        uow.cancel(vendor_nudge_timer(case))
    took = format_duration(now - case.tiers[-1].at) if case.tiers else ""
    reply(case, uow, f"{actor.name} acknowledged" + (f" after {took}" if took else ""),
          "Paging stopped." if stopped else "")
    record(uow, case, actor, "acknowledged", "paging stopped" if stopped else "")
    uow.emit(CaseAcknowledged(case_id=case.id, by=_who(actor)))
    return True


async def acknowledge(cmd: AcknowledgeCase, ctx: Context) -> Reply:
    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        if not _acknowledge(case, cmd.actor, uow):
            by = person_name(ctx.config, case.acknowledged_by)
            return Reply(text=f"{case.id} was already acknowledged by {by}.", case_id=case.id)
        return Reply(text=f"You acknowledged {case.id}; paging stopped.", case_id=case.id)

    return await ctx.update(cmd.case_id, mutate, key=cmd.key)


async def claim(cmd: ClaimCase, ctx: Context) -> Reply:
    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        if not case.claim(_who(cmd.actor), name_of=lambda p: person_name(ctx.config, p)):
            return Reply(text=f"You already own {case.id}.", case_id=case.id)
        _acknowledge(case, cmd.actor, uow)
        reply(case, uow, f"{cmd.actor.name} owns this case now")
        record(uow, case, cmd.actor, "claimed")
        return Reply(text=f"You own {case.id} now.", case_id=case.id)

    return await ctx.update(cmd.case_id, mutate, key=cmd.key)


def _known(person: str, ctx: Context) -> None:
    if person not in ctx.config.people:
        raise NotFound(f"Unknown person '{person}' (known: {', '.join(ctx.config.people)}).")


async def hand_off(cmd: HandOffCase, ctx: Context) -> Reply:
    config = ctx.config
    _known(cmd.to_person, ctx)

    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        case.require_open()
        if case.owner == cmd.to_person:
            return Reply(text=f"{person_name(config, cmd.to_person)} already owns {case.id}.", case_id=case.id)
        previous = case.owner
        case.owner = cmd.to_person
        if previous and previous not in case.watchers:
            case.watchers.append(previous)
        note = f"\nNote: {cmd.note}" if cmd.note else ""
        reply(case, uow, f"Handed off to {person_name(config, cmd.to_person)} by {cmd.actor.name}", note.strip(),
              mentions=[mention(config, cmd.to_person)])
        tell(case, uow, cmd.to_person, f"{case.id} is yours now", f"{case.title}{note}")
        moved = f"{person_name(config, previous)} → {person_name(config, cmd.to_person)}"
        record(uow, case, cmd.actor, "handed off", moved + (f": {cmd.note}" if cmd.note else ""))
        return Reply(text=f"{case.id} handed off to {person_name(config, cmd.to_person)}.", case_id=case.id)

    return await ctx.update(cmd.case_id, mutate, key=cmd.key)


async def add_watcher(cmd: AddWatcher, ctx: Context) -> Reply:
    config = ctx.config
    _known(cmd.person, ctx)

    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        name = person_name(config, cmd.person)
        if cmd.person in case.watchers:
            return Reply(text=f"{name} already watches {case.id}.", case_id=case.id)
        case.watchers.append(cmd.person)
        record(uow, case, cmd.actor, "watcher added", name)
        if cmd.person != cmd.actor.person:
            tell(case, uow, cmd.person, f"{cmd.actor.name} added you to {case.id}", case.title)
        return Reply(text=f"{name} now watches {case.id}.", case_id=case.id)

    return await ctx.update(cmd.case_id, mutate, key=cmd.key)


async def set_waiting(cmd: SetWaiting, ctx: Context) -> Reply:
    config = ctx.config

    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        case.require_open()
        now = uow.now
        if cmd.on == "none":
            if case.status not in (CaseStatus.WAITING_CUSTOMER, CaseStatus.WAITING_VENDOR):
                return Reply(text=f"{case.id} is not waiting on anyone.", case_id=case.id)
            if case.status == CaseStatus.WAITING_VENDOR and case.vendor:
                case.vendor.last_heard = now
                uow.cancel(vendor_nudge_timer(case))
            sla.resume(case, now, uow)
            case.status = CaseStatus.ACKNOWLEDGED if case.acknowledged_at else CaseStatus.OPEN
            reply(case, uow, f"{cmd.actor.name} resumed work", "SLA clocks run again.")
            record(uow, case, cmd.actor, "resumed")
        else:
            case.status = CaseStatus.WAITING_CUSTOMER if cmd.on == "customer" else CaseStatus.WAITING_VENDOR
            paused = sla.pause(case, cmd.on, config, now, uow)
            note = "SLA clocks paused." if paused else f"SLA clocks keep running ({case.tier} does not pause them)."
            reply(case, uow, f"Waiting on the {cmd.on}", f"Set by {cmd.actor.name}. {note}")
            record(uow, case, cmd.actor, f"waiting on {cmd.on}", note)
        return Reply(text=f"{case.id}: {case.status.value.replace('_', ' ')}.", case_id=case.id)

    return await ctx.update(cmd.case_id, mutate, key=cmd.key)


async def resolve(cmd: ResolveCase, ctx: Context) -> Reply:
    config = ctx.config

    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        now = uow.now
        if not case.resolve(_who(cmd.actor) if cmd.actor.person else None, now, cmd.resolution):
            return Reply(text=f"{case.id} is already resolved.", case_id=case.id)
        paging.stop(case, f"resolved by {cmd.actor.name}", now, uow, quiet=True)
        sla.meet(case, "acknowledge", now, uow)
        sla.meet(case, "resolve", now, uow)
        uow.cancel(vendor_nudge_timer(case))
        reply(case, uow, f"Resolved by {cmd.actor.name} in {case.tier}", cmd.resolution)
        record(uow, case, cmd.actor, "resolved", f"in {case.tier}: {cmd.resolution}")
        for person in sorted({*case.watchers, *([case.opened_by.person] if case.opened_by.person else [])}):
            if person != cmd.actor.person:
                tell(case, uow, person, f"{case.id} is resolved", f"{case.title}\n{cmd.resolution}")
        uow.emit(CaseResolved(case_id=case.id, tier=case.tier))
        return Reply(text=f"{case.id} resolved in {tier_label(config, case.tier)}.", case_id=case.id)

    return await ctx.update(cmd.case_id, mutate, key=cmd.key)


async def reopen(cmd: ReopenCase, ctx: Context) -> Reply:
    config = ctx.config

    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        if not case.reopen():
            return Reply(text=f"{case.id} is open already.", case_id=case.id)
        tier = config.tier(case.tier)
        if tier.sla and tier.sla.resolve:  # a fresh resolve clock; acknowledgement stays as it was
            case.sla = [c for c in case.sla if not (c.tier == case.tier and c.kind == "resolve")]
            clock = SlaClock(kind="resolve", tier=case.tier, started_at=uow.now, target=tier.sla.resolve,
                             warn_at=tier.sla.warn_at)
            case.sla.append(clock)
            sla.schedule(case, clock, uow)
        reason = cmd.reason or "no reason given"
        reply(case, uow, f"Reopened by {cmd.actor.name}", f"Reason: {reason}",
              mentions=[mention(config, case.owner)] if case.owner else [])
        record(uow, case, cmd.actor, "reopened", reason)
        uow.emit(CaseReopened(case_id=case.id))
        return Reply(text=f"{case.id} reopened.", case_id=case.id)

    return await ctx.update(cmd.case_id, mutate, key=cmd.key)


async def nudge_vendor(cmd: NudgeVendor, ctx: Context) -> Reply:
    """The vendor has not answered by the nudge time: remind the owner, and again later."""
    config = ctx.config

    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        now = uow.now
        if not case.is_open or case.vendor is None or case.vendor.last_heard is not None:
            return Reply(text="vendor answered or case closed")
        waited = format_duration(now - case.vendor.since)
        who = case.owner or case.acknowledged_by or case.opened_by.person
        text = f"{case.vendor.name} has not answered for {waited}" + (
            f" (ticket {case.vendor.ticket})" if case.vendor.ticket else "") + ". Chase them or change plans."
        reply(case, uow, "Vendor reminder", text, mentions=[mention(config, who)] if who else [])
        if who and who in config.people:
            tell(case, uow, who, f"Chase the vendor on {case.id}", text)
        nudge = config.tier(case.tier).vendor_nudge or (now - case.vendor.since)
        uow.schedule(Timer(vendor_nudge_timer(case), now + nudge, NudgeVendor(case_id=case.id)))
        record(uow, case, SYSTEM, "vendor reminder", text)
        return Reply(text="reminded")

    return await ctx.update(cmd.case_id, mutate)


HANDLERS: dict[type[Command], Handler] = {
    AcknowledgeCase: acknowledge, ClaimCase: claim, HandOffCase: hand_off, AddWatcher: add_watcher,
    SetWaiting: set_waiting, ResolveCase: resolve, ReopenCase: reopen, NudgeVendor: nudge_vendor,
}
