"""The message bus: route each command to its workflow handler, with the shared plumbing.

Handlers are registered in explicit tables (one per workflow module), and so are the handlers of
domain events. `Context.run` gives a handler a fresh unit of work, runs the event handlers its
events call for, and commits everything atomically: records that changed (versions bumped, read
versions checked), their timelines, the cards of every case whose visible state changed, the
outbound messages and the timers. On a concurrent write it starts over; an idempotency key makes
a retried request do its work once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from bot.access import check_access
from bot.clock import Clock
from bot.commands import Command
from bot.config import Config
from bot.errors import NotFound, UserError
from bot.events import Event
from bot.fanout import fan_out
from bot.messages import Audience, Notice, Reply
from bot.metrics import COMMAND_SECONDS, COMMANDS
from bot.model import SYSTEM, Actor, Case, Record, TimelineEntry
from bot.store import Commit, ConflictError, Store, Write
from bot.uow import Tracked, UnitOfWork

log = structlog.get_logger("escalator.bus")

Handler = Callable[[Any, "Context"], Awaitable[Reply]]
EventHandler = Callable[[Any, UnitOfWork], Awaitable[None]]
# What a record shows on its platform threads: (before, after, config, now) -> (card, audience)s
# to post or update. Called for every record a commit changes; returns nothing if nothing visible changed.
View = Callable[[Any, Any, Config, datetime], list[tuple[Notice, Audience]]]
Work = Callable[[UnitOfWork], Awaitable[Reply]]
Mutation = Callable[[Case, UnitOfWork], Reply]

MAX_RETRIES = 20
MAX_EVENT_ROUNDS = 10
# Who runs the command being handled: every case read checks access against it (bot.access).
CURRENT_ACTOR: ContextVar[Actor] = ContextVar("escalator_actor", default=SYSTEM)


@dataclass
class Context:
    config: Config
    store: Store
    clock: Clock
    events: Mapping[type[Event], Sequence[EventHandler]] = field(default_factory=dict)
    views: Mapping[type[Record], View] = field(default_factory=dict)

    async def load(self, case_id: str) -> Case:
        """The case, if the actor of the command being handled may see it (else the one refusal)."""
        case = await self.store.get_case(case_id)
        if case is None:
            raise NotFound(f"There is no case {case_id.upper()}. Check the id, e.g. /case ESC-1042.")
        check_access(case, CURRENT_ACTOR.get(), self.config)
        return case

    def unit(self) -> UnitOfWork:
        return UnitOfWork(store=self.store, config=self.config, now=self.clock.now(), actor=CURRENT_ACTOR.get())

    async def run(self, work: Work, *, key: str | None = None, checked: bool = False) -> Reply:
        """Run `work` in a unit of work and commit it; start over if a record moved on meanwhile.

        `checked`: the caller has just looked `key` up itself (opening a case does, in its first
        round trip), so the first attempt skips that read; the commit checks the key atomically anyway.
        """
        for attempt in range(MAX_RETRIES):
            if key and not (checked and attempt == 0) and (done := await self.store.dedupe_result(key)) is not None:
                return Reply(text=done or "Already done.")
            uow = self.unit()
            reply = await work(uow)
            await self.handle_events(uow)
            if uow.answers:
                reply = reply.model_copy(update={"text": " ".join([reply.text, *uow.answers])})
            changed = uow.changed()
            if not changed and uow.quiet():
                return reply
            try:
                if not await self.commit(uow, key=key, result=reply.text, changed=changed):
                    return Reply(text=await self.store.dedupe_result(key or "") or reply.text, case_id=reply.case_id)
            except ConflictError:
                continue
            return reply
        raise UserError("The case is changing very fast right now; please try again in a moment.")

    async def update(self, case_id: str, mutate: Mutation, *, key: str | None = None) -> Reply:
        """The common case: one case, changed by a plain function."""
        async def work(uow: UnitOfWork) -> Reply:
            return mutate(await uow.case(case_id), uow)
        return await self.run(work, key=key)

    async def handle_events(self, uow: UnitOfWork) -> None:
        """Run the handlers of every event raised, including events raised by handlers."""
        for _ in range(MAX_EVENT_ROUNDS):
            pending, uow.events = uow.events, []
            if not pending:
                return
            for event in pending:
                for handler in self.events.get(type(event), ()):
                    await handler(event, uow)
        raise RuntimeError("domain events keep raising events; a handler loops")

    async def commit(self, uow: UnitOfWork, *, key: str | None = None, result: str = "1",
                     changed: list[Tracked] | None = None) -> bool:
        """Write the unit of work; False if `key` was already done by an earlier request."""
        writes = []
        cards: list[tuple[Notice, Audience]] = []
        for tracked in uow.changed() if changed is None else changed:
            record, before = tracked.record, tracked.before
            record.version = tracked.version + 1
            if hasattr(record, "updated_at") and before is not None:
                record.updated_at = uow.now
            writes.append(Write(record=record, expected=tracked.version, previous=before))
            view = self.views.get(type(record))
            if view is not None:
                cards += view(before, record, self.config, uow.now)
        # Cards first: a thread's root must be queued before the replies in it (lanes keep order).
        uow.notices = cards + uow.notices
        written = {(w.record.kind, w.record.id) for w in writes}
        reads = [(self.store.keys.record(kind, rid), t.version) for (kind, rid), t in uow.tracked.items()
                 if (kind, rid) not in written]
        out = fan_out(uow.notices, self.config, uow.now)
        if out.scrubbed and writes:
            for line in out.scrubbed:
                uow.record(writes[0].record, TimelineEntry(at=uow.now, actor=SYSTEM.name, action="scrubbed",
                                                           detail=line))
        res = await self.store.commit(Commit(writes=writes, reads=reads, timeline=uow.timeline,
                                             messages=out.messages, timers=uow.timers,
                                             cancel_timers=uow.cancel_timers, counters=uow.counters),
                                      dedupe_key=key, dedupe_value=result)
        return res.status == "ok"


class Wiring(dict[type[Command], Handler]):
    """The workflows' tables: command handlers (the mapping itself), event handlers and views."""

    def __init__(self, handlers: Mapping[type[Command], Handler], *,
                 events: Mapping[type[Event], Sequence[EventHandler]] | None = None,
                 views: Mapping[type[Record], View] | None = None) -> None:
        super().__init__(handlers)
        self.events: Mapping[type[Event], Sequence[EventHandler]] = dict(events or {})
        self.views: Mapping[type[Record], View] = dict(views or {})


class MessageBus:
    """Dispatches commands to handlers; turns user errors into a caller-only reply."""

    def __init__(self, handlers: Mapping[type[Command], Handler], context: Context) -> None:
        self.handlers = handlers
        self.context = context

    async def handle(self, command: Command) -> Reply:
        name = type(command).__name__
        handler = self.handlers.get(type(command))
        if handler is None:
            raise LookupError(f"no handler for {name}")
        started = time.perf_counter()
        token = CURRENT_ACTOR.set(command.actor)
        try:
            reply = await handler(command, self.context)
            COMMANDS.labels(name, "ok" if reply.ok else "refused").inc()
            return reply
        except UserError as exc:
            COMMANDS.labels(name, "refused").inc()
            return Reply(text=str(exc), ok=False)
        except Exception:
            COMMANDS.labels(name, "error").inc()
            log.exception("command failed", command=name, case_id=getattr(command, "case_id", None))
            raise
        finally:
            CURRENT_ACTOR.reset(token)
            COMMAND_SECONDS.labels(name).observe(time.perf_counter() - started)
