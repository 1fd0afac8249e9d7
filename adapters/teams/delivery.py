"""The Teams delivery transport: outbox messages to Bot Connector calls.

A case card opens a new conversation (a post) in the tier's Teams channel; everything after is a
reply in that thread (`<channel>;messageid=<root>`), and the card itself is updated in place with
`update_activity` on the stored root id, never posted twice. Pages @mention the paged people in
the thread; direct messages go to the person's 1:1 chat with the bot (its conversation reference
is kept in Redis from install and message events). Errors map to the outbox's RetryLater (429,
412, 5xx, network) honouring Retry-After, or Undeliverable (400, 403, 404).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
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

from adapters.teams.inbound import message_link
from adapters.teams.render import Link, attachment, mention_text, notice_card
from bot.clock import Clock
from bot.messages import OutboxMessage, ThreadLink
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
CARD_VERSIONS = "teams-card"
LINK_WAIT_S = 120  # how long a message waits for a linked thread (on any platform) to be posted
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
    """Thread links as (label, url): the Teams thread first, else another platform's.

    With `strict`, a link to a thread nobody has posted yet raises RetryLater (the worker tries
    again once the other platform's worker stored it); otherwise it is left out.
    """
    out: list[Link] = []
    for link in links:
        threads = await store.threads(link.case_id)
        others = [ref for key, ref in sorted(threads.items()) if key.split(":", 1)[1].lower() == link.tier.lower()]
        ref = threads.get(f"teams:{link.tier}") or (others[0] if others else None)
        if ref is None:
            if strict:
                raise RetryLater(f"the {link.tier} thread of {link.case_id} is not posted yet", after=2, waiting=True)
            continue
        url = ref.url or (message_link(ref.channel, ref.root_id, tenant=tenant_id) if ref.platform == "teams"
                          else None)
        if url and url.startswith(("https://", "http://")):
            out.append((link.label, url))
    return out


def reference_json(reference: ConversationReference) -> str:
    return json.dumps(reference.serialize())


def reference_from_json(raw: str) -> ConversationReference:
    reference: ConversationReference = ConversationReference().deserialize(json.loads(raw))
    return reference


class TeamsTransport:
    """Implements bot.outbox.Transport for Teams; one per process, shared by its delivery worker."""

    platform = "teams"

    def __init__(self, *, store: Store, clock: Clock, connectors: ConnectorSource, service_url: str,
                 bot_id: str, tenant_id: str | None, gap_s: float = THREAD_GAP_S) -> None:
        self.store = store
        self.clock = clock
        self.connectors = connectors
        self.service_url = service_url
        self.bot_id = bot_id
        self.tenant_id = tenant_id
        self.gap_s = gap_s

    def pace(self, message: OutboxMessage) -> list[Pace]:
        """Per conversation (thread, chat or channel) 7 messages a second, within the bot's
        overall budget; shared by every worker through Redis."""
        address = message.address
        key = address.thread_key or address.user or address.channel
        if address.reply_to and address.channel:
            key = thread_conversation(address.channel, address.reply_to)
        if not key:
            return []
        return [Pace(key, 1.0 / self.gap_s, CONVERSATION_BURST), Pace("bot", *BOT_BUDGET)]

    async def deliver(self, message: OutboxMessage) -> str | None:
        notice, address = message.notice, message.address
        if notice.kind == "card" and address.thread_case and address.thread_tier:
            return await self._card(message)
        if address.thread_case and address.thread_tier:
            return await self._in_thread(message)
        if address.user:
            return await self._direct(message)
        if address.channel:
            return await self._post(message)
        raise Undeliverable(f"no Teams place to deliver a {notice.kind} to")

    # ---- kinds ------------------------------------------------------------------------------

    async def _card(self, message: OutboxMessage) -> str | None:
        """The case card: a new post the first time, an update in place afterwards."""
        notice, address = message.notice, message.address
        case_id, tier = address.thread_case or "", address.thread_tier or ""
        links = await self.links_for(message)
        activity = Activity(type="message", attachments=[attachment(notice_card(notice, tier=tier, links=links))],
                            summary=notice.title[:100])
        thread = await self.store.get_thread(case_id, tier, "teams")
        if thread is not None:
            if notice.case_version is not None and not await self.store.newer_version(
                    CARD_VERSIONS, f"{case_id}:{tier}", notice.case_version):
                return thread.root_id  # a newer card is already shown
            activity.id = thread.root_id
            await self._call("update the case card",
                             lambda c: c.conversations.update_activity(
                                 thread_conversation(thread.channel, thread.root_id), thread.root_id, activity))
            return thread.root_id
        channel = address.channel
        if not channel:
            raise Undeliverable(f"tier {tier} has no Teams channel")
        # Only one worker may create the thread root; the others wait until it is stored.
        lock = f"teams-root:{case_id}:{tier}"
        if not await self.store.claim_once(lock, ttl_s=120):
            raise RetryLater("the case thread is being posted", after=1, waiting=True)
        try:
            root_id = await self._new_post(channel, activity, "post the case card")
            url = message_link(channel, root_id, root=root_id, tenant=self.tenant_id)
            await self.store.set_thread(case_id, tier, ThreadRef(platform="teams", channel=channel,
                                                                  root_id=root_id, url=url))
            if notice.case_version is not None:
                await self.store.newer_version(CARD_VERSIONS, f"{case_id}:{tier}", notice.case_version)
        finally:
            await self.store.redis.delete(self.store.keys.dedupe(lock))
        log.info("case thread opened", platform="teams", case_id=case_id, tier=tier)
        return root_id

    async def _in_thread(self, message: OutboxMessage) -> str | None:
        address = message.address
        thread = await self.store.get_thread(address.thread_case or "", address.thread_tier or "", "teams")
        if thread is None:
            raise RetryLater("thread root not posted yet", after=1, waiting=True)
        activity = await self._message_activity(message)
        conversation = thread_conversation(thread.channel, thread.root_id)
        return await self._send(conversation, activity, f"reply in {address.thread_key}", self.service_url)

    async def _direct(self, message: OutboxMessage) -> str | None:
        """A 1:1 message: through the stored conversation, or a new 1:1 chat in our tenant."""
        user = message.address.user or ""
        activity = await self._message_activity(message)
        raw = await self.store.get_ref(USERS, user)
        if raw:
            reference = reference_from_json(raw)
            conversation = reference.conversation.id if reference.conversation else None
            if conversation:
                return await self._send(conversation, activity, "send a direct message",
                                        reference.service_url or self.service_url)
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
        return await self._send(conversation, activity, "send a direct message", self.service_url)

    async def _post(self, message: OutboxMessage) -> str | None:
        """A post in a channel (link-back, status), in a thread when `reply_to` names one."""
        address = message.address
        channel = address.channel or ""
        activity = await self._message_activity(message)
        if address.reply_to and is_teams_channel(channel):
            return await self._send(thread_conversation(channel, address.reply_to), activity,
                                    "reply in the origin thread", self.service_url)
        if is_teams_channel(channel) and ";messageid=" not in channel:
            return await self._new_post(channel, activity, "post in a channel")
        return await self._send(channel, activity, "post in a chat", self.service_url)

    # ---- building blocks ------------------------------------------------------------------

    async def links_for(self, message: OutboxMessage) -> list[Link]:
        """The notice's thread links; a link that cannot be resolved for long is left out rather
        than holding the message back for good (the other platform may be down or unconfigured)."""
        waited = (self.clock.now() - message.created_at).total_seconds()
        return await resolve_links(self.store, message.notice.links, tenant_id=self.tenant_id,
                                   strict=waited < LINK_WAIT_S)

    async def teams_id(self, user_id: str) -> str:
        """The Teams user id (29:...) for a configured id, which may be an Entra object id."""
        if user_id.startswith("29:"):
            return user_id
        return await self.store.get_ref(TEAMS_IDS, user_id) or user_id

    async def _message_activity(self, message: OutboxMessage) -> Activity:
        """A thread reply, page or direct message: a card, plus @mentions in the text for pages."""
        notice = message.notice
        links = await self.links_for(message)
        activity = Activity(type="message", attachments=[attachment(notice_card(notice, links=links))],
                            summary=notice.title[:100])
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
                    service_url: str | None = None) -> Any:
        try:
            client = await self.connectors(service_url or self.service_url)
            return await call(client)
        except (RetryLater, Undeliverable):
            raise
        except Exception as exc:  # every connector failure becomes a retry or a dead letter
            raise classify(exc, what) from exc


def _root_of(conversation_id: str | None) -> str | None:
    if conversation_id and ";messageid=" in conversation_id:
        return conversation_id.split(";messageid=", 1)[1]
    return None
