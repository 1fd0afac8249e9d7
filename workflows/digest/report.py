"""Read a period's rollups (O(days × tiers) keys, one pipeline) and say what they mean.

`gather` merges the per-day hashes of workflows.rollups into `Totals`; `compose` turns this
period's and the previous period's totals into the digest's sections and the chart's numbers.
Nothing here loads a case except the oldest open case per tier (a sorted-set score per open id).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.config import Config, Tier
from bot.durations import format_duration
from bot.messages import CardField, ThreadLink, case_thread
from bot.store import Store
from workflows.digest.articles import Articles
from workflows.digest.chart import ChartData, DailyTime, TierShare
from workflows.digest.schedule import Period
from workflows.digest.stats import Histogram

TOP = 3
RECURRING = 5


@dataclass
class Totals:
    """A period's rollups, merged over its days."""

    days: list[date]
    counts: Counter[str] = field(default_factory=Counter)
    tta: dict[str, Histogram] = field(default_factory=dict)
    ttr: dict[str, Histogram] = field(default_factory=dict)
    ttr_by_day: dict[date, Histogram] = field(default_factory=dict)
    breaches: Counter[str] = field(default_factory=Counter)  # "ESC-1|L2|resolve" -> minutes over
    kb_suggested: int = 0
    swarm: Counter[str] = field(default_factory=Counter)
    crisis: Counter[str] = field(default_factory=Counter)

    def total(self, prefix: str) -> int:
        return sum(v for k, v in self.counts.items() if k.startswith(prefix))

    def by_tier(self, name: str, tier: str) -> int:
        """`name:<tier>` plus `name:<tier>:<anything>`."""
        exact = f"{name}:{tier}"
        return sum(v for k, v in self.counts.items() if k == exact or k.startswith(exact + ":"))


def period_days(period: Period, config: Config, *, through_end_day: bool = False) -> list[date]:
    """The local days a period counts: each day whose noon lies in it (so 08:00 → 08:00 is one day).

    `through_end_day` adds the day the period ends on (an on-demand digest includes today so far).
    """
    tz = config.tz
    first = period.start.astimezone(tz).date()
    last = period.end.astimezone(tz).date()
    days = []
    d = first
    while d <= last:
        noon = datetime.combine(d, time(12), tz)
        if period.start <= noon < period.end:
            days.append(d)
        d += timedelta(days=1)
    if through_end_day and last not in days:
        days.append(last)
    return days or [last]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def gather(store: Store, config: Config, period: Period, *, through_end_day: bool = False) -> Totals:
    """Merge the rollups of the period's days: one pipelined round trip."""
    days = period_days(period, config, through_end_day=through_end_day)
    tiers = config.tier_ids
    pipe = store.redis.pipeline(transaction=False)
    for d in days:
        iso = d.isoformat()
        pipe.hgetall(store.rollup_key(f"d:{iso}"))
        for tier in tiers:
            pipe.hgetall(store.rollup_key(f"tta:{iso}:{tier}"))
            pipe.hgetall(store.rollup_key(f"ttr:{iso}:{tier}"))
        pipe.zrange(store.rollup_key(f"breaches:{iso}"), 0, TOP - 1, desc=True, withscores=True)
        pipe.get(store.rollup_key(f"kb-suggested:{iso}"))
        pipe.hgetall(store.rollup_key(f"swarm:{iso}"))
        pipe.hgetall(store.rollup_key(f"crisis:{iso}"))
    results = iter(await pipe.execute(raise_on_error=False))
    totals = Totals(days=days)
    for d in days:
        totals.counts.update({_text(k): int(v) for k, v in next(results).items()})
        for tier in tiers:
            tta, ttr = Histogram.from_fields(next(results)), Histogram.from_fields(next(results))
            totals.tta[tier] = totals.tta.get(tier, Histogram()).merge(tta)
            totals.ttr[tier] = totals.ttr.get(tier, Histogram()).merge(ttr)
            totals.ttr_by_day[d] = totals.ttr_by_day.get(d, Histogram()).merge(ttr)
        for member, score in next(results):
            name = _text(member)
            totals.breaches[name] = max(totals.breaches[name], int(score))
        kb = next(results)
        totals.kb_suggested += int(kb) if isinstance(kb, (bytes, str, int)) and _text(kb).isdigit() else 0
        for bucket_name in ("swarm", "crisis"):
            raw = next(results)
            if isinstance(raw, dict):
                getattr(totals, bucket_name).update({_text(k): int(v) for k, v in raw.items()})
    return totals


@dataclass(frozen=True)
class OpenNow:
    count: dict[str, int]  # by tier
    by_severity: dict[str, int]
    oldest: dict[str, tuple[str, datetime]]  # tier -> (case id, opened at)


async def open_now(store: Store, config: Config) -> OpenNow:
    """Open cases by tier and severity (the gauge) and the oldest open case per tier (the index)."""
    raw = await store.redis.hgetall(store.rollup_key("open"))
    by_severity: Counter[str] = Counter()
    for k, v in raw.items():
        _, _, sev = _text(k).partition(":")
        by_severity[sev] += int(v)
    counts: dict[str, int] = {}
    oldest: dict[str, tuple[str, datetime]] = {}
    for tier in config.tier_ids:
        ids = await store.open_case_ids(tier=tier)
        counts[tier] = len(ids)
        if not ids:
            continue
        scores = await store.redis.zmscore(store.keys.created("case"), ids)
        known = [(s, i) for s, i in zip(scores, ids, strict=True) if s is not None]
        if known:
            score, case_id = min(known)
            oldest[tier] = (case_id, datetime.fromtimestamp(score / 1000, config.tz))
    return OpenNow(counts, {k: v for k, v in sorted(by_severity.items()) if v > 0}, oldest)


# ---- what the numbers say -----------------------------------------------------------------------


def person_tiers(config: Config) -> list[Tier]:
    """Tiers people (or vendors) work in: the ones with a channel. A tier without one is self-service (L0)."""
    return [t for t in config.tiers if t.channels.items() or t.private_channels.items()]


def self_service_tier(config: Config) -> Tier | None:
    staffed = {t.id for t in person_tiers(config)}
    return next((t for t in config.tiers if t.id not in staffed), None)


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def _fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _dur(seconds: float | None) -> str:
    return "n/a" if seconds is None else format_duration(timedelta(seconds=round(seconds)))


def _delta(now: float | None, before: float | None, unit: str = "") -> str:
    if now is None or before is None:
        return ""
    diff = round(now - before)
    return f" ({'+' if diff >= 0 else '−'}{abs(diff)}{unit} vs previous)"


@dataclass(frozen=True)
class Numbers:
    """The headline figures of one period (also what the tests compare with a brute force)."""

    opened: dict[str, int]  # by tier
    resolved: dict[str, int]  # by resolving tier
    escalated: dict[str, int]  # out of each tier
    entered: dict[str, int]
    fcr: int
    front: str | None
    shares: dict[str, float]  # resolved share per person tier
    csat: dict[str, tuple[int, int]]  # tier -> (sum, count)
    sla_warnings: dict[str, int]
    sla_breaches: dict[str, int]


def numbers(totals: Totals, config: Config) -> Numbers:
    tiers = config.tier_ids
    people = person_tiers(config)
    resolved = {t: totals.by_tier("res", t) for t in tiers}
    resolved_people = sum(resolved[t.id] for t in people)
    front = people[0].id if people else None
    return Numbers(
        opened={t: totals.by_tier("open", t) for t in tiers},
        resolved=resolved,
        escalated={t: totals.by_tier("esc", t) for t in tiers},
        entered={t: totals.by_tier("enter", t) for t in tiers},
        fcr=totals.counts[f"fcr:{front}"] if front else 0,
        front=front,
        shares={t.id: (resolved[t.id] / resolved_people if resolved_people else 0.0) for t in people},
        csat={t: (totals.counts[f"csat_sum:{t}"], totals.counts[f"csat_n:{t}"]) for t in tiers
              if totals.counts[f"csat_n:{t}"]},
        sla_warnings={t: totals.by_tier("slaw", t) for t in tiers},
        sla_breaches={t: totals.by_tier("slab", t) for t in tiers},
    )


@dataclass
class Digest:
    title: str
    summary: str
    sections: list[CardField]
    links: list[ThreadLink]
    chart: ChartData

    @property
    def text(self) -> str:
        return "\n\n".join([self.summary] + [f"{s.label}\n{s.value}" for s in self.sections])


def compose(name: str, period: Period, config: Config, now: Totals, before: Totals,
            open_cases: OpenNow, articles: Articles) -> Digest:
    tz = config.tz
    cur, prev = numbers(now, config), numbers(before, config)
    people = person_tiers(config)
    start, end = period.start.astimezone(tz), period.end.astimezone(tz)
    title = f"Digest {name}: {start:%a %d %b %H:%M} → {end:%a %d %b %H:%M} ({config.timezone})"
    opened, resolved = sum(cur.opened.values()), sum(cur.resolved.values())
    summary = (f"{opened} opened{_delta(opened, sum(prev.opened.values()))}, {resolved} resolved"
               f"{_delta(resolved, sum(prev.resolved.values()))}, {sum(open_cases.count.values())} open now.")
    sections: list[CardField] = []

    def add(heading: str, lines: list[str]) -> None:
        sections.append(CardField(label=heading, value="\n".join(lines) or "none"))

    # Volume
    lines = []
    for t in people:
        sev = {k.rsplit(":", 1)[1]: v for k, v in now.counts.items() if k.startswith(f"open:{t.id}:") and v}
        sev_text = ", ".join(f"{s} {n}" for s, n in sorted(sev.items()))
        oldest = open_cases.oldest.get(t.id)
        old_text = (f"; oldest open {oldest[0]} since {oldest[1]:%a %d %b %H:%M}" if oldest else "")
        lines.append(f"{t.id}: opened {cur.opened[t.id]}" + (f" ({sev_text})" if sev_text else "")
                     + f", resolved {cur.resolved[t.id]}, open now {open_cases.count.get(t.id, 0)}{old_text}")
    if open_cases.by_severity:
        lines.append("Open now by severity: " + ", ".join(f"{s} {n}" for s, n in open_cases.by_severity.items()))
    add("Volume", lines)

    # Tier mix vs target, deflection, FCR
    lines = []
    for t in people:
        share = cur.shares.get(t.id, 0.0) * 100
        target = f" vs target {t.target_share * 100:.0f}% ({round(share - t.target_share * 100):+d} pts)" \
            if t.target_share is not None else ""
        lines.append(f"{t.id}: {share:.0f}% of resolved{target}")
    l0 = self_service_tier(config)
    deflected = now.kb_suggested
    rate = _pct(deflected, deflected + opened)
    l0_target = f" vs target {l0.target_share * 100:.0f}%" if l0 and l0.target_share is not None else ""
    lines.append(f"{l0.id if l0 else 'L0'} deflection: {deflected} solved by a knowledge-base suggestion "
                 f"({_fmt_pct(rate)} of requests){l0_target}")
    if cur.front:
        fcr_pct, prev_fcr = _pct(cur.fcr, resolved), _pct(prev.fcr, sum(prev.resolved.values()))
        lines.append(f"First-contact resolution at {cur.front}: {cur.fcr} of {resolved} resolved "
                     f"({_fmt_pct(fcr_pct)}){_delta(fcr_pct, prev_fcr, ' pts')}")
    add("Tier mix", lines)

    # Times
    lines = []
    for t in people:
        tta, ttr = now.tta.get(t.id, Histogram()), now.ttr.get(t.id, Histogram())
        if not tta.count and not ttr.count:
            continue
        prev_ttr = before.ttr.get(t.id, Histogram()).quantile(0.5)
        cur_ttr = ttr.quantile(0.5)
        change = ""
        if cur_ttr is not None and prev_ttr is not None:
            change = f" (previous p50 {_dur(prev_ttr)})"
        lines.append(f"{t.id}: acknowledge p50 {_dur(tta.quantile(0.5))} / p90 {_dur(tta.quantile(0.9))}; "
                     f"resolve p50 {_dur(cur_ttr)} / p90 {_dur(ttr.quantile(0.9))}{change}")
    add("Times", lines or ["no acknowledgements or resolutions in this period"])

    # SLA
    lines = [f"{t}: {cur.sla_warnings[t]} warnings, {cur.sla_breaches[t]} breaches"
             for t in config.tier_ids if cur.sla_warnings[t] or cur.sla_breaches[t]]
    links: list[ThreadLink] = []
    worst = sorted(now.breaches.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    for member, minutes in worst:
        case_id, tier, kind = [*member.split("|"), "", ""][:3]
        lines.append(f"worst: {case_id} {kind} in {tier}, {minutes} min over target")
        links.append(ThreadLink(thread=case_thread(case_id, tier), label=f"{case_id} ({tier})"))
    total_breaches = sum(cur.sla_breaches.values())
    lines.insert(0, f"{sum(cur.sla_warnings.values())} warnings, {total_breaches} breaches"
                    f"{_delta(total_breaches, sum(prev.sla_breaches.values()))}")
    add("SLA", lines)

    # Escalations and rules
    lines = []
    for t in people:
        if cur.entered[t.id]:
            lines.append(f"{t.id}: {cur.escalated[t.id]} of {cur.entered[t.id]} escalated "
                         f"({_fmt_pct(_pct(cur.escalated[t.id], cur.entered[t.id]))})")
    rules = Counter({k.split(":", 1)[1]: v for k, v in now.counts.items() if k.startswith("rule:") and v})
    for rule, count in rules.most_common(TOP):
        lines.append(f"rule {int(rule) + 1} ({_rule_text(config, int(rule))}) fired {count}×")
    add("Escalations", lines)

    add("Recurring problems", recurring(now, articles))

    # Enterprise customers
    lines = []
    for key, customer in config.customers.items():
        esc, opened_c = now.counts[f"cust_esc:{key}"], now.counts[f"cust_open:{key}"]
        if esc or opened_c:
            csm = config.people[customer.csm].name if customer.csm and customer.csm in config.people else "no CSM"
            lines.append(f"{customer.name}: {opened_c} opened, {esc} escalated (CSM {csm})")
    add("Enterprise customers", lines or ["no enterprise cases in this period"])

    # CSAT
    lines = []
    for tier, (total, count) in cur.csat.items():
        before_avg = prev.csat.get(tier)
        was = f" (previous {before_avg[0] / before_avg[1]:.1f})" if before_avg else ""
        lines.append(f"{tier}: {total / count:.1f} average from {count} scores{was}")
    add("CSAT", lines or ["no scores recorded in this period"])

    # Swarms and crises (their workflows add these rollups)
    add("Swarms", [", ".join(f"{k} {v}" for k, v in sorted(now.swarm.items()))] if now.swarm
        else ["no swarms in this period"])
    add("Incidents", [", ".join(f"{k} {v}" for k, v in sorted(now.crisis.items()))] if now.crisis
        else ["no incidents in this period"])

    chart = ChartData(
        title=f"{name}: {start:%d %b} – {end:%d %b}",
        tiers=[TierShare(t.id, cur.shares.get(t.id, 0.0), t.target_share) for t in people],
        days=[DailyTime(d, now.ttr_by_day.get(d, Histogram()).quantile(0.5)) for d in now.days],
    )
    return Digest(title=title, summary=summary, sections=sections, links=links, chart=chart)


def recurring(now: Totals, articles: Articles) -> list[str]:
    """The period's top categories and title keywords that no published article covers ("write an
    article" candidates, a draft named where one waits for review), and the ones already covered."""
    covered: list[str] = []
    lines: list[str] = []
    top: list[str] = []
    for label, prefix in (("categories", "cat:"), ("keywords", "kw:")):
        counts = Counter({k[len(prefix):]: v for k, v in now.counts.items() if k.startswith(prefix) and v})
        open_: list[tuple[str, int]] = []
        for problem, n in counts.most_common():
            if len(open_) == RECURRING:
                break
            if article := articles.published_for(problem):
                covered.append(f"{problem} {n} ({article})")
            else:
                open_.append((problem, n))
        if open_:
            lines.append(f"{label}: " + ", ".join(f"{p} {n}" for p, n in open_))
        for problem, n in open_[:2]:
            if n > 1:
                draft = articles.draft_for(problem)
                top.append(problem + (f" (draft {draft} awaiting review)" if draft else ""))
    if top:
        lines.append("write an article: " + ", ".join(top))
    if lines or covered:
        shown = ", ".join(covered[:RECURRING]) + (f" and {len(covered) - RECURRING} more"
                                                  if len(covered) > RECURRING else "")
        lines.append(f"covered by published articles: {len(covered)}" + (f" ({shown})" if covered else ""))
    return lines


def _rule_text(config: Config, index: int) -> str:
    if not 0 <= index < len(config.routing):
        return "removed since"
    rule = config.routing[index]
    conds = [f"{k} {','.join(str(x) for x in v)}" for k, v in rule.if_.model_dump().items() if v]
    return (" and ".join(conds) or "always") + (f" → {rule.then.tier}" if rule.then.tier else "")
