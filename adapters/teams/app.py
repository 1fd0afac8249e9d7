"""Wiring of the Teams adapter: botbuilder's CloudAdapter at POST /api/messages, the bot, delivery.

`build_teams_adapter(runtime)` is the only entry point (the CLI calls it). The bot itself makes no
workflow decisions: it turns activities into commands (inbound.py), hands them to the bus, and
shows the caller the reply (render.py). Outbound messages leave through the outbox and
`TeamsTransport` (delivery.py), never from inside a turn, so a Teams hiccup cannot lose them.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import structlog
from aiohttp import web
from botbuilder.core import Bot, BotAdapter, InvokeResponse, TurnContext, serializer_helper
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

from adapters.inflight import BUSY_TEXT, InFlightLimit
from adapters.limits import MAX_MESSAGE_CHARS, TOO_LONG, read_body, too_large
from adapters.teams import inbound
from adapters.teams.delivery import REFS, TEAMS_IDS, USERS, TeamsTransport, reference_json, resolve_links
from adapters.teams.env import TeamsEnv
from adapters.teams.render import (
    ADAPTIVE_CARD,
    CARD_ACTION,
    INCIDENT_CARD,
    OPEN_CASE,
    Card,
    Link,
    attachment,
    escalation_form,
    incident_update_form,
    needs_card,
    notice_card,
    plain_text,
    reply_card,
)
from bot.commands import Command
from bot.fanout import fan_out
from bot.incidents import Incident
from bot.messages import Audience, Notice, Reply
from bot.outbox import Transport
from bot.runtime import Runtime
from workflows import grammar
from workflows.cards import case_card, thread
from workflows.crisis import incident_views

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

    Before any of that, what the library would choke on is refused: a body over 1 MB (413), a
    body that is not an activity with a type, conversation and serviceUrl (400), and in local
    mode (no MICROSOFT_APP_ID) any serviceUrl but the configured one (401).
    """

    def __init__(self, auth: BotFrameworkAuthentication, *, local: bool, service_url: str | None) -> None:
        super().__init__(auth)
        self.local = local
        self.service_url = service_url

    async def process(self, request: web.Request, bot: Bot,
                      ws_response: web.WebSocketResponse | None = None) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405)
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.Response(status=415)
        raw = await read_body(request)
        if raw is None:
            log.warning("teams request refused: body too large", platform="teams", length=request.content_length)
            return too_large()
        activity = _activity(raw)
        if activity is None:
            return web.Response(status=400, text="expected an activity with a type, a conversation and a serviceUrl")
        if self.local and not _same_url(activity.service_url, self.service_url):
            # Without authentication the caller could name any serviceUrl, and every reply of
            # this turn would go there: only the configured one is accepted.
            log.warning("teams request refused: not the configured service URL", platform="teams")
            return web.Response(status=401, text="unknown serviceUrl")
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


def _activity(raw: bytes) -> Activity | None:
    """The activity, if the body is one botbuilder can run: an object with a type, a
    conversation id and a serviceUrl (anything else made botbuilder fail with a 500)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str) or not data["type"]:
        return None
    conversation = data.get("conversation")
    if not isinstance(conversation, dict) or not conversation.get("id") or not isinstance(conversation["id"], str) \
            or not isinstance(data.get("serviceUrl"), str) or not isinstance(data.get("from", {}), dict):
        return None
    try:
        activity: Activity = Activity().deserialize(data)
    except Exception:  # msrest refuses wrongly typed fields
        return None
    return activity


def _same_url(url: str | None, expected: str | None) -> bool:
    """Service URLs compare without case in scheme and host and without a trailing slash."""
    if not url or not expected:
        return False
    a, b = urlparse(url.strip()), urlparse(expected.strip())
    return (a.scheme.lower(), (a.netloc or "").lower(), a.path.rstrip("/")) == \
        (b.scheme.lower(), (b.netloc or "").lower(), b.path.rstrip("/"))


def _invoke(body: Mapping[str, Any] | None, status: int = 200) -> InvokeResponse:
    return InvokeResponse(status=status, body=dict(body) if body is not None else None)


def card_response(card: Card) -> InvokeResponse:
    """The Universal Actions answer that replaces the card for the person who pressed."""
    return _invoke({"statusCode": 200, "type": ADAPTIVE_CARD, "value": card})


def message_response(text: str) -> InvokeResponse:
    """A Universal Actions answer that shows `text` to the presser only and leaves the card as is."""
    return _invoke({"statusCode": 200, "type": MESSAGE_RESPONSE, "value": plain_text(text)})


class EscalatorTeamsBot(TeamsActivityHandler):  # type: ignore[misc]  # botbuilder ships no type hints
    """Activities in, commands to the bus, replies out; conversation references kept on the way."""

    def __init__(self, runtime: Runtime, *, tenant_id: str | None) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.tenant_id = tenant_id

    # ---- every turn ---------------------------------------------------------------------------

    async def on_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if activity.type in (ActivityTypes.message, ActivityTypes.invoke) and activity.id \
                and not await self.runtime.store.claim_once(f"teams:activity-seen:{activity.id}"):
            # Teams redelivers an activity it thinks we missed. The core does the command once;
            # a message must not get its answer posted twice, and an invoke only answers the
            # caller's HTTP request (the same card again), so it may run.
            log.info("teams activity redelivered", platform="teams", activity_id=activity.id, type=activity.type)
            if activity.type == ActivityTypes.message:
                return
        if _vouched_for(turn_context):
            await self.remember(activity)
        await super().on_turn(turn_context)

    async def remember(self, activity: Activity) -> None:
        """Keep the conversation reference, so the bot can write to this chat (or person) later.

        Only called for activities whose Bot Framework token names this serviceUrl: a reference
        decides where a person's direct messages go, so nobody else may write one.
        """
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
        if len(activity.text or "") > MAX_MESSAGE_CHARS:
            log.info("teams message refused: too long", platform="teams", length=len(activity.text or ""))
            await turn_context.send_activity(Activity(type="message", text_format="plain", text=TOO_LONG))
            return
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
        return grammar.with_notes(await self.runtime.bus.handle(result), result, self.config)

    async def send_reply(self, turn_context: TurnContext, reply: Reply) -> None:
        links = await self.reply_links(reply)
        if needs_card(reply, links):
            activity = Activity(type="message", attachments=[attachment(reply_card(reply, links=links))])
        else:
            activity = Activity(type="message", text=plain_text(reply.text, reply.case_id), text_format="plain")
        await turn_context.send_activity(activity)

    async def reply_links(self, reply: Reply) -> list[Link]:
        """Links to threads already posted (a brand-new case's thread is not, yet)."""
        return await resolve_links(self.runtime.store, reply.links, tenant_id=self.tenant_id, strict=False)

    # ---- Action.Execute (card buttons and the chat form) --------------------------------------

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        if turn_context.activity.name == "adaptiveCard/action":
            return await self.on_card_action(turn_context)
        if turn_context.activity.value is not None and not isinstance(turn_context.activity.value, dict):
            return _invoke(None, 400)  # every invoke Teams sends carries an object; botbuilder trips on others
        response: InvokeResponse | None = await super().on_invoke_activity(turn_context)
        if response is None or response.status == 501:
            # botbuilder answers invokes nobody handles with 501; Teams shows that as an error.
            log.info("teams invoke not handled", platform="teams", name=str(turn_context.activity.name)[:80])
            return _invoke(None)
        return response

    async def on_card_action(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        value = activity.value if isinstance(activity.value, dict) else {}
        raw_action = value.get("action")
        action: dict[str, Any] = raw_action if isinstance(raw_action, dict) else {}
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
        if data.get("escalator") == INCIDENT_CARD:  # Cancel on the update form: the card as it is now
            card = await self.current_incident_card(str(data.get("case_id") or ""))
            return card_response(card) if card else message_response("That incident is gone.")
        if data.get("escalator") != CARD_ACTION:
            return message_response("That button is not one I know.")
        press = inbound.card_command(verb, data, activity, self.config)
        reply = await self.dispatch(press.result)
        if not reply.ok:
            return message_response(reply.text)
        if reply.form == "incident_update":  # the core's form, filled as it says, for the presser only
            return card_response(incident_update_form(reply))
        if verb.startswith("swarm_"):  # a swarm card or invitation, not a case card: delivery updates it
            return message_response(reply.text)
        if verb.startswith("incident_"):
            card = await self.current_incident_card(press.case_id)
        else:
            card = await self.current_card(press.case_id, press.tier)
        return card_response(card) if card else message_response(reply.text)

    async def current_card(self, case_id: str, tier: str | None) -> Card | None:
        """The case card as the delivery worker will show it: scrubbed for shared channels."""
        case = await self.runtime.store.get_case(case_id)
        if case is None:
            return None
        tier = tier or case.tier
        notice = case_card(case, self.config, self.runtime.clock.now(), thread_tier=tier)
        return await self._as_delivered(notice, thread(case, self.config, tier), tier)

    async def current_incident_card(self, incident_id: str) -> Card | None:
        """The incident card as the delivery worker will show it (after an update, or Cancel)."""
        incident = await self.runtime.store.get_record(Incident, incident_id.upper()) if incident_id else None
        if incident is None:
            return None
        views = incident_views(None, incident, self.config, self.runtime.clock.now())
        return await self._as_delivered(*views[0], None) if views else None

    async def _as_delivered(self, notice: Notice, audience: Audience, tier: str | None) -> Card:
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
        return MessagingExtensionActionResponse(task=TaskModuleMessageResponse(value=plain_text(reply.text)))


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
                 delivery: TeamsTransport | None, loopback_only: bool = False) -> None:
        self.runtime = runtime
        self.loopback_only = loopback_only
        self.cloud = cloud
        self.connectors = connectors
        self.delivery = delivery
        self.bot = EscalatorTeamsBot(runtime, tenant_id=_tenant(runtime))
        cloud.on_turn_error = self._on_turn_error
        self.in_flight = InFlightLimit(runtime.settings.escalator_max_in_flight)

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/api/messages", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        if self.loopback_only and not _is_loopback(request.remote):
            # Local mode checks no token: anyone who can reach the port could be anyone.
            log.warning("teams request refused: local mode accepts this machine only", platform="teams",
                        remote=request.remote)
            return web.Response(status=401, text="Teams local mode accepts requests from this machine only; "
                                                 "set MICROSOFT_APP_ID (or ESCALATOR_ALLOW_UNAUTHENTICATED_TEAMS=1)")
        async with self.in_flight.slot() as admitted:
            if not admitted:  # nothing ran: the Bot Connector's retry runs it once
                return web.json_response({"error": BUSY_TEXT}, status=503, headers={"Retry-After": "1"})
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
    env = runtime.settings.platform(TeamsEnv)
    app_id = env.id.strip()
    try:
        auth = ConfigurationBotFrameworkAuthentication(AuthConfig(
            app_id, env.password.get_secret_value(), env.tenant_id.strip(), env.app_type))
    except Exception as exc:  # botbuilder names its own config keys; say which variable to set
        raise ValueError(f"Teams credentials are incomplete for a {env.app_type} bot: set "
                         "MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD and (single tenant) MICROSOFT_APP_TENANT_ID "
                         f"({exc})") from exc
    teams = runtime.config.platform_settings("teams")
    service_url = teams.service_url if teams else None
    cloud = EscalatorCloudAdapter(auth, local=not app_id, service_url=service_url)
    connectors = Connectors(auth, app_id)
    tenant = _tenant(runtime)
    delivery = None
    if service_url and (app_id or _is_local(service_url)):
        delivery = TeamsTransport(store=runtime.store, clock=runtime.clock, connectors=connectors,
                                  service_url=service_url, bot_id=f"28:{app_id or 'escalator-local'}",
                                  tenant_id=tenant, group_id=_group(runtime))
    elif service_url:
        log.warning("MICROSOFT_APP_ID is empty: Teams messages wait in the outbox", platform="teams")
    loopback_only = not app_id and not env.allow_unauthenticated
    return TeamsAdapter(runtime, cloud=cloud, connectors=connectors, delivery=delivery, loopback_only=loopback_only)


def _tenant(runtime: Runtime) -> str | None:
    teams = runtime.config.platform_settings("teams")
    return (teams.tenant_id if teams else None) or runtime.settings.platform(TeamsEnv).tenant_id.strip() or None


def _group(runtime: Runtime) -> str | None:
    """The team's Entra group id (for channel deep links in pages): `team_id` when it is one (a GUID)."""
    teams = runtime.config.platform_settings("teams")
    team = (teams.team_id if teams else None) or ""
    return team if re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", team) else None


def _vouched_for(turn_context: TurnContext) -> bool:
    """True when a Bot Framework token checked out for this very serviceUrl (never in local mode)."""
    identity = turn_context.turn_state.get(BotAdapter.BOT_IDENTITY_KEY)
    claims = getattr(identity, "claims", None)
    if not isinstance(claims, dict) or not getattr(identity, "is_authenticated", False):
        return False
    return _same_url(claims.get(AuthenticationConstants.SERVICE_URL_CLAIM), turn_context.activity.service_url)


def _is_loopback(remote: str | None) -> bool:
    try:
        address = ipaddress.ip_address((remote or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def _is_local(url: str) -> bool:
    """Local mode may only send to a local connector (the emulator or a test fake)."""
    return (urlparse(url).hostname or "") in LOCAL_HOSTS


__all__ = ["EscalatorCloudAdapter", "EscalatorTeamsBot", "TeamsAdapter", "build_teams_adapter"]
