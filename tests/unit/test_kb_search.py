"""Knowledge-base search: tokenizer, BM25 ranking, the relevance threshold, incremental updates."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from workflows.kb_search import K1, PRIOR_ARTICLES, TITLE_WEIGHT, B, KbIndex, stem, suggestion_line, tokenize

ARTICLES = {
    "KB-1": ("VPN drops after laptop sleep",
             "The VPN client disconnects when the laptop wakes from sleep. Reinstall the network adapter driver "
             "and disable power saving."),
    "KB-2": ("Database backup fails with timeout",
             "Nightly database backups fail with a timeout when the backup window overlaps the index rebuild. "
             "Move the rebuild to the weekend."),
    "KB-3": ("Invoice shows the wrong currency",
             "Invoices for EU customers show USD. Set the billing currency on the account."),
    "KB-4": ("SSO login loop after certificate rotation",
             "Users are sent back to the login page in a loop after the identity provider certificate was "
             "rotated. Upload the new certificate."),
    "KB-5": ("Export to CSV times out",
             "Large exports time out in the browser; use the asynchronous export API instead."),
    "KB-6": ("Password reset email not received",
             "Reset emails land in spam. Ask the customer to allow-list the sender."),
    "KB-7": ("API returns 502 during deploys",
             "The API gateway returns 502 errors for a few seconds during deploys. Enable connection draining."),
}


def build(articles: dict[str, tuple[str, str]] = ARTICLES, **kw: float) -> KbIndex:
    index = KbIndex(**kw)
    for article_id, (title, body) in articles.items():
        index.add(article_id, title, body)
    return index


# ---- tokenizer -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "tokens"), [
    ("The VPNs DROPPED!", ["vpn", "dropped"]),
    ("is it not working for you?", ["working"]),
    ("HTTP 502 on /api/v2", ["http", "502", "api", "v2"]),
    ("snake_case-and-kebab", ["snake", "case", "kebab"]),
    ("Größe der Übersicht, café", ["größe", "der", "übersicht", "café"]),
    ("", []),
    ("   ...   ", []),
])
def test_text_becomes_lower_case_words_without_stop_words(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


@pytest.mark.parametrize(("word", "expected"), [
    ("errors", "error"), ("policies", "policy"), ("boxes", "box"), ("patches", "patch"), ("crashes", "crash"),
    ("classes", "class"), ("apis", "api"), ("kpis", "kpi"), ("ties", "tie"),
    ("access", "access"), ("status", "status"), ("analysis", "analysis"), ("dns", "dns"), ("redis", "redis"),
    ("error", "error"),
])
def test_plurals_fold_to_the_singular_and_other_words_are_left_alone(word: str, expected: str) -> None:
    assert stem(word) == expected


# ---- ranking ---------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "best"), [
    ("our nightly database backups keep failing with timeouts", "KB-2"),
    ("users stuck in a login loop since we rotated the SSO certificate", "KB-4"),
    ("customers see 502 errors from the API while we deploy", "KB-7"),
    ("VPN keeps dropping when the laptop goes to sleep", "KB-1"),
    ("the invoice currency is wrong for EU customers", "KB-3"),
    ("CSV export times out for a large account", "KB-5"),
])
def test_the_article_about_the_problem_ranks_first(query: str, best: str) -> None:
    hits = build().search(query)
    assert hits and hits[0][0] == best, hits
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_a_word_in_the_title_counts_more_than_the_same_word_in_the_body() -> None:
    index = build({"KB-1": ("Slow dashboard", "The dashboard loads slowly; csv export fails for big reports."),
                   "KB-2": ("CSV export fails", "Rerun the report at night; csv export then works."),
                   "KB-3": ("Unrelated", "Nothing about the problem here.")})
    assert [i for i, _ in index.search("csv export fails")] == ["KB-2", "KB-1"]


def test_equal_scores_are_ordered_by_id() -> None:
    twins = {"KB-9": ("Printer jam", "Paper stuck in tray."), "KB-10": ("Printer jam", "Paper stuck in tray."),
             "KB-11": ("Other", "Something else entirely.")}
    assert [i for i, _ in build(twins).search("printer jam paper")] == ["KB-10", "KB-9"]


def test_k_limits_the_number_of_results() -> None:
    index = build({f"KB-{n}": ("Printer jam", f"Paper stuck in tray {n}.") for n in range(5)})
    index.add("KB-99", "Other", "Something else entirely.")
    assert len(index.search("printer jam paper tray", k=3)) == 3
    assert index.search("printer jam paper tray", k=0) == []


# ---- threshold -------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "the printer in the office is on fire",        # no word in common
    "the customer gets an error",                  # one common word with each of two articles
    "it is not working at all",                    # only stop words and one word nobody uses
    "",
])
def test_an_unrelated_query_suggests_nothing(query: str) -> None:
    assert build().search(query) == []
    assert build().suggest(query) == []


def test_one_shared_word_is_not_enough_but_two_specific_ones_are() -> None:
    index = build()
    assert index.search("my laptop") == []
    assert [i for i, _ in index.search("my laptop vpn")] == ["KB-1"]


def test_without_a_threshold_a_single_shared_word_finds_articles() -> None:
    assert sorted(i for i, _ in build(min_match=0).search("the customer gets an error")) == ["KB-3", "KB-6", "KB-7"]


def test_an_empty_index_finds_nothing() -> None:
    assert KbIndex().search("database backup timeout") == []


# ---- incremental updates ---------------------------------------------------------------


def test_an_updated_article_is_found_by_its_new_words_only() -> None:
    index = build()
    index.update("KB-5", "Bulk import rejects UTF-16 files", "Save the spreadsheet as UTF-8 before the bulk import.")
    assert index.search("csv export times out") == []
    assert [i for i, _ in index.search("bulk import of a UTF-16 file fails")] == ["KB-5"]
    assert len(index) == len(ARTICLES)


def test_a_removed_article_is_never_suggested_again() -> None:
    index = build()
    index.remove("KB-2")
    index.remove("KB-404")  # unknown ids are ignored
    assert "KB-2" not in index and len(index) == len(ARTICLES) - 1
    assert index.search("nightly database backup timeout") == []


def test_an_index_changed_step_by_step_scores_like_one_built_from_scratch() -> None:
    index = build()
    index.add("KB-8", "Webhook retries flood the queue", "Retries pile up in the queue after an outage.")
    index.update("KB-3", "Invoice currency wrong", "Invoices show USD for EU customers; fix the currency.")
    index.remove("KB-6")
    index.add("KB-6", *ARTICLES["KB-6"])
    index.remove("KB-1")
    final = {**{k: v for k, v in ARTICLES.items() if k != "KB-1"},
             "KB-3": ("Invoice currency wrong", "Invoices show USD for EU customers; fix the currency."),
             "KB-8": ("Webhook retries flood the queue", "Retries pile up in the queue after an outage.")}
    fresh = build(final)
    for query in ("invoice currency usd", "webhook retries queue outage", "password reset email spam",
                  "database backup timeout", "login loop sso certificate"):
        got, want = index.search(query), fresh.search(query)
        assert want and [i for i, _ in got] == [i for i, _ in want], query
        assert [s for _, s in got] == pytest.approx([s for _, s in want])


# ---- suggestion ------------------------------------------------------------------------


def test_a_matching_escalation_gets_one_suggestion_line_with_the_title() -> None:
    assert build().suggest("Customer sees 502 errors from the API during every deploy") == [
        "KB-7 may solve this: API returns 502 during deploys"]


def test_the_suggestion_line_names_the_article_and_its_title() -> None:
    assert suggestion_line("KB-12", "VPN drops after sleep") == "KB-12 may solve this: VPN drops after sleep"


# ---- the fast path agrees with the plain definition ------------------------------------


def plain_bm25(articles: dict[str, tuple[str, str]], query: str, k: int, min_match: float) -> list[tuple[str, float]]:
    """BM25 written the obvious way: score every article for every query word."""
    docs = {i: Counter(tokenize(body)) + Counter({t: TITLE_WEIGHT * n for t, n in Counter(tokenize(title)).items()})
            for i, (title, body) in articles.items()}
    n = len(docs) + PRIOR_ARTICLES
    average = sum(sum(d.values()) for d in docs.values()) / len(docs)

    def idf(df: int) -> float:
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    hits = []
    for i, d in docs.items():
        shared = [t for t in dict.fromkeys(tokenize(query)) if d[t]]
        norm = K1 * (1 - B + B * sum(d.values()) / average)
        df = {t: sum(1 for other in docs.values() if other[t]) for t in shared}
        if shared and sum(idf(df[t]) for t in shared) >= min_match * idf(1):
            hits.append((i, sum(idf(df[t]) * d[t] * (K1 + 1) / (d[t] + norm) for t in shared)))
    return sorted(hits, key=lambda hit: (-hit[1], hit[0]))[:k]


def test_search_finds_what_scoring_every_article_would_find() -> None:
    rng = random.Random(5)
    words = [f"w{i}" for i in range(60)]
    weights = [1 / (i + 1) for i in range(60)]
    for _ in range(40):
        articles = {f"KB-{i}": (" ".join(rng.choices(words, weights, k=4)), " ".join(rng.choices(words, weights, k=30)))
                    for i in range(rng.randint(1, 40))}
        index = build(articles)
        for _ in range(10):
            query = " ".join(rng.choices(words, weights, k=rng.randint(1, 10)))
            expected = plain_bm25(articles, query, 5, index.min_match)
            got = index.search(query, 5)
            assert [i for i, _ in got] == [i for i, _ in expected], query
            assert [s for _, s in got] == pytest.approx([s for _, s in expected])
