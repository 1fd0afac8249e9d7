"""Swarm test helpers: the example config plus `swarm.skills`, and an outage that starts a swarm."""

from __future__ import annotations

from bot.commands import OpenCase
from bot.config import Config, SwarmSettings
from bot.runtime import Runtime
from bot.swarms import Swarm
from tests.workflows.helpers import person, run

SKILLS = {"checkout": ["payments", "api"], "down": ["database"], "vpn": ["network"]}


def swarm_config(config: Config) -> Config:
    """The example config plus a `swarm.skills` map (the example has none)."""
    settings = SwarmSettings(channel=config.swarm.channel, experts=3, skills=SKILLS)
    return config.model_copy(update={"swarm": settings})


async def outage(rt: Runtime) -> Swarm:
    """Alice escalates an outage: the `swarm: true` rule starts a swarm right after the case opens.

    At the test clock (Monday 09:00 UTC) Erin holds the L3 rotation and Dev (New York, 09-17) is off.
    """
    reply = await run(rt, OpenCase(actor=person(rt, "alice"), title="Checkout down for all users"))
    assert reply.ok and reply.case_id == "ESC-1001", reply.text
    await rt.scheduler.run_due()
    swarm = await rt.store.get_record(Swarm, "ESC-1001")
    assert swarm is not None
    return swarm
