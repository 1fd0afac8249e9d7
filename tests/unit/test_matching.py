"""Pure expert matching, table-driven: skills needed, availability across time zones, set cover, fallback."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from bot.clock import FakeClock
from bot.config import Person
from workflows.matching import (
    Candidate,
    Hours,
    is_available,
    match,
    next_candidate,
    recent_invitations,
    skills_needed,
    suggest_skills,
    why_unavailable,
)

# Monday 23 November 2026, 15:00 UTC = 10:00 in New York (EST)
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
EARLY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 07:00 in New York: Dev is not at work yet
NINE_TO_FIVE = Hours(time(9), time(17))


def person(key: str, name: str, *skills: str, **kw: object) -> Candidate:
    return replace(Candidate(key=key, name=name, skills=frozenset(skills)), **kw)


PEOPLE = [
    person("alice", "Alice Adams", "billing", "accounts"),
    person("ben", "Ben Brooks", "billing", "payments", "sso"),
    person("cleo", "Cleo Chen", "payments", "api"),
    person("dev", "Dev Patel", "api", "database", "payments", timezone="America/New_York", hours=NINE_TO_FIVE,
           open_cases=1),
    person("erin", "Erin Ortiz", "database", "network"),
    person("fay", "Fay Fischer", "compliance", "fraud"),
]


def people(**changes: dict[str, object]) -> list[Candidate]:
    """PEOPLE with some fields changed: people(erin={"open_cases": 5})."""
    return [replace(c, **changes.get(c.key, {})) for c in PEOPLE]


# ---- skills needed ---------------------------------------------------------------------

SKILL_MAP = {
    "outage": ["network", "database"],
    "database": ["database"],
    "billing": ["payments", "billing"],
    "all users": ["network"],
    "SSO": ["sso"],
    "payments-eu": ["payments", "compliance"],
}


@pytest.mark.parametrize(("explicit", "category", "text", "area", "expected"), [
    (["API", "database", "api", " "], "billing", "outage", None, ["api", "database"]),  # explicit wins
    ([], "billing", "", None, ["payments", "billing"]),                                 # empty list: derive
    (None, "Billing", "", None, ["payments", "billing"]),                               # any case
    (None, None, "The database is down", None, ["database"]),
    (None, None, "our databases are slow", None, []),                                   # whole words only
    (None, None, "slow for ALL USERS in the EU", None, ["network"]),                    # phrases
    (None, None, "sso login loop", None, ["sso"]),                                      # keys in any case
    (None, None, "", "payments-eu", ["payments", "compliance"]),                        # product area
    (None, "billing", "outage: database down", "payments-eu",
     ["payments", "billing", "network", "database", "compliance"]),                     # all three, no repeats
    (None, "unknown", "nothing in the map", "nowhere", []),
])
def test_skills_come_from_the_explicit_list_else_from_category_keywords_and_area(
        explicit: list[str] | None, category: str | None, text: str, area: str | None, expected: list[str]) -> None:
    assert skills_needed(explicit, category, text, area, SKILL_MAP) == expected


def test_an_empty_skill_map_derives_nothing() -> None:
    assert skills_needed(None, "billing", "database outage", "payments", {}) == []


def test_a_mistyped_skill_gets_the_known_ones_it_resembles() -> None:
    assert suggest_skills("Dtabase", ["api", "database", "network"]) == ["database"]
    assert suggest_skills("quantum", ["api", "database"]) == []


# ---- availability ----------------------------------------------------------------------

DEV = PEOPLE[3]
TOKYO = person("kei", "Kei Sato", "api", timezone="Asia/Tokyo", hours=NINE_TO_FIVE)
NIGHTS = person("nina", "Nina Novak", "api", hours=Hours(time(22), time(6)))
LATE = person("lou", "Lou Lane", "api", hours=Hours(time(9), time(23, 59, 59)))  # "09:00-24:00"


@pytest.mark.parametrize(("who", "at", "expected"), [
    (DEV, datetime(2026, 11, 23, 14, 0, tzinfo=UTC), True),     # Monday 09:00 EST
    (DEV, datetime(2026, 11, 23, 13, 59, tzinfo=UTC), False),   # 08:59 EST
    (DEV, datetime(2026, 11, 23, 22, 0, tzinfo=UTC), False),    # 17:00 EST: the end is exclusive
    (DEV, datetime(2026, 11, 28, 15, 0, tzinfo=UTC), False),    # Saturday
    (DEV, datetime(2026, 11, 24, 1, 0, tzinfo=UTC), False),     # Tuesday in UTC, Monday 20:00 in New York
    # DST: New York springs forward on Sunday 8 March 2026 and falls back on Sunday 1 November 2026
    (DEV, datetime(2026, 3, 6, 13, 30, tzinfo=UTC), False),     # Friday 08:30 EST
    (DEV, datetime(2026, 3, 9, 13, 30, tzinfo=UTC), True),      # Monday 09:30 EDT: same UTC time, now at work
    (DEV, datetime(2026, 10, 30, 13, 30, tzinfo=UTC), True),    # Friday 09:30 EDT
    (DEV, datetime(2026, 11, 2, 13, 30, tzinfo=UTC), False),    # Monday 08:30 EST: same UTC time, not yet
    (DEV, datetime(2026, 11, 2, 21, 30, tzinfo=UTC), True),     # Monday 16:30 EST
    (TOKYO, datetime(2026, 11, 23, 1, 0, tzinfo=UTC), True),    # Monday 10:00 in Tokyo
    (TOKYO, datetime(2026, 11, 22, 23, 30, tzinfo=UTC), False),  # Sunday in UTC, Monday 08:30 in Tokyo
    (TOKYO, datetime(2026, 11, 28, 0, 30, tzinfo=UTC), False),  # Friday in UTC, Saturday 09:30 in Tokyo
    (NIGHTS, datetime(2026, 11, 23, 23, 0, tzinfo=UTC), True),  # Monday night
    (NIGHTS, datetime(2026, 11, 24, 5, 0, tzinfo=UTC), True),   # the Monday shift, Tuesday morning
    (NIGHTS, datetime(2026, 11, 28, 5, 0, tzinfo=UTC), True),   # the Friday shift, Saturday morning
    (NIGHTS, datetime(2026, 11, 23, 5, 0, tzinfo=UTC), False),  # Sunday night is not a working night
    (NIGHTS, datetime(2026, 11, 28, 23, 0, tzinfo=UTC), False),  # Saturday night
    (NIGHTS, datetime(2026, 11, 24, 12, 0, tzinfo=UTC), False),  # midday
    (LATE, datetime(2026, 11, 23, 23, 59, 59, 500000, tzinfo=UTC), True),  # "24:00" includes the last second
    (PEOPLE[0], datetime(2026, 11, 29, 3, 0, tzinfo=UTC), True),  # no hours: any time
])
def test_working_hours_are_read_on_the_persons_own_clock(who: Candidate, at: datetime, expected: bool) -> None:
    assert is_available(who, at) is expected


@pytest.mark.parametrize(("changes", "reason"), [
    ({}, None),
    ({"on_leave": True}, "on leave"),
    ({"open_cases": 3, "swarms": 2}, "at full load"),            # open cases and swarms both count
    ({"open_cases": 4, "max_load": 4}, "at full load"),
    ({"open_cases": 3, "swarms": 1}, None),
    ({"on_leave": True, "open_cases": 9}, "on leave"),
])
def test_leave_and_load_make_someone_unavailable(changes: dict[str, object], reason: str | None) -> None:
    assert why_unavailable(replace(DEV, **changes), NOW) == reason


def test_off_hours_is_the_reason_when_nothing_else_holds_them() -> None:
    assert why_unavailable(DEV, EARLY) == "off hours"


def test_a_configured_person_becomes_a_candidate_with_their_zone_hours_and_limit() -> None:
    dev = Person.model_validate({"name": "Dev Patel", "skills": ["API", "database"], "max_load": 3,
                                 "timezone": "America/New_York", "hours": "09:00-17:00"})
    c = Candidate.from_person("dev", dev, "Europe/Berlin", open_cases=1, swarms=1, invitations_7d=2)
    assert (c.skills, c.timezone, c.hours, c.load, c.max_load, c.invitations_7d) == (
        frozenset({"api", "database"}), "America/New_York", NINE_TO_FIVE, 2, 3, 2)
    alice = Candidate.from_person("alice", Person(name="Alice Adams"), "Europe/Berlin", on_leave=True)
    assert (alice.timezone, alice.hours, alice.on_leave) == ("Europe/Berlin", None, True)


# ---- matching --------------------------------------------------------------------------


@pytest.mark.parametrize(("needed", "at", "changes", "kwargs", "lines", "covered", "uncovered"), [
    # one person who covers both beats two who cover one each, even with a case open
    (["api", "database"], NOW, {}, {}, ["Dev Patel: api, database; 1 open case"], ["api", "database"], []),
    # Dev is not at work yet: two people instead
    (["api", "database"], EARLY, {}, {}, ["Cleo Chen: api; no open cases", "Erin Ortiz: database; no open cases"],
     ["api", "database"], []),
    (["network", "fraud", "sso"], NOW, {}, {},
     ["Ben Brooks: sso; no open cases", "Erin Ortiz: network; no open cases", "Fay Fischer: fraud; no open cases"],
     ["network", "fraud", "sso"], []),
    # the owner and the on-call are members: their skills are covered and they are not invited
    (["payments", "api", "sso"], NOW, {}, {"always_include": ["ben"]}, ["Cleo Chen: api; no open cases"],
     ["payments", "api", "sso"], []),
    (["billing"], NOW, {}, {"always_include": ["alice", "ben"]}, [], ["billing"], []),
    # lower load wins a tie
    (["payments"], NOW, {"ben": {"open_cases": 2}, "cleo": {"open_cases": 1}}, {},
     ["Cleo Chen: payments; 1 open case"], ["payments"], []),
    # swarms count as load too
    (["payments"], NOW, {"ben": {"swarms": 1}, "cleo": {"swarms": 2}}, {},
     ["Ben Brooks: payments; 1 swarm"], ["payments"], []),
    # fewer invitations this week wins when the load is equal
    (["payments"], EARLY, {"ben": {"invitations_7d": 3}, "cleo": {"invitations_7d": 1}}, {},
     ["Cleo Chen: payments; no open cases"], ["payments"], []),
    # more skills still beats lower load
    (["api", "database", "payments"], NOW, {"dev": {"open_cases": 4}}, {},
     ["Dev Patel: api, database, payments; 4 open cases"], ["api", "database", "payments"], []),
    # excluded people are never picked
    (["database"], NOW, {}, {"exclude": ["dev"]}, ["Erin Ortiz: database; no open cases"], ["database"], []),
    # the cap limits invitations; what is left says why
    (["network", "fraud"], NOW, {}, {"cap": 1}, ["Erin Ortiz: network; no open cases"], ["network"],
     [("fraud", "invitation cap")]),
    (["quantum", "api"], NOW, {}, {}, ["Cleo Chen: api; no open cases"], ["api"], [("quantum", "nobody has it")]),
    (["database"], EARLY, {"erin": {"open_cases": 5}}, {}, [], [], [("database", "nobody free")]),
    (["fraud"], NOW, {"fay": {"on_leave": True}}, {}, [], [], [("fraud", "nobody free")]),
    (["fraud"], NOW, {}, {"exclude": ["fay"]}, [], [], [("fraud", "already asked")]),
])
def test_the_smallest_set_of_free_people_covers_the_skills(
        needed: list[str], at: datetime, changes: dict[str, dict[str, object]], kwargs: dict[str, object],
        lines: list[str], covered: list[str], uncovered: list[tuple[str, str]]) -> None:
    result = match(needed, people(**changes), at, **{"cap": 3, **kwargs})
    assert result.lines == lines
    assert list(result.covered) == covered
    assert [(u.skill, u.reason) for u in result.uncovered] == uncovered


def test_members_are_reported_and_never_invited() -> None:
    result = match(["payments"], PEOPLE, NOW, cap=3, always_include=["cleo", "cleo", "gus"])
    assert result.members == ("cleo", "gus")
    assert result.picks == ()


def test_a_skill_nobody_free_has_names_who_has_it_and_why() -> None:
    result = match(["database"], people(erin={"open_cases": 5}), EARLY, cap=3)
    assert result.uncovered[0].line == (
        "database: nobody with it is free (Dev Patel off hours, 09:00-17:00 America/New_York, "
        "Erin Ortiz at full load 5/5)")


def test_a_long_list_of_busy_people_is_shortened() -> None:
    busy = [person(f"p{i}", f"Person {i}", "api", on_leave=True) for i in range(5)]
    assert match(["api"], busy, NOW, cap=3).uncovered[0].detail == (
        "nobody with it is free (Person 0 on leave, Person 1 on leave, Person 2 on leave and 2 more)")


def test_the_same_input_in_any_order_gives_the_same_match() -> None:
    twins = [*PEOPLE, person("cody", "Cody Chen", "payments", "api"), person("zed", "Zed Patel", "api", "database")]
    needed = ["api", "database", "payments", "network", "fraud"]
    expected = match(needed, twins, NOW, cap=3)
    assert [p.key for p in expected.picks] == ["dev", "erin", "fay"]
    rng = random.Random(7)
    for _ in range(50):
        shuffled = twins[:]
        rng.shuffle(shuffled)
        assert match(needed, shuffled, NOW, cap=3) == expected


def test_equal_candidates_are_ordered_by_name() -> None:
    twins = [person("b", "bea", "api"), person("a", "Ann", "api")]
    assert [p.name for p in match(["api"], twins, NOW, cap=1).picks] == ["Ann"]


@pytest.mark.parametrize(("needed", "candidates", "cap"), [
    ([], PEOPLE, 3), ([" "], PEOPLE, 3), ([], [], 3), (["api"], PEOPLE, 0), (["api"], [], 3),
])
def test_empty_inputs_give_an_empty_match_without_error(needed: list[str], candidates: list[Candidate],
                                                        cap: int) -> None:
    result = match(needed, candidates, NOW, cap=cap)
    assert result.picks == ()
    assert [u.skill for u in result.uncovered] == [s for s in needed if s.strip()]


def test_the_invitation_cap_is_the_reason_only_while_someone_free_has_the_skill() -> None:
    result = match(["network", "quantum"], PEOPLE, NOW, cap=1)
    assert [(u.skill, u.reason) for u in result.uncovered] == [("quantum", "nobody has it")]
    result = match(["network", "fraud", "quantum"], PEOPLE, NOW, cap=1)
    assert [(u.skill, u.reason) for u in result.uncovered] == [
        ("fraud", "invitation cap"), ("quantum", "nobody has it")]


# ---- fairness over a week --------------------------------------------------------------

API_TRIO = [person("ann", "Ann", "api"), person("bob", "Bob", "api"), person("cat", "Cat", "api")]


def run_fortnight(fair: bool) -> dict[str, list[datetime]]:
    """Two api swarms a day for 14 days, each inviting one expert; returns who was invited when."""
    clock = FakeClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    invited: dict[str, list[datetime]] = {c.key: [] for c in API_TRIO}
    for _ in range(28):
        now = clock.advance(hours=12)
        pool = [replace(c, invitations_7d=recent_invitations(invited[c.key], now) if fair else 0) for c in API_TRIO]
        (pick,) = match(["api"], pool, now, cap=1).picks
        invited[pick.key].append(now)
    return invited


def test_invitations_are_spread_over_equally_skilled_experts_through_the_week() -> None:
    invited = run_fortnight(fair=True)
    totals = [len(v) for v in invited.values()]
    assert sum(totals) == 28 and max(totals) - min(totals) <= 2, totals
    start = datetime(2026, 11, 2, 21, 0, tzinfo=UTC)
    for day in range(8):  # every 7-day window
        now = start + timedelta(days=7 + day)
        counts = [recent_invitations(times, now) for times in invited.values()]
        assert max(counts) - min(counts) <= 1, counts


def test_without_the_invitation_count_the_same_expert_is_always_pulled_in() -> None:
    assert {k: len(v) for k, v in run_fortnight(fair=False).items()} == {"ann": 28, "bob": 0, "cat": 0}


@pytest.mark.parametrize(("offset", "expected"), [
    (timedelta(0), 1), (timedelta(days=-6, hours=-23), 1), (timedelta(days=-7), 0), (timedelta(seconds=1), 0),
])
def test_the_fairness_window_is_the_last_seven_days(offset: timedelta, expected: int) -> None:
    assert recent_invitations([NOW + offset], NOW) == expected


# ---- fallback after a decline or a timeout ---------------------------------------------


def test_after_a_decline_the_next_best_person_for_the_missing_skills_is_invited() -> None:
    first = match(["api", "database"], PEOPLE, NOW, cap=3)
    assert [p.key for p in first.picks] == ["dev"]
    asked = {"dev"}  # Dev declines: api and database are uncovered again
    second = next_candidate(["api", "database"], PEOPLE, NOW, asked)
    assert second is not None and second.line == "Cleo Chen: api; no open cases"
    asked.add(second.key)  # Cleo joins; database is still missing
    third = next_candidate(["database"], PEOPLE, NOW, asked)
    assert third is not None and third.line == "Erin Ortiz: database; no open cases"
    asked.add(third.key)
    assert next_candidate(["database"], PEOPLE, NOW, asked) is None


def test_after_an_unanswered_invitation_the_next_candidate_is_chosen_at_the_new_time() -> None:
    # 21:50 UTC is 16:50 in New York: Dev is invited, and ten minutes later his day is over
    clock = FakeClock(datetime(2026, 11, 23, 21, 50, tzinfo=UTC))
    (pick,) = match(["api", "database"], PEOPLE, clock.now(), cap=3).picks
    assert pick.key == "dev"
    later = clock.advance(minutes=10)  # swarm.invite_timeout
    replacement = next_candidate(["api", "database"], people(cleo={"open_cases": 5}), later, {"dev"})
    assert replacement is not None and replacement.line == "Erin Ortiz: database; no open cases"


def test_nobody_left_means_no_next_candidate() -> None:
    assert next_candidate(["fraud"], PEOPLE, NOW, {"fay"}) is None
    assert next_candidate([], PEOPLE, NOW, set()) is None


# ---- the fast path agrees with the plain definition ------------------------------------


def plain_greedy(needed: list[str], candidates: list[Candidate], now: datetime, cap: int,
                 exclude: set[str], members: set[str]) -> list[str]:
    """Greedy set cover written the obvious way: rescan every free person for every pick."""
    covered = {s for c in candidates if c.key in members for s in c.skills}
    uncovered = set(needed) - covered
    free = [c for c in candidates if c.key not in exclude | members and is_available(c, now)]
    picks: list[str] = []
    while uncovered and len(picks) < cap:
        scored = [(-len(c.skills & uncovered), c.load, c.invitations_7d, c.name.lower(), c.key, c) for c in free
                  if c.skills & uncovered and c.key not in picks]
        if not scored:
            break
        chosen = min(scored, key=lambda row: row[:5])[5]
        picks.append(chosen.key)
        uncovered -= chosen.skills
    return picks


def test_matching_picks_what_rescanning_everyone_would_pick() -> None:
    rng = random.Random(42)
    skills = [f"s{i}" for i in range(8)]
    zones = ["UTC", "America/New_York", "Asia/Tokyo", "Europe/Berlin"]
    for _ in range(300):
        crowd = [Candidate(key=f"k{i}", name=rng.choice(["Ann", "Bob", "Cat", "Dan"]) + f" {i % 3}",
                           skills=frozenset(rng.sample(skills, rng.randint(1, 3))), timezone=rng.choice(zones),
                           hours=rng.choice([None, NINE_TO_FIVE]), on_leave=rng.random() < 0.1,
                           open_cases=rng.randint(0, 5), invitations_7d=rng.randint(0, 3)) for i in range(25)]
        needed = rng.sample(skills, rng.randint(1, 5))
        now = NOW + timedelta(hours=rng.randint(0, 24 * 7))
        exclude, members = set(rng.sample([c.key for c in crowd], 3)), set(rng.sample([c.key for c in crowd], 1))
        cap = rng.randint(1, 4)
        found = match(needed, crowd, now, cap=cap, exclude=exclude, always_include=members)
        assert [p.key for p in found.picks] == plain_greedy(needed, crowd, now, cap, exclude, members)


def test_a_naive_time_is_refused_rather_than_read_as_the_servers_local_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_available(DEV, datetime(2026, 11, 23, 15, 0))
