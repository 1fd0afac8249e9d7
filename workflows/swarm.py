"""Swarming: pull the right experts into one thread, and leave knowledge behind.

A swarm starts on a case (by hand, or when a `swarm: true` routing rule opened it). The skills it
needs come from the command or the case (workflows.matching.skills_needed with `swarm.skills`);
the case owner and the tier's on-call are members from the start; the experts to invite are
chosen by greedy set cover (workflows.matching.match) and each pick is explained in the swarm
thread. An invitation declined or not answered within `swarm.invite_timeout` goes to the next
best person for what is still missing; when nobody is left, the thread and the lead are told.
Ending the swarm (or resolving the case) records the resolution, thanks the members and drafts
a knowledge-base article (workflows.knowledge).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from bot.access import may_access
from bot.bus import Context, EventHandler, Handler
from bot.commands import (
    AddSwarmMember,
    Command,
    DeclineSwarm,
    EndSwarm,
    ExpireInvitation,
    InviteSkill,
    JoinSwarm,
    LeaveSwarm,
    ListSwarms,
    SetSwarmLead,
    StartSwarm,
)
from bot.config import Config
from bot.durations import format_duration
from bot.errors import InvalidTransition, NotAllowed, NotFound, UserError
from bot.events import CaseOpened, CaseResolved, Event
from bot.knowledge import KbArticle
from bot.messages import Audience, CardAction, CardField, InThread, Notice, PersonDirect, Reply, ThreadLink
from bot.model import SYSTEM, Actor, Case
from bot.store import Store
from bot.swarms import Invitation, Swarm
from bot.uow import Timer, UnitOfWork
from workflows import knowledge, paging, sla
from workflows.cards import mention, person_name, record, reply, tell
from workflows.matching import (
    FAIRNESS_WINDOW,
    Candidate,
    Pick,
    match,
    next_candidate,
    recent_invitations,
    skills_needed,
    suggest_skills,
)
from workflows.policy import who_is_on_call

# ---- who knows what, and how busy they are ---------------------------------------------------


def round_to_minute(delta: timedelta) -> timedelta:
    """Waits are shown to the minute; a timer that fires a millisecond early still means "10m"."""
    return timedelta(minutes=round(delta.total_seconds() / 60)) if delta >= timedelta(minutes=1) else delta


def skills_of(config: Config) -> dict[str, set[str]]:
    return {key: {s.strip().lower() for s in p.skills} for key, p in config.people.items()}


def known_skills(config: Config) -> set[str]:
    return set().union(*skills_of(config).values()) if config.people else set()


def check_skills(skills: Iterable[str], config: Config) -> list[str]:
    """The skills lower-cased; an unknown one is refused with the closest known ones."""
    known = known_skills(config)
    out = []
    for skill in skills:
        s = skill.strip().lower()
        if s and s not in known:
            close = suggest_skills(s, known)
            hint = f" (did you mean {' or '.join(close)}?)" if close else f" (known: {', '.join(sorted(known))})"
            raise UserError(f"Nobody has the skill '{s}'{hint}.")
        if s and s not in out:
            out.append(s)
    return out


async def candidates(store: Store, config: Config, now: datetime) -> list[Candidate]:
    """Everyone configured, with their open cases, active swarms and invitations of the last 7 days."""
    keys = list(config.people)
    pipe = store.redis.pipeline(transaction=False)
    for key in keys:
        pipe.scard(store.keys.open_by("owner", key))
        pipe.scard(store.keys.index(Swarm.kind, "member", key))
    counts = await pipe.execute()
    since = now - FAIRNESS_WINDOW
    recent = await store.redis.zrangebyscore(store.keys.created(Swarm.kind), int(since.timestamp() * 1000), "+inf")
    invited: dict[str, list[datetime]] = {}
    for raw in recent:
        swarm = await store.get_record(Swarm, raw.decode() if isinstance(raw, bytes) else str(raw))
        for invitation in swarm.invitations if swarm else []:
            invited.setdefault(invitation.person, []).append(invitation.at)
    return [Candidate.from_person(key, config.people[key], config.timezone, open_cases=int(counts[2 * i]),
                                  swarms=int(counts[2 * i + 1]),
                                  invitations_7d=recent_invitations(invited.get(key, []), now))
            for i, key in enumerate(keys)]


def on_call(case: Case, config: Config, now: datetime) -> str | None:
    """Who is on call for the case's tier now: the first schedule its paging policy names."""
    tier = config.find_tier(case.tier)
    policy = config.policies.get(tier.policy or "") if tier else None
    for step in policy.steps if policy else []:
        for target in step.notify:
            kind, _, name = target.partition(":")
            if kind == "schedule" and name in config.schedules:
                return who_is_on_call(config.schedules[name], now, config.tz).now
    return None


def swarm_channels(case: Case, config: Config) -> tuple[dict[str, str], bool]:
    """Where the swarm thread lives: `swarm.channel`, or for a private case its tier's private channels."""
    if not case.private:
        return dict(config.swarm.channel.items()), False
    tier = config.find_tier(case.tier)
    return (dict(tier.private_channels.items()) if tier else {}), True


# ---- saying things ------------------------------------------------------------------------------


def thread_of(swarm: Swarm) -> InThread:
    return InThread(thread=swarm.thread, channels=swarm.channels, private=swarm.private)


def say(swarm: Swarm, uow: UnitOfWork, title: str, text: str = "", *, people: Iterable[str] = ()) -> None:
    """A reply in the swarm thread."""
    uow.say(Notice(kind="reply", title=title, text=text, case_id=swarm.id, private=swarm.private,
                   mentions=[mention(uow.config, p) for p in people]), thread_of(swarm))


def _link(swarm: Swarm) -> ThreadLink:
    return ThreadLink(thread=swarm.thread, label="Open the swarm thread")


def summary(case: Case, config: Config) -> str:
    """The case as an invitation shows it: a private case's title without personal data or customer."""
    if not case.private:
        return case.title
    return knowledge.scrub_article_text(case.title, config)


def invite(swarm: Swarm, case: Case, pick: Pick, uow: UnitOfWork, *, why: str = "") -> None:
    """Ask `pick` by DM (Join / Decline), and give them until `swarm.invite_timeout` to answer."""
    config, now = uow.config, uow.now
    swarm.invitations.append(Invitation(person=pick.key, skills=list(pick.covers), at=now))
    swarm.credit_of(pick.key).invited = True
    if pick.key not in case.informed:  # an invited expert may see the case (bot.access), private or not
        case.informed.append(pick.key)
    text = (f"{summary(case, config)}\nYou were picked for: {', '.join(pick.covers)}." + (f"\n{why}" if why else "")
            + f"\nNo answer in {format_duration(config.swarm.invite_timeout)} and the next expert is asked.")
    uow.say(Notice(kind="direct", title=f"Join the swarm on {case.id}?", text=text, case_id=case.id,
                   private=case.private, links=[_link(swarm)],
                   actions=[CardAction(action="swarm_join", label="Join", case_id=case.id, style="primary"),
                            CardAction(action="swarm_decline", label="Decline", case_id=case.id)]),
            PersonDirect(person=pick.key))
    uow.schedule(Timer(invite_timer(case.id, pick.key), now + config.swarm.invite_timeout,
                       ExpireInvitation(case_id=case.id, person=pick.key)))


def invite_timer(case_id: str, person: str) -> str:
    return f"{case_id}:swarm-invite:{person}"


def missing(swarm: Swarm, config: Config) -> list[str]:
    """Needed skills no member has and no pending invitation is for."""
    covered = set(swarm.covered(skills_of(config)))
    asked = {s for i in swarm.pending() for s in i.skills}
    return [s for s in swarm.needed if s not in covered and s not in asked]


async def fill(swarm: Swarm, case: Case, skills: list[str], uow: UnitOfWork, *, why: str) -> list[str]:
    """Invite the next best people for `skills`; say in the thread (and to the lead) what nobody covers."""
    people = await candidates(uow.store, uow.config, uow.now)
    left = list(skills)
    lines = []
    while left:
        pick = next_candidate(left, people, uow.now, swarm.asked())
        if pick is None:
            break
        invite(swarm, case, pick, uow, why=why)
        lines.append(pick.line)
        left = [s for s in left if s not in pick.covers]
    if lines:
        say(swarm, uow, f"Invited {len(lines)} more ({why})", "\n".join(lines))
    if left:
        nobody(swarm, case, left, uow)
    return lines


def nobody(swarm: Swarm, case: Case, skills: list[str], uow: UnitOfWork, *, why: str = "") -> None:
    """Say in the thread, and to the lead, which needed skills nobody will cover (and why, if known)."""
    text = why or f"Nobody left to invite for {', '.join(skills)}: everyone with it was asked or is not free."
    say(swarm, uow, f"Nobody left for {', '.join(skills)}", text)
    if swarm.lead and swarm.lead in uow.config.people:
        uow.say(Notice(kind="direct", title=f"Swarm on {case.id}: nobody left for {', '.join(skills)}",
                       text=text + " Invite someone by name (/swarm " + case.id + " add PERSON).",
                       case_id=case.id, private=case.private, links=[_link(swarm)]),
                PersonDirect(person=swarm.lead))


# ---- the card -------------------------------------------------------------------------------------


def swarm_card(swarm: Swarm, config: Config, now: datetime) -> Notice:
    """The card at the root of the swarm thread: needed skills covered or missing, members, lead, status."""
    have = skills_of(config)
    covered = swarm.covered(have)
    wanted = set(swarm.needed)
    members = [f"{person_name(config, m)} ({', '.join(sorted(have.get(m, set()) & wanted)) or 'no needed skill'})"
               for m in swarm.members]
    end = swarm.ended_at or now
    fields = [
        CardField(label="Case", value=swarm.id),
        CardField(label="Covered", value=", ".join(covered) or "nothing yet"),
        CardField(label="Missing", value=", ".join(s for s in swarm.needed if s not in covered) or "nothing"),
        CardField(label="Members", value="; ".join(members) or "nobody yet"),
        CardField(label="Lead", value=person_name(config, swarm.lead)),
        CardField(label="Status", value="Active" if swarm.active else "Ended"),
        CardField(label="Elapsed", value=format_duration(end - swarm.created_at)),
    ]
    if pending := swarm.pending():
        fields.append(CardField(label="Invited", value=", ".join(person_name(config, i.person) for i in pending)))
    if swarm.resolution and not swarm.active:
        fields.append(CardField(label="Resolution", value=swarm.resolution))
    actions = [CardAction(action="swarm_join", label="Join", case_id=swarm.id, style="primary"),
               CardAction(action="swarm_leave", label="Leave", case_id=swarm.id),
               CardAction(action="swarm_end", label="End swarm", case_id=swarm.id, style="danger",
                          needs="resolution")] if swarm.active else []
    return Notice(kind="card", title=f"Swarm on {swarm.id} · {swarm.title}", fields=fields, actions=actions,
                  case_id=swarm.id, private=swarm.private, status=swarm.status, case_version=swarm.version)


def swarm_views(before: Swarm | None, after: Swarm, config: Config, now: datetime) -> list[tuple[Notice, Audience]]:
    """The swarm card, whenever what it shows changed."""
    card = swarm_card(after, config, now)
    if before is not None:
        old = swarm_card(before, config, now)
        if old.model_copy(update={"case_version": None}) == card.model_copy(update={"case_version": None}):
            return []
    return [(card, thread_of(after))]


# ---- commands -----------------------------------------------------------------------------------


def _who(actor: Actor) -> str:
    if not actor.person:
        raise NotAllowed("Only people in the Escalator config can take part in a swarm; ask an admin to add you.")
    return actor.person


def _known(person: str, config: Config) -> str:
    key = person.lower().lstrip("@")
    if key not in config.people:
        raise NotFound(f"Unknown person '{person}' (known: {', '.join(config.people)}).")
    return key


async def _active(uow: UnitOfWork, case_id: str) -> tuple[Swarm, Case]:
    """The case (access-checked) and its active swarm, or the one clear refusal."""
    case = await uow.case(case_id)
    try:
        swarm = await uow.get(Swarm, case.id)
    except NotFound:
        raise NotFound(f"{case.id} has no swarm; start one with /swarm {case.id}.") from None
    if not swarm.active:
        raise InvalidTransition(f"The swarm on {case.id} has ended.")
    return swarm, case


async def start_swarm(cmd: StartSwarm, ctx: Context) -> Reply:
    config = ctx.config
    explicit = check_skills(cmd.skills, config)

    async def work(uow: UnitOfWork) -> Reply:
        case = await uow.case(cmd.case_id)
        case.require_open()
        existing = await uow.store.get_record(Swarm, case.id)
        if existing is not None:
            state = "already has a swarm" if existing.active else "had a swarm, which has ended"
            raise InvalidTransition(f"{case.id} {state}; one swarm per case (join it: /swarm {case.id} join).")
        customer = config.customers.get(case.customer) if case.customer else None
        needed = skills_needed(explicit, case.category, case.title, customer.segment if customer else None,
                               config.swarm.skills)
        now = uow.now
        # The owner and the tier's on-call from the start, and whoever asked for the swarm by hand.
        starter = cmd.actor.person if cmd.actor.person in config.people else None
        members = [p for p in dict.fromkeys([case.owner, on_call(case, config, now), starter])
                   if p and p in config.people]
        channels, private = swarm_channels(case, config)
        swarm = Swarm(id=case.id, created_at=now, title=case.title, private=private, channels=channels,
                      needed=needed, lead=case.owner or (members[0] if members else None),
                      started_by=cmd.actor.name, note=cmd.note)
        for person in members:
            swarm.add_member(person, now)
            if person not in case.informed:
                case.informed.append(person)
        uow.add(swarm)
        found = match(needed, await candidates(uow.store, config, now), now, cap=cmd.experts or config.swarm.experts,
                      always_include=members)
        for pick in found.picks:
            invite(swarm, case, pick, uow)
        lines = [f"Needed: {', '.join(needed) or 'no skills named (add some: /swarm ' + case.id + ' invite skill:X)'}"]
        if members:
            lines.append("Members from the start: " + ", ".join(person_name(config, m) for m in members))
        if found.picks:
            lines += ["Invited (greedy set cover: the fewest free people covering the most missing skills):",
                      *found.lines]
        if cmd.note:
            lines.append(f"Note: {cmd.note}")
        say(swarm, uow, f"Swarm started by {cmd.actor.name}", "\n".join(lines), people=members)
        if found.uncovered:
            nobody(swarm, case, [u.skill for u in found.uncovered], uow,
                   why="\n".join(u.line for u in found.uncovered))
        reply(case, uow, f"Swarm started by {cmd.actor.name}", f"Needed: {', '.join(needed) or 'none named'}",
              links=[_link(swarm)])
        record(uow, case, cmd.actor, "swarm started",
               f"needs {', '.join(needed) or 'nothing named'}; invited "
               f"{', '.join(p.name for p in found.picks) or 'nobody'}")
        invited = ", ".join(p.name for p in found.picks) or "nobody"
        return Reply(text=f"Swarm started on {case.id}; invited {invited}.", case_id=case.id, links=[_link(swarm)])

    return await ctx.run(work, key=cmd.key)


async def join_swarm(cmd: JoinSwarm, ctx: Context) -> Reply:
    async def work(uow: UnitOfWork) -> Reply:
        swarm, case = await _active(uow, cmd.case_id)
        who = _who(cmd.actor)
        if not swarm.add_member(who, uow.now):
            raise InvalidTransition(f"You are already in the swarm on {case.id}.")
        if who not in case.informed:
            case.informed.append(who)
        uow.cancel(invite_timer(case.id, who))
        skills = sorted(skills_of(uow.config).get(who, set()) & set(swarm.needed))
        say(swarm, uow, f"{cmd.actor.name} joined", f"Brings: {', '.join(skills) or 'no needed skill'}")
        record(uow, case, cmd.actor, "joined the swarm")
        return Reply(text=f"You joined the swarm on {case.id}.", case_id=case.id, links=[_link(swarm)])

    return await ctx.run(work, key=cmd.key)


async def leave_swarm(cmd: LeaveSwarm, ctx: Context) -> Reply:
    async def work(uow: UnitOfWork) -> Reply:
        swarm, case = await _active(uow, cmd.case_id)
        who = _who(cmd.actor)
        if not swarm.remove_member(who, uow.now):
            raise InvalidTransition(f"You are not in the swarm on {case.id}.")
        gone = [s for s in swarm.needed if s in skills_of(uow.config).get(who, set())
                and s not in swarm.covered(skills_of(uow.config))]
        say(swarm, uow, f"{cmd.actor.name} left", f"No longer covered: {', '.join(gone)}" if gone else "")
        record(uow, case, cmd.actor, "left the swarm")
        return Reply(text=f"You left the swarm on {case.id}.", case_id=case.id)

    return await ctx.run(work, key=cmd.key)


async def _no_answer(swarm: Swarm, case: Case, person: str, state: str, uow: UnitOfWork) -> None:
    """A declined or expired invitation: ask the next best person for what it was meant to cover."""
    invitation = swarm.invitation(person)
    assert invitation is not None
    invitation.state = "declined" if state == "declined" else "timed_out"
    invitation.answered_at = uow.now
    still = [s for s in invitation.skills if s in missing(swarm, uow.config)]
    name = person_name(uow.config, person)
    waited = format_duration(round_to_minute(uow.now - invitation.at))
    verb = "declined" if state == "declined" else f"did not answer in {waited}"
    say(swarm, uow, f"{name} {verb}")
    record(uow, case, SYSTEM if state != "declined" else name, f"swarm invitation {invitation.state.replace('_', ' ')}",
           name)
    if still:
        await fill(swarm, case, still, uow, why=f"instead of {name}")


async def decline_swarm(cmd: DeclineSwarm, ctx: Context) -> Reply:
    async def work(uow: UnitOfWork) -> Reply:
        swarm, case = await _active(uow, cmd.case_id)
        who = _who(cmd.actor)
        invitation = swarm.invitation(who)
        if invitation is None or invitation.state != "pending":
            raise InvalidTransition(f"You have no open invitation to the swarm on {case.id}.")
        uow.cancel(invite_timer(case.id, who))
        await _no_answer(swarm, case, who, "declined", uow)
        return Reply(text=f"You declined the swarm on {case.id}; the next expert is being asked.", case_id=case.id)

    return await ctx.run(work, key=cmd.key)


async def expire_invitation(cmd: ExpireInvitation, ctx: Context) -> Reply:
    async def work(uow: UnitOfWork) -> Reply:
        try:
            swarm, case = await _active(uow, cmd.case_id)
        except (NotFound, InvalidTransition):
            return Reply(text="swarm ended")
        invitation = swarm.invitation(cmd.person)
        if invitation is None or invitation.state != "pending":
            return Reply(text="answered already")
        await _no_answer(swarm, case, cmd.person, "timed_out", uow)
        return Reply(text="next expert invited")

    return await ctx.run(work)


async def add_member(cmd: AddSwarmMember, ctx: Context) -> Reply:
    person = _known(cmd.person, ctx.config)

    async def work(uow: UnitOfWork) -> Reply:
        swarm, case = await _active(uow, cmd.case_id)
        if not swarm.add_member(person, uow.now):
            raise InvalidTransition(f"{person_name(uow.config, person)} is already in the swarm on {case.id}.")
        if person not in case.informed:
            case.informed.append(person)
        uow.cancel(invite_timer(case.id, person))
        name = person_name(uow.config, person)
        say(swarm, uow, f"{cmd.actor.name} added {name}", people=[person])
        if person != cmd.actor.person:
            uow.say(Notice(kind="direct", title=f"{cmd.actor.name} added you to the swarm on {case.id}",
                           text=summary(case, uow.config), case_id=case.id, private=case.private,
                           links=[_link(swarm)]), PersonDirect(person=person))
        record(uow, case, cmd.actor, "swarm member added", name)
        return Reply(text=f"{name} is in the swarm on {case.id}.", case_id=case.id)

    return await ctx.run(work, key=cmd.key)


async def set_lead(cmd: SetSwarmLead, ctx: Context) -> Reply:
    person = _known(cmd.person, ctx.config)

    async def work(uow: UnitOfWork) -> Reply:
        swarm, case = await _active(uow, cmd.case_id)
        name = person_name(uow.config, person)
        if person not in swarm.members:
            raise InvalidTransition(f"{name} is not in the swarm on {case.id}; add them first "
                                    f"(/swarm {case.id} add {person}).")
        if swarm.lead == person:
            return Reply(text=f"{name} already leads the swarm on {case.id}.", case_id=case.id)
        swarm.lead = person
        say(swarm, uow, f"{name} leads the swarm now", f"Set by {cmd.actor.name}.", people=[person])
        record(uow, case, cmd.actor, "swarm lead", name)
        return Reply(text=f"{name} leads the swarm on {case.id}.", case_id=case.id)

    return await ctx.run(work, key=cmd.key)


async def invite_skill(cmd: InviteSkill, ctx: Context) -> Reply:
    skill = check_skills([cmd.skill], ctx.config)
    if not skill:
        raise UserError("Name a skill, e.g. /swarm ESC-1042 invite skill:network.")

    async def work(uow: UnitOfWork) -> Reply:
        swarm, case = await _active(uow, cmd.case_id)
        if skill[0] not in swarm.needed:
            swarm.needed.append(skill[0])
        if skill[0] not in missing(swarm, uow.config):
            raise InvalidTransition(f"{skill[0]} is already covered or being asked for in the swarm on {case.id}.")
        lines = await fill(swarm, case, skill, uow, why=f"{cmd.actor.name} asked for {skill[0]}")
        record(uow, case, cmd.actor, "swarm skill added", skill[0])
        done = f"invited {lines[0].split(':')[0]}" if lines else "nobody is left to invite"
        return Reply(text=f"{skill[0]} added to the swarm on {case.id}; {done}.", case_id=case.id)

    return await ctx.run(work, key=cmd.key)


def _may_end(swarm: Swarm, case: Case, actor: Actor, config: Config) -> None:
    person = config.people.get(actor.person or "")
    if actor.system or actor.person in (*swarm.members, swarm.lead, case.owner) or (
            person is not None and "manager" in person.roles):
        return
    raise NotAllowed(f"Only the swarm's members, the case owner or a manager can end the swarm on {case.id}.")


async def end_swarm(cmd: EndSwarm, ctx: Context) -> Reply:
    if not cmd.resolution.strip():
        raise UserError(f"Describe the resolution, e.g. /swarm {cmd.case_id} end restarted the pool "
                        f"cause: leaked connections.")

    async def work(uow: UnitOfWork) -> Reply:
        swarm, case = await _active(uow, cmd.case_id)
        _may_end(swarm, case, cmd.actor, uow.config)
        article = await finish(swarm, case, cmd.actor, cmd.resolution.strip(), cmd.cause.strip(),
                               cmd.environment.strip(), uow)
        if case.is_open:
            _resolve(case, cmd.actor, cmd.resolution.strip(), uow)
        return Reply(text=f"The swarm on {case.id} ended and the case is resolved; {article.id} drafted for review.",
                     case_id=case.id, links=[_link(swarm)])

    return await ctx.run(work, key=cmd.key)


def _resolve(case: Case, actor: Actor, resolution: str, uow: UnitOfWork) -> None:
    """Resolve the case the swarm solved, as `/case ... resolve` would (CaseResolved included)."""
    case.resolve(actor.person, uow.now, resolution)
    paging.stop(case, f"resolved by {actor.name}", uow.now, uow, quiet=True)
    sla.meet(case, "acknowledge", uow.now, uow)
    sla.meet(case, "resolve", uow.now, uow)
    record(uow, case, actor, "resolved", f"in {case.tier}: {resolution}")
    for person in sorted({*case.watchers, *([case.opened_by.person] if case.opened_by.person else [])}):
        if person != actor.person and person in uow.config.people:
            tell(case, uow, person, f"{case.id} is resolved", f"{case.title}\n{resolution}")
    uow.emit(CaseResolved(case_id=case.id, tier=case.tier))


async def finish(swarm: Swarm, case: Case, actor: Actor, resolution: str, cause: str, environment: str,
                 uow: UnitOfWork) -> KbArticle:
    """End the swarm: credit, thanks, the resolution on the case, and the knowledge-base draft."""
    config = uow.config
    author = actor.person if actor.person in config.people else None
    for invitation in swarm.pending():
        uow.cancel(invite_timer(case.id, invitation.person))
    swarm.close(uow.now, author)
    swarm.resolution, swarm.cause, swarm.environment = resolution, cause or None, environment or None
    if case.is_open:
        case.resolution = resolution
    article_id = await knowledge.next_article_id(uow.store)
    customer = config.customers.get(case.customer) if case.customer else None
    article = knowledge.draft(article_id, issue=case.title, environment=environment or (
        f"{customer.segment} customer" if customer else ""), resolution=resolution, cause=cause,
        skills=swarm.needed, related=[case.id], author=author, private=case.private, config=config, uow=uow)
    uow.add(article)
    swarm.kb_id = article.id
    names = [person_name(config, m) for m in swarm.members]
    say(swarm, uow, f"Swarm ended by {actor.name}", f"Resolution: {resolution}" + (f"\nCause: {cause}" if cause else "")
        + (f"\nThank you, {', '.join(names)}!" if names else ""), people=swarm.members)
    uow.say(knowledge.article_notice(article, f"Knowledge-base draft {article.id} for review"), thread_of(swarm))
    ended = f"Resolution: {resolution}" + (f"\nCause: {cause}" if cause else "")
    reply(case, uow, f"Swarm ended by {actor.name}", ended + f"\nKnowledge-base draft: {article.id}",
          links=[_link(swarm)])
    record(uow, case, actor, "swarm ended", f"resolution: {resolution}" + (f"; cause: {cause}" if cause else "")
           + (f"; environment: {environment}" if environment else "") + f"; draft {article.id}")
    return article


async def list_swarms(cmd: ListSwarms, ctx: Context) -> Reply:
    ids = sorted((i.decode() if isinstance(i, bytes) else str(i))
                 for i in await ctx.store.redis.smembers(ctx.store.keys.index(Swarm.kind, "active", "")))
    now = ctx.clock.now()
    lines = []
    for swarm_id in ids:
        swarm = await ctx.store.get_record(Swarm, swarm_id)
        case = await ctx.store.get_case(swarm_id)
        if swarm is None or case is None or not (may_access(case, cmd.actor, ctx.config)
                                                 or cmd.actor.person in (*swarm.members, swarm.lead)):
            continue
        gaps = [s for s in swarm.needed if s not in swarm.covered(skills_of(ctx.config))]
        lines.append(f"{swarm.id} · {swarm.title} — {len(swarm.members)} members, lead "
                     f"{person_name(ctx.config, swarm.lead)}, " + (f"missing {', '.join(gaps)}, " if gaps else "")
                     + f"{format_duration(now - swarm.created_at)}")
    if not lines:
        return Reply(text="No active swarms you can see. Start one with /swarm ESC-1042.")
    return Reply(text="Active swarms:\n" + "\n".join(lines))


# ---- what follows case events -------------------------------------------------------------------


async def start_on_open(event: Event, uow: UnitOfWork) -> None:
    """A `swarm: true` routing rule: start the swarm right after the case is committed."""
    assert isinstance(event, CaseOpened)
    case = await uow.case(event.case_id)
    if case.swarm:
        uow.follow_up(f"{case.id}:swarm-start", StartSwarm(case_id=case.id, key=f"{case.id}:swarm-start"))


async def end_on_resolve(event: Event, uow: UnitOfWork) -> None:
    """Resolving the case ends its swarm, with the case's resolution."""
    assert isinstance(event, CaseResolved)
    case = await uow.case(event.case_id)
    try:
        swarm = await uow.get(Swarm, case.id)
    except NotFound:
        return
    if swarm.active:
        await finish(swarm, case, uow.actor, case.resolution or "resolved", "", "", uow)


HANDLERS: dict[type[Command], Handler] = {
    StartSwarm: start_swarm, JoinSwarm: join_swarm, LeaveSwarm: leave_swarm, DeclineSwarm: decline_swarm,
    AddSwarmMember: add_member, SetSwarmLead: set_lead, InviteSkill: invite_skill, EndSwarm: end_swarm,
    ListSwarms: list_swarms, ExpireInvitation: expire_invitation,
}
EVENT_HANDLERS: dict[type[Event], list[EventHandler]] = {CaseOpened: [start_on_open],
                                                          CaseResolved: [end_on_resolve]}
