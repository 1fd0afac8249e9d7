"""The case card and the other neutral notices every workflow shares.

One function builds the card from the case, so every platform shows the same facts and
actions, and an update is simply the card built again from the new state.
"""

from __future__ import annotations

from datetime import datetime

from bot.changes import Changes
from bot.config import Config
from bot.durations import format_duration
from bot.messages import CardAction, CardField, CaseThread, Mention, Notice, PersonDirect, ThreadLink
from bot.model import Actor, Case, CaseStatus, SlaClock, TimelineEntry
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
    if case.resolution and case.status == CaseStatus.RESOLVED:
        fields.append(CardField(label="Resolution", value=case.resolution))
    links = [ThreadLink(case_id=case.id, tier=case.tier, label=f"Now in {case.tier}")] if moved else []
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


def thread(case: Case, tier: str | None = None) -> CaseThread:
    return CaseThread(case_id=case.id, tier=tier or case.tier, private=case.private)


def refresh_card(case: Case, changes: Changes, config: Config, now: datetime,
                 *, tier: str | None = None) -> None:
    """Record the state change and queue the card update for every platform of the thread."""
    changes.case = case
    changes.say(case_card(case, config, now, thread_tier=tier), thread(case, tier))


def reply(case: Case, changes: Changes, title: str, text: str = "", *, tier: str | None = None,
          mentions: list[Mention] | None = None, links: list[ThreadLink] | None = None,
          kind: str = "reply") -> None:
    notice = Notice(kind="page" if kind == "page" else "reply", title=title, text=text, case_id=case.id,
                    mentions=mentions or [], links=links or [], severity=case.severity.value,
                    private=case.private)
    changes.say(notice, thread(case, tier))


def log(changes: Changes, case: Case, now: datetime, actor: Actor | str, action: str,
        detail: str = "") -> None:
    name = actor if isinstance(actor, str) else actor.name
    changes.log(TimelineEntry(at=now, actor=name, action=action, detail=detail, tier=case.tier))


def tell(case: Case, changes: Changes, person: str, title: str, text: str, *, kind: str = "direct") -> None:
    """A direct message to one person about the case, with a link to its thread.

    Whoever is told about a case is one of its insiders from then on (bot.access).
    """
    if person not in case.informed:
        case.informed.append(person)
    changes.say(Notice(kind="page" if kind == "page" else "direct", title=title, text=text,
                       links=[ThreadLink(case_id=case.id, tier=case.tier, label="Open the case thread")],
                       case_id=case.id, severity=case.severity.value, private=case.private),
                PersonDirect(person=person))
