"""Socket Mode: with SLACK_APP_TOKEN the same Bolt app takes its requests over a WebSocket.

The fake Web API hands out a WebSocket URL on itself (`apps.connections.open`), so the real
`AsyncSocketModeHandler` connects, receives envelopes and acks them, all on loopback.
"""

from __future__ import annotations

import uuid

from adapters.slack.app import build_slack_adapter
from bot.runtime import Runtime
from bot.settings import Settings
from tests.fakes.slack_api import FakeSlackApi


def slash(command: str, text: str) -> dict[str, object]:
    return {"type": "slash_commands", "envelope_id": uuid.uuid4().hex, "payload": {
        "command": command, "text": text, "user_id": "U0ALICE", "user_name": "alice", "team_id": "T0ACME",
        "team_domain": "acme", "channel_id": "C0SUPPORT", "api_app_id": "A0ESC",
        "trigger_id": f"tr-{uuid.uuid4().hex}", "response_url": "http://127.0.0.1:9/none"}}


async def test_socket_mode_runs_commands_without_a_public_url_or_signing_secret(
        runtime: Runtime, api: FakeSlackApi) -> None:
    runtime.settings = Settings(slack_bot_token="xoxb-test", slack_signing_secret=None,
                                slack_app_token="xapp-test", slack_api_url=api.url)
    adapter = build_slack_adapter(runtime)
    assert not adapter.http_enabled  # nothing unsigned is accepted over HTTP meanwhile
    await adapter.start()
    try:
        ack = await api.socket_send(slash("/escalate", "L2 sev2 checkout fails"))
        assert ack["payload"]["response_type"] == "ephemeral"
        assert ack["payload"]["text"].startswith("Opened ESC-1001 in L2")
        assert await runtime.store.open_case_ids() == ["ESC-1001"]
        (opened,) = api.calls_to("apps.connections.open")
        assert opened.token == "xapp-test"  # the app-level token opens the socket
        assert {c.token for c in api.calls_to("auth.test")} == {"xoxb-test"}

        form = await api.socket_send(slash("/escalate", ""))
        assert "payload" not in form or not form["payload"]  # an empty ack; the modal opens
        assert len(api.calls_to("views.open")) == 1
    finally:
        await adapter.stop()
    assert adapter.socket_mode is None


async def test_socket_mode_is_off_without_an_app_token(slack_runtime: Runtime) -> None:
    adapter = build_slack_adapter(slack_runtime)
    await adapter.start()
    assert adapter.socket_mode is None
    await adapter.stop()


async def test_an_unreachable_slack_does_not_hold_up_the_server_start(runtime: Runtime) -> None:
    runtime.settings = Settings(slack_bot_token="xoxb-test", slack_signing_secret="s", slack_app_token="xapp-test",
                                slack_api_url="http://127.0.0.1:9/api/")
    adapter = build_slack_adapter(runtime)
    await adapter.start()  # returns at once; the connection is tried in the background
    assert adapter.socket_mode is not None
    await adapter.stop()
