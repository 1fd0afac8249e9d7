"""What a chat platform adapter offers the server: routes to mount, a transport, a lifecycle."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from bot.outbox import Transport


class PlatformAdapter(Protocol):
    platform: str

    def mount(self, app: web.Application) -> None:
        """Add this platform's inbound routes (`/slack/events`, `/api/messages`)."""
        ...

    def transport(self) -> Transport | None:
        """The delivery transport, or None when the platform has no credentials to send with."""
        ...

    async def start(self) -> None:
        """Start background connections (Socket Mode); called once the server runs."""
        ...

    async def stop(self) -> None: ...
