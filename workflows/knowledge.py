"""The knowledge base: drafts from solved swarms, review (publish, edit, reject), search, suggestions.

Published articles are searched with the pure BM25 index (workflows.kb_search). Each process keeps
one index per store, brought up to date lazily from the store's set of published ids and their
versions (a publish, an edit or a rejection anywhere changes one of them), so `/escalate` pays one
Redis round trip when nothing changed. Suggestions made on `/escalate` are counted for digests.
"""

from __future__ import annotations

import re
from typing import Any

from bot.bus import Context, Handler
from bot.commands import Command, EditKb, PublishKb, RejectKb, SearchKb, ShowKb
from bot.config import Config
from bot.errors import InvalidTransition, NotAllowed, NotFound, UserError
from bot.knowledge import KbArticle
from bot.messages import InThread, Notice, Reply, ThreadLink
from bot.model import Actor, TimelineEntry
from bot.privacy import scrub
from bot.store import Store
from bot.swarms import Swarm, swarm_thread
from bot.uow import UnitOfWork
from workflows.kb_search import KbIndex, suggestion_line

_INDEXES: dict[str, tuple[dict[str, int], KbIndex]] = {}  # store prefix -> (id -> version, index)
_SEEN_REVISION: dict[str, str] = {}  # store prefix -> the `kb` revision the index reflects


def seq_key(store: Store) -> str:
    return f"{store.keys.base}:seq:kb"


def suggestions_key(store: Store) -> str:
    """Hash: article id -> how often `/escalate` suggested it (and `total`), for digests."""
    return f"{store.keys.base}:count:kb-suggested"


async def next_article_id(store: Store) -> str:
    return f"KB-{await store.redis.incr(seq_key(store))}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def published_index(store: Store, revision: str | None = None) -> KbIndex:
    """This process's index of published articles, updated from the store if any article changed
    since (every commit writing an article bumps the `kb` revision; an opening case brings it along)."""
    versions, index = _INDEXES.setdefault(store.keys.prefix, ({}, KbIndex()))
    seen = revision if revision is not None else await store.revision(KbArticle.kind)
    if store.keys.prefix in _SEEN_REVISION and _SEEN_REVISION[store.keys.prefix] == seen:
        return index
    _SEEN_REVISION[store.keys.prefix] = seen
    ids = sorted(_text(i) for i in await store.redis.smembers(store.keys.index("kb", "status", "published")))
    pipe = store.redis.pipeline(transaction=False)
    for article_id in ids:
        pipe.hget(store.keys.record("kb", article_id), "v")
    current = {i: int(v) for i, v in zip(ids, await pipe.execute(), strict=True) if v is not None}
    for gone in set(versions) - set(current):
        index.remove(gone)
        del versions[gone]
    for article_id, version in current.items():
        if versions.get(article_id) != version:
            article = await store.get_record(KbArticle, article_id)
            if article is not None and article.status == "published":
                index.add(article_id, article.issue, article.body)
                versions[article_id] = version
    return index


async def suggest(store: Store, text: str, *, revision: str | None = None) -> list[str]:
    """"KB-7 may solve this: ..." for the best published article matching `text` (counted), or []."""
    index = await published_index(store, revision)
    if not len(index):
        return []
    hits = index.search(text, k=1)
    if not hits:
        return []
    pipe = store.redis.pipeline(transaction=False)
    for article_id, _ in hits:
        pipe.hincrby(suggestions_key(store), article_id, 1)
    pipe.hincrby(suggestions_key(store), "total", len(hits))
    await pipe.execute()
    return [suggestion_line(i, index.title(i)) for i, _ in hits]


# ---- drafting -----------------------------------------------------------------------------------


def customer_words(config: Config) -> list[str]:
    """Names a customer goes by: its key, its name, and the first word of a longer name ("Globex")."""
    words: set[str] = set()
    for key, customer in config.customers.items():
        words.update({key, customer.name})
        first = customer.name.split()[0] if customer.name.split() else ""
        if len(first) >= 4:
            words.add(first)
    return sorted(words, key=len, reverse=True)  # longest first: "Globex Corp" before "Globex"


def scrub_article_text(text: str, config: Config) -> str:
    """Personal data (bot.privacy) and customer names out: an article is read by every agent."""
    out, _ = scrub(text)
    for word in customer_words(config):
        out = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", "the customer", out, flags=re.IGNORECASE)
    return out


def draft(article_id: str, *, issue: str, environment: str, resolution: str, cause: str, skills: list[str],
          related: list[str], author: str | None, private: bool, config: Config, uow: UnitOfWork) -> KbArticle:
    def clean(text: str) -> str:
        return scrub_article_text(text, config)

    return KbArticle(id=article_id, created_at=uow.now, issue=clean(issue), environment=clean(environment),
                     resolution=clean(resolution), cause=clean(cause), skills=list(skills), related=related,
                     author=author, private=private)


def article_notice(article: KbArticle, title: str) -> Notice:
    review = "" if article.status != "draft" else (
        f"\nReview it: /kb {article.id} publish | edit resolution: ... | reject")
    return Notice(kind="reply", title=title, text="\n".join(article.lines()) + review, private=article.private,
                  case_id=article.related[0] if article.related else None)


# ---- commands -------------------------------------------------------------------------------------


async def _article_for(uow: UnitOfWork, article_id: str) -> KbArticle:
    """The article, if the caller may see it: a private case's draft only for that case's insiders."""
    try:
        article = await uow.get(KbArticle, article_id)
    except NotFound:
        raise NotFound(f"There is no article {article_id.upper()}; find one with /kb search words.") from None
    if article.private and article.status != "published" and article.related:
        await uow.case(article.related[0])  # published: the reviewer made it everyone's knowledge
    return article


async def show_kb(cmd: ShowKb, ctx: Context) -> Reply:
    async def work(uow: UnitOfWork) -> Reply:
        article = await _article_for(uow, cmd.article_id)
        return Reply(title=f"{article.id} · {article.issue}", text="\n".join([*article.lines(),
                     f"Status: {article.status}"]), links=_links(article))

    return await ctx.run(work)


def _links(article: KbArticle) -> list[ThreadLink]:
    return [ThreadLink(thread=swarm_thread(c), label=f"Swarm thread of {c}") for c in article.related[:1]]


async def search_kb(cmd: SearchKb, ctx: Context) -> Reply:
    index = await published_index(ctx.store)
    hits = index.search(cmd.query, k=5)
    if not hits:
        return Reply(text=f"No published article matches \"{cmd.query}\". Try other words, e.g. the error text.")
    return Reply(text="\n".join(f"{i} · {index.title(i)}" for i, _ in hits))


def _may_review(article: KbArticle, actor: Actor, owner: str | None, lead: str | None, config: Config) -> None:
    person = config.people.get(actor.person or "")
    if actor.person and (actor.person in (owner, lead) or (person is not None and "manager" in person.roles)):
        return
    raise NotAllowed(f"Only the case owner, the swarm lead or a manager can review {article.id}.")


async def _review(cmd: PublishKb | EditKb | RejectKb, ctx: Context, change: Any) -> Reply:
    async def work(uow: UnitOfWork) -> Reply:
        article = await _article_for(uow, cmd.article_id)
        owner = lead = None
        channels: dict[str, str] = {}
        if article.related:
            case = await uow.case(article.related[0])
            owner = case.owner
            try:
                swarm = await uow.get(Swarm, case.id)
                lead, channels = swarm.lead, swarm.channels
            except NotFound:
                pass
        _may_review(article, cmd.actor, owner, lead, uow.config)
        text = change(article, uow)
        article.reviewed_by = cmd.actor.person
        uow.record(article, TimelineEntry(at=uow.now, actor=cmd.actor.name, action=article.status, detail=text))
        if article.related and channels:
            uow.say(article_notice(article, f"{article.id} {text} by {cmd.actor.name}"),
                    InThread(thread=swarm_thread(article.related[0]), channels=channels, private=article.private))
        return Reply(text=f"{article.id} {text}.")

    return await ctx.run(work, key=cmd.key)  # the commit bumps the `kb` revision: every process reloads


async def publish_kb(cmd: PublishKb, ctx: Context) -> Reply:
    def change(article: KbArticle, uow: UnitOfWork) -> str:
        if article.status == "published":
            raise InvalidTransition(f"{article.id} is already published.")
        article.status = "published"
        return "published"
    return await _review(cmd, ctx, change)


async def reject_kb(cmd: RejectKb, ctx: Context) -> Reply:
    def change(article: KbArticle, uow: UnitOfWork) -> str:
        if article.status == "rejected":
            raise InvalidTransition(f"{article.id} is already rejected.")
        article.status = "rejected"
        return "rejected" + (f" ({cmd.reason})" if cmd.reason else "")
    return await _review(cmd, ctx, change)


async def edit_kb(cmd: EditKb, ctx: Context) -> Reply:
    def change(article: KbArticle, uow: UnitOfWork) -> str:
        fields = {"issue": cmd.issue, "environment": cmd.environment, "resolution": cmd.resolution,
                  "cause": cmd.cause}
        given = {k: scrub_article_text(v, uow.config) for k, v in fields.items() if v.strip()}
        if not given:
            raise UserError(f"Say what to change, e.g. /kb {article.id} edit resolution: restarted the pool "
                            f"cause: leaked connections.")
        for name, value in given.items():
            setattr(article, name, value)
        return f"edited ({', '.join(given)})"
    return await _review(cmd, ctx, change)


HANDLERS: dict[type[Command], Handler] = {
    ShowKb: show_kb, SearchKb: search_kb, PublishKb: publish_kb, EditKb: edit_kb, RejectKb: reject_kb,
}
