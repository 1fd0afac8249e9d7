"""The console: a platform that shows what would be posted and delivers nothing (bot.platforms)."""

from __future__ import annotations

from bot.platforms import PlatformSpec, register

SPEC = register(PlatformSpec(name="console", label="console", delivers=False, links_back=False,
                             command_hint="/escalate"))
