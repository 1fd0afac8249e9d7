"""Crisis fan-out: one status update to 500 customer channels and 500 linked case threads, on Slack.

    .venv/bin/python bench/crisis_fanout.py [--cases 500] [--pace 0.01] [--retry-after 0.1] [--workers 1]

A generated config (500 customers, each with its own Slack channel; one tier channel holding the
500 case threads) runs on the real core: 500 cases are opened and delivered, an incident is
declared (linking all 500 in one commit), then ONE update is posted and the Slack delivery worker
(`runtime.worker(transport)`, `run_forever`) delivers it against the local recording Web API, which
answers 429 (Retry-After) to 10% of the update's posts. Slack's limits are scaled so the run takes
seconds: `--pace` is the per-channel gap (Slack: about 1 s), and the Slack delivery's workspace
budget (10 posts/s) and Tier 3 budget (chat.update, 50/min) are scaled by the same factor;
`--retry-after` is the 429 hold.

Printed: time to deliver the update against the rate-limit floor (the larger of: the busiest
channel's posts after its burst times the pace plus its 429 holds, and every post after the
workspace burst at the workspace rate: no deliverer can be faster), messages lost and doubled,
and the latency of a page (a role assignment) sent while the fan-out runs, commit to Slack. Redis
is REDIS_URL (default redis://127.0.0.1:6379/0) under a throwaway prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MARK = "BENCH-UPDATE"
GOALS = {"floor_ratio": 1.2, "page_s": 1.0}


def generated_config(cases: int) -> dict[str, Any]:
    """A config with `cases` customers, each with a customer-facing Slack channel."""
    return {
        "timezone": "UTC",
        "platforms": {"slack": {"workspace": "T0BENCH", "url": "https://bench.slack.com/"}},
        "people": {"boss": {"name": "Bo Boss", "slack": "U0BOSS", "roles": ["incident_commander"]},
                   "hana": {"name": "Hana Ito", "slack": "U0HANA"}},
        "tiers": [{"id": "L1", "name": "Frontline", "channels": {"slack": "C0L1"}}],
        "customers": {f"cust{i}": {"name": f"Customer {i}", "segment": "smb",
                                   "channels": {"slack": f"C0CUST{i:04d}"}} for i in range(cases)},
        "crisis": {"commanders": ["boss"], "update_every": {"sev1": "30m"},
                   "status_channels": {"slack": "C0STATUS"}},
    }


async def main(args: argparse.Namespace) -> None:
    import redis.asyncio as aioredis
    import structlog

    import adapters  # noqa: F401  (registers the platforms)
    from adapters.slack import delivery as slack_delivery
    from adapters.slack.delivery import SlackTransport, web_client
    from bot.commands import AssignRole, DeclareIncident, OpenCase, PostUpdate
    from bot.config import Config
    from bot.model import Actor
    from bot.redis_server import RedisHandle
    from bot.runtime import build_runtime
    from bot.settings import Settings
    from tests.fakes.slack_api import FakeSlackApi, _Failure
    from workflows import HANDLERS

    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    rng = random.Random(11)

    class FlakySlack(FakeSlackApi):
        """Answers 429 to a share of the update's posts (never to anything else)."""

        flaky = False

        def _take_failure(self, method: str, args: dict[str, Any]) -> _Failure | None:
            if self.flaky and method == "chat.postMessage" and MARK in str(args.get("blocks") or args.get("text")) \
                    and rng.random() < args_share:
                return _Failure(429, "ratelimited", retry_after, 1, None)
            return super()._take_failure(method, args)

    args_share, retry_after = args.share_429, args.retry_after
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(redis_url)
    config = Config.model_validate(generated_config(args.cases))
    runtime = build_runtime(config=config, settings=Settings(), handlers=HANDLERS,
                            redis=RedisHandle(client, where="bench"), prefix=prefix)
    boss = Actor(person="boss", platform="slack", user_id="U0BOSS", name="Bo Boss")
    try:
        async with FlakySlack() as api:
            def transport(pace: float) -> SlackTransport:
                """Slack's limits scaled by PACE_SECONDS / pace (the bucket budgets are module constants)."""
                scale = slack_delivery.PACE_SECONDS / pace
                slack_delivery.WORKSPACE_BUDGET = (WORKSPACE[0] * scale, WORKSPACE[1])
                slack_delivery.TIER_3 = (TIER_3[0] * scale, TIER_3[1])
                return SlackTransport(store=runtime.store, clock=runtime.clock, pace_s=pace,
                                      client=web_client(token="xoxb-bench", base_url=api.url),
                                      workspace_url=api.workspace_url)

            WORKSPACE, TIER_3 = slack_delivery.WORKSPACE_BUDGET, slack_delivery.TIER_3
            # Setup (practically unpaced): the cases and their threads, the incident linking all of them.
            started = time.perf_counter()
            for i in range(args.cases):
                await runtime.bus.handle(OpenCase(actor=boss, title=f"Checkout error {i}", tier="L1",
                                                  customer=f"cust{i}"))
            setup = runtime.worker(transport(1e-6))
            await setup.drain(rounds=10_000)
            t_link = time.perf_counter()
            reply = await runtime.bus.handle(DeclareIncident(actor=boss, title="Checkout is down",
                                                             component="checkout"))
            link_s = time.perf_counter() - t_link
            incident = reply.case_id or ""
            await setup.drain(rounds=10_000)
            print(f"setup: {args.cases} cases opened and delivered, incident declared in "
                  f"{time.perf_counter() - started:.1f} s (declare + linking {args.cases} cases in one "
                  f"commit: {link_s * 1000:.0f} ms; {reply.text.split('.')[1].strip()})")

            # The measured fan-out.
            api.calls.clear()
            api.flaky = True
            await runtime.bus.handle(PostUpdate(actor=boss, incident_id=incident, status="identified",
                                                text=f"{MARK}: the payment gateway rejects cards; a fix is coming."))
            expected = await runtime.outbox.pending("slack")
            stop = asyncio.Event()
            t0 = time.monotonic()
            workers = [asyncio.create_task(runtime.worker(transport(args.pace)).run_forever(stop))
                       for _ in range(args.workers)]

            async def page_midway() -> tuple[float, float]:
                while sum(1 for c in api.calls if c.ok and c.method == "chat.postMessage") < expected // 5:
                    await asyncio.sleep(0.005)
                sent = time.monotonic()
                await runtime.bus.handle(AssignRole(actor=boss, incident_id=incident, role="communications",
                                                    person="hana"))
                while not any(c.ok and c.args.get("channel") == "D0HANA" for c in api.calls):
                    await asyncio.sleep(0.002)
                arrived = next(c.at for c in api.calls if c.ok and c.args.get("channel") == "D0HANA")
                return sent - t0, float(arrived) - sent  # type: ignore[arg-type]

            page = asyncio.create_task(page_midway())
            while await runtime.outbox.pending("slack") > 0 or not page.done():
                await asyncio.sleep(0.01)
            elapsed = time.monotonic() - t0
            stop.set()
            await asyncio.gather(*workers)
            page_at, page_s = await page

            updates = [c for c in api.calls if c.method == "chat.postMessage" and MARK in c.dump()]
            ok = [c for c in updates if c.ok]
            limited = [c for c in updates if c.status == 429]
            customer = Counter(str(c.args["channel"]) for c in ok if str(c.args["channel"]).startswith("C0CUST"))
            threads = Counter(str(c.args.get("thread_ts")) for c in ok if c.args["channel"] == "C0L1")
            lost = (args.cases - len(customer)) + (args.cases - len(threads))
            doubled = sum(n - 1 for n in customer.values()) + sum(n - 1 for n in threads.values())
            per_channel = Counter(str(c.args["channel"]) for c in ok)
            holds = Counter(str(c.args["channel"]) for c in limited)
            burst = slack_delivery.CHANNEL_BURST
            def channel_s(ch: str) -> float:
                return max(0, per_channel[ch] - burst) * args.pace + holds[ch] * args.retry_after
            busiest = max(per_channel, key=channel_s)
            channel_floor = channel_s(busiest)
            posts = [c for c in api.calls if c.method == "chat.postMessage"]  # each took a workspace token
            ws_rate, ws_burst = slack_delivery.WORKSPACE_BUDGET
            workspace_floor = max(0, len(posts) - ws_burst) / ws_rate
            floor = max(channel_floor, workspace_floor)
            print(f"update fan-out: {len(ok)} posts ({len(customer)} customer channels, {len(threads)} case "
                  f"threads, plus the incident space and status channel), {len(limited)} answered 429")
            print(f"time: {elapsed:.2f} s; rate-limit floor {floor:.2f} s = max(busiest channel "
                  f"{channel_floor:.2f} s: ({per_channel[busiest]} posts - burst {burst}) x {args.pace} s + "
                  f"{holds[busiest]} x {args.retry_after} s holds; workspace {workspace_floor:.2f} s: "
                  f"({len(posts)} posts - burst {ws_burst}) / {ws_rate:.0f} per s); "
                  f"ratio {elapsed / floor:.2f} (goal <= {GOALS['floor_ratio']})")
            print(f"lost: {lost}  doubled: {doubled}")
            print(f"page sent {page_at:.2f} s into the fan-out reached its person in {page_s:.3f} s "
                  f"(goal <= {GOALS['page_s']} s)")
            print(f"engine: {args.workers} worker(s), runtime.worker(transport).run_forever")
    finally:
        keys = [k async for k in client.scan_iter(match="{" + prefix + "}*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i:i + 500])
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--pace", type=float, default=0.01, help="seconds between posts per channel")
    parser.add_argument("--retry-after", type=float, default=0.1, help="the 429 answers' Retry-After")
    parser.add_argument("--share-429", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
