"""Commands: what a person (or the scheduler) asks the workflows to do.

Imperative names, frozen, no SDK objects: each carries its actor and an idempotency key, so a
retried Slack request or a double click maps to the same key and is done once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.model import SYSTEM, Actor, Origin, Severity


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    actor: Actor = SYSTEM
    key: str | None = Field(None, description="idempotency key: same key, same effect, once")


class OpenCase(Command):
    title: str
    tier: str | None = None
    severity: Severity | None = None
    customer: str | None = None
    category: str | None = None
    origin: Origin | None = None


class EscalateCase(Command):
    case_id: str
    to_tier: str | None = None  # None: the next tier up
    reason: str
    vendor: str | None = None
    vendor_ticket: str | None = None


class DeescalateCase(Command):
    case_id: str
    to_tier: str | None = None  # None: the tier below
    reason: str


class AcknowledgeCase(Command):
    case_id: str


class ClaimCase(Command):
    case_id: str


class HandOffCase(Command):
    case_id: str
    to_person: str
    note: str = ""


class AddWatcher(Command):
    case_id: str
    person: str


class ResolveCase(Command):
    case_id: str
    resolution: str


class ReopenCase(Command):
    case_id: str
    reason: str = ""


class SetWaiting(Command):
    """Wait on the customer or a vendor (SLA clocks may pause), or resume work."""

    case_id: str
    on: Literal["customer", "vendor", "none"]


class ShowCase(Command):
    case_id: str


class ShowOnCall(Command):
    tier: str | None = None


class ShowHelp(Command):
    topic: str | None = None


class RecordCsat(Command):
    """The customer's satisfaction score (1..5) for a case, relayed by an agent."""

    case_id: str
    score: int = Field(ge=1, le=5)
    comment: str = ""


class ShowDigest(Command):
    """`/digest [NAME] [since:…]`: a digest now, to the caller."""

    name: str | None = None
    since: str | None = None


class PlanDigests(Command):
    """At start: schedule each configured digest, and send once a digest missed while down."""


# --- sent by the scheduler when a timer fires ---------------------------------------------


class RunPageStep(Command):
    case_id: str
    step: int
    round: int


class CheckSla(Command):
    case_id: str
    kind: Literal["acknowledge", "resolve"]
    tier: str
    level: Literal["warn", "breach"]


class NudgeVendor(Command):
    case_id: str


class SendDigest(Command):
    """A scheduled digest: the run of `name` due at `fire_at` (its period ends there)."""

    name: str
    fire_at: datetime
