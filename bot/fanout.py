"""Turn a Notice for an audience (a thread, a person, a channel) into per-platform messages.

This is where the config decides *where*: a person's ids on each registered platform, and
whether a place is shared, in which case personal data is scrubbed. It also gives each message
its ordering lane (one thread, one DM, one channel) and its delivery priority.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from bot import platforms as registry
from bot.config import Config
from bot.messages import (
    BULK,
    NORMAL,
    URGENT,
    Address,
    Audience,
    CardField,
    ChannelPost,
    InThread,
    Mention,
    Notice,
    OutboxMessage,
    PersonDirect,
)
from bot.model import Platform
from bot.privacy import scrub


@dataclass
class FanOut:
    messages: list[OutboxMessage] = field(default_factory=list)
    scrubbed: list[str] = field(default_factory=list)  # "e-mail address in #C0L2", ...


def addresses(audience: Audience, config: Config) -> list[Address]:
    """Every platform place an audience stands for under this config."""
    if isinstance(audience, InThread):
        return [Address(platform=p, channel=c, thread=audience.thread, private=audience.private)
                for p, c in audience.channels.items() if c and _delivers(p)]
    if isinstance(audience, PersonDirect):
        person = config.people.get(audience.person)
        if person is None:
            return []
        have = [p for p, uid in person.ids.items() if uid and _delivers(p)]
        chosen = [p for p in audience.prefer if p in have] or have
        return [Address(platform=p, user=person.ids[p], private=True) for p in chosen]
    if isinstance(audience, ChannelPost):
        return [Address(platform=audience.platform, channel=audience.channel, reply_to=audience.thread)]
    return []


def _delivers(platform: str) -> bool:
    spec = registry.get(platform)
    return spec is not None and spec.delivers


def priority(notice: Notice) -> int:
    """Pages and cards first, fan-out traffic last, everything else in between."""
    if notice.bulk:
        return BULK
    return URGENT if notice.kind in ("card", "page") else NORMAL


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
            out.messages.append(OutboxMessage(id=uuid.uuid4().hex, address=address, notice=bound, created_at=now,
                                              lane=address.lane, priority=priority(bound)))
    return out


def _for_platform(notice: Notice, platform: Platform, config: Config) -> Notice:
    if not notice.mentions:
        return notice
    mentions = []
    for m in notice.mentions:
        person = config.people.get(m.person)
        uid = person.platform_id(platform) if person and _delivers(platform) else None
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
        fields.append(CardField(label=f.label, value=value) if k else f)
    if not kinds:
        return notice, []
    return notice.model_copy(update={"title": title, "text": text, "fields": fields}), sorted(kinds)
