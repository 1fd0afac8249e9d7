"""Neutral notices and replies as Adaptive Cards 1.5 (the highest version Teams renders). Pure.

User text never goes through markdown: titles, texts and field values are `TextRun`s in a
`RichTextBlock`, which Adaptive Cards render literally, so nobody can post a disguised link or
a fake mention through a case title. Links we make ourselves are `Action.OpenUrl` buttons.
Mentions exist only in message text built from `notice.mentions`, each with its `entities` entry.
Card buttons are `Action.Execute` (Universal Actions): Teams sends an `adaptiveCard/action`
invoke and shows the card the bot answers with, so the card refreshes in place for whoever acts.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from bot.config import Config
from bot.messages import CardAction, Notice, Reply
from bot.model import Severity

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

# `data.escalator` tells our own submissions apart from anything else a card might send.
CARD_ACTION = "card"
OPEN_CASE = "open_case"

Card = dict[str, Any]
Link = tuple[str, str]  # (label, url)

_SEVERITY_STYLE = {"sev1": "attention", "sev2": "warning"}
_STATUS_STYLE = {"resolved": "good"}
_ACTION_STYLE = {"primary": "positive", "danger": "destructive"}
_TEXT_LABEL = {"reason": "Reason", "resolution": "Resolution"}


def attachment(card: Card) -> dict[str, Any]:
    """A card as a Bot Framework attachment."""
    return {"contentType": ADAPTIVE_CARD, "content": card}


def run(text: str, **style: Any) -> dict[str, Any]:
    """A TextRun: shown exactly as written, markdown and all (that is the point)."""
    return {"type": "TextRun", "text": text, **style}


def rich(*runs: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **props}


def plain_fallback(text: str) -> str:
    """`fallbackText` may be rendered as markdown by old clients: strip what could link or mention."""
    out = text.replace("<", "‹").replace(">", "›")
    for ch in "[]()*_`#{}":
        out = out.replace(ch, " ")
    return " ".join(out.split())[:300]


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]], fallback: str) -> Card:
    card: Card = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": CARD_VERSION, "body": body,
                  "fallbackText": plain_fallback(fallback) or "Escalator"}
    if actions:
        card["actions"] = actions
    return card


# Teams refuses bot messages over about 28 KB, card and envelope together; an inline image must fit.
MAX_IMAGE_CARD_BYTES = 26_000


def image_card(title: str, mime_type: str, data_b64: str, *, alt: str) -> Card:
    """An image inline in an Adaptive Card, as a `data:` URI (see the README's Digests section)."""
    body = [rich(run(title, weight="Bolder")),
            {"type": "Image", "url": f"data:{mime_type};base64,{data_b64}", "altText": alt[:200], "size": "Stretch"}]
    return _card(body, [], title)


def _fact_rows(fields: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Label/value rows as columns of literal text (a FactSet would render values as markdown)."""
    rows = []
    for label, value in fields:
        rows.append({
            "type": "ColumnSet", "spacing": "None",
            "columns": [
                {"type": "Column", "width": "90px", "items": [rich(run(label, weight="Bolder"))]},
                {"type": "Column", "width": "stretch", "items": [rich(run(value))]},
            ],
        })
    return rows


def _text_blocks(text: str) -> list[dict[str, Any]]:
    """One literal block per paragraph, so line breaks survive on every client."""
    return [rich(run(line), spacing="None" if i else "Small") for i, line in enumerate(text.splitlines())
            if line.strip()]


def action_data(action: CardAction, tier: str | None) -> dict[str, Any]:
    """What a card button sends back: enough to rebuild the command without reading the card."""
    data: dict[str, Any] = {"escalator": CARD_ACTION, "action": action.action, "case_id": action.case_id}
    if tier:
        data["tier"] = tier
    if action.target_tier:
        data["target_tier"] = action.target_tier
    return data


def text_input_id(action: CardAction) -> str:
    """Each asking button has its own input id, so two open ShowCards never mix their text."""
    return f"{action.action}_{action.needs or 'text'}"


def card_action(action: CardAction, tier: str | None) -> dict[str, Any]:
    """A button: Action.Execute, or a ShowCard asking for the reason/resolution first."""
    execute: dict[str, Any] = {"type": "Action.Execute", "title": action.label, "verb": action.action,
                               "data": action_data(action, tier)}
    style = _ACTION_STYLE.get(action.style)
    if style:
        execute["style"] = style
    if action.needs is None:
        return execute
    label = _TEXT_LABEL.get(action.needs, "Text")
    asking = {
        "type": "AdaptiveCard",
        "body": [{"type": "Input.Text", "id": text_input_id(action), "label": label, "isMultiline": True,
                  "isRequired": True, "errorMessage": f"Please give a {label.lower()}.", "maxLength": 2000,
                  "placeholder": "Why?" if action.needs == "reason" else "What fixed it?"}],
        "actions": [execute],
    }
    return {"type": "Action.ShowCard", "title": action.label, "card": asking}


def notice_card(notice: Notice, *, tier: str | None = None, links: Sequence[Link] = ()) -> Card:
    """Any notice as a card: the case card (kind `card`) and thread replies, pages, posts alike."""
    severity = (notice.severity or "").lower()
    status = (notice.status or "").lower()
    style = _STATUS_STYLE.get(status) or _SEVERITY_STYLE.get(severity) or "emphasis"
    header_runs = [run(notice.title, weight="Bolder", size="Medium" if notice.kind == "card" else "Default")]
    header: list[dict[str, Any]] = [rich(*header_runs)]
    if notice.kind == "card" and severity in {s.value for s in Severity}:
        tags = [run(severity.upper(), weight="Bolder", color="Attention" if severity == "sev1" else "Default")]
        if notice.private:
            tags.append(run("  ·  private", color="Warning"))
        header.append(rich(*tags, spacing="None"))
    body: list[dict[str, Any]] = [{"type": "Container", "style": style, "bleed": True, "items": header}]
    body += _text_blocks(notice.text)
    body += _fact_rows([(f.label, f.value) for f in notice.fields])
    actions = [card_action(a, tier) for a in notice.actions]
    actions += [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in links]
    return _card(body, actions, f"{notice.title}. {notice.text}")


def reply_card(reply: Reply, *, links: Sequence[Link] = ()) -> Card:
    """What the caller sees after a command: the answer, the case facts, links to its threads."""
    body: list[dict[str, Any]] = []
    if reply.title:
        body.append(rich(run(reply.title, weight="Bolder", size="Medium")))
    body += _text_blocks(reply.text)
    body += _fact_rows([(f.label, f.value) for f in reply.fields])
    actions = [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in links]
    return _card(body or [rich(run("Done."))], actions, reply.title or reply.text)


def needs_card(reply: Reply, links: Sequence[Link] = ()) -> bool:
    """Short one-line answers go as plain text; anything with structure goes as a card."""
    return bool(reply.title or reply.fields or links or "\n" in reply.text.strip())


FormMode = Literal["execute", "submit"]


def escalation_form(config: Config, *, form_id: str, prefill: Mapping[str, str] | None = None,
                    mode: FormMode = "execute") -> Card:
    """The escalation form (`escalate` with no text, and the message action's task module).

    In chat it submits with Action.Execute (the card is replaced by the result); inside a task
    module Teams only supports Action.Submit, which arrives as `composeExtension/submitAction`.
    """
    prefill = dict(prefill or {})
    tiers = [t for t in config.tiers if t.channels.items()]
    body: list[dict[str, Any]] = [
        rich(run("Escalate a problem", weight="Bolder", size="Medium")),
        {"type": "Input.ChoiceSet", "id": "tier", "label": "Tier (empty: let the routing rules decide)",
         "style": "compact", "value": prefill.get("tier", ""),
         "choices": [{"title": f"{t.id} {t.name}", "value": t.id} for t in tiers]},
        {"type": "Input.ChoiceSet", "id": "severity", "label": "Severity", "style": "compact",
         "value": prefill.get("severity", "sev3"),
         "choices": [{"title": s.value.upper(), "value": s.value} for s in Severity]},
        {"type": "Input.ChoiceSet", "id": "customer", "label": "Customer", "style": "compact",
         "value": prefill.get("customer", ""),
         "choices": [{"title": f"{c.name} ({key})", "value": key} for key, c in config.customers.items()]},
        {"type": "Input.Text", "id": "category", "label": "Category", "placeholder": "billing, api, sso ...",
         "value": prefill.get("category", ""), "maxLength": 60},
        {"type": "Input.Text", "id": "summary", "label": "Summary", "isMultiline": True, "isRequired": True,
         "errorMessage": "Describe the problem in a sentence.", "maxLength": 3000,
         "value": prefill.get("summary", "")},
    ]
    data: dict[str, Any] = {"escalator": OPEN_CASE, "form_id": form_id}
    if prefill.get("message_url"):
        data["message_url"] = prefill["message_url"]
    if mode == "execute":
        submit: dict[str, Any] = {"type": "Action.Execute", "title": "Escalate", "verb": OPEN_CASE,
                                  "data": data, "style": "positive"}
    else:
        submit = {"type": "Action.Submit", "title": "Escalate", "data": data, "style": "positive"}
    return _card(body, [submit], "Escalate a problem")


# ---- message text with mentions ---------------------------------------------------------


def escape_text(text: str) -> str:
    """Message text is read as HTML by Teams: escape it so `<at>` or tags stay literal."""
    return html.escape(text, quote=False)


def mention_text(names_and_ids: Sequence[tuple[str, str | None]], lead: str) -> tuple[str, list[dict[str, Any]]]:
    """`<at>Name</at> ... lead` with one mention entity per known user; unknown ids stay plain names."""
    parts: list[str] = []
    entities: list[dict[str, Any]] = []
    for name, user_id in names_and_ids:
        tag = f"<at>{escape_text(name)}</at>"
        if user_id:
            parts.append(tag)
            entities.append({"type": "mention", "text": tag, "mentioned": {"id": user_id, "name": name}})
        else:
            parts.append(escape_text(name))
    text = " ".join(parts)
    return (f"{text} {escape_text(lead)}" if text else escape_text(lead)), entities
