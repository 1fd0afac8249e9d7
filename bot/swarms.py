"""The swarm record: several experts working one case together, in one thread, until it is solved.

One swarm per case, keyed by the case id (so "a second swarm on the same case" is a lookup, not a
race). It remembers who was invited and how each invitation ended, who joined and left when, the
lead, the skills needed and covered, and each helper's credit for digests.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from bot.model import Model, Record

InvitationState = Literal["pending", "joined", "declined", "timed_out", "withdrawn"]


class Invitation(Model):
    """One person asked to join, for some of the needed skills, and what became of it."""

    person: str
    skills: list[str] = Field(default_factory=list)
    at: datetime
    state: InvitationState = "pending"
    answered_at: datetime | None = None


class Credit(Model):
    """One helper's participation, kept for digests: closed cases are not the only measure."""

    invited: bool = False
    joined: bool = False
    minutes: float = 0.0
    member_at_resolution: bool = False
    authored_resolution: bool = False


class Swarm(Record):
    """A swarm on case `id` (the case id itself)."""

    kind: ClassVar[str] = "swarm"
    title: str
    status: Literal["active", "ended"] = "active"
    private: bool = False
    channels: dict[str, str] = Field(default_factory=dict)  # where its thread lives, per platform
    needed: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)
    joined_at: dict[str, datetime] = Field(default_factory=dict)  # current members since
    lead: str | None = None
    started_by: str = ""
    note: str = ""
    invitations: list[Invitation] = Field(default_factory=list)
    credit: dict[str, Credit] = Field(default_factory=dict)
    ended_at: datetime | None = None
    resolution: str | None = None
    cause: str | None = None
    environment: str | None = None
    kb_id: str | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def thread(self) -> str:
        return swarm_thread(self.id)

    def indexes(self) -> set[tuple[str, str]]:
        if not self.active:
            return set()
        return {("active", "")} | {("member", p) for p in self.members}

    def pending(self) -> list[Invitation]:
        return [i for i in self.invitations if i.state == "pending"]

    def invitation(self, person: str) -> Invitation | None:
        """The person's latest invitation, if any."""
        found = [i for i in self.invitations if i.person == person]
        return found[-1] if found else None

    def asked(self) -> set[str]:
        """Everyone invited so far (whatever they answered) and every member: never invited again."""
        return {i.person for i in self.invitations} | set(self.members)

    def credit_of(self, person: str) -> Credit:
        return self.credit.setdefault(person, Credit())

    def add_member(self, person: str, at: datetime) -> bool:
        """Make `person` a member from `at`; False if they are one already."""
        if person in self.members:
            return False
        self.members.append(person)
        self.joined_at[person] = at
        self.credit_of(person).joined = True
        invitation = self.invitation(person)
        if invitation is not None and invitation.state == "pending":
            invitation.state, invitation.answered_at = "joined", at
        return True

    def remove_member(self, person: str, at: datetime) -> bool:
        """`person` leaves; their minutes so far are credited. False if they were not a member."""
        if person not in self.members:
            return False
        self.members.remove(person)
        since = self.joined_at.pop(person, at)
        self.credit_of(person).minutes += round((at - since).total_seconds() / 60, 1)
        if self.lead == person:
            self.lead = self.members[0] if self.members else None
        return True

    def close(self, at: datetime, author: str | None) -> None:
        """End the swarm: members keep their place (for the card) and are credited up to `at`."""
        self.status, self.ended_at = "ended", at
        for person in self.members:
            credit = self.credit_of(person)
            credit.minutes += round((at - self.joined_at.pop(person, at)).total_seconds() / 60, 1)
            credit.member_at_resolution = True
        if author:
            self.credit_of(author).authored_resolution = True
        for invitation in self.pending():
            invitation.state, invitation.answered_at = "withdrawn", at

    def covered(self, skills_of: dict[str, set[str]]) -> list[str]:
        """Needed skills some member has (skills_of: person -> their skills, lower-case)."""
        have = set().union(*(skills_of.get(m, set()) for m in self.members)) if self.members else set()
        return [s for s in self.needed if s in have]


def swarm_thread(case_id: str) -> str:
    """The name of a case's swarm thread."""
    return f"swarm:{case_id.upper()}"
