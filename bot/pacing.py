"""Shared pacing: token buckets (GCRA) in Redis that every delivery process draws from.

A transport says which buckets a message draws from (`Pace(key, rate, burst)`: a channel's
1 msg/s with a burst of 3, a workspace-wide budget, a Web API method tier). One Lua call checks
every bucket of a message and reserves a slot in all of them only when all are free, so a
message never holds a token it cannot use, and a page is not stuck behind slots booked ahead
by bulk traffic. A 429 puts a hold on one bucket (its Retry-After), seen by every process.

Each bucket is a hash: `t` the GCRA theoretical arrival time and `h` a hold-until, both in ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Pace:
    """A shared bucket: `rate` messages a second, `burst` at once. A rate of 0 only honours holds
    (a 429 on a method that the message may or may not call)."""

    key: str
    rate: float
    burst: int = 1

    @property
    def interval_ms(self) -> float:
        return 1000.0 / self.rate if self.rate > 0 else 0.0

    @property
    def tolerance_ms(self) -> float:
        return max(0, self.burst - 1) * self.interval_ms


def bucket_args(paces: Sequence[Pace]) -> list[str]:
    """ARGV tail for TAKE: interval and tolerance (ms) per bucket, in KEYS order."""
    out: list[str] = []
    for pace in paces:
        out += [f"{pace.interval_ms:.3f}", f"{pace.tolerance_ms:.3f}"]
    return out


# KEYS: lane hash, sent marker, then one bucket per Pace.
# ARGV: now ms, lane seq (0: no lane order), mode ("lane" checks order; "free" skips it), then
#       interval and tolerance per bucket.
# Returns {'dup'|'wait', done} for lane order, {'sent'} for an id already delivered,
#         {'pace', wait, w1, w2, ...} (ms per bucket) when a bucket is busy, {'ok'} once reserved.
TAKE = """
local now = tonumber(ARGV[1])
local seq = tonumber(ARGV[2])
if ARGV[3] == 'lane' and seq > 0 then
  local done = tonumber(redis.call('HGET', KEYS[1], 'done')) or 0
  if seq <= done then return {'dup', done} end
  if seq > done + 1 then return {'wait', done} end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'sent'} end
local waits = {}
local worst = 0
local tats = {}
for i = 3, #KEYS do
  local interval = tonumber(ARGV[4 + (i - 3) * 2])
  local tau = tonumber(ARGV[5 + (i - 3) * 2])
  local b = redis.call('HMGET', KEYS[i], 't', 'h')
  local tat = tonumber(b[1]) or now
  local hold = tonumber(b[2]) or 0
  local w = hold - now
  if interval > 0 and tat - tau - now > w then w = tat - tau - now end
  if w < 1 then w = 0 end  -- (float rounding: under a millisecond is on time)
  w = math.ceil(w)
  waits[#waits + 1] = w
  tats[i] = tat
  if w > worst then worst = w end
end
if worst > 0 then
  local out = {'pace', worst}
  for _, w in ipairs(waits) do out[#out + 1] = w end
  return out
end
for i = 3, #KEYS do
  local interval = tonumber(ARGV[4 + (i - 3) * 2])
  if interval > 0 then
    local tau = tonumber(ARGV[5 + (i - 3) * 2])
    local tat = math.max(tats[i], now) + interval
    redis.call('HSET', KEYS[i], 't', tostring(tat))
    redis.call('PEXPIRE', KEYS[i], math.ceil(tat - now + tau) + 60000)
  end
end
return {'ok'}
"""

# KEYS: the bucket. ARGV: now ms, hold ms, the bucket's tolerance ms.
# Nobody takes from the bucket before now+hold; after it, one message, then the bucket's rate.
HOLD = """
local now = tonumber(ARGV[1])
local untl = now + tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'h')
local hold = math.max(tonumber(b[2]) or 0, untl)
local tat = math.max(tonumber(b[1]) or 0, untl + tau)
redis.call('HSET', KEYS[1], 'h', tostring(hold), 't', tostring(tat))
redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(hold, tat) - now) + 60000)
return hold
"""
