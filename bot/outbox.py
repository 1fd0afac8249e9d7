"""Durable delivery of outbound messages: per platform three priority streams, one consumer group.

`Store.commit` gives each message the next sequence number of its lane (a thread, a DM, a
channel) and appends it to the stream of its priority (0 pages and case cards, 1 replies and
posts, 2 bulk). Entry fields: `m` message JSON, `a` attempts so far, `l` lane, `s` lane seq,
and `x` = "1" on a replayed dead letter (delivered whatever its lane says).

The lane hash (`seq`, `done`) gives thread order across processes: a message goes out only when
`done >= s - 1`, and finishing it (delivered, dead-lettered or skipped) sets `done = max(done, s)`
atomically with the acknowledgement. A message whose seq is already done is a duplicate (a
redelivery after a crash) and is acknowledged without sending.

A transport (Slack, Teams, console) raises `RetryLater` for what may work later and
`Undeliverable` for what never will. A 429 (`rate_limited`) holds its bucket for every process
and uses no attempt; the message waits as long as the platform says, up to `max_age`. Other
retries back off and use attempts; after `max_attempts` the message moves to the dead-letter
stream, where an operator can list and replay it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import structlog
from redis.exceptions import NoScriptError, ResponseError

from bot.clock import Clock, to_ms
from bot.keys import PRIORITIES
from bot.messages import OutboxMessage, default_lane
from bot.metrics import DEAD_LETTERS, DELIVERED, DELIVERY_FAILURES
from bot.pacing import HOLD, TAKE, Pace, bucket_args
from bot.store import LANE_TTL_MS, SENT_TTL_S, Store

log = structlog.get_logger("escalator.outbox")
GROUP = "delivery"
WAIT_LIMIT = timedelta(minutes=15)  # how long a message may wait for another one (its root, a link)
MAX_AGE = timedelta(hours=1)  # how long a rate-limited message may keep waiting before it is dead
MERGE_LIMIT = 50
MAX_IN_FLIGHT = 16  # deliveries at once per worker: also the most a kill -9 can repeat (no answer recorded)
ALIVE_TTL_MS = 6000  # a worker that has not said it lives for this long is taken over
TAKE_OVER_GUARD_MS = 1000  # below ALIVE_TTL_MS less a beat: a dead worker's entries are that idle


class RetryLater(Exception):
    """Try again later; `after` seconds if the platform said so (Retry-After).

    `rate_limited` (a 429) holds `scope` (a pace key; default the message's first one) for
    `after` seconds for every process, uses no attempt, and retries after the hold until the
    message is older than the worker's max age. `waiting` means the message waits for another
    one (its thread root, a linked thread): no failure either, until it is older than WAIT_LIMIT.
    Anything else (5xx, timeouts) backs off and uses an attempt.
    """

    def __init__(self, reason: str, after: float | None = None, *, waiting: bool = False,
                 scope: str | None = None, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after
        self.waiting = waiting
        self.scope = scope
        self.rate_limited = rate_limited


class Undeliverable(Exception):
    """The platform rejected the message for good (bad channel, not in channel, ...)."""


class Transport(Protocol):
    """Delivers one message to one platform. Must be idempotent per `message.id`.

    It may also offer `merge(messages) -> OutboxMessage | None`: several pages to one person,
    due together, as one message (None: send them one by one).
    """

    platform: str

    def pace(self, message: OutboxMessage) -> Sequence[Pace]:
        """The shared buckets this message draws from (empty: no pacing)."""
        ...

    async def deliver(self, message: OutboxMessage) -> str | None:
        """Send it; return the platform id of what was sent (ts, activity id) if any."""
        ...


Merge = Callable[[list[OutboxMessage]], OutboxMessage | None]


@dataclass(frozen=True)
class DeadLetter:
    id: str
    message: OutboxMessage
    attempts: int
    error: str
    failed_at: str


Sleep = Callable[[float], Awaitable[None]]

# KEYS: delayed set, then the streams by priority. Moves due retries back; returns
# {moved, ms of the next one due or -1}.
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
for _, raw in ipairs(due) do
  redis.call('ZREM', KEYS[1], raw)
  local env = cjson.decode(raw)
  local p = tonumber(env.p) or 1
  local fields = {'m', env.m, 'a', tostring(env.a), 'e', env.e or ''}
  if env.l then
    fields[#fields + 1] = 'l'; fields[#fields + 1] = env.l
    fields[#fields + 1] = 's'; fields[#fields + 1] = tostring(env.s or 0)
  end
  if env.x then fields[#fields + 1] = 'x'; fields[#fields + 1] = '1' end
  redis.call('XADD', KEYS[2 + p], '*', unpack(fields))
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then return {#due, nxt[2]} end
return {#due, '-1'}
"""

# KEYS: lane hash, stream, target (sent marker | dead stream | delayed set | unused).
# ARGV: mode, entry id, seq, lane ttl ms, then the mode's values. One atomic finish: the
# outcome, the lane's `done` (not for a retry: the lane stays blocked), XACK and XDEL.
_FINISH = """
local mode = ARGV[1]
if mode == 'sent' then
  redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[6])
elseif mode == 'dead' then
  redis.call('XADD', KEYS[3], '*', 'm', ARGV[5], 'a', ARGV[6], 'e', ARGV[7], 't', ARGV[8],
             'l', ARGV[9], 's', ARGV[3], 'p', ARGV[10])
elseif mode == 'retry' then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
end
local seq = tonumber(ARGV[3])
if mode ~= 'retry' and seq > 0 then
  local done = tonumber(redis.call('HGET', KEYS[1], 'done')) or 0
  if seq > done then redis.call('HSET', KEYS[1], 'done', seq) end
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
redis.call('XACK', KEYS[2], 'delivery', ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return 1
"""


# KEYS: workers set, the consumer's alive key. ARGV: consumer, ttl ms. Registers the consumer and
# says it lives; returns 1 if its previous word was still standing.
_BEAT = """
local before = redis.call('EXISTS', KEYS[2])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return before
"""

# KEYS: workers set, the consumer's alive key, then the streams. ARGV: consumer, group.
# Forgets a consumer that is not alive and holds no entry in any stream; 1 if forgotten.
_FORGET = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
for i = 3, #KEYS do
  local ok, rows = pcall(redis.call, 'XPENDING', KEYS[i], ARGV[2], '-', '+', 1, ARGV[1])
  if ok and #rows > 0 then return 0 end
end
for i = 3, #KEYS do
  pcall(redis.call, 'XGROUP', 'DELCONSUMER', KEYS[i], ARGV[2], ARGV[1])
end
redis.call('SREM', KEYS[1], ARGV[1])
return 1
"""


@dataclass
class Entry:
    """One stream entry a worker holds: where it came from and what it carries."""

    id: str
    stream: str
    priority: int
    lane: str
    seq: int
    replay: bool
    attempts: int
    raw: str
    message: OutboxMessage | None
    touched: float = 0.0
    after: set[asyncio.Task[int]] = field(default_factory=set)  # retry once these deliveries end
    retried_here: bool = False

    @property
    def key(self) -> str:
        return f"{self.stream} {self.id}"

    @property
    def order(self) -> tuple[int, float, str]:
        created = self.message.created_at.timestamp() if self.message else 0.0
        return self.priority, created, self.id


def parse_entry(stream: str, priority: int, entry_id: Any, data: dict[Any, Any]) -> Entry:
    d = {_s(k): _s(v) for k, v in data.items()}
    raw = d.get("m", "")
    try:
        message: OutboxMessage | None = OutboxMessage.model_validate_json(raw)
    except ValueError:
        message = None
    lane = d.get("l") or (message.lane if message else "") or (default_lane(message.address) if message else "?")
    return Entry(id=_s(entry_id), stream=stream, priority=priority, lane=lane, seq=int(d.get("s") or 0),
                 replay=d.get("x") == "1", attempts=int(d.get("a") or 0), raw=raw, message=message,
                 touched=time.monotonic())


class Outbox:
    """The streams: append (done by Store.commit), read, pace, retry, dead-letter, replay."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.redis = store.redis
        self.keys = store.keys
        self._shas: dict[str, str] = {}

    async def ensure_group(self, platform: str) -> None:
        for stream in self.keys.outboxes(platform):
            try:
                await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def pending(self, platform: str) -> int:
        """Messages not yet delivered: in a stream unacknowledged, or waiting for a retry."""
        # Finished entries are deleted from the stream, so the lengths are the backlog.
        pipe = self.redis.pipeline(transaction=False)
        for stream in self.keys.outboxes(platform):
            pipe.xlen(stream)
        pipe.zcard(self.keys.outbox_delayed(platform))
        return sum(int(n) for n in await pipe.execute())

    async def oldest_pending_age_s(self, platform: str) -> float:
        """Age of the oldest message not yet delivered (0 when none), from the head of each stream
        and of the retry set (a retried message's age counts from its commit)."""
        pipe = self.redis.pipeline(transaction=False)
        for stream in self.keys.outboxes(platform):
            pipe.xrange(stream, count=20)
        pipe.zrange(self.keys.outbox_delayed(platform), 0, 99)
        *streams, delayed = await pipe.execute()
        raws = [_s(data.get(b"m") or data.get("m") or "") for rows in streams for _, data in rows]
        raws += [json.loads(_s(env)).get("m", "") for env in delayed]
        now = self.clock.now()
        ages = [0.0]
        for raw in raws:
            with contextlib.suppress(ValueError):
                ages.append((now - OutboxMessage.model_validate_json(raw).created_at).total_seconds())
        return max(ages)

    # ---- scripts -----------------------------------------------------------------------

    async def _script(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        sha = self._shas.get(source)
        if sha is None:
            sha = self._shas[source] = await self.redis.script_load(source)
        try:
            return await self.redis.evalsha(sha, len(keys), *keys, *args)
        except ResponseError as exc:  # redis-py raises NoScriptError ("No matching script") for NOSCRIPT
            if not isinstance(exc, NoScriptError) and "NOSCRIPT" not in str(exc):
                raise
            self._shas[source] = await self.redis.script_load(source)
            return await self.redis.evalsha(self._shas[source], len(keys), *keys, *args)

    async def take(self, platform: str, entry: Entry, message: OutboxMessage, paces: Sequence[Pace],
                   now_ms: int, *, ordered: bool = True) -> tuple[str, int, list[int]]:
        """May `message` go now? ('ok' once its buckets are reserved, 'pace' with the wait,
        'wait' for its lane predecessor, 'dup' / 'sent' when it went already)."""
        keys = [self.keys.lane(platform, entry.lane), self.keys.sent(platform, message.id),
                *(self.keys.pace(platform, p.key) for p in paces)]
        mode = "lane" if ordered and not entry.replay else "free"
        result = await self._script(TAKE, keys, [now_ms, entry.seq, mode, *bucket_args(paces)])
        status = _s(result[0])
        if status == "pace":
            return status, int(result[1]), [int(w) for w in result[2:]]
        return status, 0, []

    async def hold(self, platform: str, pace: Pace, seconds: float, now_ms: int) -> None:
        """Nobody takes from `pace`'s bucket for `seconds` (a 429 Retry-After, for every worker)."""
        await self._script(HOLD, [self.keys.pace(platform, pace.key)],
                           [now_ms, int(seconds * 1000), f"{pace.tolerance_ms:.3f}"])

    async def move_due(self, platform: str, now_ms: int) -> tuple[int, int | None]:
        """Put retries that came due back on their streams; (moved, ms of the next one due)."""
        result = await self._script(_MOVE_DUE, [self.keys.outbox_delayed(platform), *self.keys.outboxes(platform)],
                                    [now_ms])
        nxt = int(float(_s(result[1])))
        return int(result[0]), (nxt if nxt >= 0 else None)

    async def finish(self, platform: str, entry: Entry, mode: str, *values: Any) -> None:
        await self._script(_FINISH, self._finish_keys(platform, entry, mode),
                           [mode, entry.id, entry.seq, LANE_TTL_MS, *values])

    def _finish_keys(self, platform: str, entry: Entry, mode: str) -> list[str]:
        target = {"sent": self.keys.sent(platform, entry.message.id if entry.message else "-"),
                  "dead": self.keys.dead(platform), "retry": self.keys.outbox_delayed(platform)}
        return [self.keys.lane(platform, entry.lane), entry.stream, target.get(mode, entry.stream)]

    async def finish_sent(self, platform: str, entries: Sequence[Entry], result: str | None) -> None:
        """Record the platform's answer, move each lane's `done` and acknowledge, in one transaction."""
        if len(entries) == 1 or _is_cluster(self.redis):
            # One entry: one atomic script. (On Redis Cluster the transactional pipeline of scripts
            # did not record the answers: every entry finishes with its own atomic script there.)
            for entry in entries:
                await self.finish(platform, entry, "sent", result or "", SENT_TTL_S)
            return
        pipe = self.redis.pipeline(transaction=True)
        for entry in entries:
            sha = self._shas.get(_FINISH) or await self._load(_FINISH)
            keys = self._finish_keys(platform, entry, "sent")
            pipe.evalsha(sha, len(keys), *keys, "sent", entry.id, entry.seq, LANE_TTL_MS, result or "",
                         SENT_TTL_S)
        try:
            await pipe.execute()
        except ResponseError as exc:
            if not isinstance(exc, NoScriptError) and "NOSCRIPT" not in str(exc):
                raise
            self._shas.pop(_FINISH, None)
            for entry in entries:
                await self.finish(platform, entry, "sent", result or "", SENT_TTL_S)

    async def _load(self, source: str) -> str:
        sha: str = await self.redis.script_load(source)
        self._shas[source] = sha
        return sha

    async def dead_letter(self, platform: str, entry: Entry, attempts: int, error: str) -> None:
        await self.finish(platform, entry, "dead", entry.raw, str(attempts), error[:1000],
                          self.clock.now().isoformat(), entry.lane, str(entry.priority))

    async def retry_later(self, platform: str, entry: Entry, attempts: int, error: str, delay_s: float,
                          now_ms: int) -> None:
        fields: dict[str, Any] = {"m": entry.raw, "a": attempts, "e": error[:500], "l": entry.lane, "s": entry.seq,
                                  "p": entry.priority, "r": random.random()}
        if entry.replay:  # (absent otherwise: a JSON null would be true in Lua)
            fields["x"] = 1
        envelope = json.dumps(fields)
        await self.finish(platform, entry, "retry", now_ms + int(delay_s * 1000), envelope)

    async def skip(self, platform: str, entry: Entry) -> None:
        """Acknowledge without sending (already sent); the lane moves on."""
        await self.finish(platform, entry, "skip")

    # ---- dead letters ------------------------------------------------------------------

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
        """Put dead letters (one, or all) back on their stream with a fresh attempt count.

        A replayed message keeps its lane and seq but is marked `x`: it is delivered even though
        its lane has moved on past it (it was finished by dead-lettering).
        """
        rows: Any = await self.redis.xrange(self.keys.dead(platform), min=entry_id or "-", max=entry_id or "+")
        for row_id, data in rows:
            d = {_s(k): _s(v) for k, v in data.items()}
            priority, lane = d.get("p"), d.get("l")
            if priority is None or lane is None:  # a dead letter from before lanes
                try:
                    message = OutboxMessage.model_validate_json(d["m"])
                    priority, lane = str(message.priority), message.lane
                except ValueError:
                    priority, lane = "1", "?"
            pipe = self.redis.pipeline(transaction=True)
            pipe.xadd(self.keys.outbox(platform, int(priority)),
                      {"m": d["m"], "a": "0", "l": lane, "s": d.get("s", "0"), "x": "1"})
            pipe.xdel(self.keys.dead(platform), row_id)
            await pipe.execute()
        return len(rows)

    # ---- which workers are alive ---------------------------------------------------------

    def _workers_key(self, platform: str) -> str:
        return f"{self.keys.base}:workers:{platform}"

    def _alive_key(self, platform: str, consumer: str) -> str:
        return f"{self.keys.base}:alive:{platform}:{consumer}"

    async def beat(self, platform: str, consumer: str, ttl_ms: int) -> bool:
        """Say that `consumer` lives for `ttl_ms` more. False if its last word had expired (or it is
        new): others may have taken over what it held."""
        keys = [self._workers_key(platform), self._alive_key(platform, consumer)]
        return bool(await self._script(_BEAT, keys, [consumer, ttl_ms]))

    async def leave(self, platform: str, consumer: str) -> None:
        """A stopping worker: the others may take what it still holds at once."""
        await self.redis.delete(self._alive_key(platform, consumer))

    async def dead_consumers(self, platform: str, me: str) -> list[str]:
        """Workers that said they live and have not said so within their TTL: killed, or cut off."""
        names = sorted(n for n in (_s(m) for m in await self.redis.smembers(self._workers_key(platform))) if n != me)
        if not names:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(self._alive_key(platform, name))
        return [name for name, alive in zip(names, await pipe.execute(), strict=True) if not alive]

    async def take_over(self, platform: str, stream: str, dead: str, me: str, count: int,
                        guard_ms: int = TAKE_OVER_GUARD_MS) -> list[tuple[Any, Any]]:
        """Claim up to `count` entries the dead consumer `dead` read from `stream` and never finished.

        The minimum idle time keeps two survivors from both taking the same entry: the first
        claim makes it fresh, the second skips it."""
        rows: Any = await self.redis.xpending_range(stream, GROUP, min="-", max="+", count=count, consumername=dead)
        ids = [row["message_id"] for row in rows]
        if not ids:
            return []
        claimed: Any = await self.redis.xclaim(stream, GROUP, me, guard_ms, ids)
        return [(i, d) for i, d in claimed if d]

    async def forget_consumer(self, platform: str, consumer: str) -> bool:
        """Drop a dead consumer from the group and the register once it holds nothing."""
        keys = [self._workers_key(platform), self._alive_key(platform, consumer), *self.keys.outboxes(platform)]
        return bool(await self._script(_FORGET, keys, [consumer, GROUP]))

    async def mark_sent(self, platform: str, message_id: str, result: str | None) -> None:
        await self.redis.set(self.keys.sent(platform, message_id), result or "", ex=SENT_TTL_S)

    async def was_sent(self, platform: str, message_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.sent(platform, message_id)))


@dataclass
class _Lane:
    """The entries of one lane this worker holds, lowest seq first, and when to look again."""

    name: str
    entries: list[Entry] = field(default_factory=list)
    not_before: int = 0  # worker ms
    state: str = "ready"  # ready | paced | waiting | busy
    polls: int = 0

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.entries.sort(key=lambda e: (e.seq, e.id))


class LoopHealth(Protocol):
    """Tells a Redis outage from other failures and logs it once per change (bot.health.RedisState)."""

    def is_outage(self, exc: BaseException) -> bool: ...
    def failed(self, exc: BaseException) -> None: ...
    def ok(self) -> None: ...
    def backoff(self, failures: int) -> float: ...


class DeliveryWorker:
    """Delivers one platform's outbox: many lanes at once, each lane in order, pages first.

    Entries are read from the three priority streams into per-lane buffers. Among the lane heads
    that may go (predecessor done, buckets free) the most urgent and oldest go first, up to
    `max_in_flight` at once; a lane that must wait is set aside while others go on. Several
    workers (processes) share one consumer group; the lane hashes keep each lane in order.
    """

    def __init__(self, outbox: Outbox, transport: Transport, *, consumer: str, max_attempts: int = 6,
                 base_delay_s: float = 2.0, max_delay_s: float = 300.0, claim_idle_ms: int = 60_000,
                 sleep: Sleep = asyncio.sleep, max_in_flight: int = MAX_IN_FLIGHT, max_age: timedelta = MAX_AGE,
                 read_count: int = 100, max_buffered: int = 5000, shutdown_grace_s: float = 10.0,
                 claim_every_s: float = 1.0, health: LoopHealth | None = None,
                 alive_ttl_ms: int = ALIVE_TTL_MS) -> None:
        self.outbox = outbox
        self.transport = transport
        self.platform = transport.platform
        self.consumer = consumer
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.claim_idle_ms = claim_idle_ms
        self.alive_ttl_ms = alive_ttl_ms
        self.sleep = sleep
        self.max_in_flight = max_in_flight
        self.max_age = max_age
        self.read_count = read_count
        self.max_buffered = max_buffered
        self.shutdown_grace_s = shutdown_grace_s
        self.claim_every_s = claim_every_s
        self.health = health
        self._last_failure = ""
        self.streams = outbox.keys.outboxes(self.platform)
        self._lanes: dict[str, _Lane] = {}
        self._held: dict[str, Entry] = {}  # entry id -> entry, everything read and not finished
        self._buckets: dict[str, int] = {}  # pace key -> worker ms before which it is known busy
        self._tasks: set[asyncio.Task[int]] = set()
        self._wake = asyncio.Event()
        self._slept_until = 0
        self._next_due: int | None = 0
        self._last_claim = 0.0
        self._last_touch = time.monotonic()
        self._alive = False  # says it lives (run_forever): the others wait for its word to lapse
        self._lapsed = False  # its word lapsed meanwhile: others may have taken over what it holds
        self._confirmed = 0.0  # when (monotonic) a word last found the previous one still standing
        self._word = asyncio.Lock()  # one word at a time, so a lapse one of them finds is never missed
        self._stop: asyncio.Event | None = None
        self.in_flight_peak = 0
        self._started = False
        self.finished = 0  # entries finished so far (delivered, retried, dead-lettered, skipped)

    # ---- the API used by servers and tests ---------------------------------------------

    async def run_once(self, *, block_ms: int | None = None, count: int | None = None) -> int:
        """Deliver what is due now (sleeping through pacing waits): retries that came due,
        orphans of dead workers, new messages. Returns how many entries were finished."""
        await self._start()
        await self._move_due(force=True)
        await self._claim_orphans(count or self.read_count)
        await self._read(count or self.read_count, block_ms)
        return await self._pump()

    async def drain(self, *, rounds: int = 50) -> int:
        """Deliver until nothing is left that is due now (tests and the console use this)."""
        total = 0
        for _ in range(rounds):
            n = await self.run_once()
            total += n
            if n == 0:
                break
        return total

    def stop(self) -> None:
        """Ask `run_forever` to finish in-flight deliveries, hand back the rest and return."""
        if self._stop is not None:
            self._stop.set()
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until `stop` is set; then finish in-flight deliveries (up to `shutdown_grace_s`)
        and hand back every entry still held, so another process takes it at once."""
        self._stop = stop = stop or asyncio.Event()
        await self._start()
        await self.outbox.beat(self.platform, self.consumer, self.alive_ttl_ms)
        self._alive, self._confirmed = True, time.monotonic()
        heart = asyncio.create_task(self._heartbeat(), name=f"outbox-heartbeat-{self.platform}")
        reader = asyncio.create_task(self._reader(stop), name=f"outbox-reader-{self.platform}")
        stopper = asyncio.create_task(stop.wait())
        failures = 0
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self._housekeeping()
                    await self._dispatch()
                except Exception as exc:  # keep delivering; the failure is logged and counted
                    failures = await self._recover(exc, failures, stop)
                    continue
                if failures and self.health is not None:
                    self.health.ok()
                failures = 0
                waiter = asyncio.create_task(self._wake.wait())
                await asyncio.wait([waiter, stopper], timeout=self._next_wake_s(),
                                   return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
        except asyncio.CancelledError:
            # Killed: do nothing more (like a crashed process); the entries stay claimable.
            reader.cancel()
            stopper.cancel()
            heart.cancel()
            for task in self._tasks:
                task.cancel()
            raise
        stopper.cancel()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        try:
            await self.shutdown()  # still saying it lives while it finishes its deliveries
        finally:
            heart.cancel()

    async def _recover(self, exc: Exception, failures: int, stop: asyncio.Event) -> int:
        """After a failed loop step: start afresh if Redis lost its data, else log and back off.
        Returns the failures in a row so far."""
        if "NOGROUP" in str(exc):  # Redis came back without its data (no persistence)
            with contextlib.suppress(Exception):
                await self._after_data_loss()
                return failures
        failures += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=self._loop_failed(exc, failures))
        return failures

    async def _after_data_loss(self) -> None:
        """Redis came back empty (no persistence): what this worker held is gone from the streams,
        and the lanes count from 1 again, so forget it all rather than mix old and new sequence numbers."""
        if self._held or self._lanes:
            log.warning("redis lost the outbox; dropping what this worker held", platform=self.platform,
                        held=len(self._held))
        self._held.clear()
        self._lanes.clear()
        self._buckets.clear()
        await self.outbox.ensure_group(self.platform)

    def _loop_failed(self, exc: Exception, failures: int) -> float:
        """Log a loop failure and say how long to pause: a Redis outage is logged once per change."""
        if self.health is not None and self.health.is_outage(exc):
            self.health.failed(exc)
            return self.health.backoff(failures)
        if failures == 1 or type(exc).__name__ != self._last_failure:
            self._last_failure = type(exc).__name__
            log.exception("delivery loop failed", platform=self.platform, error=f"{type(exc).__name__}: {exc}"[:300])
        return self.health.backoff(failures) if self.health is not None else 1.0

    async def shutdown(self) -> int:
        """Finish in-flight deliveries for up to `shutdown_grace_s`, then hand back what is held."""
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=self.shutdown_grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        handed = await self.hand_back()
        if self._alive:
            self._alive = False
            await self.outbox.leave(self.platform, self.consumer)  # the others forget it at once
        return handed

    async def hand_back(self) -> int:
        """Every entry this consumer still holds becomes claimable by the others now: XCLAIM it
        to ourselves with an idle time past anyone's claim threshold."""
        redis = self.outbox.redis
        idle = max(self.claim_idle_ms, 60_000) * 100
        total = 0
        for stream, ids in (await self._own_pending()).items():
            for i in range(0, len(ids), 500):
                batch: list[Any] = ids[i:i + 500]
                await redis.xclaim(stream, GROUP, self.consumer, 0, batch, idle=idle, justid=True)
            total += len(ids)
        self._lanes.clear()
        self._held.clear()
        if total:
            log.info("handed back held messages", platform=self.platform, count=total)
        return total

    async def _own_pending(self) -> dict[str, list[str]]:
        """The ids this consumer has read and not finished, by stream (Redis's view, not ours)."""
        owned: dict[str, list[str]] = {}
        for stream in self.streams:
            start = "-"
            while True:
                rows: Any = await self.outbox.redis.xpending_range(stream, GROUP, min=start, max="+", count=500,
                                                                   consumername=self.consumer)
                ids = [_s(row["message_id"]) for row in rows]
                owned.setdefault(stream, []).extend(ids)
                if len(rows) < 500:
                    break
                start = "(" + ids[-1]
        return owned

    # ---- liveness: a killed worker's entries are taken over within seconds ------------------

    async def _heartbeat(self) -> None:
        """Say every TTL/6 that this worker lives (run_forever, until its shutdown ends). A lapsed
        word (a stall longer than the TTL, Redis out of reach) means the others may have taken over
        what it holds: the loop then keeps only what is still its own."""
        while True:
            await asyncio.sleep(self.alive_ttl_ms / 6000)
            with contextlib.suppress(Exception):  # Redis trouble: the loops report and back off
                await self._say_alive()

    async def _say_alive(self) -> None:
        async with self._word:
            if await self.outbox.beat(self.platform, self.consumer, self.alive_ttl_ms):
                self._confirmed = time.monotonic()
            elif self._alive:
                self._lapsed = True
                self._wake.set()

    async def _confirm_alive(self) -> None:
        """Before dispatching after a gap in its words (the heartbeat stalled with the process, or
        could not reach Redis): make sure nobody took over meanwhile, else keep only its own."""
        if not self._lapsed:
            await self._say_alive()
        if self._lapsed:
            await self._keep_own()

    async def _keep_own(self) -> None:
        """After a lapse: drop the entries Redis no longer counts as this consumer's."""
        self._lapsed = False
        owned = await self._own_pending()
        mine = {f"{stream} {i}" for stream, ids in owned.items() for i in ids}
        lost = [key for key in self._held if key not in mine]
        log.warning("worker was presumed dead; keeping only what is still its own", platform=self.platform,
                    worker=self.consumer, taken_over=len(lost))
        for key in lost:
            self._held.pop(key, None)
        for lane in self._lanes.values():  # (a delivery in flight goes on: the bounded repeat)
            lane.entries = [e for e in lane.entries if e.key in mine]

    async def _take_over_dead(self, count: int) -> int:
        """Claim what workers that stopped saying they live still hold, without waiting for the
        idle claim; then forget those workers."""
        added = 0
        guard = min(TAKE_OVER_GUARD_MS, self.alive_ttl_ms // 3)
        for dead in await self.outbox.dead_consumers(self.platform, self.consumer):
            taken, more = 0, False
            for stream in self.streams:
                rows = await self.outbox.take_over(self.platform, stream, dead, self.consumer, count, guard)
                taken += self._add(stream, rows)
                more = more or len(rows) >= count
            if taken:
                log.info("took over a dead worker's messages", platform=self.platform, worker=dead, count=taken)
            if not more:
                await self.outbox.forget_consumer(self.platform, dead)
            added += taken
        if added:
            self._wake.set()
        return added

    # ---- reading -------------------------------------------------------------------------

    async def _start(self) -> None:
        """Once per worker: the groups exist, and what this consumer name already holds (a
        restart under the same name, another worker object) is taken up again."""
        if self._started:
            return
        await self.outbox.ensure_group(self.platform)
        for stream in self.streams:
            start = "0"
            while True:
                rows: Any = await self.outbox.redis.xreadgroup(GROUP, self.consumer, {stream: start}, count=500)
                entries = [(i, d) for _, batch in rows or [] for i, d in batch if d]
                self._add(stream, entries)
                if len(entries) < 500:
                    break
                start = _s(entries[-1][0])
        self._started = True

    async def _reader(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                await self._read(self.read_count, 1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures = await self._recover(exc, failures, stop)
                continue
            if failures:
                # Redis is back: a read whose answer was lost in the outage left entries in this
                # consumer's pending list that nobody holds; take them up now, not after the idle claim.
                if self.health is not None:
                    self.health.ok()
                self._started = False
                with contextlib.suppress(Exception):
                    await self._start()
            failures = 0

    async def _read(self, count: int, block_ms: int | None) -> int:
        streams = self.streams
        if len(self._held) >= self.max_buffered:  # full: only pages and cards still come in
            if block_ms is not None:
                streams = streams[:1]
            else:
                return 0
        rows: Any = await self.outbox.redis.xreadgroup(GROUP, self.consumer, {s: ">" for s in streams},
                                                       count=count, block=block_ms)
        added = 0
        for stream, entries in rows or []:
            added += self._add(_s(stream), entries)
        if added:
            self._wake.set()
        return added

    async def _claim_orphans(self, count: int) -> int:
        """Take over entries another consumer read and left idle (crashed, or handed back)."""
        self._last_claim = time.monotonic()
        added = await self._take_over_dead(count)
        for stream in self.streams:
            claim: Any = await self.outbox.redis.xautoclaim(stream, GROUP, self.consumer,
                                                            min_idle_time=self.claim_idle_ms, start_id="0-0",
                                                            count=count)
            added += self._add(stream, [(i, d) for i, d in claim[1] if d])
        return added

    def _add(self, stream: str, entries: Any) -> int:
        priority = self.streams.index(stream) if stream in self.streams else 1
        added = 0
        for entry_id, data in entries:
            key = f"{stream} {_s(entry_id)}"  # entry ids are unique per stream only
            if key in self._held:
                self._held[key].touched = time.monotonic()
                continue
            entry = parse_entry(stream, PRIORITIES[priority], _s(entry_id), data)
            self._held[key] = entry
            lane = self._lanes.setdefault(entry.lane, _Lane(entry.lane))
            lane.add(entry)
            if lane.state == "waiting":
                lane.state, lane.not_before = "ready", 0
            added += 1
        return added

    async def _housekeeping(self) -> None:
        if self._alive and (self._lapsed or time.monotonic() - self._confirmed > self.alive_ttl_ms / 2000):
            await self._confirm_alive()
        now = self._now_ms()
        if self._next_due is not None and self._next_due <= now:
            await self._move_due()
        if time.monotonic() - self._last_claim >= self.claim_every_s:
            await self._move_due()
            await self._claim_orphans(self.read_count)
        await self._touch()

    async def _move_due(self, *, force: bool = False) -> None:
        moved, self._next_due = await self.outbox.move_due(self.platform, self._now_ms())
        if moved:
            self._wake.set()

    async def _touch(self) -> None:
        """Keep the entries we hold from looking idle, so nobody claims them while we live."""
        if self.claim_idle_ms < 3000 or time.monotonic() - self._last_touch < self.claim_idle_ms / 3000:
            return
        self._last_touch = time.monotonic()
        by_stream: dict[str, list[str]] = {}
        for entry in self._held.values():
            by_stream.setdefault(entry.stream, []).append(entry.id)
        for stream, ids in by_stream.items():
            for i in range(0, len(ids), 500):
                await self.outbox.redis.xclaim(stream, GROUP, self.consumer, 0, list(ids[i:i + 500]), justid=True)

    # ---- scheduling ------------------------------------------------------------------------

    def _now_ms(self) -> int:
        # After a (test) sleep that did not move the clock, carry on from where the sleep ended.
        return max(to_ms(self.outbox.clock.now()), self._slept_until)

    def _next_wake_s(self) -> float:
        now = self._now_ms()
        times = [lane.not_before for lane in self._lanes.values()
                 if lane.entries and lane.state in ("paced", "waiting")]
        if self._next_due is not None:
            times.append(self._next_due)
        wait = (min(times) - now) / 1000 if times else 1.0
        return min(1.0, max(0.005, wait))

    async def _pump(self) -> int:
        """Dispatch and await deliveries until nothing can go without new input; sleep through
        pacing waits (drain semantics). Returns how many entries were finished meanwhile."""
        first = self.finished
        while True:
            started, finished = await self._dispatch()
            if self._tasks:
                await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
                continue
            if started or finished:
                continue
            now = self._now_ms()
            paced = [lane.not_before for lane in self._lanes.values() if lane.entries and lane.state == "paced"]
            if not paced:
                return self.finished - first
            until = min(paced)
            await self.sleep(max(0.0, (until - now) / 1000))
            self._slept_until = max(self._slept_until, until)

    async def _dispatch(self) -> tuple[int, int]:
        """Start every lane head that may go now, most urgent first. (started, finished at once)."""
        now = self._now_ms()
        started = finished = 0
        candidates = [lane for lane in self._lanes.values()
                      if lane.entries and lane.state != "busy" and lane.not_before <= now
                      and not any(not t.done() for t in lane.entries[0].after)]
        candidates.sort(key=lambda lane: lane.entries[0].order)
        for lane in candidates:
            if len(self._tasks) >= self.max_in_flight:
                break
            outcome = await self._try_start(lane, now)
            if outcome == "started":
                started += 1
            elif outcome == "finished":
                finished += 1
        for lane in [lane for lane in self._lanes.values() if not lane.entries and lane.state != "busy"]:
            self._lanes.pop(lane.name, None)
        return started, finished

    async def _try_start(self, lane: _Lane, now: int) -> str:
        head = lane.entries[0]
        if head.message is None:
            await self._dead(head, head.attempts + 1, "unreadable message")
            self._drop(lane, [head])
            return "finished"
        group = self._merge_group(lane)
        message = head.message
        if len(group) > 1:
            merge: Merge | None = getattr(self.transport, "merge", None)
            merged = merge([e.message for e in group if e.message]) if merge else None
            if merged is None:
                group = [head]
            else:
                message = merged
        paces = list(self.transport.pace(message) or ())  # None: no pacing
        if any(self._buckets.get(p.key, 0) > now for p in paces):
            lane.state, lane.not_before = "paced", max(self._buckets[p.key] for p in paces
                                                       if p.key in self._buckets)
            return "set aside"
        status, wait, waits = await self.outbox.take(self.platform, head, message, paces, now)
        if status == "wait" and self._lane_stuck(head):
            status, wait, waits = await self.outbox.take(self.platform, head, message, paces, now, ordered=False)
        if status == "ok":
            lane.state, lane.polls = "busy", 0
            task = asyncio.create_task(self._deliver(lane, group, message, paces))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self.in_flight_peak = max(self.in_flight_peak, len(self._tasks))
            return "started"
        if status in ("dup", "sent"):
            await self.outbox.skip(self.platform, head)
            self._drop(lane, [head])
            return "finished"
        if status == "pace":
            for pace, w in zip(paces, waits, strict=False):
                if w > 0:
                    self._buckets[pace.key] = now + w
            lane.state, lane.not_before = "paced", now + wait
            return "set aside"
        # 'wait': the predecessor is elsewhere (another worker, the retry set): look again soon.
        lane.state, lane.polls = "waiting", lane.polls + 1
        lane.not_before = now + min(1000, 50 * 2 ** min(lane.polls, 5))
        return "set aside"

    def _lane_stuck(self, head: Entry) -> bool:
        """A lane whose predecessor is gone for good (older than any retry could be) moves on."""
        if head.message is None:
            return False
        age = self.outbox.clock.now() - head.message.created_at
        if age > self.max_age + WAIT_LIMIT:
            log.warning("lane predecessor missing; delivering out of order", lane=head.lane, seq=head.seq)
            return True
        return False

    def _merge_group(self, lane: _Lane) -> list[Entry]:
        """The head page and the pages to the same person right behind it, in seq order."""
        head = lane.entries[0]
        if not _is_dm_page(head) or not hasattr(self.transport, "merge") or head.replay:
            return [head]
        group = [head]
        for entry in lane.entries[1:MERGE_LIMIT]:
            if entry.seq != group[-1].seq + 1 or entry.replay or not _is_dm_page(entry):
                break
            group.append(entry)
        return group

    def _drop(self, lane: _Lane, entries: Sequence[Entry]) -> None:
        ids = {e.key for e in entries}
        lane.entries = [e for e in lane.entries if e.key not in ids]
        self.finished += len(ids)
        for key in ids:
            self._held.pop(key, None)
        lane.state, lane.not_before, lane.polls = "ready", 0, 0
        self._wake.set()

    # ---- one delivery ----------------------------------------------------------------------

    async def _deliver(self, lane: _Lane, group: list[Entry], message: OutboxMessage,
                       paces: list[Pace]) -> int:
        head = group[0]
        assert head.message is not None
        bound = log.bind(platform=self.platform, message_id=head.message.id, case_id=head.message.notice.case_id)
        finished = group
        try:
            try:
                result = await self.transport.deliver(message)
            except RetryLater as exc:
                others = {t for t in self._tasks if t is not asyncio.current_task() and not t.done()}
                if exc.waiting and not exc.rate_limited and others and not head.retried_here:
                    # What it waits for (its thread's card, a linked thread) may be in flight
                    # right now: look again once those deliveries end, before any delayed retry.
                    head.after, head.retried_here = others, True
                    lane.state = "ready"
                    return 0
                finished = [head]
                await self._retry(head, exc, paces, bound)
            except Undeliverable as exc:
                finished = [head]
                DELIVERY_FAILURES.labels(self.platform, "permanent").inc()
                bound.warning("message undeliverable", error=str(exc))
                await self._dead(head, head.attempts + 1, str(exc))
            except Exception as exc:  # an unexpected bug must not lose the message: retry, then dead-letter
                finished = [head]
                bound.exception("delivery crashed")
                DELIVERY_FAILURES.labels(self.platform, "error").inc()
                attempts = head.attempts + 1
                if attempts >= self.max_attempts:
                    await self._dead(head, attempts, f"{type(exc).__name__}: {exc}")
                else:
                    await self._later(head, attempts, repr(exc), self._backoff(attempts), self._now_ms())
            else:
                await self.outbox.finish_sent(self.platform, group, result)
                DELIVERED.labels(self.platform).inc(len(group))
            self._drop(lane, finished)
            return len(finished)
        except asyncio.CancelledError:
            raise
        except Exception:  # Redis failed while finishing: the entries stay held and claimable
            bound.exception("could not record a delivery outcome")
            lane.state, lane.not_before = "ready", self._now_ms() + 1000
            return 0
        finally:
            if lane.state == "busy":
                lane.state = "ready"
            self._wake.set()

    async def _retry(self, entry: Entry, exc: RetryLater, paces: list[Pace], bound: Any) -> None:
        assert entry.message is not None
        now = self._now_ms()
        age = self.outbox.clock.now() - entry.message.created_at
        if exc.rate_limited:
            DELIVERY_FAILURES.labels(self.platform, "rate_limited").inc()
            after = exc.after if exc.after is not None else 1.0
            scope = exc.scope or (paces[0].key if paces else None)
            if scope is not None:
                pace = next((p for p in paces if p.key == scope), Pace(scope, 0))
                await self.outbox.hold(self.platform, pace, after, now)
                self._buckets[scope] = now + int(after * 1000)
            if age >= self.max_age:
                bound.warning("message dead-lettered after rate limits", age_s=age.total_seconds())
                await self._dead(entry, entry.attempts, f"still rate limited after {_minutes(self.max_age)}: "
                                                        f"{exc.reason}")
            else:
                await self._later(entry, entry.attempts, exc.reason, after, now)
            return
        if exc.waiting and age < WAIT_LIMIT:
            # Look again soon, then less often: a root held back by a 429 may take a minute.
            delay = exc.after or max(0.2, min(60.0, age.total_seconds() / 4))
            await self._later(entry, entry.attempts, exc.reason, delay, now)
            return
        DELIVERY_FAILURES.labels(self.platform, "retry").inc()
        attempts = entry.attempts + 1
        if attempts >= self.max_attempts:
            bound.warning("message dead-lettered", attempts=attempts, error=exc.reason)
            await self._dead(entry, attempts, exc.reason)
        else:
            delay = exc.after if exc.after is not None else self._backoff(attempts)
            bound.info("delivery retry scheduled", attempts=attempts, delay_s=delay, error=exc.reason)
            await self._later(entry, attempts, exc.reason, delay, now)

    async def _later(self, entry: Entry, attempts: int, error: str, delay_s: float, now: int) -> None:
        await self.outbox.retry_later(self.platform, entry, attempts, error, delay_s, now)
        due = now + int(delay_s * 1000)
        self._next_due = due if self._next_due is None else min(self._next_due, due)

    async def _dead(self, entry: Entry, attempts: int, error: str) -> None:
        DEAD_LETTERS.labels(self.platform).inc()
        await self.outbox.dead_letter(self.platform, entry, attempts, error)

    def _backoff(self, attempts: int) -> float:
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (attempts - 1)))


def _is_dm_page(entry: Entry) -> bool:
    message = entry.message
    return message is not None and message.notice.kind == "page" and bool(message.address.user)


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"


def _is_cluster(redis: Any) -> bool:
    return hasattr(redis, "nodes_manager")  # redis.asyncio.cluster.RedisCluster


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
