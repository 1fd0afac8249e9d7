"""The one aiohttp server: health, metrics, and the platform adapters' routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.platform import PlatformAdapter
from bot.metrics import OUTBOX_PENDING
from bot.runtime import Runtime

log = structlog.get_logger("escalator.web")
RUNTIME = web.AppKey("runtime", Runtime)


def build_web_app(runtime: Runtime, adapters: Sequence[PlatformAdapter], *,
                  background: bool = True) -> web.Application:
    """The server app; with `background`, delivery workers and the scheduler run alongside."""
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    for adapter in adapters:
        adapter.mount(app)
    if background:
        app.cleanup_ctx.append(_workers(runtime, adapters))
    return app


async def _healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        await asyncio.wait_for(runtime.store.ping(), timeout=2)
    except Exception as exc:
        return web.json_response({"status": "unhealthy", "redis": type(exc).__name__}, status=503)
    return web.json_response({"status": "ok", "redis": "ok", "tiers": runtime.config.tier_ids})


async def _metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    for platform in ("slack", "teams"):
        with contextlib.suppress(Exception):
            OUTBOX_PENDING.labels(platform).set(await runtime.outbox.pending(platform))
    resp = web.Response(body=generate_latest())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


def _workers(runtime: Runtime, adapters: Sequence[PlatformAdapter]):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(runtime.scheduler.run_forever(stop), name="scheduler")]
        for adapter in adapters:
            transport = adapter.transport()
            if transport is None:
                log.warning("no credentials: messages wait in the outbox", platform=adapter.platform)
                continue
            worker = runtime.worker(transport)
            tasks.append(asyncio.create_task(worker.run_forever(stop), name=f"delivery-{adapter.platform}"))
            await adapter.start()
        yield
        stop.set()
        # Workers finish in-flight deliveries (up to 10 s) and hand back the rest before the
        # adapters close the connections those deliveries use.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=13)
        for adapter in adapters:
            with contextlib.suppress(Exception):
                await adapter.stop()
    return ctx
