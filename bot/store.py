"""The Redis store: records, timelines, indexes, outbox and timers, changed in one atomic step.

Every write goes through `commit`, a single Lua script that checks the versions of every record
the unit of work read (optimistic concurrency), checks the idempotency key, and applies all
operations: several records (a case and its swarm; an incident and the cases it links), their
indexes and timelines, the outbox messages (each given its lane's next sequence number, so a
thread's messages are delivered in commit order) and the timers land together or not at all.
All keys share one hash tag, so the commit is single-slot on Redis Cluster too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from bot import codec
from bot.clock import to_ms
from bot.commands import Command
from bot.keys import Keys
from bot.messages import OutboxMessage, case_thread
from bot.model import Case, Record, ThreadRef, TimelineEntry

Redis = aioredis.Redis

DEDUPE_TTL_S = 24 * 3600
SENT_TTL_S = 7 * 24 * 3600
LANE_TTL_MS = 30 * 24 * 3600 * 1000
R = TypeVar("R", bound=Record)

_COMMIT = """
local p = cjson.decode(ARGV[1])
if p.dedupe then
  local existing = redis.call('GET', p.dedupe.k)
  if existing then return {'duplicate', existing} end
end
for _, c in ipairs(p.checks) do
  local cur = tonumber(redis.call('HGET', c.k, 'v')) or 0
  if cur ~= c.v then return {'conflict', c.k, tostring(cur)} end
end
for _, op in ipairs(p.ops) do
  redis.call(unpack(op))
end
for _, m in ipairs(p.out) do
  local seq = redis.call('HINCRBY', m[1], 'seq', 1)
  redis.call('PEXPIRE', m[1], p.lane_ttl)
  redis.call('XADD', m[2], '*', 'm', m[3], 'a', '0', 'l', m[4], 's', tostring(seq))
end
for _, c in ipairs(p.counters or {}) do
  if c[1] == 'incr' then
    redis.call('HINCRBY', c[2], c[3], c[4])
  elseif c[1] == 'max' then
    local cur = tonumber(redis.call('HGET', c[2], c[3]))
    if cur == nil or cur < tonumber(c[4]) then redis.call('HSET', c[2], c[3], c[4]) end
  elseif c[1] == 'top' then
    redis.call('ZADD', c[2], 'GT', c[4], c[3])
    local extra = redis.call('ZCARD', c[2]) - tonumber(c[5])
    if extra > 0 then redis.call('ZREMRANGEBYRANK', c[2], 0, extra - 1) end
  end
end
if p.dedupe then redis.call('SET', p.dedupe.k, p.dedupe.val, 'EX', p.dedupe.ttl) end
return {'ok'}
"""


class Counter(NamedTuple):
    """An additive rollup change, applied in the commit: `incr` (HINCRBY), `max` (keep the larger
    value of a hash field) or `top` (ZADD GT, keeping the `limit` highest scores)."""

    op: Literal["incr", "max", "top"]
    suffix: str  # the key is `{prefix}:rollup:<suffix>`
    field: str
    amount: int = 1
    limit: int = 0


class ConflictError(Exception):
    """Someone else changed the case first; re-read and try again."""


@dataclass(frozen=True)
class CommitResult:
    status: Literal["ok", "duplicate"]
    value: str | None = None


class TimerLike(Protocol):
    id: str
    due: datetime
    command: Command


def timer_payload(timer: TimerLike) -> str:
    return json.dumps({"type": type(timer.command).__name__, "data": timer.command.model_dump(mode="json")})


@dataclass
class Write:
    """A record to save: `expected` is the version it was read at (0 for a new record)."""

    record: Record
    expected: int
    previous: Record | None = None


@dataclass
class Commit:
    """Everything one unit of work writes, applied all-or-nothing by `Store.commit`."""

    writes: list[Write] = field(default_factory=list)
    reads: list[tuple[str, int]] = field(default_factory=list)  # (record key, version read) to check
    timeline: list[tuple[Record, TimelineEntry]] = field(default_factory=list)
    messages: Sequence[OutboxMessage] = ()
    timers: Sequence[TimerLike] = ()
    cancel_timers: Sequence[str] = ()
    counters: Sequence[Counter] = ()


@dataclass(frozen=True)
class Opening:
    """What `begin_case` read: an earlier answer to the same request, the new id, the revisions."""

    done: str | None
    case_id: str
    revisions: dict[str, str]

    def revision(self, kind: str) -> str:
        return self.revisions.get(kind, "0")


class Store:
    """Case state on Redis. Build one per process with `Store(redis, prefix=...)`."""

    def __init__(self, redis: Redis, *, prefix: str = "escalator") -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self._commit_sha: str | None = None

    # ---- reads -------------------------------------------------------------------------

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def get_record(self, cls: type[R], record_id: str) -> R | None:
        raw = await self.redis.hget(self.keys.record(cls.kind, record_id), "d")
        return codec.decode_record(cls, raw) if raw else None

    async def get_case(self, case_id: str) -> Case | None:
        return await self.get_record(Case, case_id.upper())

    async def timeline(self, record_id: str, kind: str = "case") -> list[TimelineEntry]:
        raws = await self.redis.lrange(self.keys.timeline(record_id, kind), 0, -1)
        return [codec.decode_entry(TimelineEntry, raw) for raw in raws]

    async def open_case_ids(self, *, tier: str | None = None, customer: str | None = None,
                            owner: str | None = None) -> list[str]:
        """Open cases, optionally narrowed by tier, customer and owner (set intersection)."""
        keys = [self.keys.open_by(name, value)
                for name, value in (("tier", tier), ("customer", customer), ("owner", owner)) if value]
        members = await (self.redis.sinter(keys) if keys else self.redis.smembers(self.keys.open_all))
        return sorted((m.decode() if isinstance(m, bytes) else m) for m in members)

    async def begin_case(self, key: str | None) -> Opening:
        """In one round trip: what an earlier request with `key` answered (if any), a new id, and the
        revisions, so what the new case is checked against (incidents, articles) comes from cache."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.dedupe(key) if key else self.keys.dedupe("-"))
        pipe.incr(self.keys.case_seq)
        pipe.hgetall(self.keys.revisions)
        done, number, revisions = await pipe.execute()
        return Opening(done=_text(done) if done is not None and key else None, case_id=f"ESC-{1000 + int(number)}",
                       revisions={_text(k): _text(v) for k, v in revisions.items()})

    async def revision(self, kind: str) -> str:
        """How many commits wrote a `revised` record of `kind` ("0" if none)."""
        raw = await self.redis.hget(self.keys.revisions, kind)
        return _text(raw) if raw is not None else "0"

    async def dedupe_result(self, key: str) -> str | None:
        raw = await self.redis.get(self.keys.dedupe(key))
        return raw.decode() if isinstance(raw, bytes) else raw

    def rollup_key(self, suffix: str) -> str:
        """A rollup (digest counters, histograms, top lists): `{prefix}:rollup:<suffix>`."""
        return f"{self.keys.base}:rollup:{suffix}"

    # ---- thread references (written by delivery) ---------------------------------------

    async def set_thread_ref(self, name: str, ref: ThreadRef) -> None:
        """Remember where thread `name` lives on `ref.platform` (its channel and root message)."""
        key, part = self.keys.thread(name)
        await self.redis.hset(key, f"{ref.platform}:{part}", ref.model_dump_json())

    async def thread(self, name: str, platform: str) -> ThreadRef | None:
        key, part = self.keys.thread(name)
        raw = await self.redis.hget(key, f"{platform}:{part}")
        return ThreadRef.model_validate_json(raw) if raw else None

    async def thread_refs(self, name: str) -> dict[str, ThreadRef]:
        """Where thread `name` lives, by platform."""
        key, part = self.keys.thread(name)
        raw = await self.redis.hgetall(key)
        out = {}
        for field_name, value in raw.items():
            platform, _, suffix = _text(field_name).rpartition(":")
            if suffix == part:
                out[platform] = ThreadRef.model_validate_json(value)
        return out

    # Case threads by (case, tier), as the platform transports address them.
    async def set_thread(self, case_id: str, tier: str, ref: ThreadRef) -> None:
        await self.set_thread_ref(case_thread(case_id, tier), ref)

    async def get_thread(self, case_id: str, tier: str, platform: str) -> ThreadRef | None:
        return await self.thread(case_thread(case_id, tier), platform)

    async def threads(self, case_id: str) -> dict[str, ThreadRef]:
        """Every thread of a case, keyed `platform:tier`."""
        raw = await self.redis.hgetall(self.keys.thread(case_thread(case_id, "-"))[0])
        return {_text(k): ThreadRef.model_validate_json(v) for k, v in raw.items()}

    # ---- adapter references ------------------------------------------------------------

    async def put_ref(self, namespace: str, name: str, value: str, *, ttl_s: int | None = None) -> None:
        await self.redis.set(self.keys.ref(namespace, name), value, ex=ttl_s)

    async def get_ref(self, namespace: str, name: str) -> str | None:
        raw = await self.redis.get(self.keys.ref(namespace, name))
        return raw.decode() if isinstance(raw, bytes) else raw

    async def claim_once(self, key: str, *, ttl_s: int = DEDUPE_TTL_S, value: str = "1") -> bool:
        """`SET NX` a dedupe key: True for the first caller only (Slack retries, double clicks)."""
        return bool(await self.redis.set(self.keys.dedupe(key), value, nx=True, ex=ttl_s))

    async def newer_version(self, namespace: str, name: str, version: int) -> bool:
        """Record `version` if it is newer than the stored one; False means a stale update."""
        script = """
        local cur = tonumber(redis.call('GET', KEYS[1])) or -1
        if tonumber(ARGV[1]) < cur then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
        return 1
        """
        key = self.keys.ref(namespace, name)
        return bool(await self.redis.eval(script, 1, key, version, SENT_TTL_S))

    # ---- the one write path ------------------------------------------------------------

    async def commit(self, commit: Commit, *, dedupe_key: str | None = None,
                     dedupe_value: str = "1") -> CommitResult:
        """Apply `commit` atomically; raise ConflictError if a record read has moved on meanwhile."""
        k = self.keys
        checks: dict[str, int] = dict(commit.reads)
        ops: list[list[str]] = []
        for write in commit.writes:
            record = write.record
            key = k.record(record.kind, record.id)
            checks[key] = write.expected
            ops.append(["HSET", key, "v", str(record.version), "d", codec.encode_record(record)])
            if record.revised:
                ops.append(["HINCRBY", k.revisions, record.kind, "1"])
            ops += self._index_ops(write.previous, record)
        for record, entry in commit.timeline:
            ops.append(["RPUSH", k.timeline(record.id, record.kind), codec.encode_entry(entry)])
        out = [[k.lane(m.address.platform, m.lane or m.address.lane), k.outbox(m.address.platform, m.priority),
                m.model_dump_json(), m.lane or m.address.lane] for m in commit.messages]
        for timer_id in commit.cancel_timers:
            ops += [["ZREM", k.timers, timer_id], ["HDEL", k.timer_data, timer_id],
                    ["ZREM", k.timer_leases, timer_id]]
        for timer in commit.timers:
            ops += [["ZADD", k.timers, str(to_ms(timer.due)), timer.id],
                    ["HSET", k.timer_data, timer.id, timer_payload(timer)]]
        counters = self._counter_ops(commit.counters)
        payload: dict[str, Any] = {"checks": [{"k": key, "v": v} for key, v in checks.items()], "ops": ops,
                                   "out": out, "lane_ttl": LANE_TTL_MS, "counters": counters}
        if dedupe_key:
            payload["dedupe"] = {"k": k.dedupe(dedupe_key), "val": dedupe_value, "ttl": DEDUPE_TTL_S}
        touched = sorted({op[1] for op in ops} | set(checks) | {o[0] for o in out} | {o[1] for o in out}
                         | {c[1] for c in counters})
        result = await self._eval_commit(touched, json.dumps(payload))
        status = _text(result[0])
        if status == "conflict":
            raise ConflictError(f"{_text(result[1])} is at version {_text(result[2])}")
        if status == "duplicate":
            return CommitResult("duplicate", _text(result[1]))
        return CommitResult("ok")

    async def _eval_commit(self, keys: list[str], payload: str) -> Any:
        if self._commit_sha is None:
            self._commit_sha = await self.redis.script_load(_COMMIT)
        try:
            return await self.redis.evalsha(self._commit_sha, len(keys), *keys, payload)
        except NoScriptError:  # the server restarted or flushed its script cache
            self._commit_sha = await self.redis.script_load(_COMMIT)
            return await self.redis.evalsha(self._commit_sha, len(keys), *keys, payload)

    def _counter_ops(self, counters: Sequence[Counter]) -> list[list[str]]:
        """Counter changes for the script; increments of one field are summed first (order-free)."""
        sums: dict[tuple[str, str], int] = {}
        ops: list[list[str]] = []
        for c in counters:
            if c.op == "incr":
                sums[(c.suffix, c.field)] = sums.get((c.suffix, c.field), 0) + c.amount
            else:
                ops.append([c.op, self.rollup_key(c.suffix), c.field, str(c.amount), str(c.limit)])
        incrs = [["incr", self.rollup_key(suffix), name, str(amount), "0"]
                 for (suffix, name), amount in sums.items() if amount]
        return incrs + ops

    def _index_ops(self, old: Record | None, new: Record) -> list[list[str]]:
        k = self.keys
        ops: list[list[str]] = []
        if old is None:
            ops.append(["ZADD", k.created(new.kind), str(to_ms(new.created_at)), new.id])
        before = old.indexes() if old is not None else set()
        after = new.indexes()
        for name, value in sorted(before - after):
            ops.append(["SREM", k.index(new.kind, name, value), new.id])
        for name, value in sorted(after - before):
            ops.append(["SADD", k.index(new.kind, name, value), new.id])
        return ops


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
