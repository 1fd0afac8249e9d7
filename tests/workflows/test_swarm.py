"""Swarming on the core: start (by hand or by a routing rule), invitations, fallback, the thread, ending."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from bot.commands import (
    AddSwarmMember,
    DeclineSwarm,
    EndSwarm,
    InviteSkill,
    JoinSwarm,
    LeaveSwarm,
    ListSwarms,
    OpenCase,
    ResolveCase,
    SetSwarmLead,
    StartSwarm,
)
from bot.config import ConfigError, parse_config
from bot.knowledge import KbArticle
from bot.runtime import Runtime
from bot.swarms import Swarm
from tests.conftest import EXAMPLE_CONFIG
from tests.workflows.helpers import person, posted, run
from tests.workflows.swarming import outage
from workflows.grammar import parse


async def test_an_outage_starts_a_swarm_that_invites_the_fewest_free_experts_and_explains_each_pick(
        rt: Runtime) -> None:
    swarm = await outage(rt)
    assert swarm.needed == ["payments", "api", "database"]
    assert swarm.members == ["erin"] and swarm.lead == "erin"  # the tier's on-call is a member from the start
    assert [(i.person, i.state, i.skills) for i in swarm.invitations] == [("cleo", "pending", ["payments", "api"])]
    slack = await posted(rt)
    card = next(m for m in slack if m.notice.kind == "card" and m.address.thread == "swarm:ESC-1001")
    assert card.address.channel == "C0SWARM"
    fields = {f.label: f.value for f in card.notice.fields}
    assert fields["Covered"] == "database" and fields["Missing"] == "payments, api"
    assert fields["Members"] == "Erin Ortiz (database)" and fields["Invited"] == "Cleo Chen"
    assert [a.action for a in card.notice.actions] == ["swarm_join", "swarm_leave", "swarm_end"]
    started = next(m for m in slack if m.address.thread == "swarm:ESC-1001" and m.notice.kind == "reply")
    assert "Cleo Chen: payments, api; no open cases" in started.notice.text
    assert "greedy set cover" in started.notice.text
    invitation = next(m for m in slack if m.address.user == "U0CLEO" and m.notice.kind == "direct")
    assert [a.action for a in invitation.notice.actions] == ["swarm_join", "swarm_decline"]
    assert "payments, api" in invitation.notice.text
    case_thread = [m for m in slack if m.address.thread == "case:ESC-1001:L3" and m.notice.kind == "reply"]
    assert any(lk.thread == "swarm:ESC-1001" for m in case_thread for lk in m.notice.links)


async def test_a_decline_invites_the_next_best_and_tells_the_thread_and_lead_when_nobody_is_left(
        rt: Runtime) -> None:
    await outage(rt)
    reply = await run(rt, DeclineSwarm(actor=person(rt, "cleo"), case_id="ESC-1001"))
    assert reply.ok, reply.text
    swarm = await rt.store.get_record(Swarm, "ESC-1001")
    assert swarm is not None
    assert [(i.person, i.state) for i in swarm.invitations] == [("cleo", "declined"), ("ben", "pending")]
    slack = await posted(rt)
    thread = [m.notice.title for m in slack if m.address.thread == "swarm:ESC-1001"]
    assert "Cleo Chen declined" in thread and "Nobody left for api" in thread  # Dev has api but is off hours
    assert any(m.address.user == "U0ERIN" and "nobody left for api" in m.notice.title for m in slack)
    assert any(m.address.user == "U0BEN" and m.notice.title == "Join the swarm on ESC-1001?" for m in slack)


async def test_an_invitation_unanswered_for_the_timeout_goes_to_the_next_expert(rt: Runtime, clock: FakeClock) -> None:
    await outage(rt)
    clock.advance(minutes=9)
    await rt.scheduler.run_due()
    swarm = await rt.store.get_record(Swarm, "ESC-1001")
    assert swarm is not None and swarm.invitations[0].state == "pending"
    clock.advance(minutes=2)
    await rt.scheduler.run_due()
    swarm = await rt.store.get_record(Swarm, "ESC-1001")
    assert swarm is not None
    assert [(i.person, i.state) for i in swarm.invitations] == [("cleo", "timed_out"), ("ben", "pending")]
    assert "Cleo Chen did not answer in 11m" in [m.notice.title for m in await posted(rt)]


async def test_joining_stops_the_timeout_and_joining_twice_is_refused(rt: Runtime, clock: FakeClock) -> None:
    await outage(rt)
    assert (await run(rt, JoinSwarm(actor=person(rt, "cleo"), case_id="ESC-1001"))).ok
    clock.advance(minutes=11)
    await rt.scheduler.run_due()
    swarm = await rt.store.get_record(Swarm, "ESC-1001")
    assert swarm is not None and swarm.members == ["erin", "cleo"]
    assert [(i.person, i.state) for i in swarm.invitations] == [("cleo", "joined")]
    before = len(await posted(rt))
    again = await run(rt, JoinSwarm(actor=person(rt, "cleo"), case_id="ESC-1001"))
    assert not again.ok and again.text == "You are already in the swarm on ESC-1001."
    assert len(await posted(rt)) == before
    titles = [m.notice.title for m in await posted(rt) if m.address.thread == "swarm:ESC-1001"]
    assert "Cleo Chen joined" in titles


async def test_members_leave_add_people_change_the_lead_and_ask_for_another_skill(rt: Runtime) -> None:
    await outage(rt)
    erin = person(rt, "erin")
    assert (await run(rt, AddSwarmMember(actor=erin, case_id="ESC-1001", person="ben"))).ok
    assert (await run(rt, SetSwarmLead(actor=erin, case_id="ESC-1001", person="ben"))).ok
    invited = await run(rt, InviteSkill(actor=erin, case_id="ESC-1001", skill="compliance"))
    assert invited.ok and "Fay Fischer" in invited.text
    assert (await run(rt, LeaveSwarm(actor=person(rt, "ben"), case_id="ESC-1001"))).ok
    swarm = await rt.store.get_record(Swarm, "ESC-1001")
    assert swarm is not None and swarm.members == ["erin"] and swarm.lead == "erin"
    assert "compliance" in swarm.needed and swarm.invitation("fay") is not None
    titles = [m.notice.title for m in await posted(rt) if m.address.thread == "swarm:ESC-1001"]
    for title in ("Erin Ortiz added Ben Brooks", "Ben Brooks leads the swarm now", "Ben Brooks left"):
        assert title in titles


async def test_ending_resolves_the_case_thanks_members_credits_helpers_and_drafts_a_scrubbed_article(
        rt: Runtime, clock: FakeClock) -> None:
    await outage(rt)
    await run(rt, JoinSwarm(actor=person(rt, "cleo"), case_id="ESC-1001"))
    clock.advance(minutes=30)
    text = ("restarted the payment pool for jane@shop.example, card 4111 1111 1111 1111, Globex Corp "
            "cause: leaked connections in Globex checkout environment: EU cluster")
    command = parse(f"ESC-1001 end {text}", verb="swarm", actor=person(rt, "cleo"), config=rt.config)
    assert isinstance(command, EndSwarm) and command.cause == "leaked connections in Globex checkout"
    reply = await run(rt, command)
    assert reply.ok and "KB-1 drafted" in reply.text, reply.text
    case = await rt.store.get_case("ESC-1001")
    assert case is not None and not case.is_open and case.resolution is not None
    assert "leaked connections" in next(e.detail for e in await rt.store.timeline("ESC-1001")
                                        if e.action == "swarm ended")
    swarm = await rt.store.get_record(Swarm, "ESC-1001")
    assert swarm is not None and swarm.status == "ended" and swarm.kb_id == "KB-1"
    assert swarm.credit["cleo"].authored_resolution and swarm.credit["cleo"].member_at_resolution
    assert swarm.credit["cleo"].minutes == 30 and swarm.credit["erin"].minutes == 30
    article = await rt.store.get_record(KbArticle, "KB-1")
    assert article is not None and article.status == "draft" and article.related == ["ESC-1001"]
    everything = " ".join([article.issue, article.environment, article.resolution, article.cause])
    for secret in ("jane@", "4111", "Globex"):
        assert secret not in everything
    assert article.cause == "leaked connections in the customer checkout" and article.environment == "EU cluster"
    titles = [(m.notice.title, m.notice.text) for m in await posted(rt) if m.address.thread == "swarm:ESC-1001"]
    assert any(t == "Swarm ended by Cleo Chen" and "Thank you, Erin Ortiz, Cleo Chen!" in x for t, x in titles)
    assert any(t == "Knowledge-base draft KB-1 for review" for t, _ in titles)
    assert any(m.notice.title == "Swarm ended by Cleo Chen" for m in await posted(rt)
               if m.address.thread == "case:ESC-1001:L3")


async def test_resolving_the_case_ends_its_swarm(rt: Runtime) -> None:
    await outage(rt)
    assert (await run(rt, ResolveCase(actor=person(rt, "erin"), case_id="ESC-1001",
                                      resolution="failed over the database"))).ok
    swarm = await rt.store.get_record(Swarm, "ESC-1001")
    assert swarm is not None and swarm.status == "ended" and swarm.resolution == "failed over the database"
    assert swarm.credit["erin"].authored_resolution
    assert [i.state for i in swarm.invitations] == ["withdrawn"]
    assert (await run(rt, ListSwarms(actor=person(rt, "erin")))).text.startswith("No active swarms")


async def test_bad_input_gets_a_short_answer_for_the_caller_and_changes_nothing(rt: Runtime) -> None:
    await outage(rt)
    before = len(await posted(rt))
    erin = person(rt, "erin")
    cases = [
        (StartSwarm(actor=erin, case_id="ESC-9999"), "There is no case ESC-9999"),
        (StartSwarm(actor=erin, case_id="ESC-1001"), "ESC-1001 already has a swarm"),
        (InviteSkill(actor=erin, case_id="ESC-1001", skill="dtabase"), "did you mean database?"),
        (DeclineSwarm(actor=erin, case_id="ESC-1001"), "You have no open invitation"),
        (EndSwarm(actor=erin, case_id="ESC-1001", resolution=" "), "Describe the resolution"),
        (SetSwarmLead(actor=erin, case_id="ESC-1001", person="gus"), "Gus Grant is not in the swarm"),
        (AddSwarmMember(actor=erin, case_id="ESC-1001", person="zed"), "Unknown person 'zed'"),
    ]
    for command, answer in cases:
        reply = await run(rt, command)
        assert not reply.ok and answer in reply.text, reply.text
    usage = parse("ESC-1001 end", verb="swarm", actor=erin, config=rt.config)
    assert not isinstance(usage, EndSwarm) and "Describe the resolution" in usage.text  # type: ignore[union-attr]
    assert len(await posted(rt)) == before


async def test_a_private_swarm_stays_in_private_channels_and_outsiders_cannot_see_or_join_it(rt: Runtime) -> None:
    await run(rt, OpenCase(actor=person(rt, "alice"), title="Small Co charged twice, jane@shop.example",
                           severity="sev2", category="billing", customer="smallco"))
    reply = await run(rt, StartSwarm(actor=person(rt, "ben"), case_id="ESC-1001", skills=["database"]))
    assert reply.ok, reply.text
    swarm = await rt.store.get_record(Swarm, "ESC-1001")
    assert swarm is not None and swarm.private and swarm.channels == {"slack": "G0L2PRIVATE"}
    slack = await posted(rt)
    assert not any(m.address.channel == "C0SWARM" for m in slack)
    invitation = next(m for m in slack if m.address.user == "U0ERIN" and m.notice.kind == "direct")
    assert "jane@" not in invitation.notice.text and "Small Co" not in invitation.notice.text
    dev = person(rt, "dev")
    refused = await run(rt, JoinSwarm(actor=dev, case_id="ESC-1001"))
    assert not refused.ok and refused.text == "You don't have access to ESC-1001."
    assert "ESC-1001" not in (await run(rt, ListSwarms(actor=dev))).text
    assert "ESC-1001" in (await run(rt, ListSwarms(actor=person(rt, "erin")))).text  # invited: may see it
    assert (await run(rt, JoinSwarm(actor=person(rt, "erin"), case_id="ESC-1001"))).ok


async def test_the_same_expert_is_not_always_pulled_in_invitations_count_for_a_week(
        rt: Runtime, clock: FakeClock) -> None:
    """Ben and Cleo both have payments and equal load: the one asked less in the last 7 days is invited."""
    invited, previous = [], 0
    for hour in (0, 24, 180):  # Monday 09:00, Tuesday 09:00, the next Monday 21:00
        clock.advance(hours=hour - previous)
        previous = hour
        opened = await run(rt, OpenCase(actor=person(rt, "alice"), tier="L1", title=f"Card payment stuck {hour}"))
        assert opened.case_id
        await run(rt, StartSwarm(actor=person(rt, "alice"), case_id=opened.case_id, skills=["payments"]))
        swarm = await rt.store.get_record(Swarm, opened.case_id)
        assert swarm is not None
        invited.append(swarm.invitations[0].person)
    # first: Ben (name order); a day later: Cleo (Ben was asked yesterday); 7.5 days after the first,
    # Ben's invitation has left the 7-day window but Cleo's has not, so Ben again
    assert invited == ["ben", "cleo", "ben"]


async def test_a_skill_left_out_by_the_experts_cap_is_explained_in_the_thread_and_to_the_lead(rt: Runtime) -> None:
    opened = await run(rt, OpenCase(actor=person(rt, "alice"), tier="L1", title="Card payment flagged"))
    reply = await run(rt, StartSwarm(actor=person(rt, "alice"), case_id=str(opened.case_id),
                                     skills=["payments", "compliance"], experts=1))
    assert reply.text == "Swarm started on ESC-1001; invited Ben Brooks."
    swarm = await rt.store.get_record(Swarm, "ESC-1001")
    assert swarm is not None and swarm.lead == "alice" and swarm.members == ["alice"]  # L1 has no rotation
    slack = await posted(rt)
    (said,) = [m for m in slack if m.address.thread == "swarm:ESC-1001" and m.notice.title.startswith("Nobody")]
    assert said.notice.title == "Nobody left for compliance"
    assert "compliance: not invited: the swarm already invites 1 (swarm.experts)" in said.notice.text
    assert any(m.address.user == "U0ALICE" and "nobody left for compliance" in m.notice.title for m in slack)


def test_swarm_skills_nobody_has_stop_the_config_with_a_clear_error() -> None:
    text = EXAMPLE_CONFIG.read_text().replace("  experts: 3", "  experts: 3\n  skills: {outage: [databse]}")
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert "swarm.skills.outage[0]: nobody has the skill 'databse'" in str(err.value)
    assert parse_config(EXAMPLE_CONFIG.read_text()).swarm.invite_timeout.total_seconds() == 600
