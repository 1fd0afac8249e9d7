"""One unit of work: the records a command reads and changes, and what it wants said and scheduled.

A workflow asks the unit of work for records (`await uow.get(Case, "ESC-1")`), changes them in
place, says things (`uow.say`), writes timeline lines (`uow.record`), sets timers and raises
domain events (`uow.emit`). Nothing is written until the bus commits it: then every record whose
state differs from what was read is saved with its version bumped, and the versions of every
record read are checked, all in one atomic store commit with the timeline, the outbox messages
and the timers. There is no "remember to save" flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from bot.access import check_access
from bot.commands import Command
from bot.config import Config
from bot.errors import NotFound
from bot.events import Event
from bot.messages import Audience, Notice
from bot.model import Actor, Case, Record, TimelineEntry
from bot.store import Counter, Store

R = TypeVar("R", bound=Record)


@dataclass
class Timer:
    """Run `command` at `due`. Ids are deterministic so a timer can be replaced or cancelled."""

    id: str
    due: datetime
    command: Command


@dataclass
class Tracked:
    """A record as read (its JSON and version) and the live object the workflow changes."""

    record: Record
    original: str  # the JSON as read ("" for a record created in this unit of work)
    version: int

    @property
    def before(self) -> Record | None:
        """The state as read (None for a new record); built only for records that changed."""
        return type(self.record).model_validate_json(self.original) if self.original else None


@dataclass
class UnitOfWork:
    """Everything one command does, committed all-or-nothing by `Context.commit`."""

    store: Store
    config: Config
    now: datetime
    actor: Actor
    tracked: dict[tuple[str, str], Tracked] = field(default_factory=dict)
    timeline: list[tuple[Record, TimelineEntry]] = field(default_factory=list)
    notices: list[tuple[Notice, Audience]] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    cancel_timers: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    counters: list[Counter] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    # Revisions of the `revised` record kinds, when the command read them in its first round trip
    # (opening a case does): caches of those kinds are checked against them instead of asking Redis.
    revisions: dict[str, str] | None = None

    # ---- records ---------------------------------------------------------------------------

    async def get(self, cls: type[R], record_id: str) -> R:
        """The record, read once per unit of work and tracked; cases are access-checked."""
        key = (cls.kind, record_id.upper())
        if key in self.tracked:
            found = self.tracked[key].record
            assert isinstance(found, cls)
            return found
        record = await self.store.get_record(cls, record_id.upper())
        if record is None:
            raise NotFound(not_found_text(cls, record_id))
        if isinstance(record, Case):
            check_access(record, self.actor, self.config)
        self.tracked[key] = Tracked(record, record.model_dump_json(), record.version)
        return record

    async def case(self, case_id: str) -> Case:
        return await self.get(Case, case_id)

    def add(self, record: Record) -> None:
        """A record created by this unit of work (stored with version 1)."""
        self.tracked[(record.kind, record.id)] = Tracked(record, "", 0)

    def changed(self) -> list[Tracked]:
        """Records whose state differs from what was read (new ones included)."""
        return [t for t in self.tracked.values() if not t.original or t.record.model_dump_json() != t.original]

    # ---- what to say, log, schedule ----------------------------------------------------------

    def say(self, notice: Notice, *audiences: Audience) -> None:
        for audience in audiences:
            self.notices.append((notice, audience))

    def record(self, record: Record, entry: TimelineEntry) -> None:
        """A line on the record's timeline."""
        self.timeline.append((record, entry))

    def schedule(self, timer: Timer) -> None:
        self.cancel_timers = [t for t in self.cancel_timers if t != timer.id]
        self.timers = [t for t in self.timers if t.id != timer.id] + [timer]

    def cancel(self, *timer_ids: str) -> None:
        for timer_id in timer_ids:
            self.timers = [t for t in self.timers if t.id != timer_id]
            if timer_id not in self.cancel_timers:
                self.cancel_timers.append(timer_id)

    def follow_up(self, timer_id: str, command: Command) -> None:
        """Run `command` right after this commit, once, as its own step (a timer due now)."""
        self.schedule(Timer(timer_id, self.now, command))

    def answer(self, line: str) -> None:
        """A sentence for the caller's reply, added by whoever learned it (an event handler, say)."""
        self.answers.append(line)

    def emit(self, event: Event) -> None:
        """A domain event: its handlers run before the commit and land in the same transaction."""
        self.events.append(event)

    # ---- rollups: additive counters committed with the change they count ------------------------

    def count(self, key_suffix: str, field_name: str, amount: int = 1) -> None:
        """HINCRBY `{prefix}:rollup:<key_suffix>` `field_name` by `amount`, in this commit."""
        self.counters.append(Counter("incr", key_suffix, field_name, amount))

    def keep_max(self, key_suffix: str, field_name: str, value: int) -> None:
        """Keep the largest `value` seen in a rollup hash field."""
        self.counters.append(Counter("max", key_suffix, field_name, value))

    def keep_top(self, key_suffix: str, member: str, score: int, limit: int) -> None:
        """A bounded "worst" list: ZADD GT `member` `score`, keeping the `limit` highest."""
        self.counters.append(Counter("top", key_suffix, member, score, limit))

    def quiet(self) -> bool:
        """Nothing to say, log, schedule or count (records may still have changed: see `changed`)."""
        return not (self.timeline or self.notices or self.timers or self.cancel_timers or self.counters)


def not_found_text(cls: type[Record], record_id: str) -> str:
    if cls is Case:
        return f"There is no case {record_id.upper()}. Check the id, e.g. /case ESC-1042."
    return f"There is no {cls.kind} {record_id.upper()}."
