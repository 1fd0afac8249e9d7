"""Pure expert matching for swarms: which skills a case needs, and who should be invited.

No store, no clock: the caller passes the people (with their load and recent invitations) and
the time, so every rule is tested from a table and the benchmark runs without Redis.

Matching is greedy set cover: take the person who covers the most still-uncovered skills, repeat.
Finding the true smallest cover is NP-hard; greedy is guaranteed within a factor H(n) ≈ ln n + 1 of
it (n = skills needed, so at most 2.3 for five skills) and is usually exact for the handful of
skills a case needs. It is also explainable, which matters more in a swarm thread: each pick is
"the best remaining person for what is still missing".
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from bot.config import Person

FAIRNESS_WINDOW = timedelta(days=7)
END_OF_DAY = time(23, 59, 59)  # what the config stores for "24:00"


# ---- skills needed ---------------------------------------------------------------------


def _norm(skill: str) -> str:
    return skill.strip().lower()


def _unique(skills: Iterable[str]) -> list[str]:
    """Lower-cased, without blanks or repeats, first occurrence first."""
    seen: dict[str, None] = {}
    for s in skills:
        if s := _norm(s):
            seen.setdefault(s, None)
    return list(seen)


@lru_cache(maxsize=1024)
def _word_pattern(keyword: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(keyword)}(?!\w)")


def skills_needed(explicit: Sequence[str] | None, category: str | None, text: str,
                  customer_area: str | None, skill_map: Mapping[str, Sequence[str]]) -> list[str]:
    """The skills a swarm should cover: the explicit list if given, else derived from the case.

    Derived skills come, in this order, from the case category, from every map key found as a whole
    word (or phrase) in the text, and from the customer's product area, all looked up in `skill_map`
    (the config's `swarm.skills:`, {category or keyword: [skills]}).
    """
    if explicit and (wanted := _unique(explicit)):
        return wanted
    lowered = {_norm(k): v for k, v in skill_map.items()}
    found: list[str] = []
    if category and (skills := lowered.get(_norm(category))):
        found += skills
    body = text.lower()
    found += [s for key, skills in lowered.items() if key and _word_pattern(key).search(body) for s in skills]
    if customer_area and (skills := lowered.get(_norm(customer_area))):
        found += skills
    return _unique(found)


def suggest_skills(word: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Known skills that look like a mistyped one, for "unknown skill 'dtabase' (did you mean database?)"."""
    return difflib.get_close_matches(_norm(word), sorted({_norm(k) for k in known}), n=n, cutoff=0.6)


# ---- people and availability -----------------------------------------------------------


@dataclass(frozen=True)
class Hours:
    """Working hours in the person's own time zone; start > end means a night shift."""

    start: time
    end: time
    days: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday=0


@dataclass(frozen=True)
class Candidate:
    """One person as matching sees them at one moment: skills, hours, and how busy they are."""

    key: str
    name: str
    skills: frozenset[str]
    timezone: str = "UTC"
    hours: Hours | None = None  # None: any time
    on_leave: bool = False
    open_cases: int = 0
    swarms: int = 0
    max_load: int = 5
    invitations_7d: int = 0
    load: int = field(init=False, compare=False)  # open cases plus swarms, kept as a field: matching reads it a lot

    def __post_init__(self) -> None:
        object.__setattr__(self, "load", self.open_cases + self.swarms)

    @classmethod
    def from_person(cls, key: str, person: Person, default_tz: str, *, open_cases: int = 0, swarms: int = 0,
                    invitations_7d: int = 0, on_leave: bool = False) -> Candidate:
        """A candidate from a configured person plus the live figures the store knows."""
        hours = None
        if person.hours is not None:
            hours = Hours(person.hours.start, person.hours.end, frozenset(person.hours.days))
        return cls(key=key, name=person.name, skills=frozenset(_unique(person.skills)),
                   timezone=person.timezone or default_tz, hours=hours, on_leave=on_leave,
                   open_cases=open_cases, swarms=swarms, max_load=person.max_load, invitations_7d=invitations_7d)


def recent_invitations(invited_at: Iterable[datetime], now: datetime) -> int:
    """How many invitations fall in the fairness window (the last 7 days up to `now`)."""
    since = now - FAIRNESS_WINDOW
    return sum(1 for at in invited_at if since < at <= now)


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1024)
def _local(now: datetime, zone: str) -> tuple[int, time]:
    """Weekday and wall-clock time in `zone`; cached because a match asks once per person, not per zone."""
    if now.tzinfo is None:
        raise ValueError("matching needs an aware datetime (the Clock gives UTC)")
    local = now.astimezone(_zone(zone))
    return local.weekday(), local.time()


def in_hours(c: Candidate, now: datetime) -> bool:
    """Within their working hours, on their own wall clock (so DST moves with them)."""
    if c.hours is None:
        return True
    (day, t), h = _local(now, c.timezone), c.hours
    if h.start <= h.end:
        return day in h.days and h.start <= t and (t < h.end or h.end == END_OF_DAY)
    # a night shift belongs to the day it starts on
    return (day in h.days and t >= h.start) or ((day - 1) % 7 in h.days and t < h.end)


Unavailable = Literal["on leave", "off hours", "at full load"]


def why_unavailable(c: Candidate, now: datetime) -> Unavailable | None:
    """None when the person can take a swarm now, else the first reason they cannot."""
    if c.on_leave:
        return "on leave"
    if c.load >= c.max_load:
        return "at full load"
    if not in_hours(c, now):
        return "off hours"
    return None


def is_available(c: Candidate, now: datetime) -> bool:
    """Not on leave, below their maximum load, and within their working hours."""
    return why_unavailable(c, now) is None


# ---- matching --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    """One person to invite, with the needed skills they were picked for."""

    key: str
    name: str
    covers: tuple[str, ...]
    open_cases: int = 0
    swarms: int = 0

    @property
    def line(self) -> str:
        """The one-line explanation for the swarm thread: "Dev Patel: api, database; 1 open case"."""
        return f"{self.name}: {', '.join(self.covers)}; {_load_label(self.open_cases, self.swarms)}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _load_label(open_cases: int, swarms: int) -> str:
    parts = [_count(n, noun) for n, noun in ((open_cases, "open case"), (swarms, "swarm")) if n]
    return ", ".join(parts) or "no open cases"


Reason = Literal["nobody has it", "nobody free", "already asked", "invitation cap"]


@dataclass(frozen=True)
class Uncovered:
    """A needed skill nobody will cover, and why, for the thread and the lead."""

    skill: str
    reason: Reason
    detail: str

    @property
    def line(self) -> str:
        return f"{self.skill}: {self.detail}"


@dataclass(frozen=True)
class Match:
    """Who to invite, what that covers, and what stays missing."""

    picks: tuple[Pick, ...]
    covered: tuple[str, ...]
    uncovered: tuple[Uncovered, ...]
    members: tuple[str, ...] = ()  # always-included people (owner, on-call): members, not invitations

    @property
    def lines(self) -> list[str]:
        return [p.line for p in self.picks]


Order = tuple[int, int, str, str]


def _order(c: Candidate) -> Order:
    """Among people who cover as much: lower load, fewer recent invitations, then name and key."""
    return (c.load, c.invitations_7d, c.name.lower(), c.key)


def _before(c: Candidate, other: Candidate) -> bool:
    """`_order(c) < _order(other)`, deciding on the numbers first: most people lose on load alone."""
    if c.load != other.load:
        return c.load < other.load
    if c.invitations_7d != other.invitations_7d:
        return c.invitations_7d < other.invitations_7d
    return _order(c) < _order(other)


def match(needed: Sequence[str], candidates: Iterable[Candidate], now: datetime, cap: int,
          exclude: Collection[str] = (), always_include: Collection[str] = ()) -> Match:
    """The smallest set of available people (at most `cap`) covering `needed`, by greedy set cover.

    Ties go to: more still-uncovered skills; lower load; fewer invitations in the last 7 days;
    then name and key, so the same input always gives the same answer. Availability is a filter,
    not a tie-break: only people who can take the swarm now are invited. `always_include` (the case
    owner, the tier's on-call) are members from the start: their skills count as covered and they
    are never invited. `exclude` (declined, timed out, already invited) are never picked.
    """
    wanted = _unique(needed)
    wanted_set = frozenset(wanted)
    members = tuple(dict.fromkeys(always_include))
    member_set, excluded = set(members), set(exclude)
    people = list(candidates)
    covered: set[str] = set()
    # Greedy never picks two people with the same needed skills (the second would add nothing),
    # so only the best free person per combination matters: at most 2^len(needed) - 1 of them.
    best: dict[frozenset[str], Candidate] = {}
    for c in people:
        if wanted_set.isdisjoint(c.skills):  # most people: rejected without building a set
            continue
        has = c.skills & wanted_set
        if c.key in member_set:
            covered |= has
        elif c.key not in excluded:
            held = best.get(has)
            if (held is None or _before(c, held)) and why_unavailable(c, now) is None:
                best[has] = c
    uncovered = wanted_set - covered
    picks: list[Pick] = []
    while uncovered and len(picks) < cap:
        choice: tuple[tuple[int, Order], frozenset[str]] | None = None
        for has, held in best.items():
            if (gain := len(has & uncovered)) and (choice is None or (-gain, _order(held)) < choice[0]):
                choice = ((-gain, _order(held)), has)
        if choice is None:
            break
        c = best.pop(choice[1])
        newly = choice[1] & uncovered
        picks.append(Pick(c.key, c.name, tuple(s for s in wanted if s in newly), c.open_cases, c.swarms))
        uncovered -= newly
        covered |= newly
    capped = {s for has in best for s in has & uncovered} if len(picks) >= cap else set()
    missing = _explain([s for s in wanted if s in uncovered], people, now, cap, capped, excluded)
    return Match(picks=tuple(picks), covered=tuple(s for s in wanted if s in covered), uncovered=missing,
                 members=members)


def _explain(skills: list[str], people: list[Candidate], now: datetime, cap: int, capped: set[str],
             excluded: set[str]) -> tuple[Uncovered, ...]:
    """Why each skill stays uncovered: the cap, who has it but is not free, or nobody at all.

    Members never appear here: a member with the skill would have covered it.
    """
    if not skills:
        return ()
    blocked: dict[str, list[tuple[Candidate, Unavailable]]] = {s: [] for s in skills}
    asked: set[str] = set()
    for c in people:
        for s in c.skills.intersection(skills):
            if c.key in excluded:
                asked.add(s)
            elif (why := why_unavailable(c, now)) is not None:
                blocked[s].append((c, why))
    found: list[Uncovered] = []
    for s in skills:
        busy = sorted(blocked[s], key=lambda cw: (cw[0].name.lower(), cw[0].key))
        if s in capped:
            detail = f"not invited: the swarm already invites {cap} (swarm.experts)"
            found.append(Uncovered(s, "invitation cap", detail))
        elif busy:
            shown = ", ".join(f"{c.name} {_unavailable_label(c, why)}" for c, why in busy[:3])
            more = f" and {len(busy) - 3} more" if len(busy) > 3 else ""
            found.append(Uncovered(s, "nobody free", f"nobody with it is free ({shown}{more})"))
        elif s in asked:
            found.append(Uncovered(s, "already asked", "everyone with it has already been asked"))
        else:
            found.append(Uncovered(s, "nobody has it", "nobody has this skill"))
    return tuple(found)


def _unavailable_label(c: Candidate, why: Unavailable) -> str:
    if why == "at full load":
        return f"at full load {c.load}/{c.max_load}"
    if why == "off hours" and c.hours is not None:
        return f"off hours, {c.hours.start:%H:%M}-{c.hours.end:%H:%M} {c.timezone}"
    return why


def next_candidate(needed_uncovered: Sequence[str], candidates: Iterable[Candidate], now: datetime,
                   already_asked: Collection[str]) -> Pick | None:
    """The best person to invite after a decline or an unanswered invitation, or None if nobody is left.

    `already_asked` holds everyone invited so far (joined, declined or timed out) and the members.
    """
    found = match(needed_uncovered, candidates, now, cap=1, exclude=already_asked)
    return found.picks[0] if found.picks else None
