"""Whether Redis answers, as the background loops see it: back off while it is away, log each change once.

Without this, a Redis that goes away makes every loop log a full traceback every second. With it,
the process logs "redis unreachable" once, retries with growing pauses (up to 5 s, so work resumes
within seconds of Redis answering again: three loops trying every 5 s cost Redis nothing), and logs
"redis back" once when a call succeeds again. Also the figures `/readyz` and `/metrics` report.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import Counter, Gauge, Histogram

log = structlog.get_logger("escalator.health")

REDIS_UP = Gauge("escalator_redis_up", "1 while the background loops reach Redis, 0 while they do not")
POOL_WAITS = Counter("escalator_redis_pool_waits_total", "Redis calls that waited for a free connection")
POOL_WAIT_SECONDS = Histogram("escalator_redis_pool_wait_seconds", "How long those calls waited",
                              buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0))
OUTBOX_OLDEST_AGE = Gauge("escalator_outbox_oldest_pending_seconds",
                          "Age of the oldest message waiting in the outbox stream", ["platform"])
HTTP_IN_FLIGHT = Gauge("escalator_http_requests_in_flight", "HTTP requests being handled now")

_said: set[str] = set()


def once(key: str, event: str, **fields: object) -> None:
    """Log a warning the first time only (shutdown and cleanup paths may run on every stop)."""
    if key not in _said:
        _said.add(key)
        log.warning(event, **fields)


class RedisState:
    """Shared by the loops of one process: up or down, since when, and a backoff per failure streak."""

    def __init__(self, outage_errors: tuple[type[BaseException], ...], *, base_s: float = 0.5,
                 max_s: float = 5.0) -> None:
        self.outage_errors = outage_errors
        self.base_s = base_s
        self.max_s = max_s
        self.up = True
        self.down_since: float | None = None
        REDIS_UP.set(1)

    def is_outage(self, exc: BaseException) -> bool:
        return isinstance(exc, self.outage_errors)

    def ok(self) -> None:
        """A call succeeded: if Redis was away, say once that it is back."""
        if not self.up:
            away = time.monotonic() - (self.down_since or time.monotonic())
            log.warning("redis back", away_s=round(away, 1))
            self.up, self.down_since = True, None
            REDIS_UP.set(1)

    def failed(self, exc: BaseException) -> None:
        """A call found Redis away: say so once per outage."""
        if self.up:
            log.error("redis unreachable", error=f"{type(exc).__name__}: {exc}", retrying="with backoff")
            self.up, self.down_since = False, time.monotonic()
            REDIS_UP.set(0)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after `failures` failures in a row: 0.5, 1, 2, 4, then 5."""
        return float(min(self.max_s, self.base_s * 2 ** max(0, failures - 1)))


async def run_guarded(name: str, step: Callable[[], Awaitable[object]], stop: asyncio.Event,
                      state: RedisState, *, idle_s: float = 0.0) -> None:
    """Call `step` until `stop`, pausing `idle_s` between calls and backing off after failures.

    A Redis outage is logged once per change by `state`; any other error is logged with its
    traceback when it first occurs, and again only when it changes, so a stuck loop cannot flood the log.
    """
    failures = 0
    last_error = ""
    while not stop.is_set():
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            if state.is_outage(exc):
                state.failed(exc)
            elif (error := f"{type(exc).__name__}: {exc}") != last_error:
                last_error = error
                log.exception("background loop failed", loop=name, retrying="with backoff")
            pause = state.backoff(failures)
        else:
            if failures:
                failures, last_error = 0, ""
            state.ok()
            pause = idle_s
        if pause > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
