"""The domain: cases and everything that happens to them, as pydantic models.

These models are what the store persists (as JSON) and what workflows reason about. They say
nothing about Slack or Teams: platform references are opaque strings the adapters own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Platform = Literal["slack", "teams", "console"]
PLATFORMS: tuple[Literal["slack", "teams"], ...] = ("slack", "teams")


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"


class CaseStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    WAITING_CUSTOMER = "waiting_on_customer"
    WAITING_VENDOR = "waiting_on_vendor"
    RESOLVED = "resolved"


class Model(BaseModel):
    """Base for persisted state: strict about unknown keys so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class Actor(Model):
    """Who did something: a configured person, or an unknown platform user."""

    # Frozen, hence hashable: pydantic then shares the SYSTEM default instead of deep-copying it
    # into every command.
    model_config = ConfigDict(extra="forbid", frozen=True)

    person: str | None = None
    platform: Platform = "console"
    user_id: str | None = None
    name: str = "someone"
    system: bool = False  # the bot itself (timers, follow-ups): not subject to case access rules


SYSTEM = Actor(name="Escalator", system=True)


class Origin(Model):
    """Where an escalation came from, so the bot can link back."""

    platform: Platform
    channel: str | None = None
    thread: str | None = None
    message_url: str | None = None


class SlaClock(Model):
    """One SLA target of one case: due time, pauses, and whether warned/breached/met."""

    kind: Literal["acknowledge", "resolve"]
    tier: str
    started_at: datetime
    target: timedelta
    warn_at: float = 0.8
    paused_since: datetime | None = None
    paused_total: timedelta = timedelta()
    warned: bool = False
    breached: bool = False
    met_at: datetime | None = None

    @property
    def due_at(self) -> datetime:
        return self.started_at + self.paused_total + self.target

    @property
    def warn_due_at(self) -> datetime:
        return self.started_at + self.paused_total + self.target * self.warn_at

    @property
    def running(self) -> bool:
        return self.met_at is None and self.paused_since is None


class PageTarget(Model):
    kind: Literal["schedule", "person", "channel"]
    name: str = ""


class FrozenStep(Model):
    """A paging step as it was when paging started; config edits don't touch running pages."""

    targets: list[PageTarget]
    wait: timedelta | None = None
    skip_off_hours: bool = True


class Paging(Model):
    """The paging run of a case in its current tier."""

    policy: str
    tier: str
    steps: list[FrozenStep]
    repeat: int = 0
    step: int = 0
    round: int = 0
    started_at: datetime
    next_at: datetime | None = None
    stopped_at: datetime | None = None
    stopped_by: str | None = None
    paged: list[str] = Field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.stopped_at is None


class VendorInfo(Model):
    name: str
    ticket: str | None = None
    since: datetime
    last_heard: datetime | None = None


class TierVisit(Model):
    tier: str
    at: datetime
    reason: str = ""
    private: bool = False


class Case(Model):
    """A customer problem as it moves between tiers. `version` guards every write."""

    id: str
    version: int = 0
    title: str
    customer: str | None = None
    category: str | None = None
    severity: Severity = Severity.SEV3
    tier: str
    status: CaseStatus = CaseStatus.OPEN
    owner: str | None = None
    watchers: list[str] = Field(default_factory=list)
    informed: list[str] = Field(default_factory=list)  # people paged or told about it: insiders too
    private: bool = False
    swarm: bool = False
    notify_csm: bool = False
    rule: int | None = None
    origin: Origin | None = None
    opened_by: Actor
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_tier: str | None = None
    resolution: str | None = None
    reopened: int = 0
    tiers: list[TierVisit] = Field(default_factory=list)
    sla: list[SlaClock] = Field(default_factory=list)
    paging: Paging | None = None
    vendor: VendorInfo | None = None

    @property
    def is_open(self) -> bool:
        return self.status != CaseStatus.RESOLVED

    def clock(self, kind: str) -> SlaClock | None:
        for clock in self.sla:
            if clock.kind == kind and clock.tier == self.tier:
                return clock
        return None


class TimelineEntry(Model):
    """One line of a case's history: who did what, when, in which tier."""

    at: datetime
    actor: str
    action: str
    detail: str = ""
    tier: str | None = None


class ThreadRef(Model):
    """Where a case's thread lives on one platform (written by the delivery worker)."""

    platform: Platform
    channel: str
    root_id: str
    url: str | None = None


class SwarmStatus(StrEnum):
    INVITING = "inviting"
    ACTIVE = "active"
    SOLVED = "solved"
    CLOSED = "closed"


class SwarmInvite(Model):
    """An expert asked to join a swarm, and why (skills matched, load when asked)."""

    person: str
    skills: list[str] = Field(default_factory=list)
    load: int = 0
    invited_at: datetime
    joined_at: datetime | None = None
    declined: bool = False


class KnowledgeDraft(Model):
    """What a solved swarm leaves behind, without customer data."""

    issue: str
    environment: str = ""
    resolution: str
    cause: str = ""


class Swarm(Model):
    """Several experts on one case in one thread; the case keeps its one owner."""

    id: str
    case_id: str
    version: int = 0
    status: SwarmStatus = SwarmStatus.INVITING
    skills: list[str] = Field(default_factory=list)
    invites: list[SwarmInvite] = Field(default_factory=list)
    started_by: Actor
    started_at: datetime
    solved_at: datetime | None = None
    knowledge: KnowledgeDraft | None = None


class CrisisStage(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class StatusUpdate(Model):
    at: datetime
    stage: CrisisStage
    text: str
    by: str


class Crisis(Model):
    """An outage run in crisis mode: roles, linked cases, status updates on a cadence."""

    id: str
    version: int = 0
    title: str
    severity: Severity = Severity.SEV1
    stage: CrisisStage = CrisisStage.INVESTIGATING
    declared_by: Actor
    declared_at: datetime
    roles: dict[str, str] = Field(default_factory=dict)  # role -> person
    cases: list[str] = Field(default_factory=list)
    customers_notified: list[str] = Field(default_factory=list)
    updates: list[StatusUpdate] = Field(default_factory=list)
    next_update_due: datetime | None = None
    resolved_at: datetime | None = None
