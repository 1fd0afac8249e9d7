"""The Redis store: cases, timelines, indexes, outbox and timers, changed in one atomic step.

Every write goes through `commit`, a single Lua script that checks the case versions it was
given (optimistic concurrency), checks the idempotency key, and applies all operations, so a
state change, its timeline, its outbound messages and its timers land together or not at all.
This is the only module that imports `redis`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from bot.changes import Changes, Timer
from bot.clock import to_ms
from bot.keys import Keys
from bot.messages import OutboxMessage
from bot.model import Case, ThreadRef, TimelineEntry

Redis = aioredis.Redis

DEDUPE_TTL_S = 24 * 3600
SENT_TTL_S = 7 * 24 * 3600
LANE_TTL_MS = 30 * 24 * 3600 * 1000  # a lane's seq/done hash lives this long after its last write

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
for _, o in ipairs(p.out or {}) do
  local s = redis.call('HINCRBY', o.lane, 'seq', 1)
  redis.call('PEXPIRE', o.lane, p.lane_ttl)
  redis.call('XADD', o.stream, '*', 'm', o.m, 'a', '0', 'l', o.l, 's', tostring(s))
end
if p.dedupe then redis.call('SET', p.dedupe.k, p.dedupe.val, 'EX', p.dedupe.ttl) end
return {'ok'}
"""


class ConflictError(Exception):
    """Someone else changed the case first; re-read and try again."""


@dataclass(frozen=True)
class CommitResult:
    status: Literal["ok", "duplicate"]
    value: str | None = None


def timer_payload(timer: Timer) -> str:
    return json.dumps({"type": type(timer.command).__name__, "data": timer.command.model_dump(mode="json")})


class Store:
    """Case state on Redis. Build one per process with `Store(redis, prefix=...)`."""

    def __init__(self, redis: Redis, *, prefix: str = "escalator") -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self._commit_sha: str | None = None

    # ---- reads -------------------------------------------------------------------------

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def get_case(self, case_id: str) -> Case | None:
        raw = await self.redis.hget(self.keys.case(case_id.upper()), "d")
        return Case.model_validate_json(raw) if raw else None

    async def timeline(self, case_id: str) -> list[TimelineEntry]:
        raws = await self.redis.lrange(self.keys.timeline(case_id), 0, -1)
        return [TimelineEntry.model_validate_json(raw) for raw in raws]

    async def open_case_ids(self, *, tier: str | None = None, customer: str | None = None,
                            owner: str | None = None) -> list[str]:
        """Open cases, optionally narrowed by tier, customer and owner (set intersection)."""
        keys = [self.keys.open_by(name, value)
                for name, value in (("tier", tier), ("customer", customer), ("owner", owner)) if value]
        members = await (self.redis.sinter(keys) if keys else self.redis.smembers(self.keys.open_all))
        return sorted((m.decode() if isinstance(m, bytes) else m) for m in members)

    async def begin_case(self, key: str | None) -> tuple[str | None, str]:
        """In one round trip: what an earlier request with `key` answered (if any), and a new id."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.dedupe(key) if key else self.keys.dedupe("-"))
        pipe.incr(self.keys.case_seq)
        done, number = await pipe.execute()
        return (_text(done) if done is not None and key else None), f"ESC-{1000 + int(number)}"

    async def dedupe_result(self, key: str) -> str | None:
        raw = await self.redis.get(self.keys.dedupe(key))
        return raw.decode() if isinstance(raw, bytes) else raw

    # ---- thread references (written by delivery) ---------------------------------------

    async def set_thread(self, case_id: str, tier: str, ref: ThreadRef) -> None:
        await self.redis.hset(self.keys.threads(case_id), f"{ref.platform}:{tier}", ref.model_dump_json())

    async def get_thread(self, case_id: str, tier: str, platform: str) -> ThreadRef | None:
        raw = await self.redis.hget(self.keys.threads(case_id), f"{platform}:{tier}")
        return ThreadRef.model_validate_json(raw) if raw else None

    async def threads(self, case_id: str) -> dict[str, ThreadRef]:
        raw = await self.redis.hgetall(self.keys.threads(case_id))
        return {(k.decode() if isinstance(k, bytes) else k): ThreadRef.model_validate_json(v)
                for k, v in raw.items()}

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

    async def commit(self, changes: Changes, messages: Sequence[OutboxMessage] = (), *,
                     dedupe_key: str | None = None, dedupe_value: str = "1") -> CommitResult:
        """Apply `changes` atomically; raise ConflictError if the case moved on meanwhile."""
        k = self.keys
        checks: list[dict[str, Any]] = []
        ops: list[list[str]] = []
        case = changes.case
        if case is not None:
            checks.append({"k": k.case(case.id), "v": changes.expected_version})
            ops.append(["HSET", k.case(case.id), "v", str(case.version), "d", case.model_dump_json()])
            ops += self._index_ops(changes.previous, case)
        for entry_case, entry in ((case.id if case else None, e) for e in changes.timeline):
            if entry_case:
                ops.append(["RPUSH", k.timeline(entry_case), entry.model_dump_json()])
        # Each message gets the next sequence number of its lane, then joins its priority stream.
        out = [{"lane": k.lane(m.address.platform, m.lane), "stream": k.outbox(m.address.platform, m.priority),
                "l": m.lane, "m": m.model_dump_json()} for m in messages]
        for timer_id in changes.cancel_timers:
            ops += [["ZREM", k.timers, timer_id], ["HDEL", k.timer_data, timer_id],
                    ["ZREM", k.timer_leases, timer_id]]
        for timer in changes.timers:
            ops += [["ZADD", k.timers, str(to_ms(timer.due)), timer.id],
                    ["HSET", k.timer_data, timer.id, timer_payload(timer)]]
        payload: dict[str, Any] = {"checks": checks, "ops": ops, "out": out, "lane_ttl": LANE_TTL_MS}
        if dedupe_key:
            payload["dedupe"] = {"k": k.dedupe(dedupe_key), "val": dedupe_value, "ttl": DEDUPE_TTL_S}
        touched = sorted({op[1] for op in ops} | {c["k"] for c in checks}
                         | {o["lane"] for o in out} | {o["stream"] for o in out})
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

    def _index_ops(self, old: Case | None, new: Case) -> list[list[str]]:
        k = self.keys
        ops: list[list[str]] = []
        if old is None:
            ops.append(["ZADD", k.all_cases, str(to_ms(new.created_at)), new.id])
        before = _memberships(old) if old and old.is_open else set()
        after = _memberships(new) if new.is_open else set()
        for index, value in before - after:
            ops.append(["SREM", k.open_by(index, value) if index != "all" else k.open_all, new.id])
        for index, value in after - before:
            ops.append(["SADD", k.open_by(index, value) if index != "all" else k.open_all, new.id])
        return ops


def _memberships(case: Case) -> set[tuple[str, str]]:
    out = {("all", ""), ("tier", case.tier)}
    if case.customer:
        out.add(("customer", case.customer))
    if case.owner:
        out.add(("owner", case.owner))
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
