"""Status page webhooks (crisis mode): a "platform" whose channels are URLs.

Crisis mode queues every declare, update and resolve as an outbox message to each configured
`crisis.webhooks` URL; this transport POSTs the JSON, signed with HMAC-SHA256 of the body under the
hook's secret (`X-Escalator-Signature: sha256=<hex>`), so it gets the outbox's retries, Retry-After
holds and dead letters like any chat message. `X-Escalator-Delivery` lets a receiver drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac

import aiohttp

from bot.config import Config
from bot.messages import OutboxMessage
from bot.outbox import RetryLater, Undeliverable
from bot.pacing import Pace
from bot.platforms import PlatformSpec, register

SPEC = register(PlatformSpec(name="webhook", label="Status page webhook", links_back=False,
                             command_hint="/crisis"))
TIMEOUT_S = 10.0


def signature(secret: str, body: bytes) -> str:
    """The header value a receiver recomputes to trust the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class WebhookTransport:
    """`bot.outbox.Transport` for status page webhooks: one POST per message."""

    platform = "webhook"

    def __init__(self, config: Config, *, session: aiohttp.ClientSession | None = None) -> None:
        self.secrets = {hook.url: hook.secret for hook in config.crisis.webhooks}
        self.session = session

    def pace(self, message: OutboxMessage) -> list[Pace]:
        """One status page at a time per URL is plenty; a 429 holds that URL only."""
        return [Pace(f"webhook:{message.address.channel or ''}", 5.0, 5)]

    async def deliver(self, message: OutboxMessage) -> str | None:
        url = message.address.channel or ""
        secret = self.secrets.get(url)
        if secret is None:
            raise Undeliverable(f"{url or 'no URL'} is not in crisis.webhooks any more")
        body = message.notice.text.encode()
        headers = {"Content-Type": "application/json", "X-Escalator-Signature": signature(secret, body),
                   "X-Escalator-Delivery": message.id}
        try:
            if self.session is not None:
                return await self._post(self.session, url, body, headers)
            async with aiohttp.ClientSession() as session:
                return await self._post(session, url, body, headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RetryLater(f"webhook {url}: {type(exc).__name__}") from exc

    async def _post(self, session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> str:
        async with session.post(url, data=body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as resp:
            if 200 <= resp.status < 300:
                return str(resp.status)
            if resp.status == 429:  # the status page asks us to wait: no attempt is used up
                raise RetryLater(f"webhook {url} answered 429", _retry_after(resp.headers.get("Retry-After")),
                                 rate_limited=True)
            if resp.status >= 500:
                raise RetryLater(f"webhook {url} answered {resp.status}", _retry_after(resp.headers.get("Retry-After")))
            raise Undeliverable(f"webhook {url} refused the update: HTTP {resp.status}")
