"""Pure knowledge-base search: BM25 over article titles and bodies, no external service.

`KbIndex` is updated one article at a time (publish, edit, reject) and answers `/kb search` and
the "KB-7 may solve this" suggestion on `/escalate`. A suggestion must be worth reading, so a
result needs enough rare words in common with the query (see `KbIndex.min_match`): an escalation
that only shares "error" or "not working" with an article suggests nothing.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

WORD = re.compile(r"[^\W_]+")
_STOP_LIST = """
a about after again all also am an and any are as at be been before being but by can could did do does
doing for from had has have having he her here hers him his how i if in into is it its itself just me
more most my no nor not of off on once only or other our out over own same she should so some such than
that the their them then there these they this those through to too under until up very was we were what
when where which while who whom why will with would you your yours
"""
STOP_WORDS = frozenset(_STOP_LIST.split())  # short on purpose: "down", "slow", "fail" carry meaning
K1 = 1.2  # how quickly repeating a word stops adding to the score
B = 0.75  # how much a long article is penalised for its length
TITLE_WEIGHT = 2  # a word in the title counts like this many in the body
PRIOR_ARTICLES = 100  # idf is computed as if this many more articles shared none of the words (see _idf)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Light plural stemming: policies -> policy, boxes -> box, apis -> api; status, analysis and dns stay."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "sis", "xis", "dis", "nis")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased unicode words without stop words, plurals folded to the singular."""
    return [stem(w) for w in WORD.findall(text.lower()) if w not in STOP_WORDS]


@dataclass(frozen=True)
class _Doc:
    title: str
    terms: Counter[str]  # term -> weighted frequency (title words count TITLE_WEIGHT times)
    length: int


class KbIndex:
    """An in-memory BM25 index of articles by id, updated incrementally."""

    def __init__(self, min_match: float = 1.5) -> None:
        """`min_match`: how many words unique to one article the shared words must be worth."""
        self.min_match = min_match
        self._docs: dict[str, _Doc] = {}
        self._postings: dict[str, dict[str, int]] = {}  # term -> {article id: weighted frequency}
        self._total_length = 0
        self._norms: dict[str, float] | None = None  # per-article length factor, rebuilt after changes

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._docs

    def add(self, article_id: str, title: str, body: str) -> None:
        """Index an article; adding an id that is already there replaces it."""
        self.remove(article_id)
        terms: Counter[str] = Counter(tokenize(body))
        for t in tokenize(title):
            terms[t] += TITLE_WEIGHT
        length = sum(terms.values())
        self._docs[article_id] = _Doc(title, terms, length)
        for term, tf in terms.items():
            self._postings.setdefault(term, {})[article_id] = tf
        self._total_length += length
        self._norms = None

    update = add

    def remove(self, article_id: str) -> None:
        """Forget an article (rejected or withdrawn); unknown ids are ignored."""
        doc = self._docs.pop(article_id, None)
        if doc is None:
            return
        for term in doc.terms:
            posting = self._postings[term]
            del posting[article_id]
            if not posting:
                del self._postings[term]
        self._total_length -= doc.length
        self._norms = None

    def title(self, article_id: str) -> str:
        return self._docs[article_id].title

    def _idf(self, df: int) -> float:
        """BM25's idf, smoothed so that a young knowledge base does not treat every shared word as common.

        With five articles, a word in two of them says little about how common it is; the prior
        articles keep it specific until the knowledge base is large enough to show otherwise.
        """
        n = len(self._docs) + PRIOR_ARTICLES
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def _length_norms(self) -> dict[str, float]:
        if self._norms is None:
            average = self._total_length / len(self._docs) if self._docs else 1.0
            self._norms = {i: K1 * (1 - B + B * d.length / (average or 1.0)) for i, d in self._docs.items()}
        return self._norms

    def search(self, query: str, k: int = 5) -> list[tuple[str, float]]:
        """The `k` best articles for `query` as (id, BM25 score), best first, relevant ones only.

        An article is relevant when the rarity (idf) of the words it shares with the query adds up to
        at least `min_match` times that of a word found in a single article: in practice two specific
        words, or one very rare one in a large knowledge base.
        """
        if not self._docs or k <= 0:
            return []
        norms = self._length_norms()
        needed = self.min_match * self._idf(1)
        terms = sorted(((self._idf(len(p)), p) for t in dict.fromkeys(tokenize(query))
                        if (p := self._postings.get(t))), key=lambda term: -term[0])
        rest = sum(idf for idf, _ in terms)  # the most the words not yet read can add to an article's evidence
        found: dict[str, list[float]] = {}  # article id -> [score, evidence]
        for idf, posting in terms:
            # Rarest words first: once the words left are too common to make an article relevant on
            # their own, an article not found yet cannot qualify, so the long lists of common words
            # are only used to score the articles already found. Same results as reading everything.
            grow = rest + 1e-9 >= needed
            rest -= idf
            if grow:
                for article_id, tf in posting.items():
                    part = idf * tf * (K1 + 1) / (tf + norms[article_id])
                    if (acc := found.get(article_id)) is None:
                        found[article_id] = [part, idf]
                    else:
                        acc[0] += part
                        acc[1] += idf
                continue
            found = {i: acc for i, acc in found.items() if acc[1] + idf + rest + 1e-9 >= needed}
            for article_id, acc in found.items():
                if tf := posting.get(article_id, 0):
                    acc[0] += idf * tf * (K1 + 1) / (tf + norms[article_id])
                    acc[1] += idf
        hits = [(i, acc[0]) for i, acc in found.items() if acc[1] >= needed]
        return heapq.nsmallest(k, hits, key=lambda hit: (-hit[1], hit[0]))

    def suggest(self, query: str, k: int = 1) -> list[str]:
        """Suggestion lines for an escalation's text: ["KB-7 may solve this: VPN drops after sleep"]."""
        return [suggestion_line(i, self.title(i)) for i, _ in self.search(query, k)]


def suggestion_line(article_id: str, title: str) -> str:
    """The line `/escalate` adds when a published article matches: "KB-7 may solve this: <title>"."""
    return f"{article_id} may solve this: {title}"
