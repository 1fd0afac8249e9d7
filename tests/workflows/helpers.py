"""Helpers for workflow tests: act as a person, read what the bot queued for each platform."""

from __future__ import annotations

from typing import Any

from bot.commands import Command
from bot.messages import OutboxMessage, Reply
from bot.model import Actor
from bot.runtime import Runtime


def person(runtime: Runtime, key: str) -> Actor:
    p = runtime.config.people[key]
    return Actor(person=key, platform="slack", user_id=p.slack, name=p.name)


async def run(runtime: Runtime, command: Command) -> Reply:
    return await runtime.bus.handle(command)


async def posted(runtime: Runtime, platform: str = "slack") -> list[OutboxMessage]:
    """Everything queued for `platform` so far (the test never runs a delivery worker)."""
    rows: list[tuple[Any, Any]] = []
    for stream in runtime.store.keys.outboxes(platform):
        rows += await runtime.store.redis.xrange(stream)
    # Commit order: streams are per priority, so merge them by entry time, then lane order.
    rows.sort(key=lambda row: (int(row[0].split(b"-")[0]), row[1].get(b"l", b""), int(row[1].get(b"s", 0))))
    return [OutboxMessage.model_validate_json(data[b"m"]) for _, data in rows]


async def pages_to(runtime: Runtime, user: str, platform: str = "slack") -> list[OutboxMessage]:
    return [m for m in await posted(runtime, platform) if m.notice.kind == "page" and m.address.user == user]


async def thread_titles(runtime: Runtime, case_id: str, tier: str, platform: str = "slack") -> list[str]:
    return [m.notice.title for m in await posted(runtime, platform)
            if m.address.thread_case == case_id and m.address.thread_tier == tier]
