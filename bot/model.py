"""The domain: versioned records (cases, and what later workflows add) with their behaviour.

These models are what the store persists (as JSON) and what workflows reason about. They name
no chat platform: a platform is a registered name (bot.platforms), its ids opaque strings.
Behaviour that guards a case lives here, with one wording per refusal, so every workflow and
every platform says the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.codec import short_name
from bot.errors import InvalidTransition

Platform = str  # a registered platform name (bot.platforms), e.g. the key people use in the config


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
    """Base for persisted state: strict about unknown keys so typos never pass silently. Stored in
    bot.codec's compact form (short keys, epoch-second times); the long field names read too."""

    model_config = ConfigDict(extra="forbid", alias_generator=short_name, validate_by_name=True,
                              validate_by_alias=True, ser_json_temporal="seconds")


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


class Record(Model):
    """A versioned record the store commits atomically; `kind` names its keys and its thread names."""

    kind: ClassVar[str] = "record"
    # A kind whose records few commands read but many cache (active incidents, the knowledge base):
    # every commit that writes one bumps the kind's revision, so a process-local cache knows when to reload.
    revised: ClassVar[bool] = False
    id: str
    version: int = 0
    created_at: datetime

    def indexes(self) -> set[tuple[str, str]]:
        """(index, value) memberships the store keeps as sets, e.g. open cases by tier."""
        return set()


class Case(Record):
    """A customer problem as it moves between tiers. `version` guards every write."""

    kind: ClassVar[str] = "case"
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
    incident: str | None = None  # the incident (INC-n) this case is part of

    @property
    def is_open(self) -> bool:
        return self.status != CaseStatus.RESOLVED

    def clock(self, kind: str) -> SlaClock | None:
        for clock in self.sla:
            if clock.kind == kind and clock.tier == self.tier:
                return clock
        return None

    def indexes(self) -> set[tuple[str, str]]:
        if not self.is_open:
            return set()
        out = {("all", ""), ("tier", self.tier)}
        if self.customer:
            out.add(("customer", self.customer))
        if self.owner:
            out.add(("owner", self.owner))
        return out

    # ---- behaviour: each guard has one wording ---------------------------------------------

    def require_open(self) -> None:
        if not self.is_open:
            raise InvalidTransition(f"{self.id} is resolved; reopen it first (/case {self.id} reopen).")

    def acknowledge(self, by: str, at: datetime) -> bool:
        """Record the first acknowledgement; False if someone acknowledged already."""
        self.require_open()
        if self.acknowledged_at is not None:
            return False
        self.acknowledged_at = at
        self.acknowledged_by = by
        if self.status == CaseStatus.OPEN:
            self.status = CaseStatus.ACKNOWLEDGED
        return True

    def claim(self, by: str, *, name_of: Callable[[str], str] = str) -> bool:
        """Make `by` the one owner; False if they own it already, refused if someone else does."""
        self.require_open()
        if self.owner == by:
            return False
        if self.owner is not None:
            raise InvalidTransition(f"{self.id} is already owned by {name_of(self.owner)}; ask them to hand it "
                                    f"off (/case {self.id} handoff PERSON).")
        self.owner = by
        return True

    def resolve(self, by: str | None, at: datetime, resolution: str) -> bool:
        """Resolve in the current tier (recorded for digests); False if it was resolved already."""
        if not self.is_open:
            return False
        self.status = CaseStatus.RESOLVED
        self.resolved_at = at
        self.resolved_tier = self.tier
        self.resolution = resolution
        if self.owner is None and by:
            self.owner = by
        return True

    def reopen(self) -> bool:
        """Put a resolved case back to work; False if it is open."""
        if self.is_open:
            return False
        self.status = CaseStatus.ACKNOWLEDGED if self.owner else CaseStatus.OPEN
        self.reopened += 1
        self.resolved_at = None
        self.resolution = None
        return True


class TimelineEntry(Model):
    """One line of a case's history: who did what, when, in which tier."""

    at: datetime
    actor: str
    action: str
    detail: str = ""
    tier: str | None = None


class ThreadRef(Model):
    """Where a thread lives on one platform (written by delivery): its channel and root message."""

    platform: Platform
    channel: str
    root_id: str
    url: str | None = None
