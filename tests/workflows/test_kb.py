"""The knowledge base: review of swarm drafts, search, and the suggestion on a later escalation."""

from __future__ import annotations

from bot.commands import EditKb, OpenCase, PublishKb, RejectKb, SearchKb, ShowKb
from bot.knowledge import KbArticle
from bot.runtime import Runtime
from tests.workflows.helpers import person, posted, run
from tests.workflows.swarming import outage
from workflows import knowledge
from workflows.grammar import parse

RESOLUTION = "restarted the payment connection pool cause: connection pool leak in the checkout service"


async def drafted(rt: Runtime) -> None:
    await outage(rt)
    command = parse(f"ESC-1001 end {RESOLUTION}", verb="swarm", actor=person(rt, "erin"), config=rt.config)
    assert not isinstance(command, str)
    assert (await run(rt, command)).ok  # type: ignore[arg-type]


async def test_a_draft_is_not_suggested_but_a_published_article_is_and_the_suggestion_is_counted(
        rt: Runtime) -> None:
    await drafted(rt)
    first = await run(rt, OpenCase(actor=person(rt, "alice"), title="checkout connection pool leak again"))
    assert "may solve this" not in first.text
    assert (await run(rt, PublishKb(actor=person(rt, "erin"), article_id="KB-1"))).ok  # erin leads the swarm
    later = await run(rt, OpenCase(actor=person(rt, "ben"), tier="L2",
                                   title="checkout connection pool leak again, payments failing"))
    assert "KB-1 may solve this: Checkout down for all users" in later.text, later.text
    unrelated = await run(rt, OpenCase(actor=person(rt, "ben"), tier="L2", title="printer toner empty"))
    assert "may solve this" not in unrelated.text
    counts = await rt.store.redis.hgetall(knowledge.suggestions_key(rt.store))
    assert counts == {b"KB-1": b"1", b"total": b"1"}
    published = [m.notice.title for m in await posted(rt) if m.address.thread == "swarm:ESC-1001"]
    assert "KB-1 published by Erin Ortiz" in published


async def test_search_finds_published_articles_and_says_so_when_nothing_matches(rt: Runtime) -> None:
    await drafted(rt)
    await run(rt, PublishKb(actor=person(rt, "gus"), article_id="KB-1"))  # a manager may publish
    found = await run(rt, SearchKb(actor=person(rt, "alice"), query="connection pool leak"))
    assert found.text.startswith("KB-1 · Checkout down for all users")
    none = await run(rt, SearchKb(actor=person(rt, "alice"), query="printer toner"))
    assert none.text.startswith("No published article matches")
    shown = await run(rt, ShowKb(actor=person(rt, "alice"), article_id="KB-1"))
    assert "Cause: connection pool leak in the checkout service" in shown.text and "Status: published" in shown.text


async def test_only_the_owner_the_lead_or_a_manager_reviews_and_edits_are_scrubbed(rt: Runtime) -> None:
    await drafted(rt)
    refused = await run(rt, PublishKb(actor=person(rt, "alice"), article_id="KB-1"))
    assert not refused.ok and "Only the case owner, the swarm lead or a manager" in refused.text
    edited = await run(rt, EditKb(actor=person(rt, "erin"), article_id="KB-1",
                                  resolution="restarted the pool; mail ops@globex.example"))
    assert edited.ok, edited.text
    article = await rt.store.get_record(KbArticle, "KB-1")
    assert article is not None and "ops@" not in article.resolution and article.status == "draft"
    assert (await run(rt, RejectKb(actor=person(rt, "erin"), article_id="KB-1", reason="duplicate"))).ok
    again = await run(rt, RejectKb(actor=person(rt, "erin"), article_id="KB-1"))
    assert not again.ok and again.text == "KB-1 is already rejected."
    missing = await run(rt, ShowKb(actor=person(rt, "erin"), article_id="KB-9"))
    assert not missing.ok and "There is no article KB-9" in missing.text


def test_kb_and_swarm_words_parse_into_commands(rt: Runtime) -> None:
    alice = person(rt, "alice")
    edit = parse("KB-7 edit resolution: restart it cause: leak", verb="kb", actor=alice, config=rt.config)
    assert isinstance(edit, EditKb) and (edit.resolution, edit.cause, edit.issue) == ("restart it", "leak", "")
    assert isinstance(parse("search vpn drops", verb="kb", actor=alice, config=rt.config), SearchKb)
    bad = parse("KB7", verb="kb", actor=alice, config=rt.config)
    assert not isinstance(bad, SearchKb) and "not an article id" in bad.text  # type: ignore[union-attr]
