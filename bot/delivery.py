"""One delivery for every platform: the rules live here once, a platform only makes the calls.

`Delivery` implements `bot.outbox.Transport` for any platform from a `PlatformClient` (post a
thread root, update it, reply, DM, post, upload, and find a root after a timeout). It owns:

- routing by notice kind: a `card` is the thread root (posted the first time, updated after);
  anything else addressed to a thread is a reply under it (`RetryLater(waiting=True)` until the
  root exists); a message to a user is a DM; to a channel, a post (under `reply_to` if set);
  `upload` sends a file; `amend` updates a DM page sent before its thread existed;
- one first-card lock (`SET NX`, ROOT_LOCK_S): the loser updates the winner's root, or waits;
- one stale-card check (`store.newer_version`): a card older than the one shown is skipped;
- one link policy: a ThreadLink resolves to this platform's thread, else any platform's thread
  with a URL; a missing one holds the message back (waiting) up to LINK_GRACE, then it goes
  without the link;
- the page rule: a DM page never waits for a link. It goes out at once with what is known (a
  missing thread shows as the tier channel it will be in, `Notice.channel_links`), and when a
  link was missing an `amend` message is queued that waits (up to AMEND_WAIT) for the thread,
  then redraws that DM in place with every link known by then;
- page merge: several page DMs to one person queued together become one DM (`merge`), and a
  page that comes while that person's page DM is less than one pacing window old (the DM
  bucket's refill time: 3 s on Slack) is folded into it: the DM is updated to list every case
  ("Paged for ESC-1042, ESC-1043, ESC-1044"). An edit notifies nobody, and an on-call person
  must hear of every new page, so each fold also sends a short notifying message naming the new
  cases (the client's optional `notify_direct`: on Slack a reply under the DM that @mentions
  them; else a new DM). One DM to read, one notification per page delivery.
- root-post reconcile: before posting a root the Delivery records the attempt; when the client
  says the post may have happened (`MaybePosted`, a timeout), the retry asks `find_root` for it
  first and reuses what it finds, so a timed-out post is not doubled.
- spaces: a card with `Notice.space` roots its thread in a channel of its own, made once by the
  client's optional `open_space(name, members)`; a platform without it (or a refusal) roots the
  thread in the address's channel, and a refusal is said there.

Platform errors are classified by the client (RetryLater / Undeliverable); the outbox worker
owns retries, holds, pacing and dead letters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import NamedTuple, Protocol

import structlog
from pydantic import BaseModel, Field

from bot.clock import Clock, to_ms
from bot.messages import NORMAL, Address, ChannelLink, DirectRef, Notice, OutboxMessage, ThreadLink, case_thread_of
from bot.model import ThreadRef
from bot.outbox import RetryLater, Undeliverable
from bot.pacing import Pace
from bot.store import Commit, Store

log = structlog.get_logger("escalator.delivery")

LINK_GRACE = timedelta(seconds=15)  # a linked thread is usually posted within a second or two
AMEND_WAIT = timedelta(minutes=10)  # below the outbox's WAIT_LIMIT: an amend that never resolves is dropped
ROOT_LOCK_S = 60  # longer than any client timeout, short enough that a crashed poster frees the thread
ATTEMPT_TTL_S = 24 * 3600
PAGE_RECORD_TTL_S = 3600  # what a page DM lists, kept past AMEND_WAIT so an amend can redraw it all
PAGE_LOCK_MS = 15_000  # longer than a client call; a crashed writer frees the DM soon
WINDOW_KEY_SPARE_MS = 60_000  # the window's own time is on the injected clock; Redis only cleans up

__all__ = ["AMEND_WAIT", "LINK_GRACE", "ROOT_LOCK_S", "Delivery", "DirectRef", "Link", "MaybePosted",
           "MergedPage", "PlatformClient", "RootGone", "also_paged", "page_list", "resolve_links", "thread_of"]


class Link(NamedTuple):
    """A ThreadLink resolved to a URL (a tuple, so `(label, url)` unpacks)."""

    label: str
    url: str


class MaybePosted(RetryLater):
    """post_root got no answer (a timeout): the root may be posted. The retry looks for it first."""


class RootGone(Exception):
    """update_root: the root message no longer exists (deleted by someone); post a new one."""


class PlatformClient(Protocol):
    """What a platform implements; each method raises RetryLater / Undeliverable for its errors.

    A client receives channels, users, ThreadRefs and DirectRefs, never case ids or tiers;
    `thread` is an opaque thread name to tag a root with (Slack metadata, Teams card buttons).
    """

    platform: str

    def pace(self, message: OutboxMessage) -> Sequence[Pace]:
        """The token buckets a message draws from (channel, workspace, method); see `bot.pacing`."""
        ...

    async def post_root(self, channel: str, notice: Notice, links: Sequence[Link], *, message_id: str,
                        thread: str) -> ThreadRef:
        """Post a thread root (a card) tagged with `message_id`; raise MaybePosted on a timeout."""
        ...

    async def update_root(self, ref: ThreadRef, notice: Notice, links: Sequence[Link], *,
                          thread: str) -> ThreadRef:
        """Update the root in place; return the ref (with a URL if one was learnt); RootGone if deleted."""
        ...

    async def find_root(self, channel: str, message_id: str) -> ThreadRef | None:
        """The root an earlier `post_root(message_id=...)` posted, if the platform can tell; else None."""
        ...

    async def reply(self, ref: ThreadRef, notice: Notice, links: Sequence[Link]) -> str:
        """A reply in the thread; returns the platform's message id."""
        ...

    async def direct(self, user: str, notice: Notice, links: Sequence[Link]) -> DirectRef:
        """A direct message to a person; returns where it is, to update it later."""
        ...

    async def update_direct(self, ref: DirectRef, notice: Notice, links: Sequence[Link]) -> None:
        """Replace a direct message sent earlier."""
        ...

    async def post(self, channel: str, reply_to: str | None, notice: Notice, links: Sequence[Link]) -> str:
        """A post in a channel, in the thread of the raw platform id `reply_to` if given."""
        ...

    async def upload(self, channel: str | None, user: str | None, notice: Notice) -> str:
        """Upload `notice.file` to a channel or (when `user` is set) a person; returns its id."""
        ...

    # Optional (looked up with getattr): `async def notify_direct(user, ref, notice, links) -> str`
    # notifies the person about pages folded into the DM `ref` (Slack: a reply under it that
    # @mentions them); without it the Delivery sends a new DM.
    # `async def open_space(name, members) -> channel` makes a
    # channel of its own for a thread with `Notice.space` and invites `members` (platform user ids);
    # raise Undeliverable when the platform refuses, RetryLater when it may work later.
    # `async def invite_to_space(channel, members) -> None` invites people added later.


# ---- thread identity: the only place that knows how a thread is named and stored ---------


def thread_of(address: Address) -> str | None:
    """The name of the thread an address points at (`case:ESC-1:L2`, `incident:INC-3`), if any."""
    return address.thread


def _name(thread: str) -> str:
    return thread


async def _thread_ref(store: Store, thread: str, platform: str) -> ThreadRef | None:
    return await store.thread(thread, platform)


async def _set_thread_ref(store: Store, thread: str, ref: ThreadRef) -> None:
    await store.set_thread_ref(thread, ref)


async def _link_refs(store: Store, link: ThreadLink, platform: str) -> list[ThreadRef]:
    """The linked thread on every platform, this platform's first."""
    refs = [ref for _, ref in sorted((await store.thread_refs(link.thread)).items())]
    return sorted(refs, key=lambda ref: ref.platform != platform)


# ---- the one link policy -------------------------------------------------------------------


async def resolve_links(store: Store, links: Sequence[ThreadLink], platform: str) -> tuple[list[Link], list[str]]:
    """ThreadLinks as URLs (this platform's thread first, else any with a URL), and what is missing."""
    found: list[Link] = []
    missing: list[str] = []
    for link in links:
        refs = await _link_refs(store, link, platform)
        url = next((ref.url for ref in refs if ref.url and ref.url.startswith(("https://", "http://"))), None)
        if url:
            found.append(Link(link.label, url))
        else:
            missing.append(link.thread)
    return found, missing


class Delivery:
    """`bot.outbox.Transport` for any platform: the rules, with `client` making the calls."""

    def __init__(self, *, client: PlatformClient, store: Store, clock: Clock) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.platform = client.platform

    def pace(self, message: OutboxMessage) -> Sequence[Pace]:
        return self.client.pace(message)

    async def deliver(self, message: OutboxMessage) -> str | None:
        """Send one outbox message; returns the platform id of what was posted or updated."""
        kind, address = message.notice.kind, message.address
        thread = thread_of(address)
        if kind == "amend":
            return await self._amend(message)
        if kind == "upload":
            return await self._upload(message)
        if kind == "card" and thread:
            return await self._card(message, thread)
        if thread:
            return await self._reply(message, thread)
        if address.user:
            return await self._direct(message)
        if address.channel:
            return await self._post(message)
        raise Undeliverable(f"a {kind} notice with nowhere to go: {address.model_dump(exclude_none=True)}")

    def merge(self, messages: Sequence[OutboxMessage]) -> OutboxMessage | None:
        """Several queued page DMs to one person as one DM; None if they are not that."""
        if len(messages) < 2:
            return None
        first = messages[0]
        if any(m.notice.kind != "page" or not m.address.user or thread_of(m.address)
               or (m.address.platform, m.address.user) != (first.address.platform, first.address.user)
               for m in messages):
            return None
        parts, ids = _page_parts(messages)
        digest = hashlib.sha1("|".join(ids).encode()).hexdigest()[:16]
        return MergedPage(id=f"merged-{digest}", address=first.address.model_copy(
            update={"private": any(m.address.private for m in messages)}),
            notice=page_list(parts), created_at=min(m.created_at for m in messages), parts=parts, part_ids=ids)

    # ---- the thread root ---------------------------------------------------------------

    async def _card(self, message: OutboxMessage, thread: str) -> str | None:
        notice = message.notice
        if notice.case_version is not None and not await self.store.newer_version(
                "card-version", f"{self.platform}:{_name(thread)}", notice.case_version):
            log.info("stale card skipped", platform=self.platform, thread=_name(thread), version=notice.case_version)
            return None
        links = await self._links(message)
        ref = await _thread_ref(self.store, thread, self.platform)
        if ref is not None:
            return await self._update_root(message, thread, ref, links)
        return await self._post_root(message, thread, links)

    async def _update_root(self, message: OutboxMessage, thread: str, ref: ThreadRef,
                           links: list[Link]) -> str:
        self._guard_private(message, ref)
        if message.notice.space is not None:
            await self._invite_new(message, thread, ref.channel)
        try:
            updated = await self.client.update_root(ref, message.notice, links, thread=_name(thread))
        except RootGone:
            log.warning("thread root was deleted; posting it again", platform=self.platform, thread=_name(thread))
            await self.store.redis.delete(self._lock(thread))
            return await self._post_root(message, thread, links)
        if updated != ref:
            await _set_thread_ref(self.store, thread, updated)
        return updated.root_id

    async def _post_root(self, message: OutboxMessage, thread: str, links: list[Link]) -> str:
        channel = message.address.channel
        if channel and message.notice.space is not None:
            channel = await self._space(message, thread, channel)
        if not channel:
            raise Undeliverable(f"no {self.platform} channel configured for the thread {_name(thread)}")
        redis, lock = self.store.redis, self._lock(thread)
        # Two workers must not both post a first root: the loser updates the winner's, or waits.
        mine = await redis.set(lock, message.id, nx=True, ex=ROOT_LOCK_S)
        if not mine and _text(await redis.get(lock)) != message.id:
            existing = await _thread_ref(self.store, thread, self.platform)
            if existing is None:
                raise RetryLater("another worker is posting this thread root", waiting=True)
            return await self._update_root(message, thread, existing, links)
        attempt = self.store.keys.dedupe(f"root-attempt:{self.platform}:{_name(thread)}")
        ref: ThreadRef | None = None
        earlier = _text(await redis.get(attempt))
        if earlier:  # an earlier post got no answer: it may be there already
            ref = await self.client.find_root(channel, earlier)
            if ref is not None:
                log.info("reusing a root posted without an answer", platform=self.platform, thread=_name(thread))
                if earlier != message.id:
                    ref = await self.client.update_root(ref, message.notice, links, thread=_name(thread))
        if ref is None:
            await redis.set(attempt, message.id, ex=ATTEMPT_TTL_S)
            try:
                ref = await self.client.post_root(channel, message.notice, links, message_id=message.id,
                                                  thread=_name(thread))
            except MaybePosted:
                await redis.delete(lock)  # the attempt record makes the retry look before posting
                raise
            except (RetryLater, Undeliverable):
                await redis.delete(attempt, lock)  # nothing was posted: let a retry post
                raise
        # Remember the root first: from here on, a retry updates instead of posting again.
        await _set_thread_ref(self.store, thread, ref)
        await redis.delete(attempt)
        log.info("thread root posted", platform=self.platform, thread=_name(thread), channel=ref.channel)
        return ref.root_id

    def _lock(self, thread: str) -> str:
        return self.store.keys.dedupe(f"root:{self.platform}:{_name(thread)}")

    async def _space(self, message: OutboxMessage, thread: str, fallback: str) -> str:
        """The channel a thread with a space is rooted in: made once, else `fallback` (said there)."""
        space = message.notice.space
        opener = getattr(self.client, "open_space", None)
        if space is None or opener is None:
            return fallback
        key = self.store.keys.dedupe(f"space:{self.platform}:{_name(thread)}")
        made = _text(await self.store.redis.get(key))
        if made:
            return made
        try:
            channel = str(await opener(space.name, space.members.get(self.platform, [])))
        except Undeliverable as exc:  # refused (RetryLater propagates: the card is retried)
            log.warning("space refused; rooting the thread in its channel", platform=self.platform,
                        thread=_name(thread), error=str(exc))
            note = Notice(kind="post", title=f"Could not create a channel for {message.notice.title}",
                          text=f"{exc}. The incident runs in a thread in this channel instead.",
                          case_id=message.notice.case_id)
            await self.client.post(fallback, None, note, [])
            channel = fallback
        await self.store.redis.set(key, channel, ex=ATTEMPT_TTL_S * 30)
        if channel != fallback:
            await self._remember_members(thread, space.members.get(self.platform, []))
        return channel

    async def _invite_new(self, message: OutboxMessage, thread: str, channel: str) -> None:
        """People added to a space after it was made (a new role holder) are invited once."""
        space, inviter = message.notice.space, getattr(self.client, "invite_to_space", None)
        key = self.store.keys.dedupe(f"space:{self.platform}:{_name(thread)}")
        if space is None or inviter is None or _text(await self.store.redis.get(key)) != channel:
            return  # no space of its own (a thread in the status channel): nobody to invite
        members = space.members.get(self.platform, [])
        known = await self.store.redis.smembers(self._members_key(thread))
        new = [m for m in members if m.encode() not in known and m not in known]
        if new:
            await inviter(channel, new)
            await self._remember_members(thread, new)

    def _members_key(self, thread: str) -> str:
        return self.store.keys.dedupe(f"space-members:{self.platform}:{_name(thread)}")

    async def _remember_members(self, thread: str, members: Sequence[str]) -> None:
        if members:
            await self.store.redis.sadd(self._members_key(thread), *members)
            await self.store.redis.expire(self._members_key(thread), ATTEMPT_TTL_S * 30)

    # ---- replies, direct messages, posts, uploads ----------------------------------------

    async def _reply(self, message: OutboxMessage, thread: str) -> str:
        ref = await _thread_ref(self.store, thread, self.platform)
        if ref is None:
            # No `after`: the worker's backoff keeps in step with the root's own retries.
            raise RetryLater("thread root not posted yet", waiting=True)
        self._guard_private(message, ref)
        return await self.client.reply(ref, message.notice, await self._links(message))

    async def _direct(self, message: OutboxMessage) -> str:
        user, notice = message.address.user or "", message.notice
        if notice.kind != "page":
            return (await self.client.direct(user, notice, await self._links(message))).message_id
        return await self._page(message, user)

    # ---- pages: at once, one DM per pacing window, amended with links ---------------------

    async def _page(self, message: OutboxMessage, user: str) -> str:
        """A DM page waits for nothing but its own channel: it goes now with what is known (a
        missing thread shows as its tier channel, and an amend adds the link later). A page to
        someone whose page DM went out less than a pacing window ago is folded into that DM."""
        parts, ids = _page_parts([message])
        dm = await self._open_page_dm(user)
        if dm is not None:
            folded = await self._fold(message, user, dm, parts, ids)
            if folded is not None:
                return folded
        notice = page_list(parts)
        links, missing = await resolve_links(self.store, notice.links, self.platform)
        sent = await self.client.direct(user, self._with_channels(notice, missing), links)
        await self._save_page_dm(sent, _PageDm(parts=parts, ids=ids, linked=_linked(notice, missing)))
        window = self._page_window(message)
        if window > 0:
            until = to_ms(self.clock.now()) + window
            await self.store.redis.set(self._window_key(user), json.dumps({"dm": sent.model_dump(), "until": until}),
                                       px=window + WINDOW_KEY_SPARE_MS)
        if missing:
            await self._queue_amend(message, sent)
        return sent.message_id

    async def _fold(self, message: OutboxMessage, user: str, dm: DirectRef, parts: list[Notice],
                    ids: list[str]) -> str | None:
        """Add pages to the DM already sent: update it so it lists every case, then notify the
        person (an edit does not notify). None if that DM cannot take them (send a new one)."""
        async with self._page_lock(dm, message.id):
            record = await self._page_record(dm)
            if record is None:
                return None
            new = [(part, i) for part, i in zip(parts, ids, strict=True) if i not in record.ids]
            if not new:
                return dm.message_id  # folded before (delivered again after a crash)
            record = _PageDm(parts=record.parts + [p for p, _ in new], ids=record.ids + [i for _, i in new],
                             linked=record.linked)
            notice = page_list(record.parts)
            links, missing = await resolve_links(self.store, notice.links, self.platform)
            try:
                await self.client.update_direct(dm, self._with_channels(notice, missing), links)
            except Undeliverable as exc:  # deleted, too old to edit: the page goes as a new DM
                log.warning("page DM cannot be updated; sending a new one", platform=self.platform, error=str(exc))
                return None
            # Notify before recording: a crash in between repeats the notice rather than losing it.
            await self._notify(user, dm, also_paged([p for p, _ in new]))
            record.linked = _linked(notice, missing)
            await self._save_page_dm(dm, record)
            log.info("page folded into the DM sent before", platform=self.platform, cases=len(record.parts))
        if {lk.thread for p, _ in new for lk in p.links} & set(missing):
            await self._queue_amend(message, dm)
        return dm.message_id

    async def _notify(self, user: str, dm: DirectRef, notice: Notice) -> None:
        """Tell the person about pages folded into `dm`: the client's `notify_direct` (Slack: a
        reply under the DM that @mentions them), else a new DM."""
        notify = getattr(self.client, "notify_direct", None)
        if notify is not None:
            await notify(user, dm, notice, [])
        else:
            await self.client.direct(user, notice, [])

    def _page_window(self, message: OutboxMessage) -> int:
        """The pacing window of the person's DM, in ms: the time its bucket (the first pace) takes
        to refill from empty. 0 when the DM is not paced (every page is its own DM)."""
        paces = list(self.client.pace(message) or ())
        if not paces or paces[0].rate <= 0:
            return 0
        return int(paces[0].interval_ms * max(1, paces[0].burst))

    async def _open_page_dm(self, user: str) -> DirectRef | None:
        raw = _text(await self.store.redis.get(self._window_key(user)))
        if not raw:
            return None
        data = json.loads(raw)
        if int(data.get("until", 0)) <= to_ms(self.clock.now()):
            return None
        return DirectRef.model_validate(data["dm"])

    def _window_key(self, user: str) -> str:
        return self.store.keys.dedupe(f"page-window:{self.platform}:{user}")

    def _record_key(self, dm: DirectRef) -> str:
        return self.store.keys.dedupe(f"page-dm:{self.platform}:{dm.conversation}:{dm.message_id}")

    async def _page_record(self, dm: DirectRef) -> _PageDm | None:
        raw = _text(await self.store.redis.get(self._record_key(dm)))
        return _PageDm.model_validate_json(raw) if raw else None

    async def _save_page_dm(self, dm: DirectRef, record: _PageDm) -> None:
        await self.store.redis.set(self._record_key(dm), record.model_dump_json(), ex=PAGE_RECORD_TTL_S)

    @contextlib.asynccontextmanager
    async def _page_lock(self, dm: DirectRef, token: str) -> AsyncIterator[None]:
        """One writer at a time per page DM (a fold in the DM's lane, an amend in its own lane)."""
        key = self.store.keys.dedupe(f"page-lock:{self.platform}:{dm.conversation}:{dm.message_id}")
        if not await self.store.redis.set(key, token, nx=True, px=PAGE_LOCK_MS):
            raise RetryLater("the page DM is being updated", waiting=True)
        try:
            yield
        finally:
            await self.store.redis.eval(_RELEASE, 1, key, token)

    def _with_channels(self, notice: Notice, missing: Sequence[str]) -> Notice:
        """The notice with the channel links to show: this platform's, for threads not posted yet."""
        shown: dict[str, ChannelLink] = {}
        for c in notice.channel_links:
            if c.platform == self.platform and c.thread in missing:
                shown.setdefault(c.channel, c)
        return notice.model_copy(update={"channel_links": list(shown.values())})

    async def _queue_amend(self, message: OutboxMessage, sent: DirectRef) -> None:
        # Its own lane: an amend waits for a thread to be posted, and pages to the same person
        # must never wait behind it.
        amend = OutboxMessage(id=f"{message.id}:amend", address=message.address,
                              notice=message.notice.model_copy(update={"kind": "amend", "amends": sent}),
                              created_at=self.clock.now(), lane=f"amend:{message.address.lane}",
                              priority=NORMAL)
        # The dedupe key: a page delivered twice (a crash before its ack) queues one amend.
        await self.store.commit(Commit(messages=[amend]), dedupe_key=f"amend:{self.platform}:{message.id}")
        log.info("page sent without its thread link; amend queued", platform=self.platform,
                 case_id=message.notice.case_id)

    async def _amend(self, message: OutboxMessage) -> str | None:
        """Once the page's thread exists, redraw the DM it went into: every case it lists, with
        every link known by now (the tier channel stays for a thread still missing)."""
        notice = message.notice
        dm = notice.amends
        if dm is None or not message.address.user:
            raise Undeliverable("an amend needs the direct message it updates")
        own, missing = await resolve_links(self.store, notice.links, self.platform)
        if missing:
            if self.clock.now() - message.created_at < AMEND_WAIT:
                raise RetryLater(f"waiting for {', '.join(missing)} to add its link to the page", waiting=True)
            log.warning("page amend dropped: the thread never appeared", platform=self.platform,
                        case_id=notice.case_id, missing=missing)
            return None
        async with self._page_lock(dm, message.id):
            record = await self._page_record(dm)
            if record is None:  # a DM whose record expired: show this page alone, with its link
                await self.client.update_direct(
                    dm, notice.model_copy(update={"kind": "page", "amends": None, "channel_links": []}), own)
                return dm.message_id
            shown = page_list(record.parts)
            links, missing = await resolve_links(self.store, shown.links, self.platform)
            linked = _linked(shown, missing)
            if set(linked) <= set(record.linked):
                return dm.message_id  # an earlier amend already showed these links
            await self.client.update_direct(dm, self._with_channels(shown, missing), links)
            record.linked = linked
            await self._save_page_dm(dm, record)
        return dm.message_id

    async def _post(self, message: OutboxMessage) -> str:
        address = message.address
        return await self.client.post(address.channel or "", address.reply_to, message.notice,
                                      await self._links(message))

    async def _upload(self, message: OutboxMessage) -> str:
        address = message.address
        if message.notice.file is None:
            raise Undeliverable("an upload notice without a file")
        if not (address.user or address.channel):
            raise Undeliverable("an upload with nowhere to go")
        return await self.client.upload(None if address.user else address.channel, address.user, message.notice)

    # ---- helpers --------------------------------------------------------------------------

    async def _links(self, message: OutboxMessage) -> list[Link]:
        """The message's links; a missing one holds it back up to LINK_GRACE, then it goes without."""
        found, missing = await resolve_links(self.store, message.notice.links, self.platform)
        if missing and self.clock.now() - message.created_at < LINK_GRACE:
            raise RetryLater(f"linked thread not posted yet: {', '.join(missing)}", waiting=True)
        return found

    def _guard_private(self, message: OutboxMessage, ref: ThreadRef) -> None:
        """A private case's message goes to its private channel and nowhere else."""
        address = message.address
        if address.private and address.channel and ref.channel != address.channel:
            raise Undeliverable(f"private case thread is in {ref.channel}, not in its private channel "
                                f"{address.channel}; not cross-posting")


# ---- pages: the list a page DM shows ---------------------------------------------------------


class MergedPage(OutboxMessage):
    """Pages to one person merged by `Delivery.merge`: the DM lists `parts`; `part_ids` are
    their outbox ids (a part delivered again after a crash is recognised)."""

    parts: list[Notice] = Field(default_factory=list)
    part_ids: list[str] = Field(default_factory=list)


class _PageDm(BaseModel):
    """What a page DM lists (kept in Redis): its pages, their outbox ids, the threads it links."""

    parts: list[Notice]
    ids: list[str]
    linked: list[str] = Field(default_factory=list)


def _page_parts(messages: Sequence[OutboxMessage]) -> tuple[list[Notice], list[str]]:
    parts: list[Notice] = []
    ids: list[str] = []
    for m in messages:
        if isinstance(m, MergedPage) and m.parts:
            parts += m.parts
            ids += m.part_ids
        else:
            parts.append(m.notice)
            ids.append(m.id)
    return parts, ids


def _page_line(n: Notice) -> str:
    return (f"{n.case_id or n.title}" + (f" ({n.severity})" if n.severity else "")
            + f": {(n.text.splitlines() or [n.title])[0]}")


def _subject(link: ThreadLink) -> str:
    """What a thread link is about, as a page DM lists it: the case id, else the link's label."""
    case = case_thread_of(link.thread)
    return case[0] if case else link.label


def page_list(notices: Sequence[Notice]) -> Notice:
    """What one page DM shows: a single page as it is; several as "Paged for ESC-1042, ESC-1043",
    one line and one link per case, the most severe severity, every tier channel they name."""
    if len(notices) == 1:
        return notices[0]
    cases = list(dict.fromkeys(n.case_id or n.title for n in notices))
    links = list(dict.fromkeys(ThreadLink(thread=lk.thread, label=f"Open {_subject(lk)}")
                               for n in notices for lk in n.links))
    severities = sorted(n.severity for n in notices if n.severity)
    return Notice(kind="page", title="Paged for " + ", ".join(cases), text="\n".join(_page_line(n) for n in notices),
                  links=links, actions=list(dict.fromkeys(a for n in notices for a in n.actions)),
                  mentions=list(dict.fromkeys(p for n in notices for p in n.mentions)),
                  severity=severities[0] if severities else None, private=any(n.private for n in notices),
                  channel_links=list(dict.fromkeys(c for n in notices for c in n.channel_links)))


def also_paged(notices: Sequence[Notice]) -> Notice:
    """The notifying message for pages folded into a DM already sent ("Also paged for ESC-1043")."""
    cases = list(dict.fromkeys(n.case_id or n.title for n in notices))
    severities = sorted(n.severity for n in notices if n.severity)
    return Notice(kind="page", title="Also paged for " + ", ".join(cases),
                  text="\n".join(_page_line(n) for n in notices), case_id=notices[0].case_id,
                  severity=severities[0] if severities else None, private=True)


def _linked(notice: Notice, missing: Sequence[str]) -> list[str]:
    """The threads a page DM now shows a link for."""
    return sorted({lk.thread for lk in notice.links} - set(missing))


# Delete a lock only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
