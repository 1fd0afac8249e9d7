"""Microsoft Teams: registered with the core's platform registry on import (bot.platforms)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bot.platforms import PlatformSpec, register


class TeamsSettings(BaseModel):
    """The `platforms.teams:` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str | None = None
    team_id: str | None = None
    service_url: str | None = None


# A channel (19:...@thread.tacv2), or a chat: group (19:...@thread.v2), 1:1 (a:...), meeting, or a thread.
CHANNEL_ID = r"19:\S+@thread\.(tacv2|skype|v2)|\S+;messageid=\S+|a:\S+|8:\S+|29:\S+"

SPEC = register(PlatformSpec(
    name="teams", label="Microsoft Teams", user_id_example="29:1a2b... or an Entra object id",
    channel_id_example="19:abc...@thread.tacv2", channel_id_pattern=CHANNEL_ID,
    settings=TeamsSettings, command_hint="@Escalator escalate"))
