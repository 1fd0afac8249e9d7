"""The composition root of the core: the one place that builds Redis, store, bus and workers.

Nothing real is built at import time. Entry points (CLI, web server, tests) call
`build_runtime(...)` with the handler table of the workflows and get everything wired.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.bus import Context, Handler, MessageBus
from bot.clock import Clock, SystemClock
from bot.commands import Command
from bot.config import Config
from bot.outbox import DeliveryWorker, Outbox, Sleep, Transport
from bot.redis_server import RedisHandle, connect
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.store import Store


@dataclass
class Runtime:
    config: Config
    settings: Settings
    clock: Clock
    redis: RedisHandle
    store: Store
    outbox: Outbox
    bus: MessageBus
    scheduler: Scheduler
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")

    def worker(self, transport: Transport, **options: Any) -> DeliveryWorker:
        """A delivery worker for one platform's outbox stream (options: see DeliveryWorker)."""
        return DeliveryWorker(self.outbox, transport, consumer=f"{self.consumer}-{transport.platform}", **options)

    async def close(self) -> None:
        await self.redis.close()


def build_runtime(*, config: Config, settings: Settings, handlers: Mapping[type[Command], Handler],
                  clock: Clock | None = None, redis: RedisHandle | None = None,
                  prefix: str | None = None) -> Runtime:
    """Wire the core from settings; pass `redis`/`clock`/`prefix` to override (tests do).

    `handlers` is the workflows' table (`workflows.HANDLERS`, a `bot.bus.Wiring`): command handlers,
    plus the domain-event handlers and record views it carries.
    """
    clock = clock or SystemClock()
    redis = redis or connect(settings.redis_url, settings.escalator_data_dir, settings)
    store = Store(redis.client, prefix=prefix or settings.escalator_prefix)
    context = Context(config=config, store=store, clock=clock, events=getattr(handlers, "events", {}),
                      views=getattr(handlers, "views", {}))
    bus = MessageBus(handlers, context)
    return Runtime(config=config, settings=settings, clock=clock, redis=redis, store=store,
                   outbox=Outbox(store, clock), bus=bus, scheduler=Scheduler(store, clock, bus.handle))


__all__ = ["Runtime", "Sleep", "build_runtime"]
