"""The case card and the other neutral notices every workflow shares.

One function builds the card from the case, so every platform shows the same facts and
actions, and an update is simply the card built again from the new state: `case_views` is
the case's view for the bus, which posts or updates the card whenever what it shows changes.
"""

from __future__ import annotations

from datetime import datetime

from bot.config import Config
from bot.durations import format_duration
from bot.messages import (
    Audience,
    CardAction,
    CardField,
    ChannelLink,
    InThread,
    Mention,
    Notice,
    PersonDirect,
    ThreadLink,
    case_thread,
)
from bot.model import Actor, Case, CaseStatus, SlaClock, TimelineEntry
from bot.uow import UnitOfWork
from workflows.policy import next_tier

STATUS_LABEL = {
    CaseStatus.OPEN: "Open, waiting for acknowledgement",
    CaseStatus.ACKNOWLEDGED: "Acknowledged",
    CaseStatus.WAITING_CUSTOMER: "Waiting on customer",
    CaseStatus.WAITING_VENDOR: "Waiting on vendor",
    CaseStatus.RESOLVED: "Resolved",
}


def person_name(config: Config, person: str | None) -> str:
    if not person:
        return "nobody"
    p = config.people.get(person)
    return p.name if p else person


def mention(config: Config, person: str) -> Mention:
    return Mention(person=person, name=person_name(config, person))


def tier_label(config: Config, tier_id: str) -> str:
    tier = config.find_tier(tier_id)
    return f"{tier.id} {tier.name}" if tier else tier_id


def customer_label(config: Config, customer: str | None) -> str:
    if not customer:
        return "none given"
    c = config.customers.get(customer)
    return f"{c.name} ({c.segment})" if c else customer


def local_time(config: Config, when: datetime) -> str:
    return when.astimezone(config.tz).strftime("%a %d %b %H:%M %Z")


def sla_text(config: Config, clock: SlaClock, now: datetime) -> str:
    if clock.met_at is not None:
        return f"{clock.kind}: met" if not clock.breached else f"{clock.kind}: breached, then done"
    state = " (paused)" if clock.paused_since else ""
    if clock.breached:
        state = f" (BREACHED {format_duration(now - clock.due_at)} ago)"
    elif clock.warned:
        state = " (due soon)"
    return f"{clock.kind} by {local_time(config, clock.due_at)}{state}"


def case_card(case: Case, config: Config, now: datetime, *, thread_tier: str | None = None) -> Notice:
    """The card at the root of the case's thread in `thread_tier` (default: its current tier)."""
    thread_tier = thread_tier or case.tier
    moved = thread_tier.lower() != case.tier.lower()
    fields = [
        CardField(label="Customer", value=customer_label(config, case.customer)),
        CardField(label="Severity", value=case.severity.value),
        CardField(label="Tier", value=tier_label(config, case.tier)),
        CardField(label="Status", value=STATUS_LABEL[case.status] if not moved else
                  f"Moved to {tier_label(config, case.tier)}"),
        CardField(label="Owner", value=person_name(config, case.owner)),
    ]
    if case.category:
        fields.append(CardField(label="Category", value=case.category))
    clocks = [sla_text(config, c, now) for c in case.sla if c.tier == case.tier]
    if clocks and not moved:
        fields.append(CardField(label="SLA", value="; ".join(clocks)))
    if case.vendor:
        ticket = f" ticket {case.vendor.ticket}" if case.vendor.ticket else ""
        fields.append(CardField(label="Vendor", value=f"{case.vendor.name}{ticket}"))
    if case.incident:
        fields.append(CardField(label="Incident", value=case.incident))
    if case.resolution and case.status == CaseStatus.RESOLVED:
        fields.append(CardField(label="Resolution", value=case.resolution))
    links = [link(case, case.tier, f"Now in {case.tier}")] if moved else []
    return Notice(kind="card", title=f"{case.id} · {case.title}", text="", fields=fields,
                  actions=[] if moved else card_actions(case, config), links=links, case_id=case.id,
                  severity=case.severity.value, status=case.status.value, private=case.private,
                  case_version=case.version)


def card_actions(case: Case, config: Config) -> list[CardAction]:
    if case.status == CaseStatus.RESOLVED:
        return [CardAction(action="reopen", label="Reopen", case_id=case.id)]
    actions = []
    if case.acknowledged_at is None:
        actions.append(CardAction(action="acknowledge", label="Acknowledge", case_id=case.id, style="primary"))
    if case.owner is None:
        actions.append(CardAction(action="claim", label="Claim", case_id=case.id))
    up = next_tier(case.tier, config)
    if up:
        actions.append(CardAction(action="escalate", label=f"Escalate ▸ {up}", case_id=case.id, needs="reason",
                                  target_tier=up))
    actions.append(CardAction(action="resolve", label="Resolve", case_id=case.id, style="danger",
                              needs="resolution"))
    return actions


def link(case: Case, tier: str | None = None, label: str = "Open the case thread") -> ThreadLink:
    """A link to the case's thread in `tier` (default: its current tier)."""
    return ThreadLink(thread=case_thread(case.id, tier or case.tier), label=label)


def thread(case: Case, config: Config, tier: str | None = None) -> InThread:
    """The case's thread in `tier`: the tier's private channels for a private case, else its channels."""
    tier_id = tier or case.tier
    found = config.find_tier(tier_id)
    channels: dict[str, str] = {}
    private = False
    if found is not None:
        if case.private and found.private_channels.items():
            channels, private = dict(found.private_channels.items()), True
        else:
            channels = dict(found.channels.items())
    return InThread(thread=case_thread(case.id, tier_id), channels=channels, private=private)


def case_views(before: Case | None, after: Case, config: Config, now: datetime) -> list[tuple[Notice, Audience]]:
    """The cards to post or update after a change: the current tier's card whenever what it shows
    changed (once per version), and the card of the tier it left, which now points onwards."""
    out: list[tuple[Notice, Audience]] = []
    tiers = [after.tier] + ([before.tier] if before is not None and before.tier.lower() != after.tier.lower() else [])
    for tier in tiers:
        card = case_card(after, config, now, thread_tier=tier)
        if before is not None and tier.lower() == before.tier.lower() == after.tier.lower() \
                and not _shown_fields_differ(before, after):
            old = case_card(before, config, now, thread_tier=tier)
            if old.model_copy(update={"case_version": None}) == card.model_copy(update={"case_version": None}):
                continue
        out.append((card, thread(after, config, tier)))
    return out


def _shown_fields_differ(before: Case, after: Case) -> bool:
    """Fields the card of the current tier always shows: when one changed, so did the card (the
    common case, decided without drawing the old card)."""
    return (before.status, before.owner, before.severity, before.title) != \
        (after.status, after.owner, after.severity, after.title)


def reply(case: Case, uow: UnitOfWork, title: str, text: str = "", *, tier: str | None = None,
          mentions: list[Mention] | None = None, links: list[ThreadLink] | None = None,
          kind: str = "reply") -> None:
    notice = Notice(kind="page" if kind == "page" else "reply", title=title, text=text, case_id=case.id,
                    mentions=mentions or [], links=links or [], severity=case.severity.value,
                    private=case.private)
    uow.say(notice, thread(case, uow.config, tier))


def record(uow: UnitOfWork, case: Case, actor: Actor | str, action: str, detail: str = "") -> None:
    """A line on the case's timeline."""
    name = actor if isinstance(actor, str) else actor.name
    uow.record(case, TimelineEntry(at=uow.now, actor=name, action=action, detail=detail, tier=case.tier))


def tell(case: Case, uow: UnitOfWork, person: str, title: str, text: str, *, kind: str = "direct") -> None:
    """A direct message to one person about the case, with a link to its thread.

    Whoever is told about a case is one of its insiders from then on (bot.access).
    """
    if person not in case.informed:
        case.informed.append(person)
    page = kind == "page"
    uow.say(Notice(kind="page" if page else "direct", title=title, text=text,
                   links=[link(case)], case_id=case.id, severity=case.severity.value, private=case.private,
                   channel_links=tier_channels(case, uow.config) if page else []),
            PersonDirect(person=person))


def tier_channels(case: Case, config: Config) -> list[ChannelLink]:
    """Where the case's thread is (to be) posted, per platform: a page points there until it exists."""
    where = thread(case, config)
    label = f"{tier_label(config, case.tier)} channel"
    return [ChannelLink(thread=where.thread, platform=p, channel=c, label=label) for p, c in where.channels.items()]
