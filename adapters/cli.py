"""The `escalator` command: serve, console, check-config, outbox, teams-package.

Every command takes `--config FILE` (default `$ESCALATOR_CONFIG`, then `./escalator.yaml`).
A config error prints every problem with the file and key path and exits with status 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from pathlib import Path
from typing import Any

import click

from bot import platforms
from bot.config import Config, ConfigError, load_config
from bot.settings import Settings

STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")  # a Redis stream entry id, as `outbox dead` lists them
# Every platform with an outbox (registered on import of `adapters`: Slack, Teams, status page webhooks).
DELIVERING = click.Choice(platforms.delivering())
CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), envvar="ESCALATOR_CONFIG",
    default="escalator.yaml", show_default=True, help="The YAML config file (env ESCALATOR_CONFIG).")


def _load(config_path: Path) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        click.echo(f"Escalator cannot start: {len(exc.problems)} problem(s) in the config.", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)


@click.group()
def main() -> None:
    """Escalator: tiered escalation, paging and case threads in Slack and Microsoft Teams."""


@main.command("check-config")
@CONFIG_OPTION
def check_config(config_path: Path) -> None:
    """Validate the config file and say what it sets up."""
    config = _load(config_path)
    click.echo(f"{config_path}: OK: {len(config.tiers)} tiers ({', '.join(config.tier_ids)}), "
               f"{len(config.people)} people, {len(config.schedules)} schedules, {len(config.policies)} paging "
               f"policies, {len(config.routing)} routing rules, {len(config.customers)} customers, "
               f"timezone {config.timezone}.")


@main.command()
@CONFIG_OPTION
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 to accept other machines (put TLS in front).")
@click.option("--port", default=3000, show_default=True, type=int)
def serve(config_path: Path, host: str, port: int) -> None:
    """Serve Slack (/slack/events), Teams (/api/messages), /healthz, /readyz and /metrics on one port.

    SIGTERM or Ctrl-C stops taking requests, gives background work up to 10 s, and exits within 15 s.
    """
    from adapters import logs
    from adapters.slack.env import SlackEnv
    from adapters.teams.env import TeamsEnv
    from adapters.web import build_web_app
    from bot.redis_server import RedisUnavailable, connect
    from bot.runtime import build_runtime
    from workflows import HANDLERS

    config = _load(config_path)
    logs.configure()
    settings = Settings()
    sock = _listen_or_exit(host, port)
    try:
        redis = connect(settings.redis_url, settings.escalator_data_dir, settings)
    except RedisUnavailable as exc:
        sock.close()
        click.echo(f"Escalator cannot start: {exc}.", err=True)
        sys.exit(1)
    runtime = build_runtime(config=config, settings=settings, handlers=HANDLERS, redis=redis)
    app = build_web_app(runtime, _platform_adapters(runtime))
    banner = (f"Escalator serving on http://{host}:{port} (redis: {runtime.redis.where}); "
              f"Slack {'on' if settings.platform(SlackEnv).enabled else 'off (no SLACK_BOT_TOKEN)'}, "
              f"Teams {'on' if settings.platform(TeamsEnv).id else 'local/emulator mode (no MICROSOFT_APP_ID)'}.")
    sys.exit(asyncio.run(_serve_until_stopped(app, runtime, sock, banner)))


def _platform_adapters(runtime: Any) -> list[Any]:
    from adapters.slack.app import build_slack_adapter
    from adapters.teams.app import build_teams_adapter

    return [build_slack_adapter(runtime), build_teams_adapter(runtime)]


@main.command()
@CONFIG_OPTION
@click.option("--as", "person", default="alice", show_default=True, help="The configured person you act as.")
def console(config_path: Path, person: str) -> None:
    """Type chat commands as PERSON and see what the bot posts; reads stdin when it is not a terminal.

    A sandbox: its own Redis key prefix (`<prefix>-console`), so nothing typed here is ever
    posted to Slack or Teams. Ctrl-D, Ctrl-C or :quit leave.
    """
    from adapters import logs

    logs.configure(json=False, level=40)
    config = _load(config_path)
    if person not in config.people:
        click.echo(f"Unknown person '{person}' (known: {', '.join(config.people)}).", err=True)
        sys.exit(2)
    _console(config, person, interactive=sys.stdin.isatty())


def _console(config: Config, person: str, *, interactive: bool) -> None:
    """The read-eval-print loop: input in the main thread, so Ctrl-C and Ctrl-D end it cleanly."""
    from adapters.console.session import ConsoleSession, SandboxClock, console_prefix
    from bot.clock import SystemClock
    from bot.runtime import build_runtime
    from workflows import HANDLERS

    if interactive:
        import readline  # noqa: F401  (line editing and history for input())
    settings = Settings()
    clock = SandboxClock(SystemClock())
    with asyncio.Runner() as runner:
        runtime = build_runtime(config=config, settings=settings, handlers=HANDLERS, clock=clock,
                                prefix=console_prefix(settings.escalator_prefix))
        session = ConsoleSession(runtime, person=person, out=click.echo, advance=clock.advance)
        session.echo = not interactive
        try:
            runner.run(session.start())
            while True:
                line = input(session.prompt) if interactive else sys.stdin.readline()
                if not interactive and line == "":
                    break
                if not runner.run(session.handle_line(line)):
                    break
        except (EOFError, KeyboardInterrupt):
            if interactive:
                click.echo()  # end the prompt's line
        finally:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                runner.run(runtime.close())


@main.command("teams-package")
@click.option("--app-id", envvar="MICROSOFT_APP_ID", required=True, help="The Azure Bot's app id.")
@click.option("--host", envvar="ESCALATOR_PUBLIC_URL", default=None,
              help="The public name of the bot (bot.example.com or its URL); required (env ESCALATOR_PUBLIC_URL).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("escalator-teams.zip"), show_default=True)
def teams_package(app_id: str, host: str | None, out: Path) -> None:
    """Build the Teams app package (manifest + icons) to upload in Teams."""
    from adapters.teams.package import PackageError, build_app_package

    try:
        path = build_app_package(app_id, out, host)
    except PackageError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote {path}: upload it in Teams (Apps → Manage your apps → Upload an app).")


@main.group()
def outbox() -> None:
    """Inspect the outbox: pending counts and dead letters, replay them, or purge a platform."""


@outbox.command("status")
@CONFIG_OPTION
def outbox_status(config_path: Path) -> None:
    """How many messages wait for delivery and how many are dead, per platform."""
    async def run(runtime: Any) -> None:
        for platform in platforms.delivering():
            dead = await runtime.outbox.dead_letters(platform, count=10_000)
            click.echo(f"{platform}: {await runtime.outbox.pending(platform)} pending, {len(dead)} dead")
    _with_runtime(config_path, run)


@outbox.command("dead")
@CONFIG_OPTION
@click.option("--platform", type=DELIVERING, default="slack", show_default=True)
def outbox_dead(config_path: Path, platform: str) -> None:
    """List the dead letters of a platform."""
    async def run(runtime: Any) -> None:
        letters = await runtime.outbox.dead_letters(platform, count=1000)
        if not letters:
            click.echo(f"No dead letters for {platform}.")
        for d in letters:
            m = d.message
            click.echo(f"{d.id}  {d.failed_at}  {m.notice.case_id or '-'}  {m.notice.kind} to "
                       f"{m.address.channel or m.address.user}  after {d.attempts} attempts: {d.error}")
    _with_runtime(config_path, run)


@outbox.command("replay")
@CONFIG_OPTION
@click.option("--platform", type=DELIVERING, default="slack", show_default=True)
@click.argument("entry_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter of the platform.")
def outbox_replay(config_path: Path, platform: str, entry_id: str | None, replay_all: bool) -> None:
    """Put a dead letter (ENTRY_ID) or all of them (--all) back on the outbox."""
    if not entry_id and not replay_all:
        raise click.UsageError("Give a dead letter id (see `escalator outbox dead`) or --all.")
    if entry_id and not replay_all and not STREAM_ID.fullmatch(entry_id):
        click.echo(f"'{entry_id}' is not a dead letter id: ids look like 1700000000000-0 "
                   f"(list them with `escalator outbox dead --platform {platform}`).", err=True)
        sys.exit(2)

    async def run(runtime: Any) -> int:
        n = int(await runtime.outbox.replay(platform, None if replay_all else entry_id))
        if n == 0 and not replay_all:
            click.echo(f"No dead letter {entry_id} on {platform} (list them with "
                       f"`escalator outbox dead --platform {platform}`).", err=True)
            return 1
        click.echo(f"Replayed {n} message(s) on {platform}.")
        return 0
    sys.exit(_with_runtime(config_path, run))


@outbox.command("purge")
@CONFIG_OPTION
@click.option("--platform", type=DELIVERING, required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def outbox_purge(config_path: Path, platform: str, yes: bool) -> None:
    """Drop every message waiting for delivery on PLATFORM (the stream and the retry queue).

    For messages that must never be posted, e.g. typed into a test setup pointed at a real
    workspace. Dead letters are kept (see `outbox dead`).
    """
    async def count(runtime: Any) -> int:
        return int(await runtime.outbox.pending(platform))

    waiting = _with_runtime(config_path, count)
    if waiting == 0:
        click.echo(f"Nothing waits for delivery on {platform}.")
        return
    if not yes and not click.confirm(f"Drop {waiting} message(s) waiting for delivery on {platform}? "
                                     "They will never be posted", default=False):
        click.echo("Nothing dropped.")
        sys.exit(1)

    async def purge(runtime: Any) -> int:
        keys, redis = runtime.store.keys, runtime.store.redis
        streams = keys.outboxes(platform)
        pipe = redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xlen(stream)
        pipe.zcard(keys.outbox_delayed(platform))
        for stream in streams:
            pipe.xtrim(stream, maxlen=0, approximate=False)  # keeps the delivery group
        pipe.delete(keys.outbox_delayed(platform))
        counts = await pipe.execute()
        return sum(int(n) for n in counts[:len(streams) + 1])

    click.echo(f"Dropped {_with_runtime(config_path, purge)} message(s) waiting for delivery on {platform}.")


def _with_runtime(config_path: Path, fn: Any) -> Any:
    from bot.runtime import build_runtime
    from workflows import HANDLERS

    config = _load(config_path)

    async def go() -> Any:
        runtime = build_runtime(config=config, settings=Settings(), handlers=HANDLERS)
        try:
            return await fn(runtime)
        finally:
            await runtime.close()
    return asyncio.run(go())


# ---- serve: listening, running and stopping --------------------------------------------------------

STOP_LIMIT_S = 15.0  # SIGTERM to exit, whatever the platforms do (orchestrators' grace is often 30 s)


def _listen_or_exit(host: str, port: int) -> Any:
    """Bind the port before starting anything, so a busy port is one clear line, not a traceback."""
    import os
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)  # bound, not yet listening: connections are refused until we serve
        return sock
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        click.echo(f"Escalator cannot start: cannot listen on {host} port {port}: {why}. "
                   f"Stop what uses port {port} or choose another with --port.", err=True)
        sys.exit(1)


async def _serve_until_stopped(app: Any, runtime: Any, sock: Any, banner: str) -> int:
    """Run until SIGTERM/SIGINT, then stop in order: requests, background work, Redis. Returns the exit code."""
    import signal
    import threading

    from aiohttp import web

    async def close_redis(_: web.Application) -> None:
        await runtime.close()

    app.on_cleanup.append(close_redis)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    try:
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
        except OSError as exc:  # another process bound the same port in the same instant
            click.echo(f"Escalator cannot start: cannot listen on {sock.getsockname()}: {exc}.", err=True)
            await runner.cleanup()
            return 1
        click.echo(banner)
        await stop.wait()
        click.echo("Escalator stopping: no new requests; finishing background work (up to 10 s).")
        # A last resort if the loop itself is stuck: stop the embedded Redis and leave.
        threading.Thread(target=_exit_after, args=(STOP_LIMIT_S, runtime), daemon=True).start()
        try:
            await asyncio.wait_for(runner.cleanup(), timeout=STOP_LIMIT_S - 2)
        except TimeoutError:
            click.echo("Escalator: shutdown took too long; stopping now.", err=True)
        return 0
    finally:
        await runtime.close()  # idempotent; also when startup failed half-way


def _exit_after(seconds: float, runtime: Any) -> None:
    import os
    import time

    from bot.redis_server import stop_embedded

    time.sleep(seconds - 0.5)
    server = runtime.redis.embedded
    if server is not None:
        stop_embedded(server)
    os._exit(1)


if __name__ == "__main__":
    main()
