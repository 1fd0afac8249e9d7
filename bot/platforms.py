"""The platform registry: chat platforms are registered by their adapters, never named by the core.

A platform contributes a name (the key people and channels use in the config: `slack: U0BEN`),
how its ids look (so check-config can tell a channel name from an id), an optional settings
model (its `platforms.<name>:` config section), and whether the bot can post to it and link back
to messages there. The core asks the registry; adding a platform is one new adapter package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel


@dataclass(frozen=True)
class PlatformSpec:
    """What the core needs to know about one chat platform."""

    name: str
    label: str
    user_id_example: str = ""
    channel_id_example: str = ""
    channel_id_pattern: str | None = None  # a regex a channel id must match (None: anything goes)
    channel_id_hint: str = ""  # where a person finds a channel's id
    text_id_pattern: str | None = None  # ids that appear in text and must never be scrubbed (bot.privacy)
    settings: type[BaseModel] | None = None
    delivers: bool = True  # False for the console: it shows messages, it does not deliver them
    links_back: bool = True  # the bot can post a link-back where an escalation came from
    files: bool = False  # takes uploads of any file type (a Markdown report), not only inline images
    command_hint: str = "/escalate"
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def looks_like_channel(self, value: str) -> bool:
        return self.channel_id_pattern is None or re.fullmatch(self.channel_id_pattern, value) is not None


_REGISTRY: dict[str, PlatformSpec] = {}


def text_id_patterns() -> tuple[str, ...]:
    """Every registered platform's in-text id pattern (links and ids are never scrubbed)."""
    return tuple(spec.text_id_pattern for spec in _REGISTRY.values() if spec.text_id_pattern)


def register(spec: PlatformSpec) -> PlatformSpec:
    """Make a platform known (idempotent: adapters register on import)."""
    _REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> PlatformSpec | None:
    return _REGISTRY.get(name)


def names() -> list[str]:
    """Every registered platform, in registration order."""
    return list(_REGISTRY)


def delivering() -> list[str]:
    """Platforms the bot posts to (the console only shows what would be posted)."""
    return [name for name, spec in _REGISTRY.items() if spec.delivers]
