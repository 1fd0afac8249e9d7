"""Read-only answers: a case with its whole timeline, and help. Private cases only to those allowed."""

from __future__ import annotations

from bot.bus import Context, Handler
from bot.commands import Command, ShowCase, ShowHelp
from bot.config import Config
from bot.errors import NotAllowed
from bot.messages import CardField, Reply, ThreadLink
from bot.model import Actor, Case
from workflows.cards import case_card, local_time
from workflows.grammar import help_text

PRIVATE_ROLES = {"manager", "compliance", "incident_commander"}


def may_see(case: Case, actor: Actor, config: Config) -> bool:
    """Private cases: the people on the case, the tier's members and rotations, and privileged roles."""
    if not case.private:
        return True
    me = actor.person
    if me is None:
        return False
    if me in {case.owner, case.acknowledged_by, case.opened_by.person, *case.watchers}:
        return True
    person = config.people.get(me)
    if person and PRIVATE_ROLES & set(person.roles):
        return True
    for visit in case.tiers:
        tier = config.find_tier(visit.tier)
        if tier is None:
            continue
        if me in tier.members:
            return True
        policy = config.policies.get(tier.policy or "")
        for step in policy.steps if policy else []:
            for target in step.notify:
                kind, _, name = target.partition(":")
                if (kind == "person" and name == me) or (
                        kind == "schedule" and me in config.schedules[name].members):
                    return True
    return False


async def show_case(cmd: ShowCase, ctx: Context) -> Reply:
    case = await ctx.load(cmd.case_id)
    if not may_see(case, cmd.actor, ctx.config):
        raise NotAllowed(f"{case.id} is private. Ask its owner or a manager to add you as a watcher.")
    card = case_card(case, ctx.config, ctx.clock.now())
    timeline = await ctx.store.timeline(case.id)
    lines = [f"{local_time(ctx.config, e.at)}  {e.actor}: {e.action}" + (f" ({e.detail})" if e.detail else "")
             for e in timeline]
    fields = [*card.fields, CardField(label="Watchers", value=", ".join(case.watchers) or "none")]
    return Reply(title=card.title, text="Timeline:\n" + "\n".join(lines), fields=fields, case_id=case.id,
                 links=[ThreadLink(case_id=case.id, tier=case.tier, label="Open the case thread")])


async def show_help(cmd: ShowHelp, ctx: Context) -> Reply:
    return Reply(text=help_text())


HANDLERS: dict[type[Command], Handler] = {ShowCase: show_case, ShowHelp: show_help}
