"""Platform-neutral outbound messages: what to say, to whom, in which thread.

Workflows produce `Notice`s with a `Audience`; the outbox expands each into one
`OutboxMessage` per platform with a concrete `Address`. Adapters render a Notice as Block Kit
or an Adaptive Card; nothing here knows either format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.model import Platform

# `upload` carries a file (`Notice.file`); `amend` updates a direct message already sent
# (`Notice.amends`): bot.delivery queues one when a DM page went out before its thread link existed.
NoticeKind = Literal["card", "reply", "page", "direct", "post", "upload", "amend"]
ActionName = Literal["acknowledge", "claim", "escalate", "resolve", "reopen", "deescalate",
                     "swarm_join", "swarm_decline", "swarm_leave", "swarm_end",
                     "incident_update", "incident_link", "incident_role", "incident_resolve"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CardField(_Frozen):
    label: str
    value: str


class CardAction(_Frozen):
    """A button on a case card; `needs` asks the clicker for text first (a modal or an input)."""

    action: ActionName
    label: str
    case_id: str
    style: Literal["primary", "danger", "default"] = "default"
    needs: Literal["reason", "resolution"] | None = None
    target_tier: str | None = None


class Mention(_Frozen):
    person: str
    name: str
    user_id: str | None = None  # filled in per platform by the outbox


def case_thread(case_id: str, tier: str) -> str:
    """The name of a case's thread in one tier: threads are named by what they are about."""
    return f"case:{case_id.upper()}:{tier}"


class ThreadLink(_Frozen):
    """A link to a thread (by name), resolved by delivery to a URL on any platform."""

    thread: str
    label: str



def case_thread_of(name: str | None) -> tuple[str, str] | None:
    """(case id, tier) when `name` is a case's tier thread (`case:ESC-1:L2`), else None."""
    parts = (name or "").split(":")
    return (parts[1], parts[2]) if len(parts) == 3 and parts[0] == "case" else None


class FileRef(_Frozen):
    """A file to upload (a digest chart, an export): small, so it travels inside the outbox message."""

    filename: str
    mime_type: str
    data_b64: str  # the bytes, base64-encoded


class DirectRef(_Frozen):
    """A direct message as the platform knows it, so it can be updated in place later."""

    conversation: str
    message_id: str


class ChannelLink(_Frozen):
    """The channel a thread is (to be) posted in, on one platform: a page points there while its
    thread is not posted yet. Neutral: the adapter renders it (a channel mention, a deep link, a name)."""

    thread: str  # the thread it stands in for
    platform: str
    channel: str  # the platform's channel id
    label: str  # what to call it: "L3 Engineering channel"


class Space(_Frozen):
    """A channel of its own for a thread (an incident space), made where the platform can.

    `members` are platform user ids to invite, per platform. A platform without the ability
    (no `open_space` on its client) roots the thread in the address's channel instead.
    """

    name: str
    members: dict[str, list[str]] = Field(default_factory=dict)


class Notice(_Frozen):
    """One thing the bot says. `text` is plain user-facing text: renderers escape it."""

    kind: NoticeKind
    title: str
    text: str = ""
    fields: list[CardField] = Field(default_factory=list)
    actions: list[CardAction] = Field(default_factory=list)
    mentions: list[Mention] = Field(default_factory=list)
    links: list[ThreadLink] = Field(default_factory=list)
    case_id: str | None = None
    severity: str | None = None
    status: str | None = None
    private: bool = False
    case_version: int | None = None
    bulk: bool = False  # fan-out traffic (crisis updates, digests): delivered after everything else
    file: FileRef | None = None  # kind "upload"
    amends: DirectRef | None = None  # kind "amend": the direct message to update
    space: Space | None = None  # kind "card": root the thread in a channel of its own (bot.delivery)
    # kind "page": where each linked thread will be; delivery shows the ones whose thread is missing
    channel_links: list[ChannelLink] = Field(default_factory=list)


class Address(_Frozen):
    """Where one platform message goes. A `thread` (a name) means: under that thread's root."""

    platform: Platform
    channel: str | None = None
    user: str | None = None
    thread: str | None = None
    reply_to: str | None = None  # a raw platform thread id (the origin thread of a link-back)
    private: bool = False

    @property
    def lane(self) -> str:
        """The ordering lane: messages of one thread, one DM or one channel go out in commit order."""
        if self.thread:
            return f"thread:{self.thread}"
        if self.user:
            return f"dm:{self.user}"
        return f"channel:{self.channel}" + (f":{self.reply_to}" if self.reply_to else "")


URGENT, NORMAL, BULK = 0, 1, 2  # delivery priorities: pages and cards, the rest, fan-out traffic


class OutboxMessage(_Frozen):
    """A Notice bound to one platform address; `id` makes delivery idempotent.

    `lane` orders delivery: the messages of one lane go out in commit order (a thread, a DM, a
    channel). `priority` picks the stream: 0 pages and case cards, 1 replies and posts, 2 bulk.
    Both default from the address and the notice kind.
    """

    id: str
    address: Address
    notice: Notice
    created_at: datetime
    lane: str = ""
    priority: int = Field(default=-1, ge=-1, le=2)

    @model_validator(mode="after")
    def _defaults(self) -> OutboxMessage:
        # Frozen model: fill the derived defaults in place, once, at validation.
        if not self.lane:
            self.__dict__["lane"] = default_lane(self.address)
        if self.priority < 0:
            self.__dict__["priority"] = URGENT if self.notice.kind in ("card", "page") else NORMAL
        return self


def default_lane(address: Address) -> str:
    """The ordering lane of an address: its thread, else the DM, else the channel (and origin thread)."""
    return address.lane


# --- audiences: who a workflow means, before fan-out to platforms -----------------------


class InThread(_Frozen):
    """A named thread (its root when the notice kind is `card`), in `channels` per platform."""

    kind: Literal["thread"] = "thread"
    thread: str
    channels: dict[str, str]
    private: bool = False


class PersonDirect(_Frozen):
    """A direct message to a configured person."""

    kind: Literal["person"] = "person"
    person: str
    prefer: tuple[Platform, ...] = ()


class ChannelPost(_Frozen):
    """A post in a channel on one platform (origin link-back, status channels, CSM channel)."""

    kind: Literal["channel"] = "channel"
    platform: Platform
    channel: str
    thread: str | None = None


Audience = InThread | PersonDirect | ChannelPost


class Reply(_Frozen):
    """What the caller alone sees, right away (Slack ephemeral / Teams reply / console line)."""

    text: str
    ok: bool = True
    case_id: str | None = None
    title: str | None = None
    fields: list[CardField] = Field(default_factory=list)
    links: list[ThreadLink] = Field(default_factory=list)
    form: Literal["escalate", "incident_update"] | None = None  # open this form, filled from `prefill`
    prefill: dict[str, str] = Field(default_factory=dict)
