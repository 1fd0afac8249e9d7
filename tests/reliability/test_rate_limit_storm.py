"""A 429 storm is Slack asking us to wait: once it passes, every message is delivered once, none dead.

The storm itself runs in the background from the first reliability test on (tests/reliability/storm.py):
`escalator serve` opens 40 cases, and Slack answers every chat.postMessage to the first tier's channel
with a 429 (Retry-After 1) for 60 s. This test checks what serve made of it.
"""

from __future__ import annotations

import pytest

from tests.reliability.conftest import STORM_S
from tests.reliability.storm import CASES, CHANNEL, BackgroundStorm
from tests.reliability.traffic import (
    NEW_ENGINE,
    cards,
    dead_letters,
    missing,
    page_steps,
    posts,
    until,
)


@pytest.mark.skipif(not NEW_ENGINE, reason="needs the new delivery engine (bot/pacing.py): the old one spends "
                                           "an attempt on every 429 and dead-letters the card after 6")
async def test_a_60_s_429_storm_on_the_tier_channel_ends_with_every_message_delivered_once_and_none_dead(
        storm: BackgroundStorm) -> None:
    api, opened = storm.api, storm.opened
    assert len(opened) == CASES
    await storm.wait_healed()
    limited = [c for c in api.calls_to("chat.postMessage", ok_only=False) if c.status == 429]
    assert limited and all(c.args.get("channel") == CHANNEL for c in limited), "the storm hit the tier channel"
    at = [c.at for c in limited if isinstance(c.at, float)]  # the fake's monotonic clock
    lasted = at[-1] - at[0]
    assert lasted >= STORM_S - 2, f"Slack said 429 for {lasted:.0f} s only"
    await until(lambda: set(cards(api)) >= opened, "every card delivered after the storm", limit_s=60,
                detail=lambda: missing(api, opened))
    await until(lambda: len(page_steps(api)) >= len(opened), "every page in its case thread", limit_s=60)
    assert await dead_letters(storm.port) == 0
    assert all(n == 1 for n in cards(api).values()), cards(api)
    assert all(n == 1 for n in page_steps(api).values()), page_steps(api)
    assert all(n == 1 for n in posts(api).values()), {k: n for k, n in posts(api).items() if n > 1}
