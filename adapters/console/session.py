"""The console session: type what an agent types in chat, see what the bot posts, where and to whom.

It runs on the same core as Slack and Teams, in a sandbox: its own Redis key prefix
(`<prefix>-console`), so what is typed here never waits in the outbox `serve` delivers from.
It reads every platform's outbox with its own consumer group to show what would be posted.
Time can be moved forward (`:advance 10m`) to watch paging and SLA timers fire, each at its time.
"""

from __future__ import annotations

import base64
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from redis.exceptions import ResponseError

from adapters.console.render import render_message, render_reply
from bot.clock import Clock, from_ms
from bot.commands import PlanDigests
from bot.durations import format_duration, parse_duration
from bot.messages import FileRef, OutboxMessage, Reply
from bot.model import Actor, Origin
from bot.runtime import Runtime
from workflows.grammar import notes, parse_message, with_notes

GROUP = "console"
PLATFORMS = ("slack", "teams", "console")
PREFIX_SUFFIX = "-console"
EXAMPLE = "/escalate L2 sev2 customer:globex category:billing Charged twice"
CONSOLE_HELP = f"""Type what you would type in chat, e.g.
  {EXAMPLE}
  /case ESC-1001            /case ESC-1001 ack            /oncall            /help
Console only:
  :as PERSON     act as someone else (a key from the config's people)
  :advance 10m   move time forward; every paging step and SLA timer due meanwhile fires at its time
  :help          this text
  :quit          leave (Ctrl-D and Ctrl-C leave too)"""
MAX_STEPS = 1000  # timers fired by one :advance, a guard against a timer that keeps re-arming itself


def console_prefix(prefix: str) -> str:
    """The console's own Redis key prefix: its cases and outbox are never `serve`'s."""
    return prefix + PREFIX_SUFFIX


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
                 advance: Callable[[timedelta], None] | None = None, files_dir: Path | None = None) -> None:
        self.runtime = runtime
        self.files_dir = files_dir or Path(tempfile.gettempdir()) / "escalator-console"
        self.out = out
        self.advance = advance
        self.person = person
        self.seen_cards: set[str] = set()
        self.consumer = f"console-{uuid.uuid4().hex[:6]}"
        self.echo = True  # repeat each line after the prompt (scripts); a terminal shows it already

    @property
    def prompt(self) -> str:
        return f"{self.actor.name}> "

    @property
    def actor(self) -> Actor:
        person = self.runtime.config.people.get(self.person)
        return Actor(person=self.person if person else None, platform="console", user_id=self.person,
                     name=person.name if person else self.person)

    async def start(self) -> None:
        for stream in self._streams():
            try:  # "$": only what is posted from now on
                await self.runtime.store.redis.xgroup_create(stream, GROUP, id="$", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        await self.runtime.bus.handle(PlanDigests())  # digests fire as time moves (:advance 1d)
        self.out(f"Escalator console: you are {self.actor.name}. Type what you would type in chat, e.g. {EXAMPLE}\n"
                 f"Console sandbox: cases here are never posted to Slack or Teams; "
                 f"data in {self.runtime.store.keys.prefix}.\n"
                 f"(:help lists examples and console commands; :quit or Ctrl-D leaves.)")

    async def handle_line(self, line: str) -> bool:
        """Run one line; False means the user asked to quit."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if line.startswith(":"):
            return await self._console_command(line)
        if self.echo:
            self.out(f"{self.prompt}{line}")
        origin = Origin(platform="console", channel="console")
        config = self.runtime.config
        result = parse_message(line, actor=self.actor, config=config, key=uuid.uuid4().hex, origin=origin)
        reply = result if isinstance(result, Reply) else await self.runtime.bus.handle(result)
        if notes(result, config):
            reply = with_notes(reply, result, config)
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
        streams: Any = {stream: ">" for stream in self._streams()}
        while True:
            rows: Any = await redis.xreadgroup(GROUP, self.consumer, streams, count=200)
            if not rows:
                return
            for stream, entries in rows:
                for entry_id, data in entries:
                    raw = data.get(b"m") or data.get("m")
                    message = OutboxMessage.model_validate_json(raw)
                    key = f"{message.address.platform}:{message.address.channel}:{message.address.thread}"
                    update = message.notice.kind == "card" and key in self.seen_cards
                    if message.notice.kind == "card":
                        self.seen_cards.add(key)
                    self.out(_indent(render_message(message, update=update), "  "))
                    if message.notice.kind == "upload" and message.notice.file:
                        self.out(f"     file written to {self._save(message.notice.file)}")
                    await redis.xack(stream, GROUP, entry_id)

    def _save(self, file: FileRef) -> Path:
        """An uploaded file (a digest chart) as a local file the user can open."""
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / Path(file.filename).name
        path.write_bytes(base64.b64decode(file.data_b64))
        return path

    def _streams(self) -> list[str]:
        keys = self.runtime.store.keys
        return [stream for platform in PLATFORMS for stream in keys.outboxes(platform)]

    async def _console_command(self, line: str) -> bool:
        verb, _, rest = line[1:].partition(" ")
        if verb in ("q", "quit", "exit"):
            return False
        if verb == "as":
            name = rest.strip().lstrip("@").lower()
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
            await self.advance_by(delta)
        elif verb in ("help", "h", "?"):
            self.out(CONSOLE_HELP)
        else:
            self.out(f"  unknown console command ':{verb}' (try :help)")
        return True

    async def advance_by(self, delta: timedelta) -> None:
        """Move time forward by `delta`, stopping at each timer that falls due on the way.

        Each timer fires at its own due time, so a paging step armed by an earlier one fires
        within the same hour, and what it posts is stamped with the time it happened.
        """
        assert self.advance is not None
        clock = self.runtime.clock
        start = clock.now()
        target = start + delta
        await self.settle()  # what was already due
        for _ in range(MAX_STEPS):
            pending = await self.runtime.scheduler.pending()
            if not pending:
                break
            due = from_ms(int(min(score for _, score in pending)))
            if due > target:
                break
            if due > clock.now():
                self.advance(due - clock.now())
            elapsed = timedelta(seconds=round((clock.now() - start).total_seconds()))
            self.out(f"  ... {format_duration(elapsed)} later "
                     f"({clock.now().astimezone(self.runtime.config.tz):%H:%M})")
            await self.settle()
        if target > clock.now():
            self.advance(target - clock.now())
        self.out(f"  ... {format_duration(delta)} later, "
                 f"now {clock.now().astimezone(self.runtime.config.tz):%H:%M}")
        await self.settle()


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
