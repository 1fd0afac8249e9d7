"""When digests fire and what they cover: cron on the local wall clock, across DST, with catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.digest.schedule import (
    Period,
    fire_times,
    missed_run,
    next_fire,
    parse_since,
    period_for,
    previous_fire,
    previous_period,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")
WEEKDAYS_AT_8 = "0 8 * * 1-5"


def case(name: str, *values: Any) -> Any:
    """One row of a table: its name first, where a reader looks for it."""
    return pytest.param(*values, id=name)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def berlin(*parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=BERLIN, fold=fold).astimezone(UTC)  # type: ignore[misc]


# 2026: Berlin springs forward Sun 29 Mar (02:00 → 03:00) and falls back Sun 25 Oct (03:00 → 02:00);
# New York springs forward Sun 8 Mar (02:00 → 03:00) and falls back Sun 1 Nov (02:00 → 01:00).
# fmt: off
NEXT_FIRE_CASES = [
    # cron, zone, after (UTC), expected next fire (UTC)
    case("berlin weekday digest on the monday after spring-forward",
         WEEKDAYS_AT_8, BERLIN, utc(2026, 3, 27, 7), utc(2026, 3, 30, 6)),
    case("berlin weekday digest on the monday after fall-back",
         WEEKDAYS_AT_8, BERLIN, utc(2026, 10, 23, 6), utc(2026, 10, 26, 7)),
    case("new york weekday digest on the monday after spring-forward",
         WEEKDAYS_AT_8, NEW_YORK, utc(2026, 3, 6, 13), utc(2026, 3, 9, 12)),
    case("new york weekday digest on the monday after fall-back",
         WEEKDAYS_AT_8, NEW_YORK, utc(2026, 10, 30, 12), utc(2026, 11, 2, 13)),
    case("berlin skipped 02:30 fires when the clocks jump to 03:00",
         "30 2 * * *", BERLIN, utc(2026, 3, 28, 12), utc(2026, 3, 29, 1)),
    case("new york skipped 02:30 fires when the clocks jump to 03:00",
         "30 2 * * *", NEW_YORK, utc(2026, 3, 7, 12), utc(2026, 3, 8, 7)),
    case("berlin repeated 02:30 fires at its first occurrence",
         "30 2 * * *", BERLIN, utc(2026, 10, 24, 12), utc(2026, 10, 25, 0, 30)),
    case("new york repeated 01:30 fires at its first occurrence",
         "30 1 * * *", NEW_YORK, utc(2026, 10, 31, 12), utc(2026, 11, 1, 5, 30)),
    case("berlin repeated 02:30 does not fire again in the second pass",
         "30 2 * * *", BERLIN, utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),
    case("new york repeated 01:30 does not fire again in the second pass",
         "30 1 * * *", NEW_YORK, utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)),
    case("a fire time is not its own next fire",
         WEEKDAYS_AT_8, BERLIN, utc(2026, 11, 23, 7), utc(2026, 11, 24, 7)),
    case("a moment before a fire time gets that fire time",
         WEEKDAYS_AT_8, BERLIN, utc(2026, 11, 23, 6, 59, 59), utc(2026, 11, 23, 7)),
]
# fmt: on


@pytest.mark.parametrize(("cron", "tz", "after", "expected"), NEXT_FIRE_CASES)
def test_next_fire_follows_the_local_wall_clock_across_dst(
    cron: str, tz: ZoneInfo, after: datetime, expected: datetime
) -> None:
    fire = next_fire(cron, tz, after)
    assert fire == expected
    assert fire.utcoffset() == timedelta(0)


# fmt: off
EXACTLY_ONCE_CASES = [
    # cron, zone, from (exclusive), to (inclusive), every local fire in between
    case("berlin daily 08:00 over the spring-forward weekend",
         "0 8 * * *", BERLIN, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12),
         ["2026-03-28T08:00+01:00", "2026-03-29T08:00+02:00", "2026-03-30T08:00+02:00"]),
    case("new york daily 08:00 over the fall-back weekend",
         "0 8 * * *", NEW_YORK, utc(2026, 10, 31, 0), utc(2026, 11, 2, 23),
         ["2026-10-31T08:00-04:00", "2026-11-01T08:00-05:00", "2026-11-02T08:00-05:00"]),
    case("berlin every 20 minutes through the skipped hour",
         "*/20 * * * *", BERLIN, berlin(2026, 3, 29, 1, 30), berlin(2026, 3, 29, 3, 30),
         ["2026-03-29T01:40+01:00", "2026-03-29T03:00+02:00", "2026-03-29T03:20+02:00"]),
    case("berlin every 20 minutes through the repeated hour",
         "*/20 * * * *", BERLIN, berlin(2026, 10, 25, 1, 50), berlin(2026, 10, 25, 3, 10),
         ["2026-10-25T02:00+02:00", "2026-10-25T02:20+02:00", "2026-10-25T02:40+02:00",
          "2026-10-25T03:00+01:00"]),
    case("new york weekday digest over the spring-forward weekend",
         WEEKDAYS_AT_8, NEW_YORK, utc(2026, 3, 5, 0), utc(2026, 3, 10, 0),
         ["2026-03-05T08:00-05:00", "2026-03-06T08:00-05:00", "2026-03-09T08:00-04:00"]),
]
# fmt: on


@pytest.mark.parametrize(("cron", "tz", "start", "end", "expected"), EXACTLY_ONCE_CASES)
def test_each_wall_clock_fire_time_fires_exactly_once(
    cron: str, tz: ZoneInfo, start: datetime, end: datetime, expected: list[str]
) -> None:
    fires = fire_times(cron, tz, start, end)
    assert [f.astimezone(tz).isoformat(timespec="minutes") for f in fires] == expected


CRONS = ["0 8 * * 1-5", "30 2 * * *", "30 1 * * *", "*/20 * * * *", "0 9 * * 1", "15 3 1 * *"]
# The 2026 changes in UTC: Berlin then New York, spring and autumn.
CHANGES = [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)]
AROUND_CHANGES = st.one_of(
    st.tuples(st.sampled_from(CHANGES), st.integers(-3 * 3600, 3 * 3600)),  # the skipped and repeated hours
    st.tuples(st.sampled_from(CHANGES), st.integers(-7 * 86400, 7 * 86400)),  # the weeks around them
).map(lambda pair: pair[0] + timedelta(seconds=pair[1]))


@settings(max_examples=400, deadline=None)
@given(cron=st.sampled_from(CRONS), tz=st.sampled_from([BERLIN, NEW_YORK]), moment=AROUND_CHANGES)
def test_next_and_previous_fire_agree_on_every_moment_around_dst(cron: str, tz: ZoneInfo, moment: datetime) -> None:
    following = next_fire(cron, tz, moment)
    preceding = previous_fire(cron, tz, following)
    assert preceding <= moment < following
    assert next_fire(cron, tz, preceding) == following
    last = previous_fire(cron, tz, moment)
    assert last < moment <= next_fire(cron, tz, last)


def test_previous_fire_from_the_second_pass_of_a_repeated_hour_finds_the_first_pass_fire() -> None:
    second_pass_0210 = berlin(2026, 10, 25, 2, 10, fold=1)
    assert previous_fire("45 2 * * *", BERLIN, second_pass_0210) == berlin(2026, 10, 25, 2, 45)


# fmt: off
PERIOD_CASES = [
    # cron, fire time (or on-demand moment), expected start; all Berlin
    case("monday's weekday digest covers the last working day, friday",
         WEEKDAYS_AT_8, berlin(2026, 11, 23, 8), berlin(2026, 11, 20, 8)),
    case("tuesday's weekday digest covers monday",
         WEEKDAYS_AT_8, berlin(2026, 11, 24, 8), berlin(2026, 11, 23, 8)),
    case("a weekly digest covers seven days",
         "0 9 * * 1", berlin(2026, 11, 23, 9), berlin(2026, 11, 16, 9)),
    case("an on-demand digest covers since the last scheduled one",
         WEEKDAYS_AT_8, berlin(2026, 11, 25, 15, 30), berlin(2026, 11, 25, 8)),
    case("the monday after spring-forward covers friday in winter time",
         WEEKDAYS_AT_8, berlin(2026, 3, 30, 8), berlin(2026, 3, 27, 8)),
]
# fmt: on


@pytest.mark.parametrize(("cron", "moment", "start"), PERIOD_CASES)
def test_a_run_covers_the_time_since_the_previous_fire(cron: str, moment: datetime, start: datetime) -> None:
    assert period_for(cron, BERLIN, moment) == Period(start, moment)


# fmt: off
PREVIOUS_PERIOD_CASES = [
    # period start, period end, expected comparison start; all Berlin
    case("friday to monday compares with the 72 hours before",
         berlin(2026, 11, 20, 8), berlin(2026, 11, 23, 8), berlin(2026, 11, 17, 8)),
    case("a 23-hour dst day compares with the whole day before",
         berlin(2026, 3, 28, 8), berlin(2026, 3, 29, 8), berlin(2026, 3, 27, 8)),
    case("a week across fall-back compares with the week before",
         berlin(2026, 10, 26, 9), berlin(2026, 11, 2, 9), berlin(2026, 10, 19, 9)),
    case("20 minutes inside the repeated hour compare with the 20 minutes before",
         berlin(2026, 10, 25, 2, 50), berlin(2026, 10, 25, 2, 10, fold=1), berlin(2026, 10, 25, 2, 30)),
]
# fmt: on


@pytest.mark.parametrize(("start", "end", "expected"), PREVIOUS_PERIOD_CASES)
def test_the_comparison_period_ends_where_the_period_starts_with_the_same_wall_clock_length(
    start: datetime, end: datetime, expected: datetime
) -> None:
    assert previous_period(Period(start, end), BERLIN) == Period(expected, start)


MONDAY_0800 = berlin(2026, 11, 16, 8)
# fmt: off
MISSED_CASES = [
    # last run (the fire time it covered), now, expected catch-up period or None
    case("no fire time missed: nothing is due",
         MONDAY_0800, berlin(2026, 11, 16, 17), None),
    case("one fire time missed: that run is due",
         MONDAY_0800, berlin(2026, 11, 17, 9), Period(MONDAY_0800, berlin(2026, 11, 17, 8))),
    case("three fire times missed: one run, for the latest, with its own period",
         MONDAY_0800, berlin(2026, 11, 19, 9), Period(berlin(2026, 11, 18, 8), berlin(2026, 11, 19, 8))),
    case("down over the weekend: monday's run covers friday",
         berlin(2026, 11, 19, 8), berlin(2026, 11, 23, 10), Period(berlin(2026, 11, 20, 8), berlin(2026, 11, 23, 8))),
    case("starting exactly at a fire time: that run is due",
         MONDAY_0800, berlin(2026, 11, 17, 8), Period(MONDAY_0800, berlin(2026, 11, 17, 8))),
    case("a digest that never ran has nothing to catch up",
         None, berlin(2026, 11, 19, 9), None),
]
# fmt: on


@pytest.mark.parametrize(("last_run", "now", "expected"), MISSED_CASES)
def test_a_digest_missed_while_down_is_due_once_with_its_original_period(
    last_run: datetime | None, now: datetime, expected: Period | None
) -> None:
    due = missed_run(WEEKDAYS_AT_8, BERLIN, last_run, now)
    assert due == expected
    if due is not None:  # once it is sent, nothing more is due until the next fire time
        assert missed_run(WEEKDAYS_AT_8, BERLIN, due.end, now) is None


NOW = berlin(2026, 11, 23, 10, 15)
# fmt: off
SINCE_CASES = [
    # text, zone, expected start (the period ends now)
    case("days", "7d", BERLIN, NOW - timedelta(days=7)),
    case("hours with the since: prefix", "since:24h", BERLIN, NOW - timedelta(hours=24)),
    case("mixed units", "1h30m", BERLIN, NOW - timedelta(minutes=90)),
    case("a date starts at local midnight in berlin", "2026-11-01", BERLIN, utc(2026, 10, 31, 23)),
    case("a date starts at local midnight in new york", "since:2026-11-01", NEW_YORK, utc(2026, 11, 1, 4)),
    case("today starts at local midnight today", "2026-11-23", BERLIN, utc(2026, 11, 22, 23)),
    case("a midnight the clocks skip starts when they jump", "2026-09-06", SANTIAGO, utc(2026, 9, 6, 4)),
]
# fmt: on


@pytest.mark.parametrize(("text", "tz", "start"), SINCE_CASES)
def test_since_accepts_durations_and_dates(text: str, tz: ZoneInfo, start: datetime) -> None:
    assert parse_since(text, NOW, tz) == Period(start, NOW)


# fmt: off
BAD_SINCE_CASES = [
    # text, words the person must see
    case("a word", "yesterday", ["'yesterday' is not a period", "since:7d"]),
    case("a date in the future", "2026-12-01", ["since:2026-12-01 is in the future", "2026-11-23"]),
    case("tomorrow", "since:2026-11-24", ["in the future"]),
    case("an impossible date", "2026-13-01", ["'2026-13-01' is not a date", "YYYY-MM-DD"]),
    case("nothing", "since:", ["say since when"]),
    case("zero", "0d", ["covers no time"]),
    case("a negative duration", "-7d", ["'-7d' is not a period"]),
    case("beyond the calendar", "99999999999d", ["goes back too far"]),
]
# fmt: on


@pytest.mark.parametrize(("text", "words"), BAD_SINCE_CASES)
def test_since_refuses_bad_input_with_a_message_for_the_caller(text: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as refused:
        parse_since(text, NOW, BERLIN)
    for word in words:
        assert word in str(refused.value)


def test_a_cron_that_can_never_fire_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="never fires"):
        next_fire("0 0 30 2 *", BERLIN, NOW)


def test_a_malformed_cron_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="is not a cron expression"):
        next_fire("every morning", BERLIN, NOW)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        next_fire(WEEKDAYS_AT_8, BERLIN, datetime(2026, 11, 23, 8))


def test_a_period_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="must end after it starts"):
        Period(NOW, NOW)
