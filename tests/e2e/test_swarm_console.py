"""Swarming end to end in the console: an outage swarm from the escalation to the knowledge it leaves."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_console import console

SWARM_CONFIG = Path(__file__).with_name("swarm.yaml")

SCENARIO = """\
/escalate Checkout down for all users at globex
:as ben
/swarm ESC-1001 join
:as dev
/swarm ESC-1001 decline
:advance 11m
:as gus
/swarm ESC-1001 join
/swarm ESC-1001 join
:as ben
/swarm ESC-1001 end restarted the payment gateway connection pool, confirmed with jane@shop.example and \
card 4111 1111 1111 1111 cause: gateway connection pool exhausted environment: EU checkout
/kb KB-1
:as erin
/kb KB-1 publish
:as alice
/escalate checkout payment gateway connection pool exhausted again
"""


def test_an_outage_swarm_runs_from_escalation_to_a_suggested_article_in_the_console(tmp_path: Path) -> None:
    out = console(SCENARIO, as_="alice", data_dir=tmp_path / "data", config=SWARM_CONFIG)
    # the outage rule starts a swarm: Erin (on call) is a member, one expert per missing skill is invited
    assert "[slack C0SWARM · thread swarm:ESC-1001] ▣ card Swarm on ESC-1001" in out
    assert "Ben Brooks: payments; no open cases\n" in out and "Dev Patel: network; no open cases" in out
    assert "[slack DM U0DEV] ✉ Join the swarm on ESC-1001?" in out and "[Join] [Decline]" in out
    assert "→ Open the swarm thread: thread swarm:ESC-1001" in out  # the case thread links to the swarm thread
    # Ben joins; Dev declines and Fay is asked instead; Fay does not answer in 10m and Gus is asked
    assert "↳ Ben Brooks joined" in out and "↳ Dev Patel declined" in out
    assert "[slack DM U0FAY] ✉ Join the swarm on ESC-1001?" in out
    assert "↳ Fay Fischer did not answer in 10m" in out and "[slack DM U0GUS] ✉ Join the swarm on ESC-1001?" in out
    assert "Covered: payments, network, database | Missing: nothing" in out
    assert "You are already in the swarm on ESC-1001." in out  # joining twice: only the caller hears
    # the swarm ends: the case is resolved, members thanked, a scrubbed draft posted for review
    assert "The swarm on ESC-1001 ended and the case is resolved; KB-1 drafted for review." in out
    assert "Thank you, Erin Ortiz, Ben Brooks, Gus Grant!" in out
    draft = out.split("Ben Brooks> /kb KB-1")[1].split("you are Erin Ortiz")[0]
    assert "Issue: Checkout down for all users at the customer" in draft
    assert "Cause: gateway connection pool exhausted" in draft and "Environment: EU checkout" in draft
    for secret in ("jane@shop.example", "4111", "globex"):
        assert secret not in draft.lower()
    # once published, a later escalation with similar words is pointed at it
    assert "KB-1 published." in out
    later = out.split("Alice Adams> /escalate checkout payment gateway")[1]
    assert "KB-1 may solve this: Checkout down for all users at the customer" in later
