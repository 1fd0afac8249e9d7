"""Bursts: a bounded number of commands in flight, and a "busy" answer that the retry turns into one case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapters.slack.app import build_slack_adapter
from adapters.web import build_web_app
from bot.config import Config
from tests.fakes.slack_api import FakeSlackApi
from tests.reliability.conftest import connect_to, runtime_on
from tests.reliability.redis_servers import RedisProcess
from tests.reliability.traffic import (
    BROKEN,
    SECRET,
    TOKEN,
    Escalations,
    serve_async,
    spread_config,
    stop_async,
)


@pytest.fixture
async def api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as fake:
        yield fake


async def test_a_command_past_the_in_flight_limit_is_answered_busy_and_its_retry_opens_the_case_once(
        throwaway_redis: RedisProcess, project_config: Config, api: FakeSlackApi, tmp_path: Path) -> None:
    handle, settings = connect_to(throwaway_redis.url, slack_bot_token=TOKEN, slack_signing_secret=SECRET,
                                  slack_api_url=api.url, escalator_max_in_flight=2)
    runtime = runtime_on(handle, project_config, settings)
    adapter = build_slack_adapter(runtime)
    server = TestServer(build_web_app(runtime, [adapter], background=False), host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    escalations = Escalations(api)
    escalations.texts["tr-busy"] = "L1 sev3 badge reader rejects every card"
    async with aiohttp.ClientSession() as session:
        async with adapter.in_flight.slot() as first, adapter.in_flight.slot() as second:
            assert first and second  # every slot is taken by commands still running
            refused = await escalations.send(session, server.port, "tr-busy")
        assert refused.status == 200 and refused.busy and refused.case_id is None, refused
        retried = await escalations.send(session, server.port, "tr-busy")  # Slack's retry: same trigger id
        again = await escalations.send(session, server.port, "tr-busy")
    assert retried.case_id and retried.case_id == again.case_id, (retried, again)
    await server.close()
    await runtime.close()


async def test_a_burst_of_500_escalations_gets_cases_or_busy_answers_and_the_retries_open_each_case_once(
        throwaway_redis: RedisProcess, api: FakeSlackApi, tmp_path: Path) -> None:
    """One `escalator serve` process (default ESCALATOR_MAX_IN_FLIGHT), real Redis, the fake Web API."""
    proc, port = await serve_async(tmp_path / "data", spread_config(tmp_path / "cfg"), api, throwaway_redis.url)
    try:
        escalations = Escalations(api)
        triggers = escalations.new(500, "burst")
        # Slack gives up on an answer after 3 s: a later one counts as none.
        first = await escalations.burst([port], triggers, timeout=3)
        assert all(a.case_id or a.busy for a in first), [a for a in first if not (a.case_id or a.busy)][:3]
        waiting = [a.trigger for a in first if a.busy]
        for _ in range(10):  # Slack's retries: the same trigger ids, until none is busy
            if not waiting:
                break
            waiting = [a.trigger for a in await escalations.burst([port], waiting, timeout=3) if a.busy]
        assert not waiting, f"{len(waiting)} still busy after 10 retries"
        by_trigger = escalations.cases_by_trigger()
        assert set(by_trigger) == set(triggers)
        assert all(len(ids) == 1 for ids in by_trigger.values()), [t for t, ids in by_trigger.items() if len(ids) > 1]
        opened = {next(iter(ids)) for ids in by_trigger.values()}
        assert len(opened) == 500
        assert not [a for a in escalations.answers if BROKEN in a.text]
        # No case was opened behind a busy answer: the next case number follows the 500 directly.
        # (a replay below may use up a number without opening a case, so this comes first).
        last = await escalations.burst([port], escalations.new(1, "after"))
        numbers = sorted(int(c.split("-")[1]) for c in opened)
        assert last[0].case_id == f"ESC-{numbers[-1] + 1}" and numbers[-1] - numbers[0] == 499, last[0]
        # Requests replayed once more, as a duplicate delivery would: each answers with its own case.
        replays = await escalations.burst([port], triggers[:100], timeout=10)
        assert [a.case_id for a in replays] == [next(iter(by_trigger[t])) for t in triggers[:100]]
    finally:
        await stop_async(proc)


async def test_a_teams_activity_past_the_in_flight_limit_gets_a_503_and_its_redelivery_is_answered(
        throwaway_redis: RedisProcess, project_config: Config) -> None:
    from adapters.teams.app import build_teams_adapter
    from tests.adapters.teams.conftest import with_teams_service_url
    from tests.adapters.teams.harness import payload
    from tests.fakes.bot_connector import FakeBotConnector

    handle, settings = connect_to(throwaway_redis.url, escalator_max_in_flight=1)  # local mode: loopback only
    async with FakeBotConnector() as connector:
        runtime = runtime_on(handle, with_teams_service_url(project_config, connector.url), settings)
        adapter = build_teams_adapter(runtime)
        activity = payload("message_personal")
        activity.update(id="act-busy-1", serviceUrl=connector.url, text="help")
        server = TestServer(build_web_app(runtime, [adapter], background=False), host="127.0.0.1")
        await server.start_server()
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{server.port}/api/messages"
            async with adapter.in_flight.slot() as held:
                assert held
                async with session.post(url, json=activity) as refused:
                    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
                    assert "busy" in await refused.text()
            assert connector.sent == [], "nothing ran while busy"
            async with session.post(url, json=activity) as redelivered:
                assert redelivered.status < 300, await redelivered.text()
            assert connector.sent, "the redelivery was answered"
        await server.close()
    await runtime.close()
