"""When digests are due and which period each one covers.

Cron is read in the config time zone's wall clock, as a manager means it: "0 8 * * 1-5" is 08:00 at
the office all year. Around DST changes each wall-clock fire time fires exactly once:
- a time the clocks skip (02:30 on spring-forward day) fires once, at the moment the clocks jump
  (03:00 local), as Vixie cron does;
- a time that happens twice (02:30 on fall-back day) fires once, at its first occurrence.

Everything here is pure: the caller passes `now` from its Clock. Results are aware UTC datetimes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from bot.durations import parse_duration

# Candidates skipped at most: every second of a repeated hour for a 6-field cron, with room to spare.
_MAX_STEPS = 10_000
_ONE_TICK = timedelta(microseconds=1)
_LOOKS_LIKE_DATE = re.compile(r"^\d{4}-")
_SINCE_FORMS = "write since:7d, since:24h or since:2026-11-01"


@dataclass(frozen=True, slots=True)
class Period:
    """The half-open span of time a digest reports on: start < t <= end (aware datetimes)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a period needs aware datetimes")
        if self.start >= self.end:
            raise ValueError(f"a period must end after it starts ({self.start} → {self.end})")

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def next_fire(cron: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first fire time strictly after `after`, in UTC."""
    local = _aware(after).astimezone(tz)
    for wall in _walls(cron, local.replace(tzinfo=None), forward=True):
        fire = _instant(wall, tz)
        if fire > after:
            return fire
    raise ValueError(f"'{cron}' has no fire time after {after:%Y-%m-%d %H:%M}")


def previous_fire(cron: str, tz: ZoneInfo, before: datetime) -> datetime:
    """The last fire time strictly before `before`, in UTC."""
    local = _aware(before).astimezone(tz)
    wall = local.replace(tzinfo=None)
    if local.fold:
        # In the second pass of a repeated hour the wall clock reads earlier than fires that already
        # happened in the first pass, so start looking from where the first pass would read now.
        first, second = local.replace(fold=0).utcoffset(), local.utcoffset()
        if first is not None and second is not None:
            wall += first - second
    for candidate in _walls(cron, wall, forward=False):
        fire = _instant(candidate, tz)
        if fire < before:
            return fire
    raise ValueError(f"'{cron}' has no fire time before {before:%Y-%m-%d %H:%M}")


def fire_times(cron: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in (start, end], oldest first; for short spans (tests, previews)."""
    fires: list[datetime] = []
    moment = start
    while (moment := next_fire(cron, tz, moment)) <= end:
        fires.append(moment)
    return fires


def period_for(cron: str, tz: ZoneInfo, fire_time: datetime) -> Period:
    """What a run at `fire_time` covers: since the previous fire of the same cron.

    A Mon–Fri 08:00 digest on Monday covers Friday 08:00 → Monday 08:00, the last working day.
    `fire_time` may be any moment: an on-demand digest covers since the last scheduled one.
    """
    return Period(previous_fire(cron, tz, fire_time), _aware(fire_time).astimezone(UTC))


def previous_period(period: Period, tz: ZoneInfo) -> Period:
    """The comparison period: just before `period`, of the same wall-clock length.

    Measured on the wall clock so a daily digest compares 08:00 → 08:00 with 08:00 → 08:00 even when
    one of the days was 23 hours long.
    """
    start = period.start.astimezone(tz).replace(tzinfo=None)
    end = period.end.astimezone(tz).replace(tzinfo=None)
    earlier = _instant(start - (end - start), tz)
    if earlier >= period.start:  # a length swallowed by a DST jump: fall back to elapsed time
        earlier = period.start - period.length
    return Period(earlier, period.start.astimezone(UTC))


def missed_run(cron: str, tz: ZoneInfo, last_run: datetime | None, now: datetime) -> Period | None:
    """The one catch-up run due at start, or None.

    If fire times passed after `last_run` (the fire time of the last digest sent) up to and
    including `now`, one run is due for the latest of them, with the period it would have had;
    older missed periods are not sent (a manager wants the latest report, not a pile). With no
    last run (a new digest) nothing is due. Afterwards the caller schedules `next_fire(now)`.
    """
    if last_run is None:
        return None
    latest = previous_fire(cron, tz, now + _ONE_TICK)  # latest fire at or before now
    if latest <= last_run:
        return None
    return period_for(cron, tz, latest)


def parse_since(text: str, now: datetime, tz: ZoneInfo) -> Period:
    """The period a `/digest since:…` argument asks for, ending now.

    `7d`, `24h`, `1h30m`: that long before now; `2026-11-01`: from local midnight that day.
    Raises ValueError with a message for the person who typed it.
    """
    raw = text.strip()
    if raw.lower().startswith("since:"):
        raw = raw[len("since:") :].strip()
    now = _aware(now)
    if not raw:
        raise ValueError(f"say since when: {_SINCE_FORMS}")
    start = _local_midnight(raw, tz, now) if _LOOKS_LIKE_DATE.match(raw) else _duration_ago(raw, now)
    return Period(start, now.astimezone(UTC))


def _local_midnight(raw: str, tz: ZoneInfo, now: datetime) -> datetime:
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"'{raw}' is not a date (write it as YYYY-MM-DD, e.g. since:2026-11-01)") from None
    today = now.astimezone(tz).date()
    if day > today:
        raise ValueError(f"since:{day.isoformat()} is in the future; pick a day up to today ({today.isoformat()})")
    return _instant(datetime.combine(day, datetime.min.time()), tz)


def _duration_ago(raw: str, now: datetime) -> datetime:
    try:
        span = parse_duration(raw)
    except ValueError:
        raise ValueError(f"'{raw}' is not a period: {_SINCE_FORMS}") from None
    except OverflowError:
        raise ValueError(f"since:{raw} goes back too far: {_SINCE_FORMS}") from None
    if span <= timedelta(0):
        raise ValueError(f"since:{raw} covers no time: {_SINCE_FORMS}")
    try:
        return now.astimezone(UTC) - span
    except OverflowError:
        raise ValueError(f"since:{raw} goes back too far: {_SINCE_FORMS}") from None


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment} has no time zone; schedule maths needs aware datetimes")
    return moment


def _walls(cron: str, wall: datetime, *, forward: bool) -> Iterator[datetime]:
    """Cron fire times on the naive wall clock, bounded so no expression can spin forever."""
    try:
        it = croniter(cron, wall)
    except ValueError as exc:
        raise ValueError(f"'{cron}' is not a cron expression ({exc})") from None
    step = it.get_next if forward else it.get_prev
    for _ in range(_MAX_STEPS):
        try:
            candidate = step(datetime)
        except ValueError:
            raise ValueError(f"'{cron}' never fires (check its day and month fields)") from None
        yield candidate


def _instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant a local wall-clock reading means: its first occurrence, or the jump for a gap."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # The clocks skip `wall`. Between the readings with the offsets after (earlier instant, reads
    # before the gap) and before the jump (later instant, reads after it) lies the jump itself:
    # the first instant whose reading is not before `wall`. Transitions fall on whole seconds.
    low = int(wall.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    high = int(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        reading = datetime.fromtimestamp(middle, UTC).astimezone(tz).replace(tzinfo=None)
        if reading < wall:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)
