"""Which recurring problems the knowledge base already answers, so "write an article" names only the rest.

An article covers a category or a title keyword when every word of it is in the article's issue (its
title) or its skills, matched the way `/kb search` matches (lower case, plurals folded). A word only
in the resolution or cause does not count: a passing mention is not an article about the problem.

Only a published article covers a problem. A draft is neither searched nor suggested on `/escalate`
and may still be rejected, so its problem stays a candidate, with the draft named: what the manager
needs there is a review, not a new article. Rejected articles count for nothing.

Reading the articles is one round trip for their ids and one for their records: O(articles), never
a case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot import codec
from bot.knowledge import KbArticle
from bot.store import Store
from workflows.kb_search import tokenize


@dataclass(frozen=True)
class Articles:
    """The words each published and each draft article is about (issue and skills), by article id."""

    published: dict[str, frozenset[str]] = field(default_factory=dict)
    drafts: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, articles: list[KbArticle]) -> Articles:
        published: dict[str, frozenset[str]] = {}
        drafts: dict[str, frozenset[str]] = {}
        for article in sorted(articles, key=_number):
            words = frozenset(tokenize(" ".join([article.issue, *article.skills])))
            if article.status == "published":
                published[article.id] = words
            elif article.status == "draft":
                drafts[article.id] = words
        return cls(published, drafts)

    def published_for(self, problem: str) -> str | None:
        """The first published article about `problem` (a category or keyword), if any."""
        return _first(self.published, problem)

    def draft_for(self, problem: str) -> str | None:
        return _first(self.drafts, problem)


def _first(articles: dict[str, frozenset[str]], problem: str) -> str | None:
    words = set(tokenize(problem))
    if not words:
        return None
    return next((article_id for article_id, about in articles.items() if words <= about), None)


def _number(article: KbArticle) -> tuple[int, str]:
    """KB-2 before KB-10."""
    _, _, number = article.id.partition("-")
    return (int(number) if number.isdigit() else 0, article.id)


# The records of KEYS in one reply: a pipeline of a thousand HGETs costs the client far more.
_RECORDS = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGET', key, 'd') or false end
return out
"""


async def read_articles(store: Store) -> Articles:
    """The published and draft articles, in two round trips."""
    k = store.keys
    pipe = store.redis.pipeline(transaction=False)
    pipe.smembers(k.index("kb", "status", "published"))
    pipe.smembers(k.index("kb", "status", "draft"))
    published, drafts = await pipe.execute()
    keys = [k.record("kb", _text(i)) for i in sorted(published | drafts)]
    if not keys:
        return Articles()
    raws = await store.redis.register_script(_RECORDS)(keys=keys)
    return Articles.of([codec.decode_record(KbArticle, raw) for raw in raws if raw])


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
