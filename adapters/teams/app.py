"""Wiring of the Teams adapter: botbuilder's CloudAdapter at POST /api/messages, the bot, delivery.

`build_teams_adapter(runtime)` is the only entry point (the CLI calls it). The bot itself makes no
workflow decisions: it turns activities into commands (inbound.py), hands them to the bus, and
shows the caller the reply (render.py). Outbound messages leave through the outbox and
`TeamsTransport` (delivery.py), never from inside a turn, so a Teams hiccup cannot lose them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import structlog
from aiohttp import web
from botbuilder.core import Bot, InvokeResponse, TurnContext, serializer_helper
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, Attachment
from botbuilder.schema.teams import (
    MessagingExtensionAction,
    MessagingExtensionActionResponse,
    TaskModuleContinueResponse,
    TaskModuleMessageResponse,
    TaskModuleTaskInfo,
)
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import AuthenticationConstants, BotFrameworkAuthentication, ClaimsIdentity
from msrest.serialization import Model

from adapters.teams import inbound
from adapters.teams.delivery import REFS, TEAMS_IDS, USERS, TeamsTransport, reference_json, resolve_links
from adapters.teams.render import (
    ADAPTIVE_CARD,
    CARD_ACTION,
    OPEN_CASE,
    Card,
    Link,
    attachment,
    escalation_form,
    needs_card,
    notice_card,
    reply_card,
)
from bot.commands import Command
from bot.fanout import fan_out
from bot.messages import Notice, Reply
from bot.outbox import Transport
from bot.runtime import Runtime
from workflows.cards import case_card, thread

log = structlog.get_logger("escalator.teams")

MESSAGE_RESPONSE = "application/vnd.microsoft.activity.message"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
SORRY = "Sorry, something went wrong on my side and it has been logged. Please try again in a minute."


class AuthConfig:
    """The attribute names botbuilder's configuration classes read, filled from our Settings."""

    def __init__(self, app_id: str, password: str, tenant_id: str, app_type: str) -> None:
        self.APP_ID = app_id
        self.APP_PASSWORD = password
        self.APP_TENANTID = tenant_id
        # With no app id (local/emulator mode) only MultiTenant turns authentication off cleanly.
        self.APP_TYPE = app_type if app_id else "MultiTenant"


class EscalatorCloudAdapter(CloudAdapter):  # type: ignore[misc]  # botbuilder ships no type hints
    """CloudAdapter.process with two fixes for botbuilder 4.17.1.

    1. Invoke responses: the library serializes an already serialized body a second time and
       answers every Action.Execute with HTTP 500; here dict bodies are returned as they are.
    2. Authentication: any failure (missing, malformed or forged token) is a 401 that runs no
       bot code; the library lets a malformed token escape as a 500.
    """

    async def process(self, request: web.Request, bot: Bot,
                      ws_response: web.WebSocketResponse | None = None) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405)
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.Response(status=415)
        try:
            activity: Activity = Activity().deserialize(await request.json())
        except Exception:  # not JSON, or JSON that is not an activity: nothing to run
            return web.Response(status=400, text="expected an activity")
        if not activity.type:
            return web.Response(status=400, text="expected an activity")
        # botbuilder only treats a *missing* header as "no auth" in emulator mode: pass None, not "".
        header = request.headers.get("Authorization") or None
        try:
            auth = await self.bot_framework_authentication.authenticate_request(activity, header)
        except Exception as exc:  # any doubt about the caller is a 401, and nothing runs
            log.warning("teams request refused", reason=type(exc).__name__, platform="teams")
            return web.Response(status=401)
        invoke = await self.process_activity(auth, activity, bot.on_turn)
        if invoke is None:
            return web.Response(status=201)
        payload = invoke.body
        if isinstance(payload, Model):
            payload = serializer_helper(payload)
        if payload is None:
            return web.Response(status=invoke.status)
        return web.json_response(payload, status=invoke.status)


def _invoke(body: Mapping[str, Any] | None, status: int = 200) -> InvokeResponse:
    return InvokeResponse(status=status, body=dict(body) if body is not None else None)


def card_response(card: Card) -> InvokeResponse:
    """The Universal Actions answer that replaces the card for the person who pressed."""
    return _invoke({"statusCode": 200, "type": ADAPTIVE_CARD, "value": card})


def message_response(text: str) -> InvokeResponse:
    """A Universal Actions answer that shows `text` to the presser only and leaves the card as is."""
    return _invoke({"statusCode": 200, "type": MESSAGE_RESPONSE, "value": text})


class EscalatorTeamsBot(TeamsActivityHandler):  # type: ignore[misc]  # botbuilder ships no type hints
    """Activities in, commands to the bus, replies out; conversation references kept on the way."""

    def __init__(self, runtime: Runtime, *, tenant_id: str | None) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.tenant_id = tenant_id

    # ---- every turn ---------------------------------------------------------------------------

    async def on_turn(self, turn_context: TurnContext) -> None:
        await self.remember(turn_context.activity)
        await super().on_turn(turn_context)

    async def remember(self, activity: Activity) -> None:
        """Keep the conversation reference, so the bot can write to this chat (or person) later."""
        if not activity.conversation or not activity.conversation.id or not activity.service_url:
            return
        if activity.type not in (ActivityTypes.message, ActivityTypes.conversation_update,
                                 ActivityTypes.installation_update, ActivityTypes.invoke):
            return
        sender = activity.from_property
        aad = getattr(sender, "aad_object_id", None) if sender else None
        if aad and sender.id and sender.id != aad:
            # The config may name people by Entra object id; mentions want the Teams id (29:...).
            await self.runtime.store.put_ref(TEAMS_IDS, str(aad), str(sender.id))
        personal = inbound.conversation_type(activity) == "personal"
        installed = activity.type in (ActivityTypes.conversation_update, ActivityTypes.installation_update)
        if not (personal or installed):
            return  # a message in a channel thread tells us nothing we can write to later
        raw = reference_json(TurnContext.get_conversation_reference(activity))
        store = self.runtime.store
        await store.put_ref(REFS, str(activity.conversation.id), raw)
        if personal and sender and sender.id:
            await store.put_ref(USERS, str(sender.id), raw)
            if aad:
                await store.put_ref(USERS, str(aad), raw)

    # ---- messages -----------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        value = activity.value if isinstance(activity.value, dict) else {}
        if value.get("escalator") == OPEN_CASE:  # the form sent with Action.Submit (older clients)
            result = inbound.form_command(value, activity, self.config)
        elif value.get("escalator") == CARD_ACTION:
            result = inbound.card_command(None, value, activity, self.config).result
        else:
            result = inbound.message_command(activity, self.config)
        reply = await self.dispatch(result)
        if reply.form == "escalate":
            form = escalation_form(self.config, form_id=uuid.uuid4().hex, prefill=reply.prefill)
            await turn_context.send_activity(Activity(type="message", attachments=[attachment(form)]))
            return
        await self.send_reply(turn_context, reply)

    async def dispatch(self, result: Command | Reply) -> Reply:
        if isinstance(result, Reply):
            return result
        return await self.runtime.bus.handle(result)

    async def send_reply(self, turn_context: TurnContext, reply: Reply) -> None:
        links = await self.reply_links(reply)
        if needs_card(reply, links):
            activity = Activity(type="message", attachments=[attachment(reply_card(reply, links=links))])
        else:
            activity = Activity(type="message", text=reply.text, text_format="plain")
        await turn_context.send_activity(activity)

    async def reply_links(self, reply: Reply) -> list[Link]:
        """Links to threads already posted (a brand-new case's thread is not, yet)."""
        return await resolve_links(self.runtime.store, reply.links, tenant_id=self.tenant_id, strict=False)

    # ---- Action.Execute (card buttons and the chat form) --------------------------------------

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        if turn_context.activity.name == "adaptiveCard/action":
            return await self.on_card_action(turn_context)
        response: InvokeResponse = await super().on_invoke_activity(turn_context)
        return response

    async def on_card_action(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        value = activity.value if isinstance(activity.value, dict) else {}
        action = value.get("action") or {}
        verb = str(action.get("verb") or "")
        raw_data = action.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        if action.get("type") != "Action.Execute":
            return _invoke({"statusCode": 400, "type": "application/vnd.microsoft.error",
                            "value": {"code": "BadRequest", "message": "expected Action.Execute"}})
        if verb == OPEN_CASE or data.get("escalator") == OPEN_CASE:
            reply = await self.dispatch(inbound.form_command(data, activity, self.config))
            if not reply.ok:
                return message_response(reply.text)
            return card_response(reply_card(reply, links=await self.reply_links(reply)))
        if data.get("escalator") != CARD_ACTION:
            return message_response("That button is not one I know.")
        press = inbound.card_command(verb, data, activity, self.config)
        reply = await self.dispatch(press.result)
        if not reply.ok:
            return message_response(reply.text)
        if verb.startswith("swarm_"):  # a swarm card or invitation, not a case card: delivery updates it
            return message_response(reply.text)
        card = await self.current_card(press.case_id, press.tier)
        return card_response(card) if card else message_response(reply.text)

    async def current_card(self, case_id: str, tier: str | None) -> Card | None:
        """The case card as the delivery worker will show it: scrubbed for shared channels."""
        case = await self.runtime.store.get_case(case_id)
        if case is None:
            return None
        tier = tier or case.tier
        notice = case_card(case, self.config, self.runtime.clock.now(), thread_tier=tier)
        audience = thread(case, self.config, tier)
        bound: Notice = notice
        for message in fan_out([(notice, audience)], self.config, self.runtime.clock.now()).messages:
            if message.address.platform == "teams":
                bound = message.notice
                break
        links = await resolve_links(self.runtime.store, bound.links, tenant_id=self.tenant_id, strict=False)
        return notice_card(bound, tier=tier, links=links)

    # ---- "Escalate this message" (a message action) ------------------------------------------

    async def on_teams_messaging_extension_fetch_task(
            self, turn_context: TurnContext, action: MessagingExtensionAction) -> MessagingExtensionActionResponse:
        prefill = inbound.message_action_prefill(turn_context.activity.value)
        form = escalation_form(self.config, form_id=uuid.uuid4().hex, prefill=prefill, mode="submit")
        info = TaskModuleTaskInfo(title="Escalate this message", height="large", width="medium",
                                  card=Attachment(content_type=ADAPTIVE_CARD, content=form))
        return MessagingExtensionActionResponse(task=TaskModuleContinueResponse(value=info))

    async def on_teams_messaging_extension_submit_action(
            self, turn_context: TurnContext, action: MessagingExtensionAction) -> MessagingExtensionActionResponse:
        activity = turn_context.activity
        data = dict(action.data) if isinstance(action.data, dict) else {}
        if not data.get("message_url"):
            data["message_url"] = inbound.message_action_prefill(activity.value).get("message_url", "")
        reply = await self.dispatch(inbound.form_command(data, activity, self.config))
        return MessagingExtensionActionResponse(task=TaskModuleMessageResponse(value=reply.text))


class Connectors:
    """Bot Connector clients per service URL, made by botbuilder's authentication (MSAL tokens)."""

    def __init__(self, auth: BotFrameworkAuthentication, app_id: str) -> None:
        self.auth = auth
        self.app_id = app_id
        self._clients: dict[str, ConnectorClient] = {}

    async def __call__(self, service_url: str) -> ConnectorClient:
        client = self._clients.get(service_url)
        if client is None:
            claims = ClaimsIdentity({AuthenticationConstants.AUDIENCE_CLAIM: self.app_id,
                                     AuthenticationConstants.APP_ID_CLAIM: self.app_id}, True)
            client = await self.auth.create_connector_factory(claims).create(service_url, None)
            self._clients[service_url] = client
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.__aexit__(None, None, None)


class TeamsAdapter:
    """adapters.platform.PlatformAdapter for Microsoft Teams."""

    platform = "teams"

    def __init__(self, runtime: Runtime, *, cloud: EscalatorCloudAdapter, connectors: Connectors,
                 delivery: TeamsTransport | None) -> None:
        self.runtime = runtime
        self.cloud = cloud
        self.connectors = connectors
        self.delivery = delivery
        self.bot = EscalatorTeamsBot(runtime, tenant_id=_tenant(runtime))
        cloud.on_turn_error = self._on_turn_error

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/api/messages", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        return await self.cloud.process(request, self.bot)

    def transport(self) -> Transport | None:
        return self.delivery

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.connectors.close()

    async def _on_turn_error(self, turn_context: TurnContext, error: Exception) -> None:
        """A bug must not leave the caller waiting: log it, apologise where Teams lets us."""
        log.error("teams turn failed", platform="teams", error=type(error).__name__, exc_info=error)
        activity = turn_context.activity
        if activity.type == ActivityTypes.message:
            await turn_context.send_activity(Activity(type="message", text_format="plain", text=SORRY))
        elif activity.type == ActivityTypes.invoke and activity.name == "adaptiveCard/action":
            await turn_context.send_activity(Activity(type=ActivityTypes.invoke_response,
                                                      value=message_response(SORRY)))


def build_teams_adapter(runtime: Runtime) -> TeamsAdapter:
    """The Teams adapter from MICROSOFT_APP_* settings; an empty app id is local/emulator mode."""
    settings = runtime.settings
    app_id = settings.microsoft_app_id.strip()
    try:
        auth = ConfigurationBotFrameworkAuthentication(AuthConfig(
            app_id, settings.microsoft_app_password.get_secret_value(), settings.microsoft_app_tenant_id.strip(),
            settings.teams_app_type))
    except Exception as exc:  # botbuilder names its own config keys; say which variable to set
        raise ValueError(f"Teams credentials are incomplete for a {settings.teams_app_type} bot: set "
                         "MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD and (single tenant) MICROSOFT_APP_TENANT_ID "
                         f"({exc})") from exc
    cloud = EscalatorCloudAdapter(auth)
    connectors = Connectors(auth, app_id)
    teams = runtime.config.platform_settings("teams")
    service_url = teams.service_url if teams else None
    tenant = _tenant(runtime)
    delivery = None
    if service_url and (app_id or _is_local(service_url)):
        delivery = TeamsTransport(store=runtime.store, clock=runtime.clock, connectors=connectors,
                                  service_url=service_url, bot_id=f"28:{app_id or 'escalator-local'}",
                                  tenant_id=tenant)
    elif service_url:
        log.warning("MICROSOFT_APP_ID is empty: Teams messages wait in the outbox", platform="teams")
    return TeamsAdapter(runtime, cloud=cloud, connectors=connectors, delivery=delivery)


def _tenant(runtime: Runtime) -> str | None:
    teams = runtime.config.platform_settings("teams")
    return (teams.tenant_id if teams else None) or runtime.settings.microsoft_app_tenant_id.strip() or None


def _is_local(url: str) -> bool:
    """Local mode may only send to a local connector (the emulator or a test fake)."""
    return (urlparse(url).hostname or "") in LOCAL_HOSTS


__all__ = ["EscalatorCloudAdapter", "EscalatorTeamsBot", "TeamsAdapter", "build_teams_adapter"]
