"""Drive the Teams adapter like Teams does: recorded activity payloads, POSTed over HTTP to the real
CloudAdapter endpoint, with `serviceUrl` pointing at the fake Bot Connector."""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from botbuilder.schema import Activity
from jsonschema import Draft6Validator
from jsonschema.exceptions import best_match

from adapters.teams.app import TeamsAdapter
from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from tests.conftest import CARD_SCHEMA
from tests.fakes.bot_connector import FakeBotConnector

PAYLOADS = Path(__file__).parent / "payloads"
TENANT = "00000000-0000-0000-0000-000000000001"
BOT = {"id": "28:escalator-local", "name": "Escalator"}
PEOPLE = {"alice": ("29:alice", "Alice Adams"), "ben": ("29:ben", "Ben Brooks"), "gus": ("29:gus", "Gus Grant"),
          "hana": ("29:hana", "Hana Ito"), "stranger": ("29:stranger", "Sam Stranger")}
_SCHEMA = json.loads(CARD_SCHEMA.read_text(encoding="utf-8"))
VALIDATOR = Draft6Validator(_SCHEMA)
_ids = itertools.count(1_732_360_000_000)


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def assert_valid_card(card: dict[str, Any]) -> None:
    """Every card we produce must be a valid Adaptive Card 1.5 (what Teams renders)."""
    error = best_match(VALIDATOR.iter_errors(card))
    assert error is None, f"invalid card at {list(error.absolute_path)}: {error.message[:300]}"
    assert card["version"] == "1.5"


def find_action(card: dict[str, Any], title: str) -> dict[str, Any]:
    """The Action.Execute behind a button title, looking inside ShowCards too."""
    for action in card.get("actions") or []:
        if action.get("title") == title and action["type"] == "Action.Execute":
            return dict(action)
        if action.get("title") == title and action["type"] == "Action.ShowCard":
            inner = action["card"]["actions"]
            return dict(inner[0])
    titles = [a.get("title") for a in card.get("actions") or []]
    raise AssertionError(f"no button {title!r} on the card (buttons: {titles})")


def button_titles(card: dict[str, Any]) -> list[str]:
    return [a.get("title", "") for a in card.get("actions") or []]


def card_text(card: dict[str, Any]) -> str:
    """All literal text on a card, for asserting what a person would read."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextRun":
                out.append(node["text"])
            if node.get("type") == "TextBlock":
                out.append(node["text"])
            for key, value in node.items():
                if key != "actions":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card.get("body"))
    return " ".join(out)


@dataclass
class TeamsHarness:
    client: TestClient
    adapter: TeamsAdapter
    runtime: Runtime
    connector: FakeBotConnector
    worker: DeliveryWorker
    sleeps: list[float] = field(default_factory=list)
    invoke_cards: list[dict[str, Any]] = field(default_factory=list)

    # ---- inbound ---------------------------------------------------------------------------

    async def post(self, activity: dict[str, Any], *, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        response = await self.client.post("/api/messages", json=activity, headers=headers or {})
        body: Any = None
        if response.content_type == "application/json":
            body = await response.json()
        else:
            await response.read()
        if isinstance(body, dict) and body.get("type") == "application/vnd.microsoft.card.adaptive":
            self.invoke_cards.append(body["value"])
        return response.status, body

    def activity(self, fixture: str, *, user: str = "alice", text: str | None = None,
                 channel: str | None = None, **changes: Any) -> dict[str, Any]:
        """A recorded payload with a fresh id, our fake connector as serviceUrl, and `user` as sender."""
        data = copy.deepcopy(payload(fixture))
        data["id"] = ("f:" if data["id"].startswith("f:") else "") + str(next(_ids))
        data["serviceUrl"] = self.connector.url
        user_id, user_name = PEOPLE[user]
        data["from"] = {**data["from"], "id": user_id, "name": user_name}
        if text is not None:
            mentioned = any(e.get("type") == "mention" for e in data.get("entities") or [])
            data["text"] = f"<at>Escalator</at> {text}" if mentioned else text
        if channel is not None:
            data["channelData"]["channel"] = {"id": channel}
            data["channelData"]["teamsChannelId"] = channel
            data["conversation"]["id"] = f"{channel};messageid={data['id']}"
        elif data["conversation"].get("conversationType") == "channel" and fixture.startswith("message"):
            root = data["conversation"]["id"].split(";messageid=")[0]
            data["conversation"]["id"] = f"{root};messageid={data['id']}"
        data.update(changes)
        return data

    async def remember(self, fixture: str, *, user: str = "alice", **changes: Any) -> None:
        """What an activity with a valid Bot Framework token leaves behind: its conversation
        reference (local mode stores none, so tests that need one store it this way)."""
        data = self.activity(fixture, user=user, **changes)
        await self.adapter.bot.remember(Activity().deserialize(data))

    async def say(self, text: str, *, user: str = "alice", where: str = "channel",
                  channel: str | None = None) -> tuple[int, Any]:
        return await self.post(self.activity(f"message_{where}", user=user, text=text, channel=channel))

    def replies(self) -> list[dict[str, Any]]:
        """What the bot answered callers (replies to their activities), newest last."""
        return [c.body for c in self.connector.of("reply_to_activity")]

    async def press(self, card: dict[str, Any], title: str, *, user: str = "ben",
                    inputs: dict[str, str] | None = None, conversation: str | None = None) -> tuple[int, Any]:
        """Press a card button as Teams does: an adaptiveCard/action invoke with data + inputs."""
        action = find_action(card, title)
        activity = self.activity("card_action", user=user)
        activity["value"]["action"] = {"type": "Action.Execute", "title": title, "verb": action["verb"],
                                       "data": {**action.get("data", {}), **(inputs or {})}}
        if conversation:
            activity["conversation"]["id"] = conversation
            activity["channelData"]["channel"] = {"id": conversation.split(";")[0]}
        return await self.post(activity)

    # ---- outbound --------------------------------------------------------------------------

    async def deliver(self) -> int:
        """Run the Teams delivery worker until nothing is due (pacing waits are recorded, not slept)."""
        return await self.worker.drain()

    def card_of(self, root_id: str) -> dict[str, Any]:
        """The case card as Teams currently shows it (after every update)."""
        cards = self.connector.message(root_id).activity["attachments"]
        content: dict[str, Any] = cards[0]["content"]
        return content

    def validate_every_card(self) -> int:
        cards = self.connector.every_card() + self.invoke_cards
        for card in cards:
            assert_valid_card(card)
        return len(cards)
