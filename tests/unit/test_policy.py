"""Pure policy, table-driven: routing (first match wins), on-call rotations, working hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import Config, Schedule
from bot.model import Severity
from workflows.policy import Facts, available, next_tier, previous_tier, route, who_is_on_call

ROUTES = [
    # facts -> (tier, private, swarm, add, notify_csm, rule index)
    (Facts(text="refund", category="fraud"), ("L2", True, False, ["person:fay"], False, 0)),
    (Facts(text="refund", category="compliance", severity=Severity.SEV1),
     ("L2", True, False, ["person:fay"], False, 0)),
    (Facts(text="charged twice", category="billing", severity=Severity.SEV2), ("L2", True, False, [], False, 1)),
    (Facts(text="charged twice", category="billing", severity=Severity.SEV3), ("L1", False, False, [], False, 4)),
    (Facts(text="login", segment="enterprise", severity=Severity.SEV1), ("L2", False, False, [], True, 2)),
    (Facts(text="login", segment="smb", severity=Severity.SEV1), ("L1", False, False, [], False, 4)),
    (Facts(text="The API is DOWN again"), ("L3", False, True, [], False, 3)),
    (Facts(text="slow for all users in EU"), ("L3", False, True, [], False, 3)),
    (Facts(text="downtime report"), ("L1", False, False, [], False, 4)),  # keywords match whole words
    # an enterprise sev1 outage: rule 3 (segment) comes before rule 4 (keywords), and it alone decides
    (Facts(text="outage", segment="enterprise", severity=Severity.SEV1), ("L2", False, False, [], True, 2)),
]


@pytest.mark.parametrize(("facts", "expected"), ROUTES)
def test_routing_takes_the_first_matching_rule_and_no_later_one(
        facts: Facts, expected: tuple[object, ...], example_config: Config) -> None:
    d = route(facts, example_config)
    assert (d.tier, d.private, d.swarm, d.add, d.notify_csm, d.rule) == expected


def test_routing_by_origin_channel_and_customer(example_config: Config) -> None:
    data = example_config.model_dump(by_alias=True)
    data["routing"] = [{"if": {"channel": ["C0VIP"]}, "then": {"tier": "L3"}},
                       {"if": {"customer": ["initech"]}, "then": {"tier": "L2"}}]
    config = Config.model_validate(data)
    assert route(Facts(text="x", channel="C0VIP"), config).tier == "L3"
    assert route(Facts(text="x", customer="initech"), config).tier == "L2"
    assert route(Facts(text="x"), config).tier == "L1"  # no rule: the first staffed tier
    assert route(Facts(text="x"), config).rule is None


BERLIN_MONDAY_0900 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 CET, the weekly hand-off


@pytest.mark.parametrize(("at", "now", "nxt"), [
    (datetime(2026, 11, 23, 7, 59, tzinfo=UTC), "ben", "cleo"),   # a minute before the hand-off
    (BERLIN_MONDAY_0900, "cleo", "ben"),
    (datetime(2026, 11, 29, 22, 0, tzinfo=UTC), "cleo", "ben"),
    (datetime(2026, 11, 30, 8, 0, tzinfo=UTC), "ben", "cleo"),
])
def test_a_weekly_rotation_hands_off_at_local_time(at: datetime, now: str, nxt: str, example_config: Config) -> None:
    oc = who_is_on_call(example_config.schedules["l2-primary"], at, example_config.tz)
    assert (oc.now, oc.next) == (now, nxt)
    assert oc.until > at


def test_a_daily_rotation_cycles_through_members_each_day(example_config: Config) -> None:
    sched = Schedule(rotation="daily", handoff="08:00", members=["ben", "cleo", "dev"], start="2026-11-01")
    people = [who_is_on_call(sched, datetime(2026, 11, d, 12, 0, tzinfo=UTC), example_config.tz).now
              for d in (1, 2, 3, 4)]
    assert people == ["ben", "cleo", "dev", "ben"]
    early = who_is_on_call(sched, datetime(2026, 11, 2, 6, 0, tzinfo=UTC), example_config.tz)  # 07:00 CET
    assert early.now == "ben"


@pytest.mark.parametrize(("at", "expected"), [
    (datetime(2026, 11, 23, 14, 0, tzinfo=UTC), True),    # 09:00 in New York, Monday
    (datetime(2026, 11, 23, 13, 59, tzinfo=UTC), False),  # 08:59
    (datetime(2026, 11, 23, 22, 0, tzinfo=UTC), False),   # 17:00
    (datetime(2026, 11, 28, 15, 0, tzinfo=UTC), False),   # Saturday
])
def test_working_hours_are_read_in_the_persons_own_timezone(at: datetime, expected: bool,
                                                            example_config: Config) -> None:
    assert available(example_config.people["dev"], at, example_config.tz) is expected
    assert available(example_config.people["erin"], at, example_config.tz) is True  # no hours: always


def test_tier_order_skips_tiers_without_a_channel(example_config: Config) -> None:
    assert next_tier("L1", example_config) == "L2"
    assert next_tier("L3", example_config) == "vendor"
    assert next_tier("vendor", example_config) is None
    assert previous_tier("L1", example_config) is None  # L0 is self-service: no channel
