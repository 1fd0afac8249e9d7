"""Slack test rig: the real Bolt app on the real aiohttp server, signed requests, a recording Web API.

`slack` is the caller's side: it signs and posts what Slack would post (slash commands, shortcuts,
button clicks, modal submissions, events) to `/slack/events` over HTTP. `api` is Slack's side:
the local Web API fake the adapter and the delivery worker talk to. `deliver()` runs the real
outbox worker with a sleep that only records and moves the fake clock, so nothing really waits.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.signature import SignatureVerifier

from adapters.slack.app import SlackAdapter, build_slack_adapter
from adapters.web import build_web_app
from bot.clock import FakeClock
from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from bot.settings import Settings
from tests.fakes.slack_api import FakeSlackApi

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"


@pytest.fixture
async def api(clock: FakeClock) -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi(clock=clock.now) as fake:
        yield fake


@pytest.fixture
def slack_runtime(runtime: Runtime, api: FakeSlackApi) -> Runtime:
    """The shared runtime (real Redis, FakeClock, example config) with Slack credentials."""
    runtime.settings = Settings(slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_app_token=None,
                                slack_api_url=api.url)
    return runtime


@pytest.fixture
def adapter(slack_runtime: Runtime) -> SlackAdapter:
    return build_slack_adapter(slack_runtime)


@dataclass
class Sleeps:
    """The worker's sleep: records how long it would have waited and moves the fake clock instead."""

    clock: FakeClock
    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds=seconds)


@pytest.fixture
def sleeps(clock: FakeClock) -> Sleeps:
    return Sleeps(clock)


@pytest.fixture
def worker(slack_runtime: Runtime, adapter: SlackAdapter, sleeps: Sleeps) -> DeliveryWorker:
    transport = adapter.transport()
    assert transport is not None
    return slack_runtime.worker(transport, sleep=sleeps)


@dataclass
class SlackCaller:
    """Posts signed Slack requests to the server and returns (status, JSON or text body)."""

    client: TestClient[Any, Any]
    api: FakeSlackApi
    secret: str = SECRET
    team: dict[str, str] = field(default_factory=lambda: {"id": "T0ACME", "domain": "acme"})

    async def post(self, body: str, content_type: str, *, sign: bool = True, secret: str | None = None,
                   timestamp: int | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        all_headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, **(headers or {})}
        if sign:
            verifier = SignatureVerifier(secret or self.secret)
            all_headers["X-Slack-Signature"] = verifier.generate_signature(timestamp=ts, body=body)
        response = await self.client.post("/slack/events", data=body.encode(), headers=all_headers)
        text = await response.text()
        try:
            return response.status, json.loads(text) if text else None
        except ValueError:
            return response.status, text

    # ---- what Slack sends ----------------------------------------------------------------

    def command_body(self, command: str, text: str = "", *, user: str = "U0ALICE", user_name: str = "alice",
                     channel: str = "C0SUPPORT", trigger_id: str | None = None) -> str:
        return urlencode({
            "token": "legacy", "team_id": self.team["id"], "team_domain": self.team["domain"],
            "channel_id": channel, "channel_name": "support", "user_id": user, "user_name": user_name,
            "command": command, "text": text, "api_app_id": "A0ESC", "is_enterprise_install": "false",
            "response_url": self.api.response_url, "trigger_id": trigger_id or f"tr-{uuid.uuid4().hex}",
        })

    async def command(self, command: str, text: str = "", **kwargs: Any) -> tuple[int, Any]:
        return await self.post(self.command_body(command, text, **kwargs), "application/x-www-form-urlencoded")

    async def interact(self, payload: dict[str, Any], **kwargs: Any) -> tuple[int, Any]:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", **kwargs)

    def user(self, user: str = "U0BEN", name: str = "ben") -> dict[str, str]:
        return {"id": user, "username": name, "name": name, "team_id": self.team["id"]}

    async def shortcut(self, message: dict[str, Any], *, channel: str = "C0SUPPORT", user: str = "U0ALICE",
                       trigger_id: str | None = None) -> tuple[int, Any]:
        return await self.interact({
            "type": "message_action", "callback_id": "escalate_message", "team": self.team,
            "channel": {"id": channel, "name": "support"}, "user": self.user(user, "alice"),
            "message": message, "message_ts": message.get("ts"), "response_url": self.api.response_url,
            "trigger_id": trigger_id or f"tr-{uuid.uuid4().hex}", "token": "legacy"})

    async def click(self, button: dict[str, Any], *, user: str = "U0BEN", channel: str = "C0L2",
                    message_ts: str = "1700000000.000001", action_ts: str | None = None,
                    trigger_id: str | None = None) -> tuple[int, Any]:
        action = {"type": "button", "block_id": "case_actions", "action_id": button["action_id"],
                  "value": button["value"], "text": button["text"],
                  "action_ts": action_ts or f"{time.time():.6f}"}
        return await self.interact({
            "type": "block_actions", "team": self.team, "user": self.user(user, "someone"),
            "api_app_id": "A0ESC", "token": "legacy", "trigger_id": trigger_id or f"tr-{uuid.uuid4().hex}",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "channel": {"id": channel, "name": "tier"}, "message": {"ts": message_ts, "type": "message"},
            "response_url": self.api.response_url, "actions": [action]})

    async def submit(self, view: dict[str, Any], values: dict[str, Any], *, user: str = "U0ALICE",
                     view_id: str = "V0001", view_hash: str = "h1") -> tuple[int, Any]:
        """Submit a modal we opened (`view` as sent to views.open) with `{block_id: value}`."""
        state: dict[str, Any] = {}
        for block_id, value in values.items():
            if isinstance(value, str) and block_id in ("tier", "severity", "customer"):
                state[block_id] = {"value": {"type": "static_select", "selected_option": {"value": value}}}
            elif value is None:
                state[block_id] = {"value": {"type": "static_select", "selected_option": None}}
            else:
                state[block_id] = {"value": {"type": "plain_text_input", "value": value}}
        return await self.interact({
            "type": "view_submission", "team": self.team, "user": self.user(user, "alice"),
            "api_app_id": "A0ESC", "token": "legacy", "trigger_id": f"tr-{uuid.uuid4().hex}",
            "view": {**view, "id": view_id, "hash": view_hash, "state": {"values": state},
                     "team_id": self.team["id"], "app_id": "A0ESC"}})

    async def event(self, event: dict[str, Any], *, event_id: str | None = None,
                    retry: int | None = None) -> tuple[int, Any]:
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        body = json.dumps({"token": "legacy", "team_id": self.team["id"], "api_app_id": "A0ESC",
                           "type": "event_callback", "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}",
                           "event_time": int(time.time()), "event": event,
                           "authorizations": [{"team_id": self.team["id"], "user_id": "U0BOT", "is_bot": True}]})
        return await self.post(body, "application/json", headers=headers)


@pytest.fixture
async def slack(adapter: SlackAdapter, slack_runtime: Runtime, api: FakeSlackApi) -> AsyncIterator[SlackCaller]:
    app = build_web_app(slack_runtime, [adapter], background=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield SlackCaller(client=client, api=api)
        await adapter.stop()
