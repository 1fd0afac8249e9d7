"""The Slack adapter: a Bolt `AsyncApp` on `POST /slack/events` (or Socket Mode), and the transport.

Every HTTP request's size, signature and timestamp are checked before its body is parsed
(413, 401), and Bolt checks the signature again before any listener runs. Listeners are thin:
payload -> command (`inbound`), `await runtime.bus.handle(command)` (Redis only, a millisecond
or two), answer the caller (`render`). Nothing is posted to a channel from here: the
workflows write to the outbox and the delivery worker (`delivery`) posts.

`process_before_response=True` makes Bolt answer as soon as the listener returns; the default
mode polls for `ack()` every 10 ms, which would make every slash command 10 ms slower.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import Counter
from pydantic import SecretStr
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.error import BoltError
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.inflight import BUSY_TEXT, InFlightLimit
from adapters.limits import read_body, too_large
from adapters.slack import ids, inbound, render
from adapters.slack.delivery import SlackTransport, web_client
from adapters.slack.env import SlackEnv
from bot.commands import Command, OpenCase
from bot.messages import Address, Notice, OutboxMessage, Reply, ThreadLink
from bot.runtime import Runtime
from bot.store import Commit
from workflows import grammar

log = structlog.get_logger("escalator.slack")

PATH = "/slack/events"
APP_RATE_LIMITED = Counter("escalator_slack_app_rate_limited_total",
                           "Slack app_rate_limited notices: Slack dropped events for a minute")
INTERACTIVE_TIMEOUT_S = 2  # views.open must happen within Slack's 3 s anyway
Ack = Callable[..., Awaitable[Any]]
TIMESTAMP = re.compile(r"\d{1,12}", re.ASCII)


def well_formed(payload: dict[str, Any]) -> bool:
    """The parts Bolt and our listeners index into have the types Slack sends (else Bolt's
    middleware raises and answers 500): an event is an object with a type (an app_mention
    with text, user and channel strings), actions a list of objects, a view an object."""
    kind = payload.get("type")
    if kind == "event_callback":
        event = payload.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return False
        if event["type"] == "app_mention":
            return all(isinstance(event.get(key, ""), str) for key in ("text", "user", "channel", "ts"))
        return True
    shapes = {"actions": list, "view": dict, "message": dict, "user": dict, "team": dict, "channel": dict,
              "container": dict}
    if kind in ("block_actions", "view_submission", "view_closed", "message_action", "shortcut"):
        if any(key in payload and not isinstance(payload[key], shape) for key, shape in shapes.items()):
            return False
        if not all(isinstance(a, dict) for a in payload.get("actions") or []):
            return False
        view = payload.get("view") or {}
        return isinstance(view.get("state", {}), dict) and isinstance(view.get("callback_id", ""), str)
    return kind is None or isinstance(kind, str)


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value().strip() if value is not None else ""


class SlackAdapter:
    """`adapters.platform.PlatformAdapter` for Slack. Build it with `build_slack_adapter`."""

    platform = "slack"

    def __init__(self, runtime: Runtime, *, token: str, signing_secret: str, app_token: str = "",
                 api_url: str = "https://slack.com/api/") -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.token = token
        self.signing_secret = signing_secret
        self.app_token = app_token
        self.api_url = api_url
        slack = runtime.config.platform_settings("slack")
        self.workspace_url = slack.url if slack else None
        self.bolt: AsyncApp | None = None
        self.socket_mode: Any = None  # AsyncSocketModeHandler once started
        self._transport: SlackTransport | None = None
        self._follow_ups: set[asyncio.Task[None]] = set()
        self._connecting: asyncio.Task[None] | None = None
        self.in_flight = InFlightLimit(runtime.settings.escalator_max_in_flight)
        if token:
            client = AsyncWebClient(token=token, base_url=api_url, timeout=INTERACTIVE_TIMEOUT_S,
                                    retry_handlers=[])
            self.bolt = AsyncApp(client=client, signing_secret=signing_secret, process_before_response=True,
                                 name="escalator", logger=logging.getLogger("escalator.slack.bolt"))
            self._register(self.bolt)

    # ---- PlatformAdapter ----------------------------------------------------------------

    @property
    def http_enabled(self) -> bool:
        """HTTP mode needs a bot token and a signing secret; without the secret nothing is trusted."""
        return self.bolt is not None and bool(self.signing_secret)

    def mount(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.handle_http)

    def transport(self) -> SlackTransport | None:
        if not self.token:
            return None
        if self._transport is None:
            self._transport = SlackTransport(store=self.runtime.store, clock=self.runtime.clock,
                                             client=web_client(token=self.token, base_url=self.api_url),
                                             workspace_url=self.workspace_url)
        return self._transport

    async def start(self) -> None:
        """Connect Socket Mode when an app-level token (SLACK_APP_TOKEN) is configured."""
        if self.bolt is None or not self.app_token:
            return
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self.socket_mode = AsyncSocketModeHandler(self.bolt, app_token=self.app_token)
        # In the background: the client retries until Slack answers, and the server (health,
        # metrics, Teams) must come up meanwhile.
        self._connecting = asyncio.create_task(self.socket_mode.connect_async(), name="slack-socket-mode")
        log.info("slack socket mode connecting")

    async def stop(self) -> None:
        if self.socket_mode is not None:
            await self.socket_mode.close_async()
            self.socket_mode = None
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
            self._connecting = None
        await self.flush()

    async def flush(self) -> None:
        """Wait for the follow-up messages (button results) still being sent to callers."""
        while self._follow_ups:
            await asyncio.gather(*list(self._follow_ups), return_exceptions=True)

    async def handle_http(self, request: web.Request) -> web.Response:
        """POST /slack/events: commands, interactivity and events.

        Checked before anything parses the body: its size (413), then its signature (401);
        only then does Bolt read it, and a body it cannot read is a 400. Bolt verifies the
        signature again before any listener runs.
        """
        if self.bolt is None or not self.http_enabled:
            return web.json_response(
                {"error": "Slack is not configured here: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"},
                status=503)
        raw = await read_body(request)
        if raw is None:
            log.warning("slack request refused: body too large", platform="slack",
                        length=request.content_length)
            return too_large()
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return web.json_response({"error": "the body is not UTF-8"}, status=400)
        if not self._signed(body, request):
            return web.json_response({"error": "invalid request signature"}, status=401)
        try:
            bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers))
        except (ValueError, TypeError, AttributeError, KeyError, BoltError) as exc:
            log.warning("slack request refused: unreadable body", platform="slack", error=type(exc).__name__)
            return web.json_response({"error": "the body is not a Slack request"}, status=400)
        payload = bolt_request.body
        if not isinstance(payload, dict) or not well_formed(payload):
            log.warning("slack request refused: unexpected shape", platform="slack")
            return web.json_response({"error": "the body is not a Slack request"}, status=400)
        if payload.get("type") == "app_rate_limited":
            return self._rate_limited(payload)
        async with self.in_flight.slot() as admitted:
            if not admitted:
                return self._busy(payload)
            response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    @staticmethod
    def _busy(payload: dict[str, Any]) -> web.Response:
        """Too many requests in flight: nothing ran, so the retry (same trigger or event id) runs once.

        A slash command gets its answer as an ephemeral reply; anything else a 503, which Slack
        retries for events.
        """
        if payload.get("command"):
            return web.json_response({"response_type": "ephemeral", "text": BUSY_TEXT})
        return web.json_response({"error": BUSY_TEXT}, status=503, headers={"Retry-After": "1"})

    def _signed(self, body: str, request: web.Request) -> bool:
        """Slack's signature over the raw body and a numeric, fresh timestamp (slack_sdk checks both)."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not TIMESTAMP.fullmatch(timestamp) or not signature:
            return False
        return SignatureVerifier(self.signing_secret).is_valid(body=body, timestamp=timestamp, signature=signature)

    def _rate_limited(self, payload: dict[str, Any]) -> web.Response:
        """Slack dropped events for a minute (over 30,000 an hour); counted, logged, and answered 200.

        A non-2xx answer counts as a failed delivery, and Slack turns event subscriptions off
        when more than 5% of them fail.
        """
        APP_RATE_LIMITED.inc()
        log.warning("slack app rate limited: events were dropped", platform="slack",
                    team_id=str(payload.get("team_id") or "")[:20],
                    minute_rate_limited=payload.get("minute_rate_limited"))
        return web.Response(status=200)

    # ---- listeners --------------------------------------------------------------------

    def _register(self, bolt: AsyncApp) -> None:
        bolt.command(re.compile(r"^/.+"))(self._on_command)
        bolt.shortcut(ids.SHORTCUT_ESCALATE)(self._on_shortcut)
        bolt.view(ids.FORM_ESCALATE)(self._on_escalate_form)
        bolt.view(ids.FORM_REASON)(self._on_reason_form)
        bolt.view(ids.FORM_INCIDENT_UPDATE)(self._on_incident_update_form)
        bolt.action(re.compile("^" + ids.ACTION_PREFIX))(self._on_button)
        bolt.event("app_mention")(self._on_mention)

    async def _on_command(self, ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        """A slash command: parse, run, answer the caller only (ephemeral)."""
        result = inbound.slash_command(body, self.config)
        if isinstance(result, Reply) and result.form == "escalate":
            form = inbound.form_for_command(body, result)
            view = render.escalate_form(self.config, prefill=form.prefill, metadata=form.metadata)
            if await self._open(client, body.get("trigger_id"), view):
                await ack()
            else:
                await self._ack_reply(ack, Reply(ok=False, text=(
                    "I could not open the form just now. Type it instead, e.g. "
                    "/escalate L2 sev2 customer:globex checkout fails for EU cards")))
            return
        reply = result if isinstance(result, Reply) else await self._handle(result)
        # A case opened just now has no thread yet: skip looking for one (a Redis round trip).
        await self._ack_reply(ack, reply, resolve=not isinstance(result, OpenCase))

    async def _on_shortcut(self, ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        """"Escalate this message": the form, prefilled with the message and its link."""
        await ack()
        form = inbound.form_for_shortcut(body, workspace_url=self.workspace_url, config=self.config)
        view = render.escalate_form(self.config, prefill=form.prefill, metadata=form.metadata,
                                    source_url=form.source_url)
        await self._open(client, body.get("trigger_id"), view)

    async def _on_escalate_form(self, ack: Ack, body: dict[str, Any]) -> None:
        """The escalation form was submitted: open the case, show the outcome in the modal."""
        await self._submit(ack, inbound.escalate_submission(body, self.config), ids.BLOCK_SUMMARY,
                           lambda reply: "Case opened")

    async def _on_reason_form(self, ack: Ack, body: dict[str, Any]) -> None:
        """The reason/resolution a button asked for: run the button's command."""
        await self._submit(ack, inbound.reason_submission(body, self.config), ids.BLOCK_REASON,
                           lambda reply: reply.case_id or "Done")

    async def _on_incident_update_form(self, ack: Ack, body: dict[str, Any]) -> None:
        """The Post update form was submitted: post the update, show the outcome in the modal."""
        await self._submit(ack, inbound.incident_update_submission(body, self.config), ids.BLOCK_UPDATE,
                           lambda reply: reply.case_id or "Done", resolve=False)

    async def _submit(self, ack: Ack, result: Command | dict[str, str], block: str,
                      title: Callable[[Reply], str], *, resolve: bool = True) -> None:
        """A modal submission: its problems shown in the modal, else the command run and its outcome
        shown in place of the form (with links to the threads already posted, when `resolve`)."""
        if isinstance(result, dict):
            await ack(response_action="errors", errors=result)
            return
        reply = await self._handle(result)
        if not reply.ok:
            await ack(response_action="errors", errors={block: reply.text[:2000]})
            return
        links = await self._resolve(reply.links) if resolve else []
        await ack(response_action="update", view=render.result_view(title(reply), reply, links=links))

    async def _on_button(self, ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        """A case card button: ask for words first if it needs them, else run it."""
        await ack()
        press = inbound.button_press(body, self.config)
        if press is None:
            return
        if press.needs:
            view = render.reason_form(action=press.action, case_id=press.case_id, target_tier=press.target_tier,
                                      metadata=press.metadata)
            await self._open(client, body.get("trigger_id"), view)
            return
        result = inbound.press_command(press)
        reply = result if isinstance(result, Reply) else await self._handle(result)
        if reply.ok and reply.form == "incident_update":  # the core's form, filled as it says
            view = render.incident_update_form(reply, metadata=inbound.update_form_metadata(reply.case_id or ""))
            if await self._open(client, body.get("trigger_id"), view):
                return
            reply = Reply(ok=False, text=f"I could not open the form just now. Type it instead, e.g. "
                                         f"/crisis {reply.case_id} update identified TEXT")
        self._follow_up(body.get("response_url"), reply)

    async def _on_mention(self, ack: Ack, body: dict[str, Any], event: dict[str, Any]) -> None:
        """`@Escalator escalate ...`: the same commands; the answer goes to the caller by DM."""
        await ack()
        event_id = body.get("event_id")
        # Slack retries an event it thinks we missed (X-Slack-Retry-Num). Its own key namespace:
        # the command's key (`slack:event:<id>`) is the core's, which records the outcome under it.
        if event_id and not await self.runtime.store.claim_once(f"slack:event-seen:{event_id}"):
            log.info("slack event retry ignored", event_id=event_id)
            return
        result = inbound.mention_command(event, event_id, self.config)
        if isinstance(result, Reply) and result.form == "escalate":
            result = Reply(ok=False, text="Use /escalate to open the form, or write the escalation out, e.g. "
                                          "@Escalator escalate L2 sev2 checkout fails for EU cards")
        reply = result if isinstance(result, Reply) else await self._handle(result)
        user = event.get("user")
        if user:
            await self._tell(user, reply, message_id=f"slack-mention-{event_id or uuid.uuid4().hex}")

    # ---- helpers ------------------------------------------------------------------------

    async def _handle(self, command: Command) -> Reply:
        """Run a command; a bug becomes a short apology to the caller, and a log line for us."""
        try:
            return grammar.with_notes(await self.runtime.bus.handle(command), command, self.config)
        except Exception:
            log.exception("slack command failed", command=type(command).__name__)
            return Reply(ok=False, text="Something went wrong on our side and it has been logged. "
                                        "Please try again in a minute.")

    async def _ack_reply(self, ack: Ack, reply: Reply, *, resolve: bool = True) -> None:
        links = await self._resolve(reply.links) if resolve else []
        message = render.render_reply(reply, links=links)
        if message.blocks:
            await ack(text=message.text, blocks=message.blocks, response_type="ephemeral")
        else:
            await ack(text=message.text, response_type="ephemeral")

    async def _resolve(self, links: Sequence[ThreadLink]) -> list[render.ResolvedLink]:
        """Thread links whose thread is already posted (a brand-new case's is not, yet)."""
        out = []
        for lnk in links:
            refs = await self.runtime.store.thread_refs(lnk.thread)
            ref = refs.get("slack") or next((r for r in refs.values() if r.url), None)
            if ref is not None and ref.url:
                out.append(render.ResolvedLink(label=lnk.label, url=ref.url))
        return out

    async def _open(self, client: AsyncWebClient, trigger_id: str | None, view: dict[str, Any]) -> bool:
        if not trigger_id:
            return False
        try:
            await client.views_open(trigger_id=trigger_id, view=view)
            return True
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("could not open a slack modal", error=str(exc)[:200])
            return False

    def _follow_up(self, response_url: str | None, reply: Reply) -> None:
        """Tell the clicker the outcome via `response_url`, without holding up the ack."""
        if not response_url:
            return
        task = asyncio.create_task(self._send_follow_up(response_url, reply))
        self._follow_ups.add(task)
        task.add_done_callback(self._follow_ups.discard)

    async def _send_follow_up(self, response_url: str, reply: Reply) -> None:
        message = render.render_reply(reply, links=await self._resolve(reply.links))
        payload: dict[str, Any] = {"response_type": "ephemeral", "replace_original": False, "text": message.text}
        if message.blocks:
            payload["blocks"] = message.blocks
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, \
                    session.post(response_url, json=payload) as response:
                if response.status >= 400:
                    log.warning("slack follow-up refused", status=response.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("slack follow-up failed", error=str(exc)[:200])

    async def _tell(self, user_id: str, reply: Reply, *, message_id: str) -> None:
        """A reply to someone who wrote to us in a channel: by DM, through the outbox."""
        notice = Notice(kind="direct", title=reply.title or ("Escalator" if reply.ok else "Escalator: not done"),
                        text=reply.text, fields=reply.fields, case_id=reply.case_id)
        message = OutboxMessage(id=message_id, address=Address(platform="slack", user=user_id, private=True),
                                notice=notice, created_at=self.runtime.clock.now())
        await self.runtime.store.commit(Commit(messages=[message]))


def build_slack_adapter(runtime: Runtime) -> SlackAdapter:
    """The Slack adapter from the runtime's settings (SLACK_* environment variables).

    Without SLACK_BOT_TOKEN it still mounts `/slack/events` (answering 503) and has no
    transport, so the bot runs without Slack and Slack messages wait in the outbox.
    """
    env = runtime.settings.platform(SlackEnv)
    adapter = SlackAdapter(runtime, token=_secret(env.bot_token), signing_secret=_secret(env.signing_secret),
                           app_token=_secret(env.app_token), api_url=env.api_url)
    if adapter.bolt is not None and not adapter.signing_secret and not adapter.app_token:
        log.warning("SLACK_SIGNING_SECRET is not set: /slack/events refuses every request")
    return adapter
