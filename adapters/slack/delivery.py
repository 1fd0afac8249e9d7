"""Slack for the one Delivery (bot.delivery): Web API calls, and what their errors mean.

`SlackClient` implements `bot.delivery.PlatformClient`; `SlackTransport` is the Delivery built
on it (routing, first-card lock, stale-card check, link policy and page rules live in the core).
What is Slack's own:

- a thread root is a `chat.postMessage` tagged with message metadata (`escalator_card`, the
  outbox message id and thread name): Slack has no idempotency key, so after a post that got no
  answer, `find_root` looks for that tag in the channel's recent history (`conversations.history`
  with `include_all_metadata`) and the Delivery reuses what it finds instead of posting again;
- a root's link is its permalink, built from the workspace URL (learnt once from `auth.test`);
- direct messages go through `conversations.open` (the DM channel is remembered); pages folded
  into a page DM already sent notify the person with a reply under it that @mentions them;
- uploads use the external upload flow (`files.getUploadURLExternal`, `files.completeUploadExternal`);
- 429 becomes RetryLater with Retry-After, 5xx/timeouts/connection errors RetryLater with
  backoff, and errors that will never succeed (`channel_not_found`, `not_in_channel`,
  `invalid_auth`, ...) Undeliverable, so they reach the dead-letter stream at once.

The Web API client must not retry by itself (`retry_handlers=[]`): a client that sleeps on a
429 inside the worker would stall every other channel and ignore the shared pacing.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.inbound import permalink
from adapters.slack.render import ResolvedLink, SlackMessage, render_notice
from bot.clock import Clock
from bot.delivery import Delivery, Link, MaybePosted, RootGone
from bot.messages import DirectRef, Mention, Notice, OutboxMessage
from bot.model import ThreadRef
from bot.outbox import RetryLater, Undeliverable
from bot.pacing import Pace
from bot.store import Store

log = structlog.get_logger("escalator.slack")

PLATFORM = "slack"
PACE_SECONDS = 1.0  # chat.postMessage: about one message per second per channel
CARD_EVENT = "escalator_card"  # the metadata event type on every thread root we post
HISTORY_LIMIT = 100  # how far back find_root looks: a tier channel rarely gets 100 roots in a minute
CHANNEL_BURST = 3  # ... with short bursts allowed
WORKSPACE_BUDGET = (10.0, 20)  # chat.postMessage across the workspace: (per second, burst)
TIER_3 = (50 / 60, 20)  # Web API Tier 3 methods (chat.update of a page DM amend): 50+/min

# Errors that no retry will fix: dead-letter at once, with the error in the entry.
PERMANENT_ERRORS = frozenset({
    "account_inactive", "cannot_dm_bot", "cant_update_message", "channel_is_archived",
    "channel_not_found", "edit_window_closed", "ekm_access_denied", "invalid_arguments",
    "invalid_auth", "invalid_blocks", "invalid_blocks_format", "is_archived", "missing_scope",
    "msg_too_long", "no_permission", "no_text", "not_allowed_token_type", "not_authed",
    "not_in_channel", "restricted_action", "restricted_action_read_only_channel",
    "restricted_action_thread_only_channel", "team_access_not_granted", "token_expired",
    "token_revoked", "too_many_attachments", "user_disabled", "user_not_found", "user_not_visible",
})


def web_client(*, token: str, base_url: str, timeout: int = 10) -> AsyncWebClient:
    """A Web API client that never sleeps or retries on its own: the outbox owns retries."""
    return AsyncWebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[])


def classify(exc: Exception) -> RetryLater | Undeliverable:
    """What a failed Web API call means for delivery.

    A 429 is Slack asking us to wait: it holds the channel (chat.postMessage) or the method's
    tier (chat.update, conversations.open, ...) for Retry-After, for every worker, and uses no
    delivery attempt.
    """
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 0) or 0
        data = getattr(response, "data", None)
        error = data.get("error", "") if isinstance(data, dict) else ""
        if status == 429 or error == "ratelimited":
            headers = getattr(response, "headers", None) or {}
            return RetryLater(f"rate limited ({error or status})", after=_retry_after(headers),
                              rate_limited=True, scope=_limited_scope(response))
        if status >= 500:
            return RetryLater(f"Slack answered {status} {error}".strip())
        if error in PERMANENT_ERRORS:
            return Undeliverable(f"Slack refused the message: {error}")
        return RetryLater(f"Slack error {error or status}")
    if isinstance(exc, TimeoutError):
        return RetryLater("Slack did not answer in time")
    return RetryLater(f"cannot reach Slack: {type(exc).__name__}: {exc}")


def _limited_scope(response: Any) -> str | None:
    """The pace key a 429 holds: the channel for chat.postMessage (None: the message's own
    channel), else the method's tier bucket."""
    method = str(getattr(response, "api_url", "") or "").rstrip("/").rsplit("/", 1)[-1]
    if not method or method == "chat.postMessage":
        return None
    return method_key(method)


def method_key(method: str) -> str:
    return "method:" + method


def _retry_after(headers: Any) -> float:
    raw = None
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name) if hasattr(headers, "get") else None
        if value is not None:
            raw = value[0] if isinstance(value, list) else value
            break
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except ValueError:
        return 1.0


class SlackClient:
    """`bot.delivery.PlatformClient` for Slack: Web API calls, and what their errors mean."""

    platform = PLATFORM

    def __init__(self, *, store: Store, client: AsyncWebClient, clock: Clock,
                 workspace_url: str | None = None, pace_s: float = PACE_SECONDS) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.workspace_url = workspace_url
        self.pace_s = pace_s
        self._asked_workspace = workspace_url is not None

    def pace(self, message: OutboxMessage) -> list[Pace]:
        """The buckets a message draws from, shared by every worker through Redis.

        chat.postMessage: about 1/s per channel (or DM) with short bursts, within a workspace
        budget. A card may be a chat.update of the root instead, and a DM may first need a
        conversations.open (both Tier 3, 50+/min): only their 429s hold those, as most cards of a
        burst are first posts and most DMs skip the open (pacing every card at 50/min made a burst
        of 100 new cases wait almost two minutes for their cards). A page amend is only a
        chat.update (Tier 3); a page folded into its DM also updates it (429 holds only).
        The DM's bucket comes first: the Delivery folds pages within its refill time (3 s).
        """
        address, kind = message.address, message.notice.kind
        if kind == "amend":  # a chat.update of a page DM: never takes a DM post slot from a page
            return [Pace(method_key("chat.update"), *TIER_3)]
        if address.thread and address.channel:
            channel = "chat:" + address.channel
        elif address.user:
            channel = "chat:dm:" + address.user
        elif address.channel:
            channel = "chat:" + address.channel
        else:
            return []
        paces = [Pace(channel, 1.0 / self.pace_s, CHANNEL_BURST), Pace("workspace", *WORKSPACE_BUDGET)]
        if kind == "card":
            paces.append(Pace(method_key("chat.update"), 0))
        elif channel.startswith("chat:dm:"):
            paces.append(Pace(method_key("conversations.open"), 0))
            if kind == "page":  # folded into the DM sent before: a chat.update too (only its 429 holds)
                paces.append(Pace(method_key("chat.update"), 0))
        return paces

    # ---- the thread root ------------------------------------------------------------------

    async def post_root(self, channel: str, notice: Notice, links: Sequence[Link], *, message_id: str,
                        thread: str) -> ThreadRef:
        rendered = render_notice(notice, links=_resolved(links))
        metadata = {"event_type": CARD_EVENT, "event_payload": {"message_id": message_id, "thread": thread}}
        with slack_errors(posting=True):
            response = await self.client.chat_postMessage(channel=channel, text=rendered.text,
                                                          blocks=rendered.blocks, metadata=metadata,
                                                          unfurl_links=False, unfurl_media=False)
        ref = ThreadRef(platform=PLATFORM, channel=str(response.get("channel") or channel), root_id=str(response["ts"]))
        return await self._with_url(ref)

    async def update_root(self, ref: ThreadRef, notice: Notice, links: Sequence[Link], *,
                          thread: str) -> ThreadRef:
        if ref.url is None:
            ref = await self._with_url(ref)
        rendered = render_notice(notice, links=_resolved(links), case_url=ref.url)
        with slack_errors(updating_root=True):
            await self.client.chat_update(channel=ref.channel, ts=ref.root_id, text=rendered.text,
                                          blocks=rendered.blocks)
        return ref

    async def find_root(self, channel: str, message_id: str) -> ThreadRef | None:
        """The root a post that got no answer left in the channel, found by its metadata."""
        with slack_errors():
            history = await self.client.conversations_history(channel=channel, limit=HISTORY_LIMIT,
                                                              include_all_metadata=True)
        for message in history.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == CARD_EVENT and payload.get("message_id") == message_id:
                return await self._with_url(ThreadRef(platform=PLATFORM, channel=channel, root_id=str(message["ts"])))
        return None

    async def _with_url(self, ref: ThreadRef) -> ThreadRef:
        url = await self._permalink(ref.channel, ref.root_id)
        return ref.model_copy(update={"url": url}) if url else ref

    async def _permalink(self, channel: str, ts: str) -> str | None:
        """The message's link, built from the workspace URL (learned once from auth.test)."""
        if not self._asked_workspace:
            self._asked_workspace = True
            try:
                self.workspace_url = str((await self.client.auth_test()).get("url") or "") or None
            except (TimeoutError, SlackClientError, aiohttp.ClientError, OSError):
                log.warning("auth.test failed; asking chat.getPermalink instead")
        if self.workspace_url:
            return permalink(self.workspace_url, channel, ts)
        try:
            return str((await self.client.chat_getPermalink(channel=channel, message_ts=ts))["permalink"])
        except (TimeoutError, SlackClientError, aiohttp.ClientError, OSError, KeyError):
            return None

    # ---- replies, direct messages, posts, uploads -------------------------------------------

    async def reply(self, ref: ThreadRef, notice: Notice, links: Sequence[Link]) -> str:
        rendered = render_notice(notice, links=_resolved(links), case_url=ref.url)
        return await self._post(ref.channel, rendered, thread_ts=ref.root_id)

    async def direct(self, user: str, notice: Notice, links: Sequence[Link]) -> DirectRef:
        channel = await self._dm_channel(user)
        rendered = render_notice(notice, links=_resolved(links), case_url=links[0].url if links else None)
        return DirectRef(conversation=channel, message_id=await self._post(channel, rendered))

    async def update_direct(self, ref: DirectRef, notice: Notice, links: Sequence[Link]) -> None:
        rendered = render_notice(notice, links=_resolved(links), case_url=links[0].url if links else None)
        with slack_errors():
            await self.client.chat_update(channel=ref.conversation, ts=ref.message_id, text=rendered.text,
                                          blocks=rendered.blocks)

    async def notify_direct(self, user: str, ref: DirectRef, notice: Notice, links: Sequence[Link]) -> str:
        """Pages folded into the DM `ref` (edited in place, which notifies nobody): a reply under
        that DM that @mentions the person, so Slack notifies them and the DM stays one message."""
        mention = Mention(person=user, name=user, user_id=user)
        rendered = render_notice(notice.model_copy(update={"mentions": [mention]}), links=_resolved(links))
        return await self._post(ref.conversation, rendered, thread_ts=ref.message_id)

    async def post(self, channel: str, reply_to: str | None, notice: Notice, links: Sequence[Link]) -> str:
        return await self._post(channel, render_notice(notice, links=_resolved(links)), thread_ts=reply_to)

    async def upload(self, channel: str | None, user: str | None, notice: Notice) -> str:
        file = notice.file
        if file is None:
            raise Undeliverable("an upload notice without a file")
        target = await self._dm_channel(user) if user else channel or ""
        with slack_errors():
            response = await self.client.files_upload_v2(
                channel=target, content=base64.b64decode(file.data_b64), filename=file.filename,
                title=notice.title, initial_comment=notice.text or None)
        uploaded = response.get("files") or [response.get("file") or {}]
        return str(uploaded[0].get("id") or "")

    async def open_space(self, name: str, members: Sequence[str]) -> str:
        """A new channel for an incident (conversations.create), with its people invited.

        A refusal (no `channels:manage` scope, name taken, workspace policy) is Undeliverable, so the
        Delivery roots the incident in the status channel instead; an invite that fails is logged only.
        """
        try:
            created = await self.client.conversations_create(name=name)
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", 0) or 0
            if status == 429 or status >= 500 or _error(exc) == "ratelimited":
                raise classify(exc) from exc
            raise Undeliverable(f"Slack refused to create #{name}: {_error(exc) or status}") from exc
        except (TimeoutError, SlackClientError, aiohttp.ClientError, OSError) as exc:
            raise classify(exc) from exc
        channel = str(created["channel"]["id"])
        log.info("incident channel created", channel=channel, name=name)
        await self.invite_to_space(channel, members)
        return channel

    async def invite_to_space(self, channel: str, members: Sequence[str]) -> None:
        """Invite people to an incident channel; a failed invite is logged, never holds the card back."""
        if not members:
            return
        try:
            await self.client.conversations_invite(channel=channel, users=",".join(members), force=True)
        except (SlackApiError, TimeoutError, SlackClientError, aiohttp.ClientError, OSError) as exc:
            log.warning("inviting people to the incident channel failed", channel=channel, error=str(exc))

    async def _dm_channel(self, user: str) -> str:
        channel = await self.store.get_ref("slack-dm", user)
        if channel is None:
            with slack_errors():
                opened = await self.client.conversations_open(users=user)
            channel = str(opened["channel"]["id"])
            await self.store.put_ref("slack-dm", user, channel, ttl_s=30 * 24 * 3600)
        return channel

    async def _post(self, channel: str, rendered: SlackMessage, *, thread_ts: str | None = None) -> str:
        kwargs: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        with slack_errors():
            response = await self.client.chat_postMessage(channel=channel, text=rendered.text, blocks=rendered.blocks,
                                                          unfurl_links=False, unfurl_media=False, **kwargs)
        return str(response["ts"])


class SlackTransport(Delivery):
    """The Delivery for Slack (`bot.outbox.Transport`), built from the Slack settings."""

    def __init__(self, *, store: Store, client: AsyncWebClient, clock: Clock,
                 workspace_url: str | None = None, pace_s: float = PACE_SECONDS) -> None:
        super().__init__(client=SlackClient(store=store, client=client, clock=clock, workspace_url=workspace_url,
                                            pace_s=pace_s), store=store, clock=clock)


@contextmanager
def slack_errors(*, posting: bool = False, updating_root: bool = False) -> Iterator[None]:
    """Web API failures as the outbox understands them (see `classify`).

    `posting`: no answer may still mean posted (MaybePosted). `updating_root`: a deleted root is RootGone.
    """
    try:
        yield
    except SlackApiError as exc:
        if updating_root and _error(exc) == "message_not_found":
            raise RootGone("the thread root was deleted") from exc
        raise classify(exc) from exc
    except (TimeoutError, aiohttp.ServerDisconnectedError) as exc:
        if posting:
            raise MaybePosted("Slack did not answer in time; the message may be posted") from exc
        raise classify(exc) from exc
    except (SlackClientError, aiohttp.ClientError, OSError) as exc:
        raise classify(exc) from exc


def _resolved(links: Sequence[Link]) -> list[ResolvedLink]:
    return [ResolvedLink(label=label, url=url) for label, url in links]


def _error(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    return str(data.get("error", "")) if isinstance(data, dict) else ""
