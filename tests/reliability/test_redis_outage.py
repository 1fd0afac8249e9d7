"""Redis going away, stalling and overloaded: bounded waits, one log line per change, honest readiness."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.web import TASKS, build_web_app
from bot.config import Config
from tests.reliability.conftest import connect_to, runtime_on
from tests.reliability.helpers import RecordingAdapter, RecordingTransport, eventually, open_case, pool_waits
from tests.reliability.redis_servers import RedisProcess


async def test_readyz_is_503_while_redis_is_stopped_and_200_when_it_is_back(
        throwaway_redis: RedisProcess, project_config: Config) -> None:
    handle, settings = connect_to(throwaway_redis.url)
    runtime = runtime_on(handle, project_config, settings)
    async with TestClient(TestServer(build_web_app(runtime, []))) as client:
        ready = await client.get("/readyz")
        body = await ready.json()
        assert ready.status == 200, body
        assert body["redis"]["ok"] and body["tasks"] == {"scheduler": "running"}
        assert body["outbox"]["slack"] == {"pending": 0, "oldest_pending_s": 0.0}

        throwaway_redis.stop()
        down = await client.get("/readyz")
        assert down.status == 503
        body = await down.json()
        assert body["redis"]["ok"] is False and body["status"] == "not ready"
        alive = await client.get("/healthz")
        assert alive.status == 200  # alive: restarting the process would not bring Redis back
        assert (await alive.json())["redis"].startswith("unreachable")

        throwaway_redis.start()

        async def ready_again() -> bool:
            return (await client.get("/readyz")).status == 200
        await eventually(ready_again, "/readyz back to 200")
    await runtime.close()


async def test_readyz_is_503_when_the_outbox_backs_up_and_metrics_show_its_oldest_message(
        throwaway_redis: RedisProcess, project_config: Config) -> None:
    handle, settings = connect_to(throwaway_redis.url, escalator_ready_max_backlog=0)
    runtime = runtime_on(handle, project_config, settings)
    transport = RecordingTransport(held=True)  # the platform is not answering
    async with TestClient(TestServer(build_web_app(runtime, [RecordingAdapter(transport)]))) as client:
        await open_case(runtime, "printer on fire")
        busy = await client.get("/readyz")
        body = await busy.json()
        assert busy.status == 503, body
        assert body["tasks"]["delivery-slack"] == "running"
        assert body["outbox"]["slack"]["pending"] >= 1
        assert any(p.startswith("outbox slack:") for p in body["problems"])
        metrics = await (await client.get("/metrics")).text()
        assert 'escalator_outbox_oldest_pending_seconds{platform="slack"}' in metrics
        assert "escalator_http_requests_in_flight 1.0" in metrics  # this very request
        assert "escalator_redis_pool_waits_total" in metrics
        transport.release.set()
    await runtime.close()


async def test_a_redis_outage_is_logged_once_each_way_and_work_resumes(
        throwaway_redis: RedisProcess, project_config: Config) -> None:
    handle, settings = connect_to(throwaway_redis.url)
    runtime = runtime_on(handle, project_config, settings)
    transport = RecordingTransport()
    with structlog.testing.capture_logs() as logs:
        async with TestServer(build_web_app(runtime, [RecordingAdapter(transport)])):
            await asyncio.sleep(0.5)
            throwaway_redis.stop()
            await asyncio.sleep(2.5)  # the old loops logged a traceback every second of this
            throwaway_redis.start()
            case_id = await open_case(runtime, "after the outage")

            async def delivered() -> bool:
                return any(m.notice.case_id == case_id for m in transport.sent)
            await eventually(delivered, "delivery after the outage")
    await runtime.close()
    events = [entry["event"] for entry in logs]
    assert events.count("redis unreachable") == 1, events
    assert events.count("redis back") == 1, events
    noisy = [e for e in logs if e["log_level"] in ("error", "critical", "exception")
             and e["event"] != "redis unreachable"]
    assert not noisy, noisy


async def test_a_stalled_redis_gives_the_caller_an_answer_instead_of_a_hang(
        throwaway_redis: RedisProcess) -> None:
    handle, settings = connect_to(throwaway_redis.url)
    await handle.client.ping()
    # Bounded by our settings (2 s, inside Slack's 3 s), and a timeout is not retried into a second wait.
    options = handle.client.connection_pool.connection_kwargs
    assert options["socket_timeout"] == options["socket_connect_timeout"] == settings.redis_socket_timeout_s == 2
    assert not issubclass(RedisTimeoutError, options["retry"]._supported_errors)
    assert throwaway_redis.proc is not None
    os.kill(throwaway_redis.proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(handle.client.get("anything"), timeout=20)
    finally:
        os.kill(throwaway_redis.proc.pid, signal.SIGCONT)
    await handle.close()


async def test_a_burst_past_the_pool_size_waits_for_a_connection_instead_of_failing(
        throwaway_redis: RedisProcess) -> None:
    handle, _ = connect_to(throwaway_redis.url, redis_max_connections=3)
    waits_before = pool_waits()
    # Each BLPOP holds its connection for 0.2 s: 12 at once need 4 rounds through 3 connections.
    results = await asyncio.gather(*(handle.client.blpop([f"nothing-{i}"], timeout=0.2) for i in range(12)))
    assert results == [None] * 12
    assert pool_waits() - waits_before >= 9
    await handle.close()


async def test_stopping_cancels_a_delivery_stuck_past_the_grace_period_and_keeps_its_message(
        throwaway_redis: RedisProcess, project_config: Config) -> None:
    handle, settings = connect_to(throwaway_redis.url)
    runtime = runtime_on(handle, project_config, settings)
    transport = RecordingTransport(held=True)  # a platform that never answers
    app = build_web_app(runtime, [RecordingAdapter(transport, release_on_stop=False)], grace_s=0.5)
    server = TestServer(app)
    await server.start_server()
    await open_case(runtime, "stuck delivery")
    await asyncio.wait_for(transport.started.wait(), timeout=30)
    await asyncio.wait_for(server.close(), timeout=30)  # would wait forever for the stuck delivery
    assert app[TASKS]["delivery-slack"].done() and app[TASKS]["scheduler"].done()
    assert transport.sent == []
    assert await runtime.outbox.pending("slack") >= 1, "the undelivered message stays for the next process"
    await runtime.close()
