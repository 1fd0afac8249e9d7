"""Turn a Notice for an audience (a case thread, a person, a channel) into per-platform messages.

This is where config decides *where*: the tier's (private) channel on each platform, the
person's ids, and whether the place is shared, in which case personal data is scrubbed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import Config
from bot.messages import (
    Address,
    Audience,
    CardField,
    CaseThread,
    ChannelPost,
    Mention,
    Notice,
    OutboxMessage,
    PersonDirect,
)
from bot.model import PLATFORMS, Platform
from bot.privacy import scrub


@dataclass
class FanOut:
    messages: list[OutboxMessage] = field(default_factory=list)
    scrubbed: list[str] = field(default_factory=list)  # "e-mail address in #C0L2", ...


def addresses(audience: Audience, config: Config) -> list[Address]:
    """Every platform place an audience stands for under this config."""
    if isinstance(audience, CaseThread):
        tier = config.find_tier(audience.tier)
        if tier is None:
            return []
        if audience.private:
            private = tier.private_channels.items()
            if private:
                return [Address(platform=p, channel=c, thread_case=audience.case_id,
                                thread_tier=tier.id, private=True) for p, c in private]
        return [Address(platform=p, channel=c, thread_case=audience.case_id, thread_tier=tier.id)
                for p, c in tier.channels.items()]
    if isinstance(audience, PersonDirect):
        person = config.people.get(audience.person)
        if person is None:
            return []
        have = [p for p in PLATFORMS if person.platform_id(p)]
        chosen = [p for p in audience.prefer if p in have] or have
        return [Address(platform=p, user=person.platform_id(p), private=True) for p in chosen]
    if isinstance(audience, ChannelPost):
        return [Address(platform=audience.platform, channel=audience.channel, reply_to=audience.thread)]
    return []


def fan_out(items: list[tuple[Notice, Audience]], config: Config, now: datetime) -> FanOut:
    """Bind notices to platform addresses, filling mentions and scrubbing shared places."""
    out = FanOut()
    for notice, audience in items:
        for address in addresses(audience, config):
            bound = _for_platform(notice, address.platform, config)
            if not address.private:
                bound, kinds = _scrubbed(bound)
                if kinds:
                    where = address.channel or address.user or address.platform
                    out.scrubbed.append(f"{', '.join(kinds)} removed before posting to {address.platform} {where}")
            out.messages.append(OutboxMessage(id=uuid.uuid4().hex, address=address, notice=bound, created_at=now))
    return out


def _for_platform(notice: Notice, platform: Platform, config: Config) -> Notice:
    if not notice.mentions:
        return notice
    mentions = []
    for m in notice.mentions:
        person = config.people.get(m.person)
        uid = person.platform_id(platform) if person and platform != "console" else None
        mentions.append(Mention(person=m.person, name=m.name, user_id=uid))
    return notice.model_copy(update={"mentions": mentions})


def _scrubbed(notice: Notice) -> tuple[Notice, list[str]]:
    kinds: set[str] = set()
    title, k1 = scrub(notice.title)
    text, k2 = scrub(notice.text)
    kinds.update(k1, k2)
    fields = []
    for f in notice.fields:
        value, k = scrub(f.value)
        kinds.update(k)
        fields.append(CardField(label=f.label, value=value))
    if not kinds:
        return notice, []
    return notice.model_copy(update={"title": title, "text": text, "fields": fields}), sorted(kinds)
