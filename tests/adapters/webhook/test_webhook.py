"""Status page webhooks over real HTTP: signed JSON, retried on 5xx/429, dead-lettered on 4xx."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.webhook import WebhookTransport
from bot.clock import FakeClock
from bot.commands import DeclareIncident, PostUpdate
from bot.config import Config, CrisisSettings, Webhook
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from tests.workflows.helpers import person, run


class StatusPage:
    """A fake status page: answers from a script of statuses, records what it got."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.got: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, headers={"Retry-After": "30"} if status == 429 else {})


@pytest.fixture
async def page() -> AsyncIterator[tuple[StatusPage, str]]:
    fake = StatusPage()
    app = web.Application()
    app.router.add_post("/hook", fake.handle)
    server = TestServer(app)
    await server.start_server()
    yield fake, str(server.make_url("/hook"))
    await server.close()


@pytest.fixture
async def hooked(example_config: Config, redis_client: aioredis.Redis, clock: FakeClock, prefix: str,
                 page: tuple[StatusPage, str]) -> Runtime:
    from workflows import HANDLERS

    crisis = example_config.crisis.model_dump()
    crisis["webhooks"] = [{"url": page[1], "secret": "s3cret"}]
    config = example_config.model_copy(update={"crisis": CrisisSettings.model_validate(crisis)})
    assert config.crisis.webhooks == [Webhook(url=page[1], secret="s3cret")]
    return build_runtime(config=config, settings=Settings(), handlers=HANDLERS, clock=clock,
                         redis=RedisHandle(redis_client, where="test"), prefix=prefix)


async def test_every_declare_and_update_reaches_the_status_page_signed_and_retried_after_a_5xx(
        hooked: Runtime, page: tuple[StatusPage, str]) -> None:
    fake, _ = page
    fake.answers = [503]
    inc = (await run(hooked, DeclareIncident(actor=person(hooked, "erin"), title="Checkout down",
                                             component="checkout"))).case_id
    await run(hooked, PostUpdate(actor=person(hooked, "erin"), incident_id=inc or "", status="identified",
                                 text="Ben Brooks found it in ESC-1001"))
    async with aiohttp.ClientSession() as session:
        worker = hooked.worker(WebhookTransport(hooked.config, session=session))
        await worker.drain()
        assert len(fake.got) == 1  # the declare failed once (503); the update waits behind it (order)
        hooked.clock.advance(minutes=5)
        await worker.drain()
    assert len(fake.got) == 3
    bodies: list[dict[str, Any]] = []
    for headers, body in fake.got:
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["X-Escalator-Signature"] == expected
        bodies.append(json.loads(body))
    assert fake.got[0][0]["X-Escalator-Delivery"] == fake.got[1][0]["X-Escalator-Delivery"]  # the same, retried
    statuses = sorted(b["status"] for b in bodies[1:])
    assert statuses == ["identified", "investigating"]
    update = next(b for b in bodies if b["status"] == "identified")
    assert set(update) == {"incident_id", "title", "status", "text", "affected_components", "started_at",
                           "updated_at"}
    assert update["affected_components"] == ["checkout"] and update["incident_id"] == inc
    assert "Ben" not in update["text"] and "ESC-1001" not in update["text"]


async def test_a_status_page_that_refuses_with_a_4xx_gets_a_dead_letter_not_endless_retries(
        hooked: Runtime, page: tuple[StatusPage, str]) -> None:
    fake, _ = page
    fake.answers = [401]
    await run(hooked, DeclareIncident(actor=person(hooked, "gus"), title="Search slow"))
    async with aiohttp.ClientSession() as session:
        await hooked.worker(WebhookTransport(hooked.config, session=session)).drain()
    dead = await hooked.outbox.dead_letters("webhook")
    assert len(fake.got) == 1 and len(dead) == 1 and "HTTP 401" in dead[0].error
