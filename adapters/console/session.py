"""The console session: type what an agent types in chat, see what the bot posts, where and to whom.

It runs on the same core as Slack and Teams. It reads every platform's outbox with its own
consumer group, so it shows what would be posted without taking messages from real delivery.
Time can be moved forward (`:advance 10m`) to watch paging and SLA timers fire.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import ResponseError

from adapters.console.render import render_message, render_reply
from bot.clock import Clock
from bot.durations import parse_duration
from bot.messages import OutboxMessage, Reply
from bot.model import Actor, Origin
from bot.runtime import Runtime
from workflows.grammar import parse_message

GROUP = "console"
PLATFORMS = ("slack", "teams", "console")
CONSOLE_HELP = """Type what you would type in chat, e.g.
  /escalate L2 sev2 customer:globex category:billing Charged twice
  /case ESC-1001            /case ESC-1001 ack            /oncall
Console only:  :as PERSON   :advance 10m   :help   :quit"""


class SandboxClock:
    """The system time plus an offset the console user can move forward."""

    def __init__(self, base: Clock) -> None:
        self.base = base
        self.offset = timedelta()

    def now(self) -> datetime:
        return self.base.now() + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


class ConsoleSession:
    def __init__(self, runtime: Runtime, *, person: str, out: Callable[[str], None] = print,
                 advance: Callable[[timedelta], None] | None = None) -> None:
        self.runtime = runtime
        self.out = out
        self.advance = advance
        self.person = person
        self.seen_cards: set[str] = set()
        self.consumer = f"console-{uuid.uuid4().hex[:6]}"

    @property
    def actor(self) -> Actor:
        person = self.runtime.config.people.get(self.person)
        return Actor(person=self.person if person else None, platform="console", user_id=self.person,
                     name=person.name if person else self.person)

    async def start(self) -> None:
        for stream in (s for platform in PLATFORMS for s in self.runtime.store.keys.outboxes(platform)):
            try:  # "$": only what is posted from now on
                await self.runtime.store.redis.xgroup_create(stream, GROUP, id="$", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        who = self.actor.name
        self.out(f"Escalator console: you are {who}. {CONSOLE_HELP.splitlines()[0]}\n"
                 f"(:help lists examples; :quit leaves)")

    async def handle_line(self, line: str) -> bool:
        """Run one line; False means the user asked to quit."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if line.startswith(":"):
            return await self._console_command(line)
        self.out(f"{self.actor.name}> {line}")
        origin = Origin(platform="console", channel="console")
        result = parse_message(line, actor=self.actor, config=self.runtime.config, key=uuid.uuid4().hex,
                               origin=origin)
        reply = result if isinstance(result, Reply) else await self.runtime.bus.handle(result)
        if reply.form:
            reply = Reply(text="The form is a chat feature; in the console type the full command:\n"
                               + "/escalate [tier] [sev] [customer:ID] [category:NAME] summary", ok=False)
        self.out(_indent(render_reply(reply)))
        await self.settle()
        return True

    async def settle(self) -> None:
        """Fire due timers and show everything the bot posted meanwhile."""
        await self.runtime.scheduler.run_due()
        await self.show_posts()

    async def show_posts(self) -> None:
        redis = self.runtime.store.redis
        streams: Any = {s: ">" for p in PLATFORMS for s in self.runtime.store.keys.outboxes(p)}
        while True:
            rows: Any = await redis.xreadgroup(GROUP, self.consumer, streams, count=200)
            if not rows:
                return
            for stream, entries in rows:
                for entry_id, data in entries:
                    raw = data.get(b"m") or data.get("m")
                    message = OutboxMessage.model_validate_json(raw)
                    key = f"{message.address.platform}:{message.address.channel}:{message.address.thread_key}"
                    update = message.notice.kind == "card" and key in self.seen_cards
                    if message.notice.kind == "card":
                        self.seen_cards.add(key)
                    self.out(_indent(render_message(message, update=update), "  "))
                    await redis.xack(stream, GROUP, entry_id)

    async def _console_command(self, line: str) -> bool:
        verb, _, rest = line[1:].partition(" ")
        if verb in ("q", "quit", "exit"):
            return False
        if verb == "as":
            name = rest.strip().lower()
            if name not in self.runtime.config.people:
                self.out(f"  unknown person '{name}' (known: {', '.join(self.runtime.config.people)})")
            else:
                self.person = name
                self.out(f"  you are {self.actor.name} now")
        elif verb == "advance":
            if self.advance is None:
                self.out("  time cannot be moved in this session")
                return True
            try:
                delta = parse_duration(rest or "1m")
            except ValueError as exc:
                self.out(f"  {exc}")
                return True
            self.advance(delta)
            self.out(f"  ... {rest or '1m'} later")
            await self.settle()
        else:
            self.out(CONSOLE_HELP)
        return True


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
