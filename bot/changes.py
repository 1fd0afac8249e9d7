"""What one workflow step wants done, as plain data, committed by the store in one atomic step."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.commands import Command
from bot.messages import Audience, Notice
from bot.model import Case, TimelineEntry


@dataclass
class Timer:
    """Run `command` at `due`. Ids are deterministic so a timer can be replaced or cancelled."""

    id: str
    due: datetime
    command: Command


@dataclass
class Changes:
    """Collected by a workflow, then written all-or-nothing by `Store.commit`."""

    case: Case | None = None
    expected_version: int = 0
    previous: Case | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    notices: list[tuple[Notice, Audience]] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    cancel_timers: list[str] = field(default_factory=list)

    def say(self, notice: Notice, *audiences: Audience) -> None:
        for audience in audiences:
            self.notices.append((notice, audience))

    def log(self, entry: TimelineEntry) -> None:
        self.timeline.append(entry)

    def schedule(self, timer: Timer) -> None:
        self.cancel_timers = [t for t in self.cancel_timers if t != timer.id]
        self.timers = [t for t in self.timers if t.id != timer.id] + [timer]

    def cancel(self, *timer_ids: str) -> None:
        for timer_id in timer_ids:
            self.timers = [t for t in self.timers if t.id != timer_id]
            if timer_id not in self.cancel_timers:
                self.cancel_timers.append(timer_id)
