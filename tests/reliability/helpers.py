"""Shared by the reliability tests: a recording platform, opening cases as Slack would, waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY

from bot.commands import OpenCase
from bot.messages import OutboxMessage
from bot.outbox import Transport


def pool_waits() -> float:
    """How many Redis calls have waited for a free connection so far (the Prometheus counter)."""
    return REGISTRY.get_sample_value("escalator_redis_pool_waits_total") or 0.0


class RecordingTransport:
    """Delivers by remembering; `hold` keeps every delivery waiting until it is set."""

    platform = "slack"

    def __init__(self, *, held: bool = False) -> None:
        self.sent: list[OutboxMessage] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        if not held:
            self.release.set()

    def pace(self, message: OutboxMessage) -> list[Any]:
        return []

    async def deliver(self, message: OutboxMessage) -> str | None:
        self.started.set()
        await self.release.wait()
        self.sent.append(message)
        return f"ts-{len(self.sent)}"


class RecordingAdapter:
    """A platform with no routes whose transport records what it is given."""

    platform = "slack"

    def __init__(self, transport: RecordingTransport, *, release_on_stop: bool = True) -> None:
        self._transport = transport
        self._release_on_stop = release_on_stop

    def mount(self, app: web.Application) -> None:
        pass

    def transport(self) -> Transport:
        return self._transport

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        if self._release_on_stop:
            self._transport.release.set()


async def eventually(check: Callable[[], Any], what: str, tries: int = 150) -> None:
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def open_case(runtime: Any, title: str) -> str:
    """Open a case as Slack would: retrying the same request until Redis takes it."""
    for _ in range(50):
        try:
            reply = await runtime.bus.handle(OpenCase(title=title, key=f"open-{title}"))
            return str(reply.case_id)
        except Exception:
            await asyncio.sleep(0.2)
    raise AssertionError("the case never opened")
