"""Durable timers: a Redis sorted set of due times, fired exactly once across processes.

Claiming is one Lua step that moves due timers into a lease set, so two schedulers racing never
get the same timer. A process that dies holding a lease loses it when the lease expires, and
the timer fires again; handlers are idempotent (they check the case state the timer expects).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog

from bot import commands as cmds
from bot.clock import Clock, to_ms
from bot.commands import Command
from bot.metrics import TIMERS_FIRED
from bot.model import SYSTEM
from bot.store import Store

log = structlog.get_logger("escalator.scheduler")

_CLAIM = """
-- KEYS: timers, data, leases; ARGV: now_ms, lease_until_ms, limit
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[3], id)
  if redis.call('HEXISTS', KEYS[2], id) == 1 then redis.call('ZADD', KEYS[1], ARGV[1], id) end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[3], ARGV[2], id)
  table.insert(out, id)
  table.insert(out, redis.call('HGET', KEYS[2], id) or '')
end
return out
"""

_DONE = """
-- forget a fired timer unless it was scheduled again meanwhile
redis.call('ZREM', KEYS[3], ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('HDEL', KEYS[2], ARGV[1]) end
return 1
"""

COMMAND_TYPES: dict[str, type[Command]] = {
    name: obj for name, obj in vars(cmds).items()
    if isinstance(obj, type) and issubclass(obj, Command) and obj is not Command
}

Dispatch = Callable[[Command], Awaitable[Any]]


def decode_timer(payload: str) -> Command:
    """A stored timer's command; timers are the bot's own work, so they run as the system actor."""
    data = json.loads(payload)
    command = COMMAND_TYPES[data["type"]].model_validate(data["data"])
    return command.model_copy(update={"actor": SYSTEM})


class Scheduler:
    """Fires due timers by dispatching their commands to the workflows."""

    def __init__(self, store: Store, clock: Clock, dispatch: Dispatch, *,
                 lease: timedelta = timedelta(minutes=2), batch: int = 100) -> None:
        self.store = store
        self.clock = clock
        self.dispatch = dispatch
        self.lease = lease
        self.batch = batch

    async def claim_due(self) -> list[tuple[str, str]]:
        k = self.store.keys
        now = self.clock.now()
        raw: Any = await self.store.redis.eval(_CLAIM, 3, k.timers, k.timer_data, k.timer_leases,
                                          to_ms(now), to_ms(now + self.lease), self.batch)
        items = [(_s(raw[i]), _s(raw[i + 1])) for i in range(0, len(raw), 2)]
        return items

    async def done(self, timer_id: str) -> None:
        k = self.store.keys
        await self.store.redis.eval(_DONE, 3, k.timers, k.timer_data, k.timer_leases, timer_id)

    async def run_due(self) -> int:
        """Fire every timer due by the clock's now (repeating while firing makes more due)."""
        fired = 0
        for _ in range(100):
            items = await self.claim_due()
            if not items:
                break
            for timer_id, payload in items:
                if payload:
                    command = decode_timer(payload)
                    TIMERS_FIRED.labels(type(command).__name__).inc()
                    try:
                        await self.dispatch(command)
                    except Exception:  # leave the lease: the timer fires again when it expires
                        log.exception("timer failed", timer_id=timer_id)
                        continue
                await self.done(timer_id)
                fired += 1
        return fired

    async def pending(self) -> list[tuple[str, float]]:
        raw: Any = await self.store.redis.zrange(self.store.keys.timers, 0, -1, withscores=True)
        return [(_s(member), float(score)) for member, score in raw]

    async def run_forever(self, stop: asyncio.Event, *, interval_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                await self.run_due()
            except Exception:
                log.exception("scheduler loop failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
