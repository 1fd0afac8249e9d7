"""Helpers for workflow tests: act as a person, read what the bot queued for each platform."""

from __future__ import annotations

from typing import Any

from bot.clock import FakeClock
from bot.commands import Command
from bot.messages import OutboxMessage, Reply, case_thread
from bot.model import Actor
from bot.runtime import Runtime


def person(runtime: Runtime, key: str) -> Actor:
    p = runtime.config.people[key]
    return Actor(person=key, platform="slack", user_id=p.platform_id("slack"), name=p.name)


async def run(runtime: Runtime, command: Command) -> Reply:
    return await runtime.bus.handle(command)


async def posted(runtime: Runtime, platform: str = "slack") -> list[OutboxMessage]:
    """Everything queued for `platform` so far (the test never runs a delivery worker).

    Each lane (a thread, a DM, a channel) in the order it will be delivered (its sequence
    numbers); lanes one after the other in the order they first appear.
    """
    entries: list[tuple[bytes, int, str, OutboxMessage]] = []
    for stream in runtime.store.keys.outboxes(platform):
        rows: Any = await runtime.store.redis.xrange(stream)
        for entry_id, data in rows:
            message = OutboxMessage.model_validate_json(data[b"m"])
            entries.append((entry_id, int(data.get(b"s", b"0")), data.get(b"l", b"").decode(), message))
    first: dict[str, tuple[int, ...]] = {}
    for entry_id, _, lane, _ in sorted(entries, key=lambda e: _id(e[0])):
        first.setdefault(lane, _id(entry_id))
    return [e[3] for e in sorted(entries, key=lambda e: (first[e[2]], e[2], e[1]))]


def _id(entry_id: bytes) -> tuple[int, ...]:
    return tuple(int(part) for part in entry_id.decode().split("-"))


async def pages_to(runtime: Runtime, user: str, platform: str = "slack") -> list[OutboxMessage]:
    return [m for m in await posted(runtime, platform) if m.notice.kind == "page" and m.address.user == user]


async def thread_titles(runtime: Runtime, case_id: str, tier: str, platform: str = "slack") -> list[str]:
    return [m.notice.title for m in await posted(runtime, platform)
            if m.address.thread == case_thread(case_id, tier)]


class Sleeps:
    """A worker's sleep that records how long it would have waited and moves the fake clock instead."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds=seconds)
