"""Crisis mode: declare, roles, linked cases, cadence, what customers read, resolve and the report."""

from __future__ import annotations

import base64
from datetime import timedelta

from bot.commands import (
    AddNote,
    AssignRole,
    DeclareIncident,
    LinkCases,
    ListIncidents,
    OpenCase,
    PostUpdate,
    ResolveIncident,
    ShowReport,
    UnlinkCase,
    UpdateForm,
)
from bot.incidents import Incident, IncidentStatus
from bot.messages import OutboxMessage
from bot.model import CaseStatus
from bot.runtime import Runtime
from tests.workflows.helpers import person, posted, run
from workflows.crisis import APOLOGY, active_ids
from workflows.grammar import action_command, parse


async def declare(runtime: Runtime, text: str = "sev1 component:checkout Checkout is down",
                  who: str = "erin") -> str:
    command = parse(f"declare {text}", verb="crisis", actor=person(runtime, who), config=runtime.config)
    assert isinstance(command, DeclareIncident), command
    reply = await run(runtime, command)
    assert reply.ok, reply.text
    assert reply.case_id
    return reply.case_id


async def incident(runtime: Runtime, incident_id: str = "INC-1") -> Incident:
    found = await runtime.store.get_record(Incident, incident_id)
    assert found is not None
    return found


async def open_case(runtime: Runtime, title: str, **kw: str) -> str:
    reply = await run(runtime, OpenCase(actor=person(runtime, "alice"), title=title, **kw))  # type: ignore[arg-type]
    assert reply.ok and reply.case_id, reply.text
    return reply.case_id


def customer_posts(messages: list[OutboxMessage], channel: str) -> list[OutboxMessage]:
    return [m for m in messages if m.address.channel == channel and not m.address.thread]


async def test_only_incident_commanders_may_declare_and_a_refusal_changes_nothing(runtime: Runtime) -> None:
    reply = await run(runtime, DeclareIncident(actor=person(runtime, "alice"), title="Checkout is down"))
    assert not reply.ok and "incident commanders" in reply.text
    assert await active_ids(runtime.store) == [] and await posted(runtime) == []
    # gus is in crisis.commanders; erin only has the role incident_commander: both may declare.
    assert (await run(runtime, DeclareIncident(actor=person(runtime, "erin"), title="A"))).ok
    assert (await run(runtime, DeclareIncident(actor=person(runtime, "gus"), title="B"))).ok
    assert await active_ids(runtime.store) == ["INC-1", "INC-2"]
    listed = await run(runtime, ListIncidents(actor=person(runtime, "alice")))
    assert "INC-1" in listed.text and "INC-2" in listed.text


async def test_declaring_links_matching_open_cases_and_tells_enterprise_customers_and_their_csm_first(
        runtime: Runtime) -> None:
    matching = await open_case(runtime, "Checkout fails with a 500", customer="globex", severity="sev2")
    other = await open_case(runtime, "Password reset mail is slow")
    named = await open_case(runtime, "Invoices look odd", customer="initech")
    inc_id = await declare(runtime, 'sev1 component:checkout customers:initech keywords:"payment page" Checkout down')
    inc = await incident(runtime, inc_id)
    assert sorted(inc.cases) == sorted([matching, named]) and inc.version == 1
    assert (await runtime.store.get_case(matching)).incident == inc_id  # type: ignore[union-attr]
    assert (await runtime.store.get_case(other)).incident is None  # type: ignore[union-attr]
    slack = await posted(runtime, "slack")
    card = [m for m in slack if m.notice.kind == "card" and m.notice.case_id == matching][-1]
    assert any(f.label == "Incident" and inc_id in f.value for f in card.notice.fields)
    assert any(str(m.address.thread).startswith(f"case:{matching}:") and f"Part of incident {inc_id}" in m.notice.title
               for m in slack)
    globex = customer_posts(slack, "C0GLOBEXSHARED")
    assert len(globex) == 1 and APOLOGY in globex[0].notice.text and "checkout" in globex[0].notice.text
    initech = customer_posts(await posted(runtime, "teams"), "19:initech@thread.tacv2")
    assert len(initech) == 1 and APOLOGY in initech[0].notice.text
    assert sum(1 for m in slack if m.address.user == "U0HANA" and inc_id in m.notice.title) == 2
    assert any(m.address.channel == "C0STATUS" and "declared" in m.notice.title for m in slack)
    roots = [m for m in slack if m.address.thread == f"incident:{inc_id}" and m.notice.kind == "card"]
    assert roots and roots[0].address.channel == "C0STATUS"
    assert set(inc.told) == {"globex", "initech"}


async def test_a_new_case_that_matches_joins_the_incident_and_the_agent_is_told(runtime: Runtime) -> None:
    inc_id = await declare(runtime)
    reply = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Customer says checkout hangs",
                                        customer="globex"))
    assert f"Linked to {inc_id}, an ongoing incident; customers are being updated." in reply.text
    assert (await incident(runtime, inc_id)).cases == [reply.case_id]
    unrelated = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Login loop"))
    assert "ongoing incident" not in unrelated.text
    assert (await incident(runtime, inc_id)).cases == [reply.case_id]


async def test_the_cadence_reminds_the_communications_lead_when_due_and_pages_the_commander_at_150_percent(
        runtime: Runtime) -> None:
    inc_id = await declare(runtime)  # sev1: an update every 30 minutes
    await run(runtime, AssignRole(actor=person(runtime, "erin"), incident_id=inc_id, role="communications",
                                  person="hana"))
    runtime.clock.advance(minutes=29)
    await runtime.scheduler.run_due()
    thread = f"incident:{inc_id}"
    assert not any("due now" in m.notice.title for m in await posted(runtime))
    runtime.clock.advance(minutes=1)
    await runtime.scheduler.run_due()
    reminders = [m for m in await posted(runtime) if m.address.thread == thread and "due now" in m.notice.title]
    assert len(reminders) == 1 and [x.person for x in reminders[0].notice.mentions] == ["hana"]
    assert not [m for m in await posted(runtime) if m.notice.kind == "page" and m.address.user == "U0ERIN"]
    runtime.clock.advance(minutes=15)
    await runtime.scheduler.run_due()
    pages = [m for m in await posted(runtime) if m.notice.kind == "page" and m.address.user == "U0ERIN"]
    assert len(pages) == 1 and "overdue by 15 min" in pages[0].notice.title
    card = [m for m in await posted(runtime) if m.address.thread == thread and m.notice.kind == "card"][-1]
    assert any(f.value == "update overdue by 15 min" for f in card.notice.fields)
    # An update restarts the cadence: no reminder for the old one, a new one 30 minutes on.
    await run(runtime, PostUpdate(actor=person(runtime, "hana"), incident_id=inc_id, status="identified",
                                  text="A failover is running."))
    inc = await incident(runtime, inc_id)
    assert inc.updates[0].late_by == timedelta(minutes=15) and not inc.overdue_paged
    runtime.clock.advance(minutes=30)
    await runtime.scheduler.run_due()
    reminders = [m for m in await posted(runtime) if m.address.thread == thread and "due now" in m.notice.title]
    assert len(reminders) == 2


async def test_customers_read_only_the_status_and_scrubbed_text_never_notes_case_ids_or_staff_names(
        runtime: Runtime) -> None:
    case_id = await open_case(runtime, "Checkout spinner forever", customer="globex", severity="sev2")
    inc_id = await declare(runtime)
    await run(runtime, AddNote(actor=person(runtime, "erin"), incident_id=inc_id,
                               text="SECRET-NOTE db-2 root password rotated"))
    await run(runtime, PostUpdate(actor=person(runtime, "erin"), incident_id=inc_id, status="identified",
                                  text=f"Ben Brooks traced {case_id} to the payment gateway; mail "
                                       "jane@shop.example or call +49 170 1234567 for a refund."))
    globex = customer_posts(await posted(runtime), "C0GLOBEXSHARED")
    assert len(globex) == 2  # the first notice at declare, then the update
    text = "\n".join(m.notice.title + "\n" + m.notice.text + " ".join(f.value for f in m.notice.fields)
                     for m in globex)
    for secret in ("SECRET-NOTE", case_id, "Ben", "Brooks", "Erin", "jane@", "170 1234567", inc_id):
        assert secret not in text, secret
    assert "Status: Identified" in globex[1].notice.text and "payment gateway" in globex[1].notice.text
    assert APOLOGY in globex[0].notice.text and APOLOGY not in globex[1].notice.text
    assert all(m.notice.case_id is None and m.notice.bulk for m in globex)
    # The agents answer from the update in their case thread; the note stays in the incident space.
    slack = await posted(runtime)
    assert any(str(m.address.thread).startswith(f"case:{case_id}:") and "update · Identified" in m.notice.title
               for m in slack)
    assert all("SECRET-NOTE" not in m.notice.text for m in slack if m.address.thread != f"incident:{inc_id}")


async def test_a_role_is_handed_over_and_each_new_holder_is_paged(runtime: Runtime) -> None:
    inc_id = await declare(runtime)
    assert (await run(runtime, AssignRole(actor=person(runtime, "erin"), incident_id=inc_id,
                                          role="communications", person="ben"))).ok
    handed = await run(runtime, AssignRole(actor=person(runtime, "ben"), incident_id=inc_id,
                                           role="communications", person="hana"))
    assert handed.ok and "handed over by Ben Brooks" in handed.text
    refused = await run(runtime, AssignRole(actor=person(runtime, "alice"), incident_id=inc_id,
                                            role="communications", person="alice"))
    assert not refused.ok
    inc = await incident(runtime, inc_id)
    assert inc.roles["communications"] == "hana"
    pages = [m.address.user for m in await posted(runtime) if m.notice.kind == "page"]
    assert pages.count("U0BEN") == 1 and pages.count("U0HANA") == 1
    card = [m for m in await posted(runtime) if m.address.thread == f"incident:{inc_id}"
            and m.notice.kind == "card"][-1]
    assert any("communications: Hana Ito" in f.value for f in card.notice.fields)
    timeline = await runtime.store.timeline(inc_id, "incident")
    assert any("handed over by Ben Brooks" in e.detail for e in timeline)
    # Taking an unheld role yourself needs no commander.
    assert (await run(runtime, AssignRole(actor=person(runtime, "alice"), incident_id=inc_id, role="scribe",
                                          person="alice"))).ok


async def test_resolving_with_resolve_cases_resolves_every_linked_case(runtime: Runtime) -> None:
    first = await open_case(runtime, "Checkout broken", customer="globex", severity="sev2")
    second = await open_case(runtime, "checkout times out")
    inc_id = await declare(runtime)
    reply = await run(runtime, ResolveIncident(actor=person(runtime, "erin"), incident_id=inc_id,
                                               text="Checkout works again.", resolve_cases=True))
    assert reply.ok and "Resolved 2 linked cases" in reply.text
    for case_id in (first, second):
        case = await runtime.store.get_case(case_id)
        assert case and case.status == CaseStatus.RESOLVED and inc_id in (case.resolution or "")
    inc = await incident(runtime, inc_id)
    assert inc.status == IncidentStatus.RESOLVED and await active_ids(runtime.store) == []
    slack = await posted(runtime)
    assert any(m.address.thread == f"incident:{inc_id}" and "Post-incident report" in m.notice.title for m in slack)
    assert "Status: Resolved" in customer_posts(slack, "C0GLOBEXSHARED")[-1].notice.text
    again = await run(runtime, PostUpdate(actor=person(runtime, "erin"), incident_id=inc_id, status="monitoring",
                                          text="more"))
    assert not again.ok and "resolved" in again.text


async def test_resolving_without_resolve_cases_asks_the_owners_and_leaves_the_cases_open(runtime: Runtime) -> None:
    case_id = await open_case(runtime, "Checkout broken", tier="L1")
    await run(runtime, LinkCases(actor=person(runtime, "erin"), incident_id=await declare(runtime, "sev2 Outage"),
                                 case_ids=[case_id]))
    from bot.commands import ClaimCase
    await run(runtime, ClaimCase(actor=person(runtime, "ben"), case_id=case_id))
    reply = await run(runtime, ResolveIncident(actor=person(runtime, "erin"), incident_id="INC-1",
                                               text="Fixed."))
    assert "Asked the owners of 1 case" in reply.text
    case = await runtime.store.get_case(case_id)
    assert case and case.is_open
    asks = [m for m in await posted(runtime) if m.address.user == "U0BEN" and "be resolved" in m.notice.title]
    assert len(asks) == 1 and f"/case {case_id} resolve" in asks[0].notice.text


async def test_the_report_has_the_durations_the_punctuality_and_the_cases_by_tier_and_customer(
        runtime: Runtime) -> None:
    case_id = await open_case(runtime, "Checkout broken", customer="globex", severity="sev2")
    runtime.clock.advance(minutes=10)
    inc_id = await declare(runtime)
    runtime.clock.advance(minutes=5)
    await run(runtime, PostUpdate(actor=person(runtime, "erin"), incident_id=inc_id, status="identified",
                                  text="Found it."))
    runtime.clock.advance(minutes=40)  # 10 minutes late: the cadence is 30 minutes
    await run(runtime, PostUpdate(actor=person(runtime, "erin"), incident_id=inc_id, status="monitoring",
                                  text="Fix deployed."))
    runtime.clock.advance(minutes=20)
    await run(runtime, ResolveIncident(actor=person(runtime, "erin"), incident_id=inc_id, text="All good."))
    report = (await run(runtime, ShowReport(actor=person(runtime, "alice"), incident_id=inc_id))).text
    assert "Time to declare (from the first linked case): 10m" in report
    assert "Time to first update: 5m" in report
    assert "Time to resolve: 1h 5m" in report
    assert "2 of 3 updates on time" in report and "10m late" in report
    assert "L2 Specialists: 1" in report and "Globex Corp (enterprise): 1" in report
    assert "Globex Corp (enterprise): first told" in report
    assert "declared" in report and "resolved" in report
    del case_id


async def test_linking_500_cases_is_one_atomic_commit(runtime: Runtime) -> None:
    ids = [await open_case(runtime, f"Checkout error number {i}", tier="L1") for i in range(500)]
    versions = {c: (await runtime.store.get_case(c)).version for c in ids}  # type: ignore[union-attr]
    inc_id = await declare(runtime)
    inc = await incident(runtime, inc_id)
    # Created and linked to 500 cases at version 1: the incident and the cases were written together.
    assert inc.version == 1 and len(inc.cases) == 500
    for case_id in ids:
        case = await runtime.store.get_case(case_id)
        assert case and case.incident == inc_id and case.version == versions[case_id] + 1


async def test_bad_input_gets_a_caller_only_answer_and_changes_nothing(runtime: Runtime) -> None:
    private = await open_case(runtime, "Refund", category="billing", severity="sev2")  # private L2
    inc_id = await declare(runtime, "sev2 Payments degraded", who="gus")
    before = await incident(runtime, inc_id)
    sent = len(await posted(runtime))
    erin = person(runtime, "erin")
    for command in (
        PostUpdate(actor=erin, incident_id=inc_id, status="identified", text="   "),
        PostUpdate(actor=erin, incident_id=inc_id, status="fixing", text="Soon"),
        LinkCases(actor=erin, incident_id=inc_id, case_ids=[private]),
        UnlinkCase(actor=erin, incident_id=inc_id, case_id=private),
        AssignRole(actor=erin, incident_id=inc_id, role="astronaut", person="ben"),
    ):
        reply = await run(runtime, command)
        assert not reply.ok, command
    assert (await incident(runtime, inc_id)).version == before.version
    assert len(await posted(runtime)) == sent
    assert (await runtime.store.get_case(private)).incident is None  # type: ignore[union-attr]
    usage = parse("INC-1 update fixing it", verb="crisis", actor=erin, config=runtime.config)
    assert not isinstance(usage, DeclareIncident) and "Unknown status 'fixing'" in getattr(usage, "text", "")


def test_the_crisis_grammar_reads_declare_options_and_the_resolve_flag(example_config: object) -> None:
    from bot.config import Config
    from bot.model import Actor
    assert isinstance(example_config, Config)
    actor = Actor(person="erin", name="Erin")
    cmd = parse('declare sev1 component:Checkout customers:globex,initech keywords:"payment page,cart" '
                "Checkout is down", verb="crisis", actor=actor, config=example_config)
    assert isinstance(cmd, DeclareIncident)
    assert (cmd.severity, cmd.component, cmd.customers, cmd.keywords, cmd.title) == (
        "sev1", "checkout", ["globex", "initech"], ["payment page", "cart"], "Checkout is down")
    res = parse("INC-3 resolve All fine --resolve-cases", verb="crisis", actor=actor, config=example_config)
    assert isinstance(res, ResolveIncident) and res.resolve_cases and res.text == "All fine"
    role = parse("inc-3 role communications me", verb="crisis", actor=actor, config=example_config)
    assert isinstance(role, AssignRole) and role.person == "erin" and role.incident_id == "INC-3"


def test_public_text_drops_staff_names_but_keeps_ordinary_words(example_config: object) -> None:
    from bot.config import Config
    from workflows.crisis import public_text
    assert isinstance(example_config, Config)
    text = public_text("Dev Patel and erin ortiz moved the dev environment; Gus saw ESC-1042 grant errors",
                       example_config)
    assert text == "our team and our team moved the dev environment; our team saw grant errors"


def test_the_incident_card_buttons_become_crisis_commands() -> None:
    from bot.messages import Reply
    from bot.model import Actor
    from workflows.grammar import action_command
    gus = Actor(person="gus", name="Gus")
    update = action_command("incident_update", "INC-2", actor=gus, text="monitoring Fix is out")
    assert isinstance(update, PostUpdate) and (update.status, update.text) == ("monitoring", "Fix is out")
    plain = action_command("incident_update", "INC-2", actor=gus, text="Still looking")
    assert isinstance(plain, PostUpdate) and plain.status is None and plain.text == "Still looking"
    link = action_command("incident_link", "INC-2", actor=gus, text="ESC-1001, esc-1002")
    assert isinstance(link, LinkCases) and link.case_ids == ["ESC-1001", "ESC-1002"]
    role = action_command("incident_role", "INC-2", actor=gus, text="scribe")
    assert isinstance(role, AssignRole) and (role.role, role.person) == ("scribe", "gus")
    done = action_command("incident_resolve", "INC-2", actor=gus, text="Fixed --resolve-cases")
    assert isinstance(done, ResolveIncident) and done.resolve_cases and done.text == "Fixed"
    assert isinstance(action_command("incident_link", "INC-2", actor=gus, text="soon"), Reply)


async def next_update(runtime: Runtime, inc_id: str) -> tuple[str, int | None]:
    """The incident card's "Next update" as last queued, and the card version it was queued with."""
    card = [m for m in await posted(runtime) if m.address.thread == f"incident:{inc_id}"
            and m.notice.kind == "card"][-1]
    (value,) = [f.value for f in card.notice.fields if f.label == "Next update"]
    return value, card.notice.case_version


async def test_the_card_says_overdue_by_n_min_from_the_moment_the_update_falls_due_until_one_is_posted(
        runtime: Runtime) -> None:
    inc_id = await declare(runtime)  # sev1: an update every 30 minutes
    runtime.clock.advance(minutes=29)
    await runtime.scheduler.run_due()
    value, version = await next_update(runtime, inc_id)
    assert value.startswith("due by ") and "overdue" not in value
    # 100%: the reminder fires and the card (a new version of the incident) says the update is overdue.
    runtime.clock.advance(minutes=1)
    await runtime.scheduler.run_due()
    value, due_version = await next_update(runtime, inc_id)
    assert value == "update overdue by 0 min" and due_version == (await incident(runtime, inc_id)).version
    assert version is not None and due_version is not None and due_version > version
    # The figure is kept current while nobody updates: 5 minutes on, then at the 150% page.
    runtime.clock.advance(minutes=5)
    await runtime.scheduler.run_due()
    assert (await next_update(runtime, inc_id))[0] == "update overdue by 5 min"
    runtime.clock.advance(minutes=7)
    await runtime.scheduler.run_due()
    assert (await next_update(runtime, inc_id))[0] == "update overdue by 12 min"
    runtime.clock.advance(minutes=3)
    await runtime.scheduler.run_due()
    assert (await next_update(runtime, inc_id))[0] == "update overdue by 15 min"
    reminders = [m for m in await posted(runtime) if "due now" in m.notice.title]
    assert len(reminders) == 1  # refreshing the card reminds nobody again
    # An update: the field is back to the next due time, and no refresh of the old one comes later.
    await run(runtime, PostUpdate(actor=person(runtime, "erin"), incident_id=inc_id, status="identified",
                                  text="A failover is running."))
    value, _ = await next_update(runtime, inc_id)
    assert value.startswith("due by ") and "overdue" not in value
    cards = len([m for m in await posted(runtime) if m.notice.kind == "card"])
    runtime.clock.advance(minutes=29)
    await runtime.scheduler.run_due()
    assert len([m for m in await posted(runtime) if m.notice.kind == "card"]) == cards
    # Resolving stops the cadence: nothing fires after it.
    await run(runtime, ResolveIncident(actor=person(runtime, "erin"), incident_id=inc_id, text="Fixed."))
    assert not [t for t, _ in await runtime.scheduler.pending() if t.startswith(f"{inc_id}:")]


async def test_the_post_update_button_asks_the_core_for_its_form_prefilled_with_the_last_update(
        runtime: Runtime) -> None:
    inc_id = await declare(runtime)
    erin = person(runtime, "erin")
    press = action_command("incident_update", inc_id, actor=erin, text=None)
    assert isinstance(press, UpdateForm) and press.incident_id == inc_id
    first = await run(runtime, press)
    assert first.ok and first.form == "incident_update" and first.case_id == inc_id
    assert first.prefill == {"status": "investigating"}  # no update yet: the current status, no text
    await run(runtime, PostUpdate(actor=erin, incident_id=inc_id, status="identified",
                                  text="The payment gateway rejects EU cards."))
    again = await run(runtime, UpdateForm(actor=erin, incident_id=inc_id))
    assert again.prefill == {"status": "identified", "text": "The payment gateway rejects EU cards."}
    # The submitted form (status chosen apart from the text) is the update.
    sent = action_command("incident_update", inc_id, actor=erin, status="Monitoring",
                          text="monitoring errors are back to normal")
    assert isinstance(sent, PostUpdate)
    assert (sent.status, sent.text) == ("monitoring", "monitoring errors are back to normal")
    bad = action_command("incident_update", inc_id, actor=erin, status="fixing", text="Soon")
    assert not isinstance(bad, PostUpdate) and "Unknown status 'fixing'" in bad.text
    empty = action_command("incident_update", inc_id, actor=erin, status="identified", text="  ")
    assert not isinstance(empty, PostUpdate) and not empty.ok
    await run(runtime, ResolveIncident(actor=erin, incident_id=inc_id, text="Fixed."))
    refused = await run(runtime, UpdateForm(actor=erin, incident_id=inc_id))
    assert not refused.ok and not refused.form and "resolved" in refused.text


def uploads(messages: list[OutboxMessage]) -> list[OutboxMessage]:
    return [m for m in messages if m.notice.kind == "upload"]


async def test_the_report_is_uploaded_as_a_scrubbed_markdown_file_where_files_go_at_resolve_and_on_request(
        runtime: Runtime) -> None:
    await open_case(runtime, "Checkout broken", customer="globex", severity="sev2")
    runtime.clock.advance(minutes=10)
    inc_id = await declare(runtime)
    await run(runtime, AddNote(actor=person(runtime, "erin"), incident_id=inc_id,
                               text="vendor contact is jane@shop.example"))
    runtime.clock.advance(minutes=5)
    await run(runtime, PostUpdate(actor=person(runtime, "erin"), incident_id=inc_id, status="identified",
                                  text="Found it."))
    runtime.clock.advance(minutes=20)
    await run(runtime, ResolveIncident(actor=person(runtime, "erin"), incident_id=inc_id, text="All good."))
    (upload,) = uploads(await posted(runtime, "slack"))
    # Not posted yet, the incident space has no channel of its own: the status channel.
    assert upload.address.channel == "C0STATUS" and not upload.address.thread
    assert upload.notice.file is not None and upload.notice.file.filename == f"{inc_id}-report.md"
    assert upload.notice.file.mime_type == "text/markdown"
    body = base64.b64decode(upload.notice.file.data_b64).decode()
    assert body.startswith(f"# {inc_id} · Checkout is down\n")
    for line in ("## Durations", "- Time to declare (from the first linked case): 10m", "- Time to first update: 5m",
                 "- Time to resolve: 25m", "## Timeline", "Erin Ortiz: declared (sev1: Checkout is down)",
                 "Erin Ortiz: resolved (All good.)"):
        assert line in body, line
    assert "jane@shop.example" not in body and "vendor contact is" in body
    text = [m for m in await posted(runtime) if "Post-incident report" in m.notice.title and m.notice.kind == "reply"]
    assert len(text) == 1  # the report text in the incident space, as before
    assert uploads(await posted(runtime, "teams")) == []  # Teams takes only images: the text is enough there
    # /crisis INC-n report shows it to the caller and uploads it again (once per request).
    asked = ShowReport(actor=person(runtime, "alice"), incident_id=inc_id, key="report-1")
    reply = await run(runtime, asked)
    assert reply.ok and reply.title == f"Report: {inc_id}" and "Time to resolve: 25m" in reply.text
    await run(runtime, asked)
    again = uploads(await posted(runtime, "slack"))
    assert len(again) == 2 and again[1].notice.file is not None
    later = base64.b64decode(again[1].notice.file.data_b64).decode()
    assert later.startswith(body.rstrip("\n")) and "- Time to resolve: 25m" in later  # plus what came after
