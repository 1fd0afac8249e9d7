"""Small readers for what the fake Slack shows: cards, their buttons, the modals we opened."""

from __future__ import annotations

import json
from typing import Any

from bot.runtime import Runtime
from tests.fakes.slack_api import FakeSlackApi


async def outbox_size(runtime: Runtime) -> int:
    """Slack messages not yet delivered: in the outbox streams, or waiting for a retry."""
    return await runtime.outbox.pending("slack")


def roots(api: FakeSlackApi, channel: str) -> list[dict[str, Any]]:
    """Top-level messages in a channel (case cards, link-backs), as the channel shows them now."""
    return [m for m in api.messages.get(channel, []) if not m.get("thread_ts")]


def replies(api: FakeSlackApi, channel: str, root_ts: str) -> list[dict[str, Any]]:
    return [m for m in api.messages.get(channel, []) if m.get("thread_ts") == root_ts]


def card(api: FakeSlackApi, channel: str) -> dict[str, Any]:
    """The one case card in `channel` (fails if there is none or more than one)."""
    cards = [m for m in roots(api, channel) if any(b.get("block_id") == "case_actions" or
                                                   _is_card_head(b) for b in m["blocks"])]
    assert len(cards) == 1, f"expected one card in {channel}, found {len(cards)}"
    return cards[0]


def _is_card_head(block: dict[str, Any]) -> bool:
    return block.get("type") == "section" and "ESC-" in (block.get("text") or {}).get("text", "")


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The message's buttons by action name (`claim`, `escalate`, ...)."""
    out = {}
    for block in message["blocks"]:
        if block.get("type") == "actions":
            for element in block["elements"]:
                out[element["action_id"].removeprefix("case_")] = element
    return out


def text_of(message: dict[str, Any]) -> str:
    """Every piece of mrkdwn in a message, joined (to look for words)."""
    parts = [message.get("text") or ""]
    for block in message.get("blocks") or []:
        if block.get("text"):
            parts.append(block["text"]["text"])
        for f in block.get("fields") or []:
            parts.append(f["text"])
        for e in block.get("elements") or []:
            if isinstance(e, dict) and e.get("type") == "mrkdwn":
                parts.append(e["text"])
    return "\n".join(parts)


def opened_view(api: FakeSlackApi, index: int = -1) -> dict[str, Any]:
    """The view of a views.open call (the last one by default)."""
    call = api.calls_to("views.open")[index]
    view = call.args["view"]
    return view if isinstance(view, dict) else json.loads(view)


def field_value(message: dict[str, Any], label: str) -> str | None:
    for block in message["blocks"]:
        for f in block.get("fields") or []:
            head, _, value = f["text"].partition("\n")
            if head == f"*{label}*":
                return str(value)
    return None


def card_updates(api: FakeSlackApi) -> list[Any]:
    """chat.update calls on channel messages (case cards), not on direct messages (a page amended
    with its thread link once the thread exists)."""
    return [c for c in api.calls_to("chat.update") if not str(c.args.get("channel", "")).startswith("D")]
