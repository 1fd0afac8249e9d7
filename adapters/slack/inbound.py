"""Slack payloads (slash commands, shortcuts, buttons, modal submissions, mentions) as core commands.

Pure: no I/O, no Bolt objects, just the payload dicts Bolt hands us. The grammar does the
parsing; this module finds the words, the actor, where it came from, and an idempotency key
that is the same when Slack retries or a person double-clicks, so the core does the work once:
slash commands and shortcuts key on `trigger_id`, events on `event_id`, modal submissions on
the view id and hash, buttons on the card version they were clicked on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from adapters.slack import ids
from bot.commands import Command, OpenCase
from bot.config import Config
from bot.messages import ActionName, Reply
from bot.model import Actor, Origin
from workflows.grammar import action_command, form_command, parse, parse_message

Payload = Mapping[str, Any]
ACTIONS: tuple[str, ...] = get_args(ActionName)
_BOT_MENTION = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>[\s,:]*")


# ---- who and where ----------------------------------------------------------------------


def actor_for(user_id: str | None, name: str | None, config: Config) -> Actor:
    """The configured person behind a Slack user id, or an unknown Slack user by display name."""
    person = config.person_by_platform_id("slack", user_id) if user_id else None
    display = config.people[person].name if person else (name or user_id or "someone")
    return Actor(person=person, platform="slack", user_id=user_id or None, name=display)


def payload_actor(body: Payload, config: Config) -> Actor:
    """The actor of an interactivity payload (`user` object) or a slash command (`user_id`)."""
    user = body.get("user")
    if isinstance(user, Mapping):
        return actor_for(user.get("id"), user.get("name") or user.get("username"), config)
    return actor_for(body.get("user_id"), body.get("user_name"), config)


def permalink(workspace_url: str | None, channel: str | None, ts: str | None,
              thread_ts: str | None = None) -> str | None:
    """A message link built the way Slack builds them, without a chat.getPermalink round trip."""
    if not (workspace_url and channel and ts):
        return None
    url = f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        url += f"?thread_ts={thread_ts}&cid={channel}"
    return url


def plain_text(markup: str, config: Config | None = None) -> str:
    """Slack message markup (`<@U1|ann>`, `<!here>`, `<url|label>`, `&lt;`) as plain words.

    A person's mention becomes `@<person key>` for configured people (found by Slack user id,
    the convention every adapter follows), else `@` + Slack's label, else `@someone`: raw user
    ids never reach the grammar, so they never reach a title.
    """

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            person = config.person_by_platform_id("slack", target[1:]) if config else None
            return "@" + (person or label.lstrip("@") or "someone")
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            if label:
                return label if label.startswith("@") else "@" + label
            return "@" + target[1:].split("^")[0]
        return f"{label} ({target})" if label else target

    text = re.sub(r"<([^<>]+)>", one, markup)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _key(kind: str, *parts: object) -> str | None:
    if not all(parts):
        return None
    return ":".join(["slack", kind, *(str(p) for p in parts)])


# ---- slash commands and mentions --------------------------------------------------------


def command_verb(command: str) -> str:
    """`/escalate` -> `escalate`; unknown commands keep their name so the grammar can say so."""
    return ids.COMMANDS.get(command, command.lstrip("/"))


def slash_command(body: Payload, config: Config) -> Command | Reply:
    """A slash command payload as a Command, or a Reply for the caller (usage, open the form)."""
    actor = payload_actor(body, config)
    origin = Origin(platform="slack", channel=body.get("channel_id") or None)
    # Slack sends the text as markup (`&lt;` for "<", `<@U1|ann>` for a mention): back to plain words,
    # which the renderer escapes again on the way out.
    text = plain_text(str(body.get("text") or ""), config)
    return parse(text, verb=command_verb(str(body.get("command") or "")),
                 actor=actor, config=config, key=_key("cmd", body.get("trigger_id")), origin=origin)


def mention_command(event: Payload, event_id: str | None, config: Config) -> Command | Reply:
    """`@Escalator escalate L2 ...` in a channel, as the same command the slash command would be."""
    text = plain_text(_BOT_MENTION.sub("", str(event.get("text") or ""), count=1), config)
    actor = actor_for(event.get("user"), None, config)
    origin = Origin(platform="slack", channel=event.get("channel") or None,
                    thread=event.get("thread_ts") or event.get("ts") or None)
    return parse_message(text, actor=actor, config=config, key=_key("event", event_id), origin=origin)


# ---- the escalation form ----------------------------------------------------------------


@dataclass(frozen=True)
class FormRequest:
    """What to open the escalation modal with: prefilled fields and where the case comes from."""

    prefill: dict[str, str]
    origin: Origin | None
    source_url: str | None = None

    @property
    def metadata(self) -> str:
        """The origin, carried through the modal in `private_metadata` (max 3000 chars)."""
        if self.origin is None:
            return "{}"
        return json.dumps({"o": self.origin.model_dump(exclude_none=True)}, separators=(",", ":"))[:3000]


def form_for_command(body: Payload, reply: Reply) -> FormRequest:
    """`/escalate` with no text: the form, remembering the channel it was typed in."""
    channel = body.get("channel_id") or None
    return FormRequest(prefill=dict(reply.prefill),
                       origin=Origin(platform="slack", channel=channel) if channel else None)


def form_for_shortcut(body: Payload, *, workspace_url: str | None = None,
                      config: Config | None = None) -> FormRequest:
    """"Escalate this message": the form prefilled with the message text and its permalink."""
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id")
    team = body.get("team") or {}
    base = workspace_url or (f"https://{team['domain']}.slack.com" if team.get("domain") else None)
    ts = message.get("ts") or body.get("message_ts")
    thread = message.get("thread_ts") or ts
    url = message.get("permalink") or permalink(base, channel, ts, message.get("thread_ts"))
    summary = plain_text(str(message.get("text") or ""), config)
    origin = Origin(platform="slack", channel=channel, thread=thread, message_url=url) if channel else None
    return FormRequest(prefill={"summary": summary}, origin=origin, source_url=url)


def _values(body: Payload) -> Mapping[str, Any]:
    return ((body.get("view") or {}).get("state") or {}).get("values") or {}


def _input(values: Mapping[str, Any], block: str) -> str | None:
    state = (values.get(block) or {}).get(ids.VALUE) or {}
    if state.get("type") in ("static_select", "external_select"):
        option = state.get("selected_option") or {}
        return option.get("value") or None
    value = state.get("value")
    return str(value).strip() or None if value is not None else None


def _origin(view: Payload) -> Origin | None:
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
        return Origin.model_validate(meta["o"]) if isinstance(meta, dict) and meta.get("o") else None
    except ValueError:
        return None


def escalate_submission(body: Payload, config: Config) -> OpenCase | dict[str, str]:
    """The submitted escalation form as OpenCase, or `{block_id: problem}` to show in the form."""
    view = body.get("view") or {}
    values = _values(body)
    fields = {name: _input(values, block) for name, block in (
        ("tier", ids.BLOCK_TIER), ("severity", ids.BLOCK_SEVERITY), ("customer", ids.BLOCK_CUSTOMER),
        ("category", ids.BLOCK_CATEGORY), ("summary", ids.BLOCK_SUMMARY))}
    result = form_command(fields, actor=payload_actor(body, config), config=config,
                          key=_key("view", view.get("id"), view.get("hash")), origin=_origin(view))
    if isinstance(result, OpenCase):
        return result
    blocks = {"tier": ids.BLOCK_TIER, "severity": ids.BLOCK_SEVERITY, "customer": ids.BLOCK_CUSTOMER,
              "summary": ids.BLOCK_SUMMARY}
    return {blocks[name]: problem for name, problem in result.items()}


# ---- card buttons and the reason modal ------------------------------------------------------


@dataclass(frozen=True)
class ButtonPress:
    """A click on a case card button, decoded from the button's value."""

    action: ActionName
    case_id: str
    actor: Actor
    key: str | None
    target_tier: str | None = None
    needs: str | None = None

    @property
    def metadata(self) -> str:
        """What the reason modal carries so its submission becomes this button's command."""
        return json.dumps({"a": self.action, "c": self.case_id, "t": self.target_tier, "k": self.key},
                          separators=(",", ":"))


def button_press(body: Payload, config: Config) -> ButtonPress | None:
    """The first action of a `block_actions` payload, or None if it is not one of our buttons.

    The key is the same for a double click (same case, action, card version and person), so
    the second click is done once; a later click on a newer card is a new key.
    """
    actions = body.get("actions") or []
    if not actions:
        return None
    action = actions[0]
    try:
        value = json.loads(action.get("value") or "")
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("a") not in ACTIONS or not value.get("c"):
        return None
    actor = payload_actor(body, config)
    case_id = str(value["c"]).upper()
    version = value.get("v")
    if version is not None:
        key = _key("btn", case_id, value["a"], f"v{version}", actor.user_id)
    else:
        key = _key("btn", case_id, value["a"], action.get("action_ts"), actor.user_id)
    return ButtonPress(action=value["a"], case_id=case_id, actor=actor, key=key,
                       target_tier=value.get("t"), needs=value.get("n"))


def press_command(press: ButtonPress, text: str | None = None) -> Command | Reply:
    """The command a button (plus the text it asked for) stands for."""
    return action_command(press.action, press.case_id, actor=press.actor, key=press.key, text=text,
                          target_tier=press.target_tier)


def _metadata(view: Payload) -> Any:
    """What a modal carried in `private_metadata` (the JSON this adapter put there), {} if unreadable."""
    try:
        return json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}


def update_form_metadata(incident_id: str) -> str:
    """What the Post update modal carries so its submission names the incident."""
    return json.dumps({"c": incident_id}, separators=(",", ":"))


def incident_update_submission(body: Payload, config: Config) -> Command | dict[str, str]:
    """The Post update modal as the update command, or `{block_id: problem}` to show in it."""
    view = body.get("view") or {}
    meta = _metadata(view)
    if not isinstance(meta, dict) or not meta.get("c"):
        return {ids.BLOCK_UPDATE: "This form has expired; click Post update on the incident card again."}
    values = _values(body)
    status = _input(values, ids.BLOCK_STATUS)
    if not status:
        return {ids.BLOCK_STATUS: "Choose the status."}
    result = action_command("incident_update", str(meta["c"]), actor=payload_actor(body, config),
                            key=_key("view", view.get("id"), view.get("hash")),
                            text=_input(values, ids.BLOCK_UPDATE), status=status)
    if isinstance(result, Reply):
        return {ids.BLOCK_UPDATE: result.text}
    return result


def reason_submission(body: Payload, config: Config) -> Command | dict[str, str]:
    """The reason/resolution modal as the button's command, or `{block_id: problem}`."""
    view = body.get("view") or {}
    meta = _metadata(view)
    if not isinstance(meta, dict) or meta.get("a") not in ACTIONS or not meta.get("c"):
        return {ids.BLOCK_REASON: "This form has expired; click the button on the case card again."}
    text = _input(_values(body), ids.BLOCK_REASON)
    press = ButtonPress(action=meta["a"], case_id=str(meta["c"]), actor=payload_actor(body, config),
                        key=meta.get("k") or _key("view", view.get("id"), view.get("hash")),
                        target_tier=meta.get("t"))
    result = press_command(press, text)
    if isinstance(result, Reply):
        return {ids.BLOCK_REASON: result.text}
    return result
