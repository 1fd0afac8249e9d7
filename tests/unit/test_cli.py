"""The `escalator` command for operators: one clear line for wrong input, purge with a question."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from adapters.cli import main
from bot.keys import Keys
from tests.conftest import PROJECT_CONFIG

APP_ID = "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"
STREAM = re.compile(r"\d+-\d+")


@pytest.fixture
def ops(redis_location: dict[str, Any], tmp_path: Path) -> Iterator[tuple[redis.Redis, Keys, dict[str, str]]]:
    """A Redis the CLI and the test share, under a prefix of this test's own."""
    url = redis_location.get("url") or f"unix://{redis_location['unix_socket_path']}"
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(url)
    env = {"REDIS_URL": url, "ESCALATOR_PREFIX": prefix, "ESCALATOR_DATA_DIR": str(tmp_path / "data"),
           "ESCALATOR_CONFIG": str(PROJECT_CONFIG), "ESCALATOR_PUBLIC_URL": ""}
    yield client, Keys(prefix), env
    keys = list(client.scan_iter(match="{" + prefix + "}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def escalator(env: dict[str, str], *args: str, answer: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=answer)


def one_clear_line(result: Result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_replaying_a_malformed_id_is_one_clear_line_and_status_2(ops: Any) -> None:
    _, _, env = ops
    result = escalator(env, "outbox", "replay", "--platform", "slack", "not-an-id")
    assert result.exit_code == 2
    assert one_clear_line(result) == ("'not-an-id' is not a dead letter id: ids look like 1700000000000-0 "
                                      "(list them with `escalator outbox dead --platform slack`).")


def test_replaying_an_unknown_id_says_so_with_status_1(ops: Any) -> None:
    client, keys, env = ops
    client.xadd(keys.dead("slack"), {"m": "{}"}, id="5-0")
    result = escalator(env, "outbox", "replay", "--platform", "slack", "1700000000000-0")
    assert result.exit_code == 1
    assert one_clear_line(result).startswith("No dead letter 1700000000000-0 on slack")
    assert client.xlen(keys.dead("slack")) == 1


def test_replaying_a_known_id_puts_it_back_on_the_outbox(ops: Any) -> None:
    client, keys, env = ops
    client.xadd(keys.dead("teams"), {"m": "{}"}, id="5-0")
    result = escalator(env, "outbox", "replay", "--platform", "teams", "5-0")
    assert result.exit_code == 0 and "Replayed 1 message(s) on teams." in result.output
    assert sum(client.xlen(s) for s in keys.outboxes("teams")) == 1 and client.xlen(keys.dead("teams")) == 0


def waiting(client: redis.Redis, keys: Keys, platform: str) -> int:
    return sum(int(client.xlen(s)) for s in keys.outboxes(platform)) + int(client.zcard(keys.outbox_delayed(platform)))


def fill(client: redis.Redis, keys: Keys) -> None:
    for platform in ("slack", "teams"):
        client.xadd(keys.outbox(platform, 0), {"m": "{}"})
        client.xadd(keys.outbox(platform, 1), {"m": "{}"})
        client.zadd(keys.outbox_delayed(platform), {f"retry-{platform}": 1})
    client.xgroup_create(keys.outbox("slack", 1), "delivery", id="0")


def test_purge_asks_first_and_drops_only_that_platforms_pending_messages(ops: Any) -> None:
    client, keys, env = ops
    fill(client, keys)
    kept = escalator(env, "outbox", "purge", "--platform", "slack", answer="n\n")
    assert kept.exit_code == 1 and "Drop 3 message(s) waiting for delivery on slack?" in kept.output
    assert waiting(client, keys, "slack") == 3
    purged = escalator(env, "outbox", "purge", "--platform", "slack", answer="y\n")
    assert purged.exit_code == 0, purged.output
    assert "Dropped 3 message(s) waiting for delivery on slack." in purged.output
    assert waiting(client, keys, "slack") == 0 and waiting(client, keys, "teams") == 3
    groups = client.xinfo_groups(keys.outbox("slack", 1))
    assert [g["name"] for g in groups] == [b"delivery"]  # a running worker keeps reading


def test_purge_with_yes_does_not_ask(ops: Any) -> None:
    client, keys, env = ops
    fill(client, keys)
    result = escalator(env, "outbox", "purge", "--platform", "teams", "--yes")
    assert result.exit_code == 0 and "?" not in result.output
    assert one_clear_line(result) == "Dropped 3 message(s) waiting for delivery on teams."
    assert waiting(client, keys, "teams") == 0


def test_teams_package_without_a_host_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "app.zip"
    result = CliRunner().invoke(main, ["teams-package", "--app-id", APP_ID, "--out", str(out)],
                                env={"ESCALATOR_PUBLIC_URL": ""})
    assert result.exit_code != 0 and "Give the bot's public host with --host" in result.output
    assert not out.exists()
    ok = CliRunner().invoke(main, ["teams-package", "--app-id", APP_ID, "--host", "bot.example.com",
                                   "--out", str(out)])
    assert ok.exit_code == 0 and out.exists()


def test_matplotlib_is_not_imported_at_start_up() -> None:
    probe = ("import sys, adapters.cli, adapters.web, adapters.slack.app, adapters.teams.app, "
             "adapters.console.session, bot.runtime, workflows\n"
             "from click.testing import CliRunner\n"
             "CliRunner().invoke(adapters.cli.main, ['--help'])\n"
             "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_webhook_dead_letters_are_listed_and_replayed(ops: Any) -> None:
    """A status page update the webhook transport refused, dead-lettered by the real delivery worker."""
    import asyncio
    from datetime import UTC, datetime

    import redis.asyncio as aioredis

    from adapters.webhook import WebhookTransport
    from bot.config import load_config
    from bot.messages import Address, Notice, OutboxMessage
    from bot.redis_server import RedisHandle
    from bot.runtime import build_runtime
    from bot.settings import Settings
    from bot.store import Commit
    from workflows import HANDLERS

    client, keys, env = ops
    url = "https://status.example.com/hook"  # not in crisis.webhooks: Undeliverable at once

    async def dead_letter() -> None:
        redis_client = aioredis.Redis.from_url(env["REDIS_URL"])
        config = load_config(PROJECT_CONFIG)
        runtime = build_runtime(config=config, settings=Settings(), handlers=HANDLERS,
                                redis=RedisHandle(redis_client, where="test"), prefix=env["ESCALATOR_PREFIX"])
        message = OutboxMessage(id="hook-1", address=Address(platform="webhook", channel=url),
                                notice=Notice(kind="post", title="INC-1 investigating", text='{"status": "x"}'),
                                created_at=datetime.now(UTC))
        await runtime.store.commit(Commit(messages=[message]))
        await runtime.worker(WebhookTransport(config)).drain()
        await redis_client.aclose()

    asyncio.run(dead_letter())
    assert client.xlen(keys.dead("webhook")) == 1
    listed = escalator(env, "outbox", "dead", "--platform", "webhook")
    assert listed.exit_code == 0, listed.output
    line = one_clear_line(listed)
    entry_id = line.split()[0]
    assert STREAM.fullmatch(entry_id) and f"post to {url}" in line and "not in crisis.webhooks" in line
    replayed = escalator(env, "outbox", "replay", "--platform", "webhook", entry_id)
    assert replayed.exit_code == 0 and one_clear_line(replayed) == "Replayed 1 message(s) on webhook."
    assert client.xlen(keys.dead("webhook")) == 0 and waiting(client, keys, "webhook") == 1
    assert one_clear_line(escalator(env, "outbox", "dead", "--platform", "webhook")) == "No dead letters for webhook."
    # A platform nobody registered is refused by the option itself.
    unknown = escalator(env, "outbox", "dead", "--platform", "carrier-pigeon")
    assert unknown.exit_code == 2 and "'carrier-pigeon' is not one of 'slack', 'teams', 'webhook'" in unknown.output
