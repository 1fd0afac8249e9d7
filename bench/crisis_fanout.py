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

The recording Web API runs in a process of its own, as Slack would: the measured process holds the
core and the delivery engine only (at 100 posts/s per channel, a fake served from the same event
loop made the engine fall behind its pacing by the fake's own CPU time).

Printed: time to deliver the update against the rate-limit floor (the larger of: the busiest
channel's posts after its burst times the pace plus its 429 holds, and every post after the
workspace burst at the workspace rate: no deliverer can be faster), messages lost and doubled,
and the latency of a page (a role assignment) sent while the fan-out runs, commit to Slack. Redis
is REDIS_URL (default redis://127.0.0.1:6379/0) under a throwaway prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import random
import sys
import time
import uuid
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MARK = "BENCH-UPDATE"
GOALS = {"floor_ratio": 1.2, "page_s": 1.0}


def serve_fake(conn: Connection, share_429: float, retry_after: float, seed: int) -> None:
    """The child process: the recording fake Slack, answering 429 to a share of the update's posts.

    `POST <url>bench.<op>` steers it without being recorded: `flaky` (start the 429s, forget the
    calls so far), `progress` (posts so far, when a DM reached Hana), `calls` (every call, and the CPU used).
    """
    asyncio.run(_serve_fake(conn, share_429, retry_after, seed))


async def _serve_fake(conn: Connection, share_429: float, retry_after: float, seed: int) -> None:
    from aiohttp import web

    from tests.fakes.slack_api import FakeSlackApi, _Failure

    rng = random.Random(seed)

    class FlakySlack(FakeSlackApi):
        flaky = False

        async def _api(self, request: web.Request) -> web.Response:
            method = request.match_info["method"]
            if method.startswith("bench."):
                return web.json_response(self.steer(method.removeprefix("bench.")))
            return await super()._api(request)

        def steer(self, op: str) -> Any:
            if op == "flaky":
                self.calls.clear()
                self.flaky = True
                return {"ok": True}
            posts = [c for c in self.calls if c.ok and c.method == "chat.postMessage"]
            if op == "progress":
                hana = next((c.at for c in posts if c.args.get("channel") == "D0HANA"), None)
                return {"posts": len(posts), "hana_at": hana}
            return {"cpu": time.process_time(),
                    "calls": [{"method": c.method, "args": c.args, "at": c.at, "status": c.status, "ok": c.ok}
                              for c in self.calls]}

        def _take_failure(self, method: str, args: dict[str, Any]) -> _Failure | None:
            if self.flaky and method == "chat.postMessage" and MARK in str(args.get("blocks") or args.get("text")) \
                    and rng.random() < share_429:
                return _Failure(429, "ratelimited", retry_after, 1, None)
            return super()._take_failure(method, args)

    async with FlakySlack() as api:
        conn.send(api.url)
        await asyncio.Event().wait()  # until the parent terminates us


class RemoteSlack:
    """The parent's handle on the fake Slack process: its URL, steering, and the calls it recorded."""

    workspace_url = "https://acme.slack.com/"

    def __init__(self, share_429: float, retry_after: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve_fake, args=(child, share_429, retry_after, 11), daemon=True)
        self.url = ""

    async def __aenter__(self) -> RemoteSlack:
        import aiohttp

        self.process.start()
        self.url = await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        self.process.terminate()
        self.process.join(5)

    async def steer(self, op: str) -> Any:
        async with self.session.post(f"{self.url}bench.{op}") as response:
            return json.loads(await response.text())


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
    from tests.fakes.slack_api import Call
    from workflows import HANDLERS

    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(redis_url)
    config = Config.model_validate(generated_config(args.cases))
    runtime = build_runtime(config=config, settings=Settings(), handlers=HANDLERS,
                            redis=RedisHandle(client, where="bench"), prefix=prefix)
    boss = Actor(person="boss", platform="slack", user_id="U0BOSS", name="Bo Boss")
    try:
        async with RemoteSlack(args.share_429, args.retry_after) as api:
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

            # The measured fan-out: the delivery engine is running (as in `serve`) when the update is
            # committed; the clock starts when the commit returns (nothing can be sent before it).
            await api.steer("flaky")
            stop = asyncio.Event()
            workers = [asyncio.create_task(runtime.worker(transport(args.pace)).run_forever(stop))
                       for _ in range(args.workers)]
            await asyncio.sleep(0.2)  # the workers are up and waiting for messages
            t_commit = time.monotonic()
            await runtime.bus.handle(PostUpdate(actor=boss, incident_id=incident, status="identified",
                                                text=f"{MARK}: the payment gateway rejects cards; a fix is coming."))
            t0, cpu0 = time.monotonic(), time.process_time()
            commit_s = t0 - t_commit
            expected = 2 * args.cases + 2  # the case threads, the customer channels, the space, the status channel

            async def page_midway() -> tuple[float, float]:
                while (await api.steer("progress"))["posts"] < expected // 5:
                    await asyncio.sleep(0.01)
                sent = time.monotonic()  # (the fake stamps calls with the same system-wide monotonic clock)
                await runtime.bus.handle(AssignRole(actor=boss, incident_id=incident, role="communications",
                                                    person="hana"))
                while (arrived := (await api.steer("progress"))["hana_at"]) is None:
                    await asyncio.sleep(0.01)
                return sent - t0, float(arrived) - sent

            page = asyncio.create_task(page_midway())
            while await runtime.outbox.pending("slack") > 0 or not page.done():
                await asyncio.sleep(0.01)
            cpu = time.process_time() - cpu0
            stop.set()
            await asyncio.gather(*workers)
            page_at, page_s = await page
            recorded = await api.steer("calls")
            calls = [Call(method=c["method"], args=c["args"], headers={}, at=c["at"], status=c["status"], ok=c["ok"])
                     for c in recorded["calls"]]

            updates = [c for c in calls if c.method == "chat.postMessage" and MARK in c.dump()]
            ok = [c for c in updates if c.ok]
            elapsed = max(float(c.at) for c in ok) - t0  # type: ignore[arg-type]  # the last post arrived
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
            posts = [c for c in calls if c.method == "chat.postMessage"]  # each took a workspace token
            ws_rate, ws_burst = slack_delivery.WORKSPACE_BUDGET
            workspace_floor = max(0, len(posts) - ws_burst) / ws_rate
            floor = max(channel_floor, workspace_floor)
            print(f"update committed in {commit_s * 1000:.0f} ms (one commit)")
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
            print(f"engine: {args.workers} worker(s), runtime.worker(transport).run_forever; this process (core "
                  f"and engine) used {cpu:.2f} s of CPU in the {elapsed:.2f} s ({cpu / elapsed:.0%} of one core), "
                  f"the fake Slack process {recorded['cpu']:.2f} s in all")
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
