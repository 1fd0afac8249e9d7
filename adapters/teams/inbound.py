"""Teams activities as core commands. Pure: reads the activity and the config, nothing else.

Teams sends three kinds of input we care about: a message to the bot (`@Escalator escalate ...`,
in a channel, a group chat or 1:1), an `adaptiveCard/action` invoke when someone presses a card
button (Action.Execute) or submits the escalation form, and the message action "Escalate this
message" (`composeExtension/fetchTask` then `composeExtension/submitAction`). Each becomes a
Command keyed by the activity id (or the form's id), so a redelivered activity is done once.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args
from urllib.parse import quote

from botbuilder.core import TurnContext
from botbuilder.schema import Activity

from adapters.teams.render import UPDATE_STATUS
from bot.commands import Command, OpenCase
from bot.config import Config
from bot.messages import ActionName, Reply
from bot.model import Actor, Origin
from workflows import grammar
from workflows.grammar import action_command, parse_message

TEAMS_WEB = "https://teams.microsoft.com"
_TAG = re.compile(r"<[^>]+>")
_AT = re.compile(r"<at[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_ACTIONS: tuple[str, ...] = get_args(ActionName)


def channel_data(activity: Activity) -> dict[str, Any]:
    data = activity.channel_data
    if isinstance(data, dict):
        return data
    if data is not None and hasattr(data, "serialize"):
        serialized: dict[str, Any] = data.serialize()
        return serialized
    return {}


def conversation_type(activity: Activity) -> str:
    """`channel`, `groupChat` or `personal` (the emulator sends none: treat it as personal)."""
    conversation = activity.conversation
    return (getattr(conversation, "conversation_type", None) or "personal") if conversation else "personal"


def teams_channel_id(activity: Activity) -> str | None:
    """The Teams channel a channel message was posted in (`19:...@thread.tacv2`)."""
    data = channel_data(activity)
    channel = data.get("channel") or {}
    found = channel.get("id") or data.get("teamsChannelId")
    if found:
        return str(found)
    conversation_id = activity.conversation.id if activity.conversation else ""
    if conversation_type(activity) == "channel" and conversation_id:
        return str(conversation_id).split(";", 1)[0]
    return None


def thread_root(conversation_id: str | None) -> str | None:
    """The root message id of a channel thread (`19:...;messageid=<root>`)."""
    if conversation_id and ";messageid=" in conversation_id:
        return conversation_id.split(";messageid=", 1)[1]
    return None


def tenant_id(activity: Activity) -> str | None:
    conversation = activity.conversation
    if conversation is not None and getattr(conversation, "tenant_id", None):
        return str(conversation.tenant_id)
    tenant = channel_data(activity).get("tenant") or {}
    found = tenant.get("id")
    return str(found) if found else None


def message_link(channel: str, message_id: str, *, root: str | None = None, tenant: str | None = None) -> str:
    """A Teams deep link to a channel message (opens the thread in the Teams client)."""
    params = []
    if tenant:
        params.append(f"tenantId={quote(tenant, safe='')}")
    params.append(f"parentMessageId={quote(root or message_id, safe='')}")
    return f"{TEAMS_WEB}/l/message/{quote(channel, safe='')}/{quote(message_id, safe='')}?{'&'.join(params)}"


def channel_link(channel: str, name: str, *, group: str, tenant: str) -> str:
    """A Teams deep link to a channel: its id, a display name, and the team's Entra group id."""
    return (f"{TEAMS_WEB}/l/channel/{quote(channel, safe='')}/{quote(name, safe='')}"
            f"?groupId={quote(group, safe='')}&tenantId={quote(tenant, safe='')}")


def actor_of(activity: Activity, config: Config) -> Actor:
    """Who sent it: a configured person when their Teams id (29:...) or AAD id is in the config."""
    sender = activity.from_property
    user_id = str(sender.id) if sender and sender.id else None
    person = config.person_by_platform_id("teams", user_id) if user_id else None
    aad = getattr(sender, "aad_object_id", None) if sender else None
    if person is None and aad:
        person = config.person_by_platform_id("teams", str(aad))
    name = (sender.name if sender and sender.name else None) or (config.people[person].name if person else None)
    return Actor(person=person, platform="teams", user_id=user_id, name=name or "someone")


def origin_of(activity: Activity, *, message_url: str | None = None) -> Origin:
    """Where the escalation came from, so the workflows can link back to it."""
    conversation_id = str(activity.conversation.id) if activity.conversation and activity.conversation.id else None
    channel = teams_channel_id(activity)
    if channel:
        root = thread_root(conversation_id) or (str(activity.id) if activity.id else None)
        if message_url is None and activity.id:
            message_url = message_link(channel, str(activity.id), root=root, tenant=tenant_id(activity))
        return Origin(platform="teams", channel=channel, thread=root, message_url=message_url)
    return Origin(platform="teams", channel=conversation_id, thread=None, message_url=message_url)


def activity_key(activity: Activity) -> str:
    """The idempotency key of an activity: Teams redelivers with the same id."""
    return f"teams:{activity.id}"


def clean_text(text: str) -> str:
    """Message text as a person typed it: other mentions as names, HTML entities decoded."""
    text = _AT.sub(lambda m: m.group(1), text)
    text = _TAG.sub(" ", text)
    return " ".join(html.unescape(text).replace("\u00a0", " ").split())


def html_to_text(content: str) -> str:
    """A Teams message body (HTML) as plain text, keeping paragraph breaks as spaces."""
    return clean_text(re.sub(r"(?i)<br\s*/?>|</p>|</div>", " ", content))


def resolve_mentions(activity: Activity, config: Config) -> str:
    """The message text with each `<at>` mention of a configured person as `@<person key>`.

    Mentions resolve by the mention entity's id (the person's Teams id in the config), never by
    the display name someone could type; anyone else stays their display name (`@Name`).
    """
    text = activity.text or ""
    bot_id = activity.recipient.id if activity.recipient else None
    for entity in activity.entities or []:
        # botbuilder keeps a mention's `text` and `mentioned` in additional_properties, not in serialize().
        data = ({"type": entity.type, **(getattr(entity, "additional_properties", None) or {})}
                if hasattr(entity, "serialize") else entity)
        if not isinstance(data, dict) or data.get("type") != "mention":
            continue
        who = data.get("mentioned") or {}
        tag = str(data.get("text") or "")
        if not tag or not isinstance(who, dict) or (bot_id and who.get("id") == bot_id):
            continue
        person = config.person_by_platform_id("teams", str(who["id"])) if who.get("id") else None
        if person is None and who.get("aadObjectId"):
            person = config.person_by_platform_id("teams", str(who["aadObjectId"]))
        name = html.unescape(_TAG.sub("", tag)).strip() or str(who.get("name") or "someone")
        text = text.replace(tag, f"@{person}" if person else f"@{name}")
    return text


def message_command(activity: Activity, config: Config) -> Command | Reply:
    """A message to the bot: strip the bot's own @mention, then the shared chat grammar."""
    TurnContext.remove_recipient_mention(activity)
    text = clean_text(resolve_mentions(activity, config))
    return parse_message(text, actor=actor_of(activity, config), config=config, key=activity_key(activity),
                         origin=origin_of(activity))


def _choice(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def form_command(data: Mapping[str, Any], activity: Activity, config: Config) -> Command | Reply:
    """The escalation form's fields as OpenCase; one form opens one case however often it is sent."""
    actor = actor_of(activity, config)
    form_id = _choice(data.get("form_id"))
    key = f"teams-form:{form_id}" if form_id else activity_key(activity)
    fields = {name: _choice(data.get(name)) for name in ("tier", "severity", "customer", "category", "summary")}
    message_url = _choice(data.get("message_url")) or None
    result = grammar.form_command(fields, actor=actor, config=config, key=key,
                          origin=origin_of(activity, message_url=message_url))
    if isinstance(result, OpenCase):
        return result
    return Reply(text="\n".join(result.values()), ok=False)


@dataclass(frozen=True)
class CardPress:
    """A card button press: the command (or why not), and which card (case, tier) to refresh."""

    result: Command | Reply
    case_id: str
    tier: str | None


def card_command(verb: str | None, data: Mapping[str, Any], activity: Activity, config: Config) -> CardPress:
    """An Action.Execute on a case card as a command, with the text its ShowCard asked for."""
    action = _choice(data.get("action") or verb).lower()
    case_id = _choice(data.get("case_id")).upper()
    tier = _choice(data.get("tier")) or None
    if action not in _ACTIONS or not case_id:
        return CardPress(Reply(text="That button is not one I know.", ok=False), case_id, tier)
    text = next((_choice(v) for k, v in data.items() if k.startswith(f"{action}_") and _choice(v)), "")
    target = _choice(data.get("target_tier")) or None
    status = (_choice(data.get(UPDATE_STATUS)) or None) if action == "incident_update" else None
    result = action_command(action, case_id, actor=actor_of(activity, config),  # type: ignore[arg-type]
                            key=activity_key(activity), text=text, target_tier=target, status=status)
    return CardPress(result, case_id, tier)


def message_action_prefill(value: Mapping[str, Any] | None) -> dict[str, str]:
    """What "Escalate this message" knows: the message text as summary, and a link to it."""
    payload = (value or {}).get("messagePayload") or {}
    body = payload.get("body") or {}
    content = str(body.get("content") or "")
    text = html_to_text(content) if (body.get("contentType") or "html") == "html" else clean_text(content)
    prefill = {"summary": text[:1000]}
    if payload.get("linkToMessage"):
        prefill["message_url"] = str(payload["linkToMessage"])
    return prefill
