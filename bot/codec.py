"""The stored form of records and timeline entries: small in Redis, and every older form still reads.

Records are JSON with short keys (`SHORT`, the alias of each field of every `bot.model.Model`), fields
equal to their default left out, and times as epoch seconds (`ser_json_temporal`). Pydantic writes and
reads that in its compiled core, so it costs no more time than the long form did, and any
`Model.model_validate_json` reads both the compact form and the long one written before (long keys,
ISO times, every field): old data in Redis, and code that reads a raw record, keep working.

Timeline entries are their fields `at, actor, action, detail, tier` joined by the ASCII unit separator
(no keys, quotes or brackets: a 20-entry timeline is most of a stored case), trailing defaults dropped;
older entries are JSON objects and still read.

The format is a promise to the data already stored:
- a short name is forever: never change one or give it to another field. A new field may take a new
  name here, or none (it is then stored under its own name);
- a default is part of the format, since fields equal to it are not written: change one only together
  with a migration of stored records (tests/unit/test_codec.py pins them).
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from bot.model import Record, TimelineEntry

    R = TypeVar("R", bound=Record)
    E = TypeVar("E", bound=TimelineEntry)

SEP = "\x1f"  # ASCII unit separator, between the fields of a timeline entry
_SEP_BYTES = SEP.encode()

# Field name -> stored key. Names are shared across models (`tier` is `ti` wherever it appears).
SHORT: dict[str, str] = {
    # Record
    "version": "v", "created_at": "c",
    # Case
    "title": "t", "customer": "cu", "category": "ca", "severity": "s", "tier": "ti", "status": "st",
    "owner": "o", "watchers": "w", "informed": "in", "private": "p", "swarm": "sw", "notify_csm": "nc",
    "rule": "r", "origin": "or", "opened_by": "ob", "updated_at": "u", "acknowledged_at": "aa",
    "acknowledged_by": "ab", "resolved_at": "ra", "resolved_tier": "rt", "resolution": "re", "reopened": "ro",
    "tiers": "ts", "sla": "sl", "paging": "pg", "vendor": "ve", "incident": "ic",
    # Actor, Origin, ThreadRef
    "person": "pe", "platform": "pl", "user_id": "ui", "name": "n", "system": "sy",
    "channel": "ch", "thread": "th", "message_url": "mu", "root_id": "ri", "url": "ur",
    # SlaClock
    "kind": "k", "started_at": "sa", "target": "tg", "warn_at": "wa", "paused_since": "ps",
    "paused_total": "pt", "warned": "wd", "breached": "br", "met_at": "ma",
    # FrozenStep, Paging
    "targets": "tx", "wait": "wt", "skip_off_hours": "so", "policy": "po", "steps": "sp", "repeat": "rp",
    "step": "se", "round": "rn", "next_at": "na", "stopped_at": "xa", "stopped_by": "xb", "paged": "pd",
    # VendorInfo, TierVisit, TimelineEntry
    "ticket": "tk", "since": "si", "last_heard": "lh", "reason": "rs", "actor": "ac", "action": "an",
    "detail": "d",
    # Swarm, Invitation, Credit
    "channels": "chs", "needed": "nd", "members": "mb", "joined_at": "ja", "lead": "ld", "started_by": "sb",
    "note": "no", "invitations": "iv", "credit": "cr", "ended_at": "ea", "cause": "cs", "environment": "en",
    "kb_id": "kb", "skills": "sk", "state": "sx", "answered_at": "aw", "invited": "ivd", "joined": "jd",
    "minutes": "mi", "member_at_resolution": "mr", "authored_resolution": "ar",
    # KbArticle
    "issue": "is", "related": "rl", "author": "au", "reviewed_by": "rb",
    # Incident, IncidentUpdate, IncidentNote
    "component": "co", "keywords": "kw", "customers": "cus", "commander": "cm", "roles": "rls",
    "on_call": "oc", "cases": "cas", "first_case_at": "fc", "updates": "up", "notes": "nts", "told": "tl",
    "next_update_due": "nu", "reminded": "rm", "overdue_paged": "op", "overdue_seen_at": "os", "text": "te",
    "due_at": "da", "late_by": "lb",
}


def short_name(field: str) -> str:
    """The stored key of a field (the alias generator of `bot.model.Model`)."""
    return SHORT.get(field, field)


def encode_record(record: Record) -> str:
    return record.model_dump_json(by_alias=True, exclude_defaults=True)


def decode_record(cls: type[R], raw: str | bytes) -> R:
    """A record in any stored form (compact, or the long JSON written before)."""
    return cls.model_validate_json(raw)


def encode_entry(entry: TimelineEntry) -> str:
    """`at`, actor, action, detail, tier joined by the ASCII unit separator, trailing defaults dropped;
    `at` in epoch seconds (a float only below the second). An entry whose text holds a separator is
    written in the long JSON form instead."""
    at = entry.at
    seconds = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()  # naive means UTC, as in pydantic
    row = [str(int(seconds)) if not at.microsecond else repr(seconds), entry.actor, entry.action]
    if entry.tier is not None:
        row += (entry.detail, entry.tier)
    elif entry.detail:
        row.append(entry.detail)
    text = SEP.join(row)
    if text.count(SEP) != len(row) - 1:
        return entry.model_dump_json()
    return text


def decode_entry(cls: type[E], raw: str | bytes) -> E:
    """A timeline entry in any stored form (separated fields, or the JSON object written before)."""
    if isinstance(raw, bytes):  # as Redis returns it: pydantic takes the UTF-8 fields as they are
        if raw.startswith(b"{"):
            return cls.model_validate_json(raw)
        row: list[str] | list[bytes] = raw.split(_SEP_BYTES)
    else:
        if raw.startswith("{"):
            return cls.model_validate_json(raw)
        row = raw.split(SEP)
    data = {"at": row[0], "actor": row[1], "action": row[2]}
    if len(row) > 3:
        data["detail"] = row[3]
        if len(row) > 4:
            data["tier"] = row[4]
    entry: E = cls.__pydantic_validator__.validate_python(data)  # what model_validate does, minus its overhead
    return entry
