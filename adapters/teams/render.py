"""Neutral notices and replies as Adaptive Cards 1.5 (the highest version Teams renders). Pure.

User text never goes through markdown: titles, texts and field values are `TextRun`s in a
`RichTextBlock`, which Adaptive Cards render literally, so nobody can post a disguised link or
a fake mention through a case title. Links we make ourselves are `Action.OpenUrl` buttons.
Mentions exist only in message text built from `notice.mentions`, each with its `entities` entry.
Control characters and bidi overrides are dropped from everything shown (a second line of defence
behind the grammar), so nobody can reverse how a title reads.
Card buttons are `Action.Execute` (Universal Actions): Teams sends an `adaptiveCard/action`
invoke and shows the card the bot answers with, so the card refreshes in place for whoever acts.

Size: Teams refuses an activity over about 100 KB and handles big ones badly long before, so every
card stays under 24 KB of JSON (the activity under 28 KB): one block per paragraph with its lines in
one run, long text and long field lists cut, each cut saying "/case ESC-n shows all".
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from bot.config import Config
from bot.incidents import STATUS_LABEL, UPDATE_STATUSES
from bot.messages import CardAction, Notice, Reply
from bot.model import Severity

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

# `data.escalator` tells our own submissions apart from anything else a card might send.
CARD_ACTION = "card"
OPEN_CASE = "open_case"
INCIDENT_CARD = "incident_card"  # the update form's Cancel: show the incident card again
UPDATE_TEXT = "incident_update_text"  # the update form's inputs (the text is read like a ShowCard's)
UPDATE_STATUS = "status"

Card = dict[str, Any]
Link = tuple[str, str]  # (label, url)

_SEVERITY_STYLE = {"sev1": "attention", "sev2": "warning"}
_STATUS_STYLE = {"resolved": "good"}
_ACTION_STYLE = {"primary": "positive", "danger": "destructive"}
_TEXT_LABEL = {"reason": "Reason", "resolution": "Resolution"}

# C0 and C1 controls except tab and newline, bidi embeddings/overrides (U+202A-U+202E) and
# isolates (U+2066-U+2069).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")

CARD_BYTES = 24_000  # JSON of one card (as sent: non-ASCII escaped); the activity stays under 28 KB
TEXT_CHARS = 8_000
TITLE_CHARS = 300
LABEL_CHARS = 60
VALUE_CHARS = 1_000
MAX_FIELDS = 25
MAX_PARAGRAPHS = 12


def clean(text: str) -> str:
    """Text without control characters (but newline and tab) and without bidi overrides."""
    return _UNSAFE.sub("", text)


def cut(text: str, limit: int, more: str) -> str:
    """`text`, or its start and `more` when it is longer than `limit` characters."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(more))].rstrip() + more


def more_text(case_id: str | None) -> str:
    return f"… (cut short: /case {case_id} shows all)" if case_id else "… (cut short)"


def card_bytes(card: Card) -> int:
    """The card's size as it travels (json with non-ASCII escaped, as the Bot Framework client sends it)."""
    return len(json.dumps(card))


def attachment(card: Card) -> dict[str, Any]:
    """A card as a Bot Framework attachment."""
    return {"contentType": ADAPTIVE_CARD, "content": card}


def run(text: str, **style: Any) -> dict[str, Any]:
    """A TextRun: shown exactly as written, markdown and all (that is the point)."""
    return {"type": "TextRun", "text": clean(text), **style}


def rich(*runs: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **props}


def plain_fallback(text: str) -> str:
    """`fallbackText` may be rendered as markdown by old clients: strip what could link or mention."""
    out = clean(text[:2000]).replace("<", "‹").replace(">", "›")
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


def _fact_rows(fields: Sequence[tuple[str, str]], *, value_chars: int, max_fields: int,
               more: str) -> list[dict[str, Any]]:
    """Label/value rows as columns of literal text (a FactSet would render values as markdown)."""
    rows = []
    shown = fields if len(fields) <= max_fields else fields[: max_fields - 1]
    for label, value in shown:
        rows.append({
            "type": "ColumnSet", "spacing": "None",
            "columns": [
                {"type": "Column", "width": "90px",
                 "items": [rich(run(cut(label, LABEL_CHARS, "…"), weight="Bolder"))]},
                {"type": "Column", "width": "stretch", "items": [rich(run(cut(value, value_chars, more)))]},
            ],
        })
    if len(shown) < len(fields):
        rows.append(rich(run(f"{len(fields) - len(shown)} more fields {more}", isSubtle=True), spacing="Small"))
    return rows


def _text_blocks(text: str, *, limit: int, more: str) -> list[dict[str, Any]]:
    """One literal block per paragraph, its lines in one run (a block per line made a 334-line
    resolution 34 KB); at most MAX_PARAGRAPHS blocks, the last one holding the rest."""
    text = cut(clean(text).strip(), limit, more)
    paragraphs = [p.strip("\n") for p in _PARAGRAPH.split(text) if p.strip()]
    paragraphs = ["\n".join(line for line in p.splitlines() if line.strip()) for p in paragraphs]
    if len(paragraphs) > MAX_PARAGRAPHS:
        paragraphs = [*paragraphs[: MAX_PARAGRAPHS - 1], "\n\n".join(paragraphs[MAX_PARAGRAPHS - 1:])]
    return [rich(run(p), spacing="Small") for p in paragraphs]


def _fitted(build: Callable[[int, int, int, str], Card], case_id: str | None) -> Card:
    """Build the card with smaller and smaller text budgets until it is under CARD_BYTES."""
    more = more_text(case_id)
    text, values, fields = TEXT_CHARS, VALUE_CHARS, MAX_FIELDS
    card: Card = build(text, values, fields, more)
    while card_bytes(card) > CARD_BYTES and text > 100:
        text, values, fields = text // 2, max(60, values // 2), max(4, fields // 2)
        card = build(text, values, fields, more)
    return card


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
    title = cut(notice.title, TITLE_CHARS, "…")
    header_runs = [run(title, weight="Bolder", size="Medium" if notice.kind == "card" else "Default")]
    header: list[dict[str, Any]] = [rich(*header_runs)]
    if notice.kind == "card" and severity in {s.value for s in Severity}:
        tags = [run(severity.upper(), weight="Bolder", color="Attention" if severity == "sev1" else "Default")]
        if notice.private:
            tags.append(run("  ·  private", color="Warning"))
        header.append(rich(*tags, spacing="None"))
    actions = [card_action(a, tier) for a in notice.actions]
    actions += [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in links]
    fields = [(f.label, f.value) for f in notice.fields]

    places = ", ".join(dict.fromkeys(c.label for c in notice.channel_links))

    def build(text_chars: int, value_chars: int, max_fields: int, more: str) -> Card:
        body: list[dict[str, Any]] = [{"type": "Container", "style": style, "bleed": True, "items": header}]
        body += _text_blocks(notice.text, limit=text_chars, more=more)
        body += _fact_rows(fields, value_chars=value_chars, max_fields=max_fields, more=more)
        if places:  # a page whose case thread is not posted yet: where it will be
            body.append(rich(run(f"Case thread not posted yet: it will be in the {places}.", isSubtle=True),
                             spacing="Small"))
        return _card(body, actions, f"{title}. {notice.text[:300]}")

    return _fitted(build, notice.case_id)


def reply_card(reply: Reply, *, links: Sequence[Link] = ()) -> Card:
    """What the caller sees after a command: the answer, the case facts, links to its threads."""
    actions = [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in links]
    fields = [(f.label, f.value) for f in reply.fields]
    title = cut(reply.title, TITLE_CHARS, "…") if reply.title else ""

    def build(text_chars: int, value_chars: int, max_fields: int, more: str) -> Card:
        body: list[dict[str, Any]] = []
        if title:
            body.append(rich(run(title, weight="Bolder", size="Medium")))
        body += _text_blocks(reply.text, limit=text_chars, more=more)
        body += _fact_rows(fields, value_chars=value_chars, max_fields=max_fields, more=more)
        return _card(body or [rich(run("Done."))], actions, title or reply.text[:300])

    return _fitted(build, reply.case_id)


def plain_text(text: str, case_id: str | None = None) -> str:
    """A one-line answer sent as plain message text: cleaned and cut like card text."""
    return cut(clean(text), TEXT_CHARS, more_text(case_id))


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
    prefill = {key: clean(value) for key, value in (prefill or {}).items()}
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


def incident_update_form(form: Reply) -> Card:
    """The Post update form (a card shown to whoever pressed the button): status and the text
    customers read, prefilled as the core says. It replaces the incident card for that person only."""
    incident = form.case_id or ""
    prefill = {key: clean(value) for key, value in form.prefill.items()}
    body: list[dict[str, Any]] = [
        rich(run(f"Post an update for {incident}", weight="Bolder", size="Medium")),
        rich(run(cut(form.text, TITLE_CHARS, "…")), spacing="Small"),
        {"type": "Input.ChoiceSet", "id": UPDATE_STATUS, "label": "Status", "style": "compact", "isRequired": True,
         "errorMessage": "Choose the status.", "value": prefill.get("status", UPDATE_STATUSES[0].value),
         "choices": [{"title": STATUS_LABEL[s], "value": s.value} for s in UPDATE_STATUSES]},
        {"type": "Input.Text", "id": UPDATE_TEXT, "label": "Update (customers read this)", "isMultiline": True,
         "isRequired": True, "errorMessage": "Write the update customers will read.", "maxLength": 3000,
         "value": cut(prefill.get("text", ""), 3000, "")},
    ]
    data = {"escalator": CARD_ACTION, "action": "incident_update", "case_id": incident}
    actions = [{"type": "Action.Execute", "title": "Post update", "verb": "incident_update", "data": data,
                "style": "positive"},
               {"type": "Action.Execute", "title": "Cancel", "verb": INCIDENT_CARD,
                "data": {"escalator": INCIDENT_CARD, "case_id": incident}, "associatedInputs": "none"}]
    return _card(body, actions, f"Post an update for {incident}")


# ---- message text with mentions ---------------------------------------------------------


def escape_text(text: str) -> str:
    """Message text is read as HTML by Teams: escape it so `<at>` or tags stay literal."""
    return html.escape(clean(text), quote=False)


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
    lead = escape_text(cut(lead, TITLE_CHARS, "…"))
    return (f"{text} {lead}" if text else lead), entities
