"""Slack traffic against real `escalator serve` processes: a spread-out config, signed commands, checks.

Slack paces posts at about one a second per channel and per DM, so the config gives every tier
its own channel and its own on-call person: a burst spreads over `TIERS` lanes and is delivered
in seconds instead of minutes. Policies page at once and again `REPAGE_S` later (a timer).
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import re
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import redis.asyncio as aioredis
import yaml
from slack_sdk.signature import SignatureVerifier

from bot.keys import Keys
from tests.conftest import PROJECT_CONFIG
from tests.fakes.slack_api import FakeSlackApi
from tests.reliability.serve_process import start_serve, stop

# The new delivery engine (bot/pacing.py): lanes without head-of-line blocking, 429s use no attempts.
NEW_ENGINE = importlib.util.find_spec("bot.pacing") is not None
SECRET = "reliability-signing-secret"
TOKEN = "xoxb-reliability"
TIERS = 20
REPAGE_S = 3
CASE_ID = re.compile(r"\b([A-Z]+-\d+)\b")
STEP = re.compile(r"Paging .* \((step \d+) of \d+\)")
BUSY = "busy right now"
BROKEN = "Something went wrong"


def spread_config(folder: Path, *, repage: bool = True) -> Path:
    """The project config plus tiers T0..T<TIERS-1>: channel C0T<i>, paged person U0P<i>.

    With `repage`, a timer pages the same person again `REPAGE_S` later (step 2 of 2).
    """
    config = yaml.safe_load(PROJECT_CONFIG.read_text())
    for i in range(TIERS):
        config["people"][f"p{i}"] = {"name": f"Pager {i}", "slack": f"U0P{i}"}
        config["schedules"][f"s{i}"] = {"rotation": "weekly", "handoff": "monday 09:00", "members": [f"p{i}"]}
        wait = f"{REPAGE_S}s" if repage else "1h"
        config["policies"][f"pol{i}"] = {"steps": [{"notify": [f"schedule:s{i}"], "wait": wait},
                                                   {"notify": [f"person:p{i}"], "wait": "1h"}]}
        config["tiers"].append({"id": f"T{i}", "name": f"Team {i}", "channels": {"slack": f"C0T{i}"},
                                "policy": f"pol{i}", "sla": {"acknowledge": "1h", "resolve": "8h"}})
    path = folder / "escalator.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def serve_slack(data_dir: Path, config: Path, api: FakeSlackApi, redis_url: str,
                **env: str) -> tuple[subprocess.Popen[str], int]:
    """`escalator serve` on Redis `redis_url` whose Slack is the fake `api` (blocking: run in a thread)."""
    return start_serve(data_dir, "--config", str(config), log=data_dir.with_name(data_dir.name + ".log"),
                       REDIS_URL=redis_url, SLACK_BOT_TOKEN=TOKEN,
                       SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=api.url, **env)


async def serve_async(*args: Any, **env: str) -> tuple[subprocess.Popen[str], int]:
    """`serve_slack` off the event loop, so the fake Slack (on this loop) can answer meanwhile."""
    return await asyncio.to_thread(serve_slack, *args, **env)


async def stop_async(proc: subprocess.Popen[str]) -> None:
    await asyncio.to_thread(stop, proc)


@dataclass
class Answer:
    trigger: str
    status: int
    text: str
    seconds: float

    @property
    def case_id(self) -> str | None:
        found = CASE_ID.search(self.text) if self.status == 200 and BUSY not in self.text else None
        return found.group(1) if found else None

    @property
    def busy(self) -> bool:
        return BUSY in self.text


@dataclass
class Escalations:
    """Signed `/escalate` commands, each with its own trigger id; remembers every answer."""

    api: FakeSlackApi
    answers: list[Answer] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # trigger id -> command text
    # trigger id -> the support channel it is run in: spread like the tiers, so the link-backs
    # ("Escalated to T3 as ESC-1004") are not 100 posts paced at 1 a second in one channel
    sources: dict[str, str] = field(default_factory=dict)

    def new(self, n: int, label: str) -> list[str]:
        triggers = []
        for i in range(n):
            trigger = f"tr-{label}-{i}-{uuid.uuid4().hex[:6]}"
            self.texts[trigger] = f"T{i % TIERS} sev3 {label} number {i} cannot log in"
            self.sources[trigger] = f"C0SUP{i % TIERS}"
            triggers.append(trigger)
        return triggers

    def body(self, trigger: str) -> str:
        return urlencode({
            "token": "legacy", "team_id": "T0ACME", "team_domain": "acme",
            "channel_id": self.sources.get(trigger, "C0SUPPORT"), "channel_name": "support",
            "user_id": "U0ALICE", "user_name": "alice", "command": "/escalate",
            "text": self.texts[trigger], "api_app_id": "A0ESC", "is_enterprise_install": "false",
            "response_url": self.api.response_url, "trigger_id": trigger})

    async def send(self, session: aiohttp.ClientSession, port: int, trigger: str,
                   timeout: float = 30) -> Answer:
        body = self.body(trigger)
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)}
        started = time.monotonic()
        try:
            async with session.post(f"http://127.0.0.1:{port}/slack/events", data=body.encode(), headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                raw = await response.text()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raw, status = f"no answer: {type(exc).__name__}", 0
        try:
            text = json.dumps(json.loads(raw))
        except ValueError:
            text = raw
        answer = Answer(trigger, status, text, time.monotonic() - started)
        self.answers.append(answer)
        return answer

    async def burst(self, ports: list[int], triggers: list[str], timeout: float = 30) -> list[Answer]:
        """All at once, spread round-robin over `ports` (a load balancer)."""
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            return list(await asyncio.gather(*(self.send(session, ports[i % len(ports)], t, timeout)
                                               for i, t in enumerate(triggers))))

    def cases_by_trigger(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for answer in self.answers:
            if answer.case_id:
                found.setdefault(answer.trigger, set()).add(answer.case_id)
        return found


def cards(api: FakeSlackApi) -> Counter[str]:
    """Root case cards posted (ok) to the T-tier channels, counted by case id."""
    posted: Counter[str] = Counter()
    for call in api.calls_to("chat.postMessage"):
        channel = str(call.args.get("channel", ""))
        if channel.startswith("C0T") and not call.args.get("thread_ts"):
            found = CASE_ID.search(call.dump())
            if found:
                posted[found.group(1)] += 1
    return posted


def pages(api: FakeSlackApi) -> Counter[str]:
    """DMs posted (ok) to the paged people (the fake opens D0P<i> for U0P<i>), counted by case id.

    Pages queued together for one person are merged into one DM ("Paged for ESC-1011, ESC-1012"):
    every case a DM names counts, once per DM.
    """
    posted: Counter[str] = Counter()
    for call in api.calls_to("chat.postMessage"):
        if str(call.args.get("channel", "")).startswith("D0P"):
            title = str(call.args.get("text", "")).split("\n", 1)[0]
            for case_id in dict.fromkeys(m.group(1) for m in CASE_ID.finditer(title)):
                posted[case_id] += 1
    return posted


def page_steps(api: FakeSlackApi) -> Counter[tuple[str, str]]:
    """Paging steps announced in case threads, counted by (thread ts, step): a timer fired twice shows as 2."""
    return Counter((str(c.args.get("thread_ts")), found.group(1)) for c in api.calls_to("chat.postMessage")
                   if c.args.get("thread_ts") and (found := STEP.search(str(c.args.get("text", "")))))


def posts(api: FakeSlackApi) -> Counter[str]:
    """Every ok chat.postMessage, keyed by its channel, thread and text: a key seen twice was posted twice."""
    return Counter(f"{c.args.get('channel')}|{c.args.get('thread_ts')}|{c.args.get('text')}"
                   for c in api.calls_to("chat.postMessage"))


def post_key(call: Any) -> str:
    """Where and what a chat.postMessage posted: the same key twice is the same post twice."""
    return f"{call.args.get('channel')}|{call.args.get('thread_ts')}|{call.args.get('text')}"


def paged_in(call: Any) -> set[tuple[str, str]]:
    """(DM channel, case id) of every page a page DM carries (pages to one person merge)."""
    channel = str(call.args.get("channel", ""))
    if not channel.startswith("D0P"):
        return set()
    title = str(call.args.get("text", "")).split("\n", 1)[0]
    return {(channel, m.group(1)) for m in CASE_ID.finditer(title)}


def repeats(api: FakeSlackApi, pages_per_case: int = 1) -> tuple[list[str], list[tuple[str, str]]]:
    """What reached people twice: posts (not page DMs) posted again, once per extra time, and pages
    (DM channel, case) beyond `pages_per_case`. Pages are counted one by one, as a page DM sent
    again after a restart may merge other pages than the first time."""
    seen: set[str] = set()
    paged: Counter[tuple[str, str]] = Counter()
    posts_again: list[str] = []
    pages_again: list[tuple[str, str]] = []
    for call in api.calls_to("chat.postMessage"):
        if str(call.args.get("channel", "")).startswith("D0P"):
            for page in sorted(paged_in(call)):
                if paged[page] >= pages_per_case:
                    pages_again.append(page)
                paged[page] += 1
            continue
        key = post_key(call)
        if key in seen:
            posts_again.append(key)
        seen.add(key)
    return posts_again, pages_again


async def outbox_left(redis_url: str, prefix: str = "escalator") -> tuple[int, int]:
    """(Slack messages not yet delivered, dead letters), read from the Redis the processes share."""
    keys = Keys(prefix)
    client = aioredis.from_url(redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for stream in keys.outboxes("slack"):
            pipe.xlen(stream)
        pipe.zcard(keys.outbox_delayed("slack"))
        pipe.xlen(keys.dead("slack"))
        *pending, dead = await pipe.execute()
    finally:
        await client.aclose()
    return sum(pending), dead


async def consumers(redis_url: str, prefix: str = "escalator") -> set[str]:
    """The consumers of Slack's delivery group (one per process that delivered), from Redis."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        found: set[str] = set()
        for stream in Keys(prefix).outboxes("slack"):
            found |= {c["name"] for c in await client.xinfo_consumers(stream, "delivery")}
        return found
    finally:
        await client.aclose()


async def until(check: Any, what: str, limit_s: float = 60, detail: Any = None) -> None:
    """Wait (bounded) until `check()` (which may be async); on giving up, say what `detail()` shows."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        ok = check()
        if inspect.isawaitable(ok):
            ok = await ok
        if ok:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"never happened within {limit_s:.0f} s: {what}" + (f": {detail()}" if detail else ""))


def missing(api: FakeSlackApi, opened: set[str]) -> str:
    return (f"no card for {sorted(opened - set(cards(api)))[:10]}, "
            f"no page DM for {sorted(opened - set(pages(api)))[:10]}"
            f"; {len(api.calls)} calls, last {[(c.method, c.status) for c in api.calls[-5:]]}")


async def dead_letters(port: int) -> float:
    """Messages this process moved to dead letters, from its /metrics."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("escalator_outbox_dead_letters_total{"))
