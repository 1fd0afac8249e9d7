"""Teams for the one Delivery (bot.delivery): Bot Connector calls, and what their errors mean.

`TeamsClient` implements `bot.delivery.PlatformClient`; `TeamsTransport` is the Delivery built on
it (routing, first-card lock, stale-card check, link policy and page rules live in the core).
A case card opens a new conversation (a post) in the tier's Teams channel; everything after is a
reply in that thread (`<channel>;messageid=<root>`), and the card itself is updated in place with
`update_activity` on the stored root id, never posted twice. Pages @mention the paged people in
the thread; direct messages go to the person's 1:1 chat with the bot (its conversation reference
is kept in Redis from install and message events); a page sent before its case thread exists
names the tier channel, with a deep link when the team's Entra group id is configured
(`platforms.teams.team_id` as a GUID). Errors map to the outbox's RetryLater (429,
412, 5xx, network) honouring Retry-After, or Undeliverable (400, 403, 404).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ConversationReference,
    Mention,
)
from botframework.connector.aio import ConnectorClient
from msrest.exceptions import ClientRequestError, HttpOperationError

from adapters.teams.inbound import channel_link, message_link
from adapters.teams.render import (
    MAX_IMAGE_CARD_BYTES,
    Link,
    attachment,
    clean,
    image_card,
    mention_text,
    notice_card,
)
from bot.clock import Clock
from bot.delivery import Delivery, RootGone
from bot.delivery import Link as CoreLink
from bot.delivery import resolve_links as core_resolve_links
from bot.messages import DirectRef, Notice, OutboxMessage, ThreadLink
from bot.model import ThreadRef
from bot.outbox import RetryLater, Undeliverable
from bot.pacing import Pace
from bot.store import Store

log = structlog.get_logger("escalator.teams")

THREAD_GAP_S = 1 / 7  # Teams allows about 7 messages a second per conversation (thread, chat)
CONVERSATION_BURST = 7
BOT_BUDGET = (50.0, 50)  # all conversations of the bot together: (per second, burst)
REFS = "teams-conv"  # conversation references by conversation id
USERS = "teams-user"  # a person's 1:1 conversation reference by Teams user id (and by Entra object id)
TEAMS_IDS = "teams-id"  # Entra object id -> Teams user id (29:...), learnt from every activity
RETRYABLE = {408, 412, 429, 500, 502, 503, 504}
PERMANENT = {400, 403, 404, 405, 409, 413}

ConnectorSource = Callable[[str], Awaitable[ConnectorClient]]


def thread_conversation(channel: str, root_id: str) -> str:
    """The conversation id of a channel thread, as Teams names it."""
    return f"{channel};messageid={root_id}"


def is_teams_channel(conversation: str) -> bool:
    """A Teams channel (posts start threads) rather than a chat (messages just append)."""
    return conversation.startswith("19:") and ("@thread.tacv2" in conversation or "@thread.skype" in conversation)


def classify(exc: BaseException, what: str) -> RetryLater | Undeliverable:
    """What an error from the Bot Connector means for the outbox.

    A 429 holds the message's conversation (its first pace key) for Retry-After, for every
    worker, and uses no attempt; 412 and 5xx back off (honouring Retry-After) and use attempts.
    """
    if isinstance(exc, HttpOperationError) and exc.response is not None:
        status = int(exc.response.status_code)
        after = _retry_after(exc.response.headers.get("Retry-After"))
        detail = _error_code(exc)
        if status in PERMANENT:
            return Undeliverable(f"Teams refused {what}: HTTP {status} {detail}".strip())
        if status == 429:
            return RetryLater(f"Teams rate limited {what} {detail}".strip(), after=after, rate_limited=True)
        return RetryLater(f"Teams answered {status} to {what} {detail}".strip(), after=after)
    if isinstance(exc, ClientRequestError | asyncio.TimeoutError | OSError):
        return RetryLater(f"could not reach the Bot Connector for {what}: {type(exc).__name__}")
    return RetryLater(f"{what} failed: {type(exc).__name__}: {exc}")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: let the worker back off on its own


def _error_code(exc: HttpOperationError) -> str:
    error = getattr(exc, "error", None)
    inner = getattr(error, "error", None)
    code = getattr(inner, "code", None)
    return str(code) if code else ""


async def resolve_links(store: Store, links: list[ThreadLink], *, tenant_id: str | None = None,
                        strict: bool = True) -> list[Link]:
    """Thread links as (label, url), by the one link policy of bot.delivery (Teams thread first).

    With `strict`, a link to a thread nobody has posted yet raises RetryLater; otherwise it is
    left out. (`tenant_id` is unused: every stored Teams thread carries its link.)
    """
    found, missing = await core_resolve_links(store, links, "teams")
    if missing and strict:
        raise RetryLater(f"linked thread not posted yet: {', '.join(missing)}", waiting=True)
    return [(link.label, link.url) for link in found]


def reference_json(reference: ConversationReference) -> str:
    return json.dumps(reference.serialize())


def reference_from_json(raw: str) -> ConversationReference:
    reference: ConversationReference = ConversationReference().deserialize(json.loads(raw))
    return reference


class TeamsClient:
    """`bot.delivery.PlatformClient` for Teams: Bot Connector calls, and what their errors mean."""

    platform = "teams"

    def __init__(self, *, store: Store, clock: Clock, connectors: ConnectorSource, service_url: str,
                 bot_id: str, tenant_id: str | None, gap_s: float = THREAD_GAP_S,
                 group_id: str | None = None) -> None:
        self.store = store
        self.clock = clock
        self.connectors = connectors
        self.service_url = service_url
        self.bot_id = bot_id
        self.tenant_id = tenant_id
        self.gap_s = gap_s
        self.group_id = group_id  # the team's Entra group id: channel deep links need it

    def pace(self, message: OutboxMessage) -> list[Pace]:
        """Per conversation (thread, chat or channel) 7 messages a second, within the bot's
        overall budget; shared by every worker through Redis."""
        address = message.address
        key = address.thread or address.user or address.channel
        if address.reply_to and address.channel:
            key = thread_conversation(address.channel, address.reply_to)
        if not key:
            return []
        return [Pace(key, 1.0 / self.gap_s, CONVERSATION_BURST), Pace("bot", *BOT_BUDGET)]

    # ---- the thread root ----------------------------------------------------------------------

    async def post_root(self, channel: str, notice: Notice, links: Sequence[CoreLink], *, message_id: str,
                        thread: str) -> ThreadRef:
        """A new post in the tier channel opens the thread. The Bot Connector cannot list a channel's
        posts (find_root is None), so a create that got no answer is retried as an ordinary RetryLater."""
        root_id = await self._new_post(channel, self._card_activity(notice, links, thread), "post the case card")
        url = message_link(channel, root_id, root=root_id, tenant=self.tenant_id)
        log.info("thread opened", platform="teams", thread=thread)
        return ThreadRef(platform="teams", channel=channel, root_id=root_id, url=url)

    async def update_root(self, ref: ThreadRef, notice: Notice, links: Sequence[CoreLink], *,
                          thread: str) -> ThreadRef:
        activity = self._card_activity(notice, links, thread)
        activity.id = ref.root_id
        conversation = thread_conversation(ref.channel, ref.root_id)
        await self._call("update the case card",
                         lambda c: c.conversations.update_activity(conversation, ref.root_id, activity),
                         gone_is_root=True)
        return ref

    async def find_root(self, channel: str, message_id: str) -> ThreadRef | None:
        return None  # the Bot Connector cannot list a channel's posts

    def _card_activity(self, notice: Notice, links: Sequence[CoreLink], thread: str) -> Activity:
        # The card's buttons name the thread they refresh; inbound still reads its tier part.
        tier = thread.rsplit(":", 1)[-1]
        return Activity(type="message", attachments=[attachment(notice_card(notice, tier=tier, links=links))],
                        summary=clean(notice.title)[:100])

    # ---- replies, direct messages, posts, uploads -------------------------------------------

    async def reply(self, ref: ThreadRef, notice: Notice, links: Sequence[CoreLink]) -> str:
        activity = await self._message_activity(notice, links)
        return await self._send(thread_conversation(ref.channel, ref.root_id), activity, "reply in the case thread",
                                self.service_url) or ""

    async def direct(self, user: str, notice: Notice, links: Sequence[CoreLink]) -> DirectRef:
        """A 1:1 message: through the stored conversation, or a new 1:1 chat in our tenant."""
        activity = await self._message_activity(notice, [*links, *self._channel_links(notice)])
        conversation, service_url = await self._chat_with(user)
        sent = await self._send(conversation, activity, "send a direct message", service_url)
        return DirectRef(conversation=conversation, message_id=sent or "")

    async def update_direct(self, ref: DirectRef, notice: Notice, links: Sequence[CoreLink]) -> None:
        activity = await self._message_activity(notice, [*links, *self._channel_links(notice)])
        activity.id = ref.message_id
        await self._call("update a direct message",
                         lambda c: c.conversations.update_activity(ref.conversation, ref.message_id, activity))

    async def notify_direct(self, user: str, ref: DirectRef, notice: Notice, links: Sequence[CoreLink]) -> str:
        """Pages folded into the page message `ref` (an edit notifies nobody): a new message in the
        person's 1:1 chat, which does (a 1:1 chat has no threads to reply in)."""
        activity = await self._message_activity(notice, links)
        _, service_url = await self._chat_with(user)
        return await self._send(ref.conversation, activity, "notify in a 1:1 chat", service_url) or ""

    def _channel_links(self, notice: Notice) -> list[CoreLink]:
        """Deep links to the channels a page's threads will be in, when the team's group id is known
        (else the card names the channel: see `notice_card`)."""
        if not (self.group_id and self.tenant_id):
            return []
        return [CoreLink(f"Go to the {c.label}", channel_link(c.channel, c.label, group=self.group_id,
                                                              tenant=self.tenant_id))
                for c in notice.channel_links if is_teams_channel(c.channel)]

    async def post(self, channel: str, reply_to: str | None, notice: Notice, links: Sequence[CoreLink]) -> str:
        """A post in a channel (link-back, status), in a thread when `reply_to` names one."""
        activity = await self._message_activity(notice, links)
        if reply_to and is_teams_channel(channel):
            return await self._send(thread_conversation(channel, reply_to), activity,
                                    "reply in the origin thread", self.service_url) or ""
        if is_teams_channel(channel) and ";messageid=" not in channel:
            return await self._new_post(channel, activity, "post in a channel")
        return await self._send(channel, activity, "post in a chat", self.service_url) or ""

    async def upload(self, channel: str | None, user: str | None, notice: Notice) -> str:
        """An image in an Adaptive Card, inline as a `data:` URI (other files would need SharePoint).

        An image too large for a Teams message is not sent; what it illustrates went as text.
        """
        file = notice.file
        if file is None or not file.mime_type.startswith("image/"):
            raise Undeliverable("Teams bots can only send images inline; other files are not supported yet")
        card = attachment(image_card(notice.title, file.mime_type, file.data_b64, alt=notice.title))
        if len(json.dumps(card)) > MAX_IMAGE_CARD_BYTES:
            raise Undeliverable(f"{file.filename} is too large for a Teams card ({len(file.data_b64)} bytes encoded)")
        activity = Activity(type="message", summary=clean(notice.title)[:100], attachments=[card])
        if user:
            conversation, service_url = await self._chat_with(user)
            return await self._send(conversation, activity, "send an image", service_url) or ""
        target = channel or ""
        if is_teams_channel(target) and ";messageid=" not in target:
            return await self._new_post(target, activity, "post an image")
        return await self._send(target, activity, "send an image", self.service_url) or ""

    # ---- building blocks ------------------------------------------------------------------

    async def teams_id(self, user_id: str) -> str:
        """The Teams user id (29:...) for a configured id, which may be an Entra object id."""
        if user_id.startswith("29:"):
            return user_id
        return await self.store.get_ref(TEAMS_IDS, user_id) or user_id

    async def _chat_with(self, user: str) -> tuple[str, str]:
        """The person's 1:1 conversation and its service URL: stored, or a new chat in our tenant."""
        raw = await self.store.get_ref(USERS, user)
        if raw:
            reference = reference_from_json(raw)
            conversation = reference.conversation.id if reference.conversation else None
            if conversation:
                return conversation, reference.service_url or self.service_url
        if not self.tenant_id:
            raise Undeliverable(f"no 1:1 chat with {user} known and no tenant configured to open one")
        params = ConversationParameters(
            is_group=False, bot=ChannelAccount(id=self.bot_id), members=[ChannelAccount(id=await self.teams_id(user))],
            tenant_id=self.tenant_id, channel_data={"tenant": {"id": self.tenant_id}})
        created = await self._call("open a 1:1 chat", lambda c: c.conversations.create_conversation(params))
        conversation = str(created.id)
        reference = ConversationReference(
            conversation=ConversationAccount(id=conversation, conversation_type="personal",
                                             tenant_id=self.tenant_id),
            user=ChannelAccount(id=user), bot=ChannelAccount(id=self.bot_id), channel_id="msteams",
            service_url=self.service_url)
        await self.store.put_ref(USERS, user, reference_json(reference))
        return conversation, self.service_url

    async def _message_activity(self, notice: Notice, links: Sequence[CoreLink]) -> Activity:
        """A thread reply, page or direct message: a card, plus @mentions in the text for pages."""
        activity = Activity(type="message", attachments=[attachment(notice_card(notice, links=links))],
                            summary=clean(notice.title)[:100])
        if notice.mentions:
            lead = f"paged for {notice.case_id}" if notice.case_id and notice.kind == "page" else notice.title
            people = [(m.name, await self.teams_id(m.user_id) if m.user_id else None) for m in notice.mentions]
            text, entities = mention_text(people, lead)
            # Entities must be Mention models: botbuilder serializes plain dicts as bare `{"type": ...}`.
            activity.text, activity.text_format = text, "xml"
            activity.entities = [Mention(type="mention", text=e["text"],
                                         mentioned=ChannelAccount(id=e["mentioned"]["id"], name=e["mentioned"]["name"]))
                                 for e in entities]
        return activity

    async def _new_post(self, channel: str, activity: Activity, what: str) -> str:
        """Start a new thread in a Teams channel; return the root activity id."""
        data: dict[str, Any] = {"channel": {"id": channel}}
        if self.tenant_id:
            data["tenant"] = {"id": self.tenant_id}
        params = ConversationParameters(is_group=True, channel_data=data, activity=activity,
                                        tenant_id=self.tenant_id, bot=ChannelAccount(id=self.bot_id))
        created = await self._call(what, lambda c: c.conversations.create_conversation(params))
        root = created.activity_id or _root_of(created.id)
        if not root:
            raise RetryLater(f"Teams did not return the new post's id when asked to {what}")
        return str(root)

    async def _send(self, conversation: str, activity: Activity, what: str, service_url: str) -> str | None:
        sent = await self._call(what, lambda c: c.conversations.send_to_conversation(conversation, activity),
                                service_url=service_url)
        return str(sent.id) if sent is not None and sent.id else None

    async def _call(self, what: str, call: Callable[[ConnectorClient], Awaitable[Any]], *,
                    service_url: str | None = None, gone_is_root: bool = False) -> Any:
        try:
            client = await self.connectors(service_url or self.service_url)
            return await call(client)
        except (RetryLater, Undeliverable):
            raise
        except Exception as exc:  # every connector failure becomes a retry or a dead letter
            if (gone_is_root and isinstance(exc, HttpOperationError) and exc.response is not None
                    and int(exc.response.status_code) == 404):
                raise RootGone("the thread root was deleted") from exc
            raise classify(exc, what) from exc


class TeamsTransport(Delivery):
    """The Delivery for Teams (`bot.outbox.Transport`); one per process, shared by its delivery worker."""

    def __init__(self, *, store: Store, clock: Clock, connectors: ConnectorSource, service_url: str,
                 bot_id: str, tenant_id: str | None, gap_s: float = THREAD_GAP_S,
                 group_id: str | None = None) -> None:
        self.teams = TeamsClient(store=store, clock=clock, connectors=connectors, service_url=service_url,
                                 bot_id=bot_id, tenant_id=tenant_id, gap_s=gap_s, group_id=group_id)
        super().__init__(client=self.teams, store=store, clock=clock)


def _root_of(conversation_id: str | None) -> str | None:
    if conversation_id and ";messageid=" in conversation_id:
        return conversation_id.split(";messageid=", 1)[1]
    return None
