"""Slack: registered with the core's platform registry on import (bot.platforms)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bot.platforms import PlatformSpec, register


class SlackSettings(BaseModel):
    """The `platforms.slack:` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workspace: str | None = None
    url: str | None = Field(None, description="workspace URL, e.g. https://acme.slack.com, for links")


SPEC = register(PlatformSpec(
    name="slack", label="Slack", user_id_example="U0123ABCD", channel_id_example="C0123ABCD",
    channel_id_pattern=r"[CG][A-Z0-9]{1,30}",
    channel_id_hint="the channel id, e.g. C0123 (at the bottom of the channel's About tab)",
    settings=SlackSettings, command_hint="/escalate", files=True))
