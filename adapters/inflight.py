"""A bounded number of commands in flight per process, so a burst waits briefly instead of piling up.

Past the limit, a request waits up to `wait_s` for a slot; if none frees up, the caller gets a
short "busy" answer and the command is not run at all, so its idempotency key stays unused and
the platform's retry (same trigger id) opens the case exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

log = structlog.get_logger()

DEFAULT_WAIT_S = 2.0  # inside Slack's 3 s, leaving time to answer
BUSY_TEXT = ("Escalator is busy right now and did not run this. Nothing was opened or changed: "
             "please send it again in a moment.")


class InFlightLimit:
    """At most `limit` requests run at once; the others queue for up to `wait_s`."""

    def __init__(self, limit: int, *, wait_s: float = DEFAULT_WAIT_S) -> None:
        self.limit = max(1, limit)
        self.wait_s = wait_s
        self._slots = asyncio.Semaphore(self.limit)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[bool]:
        """Yields True with a slot held, or False when none freed up within `wait_s` (busy)."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_s)
        except TimeoutError:
            log.warning("request refused: too many in flight", limit=self.limit)
            yield False
            return
        try:
            yield True
        finally:
            self._slots.release()
