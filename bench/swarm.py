"""Swarm figures: expert matching over generated people, and knowledge-base search over generated articles.

Goals (issue 10): a match over 5,000 people and 200 skills in ≤ 5 ms p50; a KB search over 10,000
articles in ≤ 20 ms p50. Pure functions, no Redis: the figures are the cost of the decision itself.

    python bench/swarm.py [--people 5000] [--skills 200] [--matches 1000] [--articles 10000] [--queries 500]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflows.kb_search import KbIndex
from workflows.matching import Candidate, Hours, match

ZONES = ["UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles",
         "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney"]
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


class Samples:
    """Wall-clock and CPU time per operation: on a busy shared machine the CPU figure is the steadier one."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    @contextmanager
    def measure(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.thread_time()
        yield
        self.cpu.append(time.thread_time() - cpu)
        self.wall.append(time.perf_counter() - wall)


def zipf_weights(n: int, s: float = 0.9) -> list[float]:
    """A few popular items and a long tail, like real skills and words."""
    return [1 / (i + 1) ** s for i in range(n)]


def people(rng: random.Random, n: int, skills: list[str]) -> list[Candidate]:
    weights = zipf_weights(len(skills))
    nine_to_five = Hours(clock(9), clock(17))
    return [Candidate(key=f"p{i}", name=f"Person {i:05d}",
                      skills=frozenset(rng.choices(skills, weights, k=rng.randint(2, 6))),
                      timezone=rng.choice(ZONES), hours=nine_to_five if rng.random() < 0.7 else None,
                      on_leave=rng.random() < 0.03, open_cases=rng.randint(0, 6), swarms=rng.randint(0, 2),
                      max_load=5, invitations_7d=rng.randint(0, 6))
            for i in range(n)]


def bench_matching(rng: random.Random, n_people: int, n_skills: int, n_matches: int) -> tuple[Samples, str]:
    skills = [f"skill-{i:03d}" for i in range(n_skills)]
    weights = zipf_weights(n_skills)
    crowd = people(rng, n_people, skills)
    keys = [c.key for c in crowd]
    times = Samples()
    picked = uncovered = 0
    for _ in range(n_matches):
        needed = list(dict.fromkeys(rng.choices(skills, weights, k=rng.randint(2, 5))))
        now = MONDAY + timedelta(minutes=rng.randrange(7 * 24 * 60))
        members, exclude = rng.sample(keys, 2), rng.sample(keys, rng.randint(0, 3))
        with times.measure():
            result = match(needed, crowd, now, cap=3, exclude=exclude, always_include=members)
        picked += len(result.picks)
        uncovered += len(result.uncovered)
    return times, f"{picked / n_matches:.1f} invited, {uncovered / n_matches:.2f} skills uncovered per match"


def vocabulary(rng: random.Random, n: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "zo", "vi", "pe", "du", "sa", "qui", "ber", "on", "el", "ax"]
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choices(syllables, k=rng.randint(2, 4))))
    return sorted(words)


def bench_kb(rng: random.Random, n_articles: int, n_queries: int) -> tuple[Samples, float, Samples, str]:
    words = vocabulary(rng, 8000)
    weights = zipf_weights(len(words), 1.0)
    articles = {f"KB-{i}": (" ".join(rng.choices(words, weights, k=rng.randint(4, 8))),
                            " ".join(rng.choices(words, weights, k=rng.randint(40, 150))))
                for i in range(n_articles)}
    index = KbIndex()
    start = time.perf_counter()
    for article_id, (title, body) in articles.items():
        index.add(article_id, title, body)
    build = time.perf_counter() - start
    ids = list(articles)
    times = Samples()
    found = related = suggested = 0
    for q in range(n_queries):
        if q % 2 == 0:  # an escalation about a known problem: words from one article plus noise
            source = rng.choice(ids)
            title, body = articles[source]
            text = " ".join(rng.sample((title + " " + body).split(), 8) + rng.choices(words, weights, k=4))
        else:  # an escalation about something else
            source, text = "", " ".join(rng.choices(words, weights, k=12))
        with times.measure():
            hits = index.search(text, k=5)
        if source:
            related += 1
            found += bool(hits) and hits[0][0] == source
        else:
            suggested += bool(hits)
    updates = Samples()
    for _ in range(200):
        article_id = rng.choice(ids)
        with updates.measure():
            index.update(article_id, *articles[rng.choice(ids)])
            index.search("warm the length norms", k=1)  # an update is paid for at the next search
    quality = (f"(synthetic text, no topics) source article first for {found / related:.0%} of related queries; "
               f"{suggested / (n_queries - related):.0%} of unrelated ones suggest something")
    return times, build, updates, quality


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--skills", type=int, default=200)
    parser.add_argument("--matches", type=int, default=1000)
    parser.add_argument("--articles", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    matching, match_note = bench_matching(rng, args.people, args.skills, args.matches)
    searches, build, updates, quality = bench_kb(rng, args.articles, args.queries)

    rows = [
        (f"expert match ({args.people:,} people, {args.skills} skills)", matching, 0.005),
        (f"KB search ({args.articles:,} articles, k=5)", searches, 0.020),
        ("KB update of one article + next search", updates, None),
    ]
    print(f"{'operation':<46} {'n':>5} {'p50':>9} {'p99':>9} {'mean':>9} {'cpu p50':>9}  goal (p50)")
    for label, s, goal in rows:
        verdict = "" if goal is None else f"≤ {ms(goal)} {'met' if percentile(s.wall, 0.5) <= goal else 'MISSED'}"
        print(f"{label:<46} {len(s.wall):>5} {ms(percentile(s.wall, 0.5)):>9} {ms(percentile(s.wall, 0.99)):>9} "
              f"{ms(statistics.fmean(s.wall)):>9} {ms(percentile(s.cpu, 0.5)):>9}  {verdict}")
    print("p50, p99, mean: wall clock; cpu p50: this thread's CPU time (steadier when the machine is shared)")
    print(f"KB index build: {args.articles:,} articles in {build:.2f} s ({args.articles / build:,.0f} articles/s)")
    print(f"matching: {match_note}")
    print(f"KB search: {quality}")


if __name__ == "__main__":
    main()
