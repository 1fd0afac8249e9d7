"""Private cases stay private: one access rule for every read and every action (bot.access).

The private case is the issue's own example: a billing sev2 for Globex, routed to L2's private
channel. Dev (an L3 engineer) has nothing to do with it: every verb he tries gets the same
refusal and changes nothing. The same verbs work for insiders, and for anyone on a public case.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.access import insiders, may_access
from bot.commands import (
    AcknowledgeCase,
    AddWatcher,
    ClaimCase,
    Command,
    DeescalateCase,
    EscalateCase,
    HandOffCase,
    OpenCase,
    ReopenCase,
    ResolveCase,
    SetWaiting,
    ShowCase,
)
from bot.model import SYSTEM, Actor
from bot.runtime import Runtime
from tests.workflows.helpers import person, posted, run

REFUSAL = "You don't have access to ESC-1001."
CASE = "ESC-1001"

# Each verb, as a command for an actor; `setup` brings the case into a state where the verb applies.
VERBS: dict[str, Callable[[Actor], Command]] = {
    "show": lambda a: ShowCase(actor=a, case_id=CASE),
    "watch": lambda a: AddWatcher(actor=a, case_id=CASE, person=a.person or "dev"),
    "ack": lambda a: AcknowledgeCase(actor=a, case_id=CASE),
    "claim": lambda a: ClaimCase(actor=a, case_id=CASE),
    "handoff": lambda a: HandOffCase(actor=a, case_id=CASE, to_person="cleo"),
    "resolve": lambda a: ResolveCase(actor=a, case_id=CASE, resolution="refunded"),
    "reopen": lambda a: ReopenCase(actor=a, case_id=CASE, reason="came back"),
    "escalate": lambda a: EscalateCase(actor=a, case_id=CASE, to_tier="L3", reason="needs a fix"),
    "deescalate": lambda a: DeescalateCase(actor=a, case_id=CASE, to_tier="L1", reason="simple after all"),
    "wait": lambda a: SetWaiting(actor=a, case_id=CASE, on="customer"),
    "resume": lambda a: SetWaiting(actor=a, case_id=CASE, on="none"),
}


async def open_private(runtime: Runtime) -> None:
    reply = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Charged twice", severity="sev2",
                                        customer="globex", category="billing"))
    assert reply.ok
    case = await runtime.store.get_case(CASE)
    assert case is not None and case.private and case.tier == "L2"


async def open_public(runtime: Runtime) -> None:
    reply = await run(runtime, OpenCase(actor=person(runtime, "alice"), title="Checkout slow", tier="L2",
                                        severity="sev3"))
    assert reply.ok
    case = await runtime.store.get_case(CASE)
    assert case is not None and not case.private


async def prepare(runtime: Runtime, verb: str) -> None:
    """Put the case where `verb` makes sense (as an insider, the manager Gus)."""
    gus = person(runtime, "gus")
    if verb == "reopen":
        await run(runtime, ResolveCase(actor=gus, case_id=CASE, resolution="refunded"))
    elif verb == "resume":
        await run(runtime, SetWaiting(actor=gus, case_id=CASE, on="customer"))


async def snapshot(runtime: Runtime) -> tuple[int, int, int]:
    case = await runtime.store.get_case(CASE)
    assert case is not None
    return case.version, len(await runtime.store.timeline(CASE)), len(await posted(runtime))


@pytest.mark.parametrize("verb", list(VERBS))
async def test_an_outsider_gets_the_same_refusal_for_every_verb_and_nothing_changes(
        runtime: Runtime, verb: str) -> None:
    await open_private(runtime)
    await prepare(runtime, verb)
    before = await snapshot(runtime)
    reply = await run(runtime, VERBS[verb](person(runtime, "dev")))
    assert not reply.ok and reply.text == REFUSAL
    assert reply.title is None and not reply.fields and "Charged" not in reply.text
    assert await snapshot(runtime) == before


@pytest.mark.parametrize("verb", list(VERBS))
async def test_an_insider_may_use_every_verb_on_a_private_case(runtime: Runtime, verb: str) -> None:
    await open_private(runtime)
    await prepare(runtime, verb)
    reply = await run(runtime, VERBS[verb](person(runtime, "cleo")))  # on the L2 rotation
    assert reply.ok, reply.text


@pytest.mark.parametrize("verb", list(VERBS))
async def test_anyone_may_use_every_verb_on_a_public_case(runtime: Runtime, verb: str) -> None:
    await open_public(runtime)
    await prepare(runtime, verb)
    reply = await run(runtime, VERBS[verb](person(runtime, "dev")))
    assert reply.ok, reply.text


async def test_nobody_can_make_themselves_a_watcher_of_a_private_case(runtime: Runtime) -> None:
    await open_private(runtime)
    reply = await run(runtime, AddWatcher(actor=person(runtime, "dev"), case_id=CASE, person="dev"))
    assert reply.text == REFUSAL
    case = await runtime.store.get_case(CASE)
    assert case is not None and "dev" not in case.watchers
    # ... and the resolution is not DM'd to him later.
    await run(runtime, ResolveCase(actor=person(runtime, "cleo"), case_id=CASE, resolution="refunded"))
    assert not [m for m in await posted(runtime) if m.address.user == "U0DEV"]


async def test_a_watcher_added_by_an_insider_gets_access(runtime: Runtime) -> None:
    await open_private(runtime)
    added = await run(runtime, AddWatcher(actor=person(runtime, "cleo"), case_id=CASE, person="dev"))
    assert added.ok
    shown = await run(runtime, ShowCase(actor=person(runtime, "dev"), case_id=CASE))
    assert shown.ok and "Charged twice" in (shown.title or "")


async def test_unknown_platform_users_are_outsiders_of_private_cases(runtime: Runtime) -> None:
    await open_private(runtime)
    stranger = Actor(platform="slack", user_id="U0NOBODY", name="Sam Stranger")
    reply = await run(runtime, AcknowledgeCase(actor=stranger, case_id=CASE))
    assert reply.text == REFUSAL


async def test_the_insiders_are_the_people_the_issue_names(runtime: Runtime) -> None:
    await open_private(runtime)
    case = await runtime.store.get_case(CASE)
    assert case is not None
    who = insiders(case, runtime.config)
    # opener; the L2 rotation and the person its policy names; the CSM told; managers; compliance.
    assert {"alice", "ben", "cleo", "gus", "hana", "fay"} <= who
    assert "dev" not in who and "erin" not in who
    assert may_access(case, SYSTEM, runtime.config)


async def test_escalating_makes_the_next_tier_insiders_too(runtime: Runtime) -> None:
    await open_private(runtime)
    await run(runtime, EscalateCase(actor=person(runtime, "cleo"), case_id=CASE, to_tier="L3", reason="bug"))
    reply = await run(runtime, ShowCase(actor=person(runtime, "dev"), case_id=CASE))
    assert reply.ok


async def test_timers_of_a_private_case_still_run(runtime: Runtime) -> None:
    await open_private(runtime)
    runtime.clock.advance(minutes=10)  # type: ignore[attr-defined]
    assert await runtime.scheduler.run_due() >= 1
    case = await runtime.store.get_case(CASE)
    assert case is not None and case.paging is not None and case.paging.step >= 1
