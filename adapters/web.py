"""The one aiohttp server: health, readiness, metrics, and the platform adapters' routes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.platform import PlatformAdapter
from bot.commands import PlanDigests
from bot.health import HTTP_IN_FLIGHT, OUTBOX_OLDEST_AGE, RedisState, run_guarded
from bot.metrics import OUTBOX_PENDING
from bot.redis_server import OUTAGE_ERRORS
from bot.runtime import Runtime

log = structlog.get_logger("escalator.web")
RUNTIME = web.AppKey("runtime", Runtime)
TASKS = web.AppKey("background_tasks", dict[str, "asyncio.Task[None]"])
STATE = web.AppKey("redis_state", RedisState)
PLATFORMS = ("slack", "teams")
GRACE_S = 10.0  # background tasks get this long to finish after a stop, then they are cancelled


def build_web_app(runtime: Runtime, adapters: Sequence[PlatformAdapter], *,
                  background: bool = True, grace_s: float = GRACE_S) -> web.Application:
    """The server app; with `background`, delivery workers and the scheduler run alongside.

    On shutdown the background work gets `grace_s` to finish what it holds, then is cancelled.
    """
    app = web.Application(middlewares=[_count_in_flight])
    app[RUNTIME] = runtime
    app[TASKS] = {}
    app[STATE] = RedisState(OUTAGE_ERRORS)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    for adapter in adapters:
        adapter.mount(app)
    if background:
        app.cleanup_ctx.append(_workers(runtime, adapters, grace_s))
    return app


@web.middleware
async def _count_in_flight(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    HTTP_IN_FLIGHT.inc()
    try:
        return await handler(request)
    finally:
        HTTP_IN_FLIGHT.dec()


async def _healthz(request: web.Request) -> web.Response:
    """Alive: the process answers. Always 200 (restarting would not bring Redis back); /readyz gates traffic."""
    runtime = request.app[RUNTIME]
    try:
        await asyncio.wait_for(runtime.store.ping(), timeout=1)
        redis = "ok"
    except Exception as exc:
        redis = f"unreachable ({type(exc).__name__})"
    return web.json_response({"status": "ok", "redis": redis, "tiers": runtime.config.tier_ids})


async def _readyz(request: web.Request) -> web.Response:
    """Ready for traffic: Redis answers within 1 s, the background tasks run, the outbox keeps up."""
    runtime = request.app[RUNTIME]
    settings = runtime.settings
    problems: list[str] = []
    body: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        await asyncio.wait_for(runtime.store.ping(), timeout=1)
        body["redis"] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
    except Exception as exc:
        body["redis"] = {"ok": False, "error": type(exc).__name__}
        problems.append(f"redis does not answer ({type(exc).__name__})")
    tasks = request.app[TASKS]
    body["tasks"] = {name: "running" if not task.done() else "stopped" for name, task in tasks.items()}
    problems += [f"background task {name} is not running" for name, task in tasks.items() if task.done()]
    if body["redis"]["ok"]:
        body["outbox"] = {}
        for platform in PLATFORMS:
            try:
                backlog, age = await asyncio.wait_for(_outbox_figures(runtime, platform), timeout=1)
            except Exception as exc:
                problems.append(f"outbox {platform} unreadable ({type(exc).__name__})")
                continue
            body["outbox"][platform] = {"pending": backlog, "oldest_pending_s": round(age, 1)}
            if f"delivery-{platform}" not in tasks:
                continue  # no worker (no credentials): messages wait on purpose, not a backlog
            if backlog > settings.escalator_ready_max_backlog:
                problems.append(f"outbox {platform}: {backlog} pending (limit {settings.escalator_ready_max_backlog})")
            if age > settings.escalator_ready_max_age_s:
                problems.append(f"outbox {platform}: oldest pending {age:.0f} s "
                                f"(limit {settings.escalator_ready_max_age_s:.0f} s)")
    body["status"] = "ready" if not problems else "not ready"
    body["problems"] = problems
    return web.json_response(body, status=200 if not problems else 503)


async def _outbox_figures(runtime: Runtime, platform: str) -> tuple[int, float]:
    """Messages waiting (every priority and the retries), and the age in seconds of the oldest."""
    backlog = await runtime.outbox.pending(platform)
    age = await runtime.outbox.oldest_pending_age_s(platform)
    OUTBOX_PENDING.labels(platform).set(backlog)
    OUTBOX_OLDEST_AGE.labels(platform).set(age)
    return backlog, age


async def _metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    for platform in PLATFORMS:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_outbox_figures(runtime, platform), timeout=1)
    resp = web.Response(body=generate_latest())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


def _workers(runtime: Runtime, adapters: Sequence[PlatformAdapter], grace_s: float):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        try:  # digests on their schedule; one missed while down is sent now (workflows.digest)
            await runtime.bus.handle(PlanDigests())
        except Exception:
            log.exception("planning the digests failed")
        state = app[STATE]
        tasks = app[TASKS]
        tasks["scheduler"] = asyncio.create_task(
            run_guarded("scheduler", runtime.scheduler.run_due, stop, state, idle_s=1.0), name="scheduler")
        for adapter in adapters:
            transport = adapter.transport()
            if transport is None:
                log.warning("no credentials: messages wait in the outbox", platform=adapter.platform)
                continue
            # The worker finishes in-flight deliveries and hands back what it holds within the grace.
            worker = runtime.worker(transport, health=state, shutdown_grace_s=max(1.0, grace_s - 2))
            name = f"delivery-{adapter.platform}"
            tasks[name] = asyncio.create_task(worker.run_forever(stop), name=name)
            await adapter.start()
        if runtime.config.crisis.webhooks:  # crisis mode's status page webhooks
            from adapters.webhook import WebhookTransport
            hooks = runtime.worker(WebhookTransport(runtime.config), health=state,
                                   shutdown_grace_s=max(1.0, grace_s - 2))
            tasks["delivery-webhook"] = asyncio.create_task(hooks.run_forever(stop), name="delivery-webhook")
        yield
        await stop_background(stop, list(tasks.values()), adapters, grace_s=grace_s)
    return ctx


async def stop_background(stop: asyncio.Event, tasks: Sequence[asyncio.Task[None]],
                          adapters: Sequence[PlatformAdapter], *, grace_s: float = GRACE_S) -> None:
    """Ask the loops to stop, give them `grace_s` to finish what they hold, then cancel the rest."""
    stop.set()

    async def stop_adapter(adapter: PlatformAdapter) -> None:
        try:
            await asyncio.wait_for(adapter.stop(), timeout=min(3.0, grace_s))
        except Exception as exc:
            log.warning("adapter did not stop cleanly", platform=adapter.platform, error=type(exc).__name__)

    # Workers finish in-flight deliveries and hand back the rest before the adapters close the
    # connections those deliveries use: at most grace_s, then at most 3 s for the adapters.
    _, late = await asyncio.wait(tasks, timeout=grace_s) if tasks else (set(), set())
    for task in late:
        log.warning("background task still busy at shutdown; cancelled", task=task.get_name())
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(stop_adapter(a) for a in adapters))
