"""Reading what the bot sent, for tests that look for characters json.dumps would hide."""

from __future__ import annotations

import json
from typing import Any

# Control characters (C0, C1) and bidi overrides/isolates that must never reach a chat.
UNSAFE = ["\u202e", "\u202a", "\u2066", "\u2069", "\x00", "\x1b", "\x07", "\x85", "\x9b"]


def strings(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Every string in a JSON value with its path (json.dumps shows control characters as escapes)."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(value, (*path, key))]
    if isinstance(node, list):
        return [s for i, value in enumerate(node) for s in strings(value, (*path, i))]
    if isinstance(node, str) and node[:1] in ("[", "{"):  # a JSON-encoded form field (blocks, view)
        try:
            return strings(json.loads(node), path)
        except ValueError:
            pass
    return [(path, node)] if isinstance(node, str) else []
