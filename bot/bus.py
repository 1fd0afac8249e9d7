"""The message bus: route each command to its workflow handler, with the shared plumbing.

Handlers are registered in explicit tables (one per workflow module). The `Context` gives them
what they need: config, clock, reads, and `update`/`commit`, which apply a workflow's `Changes`
atomically, retrying on a concurrent write and doing each idempotency key's work once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from bot.access import check_access
from bot.changes import Changes
from bot.clock import Clock
from bot.commands import Command
from bot.config import Config
from bot.errors import NotFound, UserError
from bot.fanout import fan_out
from bot.messages import Reply
from bot.metrics import COMMAND_SECONDS, COMMANDS
from bot.model import SYSTEM, Actor, Case, TimelineEntry
from bot.store import ConflictError, Store

log = structlog.get_logger("escalator.bus")

C = TypeVar("C", bound=Command)
Handler = Callable[[Any, "Context"], Awaitable[Reply]]
Mutation = Callable[[Case, Changes], Reply]

MAX_RETRIES = 20
# Who runs the command being handled: every case read checks access against it (bot.access).
CURRENT_ACTOR: ContextVar[Actor] = ContextVar("escalator_actor", default=SYSTEM)


@dataclass
class Context:
    config: Config
    store: Store
    clock: Clock

    async def load(self, case_id: str) -> Case:
        """The case, if the actor of the command being handled may see it (else the one refusal)."""
        case = await self.store.get_case(case_id)
        if case is None:
            raise NotFound(f"There is no case {case_id.upper()}. Check the id, e.g. /case ESC-1042.")
        check_access(case, CURRENT_ACTOR.get(), self.config)
        return case

    async def commit(self, changes: Changes, *, key: str | None = None, result: str = "1") -> bool:
        """Write `changes` (with fanned-out messages); False if `key` was already done."""
        out = fan_out(changes.notices, self.config, self.clock.now())
        for line in out.scrubbed:
            changes.log(TimelineEntry(at=self.clock.now(), actor=SYSTEM.name, action="scrubbed", detail=line))
        res = await self.store.commit(changes, out.messages, dedupe_key=key, dedupe_value=result)
        return res.status == "ok"

    async def update(self, case_id: str, mutate: Mutation, *, key: str | None = None) -> Reply:
        """Load the case, apply `mutate` to a copy, commit it; retry if someone wrote meanwhile."""
        for _ in range(MAX_RETRIES):
            if key and (done := await self.store.dedupe_result(key)) is not None:
                return Reply(text=done or "Already done.", case_id=case_id)
            case = await self.load(case_id)
            changes = Changes(expected_version=case.version, previous=case)
            working = case.model_copy(deep=True)
            # The cards a workflow builds carry the version they will be stored as, so a late,
            # retried older card can be told apart from a newer one and skipped.
            working.version = case.version + 1
            working.updated_at = self.clock.now()
            reply = mutate(working, changes)
            if changes.case is None and not changes.notices and not changes.timers and not changes.timeline:
                return reply
            if changes.case is None:
                changes.case = working
            changes.case.version = case.version + 1
            changes.case.updated_at = self.clock.now()
            try:
                await self.commit(changes, key=key, result=reply.text)
            except ConflictError:
                continue
            return reply
        raise UserError("The case is changing very fast right now; please try again in a moment.")


class MessageBus:
    """Dispatches commands to handlers; turns user errors into a caller-only reply."""

    def __init__(self, handlers: Mapping[type[Command], Handler], context: Context) -> None:
        self.handlers = dict(handlers)
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
