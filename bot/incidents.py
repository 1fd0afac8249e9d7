"""Incidents: an outage run as one piece of work, with roles, linked cases and a status cadence.

The record is what crisis mode (workflows/crisis.py) reasons about. It names no platform; the
incident's thread is `incident:INC-n`, the incident space (a channel of its own where the platform
can make one, else a thread in the status channel).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from bot.model import Model, Record, Severity


class IncidentStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


STATUS_LABEL = {
    IncidentStatus.INVESTIGATING: "Investigating",
    IncidentStatus.IDENTIFIED: "Identified",
    IncidentStatus.MONITORING: "Monitoring",
    IncidentStatus.RESOLVED: "Resolved",
}
# What an update may say (resolving is its own command): the choices of the update form too.
UPDATE_STATUSES = (IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED, IncidentStatus.MONITORING)


class IncidentUpdate(Model):
    """One status update as published; `late_by` is its punctuality against the cadence."""

    status: IncidentStatus
    text: str
    by: str
    at: datetime
    due_at: datetime | None = None
    late_by: timedelta = timedelta()


class IncidentNote(Model):
    """Internal only: never leaves the incident space."""

    text: str
    by: str
    at: datetime


class Incident(Record):
    """An outage. `cases` are the linked case ids; `told` when each affected customer first heard."""

    kind: ClassVar[str] = "incident"
    revised: ClassVar[bool] = True  # every opening case checks the active incidents (crisis.active_ids)
    title: str
    severity: Severity = Severity.SEV2
    component: str | None = None
    keywords: list[str] = Field(default_factory=list)
    customers: list[str] = Field(default_factory=list)
    status: IncidentStatus = IncidentStatus.INVESTIGATING
    commander: str
    roles: dict[str, str] = Field(default_factory=dict)
    on_call: list[str] = Field(default_factory=list)  # the tier on-call when declared: invited to the space
    cases: list[str] = Field(default_factory=list)
    first_case_at: datetime | None = None  # when the earliest linked case was opened
    updates: list[IncidentUpdate] = Field(default_factory=list)
    notes: list[IncidentNote] = Field(default_factory=list)
    told: dict[str, datetime] = Field(default_factory=dict)
    next_update_due: datetime | None = None
    reminded: bool = False  # the update is due (100% of the cadence): the card says it is overdue
    overdue_paged: bool = False
    overdue_seen_at: datetime | None = None  # the card's "overdue by N min" is as of this time
    updated_at: datetime
    resolved_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status != IncidentStatus.RESOLVED

    @property
    def thread(self) -> str:
        return incident_thread(self.id)

    def indexes(self) -> set[tuple[str, str]]:
        return {("active", "")} if self.active else set()

    def terms(self) -> list[str]:
        """The words a case is matched on: the component and the keywords, lower case."""
        words = [self.component] if self.component else []
        return [w.lower() for w in [*words, *self.keywords] if w.strip()]


def incident_thread(incident_id: str) -> str:
    return f"incident:{incident_id.upper()}"
