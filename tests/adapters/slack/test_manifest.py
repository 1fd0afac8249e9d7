"""The shipped Slack app manifest matches what the adapter listens for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adapters.slack import ids
from adapters.slack.app import PATH

MANIFEST = Path(__file__).resolve().parents[3] / "adapters" / "slack" / "manifest.yaml"


def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_manifest_declares_every_command_the_adapter_handles() -> None:
    commands = manifest()["features"]["slash_commands"]
    assert sorted(c["command"] for c in commands) == sorted(ids.COMMANDS)
    assert all(c["url"].endswith(PATH) for c in commands)
    assert all(c["should_escape"] is True for c in commands)  # mentions arrive as <@U…>, decoded inbound


def test_the_manifest_declares_the_message_shortcut() -> None:
    (shortcut,) = manifest()["features"]["shortcuts"]
    assert (shortcut["type"], shortcut["callback_id"], shortcut["name"]) == (
        "message", ids.SHORTCUT_ESCALATE, "Escalate this message")


def test_interactivity_and_events_go_to_the_one_endpoint() -> None:
    settings = manifest()["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith(PATH)
    assert settings["event_subscriptions"]["request_url"].endswith(PATH)
    assert settings["event_subscriptions"]["bot_events"] == ["app_mention"]


def test_the_manifest_asks_for_the_scopes_the_calls_need() -> None:
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "im:write", "app_mentions:read"} <= scopes
