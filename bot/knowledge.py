"""Knowledge-base articles (KCS): what a solved swarm leaves behind for the next agent.

An article is created as a draft when a swarm ends, scrubbed of personal data and customer names,
and reviewed in the swarm thread: published articles are searched by `/kb search` and suggested
on `/escalate`; rejected ones are kept for the record but never suggested.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from bot.model import Record

KbStatus = Literal["draft", "published", "rejected"]


class KbArticle(Record):
    """`KB-n`: issue (the title), environment, resolution, cause, skills and related cases."""

    kind: ClassVar[str] = "kb"
    revised: ClassVar[bool] = True  # every opening case searches the published articles (knowledge.suggest)
    issue: str
    environment: str = ""
    resolution: str
    cause: str = ""
    skills: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list)  # case ids
    status: KbStatus = "draft"
    author: str | None = None  # who wrote the resolution (a person key)
    reviewed_by: str | None = None
    private: bool = False  # drafted from a private case: reviewed in a private thread only

    def indexes(self) -> set[tuple[str, str]]:
        return {("status", self.status)}

    @property
    def body(self) -> str:
        """What search reads besides the title."""
        return " ".join(p for p in (self.environment, self.resolution, self.cause, " ".join(self.skills)) if p)

    def lines(self) -> list[str]:
        out = [f"Issue: {self.issue}"]
        if self.environment:
            out.append(f"Environment: {self.environment}")
        out.append(f"Resolution: {self.resolution}")
        if self.cause:
            out.append(f"Cause: {self.cause}")
        if self.skills:
            out.append(f"Skills: {', '.join(self.skills)}")
        if self.related:
            out.append(f"Related cases: {', '.join(self.related)}")
        return out
