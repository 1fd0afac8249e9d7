"""The embedded Redis stops with the bot, whatever state its client is in, and keeps every case."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from bot.redis_server import RedisHandle, connect
from bot.settings import Settings
from tests.reliability.serve_process import redis_servers_in


class ClientThatFailsToClose(aioredis.Redis):
    """A client whose connections broke: closing it raises, as it can after a network error."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        raise ConnectionError("connection reset by peer")


async def test_the_embedded_server_stops_even_when_closing_its_client_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    started = connect(None, data, Settings(redis_url=None))
    await started.client.set("{t}:case", "kept")
    await started.client.aclose()
    handle = RedisHandle(ClientThatFailsToClose(unix_socket_path=started.embedded.socket_file),
                         embedded=started.embedded)
    assert redis_servers_in(data)
    await handle.close()
    await handle.close()  # a second close (signal, then cleanup) is harmless
    assert not redis_servers_in(data)

    again = connect(None, data, Settings(redis_url=None))
    assert await again.client.get("{t}:case") == b"kept"
    await again.close()
    assert not redis_servers_in(data)
