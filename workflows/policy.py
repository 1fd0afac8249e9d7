"""Pure policy: routing rules, on-call rotations, working hours, tier order.

No store, no clock: every function takes the time it needs, so each is tested from a table.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import Config, Person, Rule, Schedule
from bot.model import Severity


@dataclass(frozen=True)
class Facts:
    """What routing looks at."""

    text: str
    category: str | None = None
    severity: Severity | None = None
    customer: str | None = None
    segment: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class Decision:
    tier: str
    private: bool = False
    swarm: bool = False
    add: list[str] = field(default_factory=list)
    notify_csm: bool = False
    rule: int | None = None  # index of the rule that matched, None for the fallback
    why: str = ""


def rule_matches(rule: Rule, facts: Facts) -> bool:
    cond = rule.if_
    if cond.category and (facts.category or "") not in [c.lower() for c in cond.category]:
        return False
    if cond.severity and facts.severity not in cond.severity:
        return False
    if cond.segment and (facts.segment or "") not in cond.segment:
        return False
    if cond.customer and (facts.customer or "") not in cond.customer:
        return False
    if cond.channel and (facts.channel or "") not in cond.channel:
        return False
    return not (cond.keywords and not any(_contains(facts.text, k) for k in cond.keywords))


def _contains(text: str, keyword: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(keyword.lower())}(?!\w)", text.lower()) is not None


def describe_rule(rule: Rule) -> str:
    cond = rule.if_
    parts = [f"{name} in [{', '.join(str(v) for v in values)}]"
             for name, values in (("category", cond.category), ("severity", cond.severity),
                                  ("segment", cond.segment), ("customer", cond.customer),
                                  ("keywords", cond.keywords), ("channel", cond.channel)) if values]
    return " and ".join(parts) or "always"


def route(facts: Facts, config: Config) -> Decision:
    """The first rule that matches decides; no later rule runs."""
    for index, rule in enumerate(config.routing):
        if rule_matches(rule, facts):
            then = rule.then
            tier = config.tier(then.tier).id if then.tier else default_tier(config)
            return Decision(tier=tier, private=then.private, swarm=then.swarm, add=list(then.add),
                            notify_csm=then.notify_csm, rule=index,
                            why=f"routing rule {index + 1} ({describe_rule(rule)})")
    return Decision(tier=default_tier(config), why="no routing rule matched: first staffed tier")


def default_tier(config: Config) -> str:
    """The lowest tier that has a place to post in."""
    for tier in config.tiers:
        if tier.channels.items():
            return tier.id
    return config.tiers[0].id


NEAR_MISS_CUTOFF = 0.8  # difflib ratio: `biling`, `acount`, `fruad` are near-misses; `wellness` is not


def known_categories(config: Config) -> set[str]:
    """Every category the config names: the sensitive ones and those routing rules match on."""
    named = {c for rule in config.routing for c in rule.if_.category}
    return {c.lower() for c in (*config.sensitive_categories, *named)}


def sensitive_match(category: str | None, config: Config) -> str | None:
    """The sensitive category `category` is, or is a near-miss of (a typo, a plural); None if neither.

    A category the config knows as not sensitive is never a near-miss: only unknown words are
    read generously, so a typo can not route a billing case to a public channel.
    """
    if not category:
        return None
    low = category.lower().strip()
    sensitive = [c.lower() for c in config.sensitive_categories]
    if low in sensitive:
        return low
    if low in known_categories(config):
        return None
    plural_y = low[:-3] + "y" if low.endswith("ies") else low
    for form in (low.removesuffix("s"), low.removesuffix("es"), plural_y, low + "s"):
        if form in sensitive:
            return form
    close = difflib.get_close_matches(low, sensitive, n=1, cutoff=NEAR_MISS_CUTOFF)
    return close[0] if close else None


def is_sensitive(category: str | None, config: Config) -> bool:
    """Private by category: a sensitive category, or an unknown one that is a near-miss of one."""
    return sensitive_match(category, config) is not None


def staffed_tiers(config: Config) -> list[str]:
    return [t.id for t in config.tiers if t.channels.items() or t.private_channels.items()]


def _neighbour(current: str, config: Config, step: int) -> str | None:
    order = staffed_tiers(config)
    ids = [t.lower() for t in order]
    if current.lower() not in ids:
        return None
    i = ids.index(current.lower()) + step
    return order[i] if 0 <= i < len(order) else None


def next_tier(current: str, config: Config) -> str | None:
    """The staffed tier above `current` (the escalation path skips tiers with no channel)."""
    return _neighbour(current, config, +1)


def previous_tier(current: str, config: Config) -> str | None:
    return _neighbour(current, config, -1)


# ---- on call ---------------------------------------------------------------------------

ROTATION_EPOCH = date(2024, 1, 1)


@dataclass(frozen=True)
class OnCall:
    now: str
    next: str
    until: datetime  # the next hand-off, aware, in the config timezone


def who_is_on_call(schedule: Schedule, at: datetime, tz: ZoneInfo) -> OnCall:
    """Who holds the rotation at `at`: hand-offs happen at local wall-clock time in `tz`."""
    local = at.astimezone(tz).replace(tzinfo=None)
    day, clock = schedule.handoff_day_and_time()
    epoch = date.fromisoformat(schedule.start) if schedule.start else ROTATION_EPOCH
    if schedule.rotation == "weekly":
        period = timedelta(days=7)
        first = epoch + timedelta(days=(day - epoch.weekday()) % 7)
    else:
        period = timedelta(days=1)
        first = epoch
    anchor = datetime.combine(first, clock)
    shifts = (local - anchor) // period
    members = schedule.members
    current = members[shifts % len(members)]
    following = members[(shifts + 1) % len(members)]
    until = (anchor + (shifts + 1) * period).replace(tzinfo=tz)
    return OnCall(now=current, next=following, until=until)


def available(person: Person, at: datetime, default_tz: ZoneInfo) -> bool:
    """Within the person's working hours (people without hours are always available)."""
    if person.hours is None:
        return True
    tz = ZoneInfo(person.timezone) if person.timezone else default_tz
    local = at.astimezone(tz)
    if local.weekday() not in person.hours.days:
        return False
    return person.hours.start <= local.time().replace(tzinfo=None) < person.hours.end


def hours_label(person: Person, default_tz: ZoneInfo) -> str:
    if person.hours is None:
        return "any time"
    tz = person.timezone or str(default_tz)
    return f"{person.hours.start:%H:%M}-{person.hours.end:%H:%M} {tz}"
