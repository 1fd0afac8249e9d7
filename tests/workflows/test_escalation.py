"""Opening and moving cases: routing, private channels, CSM and expert notices, links, tiers."""

from __future__ import annotations

from bot.commands import DeescalateCase, EscalateCase, OpenCase, ShowCase
from bot.messages import case_thread_of
from bot.model import CaseStatus, Origin
from bot.runtime import Runtime
from tests.workflows.helpers import person, posted, run, thread_titles


async def test_billing_sev2_for_an_enterprise_customer_lands_in_l2_private_and_tells_the_csm(
        runtime: Runtime) -> None:
    reply = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Charged twice", severity="sev2",
                                        customer="globex", category="billing"))
    assert reply.ok and reply.case_id == "ESC-1001"
    case = await runtime.store.get_case("ESC-1001")
    assert case and case.tier == "L2" and case.private and "hana" in case.watchers
    slack = await posted(runtime, "slack")
    cards = [m for m in slack if m.notice.kind == "card"]
    assert [(m.address.channel, m.address.private) for m in cards] == [("G0L2PRIVATE", True)]
    assert not any(m.address.channel in ("C0L2",) for m in slack)  # never the public L2 channel
    teams = await posted(runtime, "teams")
    assert not any(m.address.channel for m in teams)  # L2 has no private Teams channel: only DMs there
    assert any(m.address.user == "U0HANA" and "customer success manager" in m.notice.text for m in slack)


async def test_a_tier_chosen_by_the_agent_still_passes_the_privacy_rules(runtime: Runtime) -> None:
    await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Refund please", tier="L1",
                                category="account"))
    case = await runtime.store.get_case("ESC-1001")
    assert case and case.tier == "L1" and case.private
    timeline = await runtime.store.timeline("ESC-1001")
    assert "category account is sensitive" in timeline[0].detail


async def test_a_fraud_case_pulls_in_the_named_expert_at_once(runtime: Runtime) -> None:
    await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Stolen card used", category="fraud"))
    case = await runtime.store.get_case("ESC-1001")
    assert case and case.tier == "L2" and "fay" in case.watchers
    assert any(m.address.user == "U0FAY" for m in await posted(runtime))


async def test_an_outage_keyword_routes_to_l3_with_a_swarm_and_scrubs_the_public_channel(runtime: Runtime) -> None:
    await run(runtime, OpenCase(actor=person(runtime, "alice"),
                                title="Checkout down, customer jane@shop.example card 4111 1111 1111 1111"))
    case = await runtime.store.get_case("ESC-1001")
    assert case and case.tier == "L3" and case.swarm and not case.private
    card = next(m for m in await posted(runtime) if m.notice.kind == "card")
    assert card.address.channel == "C0L3"
    assert "jane@" not in card.notice.title and "4111" not in card.notice.title
    assert "[card number removed]" in card.notice.title
    scrubbed = [e for e in await runtime.store.timeline("ESC-1001") if e.action == "scrubbed"]
    assert scrubbed and "card number" in scrubbed[0].detail and "e-mail" in scrubbed[0].detail


async def test_the_origin_conversation_gets_a_link_back_without_private_details(runtime: Runtime) -> None:
    origin = Origin(platform="teams", channel="19:frontline@thread.tacv2", thread="1700000000")
    await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Charged twice", category="billing",
                                severity="sev2", origin=origin))
    link = next(m for m in await posted(runtime, "teams") if m.notice.kind == "post")
    assert link.address.channel == origin.channel and link.address.reply_to == "1700000000"
    assert "Charged twice" not in link.notice.title and "ESC-1001" in link.notice.title
    assert case_thread_of(link.notice.links[0].thread) == ("ESC-1001", "L2")


async def test_escalating_moves_the_case_to_a_new_thread_and_leaves_a_pointer(runtime: Runtime) -> None:
    await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Login loop", tier="L2"))
    reply = await run(runtime, EscalateCase(actor=person(runtime, "ben"), case_id="ESC-1001",
                                            reason="needs a code fix"))
    assert reply.ok, reply.text
    case = await runtime.store.get_case("ESC-1001")
    assert case and case.tier == "L3" and [v.tier for v in case.tiers] == ["L2", "L3"]
    old = await thread_titles(runtime, "ESC-1001", "L2")
    assert "Escalated to L3 Engineering by Ben" in old[-1]
    new = await thread_titles(runtime, "ESC-1001", "L3")
    assert new[0].startswith("ESC-1001 · Login loop") and any("Escalated from L2" in t for t in new)


async def test_escalating_needs_a_higher_tier_and_an_open_case(runtime: Runtime) -> None:
    await run(runtime, OpenCase(actor=person(runtime, "alice"), title="x", tier="L3"))
    down = await run(runtime, EscalateCase(actor=person(runtime, "ben"), case_id="ESC-1001", to_tier="L1",
                                           reason="wrong"))
    assert not down.ok and "deescalate" in down.text
    missing = await run(runtime, EscalateCase(actor=person(runtime, "ben"), case_id="ESC-9999", reason="x"))
    assert not missing.ok and "There is no case ESC-9999" in missing.text


async def test_de_escalating_goes_back_down_a_tier(runtime: Runtime) -> None:
    await run(runtime, OpenCase(actor=person(runtime, "alice"), title="x", tier="L3"))
    reply = await run(runtime, DeescalateCase(actor=person(runtime, "erin"), case_id="ESC-1001",
                                              reason="config question"))
    case = await runtime.store.get_case("ESC-1001")
    assert reply.ok and case and case.tier == "L2" and case.status == CaseStatus.OPEN


async def test_escalating_to_the_vendor_records_the_vendor_and_reminds_the_owner(
        runtime: Runtime, clock: object) -> None:
    from bot.commands import ClaimCase
    await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Payment gateway errors", tier="L3"))
    await run(runtime, ClaimCase(actor=person(runtime, "erin"), case_id="ESC-1001"))
    await run(runtime, EscalateCase(actor=person(runtime, "erin"), case_id="ESC-1001", to_tier="vendor",
                                    reason="gateway bug", vendor="Stripe", vendor_ticket="SR-42"))
    case = await runtime.store.get_case("ESC-1001")
    assert case and case.vendor and case.vendor.name == "Stripe" and case.vendor.ticket == "SR-42"
    assert case.status == CaseStatus.WAITING_VENDOR
    clock.advance(hours=4)  # type: ignore[attr-defined]
    await runtime.scheduler.run_due()
    reminders = [m for m in await posted(runtime)
                 if m.address.user == "U0ERIN" and "Chase the vendor" in m.notice.title]
    assert len(reminders) == 1 and "Stripe has not answered for 4h" in reminders[0].notice.text


async def test_case_shows_the_whole_timeline_to_people_allowed_to_see_it(runtime: Runtime) -> None:
    await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Charged twice", category="billing",
                                severity="sev2", customer="globex"))
    shown = await run(runtime, ShowCase(actor=person(runtime, "gus"), case_id="ESC-1001"))
    assert shown.ok and "opened" in shown.text and "paged" in shown.text
    hidden = await run(runtime, ShowCase(actor=person(runtime, "dev"), case_id="ESC-1001"))
    assert not hidden.ok and hidden.text == "You don't have access to ESC-1001."


async def test_an_unknown_target_tier_is_refused_with_the_known_ones(runtime: Runtime) -> None:
    await run(runtime, OpenCase(actor=person(runtime, "alice"), title="x", tier="L2"))
    reply = await run(runtime, EscalateCase(actor=person(runtime, "ben"), case_id="ESC-1001", to_tier="L9",
                                            reason="r"))
    assert not reply.ok and "Unknown tier 'L9' (known: L0, L1, L2, L3, vendor)" in reply.text
    top = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="y", tier="vendor"))
    up = await run(runtime, EscalateCase(actor=person(runtime, "ben"), case_id=top.case_id or "", reason="r"))
    assert not up.ok and "already in the highest tier (vendor)" in up.text


async def test_a_mistyped_sensitive_category_still_keeps_the_case_private_and_says_so(runtime: Runtime) -> None:
    from workflows import grammar

    command = grammar.parse("sev2 customer:globex category:biling Charged twice", verb="escalate",
                            actor=person(runtime, "alice"), config=runtime.config)
    assert isinstance(command, OpenCase)
    reply = grammar.with_notes(await run(runtime, command), command, runtime.config)
    assert reply.ok and "category 'biling' treated as sensitive (did you mean billing?)" in reply.text
    case = await runtime.store.get_case("ESC-1001")
    assert case and case.private
    channels = {m.address.channel for m in await posted(runtime, "slack") if m.address.channel}
    assert channels and not channels & {"C0L1", "C0L2", "C0L3"}  # never a public tier channel


async def test_a_slack_mention_in_the_summary_opens_a_case_titled_with_the_name(runtime: Runtime) -> None:
    from adapters.slack import inbound

    body = {"command": "/escalate", "text": "L1 <@U0BEN> test", "user_id": "U0ALICE", "trigger_id": "t1"}
    command = inbound.slash_command(body, runtime.config)
    assert isinstance(command, OpenCase)
    await run(runtime, command)
    case = await runtime.store.get_case("ESC-1001")
    assert case and case.title == "@Ben Brooks test"
    assert all("U0BEN" not in m.notice.title for m in await posted(runtime, "slack"))
