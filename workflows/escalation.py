"""Escalation: open a case and route it, or move an existing case up or down a tier.

Opening a case decides the tier (the agent's choice or the first matching routing rule) and the
privacy (rule or sensitive category), starts the SLA clocks and paging, and raises `CaseOpened`;
telling the CSM and the experts a rule names, and linking back to where the case came from, are
that event's handlers (`EVENT_HANDLERS`), so later workflows subscribe instead of editing this.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import platforms
from bot.bus import Context, EventHandler, Handler
from bot.commands import Command, DeescalateCase, EscalateCase, NudgeVendor, OpenCase
from bot.config import Config
from bot.durations import format_duration
from bot.errors import InvalidTransition, UserError
from bot.events import CaseDeescalated, CaseEscalated, CaseOpened, Event
from bot.knowledge import KbArticle
from bot.messages import ChannelPost, Notice, Reply
from bot.metrics import CASES_OPENED
from bot.model import SYSTEM, Actor, Case, CaseStatus, Severity, TierVisit, VendorInfo
from bot.uow import Timer, UnitOfWork
from workflows import knowledge, paging, sla
from workflows.cards import customer_label, link, mention, person_name, record, reply, tell, tier_label
from workflows.policy import Facts, is_sensitive, next_tier, previous_tier, route, who_is_on_call

VENDOR_NUDGE_DEFAULT_HOURS = 4


def vendor_nudge_timer(case: Case) -> str:
    """The id of the one vendor-reminder timer a case can have."""
    return f"{case.id}:vendor-nudge"


def enter_tier(case: Case, tier_id: str, uow: UnitOfWork, *, reason: str = "") -> list[str]:
    """Put the case in `tier_id`: SLA clocks and paging (the card follows from the new state)."""
    case.tier = tier_id
    case.status = CaseStatus.OPEN
    case.acknowledged_at = None
    case.acknowledged_by = None
    case.tiers.append(TierVisit(tier=tier_id, at=uow.now, reason=reason, private=case.private))
    sla.start_clocks(case, uow.config, uow.now, uow)
    return paging.start(case, uow.config, uow.now, uow)


def resolve_people(refs: list[str], config: Config, now: datetime) -> list[str]:
    people = []
    for ref in refs:
        kind, _, name = ref.partition(":")
        if kind == "person":
            people.append(name)
        elif kind == "schedule" and name in config.schedules:
            people.append(who_is_on_call(config.schedules[name], now, config.tz).now)
    return people


async def open_case(cmd: OpenCase, ctx: Context) -> Reply:
    config = ctx.config
    customer = config.customers.get(cmd.customer) if cmd.customer else None
    if cmd.customer and customer is None:
        raise UserError(f"Unknown customer '{cmd.customer}' (known: {', '.join(config.customers) or 'none'}).")
    category = cmd.category.lower() if cmd.category else None
    facts = Facts(text=cmd.title, category=category, severity=cmd.severity, customer=cmd.customer,
                  segment=customer.segment if customer else None,
                  channel=cmd.origin.channel if cmd.origin else None)
    decision = route(facts, config)
    tier_id = config.tier(cmd.tier).id if cmd.tier else decision.tier
    tier = config.tier(tier_id)
    if not tier.channels.items() and not tier.private_channels.items():
        raise UserError(f"{tier_label(config, tier_id)} has no channel to post in; escalate to a staffed tier "
                        f"({', '.join(t.id for t in config.tiers if t.channels.items())}).")
    private = decision.private or is_sensitive(category, config)
    opening = await ctx.store.begin_case(cmd.key)  # a duplicate wastes an id: harmless
    if opening.done is not None:
        return Reply(text=opening.done)
    case_id = opening.case_id

    async def work(uow: UnitOfWork) -> Reply:
        now = uow.now
        uow.revisions = opening.revisions
        case = Case(id=case_id, title=cmd.title, customer=cmd.customer, category=category,
                    severity=cmd.severity or Severity.SEV3, tier=tier_id, private=private, swarm=decision.swarm,
                    notify_csm=decision.notify_csm, rule=decision.rule, origin=cmd.origin, opened_by=cmd.actor,
                    created_at=now, updated_at=now)
        uow.add(case)
        why = f"tier chosen by {cmd.actor.name}" if cmd.tier else decision.why
        if cmd.tier and private:
            why += "; private because " + (decision.why if decision.private else f"category {category} is sensitive")
        record(uow, case, cmd.actor, "opened",
               f"{case.severity.value} in {tier_id} ({why}){', private' if private else ''}: {case.title}")
        paged = enter_tier(case, tier_id, uow, reason=why)
        origin = cmd.origin
        spec = platforms.get(origin.platform) if origin else None
        origin_where = f" from {origin.platform} {origin.channel}" if origin and origin.channel and spec and \
            spec.links_back else ""
        reply(case, uow, f"Escalated by {cmd.actor.name}{origin_where}",
              f"{case.title}\nRouted: {why}." + (f"\nOriginal message: {origin.message_url}"
                                                 if origin and origin.message_url else ""))
        uow.emit(CaseOpened(case_id=case.id))
        where = "its private channel" if private and tier.private_channels.items() else "its channel"
        paged_text = f" Paging {', '.join(person_name(config, p) for p in paged)}." if paged else ""
        text = (f"Opened {case.id} in {tier_label(config, tier_id)} ({case.severity.value}); "
                f"the case thread is being posted in {where}.{paged_text}")
        return Reply(text=text, case_id=case.id, links=[link(case)])

    reply_ = await ctx.run(work, key=cmd.key, checked=True)
    if reply_.case_id == case_id and reply_.links:
        CASES_OPENED.labels(tier_id).inc()
        # The knowledge base closes the loop (its index is cached; the revision came with the id).
        if found := await knowledge.suggest(ctx.store, cmd.title, revision=opening.revision(KbArticle.kind)):
            reply_ = reply_.model_copy(update={"text": "\n".join([reply_.text, *found])})
    return reply_


# ---- what follows when a case opens (event handlers) ------------------------------------------


async def tell_who_must_know(event: Event, uow: UnitOfWork) -> None:
    """The CSM of an enterprise customer (or when a rule says so) and the experts a rule adds."""
    assert isinstance(event, CaseOpened)
    case = await uow.case(event.case_id)
    config = uow.config
    rule = config.routing[case.rule] if case.rule is not None and case.rule < len(config.routing) else None
    extra = [p for p in resolve_people(list(rule.then.add) if rule else [], config, uow.now) if p in config.people]
    notify = [(p, f"added by routing rule {(case.rule or 0) + 1}") for p in extra]
    customer = config.customers.get(case.customer) if case.customer else None
    if customer and customer.csm and (case.notify_csm or customer.segment == "enterprise"):
        notify.append((customer.csm, f"the customer success manager of {customer.name}"))
    for person, why_person in notify:
        if person not in case.watchers:
            case.watchers.append(person)
        tell(case, uow, person, f"{case.id} escalated ({case.severity.value}, {case.tier})",
             f"{case.title}\nCustomer: {customer_label(config, case.customer)}\nYou are told because: {why_person}.")
        record(uow, case, SYSTEM, "notified", f"{person_name(config, person)}: {why_person}")
    if extra:
        reply(case, uow, "Added to the case", ", ".join(person_name(config, p) for p in extra),
              mentions=[mention(config, p) for p in extra])


async def link_back(event: Event, uow: UnitOfWork) -> None:
    """Post a link to the new case where it came from (the message or channel it was escalated from)."""
    assert isinstance(event, CaseOpened)
    case = await uow.case(event.case_id)
    origin = case.origin
    spec = platforms.get(origin.platform) if origin else None
    if origin is None or not origin.channel or spec is None or not spec.links_back:
        return
    # The origin may be public: a private case's link-back names only the id and tier.
    title = case.id if case.private else f"{case.id} · {case.title}"
    uow.say(Notice(kind="post", title=f"Escalated to {tier_label(uow.config, case.tier)} as {title}",
                   links=[link(case, label="Follow the case thread")], case_id=case.id),
            ChannelPost(platform=origin.platform, channel=origin.channel, thread=origin.thread))


# ---- moving between tiers ---------------------------------------------------------------------


def move(case: Case, target: str, actor: Actor, reason: str, uow: UnitOfWork, *, direction: str) -> list[str]:
    """Move the case to another tier: the old thread gets a pointer, the new one a card and context."""
    config, now = uow.config, uow.now
    old = case.tier
    paging.stop(case, f"{direction} to {target}", now, uow, quiet=True)
    sla.stop_tier(case, old, now, uow)
    if case.owner:  # the new tier takes over; the previous owner keeps watching
        if case.owner not in case.watchers:
            case.watchers.append(case.owner)
        case.owner = None
    record(uow, case, actor, f"{direction}d", f"{old} → {target}: {reason}")
    paged = enter_tier(case, target, uow, reason=reason)
    reply(case, uow, f"{direction.capitalize()}d to {tier_label(config, target)} by {actor.name}",
          f"Reason: {reason}", tier=old, links=[link(case, target, f"Continue in {target}")])
    reply(case, uow, f"{direction.capitalize()}d from {tier_label(config, old)} by {actor.name}",
          f"Reason: {reason}", links=[link(case, old, f"Earlier thread in {old}")])
    return paged


def target_tier(case: Case, requested: str | None, config: Config, *, up: bool) -> str:
    """The tier a move goes to: the one asked for, else the next one up (or down)."""
    if requested and config.find_tier(requested) is None:
        raise UserError(f"Unknown tier '{requested}' (known: {', '.join(config.tier_ids)}).")
    target = config.tier(requested).id if requested else (next_tier if up else previous_tier)(case.tier, config)
    if target is None:
        edge = "highest" if up else "lowest staffed"
        raise InvalidTransition(f"{case.id} is already in the {edge} tier ({case.tier}).")
    order = [t.id for t in config.tiers]
    if up and order.index(target) <= order.index(case.tier):
        raise InvalidTransition(f"{target} is not above {case.tier}; use /case {case.id} deescalate.")
    if not up and order.index(target) >= order.index(case.tier):
        raise InvalidTransition(f"{target} is not below {case.tier}; use /escalate {case.id} {target}.")
    return target


async def escalate_case(cmd: EscalateCase, ctx: Context) -> Reply:
    config = ctx.config

    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        case.require_open()
        now = uow.now
        target = target_tier(case, cmd.to_tier, config, up=True)
        owner, old = case.owner, case.tier
        paged = move(case, target, cmd.actor, cmd.reason, uow, direction="escalate")
        if config.tier(target).kind == "vendor":
            # A vendor is not a person: whoever owned the case (or sent it) keeps it and chases them.
            case.owner = owner or cmd.actor.person
            case.watchers = [w for w in case.watchers if w != case.owner]
            case.vendor = VendorInfo(name=cmd.vendor or "vendor", ticket=cmd.vendor_ticket, since=now)
            case.status = CaseStatus.WAITING_VENDOR
            nudge = config.tier(target).vendor_nudge or _default_nudge(config, target)
            uow.schedule(Timer(vendor_nudge_timer(case), now + nudge, NudgeVendor(case_id=case.id)))
            record(uow, case, cmd.actor, "vendor engaged",
                   f"{case.vendor.name}{' ticket ' + cmd.vendor_ticket if cmd.vendor_ticket else ''}; "
                   f"owner reminded after {format_duration(nudge)} without an answer")
        uow.emit(CaseEscalated(case_id=case.id, from_tier=old, to_tier=target))
        paged_text = f" Paging {', '.join(person_name(config, p) for p in paged)}." if paged else ""
        return Reply(text=f"{case.id} escalated to {tier_label(config, target)}.{paged_text}", case_id=case.id)

    return await ctx.update(cmd.case_id, mutate, key=cmd.key)


def _default_nudge(config: Config, tier_id: str) -> timedelta:
    tier = config.tier(tier_id)
    if tier.sla and tier.sla.acknowledge:
        return tier.sla.acknowledge
    return timedelta(hours=VENDOR_NUDGE_DEFAULT_HOURS)


async def deescalate_case(cmd: DeescalateCase, ctx: Context) -> Reply:
    config = ctx.config

    def mutate(case: Case, uow: UnitOfWork) -> Reply:
        case.require_open()
        target = target_tier(case, cmd.to_tier, config, up=False)
        old = case.tier
        case.vendor = None
        move(case, target, cmd.actor, cmd.reason, uow, direction="de-escalate")
        uow.emit(CaseDeescalated(case_id=case.id, from_tier=old, to_tier=target))
        return Reply(text=f"{case.id} moved down to {tier_label(config, target)}.", case_id=case.id)

    return await ctx.update(cmd.case_id, mutate, key=cmd.key)


HANDLERS: dict[type[Command], Handler] = {
    OpenCase: open_case, EscalateCase: escalate_case, DeescalateCase: deescalate_case,
}
EVENT_HANDLERS: dict[type[Event], list[EventHandler]] = {CaseOpened: [tell_who_must_know, link_back]}
