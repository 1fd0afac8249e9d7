"""Config validation: the shipped examples load, and every mistake names the file, the key and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from bot.config import ConfigError, load_config, parse_config
from tests.conftest import EXAMPLE_CONFIG, PROJECT_CONFIG


def test_the_in_repo_copy_of_the_reference_example_config_loads_as_it_is() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert config.tier_ids == ["L0", "L1", "L2", "L3", "vendor"]
    assert config.tier("L2").private_channels.slack == "G0L2PRIVATE"
    assert config.routing[0].then.add == ["person:fay"]
    assert config.policies["l2-default"].repeat == 1


def test_the_projects_own_commented_config_accepts_everything_in_the_example() -> None:
    shipped = load_config(PROJECT_CONFIG)
    example = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    for section in example:
        assert getattr(shipped, section) is not None
    assert set(load_config(EXAMPLE_CONFIG).people) <= set(shipped.people)


def broken(**changes: object) -> str:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    for path, value in changes.items():
        target = data
        parts = path.split("__")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        if value is DELETE:
            del target[int(last) if last.isdigit() else last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return yaml.safe_dump(data)


DELETE = object()

MISTAKES = [
    # (what is wrong, how to break the example, what the message must say)
    ("unknown policy", {"tiers__2__policy": "l9-default"},
     "escalator.yaml: tiers[2].policy: unknown policy 'l9-default' (known: l2-default, l3-default)"),
    ("unknown person in a schedule", {"schedules__l2-primary__members": ["ben", "zed"]},
     "schedules.l2-primary.members[1]: unknown person 'zed'"),
    ("bad duration", {"policies__l2-default__steps__0__wait": "10 minutes"},
     "policies.l2-default.steps[0].wait: '10 minutes' is not a duration (use e.g. 90s, 10m"),
    ("duration without unit", {"tiers__1__sla": {"acknowledge": 15}},
     "tiers[1].sla.acknowledge: '15' has no unit (write e.g. 15m or 15h)"),
    ("unknown key", {"tiers__1__chanels": {"slack": "C1"}},
     "tiers[1]: unknown key 'chanels' (known keys: id, name, target_share, channels"),
    ("missing required key", {"tiers__1__name": DELETE}, "tiers[1].name: required key is missing; add it"),
    ("bad severity in a rule", {"routing__1__if__severity": ["sev9"]}, "routing[1].if.severity[0]:"),
    ("unknown tier in a rule", {"routing__4__then__tier": "L7"},
     "routing[4].then.tier: unknown tier 'L7' (known: L0, L1, L2, L3, vendor)"),
    ("bad target", {"policies__l3-default__steps__1__notify": ["team:erin"]},
     "policies.l3-default.steps[1].notify[0]: 'team:erin' is not a target (use schedule:NAME, person:NAME or channel)"),
    ("bad timezone", {"timezone": "Mars/Olympus"}, "timezone: unknown timezone 'Mars/Olympus'"),
    ("bad working hours", {"people__dev__hours": "9 to 5"}, "people.dev.hours: '9 to 5' is not a time range"),
    ("bad cron", {"digests__0__every": "every morning"}, "digests[0].every: 'every morning' is not a cron expression"),
    ("bad rotation", {"schedules__l3-primary__rotation": "monthly"},
     "schedules.l3-primary.rotation: input should be 'daily' or 'weekly'"),
    ("unknown csm", {"customers__globex__csm": "nobody"}, "customers.globex.csm: unknown person 'nobody'"),
    ("bad hand-off", {"schedules__l2-primary__handoff": "someday 9"},
     "schedules.l2-primary.handoff: 'someday 9' is not a hand-off time"),
    ("wait missing before the last step", {"policies__l3-default__steps__0__wait": DELETE},
     "policies.l3-default.steps[0].wait: required on every step but the last"),
    ("a list where a mapping belongs", {"people": ["alice"]}, "people: must be a mapping (key: value)"),
    ("duplicate tier", {"tiers__4__id": "L3"}, "tiers[4].id: tier 'L3' is defined twice"),
]


@pytest.mark.parametrize(("what", "change", "message"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_config_mistake_is_named_with_file_key_and_fix(what: str, change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(broken(**change), "escalator.yaml")
    assert any(message in p for p in err.value.problems), err.value.problems
    assert all(p.startswith("escalator.yaml: ") for p in err.value.problems)


def test_every_problem_is_reported_at_once_not_just_the_first() -> None:
    text = broken(tiers__2__policy="nope", customers__globex__csm="ghost")
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert len(err.value.problems) >= 2


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("tiers:\n  - id: L1\n   name: x\n", "bad.yaml")
    assert err.value.problems[0].startswith("bad.yaml: line 3")


def test_a_missing_file_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert "file not found" in str(err.value) and "--config" in str(err.value)


def test_a_minimal_two_tier_team_needs_only_tiers() -> None:
    config = parse_config(textwrap.dedent("""
        tiers:
          - {id: L1, name: Frontline, channels: {slack: C1}}
          - {id: dev, name: Developers, channels: {teams: "19:dev@thread.tacv2"}}
    """))
    assert config.tier_ids == ["L1", "dev"] and config.timezone == "UTC"
