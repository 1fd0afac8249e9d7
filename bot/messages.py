"""Platform-neutral outbound messages: what to say, to whom, in which thread.

Workflows produce `Notice`s with a `Audience`; the outbox expands each into one
`OutboxMessage` per platform with a concrete `Address`. Adapters render a Notice as Block Kit
or an Adaptive Card; nothing here knows either format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.model import Platform

# `upload` carries a file (`Notice.file`); `amend` updates a direct message already sent
# (`Notice.amends`): bot.delivery queues one when a DM page went out before its thread link existed.
NoticeKind = Literal["card", "reply", "page", "direct", "post", "upload", "amend"]
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


class FileRef(_Frozen):
    """A file to upload (a digest chart, an export): small, so it travels inside the outbox message."""

    filename: str
    mime_type: str
    data_b64: str  # the bytes, base64-encoded


class DirectRef(_Frozen):
    """A direct message as the platform knows it, so it can be updated in place later."""

    conversation: str
    message_id: str


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
    file: FileRef | None = None  # kind "upload"
    amends: DirectRef | None = None  # kind "amend": the direct message to update


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
    """A Notice bound to one platform address; `id` makes delivery idempotent."""

    id: str
    address: Address
    notice: Notice
    created_at: datetime


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
