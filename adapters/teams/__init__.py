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


# A channel (19:...@thread.tacv2) or a group chat (19:...@thread.v2).
CHANNEL_ID = r"19:\S+"
# Ids Teams puts in text and links: conversations `19:...@thread.tacv2` (with `;messageid=...`), users
# `29:...`, bots `28:...`, 1:1 chats `a:...`, `8:orgid:...`. They look like e-mail addresses and phone
# numbers to a scrubber, and must never be scrubbed.
TEXT_ID = (r"(?<![\w:])(?:19:[\w-]{1,200}@(?:thread\.[a-z0-9]{1,12}|unq\.gbl\.spaces)(?:;messageid=\d{1,20})?"
           r"|(?:29|28|a|8):[\w:-]{1,300})")

SPEC = register(PlatformSpec(
    name="teams", label="Microsoft Teams", user_id_example="29:1a2b... or an Entra object id",
    channel_id_example="19:abc...@thread.tacv2", channel_id_pattern=CHANNEL_ID,
    channel_id_hint="the channel id, e.g. 19:...@thread.tacv2 (decoded from the channel's link)",
    text_id_pattern=TEXT_ID,
    settings=TeamsSettings, command_hint="@Escalator escalate"))
