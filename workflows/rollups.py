"""Digest rollups, kept in the same atomic commit as the state change they count.

A digest must never load every case, so each domain event adds to small per-day hashes
(`uow.count`), and a digest reads O(days × tiers) keys. Keys, under `{prefix}:rollup:`:

- `d:<day>` (hash): `open:<tier>:<sev>`, `res:<tier>:<sev>` (resolved, by resolving tier), `enter:<tier>`,
  `esc:<tier>` (escalated out of the tier), `deesc:<tier>`, `ack:<tier>`, `fcr:<tier>` (resolved in
  the tier it opened in, never moved), `reopen:<tier>`, `rule:<n>`, `cat:<category>`, `kw:<word>`,
  `slaw:<tier>:<kind>`, `slab:<tier>:<kind>`, `csat_sum:<tier>`, `csat_n:<tier>`,
  `cust_open:<customer>`, `cust_esc:<customer>` (enterprise accounts only);
- `tta:<day>:<tier>`, `ttr:<day>:<tier>` (hash): duration histograms (workflows.digest.stats buckets);
- `breaches:<day>` (sorted set): the worst SLA breaches of the day, minutes over target, bounded;
- `open` (hash): `<tier>:<sev>` open cases now (a gauge: +1 entering a tier, -1 leaving it).

`<day>` is the local date (config time zone) of the change. Other workflows (swarms, crises, the
knowledge base) add their own keys beside these; the digest shows them when they exist.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.bus import EventHandler
from bot.config import Config
from bot.events import (
    CaseAcknowledged,
    CaseDeescalated,
    CaseEscalated,
    CaseOpened,
    CaseReopened,
    CaseResolved,
    Event,
)
from bot.model import Case, SlaClock
from bot.uow import UnitOfWork
from workflows.digest.stats import bucket

WORST_KEPT = 20  # breaches kept per day; a digest shows the worst three of its period
KEYWORDS_PER_CASE = 4
_WORD = re.compile(r"[a-z][a-z0-9-]{3,}")
_STOP = frozenset({
    "about", "after", "again", "also", "because", "been", "before", "being", "cannot", "could", "does",
    "doing", "down", "from", "have", "having", "into", "just", "more", "most", "need", "needs", "only",
    "other", "over", "please", "same", "should", "some", "still", "than", "that", "their", "them", "then",
    "there", "these", "they", "this", "those", "through", "under", "until", "very", "want", "what", "when",
    "where", "which", "while", "with", "would", "your", "customer", "customers", "issue", "problem", "error",
    "working", "work", "works", "not", "cant", "dont", "wont", "isnt",
})


def day(config: Config, at: datetime) -> str:
    """The local date (config time zone) a change counts on."""
    return _local_date(at, config.timezone)


@lru_cache(maxsize=4096)
def _local_date(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).date().isoformat()


def keywords(title: str) -> list[str]:
    """A few telling words of a case title, for "recurring problems" (no stop words, no numbers)."""
    seen: list[str] = []
    for word in _WORD.findall(title.lower()):
        if word not in _STOP and word not in seen:
            seen.append(word)
        if len(seen) == KEYWORDS_PER_CASE:
            break
    return seen


def _enterprise(case: Case, config: Config) -> str | None:
    customer = config.customers.get(case.customer) if case.customer else None
    return case.customer if customer is not None and customer.segment == "enterprise" else None


async def on_opened(event: Event, uow: UnitOfWork) -> None:
    assert isinstance(event, CaseOpened)
    case = await uow.case(event.case_id)
    d = f"d:{day(uow.config, uow.now)}"
    sev = case.severity.value
    uow.count(d, f"open:{case.tier}:{sev}")
    uow.count(d, f"enter:{case.tier}")
    uow.count("open", f"{case.tier}:{sev}")
    if case.rule is not None:
        uow.count(d, f"rule:{case.rule}")
    if case.category:
        uow.count(d, f"cat:{case.category}")
    for word in keywords(case.title):
        uow.count(d, f"kw:{word}")
    if customer := _enterprise(case, uow.config):
        uow.count(d, f"cust_open:{customer}")


def _moved(uow: UnitOfWork, case: Case, from_tier: str, to_tier: str, verb: str) -> None:
    d = f"d:{day(uow.config, uow.now)}"
    sev = case.severity.value
    uow.count(d, f"{verb}:{from_tier}")
    uow.count(d, f"enter:{to_tier}")
    uow.count("open", f"{from_tier}:{sev}", -1)
    uow.count("open", f"{to_tier}:{sev}")


async def on_escalated(event: Event, uow: UnitOfWork) -> None:
    assert isinstance(event, CaseEscalated)
    case = await uow.case(event.case_id)
    _moved(uow, case, event.from_tier, event.to_tier, "esc")
    if customer := _enterprise(case, uow.config):
        uow.count(f"d:{day(uow.config, uow.now)}", f"cust_esc:{customer}")


async def on_deescalated(event: Event, uow: UnitOfWork) -> None:
    assert isinstance(event, CaseDeescalated)
    case = await uow.case(event.case_id)
    _moved(uow, case, event.from_tier, event.to_tier, "deesc")


async def on_acknowledged(event: Event, uow: UnitOfWork) -> None:
    """Time to acknowledge: from entering the tier to the first acknowledgement there."""
    assert isinstance(event, CaseAcknowledged)
    case = await uow.case(event.case_id)
    today = day(uow.config, uow.now)
    entered = case.tiers[-1].at if case.tiers else case.created_at
    uow.count(f"d:{today}", f"ack:{case.tier}")
    uow.count(f"tta:{today}:{case.tier}", str(bucket(max(0.0, (uow.now - entered).total_seconds()))))


async def on_resolved(event: Event, uow: UnitOfWork) -> None:
    """Resolved by the resolving tier; time to resolve from opening; FCR; breach overruns."""
    assert isinstance(event, CaseResolved)
    case = await uow.case(event.case_id)
    today = day(uow.config, uow.now)
    d = f"d:{today}"
    uow.count(d, f"res:{event.tier}:{case.severity.value}")
    uow.count("open", f"{event.tier}:{case.severity.value}", -1)
    uow.count(f"ttr:{today}:{event.tier}", str(bucket(max(0.0, (uow.now - case.created_at).total_seconds()))))
    if len(case.tiers) <= 1:
        uow.count(d, f"fcr:{event.tier}")
    for clock in case.sla:
        if clock.breached:
            breach_overrun(uow, case, clock, uow.now)


async def on_reopened(event: Event, uow: UnitOfWork) -> None:
    assert isinstance(event, CaseReopened)
    case = await uow.case(event.case_id)
    uow.count(f"d:{day(uow.config, uow.now)}", f"reopen:{case.tier}")
    uow.count("open", f"{case.tier}:{case.severity.value}")


# ---- counted by other workflows directly ------------------------------------------------------


def sla_warned(uow: UnitOfWork, case: Case, clock: SlaClock) -> None:
    uow.count(f"d:{day(uow.config, uow.now)}", f"slaw:{clock.tier}:{clock.kind}")


def sla_breached(uow: UnitOfWork, case: Case, clock: SlaClock) -> None:
    uow.count(f"d:{day(uow.config, uow.now)}", f"slab:{clock.tier}:{clock.kind}")
    breach_overrun(uow, case, clock, uow.now)


def breach_overrun(uow: UnitOfWork, case: Case, clock: SlaClock, until: datetime) -> None:
    """Minutes past the target, on the day the clock was due; grows until the clock stops (ZADD GT)."""
    end = clock.met_at or until
    minutes = max(0, int((end - clock.due_at).total_seconds() // 60))
    member = f"{case.id}|{clock.tier}|{clock.kind}"
    uow.keep_top(f"breaches:{day(uow.config, clock.due_at)}", member, minutes, WORST_KEPT)


def csat(uow: UnitOfWork, tier: str, score: int, at: datetime, *, undo: bool = False) -> None:
    """A customer satisfaction score for `tier`, on the day it was recorded (`undo`: take it back)."""
    d = f"d:{day(uow.config, at)}"
    sign = -1 if undo else 1
    uow.count(d, f"csat_sum:{tier}", sign * score)
    uow.count(d, f"csat_n:{tier}", sign)


EVENT_HANDLERS: dict[type[Event], list[EventHandler]] = {
    CaseOpened: [on_opened],
    CaseEscalated: [on_escalated],
    CaseDeescalated: [on_deescalated],
    CaseAcknowledged: [on_acknowledged],
    CaseResolved: [on_resolved],
    CaseReopened: [on_reopened],
}
