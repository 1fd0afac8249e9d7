"""The stored form (bot.codec): compact, exact, and still reading what the previous release wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import PydanticUndefined

import bot.incidents
import bot.knowledge
import bot.swarms
from bot import codec
from bot.model import (
    Actor,
    Case,
    CaseStatus,
    FrozenStep,
    Model,
    Origin,
    PageTarget,
    Paging,
    Severity,
    SlaClock,
    TierVisit,
    TimelineEntry,
    VendorInfo,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PERSISTED = (bot.swarms.Swarm, bot.incidents.Incident, bot.knowledge.KbArticle)  # imported so Model knows them


def persisted_models() -> list[type[Model]]:
    out: list[type[Model]] = []
    todo = [Model]
    while todo:
        for sub in todo.pop().__subclasses__():
            out.append(sub)
            todo.append(sub)
    return sorted(set(out), key=lambda c: c.__name__)


# Fields equal to their default are not stored, so a default is part of the stored format: changing one
# silently changes every record already stored. Change one here only together with a migration.
DEFAULTS: dict[str, dict[str, Any]] = {
    "Actor": {"person": None, "platform": "console", "user_id": None, "name": "someone", "system": False},
    "Case": {"version": 0, "customer": None, "category": None, "severity": "sev3", "status": "open", "owner": None,
             "watchers": [], "informed": [], "private": False, "swarm": False, "notify_csm": False, "rule": None,
             "origin": None, "acknowledged_at": None, "acknowledged_by": None, "resolved_at": None,
             "resolved_tier": None, "resolution": None, "reopened": 0, "tiers": [], "sla": [], "paging": None,
             "vendor": None, "incident": None},
    "Credit": {"invited": False, "joined": False, "minutes": 0.0, "member_at_resolution": False,
               "authored_resolution": False},
    "FrozenStep": {"wait": None, "skip_off_hours": True},
    "Incident": {"version": 0, "severity": "sev2", "component": None, "keywords": [], "customers": [],
                 "status": "investigating", "roles": {}, "on_call": [], "cases": [], "first_case_at": None,
                 "updates": [], "notes": [], "told": {}, "next_update_due": None, "reminded": False,
                 "overdue_paged": False, "overdue_seen_at": None, "resolved_at": None},
    "IncidentNote": {},
    "IncidentUpdate": {"due_at": None, "late_by": timedelta(0)},
    "Invitation": {"skills": [], "state": "pending", "answered_at": None},
    "KbArticle": {"version": 0, "environment": "", "cause": "", "skills": [], "related": [], "status": "draft",
                  "author": None, "reviewed_by": None, "private": False},
    "Origin": {"channel": None, "thread": None, "message_url": None},
    "PageTarget": {"name": ""},
    "Paging": {"repeat": 0, "step": 0, "round": 0, "next_at": None, "stopped_at": None, "stopped_by": None,
               "paged": []},
    "Record": {"version": 0},
    "SlaClock": {"warn_at": 0.8, "paused_since": None, "paused_total": timedelta(0), "warned": False,
                 "breached": False, "met_at": None},
    "Swarm": {"version": 0, "status": "active", "private": False, "channels": {}, "needed": [], "members": [],
              "joined_at": {}, "lead": None, "started_by": "", "note": "", "invitations": [], "credit": {},
              "ended_at": None, "resolution": None, "cause": None, "environment": None, "kb_id": None},
    "ThreadRef": {"url": None},
    "TierVisit": {"reason": "", "private": False},
    "TimelineEntry": {"detail": "", "tier": None},
    "VendorInfo": {"ticket": None, "last_heard": None},
}


def test_the_defaults_of_every_stored_model_are_pinned() -> None:
    found = {}
    for cls in persisted_models():
        found[cls.__name__] = {
            name: field.default_factory() if field.default_factory is not None else field.default
            for name, field in cls.model_fields.items()
            if field.default_factory is not None or field.default is not PydanticUndefined}
    assert found == DEFAULTS


def test_short_names_are_unique_and_never_the_name_of_a_field() -> None:
    assert len(set(codec.SHORT.values())) == len(codec.SHORT)
    fields = {name for cls in persisted_models() for name in cls.model_fields}
    assert not set(codec.SHORT.values()) & fields
    for cls in persisted_models():
        keys = [field.alias or name for name, field in cls.model_fields.items()]
        assert len(set(keys)) == len(keys), cls.__name__


def full_case() -> Case:
    """A case with every field away from its default, times below the second, text beyond ASCII."""
    at = T0 + timedelta(microseconds=123457)
    return Case(
        id="ESC-1042", version=7, created_at=at, title="Carte refusée → 500", customer="globex", category="payments",
        severity=Severity.SEV1, tier="L2", status=CaseStatus.WAITING_VENDOR, owner="ben", watchers=["alice"],
        informed=["ben", "cleo"], private=True, swarm=True, notify_csm=True, rule=0,
        origin=Origin(platform="slack", channel="C1", thread="1.2", message_url="https://x.test/m"),
        opened_by=Actor(person="alice", platform="slack", user_id="U0ALICE", name="Alice Adams"),
        updated_at=at + timedelta(hours=1), acknowledged_at=at + timedelta(minutes=3), acknowledged_by="ben",
        resolved_at=at + timedelta(hours=2), resolved_tier="L2", resolution="fixed", reopened=1,
        tiers=[TierVisit(tier="L1", at=at, reason="rule 0", private=True)],
        sla=[SlaClock(kind="resolve", tier="L2", started_at=at, target=timedelta(hours=8), warn_at=0.5,
                      paused_since=at + timedelta(minutes=5), paused_total=timedelta(seconds=90.5), warned=True,
                      breached=True, met_at=at + timedelta(hours=2))],
        paging=Paging(policy="l2-default", tier="L2", steps=[FrozenStep(
            targets=[PageTarget(kind="schedule", name="l2-primary")], wait=timedelta(minutes=10),
            skip_off_hours=False)], repeat=2, step=1, round=1, started_at=at, next_at=at + timedelta(minutes=10),
            stopped_at=at + timedelta(minutes=3), stopped_by="ben", paged=["ben"]),
        vendor=VendorInfo(name="acme", ticket="T-1", since=at, last_heard=at + timedelta(days=1)), incident="INC-3")


def test_a_case_with_every_field_set_comes_back_equal_and_any_model_reader_reads_it() -> None:
    case = full_case()
    stored = codec.encode_record(case)
    assert codec.decode_record(Case, stored) == case
    assert Case.model_validate_json(stored) == case  # raw readers (crisis matching) keep working
    assert '"t":"Carte refusée → 500"' in stored  # UTF-8 as is, not \u escapes


def test_a_new_case_is_stored_in_this_form() -> None:
    case = Case(id="ESC-1001", version=1, created_at=T0, title="Card declined", tier="L1", opened_by=Actor(),
                updated_at=T0, tiers=[TierVisit(tier="L1", at=T0)])
    assert codec.encode_record(case) == (
        '{"id":"ESC-1001","v":1,"c":1795424400.0,"t":"Card declined","ti":"L1","ob":{},"u":1795424400.0,'
        '"ts":[{"ti":"L1","at":1795424400.0}]}')


def test_the_long_form_written_before_reads_as_the_same_case() -> None:
    case = full_case()
    long = json.loads(case.model_dump_json())  # field names, every field
    for path in (("created_at",), ("tiers", 0, "at"), ("sla", 0, "started_at"), ("paging", "next_at")):
        node: Any = long
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = (T0 + timedelta(seconds=node[path[-1]] - T0.timestamp())).isoformat()
    long["sla"][0]["target"], long["paging"]["steps"][0]["wait"] = "PT8H", "PT10M"
    assert codec.decode_record(Case, json.dumps(long)) == case


@pytest.mark.parametrize(("entry", "stored"), [
    (TimelineEntry(at=T0, actor="Alice Adams", action="escalated", detail="L1 → L2: 500s", tier="L1"),
     "1795424400\x1fAlice Adams\x1fescalated\x1fL1 → L2: 500s\x1fL1"),
    (TimelineEntry(at=T0, actor="Alice Adams", action="claimed", tier="L1"),
     "1795424400\x1fAlice Adams\x1fclaimed\x1f\x1fL1"),
    (TimelineEntry(at=T0, actor="Escalator", action="paged", detail="Ben"), "1795424400\x1fEscalator\x1fpaged\x1fBen"),
    (TimelineEntry(at=T0 + timedelta(microseconds=5), actor="", action="csat"), "1795424400.000005\x1f\x1fcsat"),
    (TimelineEntry(at=T0, actor="a", action="b", tier=""), "1795424400\x1fa\x1fb\x1f\x1f"),
])
def test_timeline_entries_are_their_fields_between_separators(entry: TimelineEntry, stored: str) -> None:
    assert codec.encode_entry(entry) == stored
    assert codec.decode_entry(TimelineEntry, stored) == entry
    assert codec.decode_entry(TimelineEntry, stored.encode()) == entry  # as Redis returns it


def test_an_entry_whose_text_holds_the_separator_is_stored_in_the_long_form() -> None:
    entry = TimelineEntry(at=T0, actor="Alice", action="noted", detail="pasted \x1f from a terminal", tier="L1")
    stored = codec.encode_entry(entry)
    assert json.loads(stored)["detail"] == "pasted \x1f from a terminal"
    assert codec.decode_entry(TimelineEntry, stored) == entry


def test_an_entry_written_before_reads_the_same() -> None:
    old = '{"at":"2026-11-23T09:00:00Z","actor":"Alice Adams","action":"acknowledged","detail":"","tier":"L1"}'
    assert codec.decode_entry(TimelineEntry, old.encode()) == TimelineEntry(
        at=T0, actor="Alice Adams", action="acknowledged", tier="L1")


def test_times_in_other_zones_and_naive_times_are_stored_as_the_same_instant_in_utc() -> None:
    berlin = TimelineEntry(at=T0.astimezone(ZoneInfo("Europe/Berlin")), actor="a", action="b")
    assert codec.encode_entry(berlin).startswith("1795424400\x1f")
    assert codec.decode_entry(TimelineEntry, codec.encode_entry(berlin)).at == T0
    naive = TimelineEntry(at=T0.replace(tzinfo=None), actor="a", action="b")
    assert codec.decode_entry(TimelineEntry, codec.encode_entry(naive)).at == T0


times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 31), timezones=st.just(UTC))


@given(at=times, actor=st.text(), action=st.text(), detail=st.text(), tier=st.none() | st.text())
def test_any_entry_comes_back_exactly(at: datetime, actor: str, action: str, detail: str, tier: str | None) -> None:
    entry = TimelineEntry(at=at, actor=actor, action=action, detail=detail, tier=tier)
    assert codec.decode_entry(TimelineEntry, codec.encode_entry(entry).encode()) == entry


@given(at=times, target=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)))
def test_any_record_time_comes_back_to_the_microsecond(at: datetime, target: timedelta) -> None:
    clock = SlaClock(kind="resolve", tier="L1", started_at=at, target=target, met_at=at + target)
    case = Case(id="ESC-1", created_at=at, title="t", tier="L1", opened_by=Actor(), updated_at=at, sla=[clock])
    assert codec.decode_record(Case, codec.encode_record(case)) == case
