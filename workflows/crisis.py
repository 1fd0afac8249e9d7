"""Crisis mode: declare an incident, run it with roles, link its cases, keep customers informed.

An incident (bot.incidents) lives in its own thread `incident:INC-n` (the incident space). Cases
about the outage are linked to it (by hand, at declare time and when they open) in one atomic
commit however many there are. A status update fans out, as bulk traffic, to the incident space,
the status channels, every linked case thread and the customer channels of every affected
customer; what customers read is only the update's status and text, scrubbed. The cadence is two
timers per update: a reminder when the next one is due (from then on the card says by how much the
update is overdue, refreshed every few minutes), a page to the commander at 150%.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from datetime import datetime, timedelta

from bot import platforms as registry
from bot.access import may_access
from bot.bus import Context, EventHandler, Handler
from bot.commands import (
    AddNote,
    AssignRole,
    Command,
    DeclareIncident,
    LinkCases,
    ListIncidents,
    PostUpdate,
    ResolveIncident,
    ShowIncidentCases,
    ShowReport,
    ShowRoles,
    UnlinkCase,
    UpdateDue,
    UpdateForm,
    UpdateOverdue,
)
from bot.config import Config
from bot.durations import format_duration
from bot.errors import InvalidTransition, NotAllowed, NotFound, UserError
from bot.events import CaseOpened, CaseResolved, Event, IncidentDeclared, IncidentResolved
from bot.incidents import (
    STATUS_LABEL,
    UPDATE_STATUSES,
    Incident,
    IncidentNote,
    IncidentStatus,
    IncidentUpdate,
    incident_thread,
)
from bot.messages import (
    Audience,
    CardAction,
    CardField,
    ChannelPost,
    FileRef,
    InThread,
    Notice,
    PersonDirect,
    Reply,
    Space,
    ThreadLink,
)
from bot.model import Actor, Case, Severity, TimelineEntry
from bot.privacy import scrub
from bot.store import Store
from bot.uow import Timer, UnitOfWork
from workflows import paging, sla
from workflows.cards import customer_label, local_time, mention, person_name, record, reply, thread, tier_label
from workflows.escalation import vendor_nudge_timer
from workflows.policy import who_is_on_call

DEFAULT_CADENCE = timedelta(hours=1)
OVERDUE_AT = 1.5  # the commander is paged when the update is this late, as a share of the cadence
OVERDUE_TICK = timedelta(minutes=5)  # how often the card's "overdue by N min" is brought up to date
APOLOGY = ("We are sorry: a problem on our side is affecting your service. We know how much you rely on "
           "us, our whole team is working on it, and we will keep you updated here.")
CASE_ID = re.compile(r"\b(?:ESC|INC)-\d+\b", re.IGNORECASE)
WEBHOOK_PLATFORM = "webhook"


# ---- small helpers ---------------------------------------------------------------------------


def cadence(inc: Incident, config: Config) -> timedelta:
    return config.crisis.update_every.get(inc.severity, DEFAULT_CADENCE)


def space(inc: Incident, config: Config) -> InThread:
    """The incident space: its thread, rooted in the status channel of each platform until a
    platform gives it a channel of its own."""
    return InThread(thread=inc.thread, channels=dict(config.crisis.status_channels.items()))


def incident_link(inc: Incident, label: str | None = None) -> ThreadLink:
    return ThreadLink(thread=inc.thread, label=label or f"Open {inc.id}")


def may_command(person: str | None, config: Config) -> bool:
    """Who may declare (and run) incidents: `crisis.commanders` and the role incident_commander."""
    if not person:
        return False
    found = config.people.get(person)
    return person in config.crisis.commanders or bool(found and "incident_commander" in found.roles)


def timer_ids(inc: Incident) -> tuple[str, str]:
    return f"{inc.id}:update-due", f"{inc.id}:update-overdue"


def schedule_cadence(inc: Incident, uow: UnitOfWork) -> None:
    """The next update is due one cadence from now: a reminder then, a page at 150%."""
    every = cadence(inc, uow.config)
    inc.next_update_due = uow.now + every
    inc.reminded = inc.overdue_paged = False
    inc.overdue_seen_at = None
    due_id, overdue_id = timer_ids(inc)
    n = len(inc.updates)
    uow.schedule(Timer(due_id, uow.now + every, UpdateDue(incident_id=inc.id, update=n)))
    uow.schedule(Timer(overdue_id, uow.now + every * OVERDUE_AT, UpdateOverdue(incident_id=inc.id, update=n)))


def minutes(delta: timedelta) -> str:
    return f"{max(0, int(delta.total_seconds() // 60))} min"


def note(inc: Incident, uow: UnitOfWork, actor: Actor | str, action: str, detail: str = "") -> None:
    """A line on the incident's timeline."""
    name = actor if isinstance(actor, str) else actor.name
    uow.record(inc, TimelineEntry(at=uow.now, actor=name, action=action, detail=detail))


def say_in_space(inc: Incident, uow: UnitOfWork, title: str, text: str = "", *, kind: str = "reply",
                 bulk: bool = False, mentions: list[str] | None = None) -> None:
    uow.say(Notice(kind="reply" if kind == "reply" else "post", title=title, text=text, case_id=inc.id,
                   severity=inc.severity.value, bulk=bulk,
                   mentions=[mention(uow.config, p) for p in mentions or []]), space(inc, uow.config))


async def load(uow: UnitOfWork, incident_id: str) -> Incident:
    return await uow.get(Incident, _id(incident_id))


def _id(incident_id: str) -> str:
    value = incident_id.strip().upper()
    if not re.fullmatch(r"INC-\d+", value):
        raise UserError(f"'{incident_id}' is not an incident id; incident ids look like INC-3.")
    return value


async def read_cases(store: Store, ids: list[str]) -> list[Case]:
    """Cases read in one round trip, without tracking (for matching and fan-out, never for writes)."""
    if not ids:
        return []
    pipe = store.redis.pipeline(transaction=False)
    for case_id in ids:
        pipe.hget(store.keys.record("case", case_id), "d")
    raws = await pipe.execute()
    return [Case.model_validate_json(raw) for raw in raws if raw]


# store prefix -> (incident revision, active incident ids): every opening case asks, incidents rarely change.
_ACTIVE: dict[str, tuple[str, list[str]]] = {}


async def active_ids(store: Store, revision: str | None = None) -> list[str]:
    """The active incidents; from this process's cache when `revision` (of incidents, read by the
    caller in its first round trip) says nothing about incidents changed since it was filled."""
    cached = _ACTIVE.get(store.keys.prefix)
    if revision is not None and cached is not None and cached[0] == revision:
        return cached[1]
    members = await store.redis.smembers(store.keys.index("incident", "active", ""))
    ids = sorted((m.decode() if isinstance(m, bytes) else str(m) for m in members),
                 key=lambda i: int(i.split("-")[1]))
    if revision is not None:  # read after the revision: at least as new as it, never older
        _ACTIVE[store.keys.prefix] = (revision, ids)
    return ids


def matches(inc: Incident, case: Case) -> bool:
    """A case is about the incident if its customer is named, or its title or category has a term."""
    if case.customer and case.customer in inc.customers:
        return True
    text = f"{case.title} {case.category or ''}".lower()
    return any(re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text) for term in inc.terms())


# ---- what customers read ---------------------------------------------------------------------


def public_text(text: str, config: Config) -> str:
    """Update text as customers may read it: no personal data, case ids or names of our staff."""
    out, _ = scrub(text)
    out = CASE_ID.sub("", out)
    full = {person.name for person in config.people.values()}
    # A part of a name only as written with its capital ("Dev", not "dev environment").
    parts = {part for name in full for part in name.split() if len(part) > 2} - full
    for name in sorted(full, key=len, reverse=True):
        out = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", "our team", out, flags=re.IGNORECASE)
    for name in sorted(parts, key=len, reverse=True):
        out = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", "our team", out)
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def affected(inc: Incident, cases: list[Case]) -> list[str]:
    """Customers named in the incident plus those of its linked cases, in a stable order."""
    return list(dict.fromkeys([*inc.customers, *(c.customer for c in cases if c.customer)]))


def tell_customers(inc: Incident, uow: UnitOfWork, customers: list[str], status: IncidentStatus, text: str) -> int:
    """Post to each customer's own channels; the apology leads the first message they get."""
    config, sent = uow.config, 0
    for key in customers:
        customer = config.customers.get(key)
        if customer is None or not customer.channels.items():
            continue
        lines = ([APOLOGY] if key not in inc.told else []) + [f"Status: {STATUS_LABEL[status]}",
                                                              public_text(text, config)]
        notice = Notice(kind="post", title=f"Service status: {STATUS_LABEL[status]}",
                        text="\n".join(line for line in lines if line), bulk=True)
        for platform, channel in customer.channels.items():
            uow.say(notice, ChannelPost(platform=platform, channel=channel))
        inc.told.setdefault(key, uow.now)
        sent += 1
    return sent


def webhook_payload(inc: Incident, text: str, now: datetime, config: Config) -> str:
    """The status page JSON (see README, Crisis mode)."""
    components = [inc.component] if inc.component else []
    return json.dumps({"incident_id": inc.id, "title": public_text(inc.title, config),
                       "status": inc.status.value, "text": public_text(text, config),
                       "affected_components": components, "started_at": inc.created_at.isoformat(),
                       "updated_at": now.isoformat()}, sort_keys=True)


def tell_webhooks(inc: Incident, uow: UnitOfWork, text: str) -> None:
    body = webhook_payload(inc, text, uow.now, uow.config)
    for hook in uow.config.crisis.webhooks:
        uow.say(Notice(kind="post", title=f"{inc.id} {inc.status.value}", text=body),
                ChannelPost(platform=WEBHOOK_PLATFORM, channel=hook.url))


# ---- the incident space and card ---------------------------------------------------------------


def space_name(inc: Incident) -> str:
    """`inc-3-checkout-is-down`: a valid channel name on every platform that makes channels."""
    slug = re.sub(r"[^a-z0-9]+", "-", inc.title.lower()).strip("-")
    return f"{inc.id.lower()}-{slug}"[:80].rstrip("-")


def on_call_now(config: Config, now: datetime) -> list[str]:
    """Who is on call now in the highest staffed tier with a paging policy (the tier an outage needs)."""
    for tier in reversed(config.tiers):
        policy = config.policies.get(tier.policy or "")
        if tier.kind != "team" or policy is None:
            continue
        people: list[str] = []
        for step in policy.steps[:1]:
            for target in step.notify:
                kind, _, name = target.partition(":")
                if kind == "schedule" and name in config.schedules:
                    people.append(who_is_on_call(config.schedules[name], now, config.tz).now)
                elif kind == "person":
                    people.append(name)
        return list(dict.fromkeys(people))
    return []


def incident_space(inc: Incident, config: Config) -> Space:
    people = list(dict.fromkeys([inc.commander, *inc.roles.values(), *inc.on_call]))
    members: dict[str, list[str]] = {}
    for key in people:
        found = config.people.get(key)
        for platform, user_id in (found.ids.items() if found else []):
            if user_id:
                members.setdefault(platform, []).append(user_id)
    return Space(name=space_name(inc), members=members)


# ---- the incident card -------------------------------------------------------------------------


def incident_card(inc: Incident, config: Config) -> Notice:
    """The incident as its card shows it: a view of the record alone, so one version renders one way."""
    roles = ", ".join(f"{role}: {person_name(config, p)}" for role, p in inc.roles.items()) or "none"
    fields = [
        CardField(label="Severity", value=inc.severity.value),
        CardField(label="Status", value=STATUS_LABEL[inc.status]),
        CardField(label="Commander", value=person_name(config, inc.commander)),
        CardField(label="Roles", value=roles),
        CardField(label="Linked cases", value=str(len(inc.cases))),
    ]
    if inc.component:
        fields.append(CardField(label="Component", value=inc.component))
    if inc.active and inc.next_update_due is not None:
        due = inc.next_update_due
        if inc.reminded or inc.overdue_paged:  # from the moment it fell due; the cadence timers refresh it
            late = (inc.overdue_seen_at or due) - due
            fields.append(CardField(label="Next update", value=f"update overdue by {minutes(late)}"))
        else:
            fields.append(CardField(label="Next update", value=f"due by {local_time(config, due)}"))
    # Post update asks the core for its form (prefilled with the last update): no `needs`.
    actions = [] if not inc.active else [
        CardAction(action="incident_update", label="Post update", case_id=inc.id, style="primary"),
        CardAction(action="incident_link", label="Link cases", case_id=inc.id, needs="reason"),
        CardAction(action="incident_role", label="Take role", case_id=inc.id, needs="reason"),
        CardAction(action="incident_resolve", label="Resolve", case_id=inc.id, style="danger", needs="resolution"),
    ]
    return Notice(kind="card", title=f"{inc.id} · {inc.title}", fields=fields, actions=actions, case_id=inc.id,
                  severity=inc.severity.value, status=inc.status.value, case_version=inc.version,
                  space=incident_space(inc, config))


def incident_views(before: Incident | None, after: Incident, config: Config,
                   now: datetime) -> list[tuple[Notice, Audience]]:
    """The incident card, posted at declare and updated in place whenever what it shows changed."""
    del now  # the card is a view of the record alone
    card = incident_card(after, config)
    if before is not None:
        old = incident_card(before, config)
        if old.model_copy(update={"case_version": None}) == card.model_copy(update={"case_version": None}):
            return []
    return [(card, space(after, config))]


# ---- linking cases -------------------------------------------------------------------------------


def link_case(inc: Incident, case: Case, uow: UnitOfWork) -> bool:
    """Make `case` part of `inc`: its thread gets a note and its card shows the incident."""
    if case.incident == inc.id:
        return False
    if case.incident is not None:
        raise InvalidTransition(f"{case.id} is already part of {case.incident}; unlink it there first.")
    case.require_open()
    case.incident = inc.id
    inc.cases.append(case.id)
    if inc.first_case_at is None or case.created_at < inc.first_case_at:
        inc.first_case_at = case.created_at
    reply(case, uow, f"Part of incident {inc.id}: {inc.title}",
          "Status updates will be posted in this thread; answer your customer from them.",
          links=[incident_link(inc, f"Open {inc.id}")])
    record(uow, case, uow.actor, "linked to incident", inc.id)
    return True


async def link_matching(inc: Incident, uow: UnitOfWork, store: Store) -> list[str]:
    """Link every open case the caller may see that matches the incident; the ids linked."""
    candidates = [c for c in await read_cases(store, await store.open_case_ids())
                  if c.incident is None and matches(inc, c)]
    linked = []
    for candidate in candidates:
        try:
            case = await uow.case(candidate.id)
        except (NotAllowed, NotFound):
            continue
        if link_case(inc, case, uow):
            linked.append(case.id)
    return linked


def _ids(ids: list[str], limit: int = 10) -> str:
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


# ---- commands ------------------------------------------------------------------------------------


async def declare(cmd: DeclareIncident, ctx: Context) -> Reply:
    config, actor = ctx.config, cmd.actor
    if not may_command(actor.person, config):
        raise NotAllowed("Only incident commanders can declare an incident (crisis.commanders or the role "
                         "incident_commander); ask one of them.")
    title = " ".join(cmd.title.split())
    if not title:
        raise UserError("Give the incident a title, e.g. /crisis declare sev1 component:checkout Checkout down.")
    unknown = [c for c in cmd.customers if c not in config.customers]
    if unknown:
        raise UserError(f"Unknown customer '{unknown[0]}' (known: {', '.join(config.customers) or 'none'}).")
    if not config.crisis.status_channels.items():
        raise UserError("crisis.status_channels is empty in the config: there is nowhere to run the incident.")
    if cmd.key and (done := await ctx.store.dedupe_result(cmd.key)) is not None:
        return Reply(text=done)
    number = int(await ctx.store.redis.incr(f"{ctx.store.keys.base}:seq:incident"))
    assert actor.person is not None

    async def work(uow: UnitOfWork) -> Reply:
        now = uow.now
        inc = Incident(id=f"INC-{number}", title=title, severity=cmd.severity or Severity.SEV2,
                       component=cmd.component.lower() if cmd.component else None,
                       keywords=[k.lower() for k in cmd.keywords], customers=list(dict.fromkeys(cmd.customers)),
                       commander=actor.person or "", roles={"commander": actor.person or ""},
                       on_call=on_call_now(config, now), created_at=now, updated_at=now)
        uow.add(inc)
        note(inc, uow, actor, "declared", f"{inc.severity.value}: {title}")
        schedule_cadence(inc, uow)
        linked = await link_matching(inc, uow, ctx.store)
        if linked:
            note(inc, uow, "Escalator", "linked automatically", _ids(linked))
        # Announce it in every status channel, with a link to the incident space.
        for platform, channel in config.crisis.status_channels.items():
            uow.say(Notice(kind="post", title=f"Incident {inc.id} declared ({inc.severity.value}): {title}",
                           text=f"Commander: {person_name(config, inc.commander)}. Linked cases: {len(linked)}.",
                           links=[incident_link(inc, "Join the incident space")], case_id=inc.id,
                           severity=inc.severity.value), ChannelPost(platform=platform, channel=channel))
        # Proactive notice: enterprise customers hear first, and their CSM is told.
        cases = await read_cases(ctx.store, linked)
        for key in affected(inc, cases):
            customer = config.customers.get(key)
            if customer is None or customer.segment != "enterprise":
                continue
            what = f" with {inc.component}" if inc.component else ""
            tell_customers(inc, uow, [key], inc.status,
                           f"We are investigating a problem{what}. We will post the next update here within "
                           f"{format_duration(cadence(inc, config))}.")
            if customer.csm:
                uow.say(Notice(kind="direct", title=f"{customer.name} is affected by {inc.id}",
                               text=f"{title}\nThey got a first notice in their channel; updates follow every "
                                    f"{format_duration(cadence(inc, config))}.",
                               links=[incident_link(inc)], case_id=inc.id), PersonDirect(person=customer.csm))
            note(inc, uow, "Escalator", "customer told", customer.name)
        tell_webhooks(inc, uow, title)
        uow.emit(IncidentDeclared(incident_id=inc.id))
        linked_text = f" Linked {len(linked)} open case{'s' if len(linked) != 1 else ''}." if linked else ""
        return Reply(text=f"Declared {inc.id} ({inc.severity.value}); you are the commander.{linked_text} "
                          f"Next status update due in {format_duration(cadence(inc, config))}.",
                     case_id=inc.id, links=[incident_link(inc)])

    return await ctx.run(work, key=cmd.key)


async def assign_role(cmd: AssignRole, ctx: Context) -> Reply:
    config, actor = ctx.config, cmd.actor
    role = cmd.role.lower()
    roles = list(dict.fromkeys(["commander", *config.crisis.roles]))
    if role not in roles:
        raise UserError(f"Unknown role '{cmd.role}' (roles: {', '.join(roles)}).")
    if cmd.person is not None and cmd.person not in config.people:
        raise UserError(f"Unknown person '{cmd.person}' (known: {', '.join(config.people)}).")

    async def work(uow: UnitOfWork) -> Reply:
        inc = await load(uow, cmd.incident_id)
        if not inc.active:
            raise InvalidTransition(f"{inc.id} is resolved; roles are closed.")
        current = inc.roles.get(role)
        runs_it = actor.person == inc.commander or may_command(actor.person, config)
        self_take = cmd.person == actor.person and current is None
        if not (runs_it or self_take or (current is not None and current == actor.person)):
            raise NotAllowed(f"Only the commander of {inc.id} can give a role someone holds; "
                             f"ask {person_name(config, inc.commander)}.")
        if cmd.person == current:
            return Reply(text=f"{person_name(config, current)} is already {role} for {inc.id}.")
        if cmd.person is None:
            if role == "commander":
                raise UserError("An incident always has a commander; hand it over instead "
                                f"(/crisis {inc.id} role commander PERSON).")
            inc.roles.pop(role, None)
            note(inc, uow, actor, "role cleared", f"{role} (was {person_name(config, current)})")
            say_in_space(inc, uow, f"{role}: nobody now", f"{person_name(config, current)} handed it back.")
            return Reply(text=f"Nobody is {role} for {inc.id} now.", case_id=inc.id)
        inc.roles[role] = cmd.person
        if role == "commander":
            inc.commander = cmd.person
        was = f" (handed over by {person_name(config, current)})" if current else ""
        note(inc, uow, actor, "role assigned", f"{role}: {person_name(config, cmd.person)}{was}")
        say_in_space(inc, uow, f"{role}: {person_name(config, cmd.person)}{was}", mentions=[cmd.person])
        uow.say(Notice(kind="page", title=f"You are {role} for {inc.id}", text=f"{inc.title}\nAssigned by "
                       f"{actor.name}.", links=[incident_link(inc)], case_id=inc.id, severity=inc.severity.value),
                PersonDirect(person=cmd.person))
        return Reply(text=f"{person_name(config, cmd.person)} is {role} for {inc.id}{was}; they were paged.",
                     case_id=inc.id)

    return await ctx.run(work, key=cmd.key)


async def show_roles(cmd: ShowRoles, ctx: Context) -> Reply:
    inc = await _read(ctx, cmd.incident_id)
    config = ctx.config
    fields = [CardField(label=role, value=person_name(config, inc.roles[role]) if role in inc.roles else "nobody")
              for role in dict.fromkeys(["commander", *config.crisis.roles])]
    return Reply(title=f"{inc.id} roles", text=inc.title, fields=fields, case_id=inc.id, links=[incident_link(inc)])


async def _read(ctx: Context, incident_id: str) -> Incident:
    inc = await ctx.store.get_record(Incident, _id(incident_id))
    if inc is None:
        raise NotFound(f"There is no incident {incident_id.upper()}; /crisis lists the active ones.")
    return inc


async def link_cases(cmd: LinkCases, ctx: Context) -> Reply:
    ids = list(dict.fromkeys(c.upper() for c in cmd.case_ids))
    if not ids:
        raise UserError("Name the cases to link, e.g. /crisis INC-3 link ESC-1042 ESC-1043.")

    async def work(uow: UnitOfWork) -> Reply:
        inc = await load(uow, cmd.incident_id)
        if not inc.active:
            raise InvalidTransition(f"{inc.id} is resolved; link cases to an active incident.")
        linked = [case_id for case_id in ids if link_case(inc, await uow.case(case_id), uow)]
        if not linked:
            return Reply(text=f"Already linked to {inc.id}: {_ids(ids)}.", case_id=inc.id)
        note(inc, uow, cmd.actor, "linked", _ids(linked))
        say_in_space(inc, uow, f"Linked {len(linked)} case{'s' if len(linked) != 1 else ''}", _ids(linked))
        return Reply(text=f"Linked to {inc.id}: {_ids(linked)}.", case_id=inc.id)

    return await ctx.run(work, key=cmd.key)


async def unlink_case(cmd: UnlinkCase, ctx: Context) -> Reply:
    async def work(uow: UnitOfWork) -> Reply:
        inc = await load(uow, cmd.incident_id)
        case = await uow.case(cmd.case_id)
        if case.incident != inc.id:
            raise InvalidTransition(f"{case.id} is not linked to {inc.id}.")
        case.incident = None
        inc.cases.remove(case.id)
        reply(case, uow, f"No longer part of incident {inc.id}", f"Unlinked by {cmd.actor.name}.")
        record(uow, case, cmd.actor, "unlinked from incident", inc.id)
        note(inc, uow, cmd.actor, "unlinked", case.id)
        return Reply(text=f"{case.id} unlinked from {inc.id}.", case_id=inc.id)

    return await ctx.run(work, key=cmd.key)


async def show_cases(cmd: ShowIncidentCases, ctx: Context) -> Reply:
    inc = await _read(ctx, cmd.incident_id)
    cases = await read_cases(ctx.store, inc.cases)
    lines = [f"{c.id} · {c.tier} · {customer_label(ctx.config, c.customer)} · {c.status.value}"
             + (f" · {c.title}" if may_access(c, cmd.actor, ctx.config) else " · (private)") for c in cases]
    return Reply(title=f"{inc.id}: {len(cases)} linked case{'s' if len(cases) != 1 else ''}",
                 text="\n".join(lines) or "No cases are linked yet.", case_id=inc.id)


def parse_status(word: str | None, current: IncidentStatus) -> IncidentStatus:
    if word is None:
        return current if current in UPDATE_STATUSES else IncidentStatus.INVESTIGATING
    try:
        status = IncidentStatus(word.lower())
    except ValueError:
        status = None
    if status not in UPDATE_STATUSES:
        raise UserError(f"Unknown status '{word}' (use investigating, identified or monitoring; "
                        "to finish, /crisis INC-n resolve TEXT).")
    assert status is not None
    return status


async def publish(inc: Incident, uow: UnitOfWork, store: Store, actor: Actor, status: IncidentStatus,
                  text: str) -> list[Case]:
    """One status update everywhere it goes; returns the linked cases as read."""
    config, now = uow.config, uow.now
    due = inc.next_update_due
    late = max(timedelta(), now - due) if due is not None else timedelta()
    inc.updates.append(IncidentUpdate(status=status, text=text, by=actor.name, at=now, due_at=due, late_by=late))
    inc.status = status
    label = STATUS_LABEL[status]
    punctual = "on time" if late <= timedelta() else f"{format_duration(late)} late"
    note(inc, uow, actor, "status update", f"{label} ({punctual}): {text}")
    say_in_space(inc, uow, f"Update {len(inc.updates)} · {label}", f"{text}\nPosted by {actor.name}, {punctual}.")
    for platform, channel in config.crisis.status_channels.items():
        uow.say(Notice(kind="post", title=f"{inc.id} · {label}: {inc.title}", text=text, case_id=inc.id,
                       links=[incident_link(inc)], bulk=True), ChannelPost(platform=platform, channel=channel))
    cases = await read_cases(store, inc.cases)
    for case in cases:
        uow.say(Notice(kind="reply", title=f"{inc.id} update · {label}", text=text, case_id=case.id,
                       links=[incident_link(inc)], private=case.private, bulk=True), thread(case, config))
    tell_customers(inc, uow, affected(inc, cases), status, text)
    tell_webhooks(inc, uow, text)
    return cases


async def post_update(cmd: PostUpdate, ctx: Context) -> Reply:
    text = " ".join(cmd.text.split())
    if not text:
        raise UserError("An update needs the text customers will read, e.g. /crisis INC-3 update identified "
                        "A database failover is in progress.")

    async def work(uow: UnitOfWork) -> Reply:
        inc = await load(uow, cmd.incident_id)
        if not inc.active:
            raise InvalidTransition(f"{inc.id} is resolved; it takes no more updates.")
        status = parse_status(cmd.status, inc.status)
        cases = await publish(inc, uow, ctx.store, cmd.actor, status, text)
        schedule_cadence(inc, uow)
        customers = [c for c in affected(inc, cases) if uow.config.customers.get(c)]
        return Reply(text=f"Update {len(inc.updates)} of {inc.id} posted ({STATUS_LABEL[status]}) to "
                          f"{len(cases)} case thread{'s' if len(cases) != 1 else ''} and "
                          f"{len(customers)} customer{'s' if len(customers) != 1 else ''}. Next one due in "
                          f"{format_duration(cadence(inc, uow.config))}.", case_id=inc.id)

    return await ctx.run(work, key=cmd.key)


async def add_note(cmd: AddNote, ctx: Context) -> Reply:
    text = " ".join(cmd.text.split())
    if not text:
        raise UserError("A note needs text, e.g. /crisis INC-3 note failover started on db-2.")

    async def work(uow: UnitOfWork) -> Reply:
        inc = await load(uow, cmd.incident_id)
        inc.notes.append(IncidentNote(text=text, by=cmd.actor.name, at=uow.now))
        note(inc, uow, cmd.actor, "note", text)
        say_in_space(inc, uow, f"Internal note by {cmd.actor.name}", text)
        return Reply(text=f"Note added to {inc.id} (internal: customers never see it).", case_id=inc.id)

    return await ctx.run(work, key=cmd.key)


async def resolve(cmd: ResolveIncident, ctx: Context) -> Reply:
    text = " ".join(cmd.text.split())
    if not text:
        raise UserError("Say how it was resolved; customers will read it, e.g. /crisis INC-3 resolve Checkout "
                        "works again since 14:10.")
    config = ctx.config

    async def work(uow: UnitOfWork) -> Reply:
        inc = await load(uow, cmd.incident_id)
        if not inc.active:
            raise InvalidTransition(f"{inc.id} is resolved already.")
        cases = await publish(inc, uow, ctx.store, cmd.actor, IncidentStatus.RESOLVED, text)
        inc.resolved_at = uow.now
        inc.next_update_due = None
        uow.cancel(*timer_ids(inc))
        note(inc, uow, cmd.actor, "resolved", text)
        resolved, asked = [], []
        for seen in cases:
            if not seen.is_open:
                continue
            if cmd.resolve_cases:
                try:
                    case = await uow.case(seen.id)
                except (NotAllowed, NotFound):
                    case = None
                if case is not None and case.resolve(cmd.actor.person, uow.now, f"Resolved with {inc.id}: {text}"):
                    paging.stop(case, f"resolved with {inc.id}", uow.now, uow, quiet=True)
                    sla.meet(case, "acknowledge", uow.now, uow)
                    sla.meet(case, "resolve", uow.now, uow)
                    uow.cancel(vendor_nudge_timer(case))
                    reply(case, uow, f"Resolved with incident {inc.id}", text)
                    record(uow, case, cmd.actor, "resolved", f"with {inc.id}: {text}")
                    uow.emit(CaseResolved(case_id=case.id, tier=case.tier))
                    resolved.append(case.id)
                    continue
            who = seen.owner
            ask = (f"{inc.id} is resolved: {text}\nPlease confirm with the customer, then resolve it: "
                   f"/case {seen.id} resolve RESOLUTION")
            if who:
                uow.say(Notice(kind="direct", title=f"Can {seen.id} be resolved?", text=ask, case_id=seen.id,
                               links=[ThreadLink(thread=thread(seen, config).thread, label=f"Open {seen.id}")],
                               private=seen.private), PersonDirect(person=who))
            else:
                uow.say(Notice(kind="reply", title=f"Can {seen.id} be resolved?", text=ask, case_id=seen.id,
                               private=seen.private), thread(seen, config))
            asked.append(seen.id)
        entries = await ctx.store.timeline(inc.id, "incident") + [e for r, e in uow.timeline if r is inc]
        written = report(inc, entries, cases, config)
        say_in_space(inc, uow, f"Post-incident report: {inc.id}", written)
        await upload_report(inc, uow, ctx.store, written)
        uow.emit(IncidentResolved(incident_id=inc.id))
        done = f" Resolved {len(resolved)} linked case{'s' if len(resolved) != 1 else ''}." if resolved else ""
        owners = f" Asked the owners of {len(asked)} case{'s' if len(asked) != 1 else ''} to resolve them." \
            if asked else ""
        return Reply(text=f"{inc.id} resolved; the final update went out and the report is in the incident space."
                          f"{done}{owners}", case_id=inc.id)

    return await ctx.run(work, key=cmd.key)


# ---- the post-incident report ----------------------------------------------------------------------


def report(inc: Incident, timeline: list[TimelineEntry], cases: list[Case], config: Config) -> str:
    """Timeline, durations, update punctuality, linked cases by tier and customer, customers told."""
    declared = inc.created_at
    lines = [f"# {inc.id} · {inc.title}", f"Severity {inc.severity.value}; commander "
             f"{person_name(config, inc.commander)}; status {STATUS_LABEL[inc.status]}.", "", "## Durations"]
    if inc.first_case_at is not None and inc.first_case_at <= declared:
        lines.append(f"- Time to declare (from the first linked case): {format_duration(declared - inc.first_case_at)}")
    else:
        lines.append("- Time to declare: declared before any linked case was opened")
    if inc.updates:
        lines.append(f"- Time to first update: {format_duration(inc.updates[0].at - declared)}")
    if inc.resolved_at is not None:
        lines.append(f"- Time to resolve: {format_duration(inc.resolved_at - declared)}")
    lines += ["", "## Update punctuality"]
    on_time = sum(1 for u in inc.updates if u.late_by <= timedelta())
    lines.append(f"- {on_time} of {len(inc.updates)} updates on time")
    for i, u in enumerate(inc.updates, 1):
        late = "on time" if u.late_by <= timedelta() else f"{format_duration(u.late_by)} late"
        lines.append(f"- Update {i} at {local_time(config, u.at)} ({STATUS_LABEL[u.status]}): {late}")
    lines += ["", f"## Linked cases ({len(cases)})"]
    for tier, n in sorted(Counter(c.tier for c in cases).items()):
        lines.append(f"- {tier_label(config, tier)}: {n}")
    for customer, n in sorted(Counter(c.customer or "" for c in cases).items()):
        lines.append(f"- {customer_label(config, customer or None)}: {n}")
    lines += ["", "## Customers told"]
    for key, at in sorted(inc.told.items(), key=lambda kv: kv[1]):
        lines.append(f"- {customer_label(config, key)}: first told {local_time(config, at)}")
    if not inc.told:
        lines.append("- none")
    lines += ["", "## Timeline"]
    lines += [f"- {local_time(config, e.at)} {e.actor}: {e.action}" + (f" ({e.detail})" if e.detail else "")
              for e in timeline]
    return "\n".join(lines)


def report_file(inc: Incident, text: str) -> FileRef:
    """The report as `INC-n-report.md`, scrubbed like the text posted beside it (a file is not)."""
    body, _ = scrub(text)
    return FileRef(filename=f"{inc.id}-report.md", mime_type="text/markdown",
                   data_b64=base64.b64encode((body + "\n").encode()).decode())


async def upload_report(inc: Incident, uow: UnitOfWork, store: Store, text: str) -> None:
    """The report as a Markdown file in the incident space, on the platforms that take files.

    The space is where its card lives (a channel of its own, or the status channel), read from
    the thread delivery recorded; the status channel if the card is not posted yet.
    """
    notice = Notice(kind="upload", title=f"Post-incident report: {inc.id}", case_id=inc.id,
                    file=report_file(inc, text))
    for platform, channel in uow.config.crisis.status_channels.items():
        spec = registry.get(platform)
        if spec is None or not spec.files:
            continue
        ref = await store.thread(inc.thread, platform)
        uow.say(notice, ChannelPost(platform=platform, channel=ref.channel if ref else channel))


async def show_report(cmd: ShowReport, ctx: Context) -> Reply:
    """The report for the caller, and again as a file in the incident space where files go."""
    inc = await _read(ctx, cmd.incident_id)
    cases = await read_cases(ctx.store, inc.cases)
    text = report(inc, await ctx.store.timeline(inc.id, "incident"), cases, ctx.config)
    answer = Reply(title=f"Report: {inc.id}", text=text, case_id=inc.id, links=[incident_link(inc)])

    async def work(uow: UnitOfWork) -> Reply:
        await upload_report(inc, uow, ctx.store, text)
        return Reply(text=f"Report of {inc.id} uploaded.")  # what the key remembers (not the whole report)

    await ctx.run(work, key=cmd.key)  # a repeated request (same key) uploads nothing more
    return answer


async def update_form(cmd: UpdateForm, ctx: Context) -> Reply:
    """The Post update form, prefilled with the last update's status and text (if there was one)."""
    inc = await _read(ctx, cmd.incident_id)
    if not inc.active:
        raise InvalidTransition(f"{inc.id} is resolved; it takes no more updates.")
    last = inc.updates[-1] if inc.updates else None
    status = last.status if last else inc.status
    prefill = {"status": status.value if status in UPDATE_STATUSES else IncidentStatus.INVESTIGATING.value}
    if last is not None:
        prefill["text"] = last.text
    return Reply(title=f"Post an update for {inc.id}", text=inc.title, case_id=inc.id, form="incident_update",
                 prefill=prefill)


async def list_incidents(cmd: ListIncidents, ctx: Context) -> Reply:
    ids = await active_ids(ctx.store)
    found = [i for i in [await ctx.store.get_record(Incident, i) for i in ids] if i is not None]
    if not found:
        return Reply(text="No active incidents. Declare one with /crisis declare [sev1|sev2|sev3] TITLE.")
    lines = [f"{i.id} · {i.severity.value} · {STATUS_LABEL[i.status]} · {i.title} · commander "
             f"{person_name(ctx.config, i.commander)} · {len(i.cases)} cases" for i in found]
    return Reply(title="Active incidents", text="\n".join(lines))


# ---- the cadence ---------------------------------------------------------------------------------------


async def update_due(cmd: UpdateDue, ctx: Context) -> Reply:
    """The update fell due: remind once, then keep the card's "overdue by N min" current."""
    async def work(uow: UnitOfWork) -> Reply:
        inc = await load(uow, cmd.incident_id)
        if not inc.active or len(inc.updates) != cmd.update:
            return Reply(text="No reminder needed.")
        # The card changes (overdue by N min), so its version does and every platform updates it.
        inc.overdue_seen_at = uow.now
        uow.schedule(Timer(timer_ids(inc)[0], uow.now + OVERDUE_TICK, cmd))
        if inc.reminded:
            return Reply(text="Card brought up to date.")
        inc.reminded = True
        who = inc.roles.get("communications") or inc.commander
        say_in_space(inc, uow, f"Status update due now for {inc.id}",
                     f"{person_name(uow.config, who)}, please post one: /crisis {inc.id} update STATUS TEXT",
                     mentions=[who])
        note(inc, uow, "Escalator", "update reminder", person_name(uow.config, who))
        return Reply(text="Reminded.")

    return await ctx.run(work)


async def update_overdue(cmd: UpdateOverdue, ctx: Context) -> Reply:
    async def work(uow: UnitOfWork) -> Reply:
        inc = await load(uow, cmd.incident_id)
        if not inc.active or len(inc.updates) != cmd.update or inc.overdue_paged:
            return Reply(text="No page needed.")
        inc.overdue_paged = True
        inc.overdue_seen_at = uow.now
        late = uow.now - (inc.next_update_due or uow.now)
        uow.say(Notice(kind="page", title=f"{inc.id} status update overdue by {minutes(late)}",
                       text=f"{inc.title}\nCustomers are waiting: /crisis {inc.id} update STATUS TEXT",
                       links=[incident_link(inc)], case_id=inc.id, severity=inc.severity.value),
                PersonDirect(person=inc.commander))
        note(inc, uow, "Escalator", "update overdue", f"paged {person_name(uow.config, inc.commander)}")
        return Reply(text="Paged.")

    return await ctx.run(work)


# ---- a case opened during an incident ----------------------------------------------------------------


async def link_new_case(event: Event, uow: UnitOfWork) -> None:
    """A new case that matches an active incident joins it, and its customer hears the latest update."""
    assert isinstance(event, CaseOpened)
    case = await uow.case(event.case_id)
    if case.incident is not None:
        return
    revision = uow.revisions.get(Incident.kind, "0") if uow.revisions is not None else None
    for incident_id in await active_ids(uow.store, revision):
        inc = await uow.get(Incident, incident_id)
        if not inc.active or not matches(inc, case):
            continue
        link_case(inc, case, uow)
        note(inc, uow, "Escalator", "linked automatically", case.id)
        uow.answer(f"Linked to {inc.id}, an ongoing incident; customers are being updated.")
        if case.customer and case.customer not in inc.told:
            last = inc.updates[-1] if inc.updates else None
            tell_customers(inc, uow, [case.customer], last.status if last else inc.status,
                           last.text if last else "We are investigating a problem and will update you here.")
        return


HANDLERS: dict[type[Command], Handler] = {
    DeclareIncident: declare, AssignRole: assign_role, ShowRoles: show_roles, LinkCases: link_cases,
    UnlinkCase: unlink_case, ShowIncidentCases: show_cases, PostUpdate: post_update, AddNote: add_note,
    ResolveIncident: resolve, ShowReport: show_report, ListIncidents: list_incidents, UpdateDue: update_due,
    UpdateOverdue: update_overdue, UpdateForm: update_form,
}
EVENT_HANDLERS: dict[type[Event], list[EventHandler]] = {CaseOpened: [link_new_case]}
__all__ = ["EVENT_HANDLERS", "HANDLERS", "incident_thread", "incident_views"]
