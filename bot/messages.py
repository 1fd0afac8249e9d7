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

NoticeKind = Literal["card", "reply", "page", "direct", "post"]
ActionName = Literal["acknowledge", "claim", "escalate", "resolve", "reopen", "deescalate"]


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


class ThreadLink(_Frozen):
    """A link to a case's thread in a tier, resolved by delivery to a URL on any platform."""

    case_id: str
    tier: str
    label: str


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


class Address(_Frozen):
    """Where one platform message goes. A `thread` means: reply under that case+tier's card."""

    platform: Platform
    channel: str | None = None
    user: str | None = None
    thread_case: str | None = None
    thread_tier: str | None = None
    reply_to: str | None = None  # a raw platform thread id (the origin thread of a link-back)
    private: bool = False

    @property
    def thread_key(self) -> str | None:
        if self.thread_case and self.thread_tier:
            return f"{self.thread_case}:{self.thread_tier}"
        return None


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
            self.__dict__["priority"] = 0 if self.notice.kind in ("card", "page") else 1
        return self


def default_lane(address: Address) -> str:
    """The ordering lane of an address: its thread, else the DM, else the channel (and origin thread)."""
    if address.thread_key:
        return f"thread:{address.thread_key}"
    if address.user:
        return f"dm:{address.user}"
    reply = f":{address.reply_to}" if address.reply_to else ""
    return f"channel:{address.channel or ''}{reply}"


# --- audiences: who a workflow means, before fan-out to platforms -----------------------


class CaseThread(_Frozen):
    """The case's thread in `tier` (the card itself when the notice kind is `card`)."""

    kind: Literal["case_thread"] = "case_thread"
    case_id: str
    tier: str
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


Audience = CaseThread | PersonDirect | ChannelPost


class Reply(_Frozen):
    """What the caller alone sees, right away (Slack ephemeral / Teams reply / console line)."""

    text: str
    ok: bool = True
    case_id: str | None = None
    title: str | None = None
    fields: list[CardField] = Field(default_factory=list)
    links: list[ThreadLink] = Field(default_factory=list)
    form: Literal["escalate"] | None = None
    prefill: dict[str, str] = Field(default_factory=dict)
