"""Domain events: what happened, in the past tense. Workflows raise them; handlers subscribe.

Handlers are listed in explicit tables (workflows.EVENT_HANDLERS) and run inside the same unit
of work as the change that raised them, so they commit in the same transaction or not at all.
A handler that wants its own step (say, starting a swarm) schedules a follow-up command.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseOpened(Event):
    case_id: str


class CaseEscalated(Event):
    case_id: str
    from_tier: str
    to_tier: str


class CaseDeescalated(Event):
    case_id: str
    from_tier: str
    to_tier: str


class CaseAcknowledged(Event):
    case_id: str
    by: str


class CaseResolved(Event):
    case_id: str
    tier: str


class CaseReopened(Event):
    case_id: str


class IncidentDeclared(Event):
    incident_id: str


class IncidentResolved(Event):
    incident_id: str
