"""Opening a case is the hot path: two Redis round trips, caches that never serve stale state.

What a new case is checked against (active incidents, published articles) is cached per process
and validated by the revisions that come back with the new case id; a commit that writes an
incident or an article bumps its kind's revision, so another process's change is seen at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection

from bot.clock import FakeClock
from bot.commands import DeclareIncident, OpenCase
from bot.config import Config
from bot.incidents import Incident
from bot.redis_server import RedisHandle
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from tests.workflows.helpers import person, run

SENT = [0]  # sends so far, on every counted connection


class CountingConnection(Connection):
    """A real connection that counts what it sends: one send is one round trip (a pipeline too)."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        SENT[0] += 1
        await super().send_packed_command(command, check_health)


class CountingSocketConnection(UnixDomainSocketConnection):
    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        SENT[0] += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counted(example_config: Config, redis_location: dict[str, Any], clock: FakeClock,
                  prefix: str, redis_client: aioredis.Redis) -> AsyncIterator[Runtime]:
    """A second runtime on the same keys (another process, as far as Redis can tell), counted."""
    if redis_location.get("cluster"):
        pytest.skip("counts round trips on a plain Redis connection")
    from workflows import HANDLERS

    if "url" in redis_location:
        client = aioredis.Redis.from_url(redis_location["url"], connection_class=CountingConnection)
    else:
        client = aioredis.Redis(unix_socket_path=redis_location["unix_socket_path"])
        client.connection_pool.connection_class = CountingSocketConnection
    yield build_runtime(config=example_config, settings=Settings(), handlers=HANDLERS, clock=clock,
                        redis=RedisHandle(client, where="test"), prefix=prefix)
    await client.aclose()


async def round_trips(runtime: Runtime, command: OpenCase) -> tuple[int, str]:
    before = SENT[0]
    reply = await run(runtime, command)
    assert reply.ok, reply.text
    return SENT[0] - before, reply.text


async def test_opening_a_case_takes_two_round_trips_the_id_and_the_commit(counted: Runtime) -> None:
    alice = person(counted, "alice")
    await run(counted, OpenCase(actor=alice, title="warm up: loads the commit script", tier="L2"))
    trips, _ = await round_trips(counted, OpenCase(actor=alice, title="Login loop on SSO", tier="L2",
                                                   customer="globex", key="slack:trigger-1"))
    assert trips == 2
    # A retry of the same request is answered from the first round trip alone.
    trips, text = await round_trips(counted, OpenCase(actor=alice, title="Login loop on SSO", tier="L2",
                                                      customer="globex", key="slack:trigger-1"))
    assert trips == 1 and text.startswith("Opened ESC-")


async def test_an_incident_declared_by_another_process_is_seen_by_the_next_case(
        counted: Runtime, runtime: Runtime) -> None:
    alice = person(counted, "alice")
    await run(counted, OpenCase(actor=alice, title="Checkout slow for one user", tier="L2"))  # caches: none active
    declared = await run(runtime, DeclareIncident(actor=person(runtime, "erin"), title="Checkout is down",
                                                  component="checkout"))
    assert declared.ok, declared.text
    trips, text = await round_trips(counted, OpenCase(actor=alice, title="Checkout fails at payment", tier="L2"))
    assert "Linked to INC-1, an ongoing incident; customers are being updated." in text
    # The revision moved: the active incidents are read again (and the incident, to match the case).
    assert trips == 4
    await run(counted, OpenCase(actor=alice, title="Printer toner empty", tier="L2"))  # linking bumped it again
    trips, text = await round_trips(counted, OpenCase(actor=alice, title="VPN drops after sleep", tier="L2"))
    assert "Linked" not in text and trips == 3  # active incidents from cache; the incident itself to match
    incident = await counted.store.get_record(Incident, "INC-1")
    assert incident is not None and len(incident.cases) == 2  # the one open at declare time, and the new one


async def test_every_commit_that_writes_an_incident_bumps_its_revision(runtime: Runtime) -> None:
    assert await runtime.store.revision(Incident.kind) == "0"
    await run(runtime, DeclareIncident(actor=person(runtime, "erin"), title="Checkout is down", component="checkout"))
    first = int(await runtime.store.revision(Incident.kind))
    await run(runtime, OpenCase(actor=person(runtime, "alice"), title="checkout broken", tier="L2"))  # links it
    assert int(await runtime.store.revision(Incident.kind)) == first + 1
    assert await runtime.store.revision("case") == "0"  # cases are not cached anywhere: no revision kept
