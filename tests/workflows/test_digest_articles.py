"""Recurring problems in the digest: "write an article" names only what no published article covers."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.commands import OpenCase, PublishKb, ShowDigest
from bot.knowledge import KbArticle
from bot.runtime import Runtime
from tests.workflows.helpers import person, posted, run
from tests.workflows.swarming import outage
from workflows.digest.articles import Articles
from workflows.grammar import parse


async def recurring_problems(rt: Runtime) -> list[str]:
    """The section of the digest Gus (a manager) gets now, line by line."""
    assert (await run(rt, ShowDigest(actor=person(rt, "gus"), since="7d"))).ok
    digests = [m.notice for m in await posted(rt) if m.address.user == "U0GUS" and m.notice.kind == "direct"]
    return next(f.value for f in digests[-1].fields if f.label == "Recurring problems").splitlines()


async def test_a_published_article_takes_its_problems_off_the_write_an_article_list(rt: Runtime) -> None:
    # "Checkout down for all users": a swarm solves it and drafts KB-1 (skills payments and api).
    await outage(rt)
    ended = parse("ESC-1001 end restarted the payment connection pool", verb="swarm", actor=person(rt, "erin"),
                  config=rt.config)
    assert not isinstance(ended, str) and (await run(rt, ended)).ok  # type: ignore[arg-type]
    alice = person(rt, "alice")
    for title, category in [("Checkout card declined", "payments"), ("Checkout card", "payments"),
                            ("Checkout card", "payments"), ("VPN slow", "network"), ("VPN slow", "network")]:
        assert (await run(rt, OpenCase(actor=alice, title=title, category=category, tier="L1"))).ok

    drafted = await recurring_problems(rt)
    assert drafted[0] == "categories: payments 3, network 2"
    assert drafted[1].startswith("keywords: checkout 4, card 3, slow 2, ")
    assert drafted[2] == ("write an article: payments (draft KB-1 awaiting review), network, "
                          "checkout (draft KB-1 awaiting review), card")
    assert drafted[3] == "covered by published articles: 0"

    assert (await run(rt, PublishKb(actor=person(rt, "erin"), article_id="KB-1"))).ok
    published = await recurring_problems(rt)
    assert published == [
        "categories: network 2",
        "keywords: card 3, slow 2, declined 1",
        "write an article: network, card, slow",
        "covered by published articles: 3 (payments 3 (KB-1), checkout 4 (KB-1), users 1 (KB-1))",
    ]


def article(number: int, issue: str, status: str, skills: list[str] | None = None) -> KbArticle:
    return KbArticle(id=f"KB-{number}", created_at=datetime(2026, 11, 23, tzinfo=UTC), issue=issue,
                     resolution="restart the SSO gateway; checkout was not affected", skills=skills or [],
                     status=status)  # type: ignore[arg-type]


def test_what_counts_as_covering_a_problem() -> None:
    articles = Articles.of([article(10, "Password resets never arrive", "published", ["email"]),
                            article(2, "Login loops on the start page", "published", ["sso"]),
                            article(3, "Invoices show the wrong VAT rate", "rejected", ["billing"]),
                            article(4, "Refund missing on the statement", "draft", ["billing"])])
    assert articles.published_for("login") == "KB-2"
    assert articles.published_for("logins") == "KB-2"  # plurals fold as in /kb search
    assert articles.published_for("password-reset") == "KB-10"  # every word of it, in one article
    assert articles.published_for("sso") == "KB-2"  # a skill names what the article is about
    assert articles.published_for("email") == "KB-10"
    assert articles.published_for("checkout") is None  # only mentioned in a resolution
    assert articles.published_for("invoice") is None and articles.draft_for("invoice") is None  # rejected
    assert articles.published_for("billing") is None and articles.draft_for("billing") == "KB-4"
    assert articles.published_for("the") is None  # no words left to match
