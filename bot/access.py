"""Who may see and act on a case: the one access rule, applied by the bus to every read and action.

A public case is open to everyone who can run a command. A private case (sensitive category or
a `private: true` rule) is open only to its insiders:
- the person who opened it, its owner, who acknowledged it, and its watchers (a watcher can only
  be added by someone who already has access, because adding one is itself an action on the case);
- the people of its current and past tiers: tier `members`, the members of the schedules its
  paging policy names, and the people the policy names;
- the people paged or told about it (the CSM, experts added by routing rules);
- managers and compliance (config `roles`).
Everyone else gets the same refusal for every verb and learns nothing about the case.
"""

from __future__ import annotations

from bot.config import Config
from bot.errors import NotAllowed
from bot.model import Actor, Case

PRIVILEGED_ROLES = frozenset({"manager", "compliance"})


def refusal(case_id: str) -> NotAllowed:
    """The one answer an outsider gets, whatever they tried: no title, no state."""
    return NotAllowed(f"You don't have access to {case_id.upper()}.")


def insiders(case: Case, config: Config) -> set[str]:
    """The configured people who may see and act on `case` if it is private."""
    people = {case.owner, case.acknowledged_by, case.opened_by.person, *case.watchers, *case.informed}
    if case.paging is not None:
        people.update(case.paging.paged)
    for visit in {v.tier for v in case.tiers} | {case.tier}:
        tier = config.find_tier(visit)
        if tier is None:
            continue
        people.update(tier.members)
        if tier.lead:
            people.add(tier.lead)
        policy = config.policies.get(tier.policy or "")
        for step in policy.steps if policy else []:
            for target in step.notify:
                kind, _, name = target.partition(":")
                if kind == "person":
                    people.add(name)
                elif kind == "schedule" and name in config.schedules:
                    people.update(config.schedules[name].members)
    people.update(key for key, person in config.people.items() if PRIVILEGED_ROLES & set(person.roles))
    people.discard(None)
    return {p for p in people if p}


def may_access(case: Case, actor: Actor, config: Config) -> bool:
    """True if `actor` may see and act on `case`; the scheduler (system actor) always may."""
    if actor.system or not case.private:
        return True
    return actor.person is not None and actor.person in insiders(case, config)


def check_access(case: Case, actor: Actor, config: Config) -> None:
    """Raise the one refusal if `actor` may not touch `case`."""
    if not may_access(case, actor, config):
        raise refusal(case.id)
