"""Input caps, applied before anything parses a request: an oversized body costs nothing.

Slack's and Teams' own requests are a few kilobytes (a Slack payload that carries a whole
50-block message or modal stays well under 200 KB), so 1 MB refuses only what no platform sends.
"""

from __future__ import annotations

from aiohttp import web

MAX_BODY_BYTES = 1_000_000
MAX_MESSAGE_CHARS = 40_000  # Slack's limit for one message; longer Teams text gets a short answer
TOO_LONG = (f"That message is too long for me (over {MAX_MESSAGE_CHARS:,} characters). "
            "Write the escalation in a few sentences and put long logs in the case thread or a file.")


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request body, or None if it is over `limit` bytes (never reading more than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    while True:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            return None


def too_large() -> web.Response:
    return web.json_response({"error": f"the request body is over {MAX_BODY_BYTES:,} bytes"}, status=413)
