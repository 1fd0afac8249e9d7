"""The Slack transport: outbox messages to Web API calls, idempotent and rate-limit aware.

The outbox worker owns retries, backoff, Retry-After holds, pacing and dead letters; this module
only decides which calls a message needs and how a failure should be treated:

- a case card is posted once as the root of the case's thread (its `ts` is stored as the
  thread's ThreadRef before anything else can fail), and every later card is a `chat.update`
  of that root, never a repost; stale card versions are skipped;
- thread replies and in-thread pages go under that root (RetryLater until it exists);
- pages and direct notices to a person go by DM (`conversations.open` + `chat.postMessage`);
- 429 becomes RetryLater with Retry-After, 5xx/timeouts/connection errors RetryLater with
  backoff, and errors that will never succeed (`channel_not_found`, `not_in_channel`,
  `invalid_auth`, ...) Undeliverable, so they reach the dead-letter stream at once.

The Web API client must not retry by itself (`retry_handlers=[]`): a client that sleeps on a
429 inside the worker would stall every other channel and ignore the shared pacing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.inbound import permalink
from adapters.slack.render import ResolvedLink, SlackMessage, render_notice
from bot.clock import Clock
from bot.messages import OutboxMessage
from bot.model import ThreadRef
from bot.outbox import RetryLater, Undeliverable
from bot.pacing import Pace
from bot.store import Store

log = structlog.get_logger("escalator.slack")

PLATFORM = "slack"
PACE_SECONDS = 1.0  # chat.postMessage: about one message per second per channel
CHANNEL_BURST = 3  # ... with short bursts allowed
WORKSPACE_BUDGET = (10.0, 20)  # chat.postMessage across the workspace: (per second, burst)
TIER_3 = (50 / 60, 20)  # Web API Tier 3 methods (chat.update, conversations.open): 50+/min
LINK_GRACE = timedelta(seconds=10)  # wait this long for a linked thread, then post without the link
ROOT_LOCK_S = 30

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


class SlackTransport:
    """`bot.outbox.Transport` for Slack."""

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
        budget. A card may be a chat.update of the root instead (Tier 3); a DM may first need a
        conversations.open (Tier 3), which only its 429 holds, as most DMs skip it.
        """
        address, kind = message.address, message.notice.kind
        if address.thread_key and address.channel:
            channel = "chat:" + address.channel
        elif address.user:
            channel = "chat:dm:" + address.user
        elif address.channel:
            channel = "chat:" + address.channel
        else:
            return []
        paces = [Pace(channel, 1.0 / self.pace_s, CHANNEL_BURST), Pace("workspace", *WORKSPACE_BUDGET)]
        if kind == "card":
            paces.append(Pace(method_key("chat.update"), *TIER_3))
        elif channel.startswith("chat:dm:"):
            paces.append(Pace(method_key("conversations.open"), 0))
        return paces

    async def deliver(self, message: OutboxMessage) -> str | None:
        """Send one outbox message; returns the `ts` of what was posted or updated."""
        try:
            return await self._deliver(message)
        except (RetryLater, Undeliverable):
            raise
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise classify(exc) from exc

    async def _deliver(self, message: OutboxMessage) -> str | None:
        address, kind = message.address, message.notice.kind
        if kind == "card" and address.thread_case and address.thread_tier:
            return await self._card(message)
        if address.thread_case and address.thread_tier and kind in ("reply", "page", "post"):
            return await self._thread_reply(message)
        if address.user:
            return await self._direct(message)
        if address.channel:
            return await self._channel_post(message)
        raise Undeliverable(f"a {kind} notice with nowhere to go: {address.model_dump(exclude_none=True)}")

    # ---- the case card ------------------------------------------------------------------

    async def _card(self, message: OutboxMessage) -> str | None:
        address, notice = message.address, message.notice
        case_id, tier = address.thread_case or "", address.thread_tier or ""
        if notice.case_version is not None and not await self.store.newer_version(
                "slack-card", f"{case_id}:{tier}", notice.case_version):
            log.info("stale card skipped", case_id=case_id, tier=tier, version=notice.case_version)
            return None
        links = await self._links(message)
        thread = await self.store.get_thread(case_id, tier, PLATFORM)
        if thread is not None:
            self._guard_private(message, thread.channel)
            if thread.url is None:
                thread = await self._remember_url(case_id, tier, thread)
            rendered = render_notice(notice, links=links, case_url=thread.url)
            try:
                await self.client.chat_update(channel=thread.channel, ts=thread.root_id, text=rendered.text,
                                              blocks=rendered.blocks)
                return thread.root_id
            except SlackApiError as exc:
                if _error(exc) != "message_not_found":
                    raise
                log.warning("case card was deleted; posting it again", case_id=case_id, tier=tier)
                return await self._post_root(message, links, replacing=True)
        return await self._post_root(message, links)

    async def _post_root(self, message: OutboxMessage, links: list[ResolvedLink], *,
                         replacing: bool = False) -> str:
        address, notice = message.address, message.notice
        case_id, tier, channel = address.thread_case or "", address.thread_tier or "", address.channel
        if not channel:
            raise Undeliverable(f"no Slack channel configured for {tier}")
        # Two workers must not both post a first card: the loser updates the winner's root.
        lock = self.store.keys.dedupe(f"slack:root:{case_id}:{tier}")
        if replacing:
            await self.store.redis.delete(lock)
        if not await self.store.redis.set(lock, message.id, nx=True, ex=ROOT_LOCK_S):
            existing = await self.store.get_thread(case_id, tier, PLATFORM)
            if existing is None:
                raise RetryLater("another worker is posting this case card", waiting=True)
            rendered = render_notice(notice, links=links, case_url=existing.url)
            await self.client.chat_update(channel=existing.channel, ts=existing.root_id, text=rendered.text,
                                          blocks=rendered.blocks)
            return existing.root_id
        rendered = render_notice(notice, links=links)
        try:
            response = await self.client.chat_postMessage(channel=channel, text=rendered.text,
                                                          blocks=rendered.blocks, unfurl_links=False,
                                                          unfurl_media=False)
        except BaseException:
            await self.store.redis.delete(lock)  # nothing was posted (as far as we know): let a retry post
            raise
        ts, posted_in = str(response["ts"]), str(response.get("channel") or channel)
        # Remember the root first: from here on, a retry updates instead of posting again.
        ref = ThreadRef(platform=PLATFORM, channel=posted_in, root_id=ts)
        await self.store.set_thread(case_id, tier, ref)
        await self._remember_url(case_id, tier, ref)
        log.info("case card posted", case_id=case_id, tier=tier, channel=posted_in)
        return ts

    async def _remember_url(self, case_id: str, tier: str, ref: ThreadRef) -> ThreadRef:
        url = await self._permalink(ref.channel, ref.root_id)
        if url is None:
            return ref
        ref = ref.model_copy(update={"url": url})
        await self.store.set_thread(case_id, tier, ref)
        return ref

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

    # ---- replies, pages, direct messages, posts ------------------------------------------

    async def _thread_reply(self, message: OutboxMessage) -> str:
        address = message.address
        thread = await self.store.get_thread(address.thread_case or "", address.thread_tier or "", PLATFORM)
        if thread is None:
            # No `after`: the worker's backoff keeps in step with the root's own retries, and an
            # `after` would replace a 429 Retry-After hold on this channel with a 1 s one.
            raise RetryLater("thread root not posted yet", waiting=True)
        self._guard_private(message, thread.channel)
        rendered = render_notice(message.notice, links=await self._links(message), case_url=thread.url)
        return await self._post(thread.channel, rendered, thread_ts=thread.root_id)

    async def _direct(self, message: OutboxMessage) -> str:
        user = message.address.user or ""
        channel = await self.store.get_ref("slack-dm", user)
        if channel is None:
            opened = await self.client.conversations_open(users=user)
            channel = str(opened["channel"]["id"])
            await self.store.put_ref("slack-dm", user, channel, ttl_s=30 * 24 * 3600)
        links = await self._links(message)
        rendered = render_notice(message.notice, links=links, case_url=links[0].url if links else None)
        return await self._post(channel, rendered)

    async def _channel_post(self, message: OutboxMessage) -> str:
        address = message.address
        rendered = render_notice(message.notice, links=await self._links(message))
        return await self._post(address.channel or "", rendered, thread_ts=address.reply_to)

    async def _post(self, channel: str, rendered: SlackMessage, *, thread_ts: str | None = None) -> str:
        kwargs: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        response = await self.client.chat_postMessage(channel=channel, text=rendered.text, blocks=rendered.blocks,
                                                      unfurl_links=False, unfurl_media=False, **kwargs)
        return str(response["ts"])

    # ---- helpers --------------------------------------------------------------------------

    def _guard_private(self, message: OutboxMessage, channel: str) -> None:
        """A private case's message goes to its private channel and nowhere else."""
        address = message.address
        if address.private and address.channel and channel != address.channel:
            raise Undeliverable(f"private case thread is in {channel}, not in its private channel "
                                f"{address.channel}; not cross-posting")

    async def _links(self, message: OutboxMessage) -> list[ResolvedLink]:
        """Resolve ThreadLinks to URLs: this platform's thread first, else any platform's.

        A link whose thread is not posted yet holds the message back for a short while (the
        card of the new tier is usually a second behind); after that it is sent without it.
        """
        out: list[ResolvedLink] = []
        missing: list[str] = []
        for lnk in message.notice.links:
            threads = await self.store.threads(lnk.case_id)
            wanted = [threads.get(f"{PLATFORM}:{lnk.tier}")]
            wanted += [ref for key, ref in threads.items() if key.endswith(f":{lnk.tier}")]
            url = next((ref.url for ref in wanted if ref is not None and ref.url), None)
            if url:
                out.append(ResolvedLink(label=lnk.label, url=url))
            else:
                missing.append(f"{lnk.case_id} {lnk.tier}")
        if missing and self.clock.now() - message.created_at < LINK_GRACE:
            raise RetryLater(f"linked thread not posted yet: {', '.join(missing)}", waiting=True)
        return out


def _error(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    return str(data.get("error", "")) if isinstance(data, dict) else ""
