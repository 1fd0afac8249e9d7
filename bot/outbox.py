"""Durable delivery of outbound messages: a Redis stream per platform, read by a consumer group.

A transport (Slack, Teams, console) raises `RetryLater` for what may work later (429, 5xx,
timeouts, a thread root not yet posted) and `Undeliverable` for what never will. Retries go to
a delayed set with exponential backoff (or the platform's Retry-After); after `max_attempts`
the message moves to the dead-letter stream, where an operator can list and replay it.
Messages a crashed worker had read are claimed by another with XAUTOCLAIM.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import structlog
from redis.exceptions import ResponseError

from bot.clock import Clock, to_ms
from bot.messages import OutboxMessage
from bot.metrics import DEAD_LETTERS, DELIVERED, DELIVERY_FAILURES
from bot.store import SENT_TTL_S, Store

log = structlog.get_logger("escalator.outbox")
GROUP = "delivery"
WAIT_LIMIT = timedelta(minutes=15)


class RetryLater(Exception):
    """Try again later; `after` seconds if the platform said so (Retry-After).

    `waiting` means the message waits for another one (its thread root, a linked thread): that
    is no failure, so it neither holds the channel nor uses up attempts, until the message is
    older than WAIT_LIMIT.
    """

    def __init__(self, reason: str, after: float | None = None, *, waiting: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after
        self.waiting = waiting


class Undeliverable(Exception):
    """The platform rejected the message for good (bad channel, not in channel, ...)."""


class Transport(Protocol):
    """Delivers one message to one platform. Must be idempotent per `message.id`."""

    platform: str

    def pace(self, message: OutboxMessage) -> tuple[str, float] | None:
        """(key, seconds between messages) to pace on, shared by every worker; None: no pacing."""
        ...

    async def deliver(self, message: OutboxMessage) -> str | None:
        """Send it; return the platform id of what was sent (ts, activity id) if any."""
        ...


@dataclass(frozen=True)
class DeadLetter:
    id: str
    message: OutboxMessage
    attempts: int
    error: str
    failed_at: str


Sleep = Callable[[float], Awaitable[None]]

_RESERVE = """
local now = tonumber(ARGV[1])
local gap = tonumber(ARGV[2])
local free = tonumber(redis.call('GET', KEYS[1])) or now
if free < now then free = now end
redis.call('SET', KEYS[1], free + gap, 'PX', math.max(gap * 4, 60000))
return free - now
"""

_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, raw in ipairs(due) do
  redis.call('ZREM', KEYS[1], raw)
  local env = cjson.decode(raw)
  redis.call('XADD', KEYS[2], '*', 'm', env.m, 'a', tostring(env.a), 'e', env.e or '')
end
return #due
"""


class Outbox:
    """The streams: append (done by Store.commit), read, retry, dead-letter, replay."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.redis = store.redis
        self.keys = store.keys

    async def ensure_group(self, platform: str) -> None:
        for stream in self.keys.outbox_streams(platform):
            try:
                await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def pending(self, platform: str) -> int:
        """Messages not yet delivered: in the stream unacknowledged, or waiting for a retry."""
        # Delivered entries are deleted from the stream, so its length is the backlog (this also
        # works on Redis 6.2, whose XINFO GROUPS has no `lag`).
        pipe = self.redis.pipeline(transaction=False)
        for stream in self.keys.outbox_streams(platform):
            pipe.xlen(stream)
        pipe.zcard(self.keys.outbox_delayed(platform))
        return sum(int(n) for n in await pipe.execute())

    async def reserve_slot(self, platform: str, key: str, gap_s: float) -> float:
        """Seconds to wait before sending on `key`, so all workers together keep the pace."""
        wait_ms = await self.redis.eval(_RESERVE, 1, self.keys.pace(platform, key),
                                        to_ms(self.clock.now()), int(gap_s * 1000))
        return float(wait_ms) / 1000

    async def hold(self, platform: str, key: str, seconds: float) -> None:
        """Nobody sends on `key` for `seconds` (a 429 Retry-After applies to every worker)."""
        until = to_ms(self.clock.now()) + int(seconds * 1000)
        await self.redis.set(self.keys.pace(platform, key), until, px=max(int(seconds * 1000) * 2, 60000))

    async def move_due(self, platform: str) -> int:
        return int(await self.redis.eval(_MOVE_DUE, 2, self.keys.outbox_delayed(platform),
                                         self.keys.outbox(platform), to_ms(self.clock.now())))

    async def retry_later(self, platform: str, raw: str, attempts: int, error: str, delay_s: float) -> None:
        envelope = json.dumps({"m": raw, "a": attempts, "e": error[:500], "r": random.random()})
        await self.redis.zadd(self.keys.outbox_delayed(platform),
                              {envelope: to_ms(self.clock.now()) + int(delay_s * 1000)})

    async def dead_letter(self, platform: str, raw: str, attempts: int, error: str) -> None:
        await self.redis.xadd(self.keys.dead(platform), {
            "m": raw, "a": str(attempts), "e": error[:1000], "t": self.clock.now().isoformat()})

    async def dead_letters(self, platform: str, count: int = 100) -> list[DeadLetter]:
        rows: Any = await self.redis.xrange(self.keys.dead(platform), count=count)
        out = []
        for entry_id, data in rows:
            d = {_s(k): _s(v) for k, v in data.items()}
            out.append(DeadLetter(id=_s(entry_id), message=OutboxMessage.model_validate_json(d["m"]),
                                  attempts=int(d.get("a", "0")), error=d.get("e", ""),
                                  failed_at=d.get("t", "")))
        return out

    async def replay(self, platform: str, entry_id: str | None = None) -> int:
        """Put dead letters (one, or all) back on the outbox with a fresh attempt count."""
        rows: Any = await self.redis.xrange(self.keys.dead(platform),
                                       min=entry_id or "-", max=entry_id or "+")
        for row_id, data in rows:
            raw = data.get(b"m") or data.get("m")
            pipe = self.redis.pipeline(transaction=True)
            pipe.xadd(self.keys.outbox(platform), {"m": raw, "a": "0"})
            pipe.xdel(self.keys.dead(platform), row_id)
            await pipe.execute()
        return len(rows)

    async def mark_sent(self, platform: str, message_id: str, result: str | None) -> None:
        await self.redis.set(self.keys.sent(platform, message_id), result or "", ex=SENT_TTL_S)

    async def was_sent(self, platform: str, message_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.sent(platform, message_id)))


class DeliveryWorker:
    """Reads one platform's outbox stream and hands each message to its transport."""

    def __init__(self, outbox: Outbox, transport: Transport, *, consumer: str, max_attempts: int = 6,
                 base_delay_s: float = 2.0, max_delay_s: float = 300.0, claim_idle_ms: int = 60_000,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.outbox = outbox
        self.transport = transport
        self.platform = transport.platform
        self.consumer = consumer
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.claim_idle_ms = claim_idle_ms
        self.sleep = sleep
        self.streams = outbox.keys.outbox_streams(self.platform)
        self.stream = outbox.keys.outbox(self.platform)  # where retries and replays go back

    async def run_once(self, *, block_ms: int | None = None, count: int = 50) -> int:
        """Deliver what is due now: retries that came due, orphans of dead workers, new messages."""
        await self.outbox.ensure_group(self.platform)
        await self.outbox.move_due(self.platform)
        redis = self.outbox.redis
        handled = 0
        for stream in self.streams:
            claim: Any = await redis.xautoclaim(stream, GROUP, self.consumer,
                                                min_idle_time=self.claim_idle_ms, start_id="0-0", count=count)
            for entry_id, data in claim[1]:
                if data:
                    await self._handle(stream, entry_id, data)
                    handled += 1
        rows: Any = await redis.xreadgroup(GROUP, self.consumer, {s: ">" for s in self.streams}, count=count,
                                           block=block_ms)
        for stream, entries in rows or []:
            for entry_id, data in entries:
                await self._handle(_s(stream), entry_id, data)
                handled += 1
        return handled

    async def drain(self, *, rounds: int = 50) -> int:
        """Deliver until nothing is left that is due now (tests and the console use this)."""
        total = 0
        for _ in range(rounds):
            n = await self.run_once()
            total += n
            if n == 0:
                break
        return total

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once(block_ms=1000)
            except Exception:  # keep delivering; the failure is logged and counted
                log.exception("delivery loop failed", platform=self.platform)
                await self.sleep(1.0)

    async def _handle(self, stream: str, entry_id: Any, data: dict[Any, Any]) -> None:
        raw = _s(data.get(b"m") or data.get("m") or "")
        attempts = int(_s(data.get(b"a") or data.get("a") or "0")) + 1
        redis = self.outbox.redis
        try:
            message = OutboxMessage.model_validate_json(raw)
        except ValueError as exc:
            await self.outbox.dead_letter(self.platform, raw, attempts, f"unreadable message: {exc}")
            await _ack(redis, stream, entry_id)
            return
        bound = log.bind(platform=self.platform, message_id=message.id, case_id=message.notice.case_id)
        if await self.outbox.was_sent(self.platform, message.id):
            await _ack(redis, stream, entry_id)
            return
        try:
            pace = self.transport.pace(message)
            if pace:
                wait = await self.outbox.reserve_slot(self.platform, pace[0], pace[1])
                if wait > 0:
                    await self.sleep(wait)
            result = await self.transport.deliver(message)
        except RetryLater as exc:
            age = self.outbox.clock.now() - message.created_at
            if exc.waiting and age < WAIT_LIMIT:
                # Look again soon, then less often: a root held back by a 429 may take a minute.
                delay = exc.after or max(1.0, min(60.0, age.total_seconds() / 4))
                await self.outbox.retry_later(self.platform, raw, attempts - 1, exc.reason, delay)
                await _ack(redis, stream, entry_id)
                return
            DELIVERY_FAILURES.labels(self.platform, "retry").inc()
            if exc.after and (pace := self.transport.pace(message)):
                await self.outbox.hold(self.platform, pace[0], exc.after)
            if attempts >= self.max_attempts:
                bound.warning("message dead-lettered", attempts=attempts, error=exc.reason)
                DEAD_LETTERS.labels(self.platform).inc()
                await self.outbox.dead_letter(self.platform, raw, attempts, exc.reason)
            else:
                delay = exc.after if exc.after is not None else self._backoff(attempts)
                bound.info("delivery retry scheduled", attempts=attempts, delay_s=delay, error=exc.reason)
                await self.outbox.retry_later(self.platform, raw, attempts, exc.reason, delay)
            await _ack(redis, stream, entry_id)
            return
        except Undeliverable as exc:
            DELIVERY_FAILURES.labels(self.platform, "permanent").inc()
            DEAD_LETTERS.labels(self.platform).inc()
            bound.warning("message undeliverable", error=str(exc))
            await self.outbox.dead_letter(self.platform, raw, attempts, str(exc))
            await _ack(redis, stream, entry_id)
            return
        except Exception as exc:  # an unexpected bug must not lose the message: retry, then dead-letter
            bound.exception("delivery crashed")
            DELIVERY_FAILURES.labels(self.platform, "error").inc()
            if attempts >= self.max_attempts:
                DEAD_LETTERS.labels(self.platform).inc()
                await self.outbox.dead_letter(self.platform, raw, attempts, f"{type(exc).__name__}: {exc}")
            else:
                await self.outbox.retry_later(self.platform, raw, attempts, repr(exc), self._backoff(attempts))
            await _ack(redis, stream, entry_id)
            return
        await self.outbox.mark_sent(self.platform, message.id, result)
        await _ack(redis, stream, entry_id)
        DELIVERED.labels(self.platform).inc()

    def _backoff(self, attempts: int) -> float:
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (attempts - 1)))


async def _ack(redis: Any, stream: str, entry_id: Any) -> None:
    pipe = redis.pipeline(transaction=True)
    pipe.xack(stream, GROUP, entry_id)
    pipe.xdel(stream, entry_id)
    await pipe.execute()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
