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


# --- swarming and the knowledge base ---------------------------------------------------------


class StartSwarm(Command):
    """Start a swarm on a case; `skills` empty: derived from the case and `swarm.skills`."""

    case_id: str
    skills: list[str] = Field(default_factory=list)
    experts: int | None = None
    note: str = ""


class JoinSwarm(Command):
    case_id: str


class LeaveSwarm(Command):
    case_id: str


class DeclineSwarm(Command):
    case_id: str


class AddSwarmMember(Command):
    case_id: str
    person: str


class SetSwarmLead(Command):
    case_id: str
    person: str


class InviteSkill(Command):
    """Invite the best available person for one more skill."""

    case_id: str
    skill: str


class EndSwarm(Command):
    case_id: str
    resolution: str
    cause: str = ""
    environment: str = ""


class ListSwarms(Command):
    pass


class ExpireInvitation(Command):
    """Sent by the scheduler when an invitation was not answered within `swarm.invite_timeout`."""

    case_id: str
    person: str


class ShowKb(Command):
    article_id: str


class SearchKb(Command):
    query: str


class PublishKb(Command):
    article_id: str


class EditKb(Command):
    """Change fields of an article; empty fields stay as they are."""

    article_id: str
    issue: str = ""
    environment: str = ""
    resolution: str = ""
    cause: str = ""


class RejectKb(Command):
    article_id: str
    reason: str = ""
# --- crisis mode (workflows/crisis.py) ------------------------------------------------------


class DeclareIncident(Command):
    title: str
    severity: Severity | None = None
    component: str | None = None
    customers: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)


class AssignRole(Command):
    incident_id: str
    role: str
    person: str | None = None  # None: nobody holds the role any more


class ShowRoles(Command):
    incident_id: str


class LinkCases(Command):
    incident_id: str
    case_ids: list[str]


class UnlinkCase(Command):
    incident_id: str
    case_id: str


class ShowIncidentCases(Command):
    incident_id: str


class PostUpdate(Command):
    incident_id: str
    status: str | None = None  # investigating | identified | monitoring; None keeps the current one
    text: str


class UpdateForm(Command):
    """The Post update button: the core answers with the form, prefilled with the last update."""

    incident_id: str


class AddNote(Command):
    incident_id: str
    text: str


class ResolveIncident(Command):
    incident_id: str
    text: str
    resolve_cases: bool = False


class ShowReport(Command):
    incident_id: str


class ListIncidents(Command):
    pass


class UpdateDue(Command):
    """Timer: the next status update is due (100% of the cadence)."""

    incident_id: str
    update: int  # how many updates were published when the timer was set


class UpdateOverdue(Command):
    """Timer: the update is 50% late (150% of the cadence): page the commander."""

    incident_id: str
    update: int
class SendDigest(Command):
    """A scheduled digest: the run of `name` due at `fire_at` (its period ends there)."""

    name: str
    fire_at: datetime
