"""Neutral notices, replies and forms as Block Kit, built with `slack_sdk.models` so limits are checked.

Pure: no I/O. Everything a person typed is escaped (`&`, `<`, `>`), so no title, summary, reason
or display name can make the bot post `<!channel>`, `<!here>` or a fake `<@U…>`; the only
mentions are the ones the bot makes itself from `notice.mentions` user ids. Messages stay within
Block Kit limits: at most 50 blocks, section text cut at 3000 characters with a link to the case.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.messages import ObjectLink
from slack_sdk.models.views import View

from adapters.slack import SPEC, ids
from bot.config import Config
from bot.incidents import STATUS_LABEL, UPDATE_STATUSES
from bot.messages import CardAction, Notice, Reply
from bot.model import Severity

MAX_BLOCKS = 50
SECTION_CHARS = 3000
FIELD_CHARS = 2000
FIELDS_PER_SECTION = 10
FALLBACK_CHARS = 3000
CONTEXT_ELEMENTS = 10

SEVERITY_BADGE = {
    "sev1": ":red_circle:",
    "sev2": ":large_orange_circle:",
    "sev3": ":large_yellow_circle:",
    "sev4": ":white_circle:",
}
SEVERITY_HINT = {
    "sev1": "critical: down for many",
    "sev2": "major: badly degraded",
    "sev3": "minor: a workaround exists",
    "sev4": "question or cosmetic",
}

_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,4}$")
# C0 and C1 controls except tab and newline, bidi embeddings/overrides (U+202A-U+202E) and
# isolates (U+2066-U+2069): a second line of defence behind the grammar.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class ResolvedLink:
    """A `ThreadLink` after delivery looked up where the thread lives."""

    label: str
    url: str


@dataclass(frozen=True)
class SlackMessage:
    """What `chat.postMessage` / `chat.update` / an ack body need: fallback text and blocks."""

    text: str
    blocks: list[dict[str, Any]]


# ---- escaping ---------------------------------------------------------------------------


def clean(text: str) -> str:
    """Text without control characters (but newline and tab) and without bidi overrides, so
    nobody can hide text or make a title read backwards."""
    return _UNSAFE.sub("", text)


def escape(text: str) -> str:
    """Slack mrkdwn escaping: after this, `<!channel>` is shown, never acted on; see `clean`."""
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_url(url: str | None) -> str | None:
    """Only plain http(s) URLs may go inside `<url|label>`; anything else could break out of it."""
    if not url or not re.fullmatch(r"https?://[^\s<>|]+", url):
        return None
    return url


def link(url: str | None, label: str) -> str:
    """`<url|label>` with the label escaped, or just the escaped label if the URL is unsafe."""
    good = safe_url(url)
    return f"<{good}|{escape(label)}>" if good else escape(label)


def cut(escaped: str, limit: int, more: str = "…") -> str:
    """Cut already-escaped text to `limit` characters, ending with `more`, never inside an entity."""
    if len(escaped) <= limit:
        return escaped
    head = _PARTIAL_ENTITY.sub("", escaped[: max(0, limit - len(more))])
    return head + more


# ---- notices ----------------------------------------------------------------------------


def render_notice(notice: Notice, *, links: Sequence[ResolvedLink] = (),
                  case_url: str | None = None) -> SlackMessage:
    """One outbox notice as a Slack message; `case_url` is where truncated text points to."""
    badge = SEVERITY_BADGE.get(notice.severity or "", "")
    lock = " :lock:" if notice.private else ""
    mentions = " ".join(_mention(m.user_id, m.name) for m in notice.mentions)
    head = f"{badge} " if badge and notice.kind == "card" else ""
    head += f"*{escape(notice.title)}*{lock}"
    if mentions:
        head = f"{mentions} {head}"
    body = escape(notice.text)
    more = _more(notice.case_id, case_url)

    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(
        text=cut(f"{head}\n{body}" if body and notice.kind != "card" else head, SECTION_CHARS, more)))]
    blocks += _field_sections(notice)
    if body and notice.kind == "card":
        blocks.append(SectionBlock(text=MarkdownTextObject(text=cut(body, SECTION_CHARS, more))))
    if links:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=link(lnk.url, lnk.label))
                                             for lnk in links[:CONTEXT_ELEMENTS]]))
    if notice.channel_links:
        places = ", ".join(channel_mention(c.channel, c.label) for c in notice.channel_links[:CONTEXT_ELEMENTS])
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"Case thread not posted yet: it will be in {places}")]))
    if notice.kind == "card" and notice.private:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=":lock: Private case: it is discussed in this channel only.")]))
    actions = _actions(notice.actions, notice.case_version)
    fallback = f"{mentions} " if mentions else ""
    fallback += escape(notice.title) + (f": {body}" if body and notice.kind != "card" else "")
    return SlackMessage(text=cut(fallback, FALLBACK_CHARS),
                        blocks=_fit(blocks, actions, more))


def channel_mention(channel: str, label: str) -> str:
    """A channel as Slack links one in text (`<#C0L3>`, shown as its name, a link for members);
    the escaped label for anything that is not a channel id."""
    if re.fullmatch(SPEC.channel_id_pattern or r"[CG][A-Z0-9]+", channel):
        return str(ObjectLink(object_id=channel))
    return escape(label)


def _mention(user_id: str | None, name: str) -> str:
    """A real mention only for a Slack user id the config gave us; otherwise the escaped name."""
    if user_id and re.fullmatch(r"[UW][A-Z0-9]+", user_id):
        return f"<@{user_id}>"
    return f"@{escape(name)}"


def _more(case_id: str | None, case_url: str | None) -> str:
    if safe_url(case_url):
        return f"… {link(case_url, 'full case')}"
    if case_id:
        return f"… (cut short: /case {escape(case_id)} shows all)"
    return "… (cut short)"


def _field_sections(notice: Notice) -> list[Block]:
    texts = [cut(f"*{escape(f.label)}*\n{escape(f.value)}", FIELD_CHARS, "…") for f in notice.fields]
    return [SectionBlock(fields=[MarkdownTextObject(text=t) for t in texts[i:i + FIELDS_PER_SECTION]])
            for i in range(0, len(texts), FIELDS_PER_SECTION)]


def button_value(action: CardAction, version: int | None) -> str:
    """What a card button carries back to us: the case, the action, the card version it was on."""
    data: dict[str, Any] = {"c": action.case_id, "a": action.action}
    if action.target_tier:
        data["t"] = action.target_tier
    if action.needs:
        data["n"] = action.needs
    if version is not None:
        data["v"] = version
    return json.dumps(data, separators=(",", ":"))


def _actions(actions: Sequence[CardAction], version: int | None) -> ActionsBlock | None:
    if not actions:
        return None
    elements = []
    seen: set[str] = set()
    for i, action in enumerate(actions[:25]):
        action_id = ids.ACTION_PREFIX + action.action
        if action_id in seen:  # action ids must be unique within a block
            action_id = f"{action_id}_{i}"
        seen.add(action_id)
        elements.append(ButtonElement(
            text=PlainTextObject(text=action.label[:75], emoji=True), action_id=action_id,
            value=button_value(action, version),
            style=action.style if action.style in ("primary", "danger") else None))
    return ActionsBlock(block_id=ids.CARD_ACTIONS_BLOCK, elements=elements)


def _fit(blocks: list[Block], actions: ActionsBlock | None, more: str) -> list[dict[str, Any]]:
    """Keep within 50 blocks: cut the middle, say so, and always keep the buttons."""
    room = MAX_BLOCKS - (1 if actions else 0)
    if len(blocks) > room:
        hidden = len(blocks) - (room - 1)
        blocks = [*blocks[: room - 1],
                  ContextBlock(elements=[MarkdownTextObject(text=f"{hidden} more parts not shown {more}")])]
    if actions:
        blocks = [*blocks, actions]
    return [b.to_dict() for b in blocks]


# ---- replies to the caller ----------------------------------------------------------------


def render_reply(reply: Reply, *, links: Sequence[ResolvedLink] = (), plain: bool = True) -> SlackMessage:
    """A caller-only reply (ephemeral message or follow-up) as Block Kit.

    A reply that is just a sentence stays plain mrkdwn text without blocks (`plain`), which is
    what Slack shows the same way and what the ack path can build in microseconds.
    """
    icon = "" if reply.ok else ":warning: "
    title = f"*{escape(reply.title)}*\n" if reply.title else ""
    text = f"{icon}{title}{escape(reply.text)}"
    if plain and not reply.title and not reply.fields and not links:
        return SlackMessage(text=cut(text, FALLBACK_CHARS), blocks=[])
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=cut(text, SECTION_CHARS)))]
    fields = [cut(f"*{escape(f.label)}*\n{escape(f.value)}", FIELD_CHARS) for f in reply.fields]
    blocks += [SectionBlock(fields=[MarkdownTextObject(text=t) for t in fields[i:i + FIELDS_PER_SECTION]])
               for i in range(0, len(fields), FIELDS_PER_SECTION)]
    if links:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=link(lnk.url, lnk.label))
                                             for lnk in links[:CONTEXT_ELEMENTS]]))
    return SlackMessage(text=cut(f"{icon}{escape(reply.text)}", FALLBACK_CHARS), blocks=_fit(blocks, None, ""))


# ---- modals -----------------------------------------------------------------------------


def escalate_form(config: Config, *, prefill: Mapping[str, str], metadata: str,
                  source_url: str | None = None) -> dict[str, Any]:
    """The /escalate form: tier, severity, customer, category, summary (prefilled if known)."""
    blocks: list[Block] = []
    if safe_url(source_url):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"Escalating {link(source_url, 'this message')}; the case will link back to it.")]))
    tiers = [Option(value=ids.ROUTING_DECIDES, label="Let the routing rules decide")]
    tiers += [Option(value=t.id, label=f"{t.id} {t.name}"[:75]) for t in config.tiers]
    blocks.append(_select(ids.BLOCK_TIER, "Tier", tiers, prefill.get("tier") or ids.ROUTING_DECIDES,
                          optional=False))
    severities = [Option(value=s.value, label=f"{s.value}: {SEVERITY_HINT[s.value]}") for s in Severity]
    blocks.append(_select(ids.BLOCK_SEVERITY, "Severity", severities, prefill.get("severity"), optional=True))
    if config.customers:
        customers = [Option(value=key, label=f"{c.name} ({c.segment})"[:75])
                     for key, c in list(config.customers.items())[:100]]
        blocks.append(_select(ids.BLOCK_CUSTOMER, "Customer", customers, prefill.get("customer"),
                              optional=True))
    known = sorted({c for rule in config.routing for c in rule.if_.category} | set(config.sensitive_categories))
    blocks.append(InputBlock(
        block_id=ids.BLOCK_CATEGORY, label="Category", optional=True,
        hint=f"For example: {', '.join(known)}"[:2000] if known else None,
        element=PlainTextInputElement(action_id=ids.VALUE, initial_value=clean(prefill.get("category") or "") or None,
                                      max_length=100)))
    blocks.append(InputBlock(
        block_id=ids.BLOCK_SUMMARY, label="Summary", optional=False,
        element=PlainTextInputElement(action_id=ids.VALUE, multiline=True, max_length=3000,
                                      initial_value=clean(prefill.get("summary") or "")[:3000] or None,
                                      placeholder="What is wrong, for whom, since when?")))
    view = View(type="modal", callback_id=ids.FORM_ESCALATE, title="Escalate", submit="Open case",
                close="Cancel", blocks=blocks, private_metadata=metadata)
    return view.to_dict()


def _select(block_id: str, label: str, options: list[Option], initial: str | None, *,
            optional: bool) -> InputBlock:
    chosen = next((o for o in options if initial and o.value and o.value.lower() == initial.lower()), None)
    return InputBlock(block_id=block_id, label=label, optional=optional,
                      element=StaticSelectElement(action_id=ids.VALUE, options=options, initial_option=chosen,
                                                  placeholder=f"Choose {label.lower()}"))


REASON_LABEL = {
    "escalate": "Why does it need to go up?",
    "deescalate": "Why can it go back down?",
    "resolve": "How was it resolved?",
    "reopen": "Why reopen it?",
    "swarm_end": "How was it resolved? (add cause: ... and environment: ... if known)",
}
REASON_VERB = {"escalate": "Escalate", "deescalate": "De-escalate", "resolve": "Resolve", "reopen": "Reopen",
               "swarm_end": "End swarm"}


def reason_form(*, action: str, case_id: str, target_tier: str | None, metadata: str) -> dict[str, Any]:
    """The small modal a button opens when its action needs words first (reason, resolution)."""
    verb = REASON_VERB.get(action, action.title())
    label = REASON_LABEL.get(action, "Reason")
    intro = f"{verb} *{escape(case_id)}*" + (f" to *{escape(target_tier)}*" if target_tier else "") + "."
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=intro)),
        InputBlock(block_id=ids.BLOCK_REASON, label=label,
                   element=PlainTextInputElement(action_id=ids.VALUE, multiline=True, max_length=3000)),
    ]
    view = View(type="modal", callback_id=ids.FORM_REASON, title=f"{verb} {case_id}"[:24], submit=verb[:24],
                close="Cancel", blocks=blocks, private_metadata=metadata)
    return view.to_dict()


def incident_update_form(form: Reply, *, metadata: str) -> dict[str, Any]:
    """The Post update modal: status and the text customers read, prefilled as the core says."""
    incident = form.case_id or ""
    statuses = [Option(value=s.value, label=STATUS_LABEL[s]) for s in UPDATE_STATUSES]
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=cut(f"*{escape(incident)}* · {escape(form.text)}", SECTION_CHARS))),
        _select(ids.BLOCK_STATUS, "Status", statuses, form.prefill.get("status"), optional=False),
        InputBlock(block_id=ids.BLOCK_UPDATE, label="Update (customers read this)",
                   element=PlainTextInputElement(action_id=ids.VALUE, multiline=True, max_length=3000,
                                                 initial_value=clean(form.prefill.get("text") or "")[:3000] or None,
                                                 placeholder="What is happening, what we do, when we update next")),
    ]
    view = View(type="modal", callback_id=ids.FORM_INCIDENT_UPDATE, title=f"Update {incident}"[:24],
                submit="Post update", close="Cancel", blocks=blocks, private_metadata=metadata)
    return view.to_dict()


def result_view(title: str, reply: Reply, *, links: Sequence[ResolvedLink] = ()) -> dict[str, Any]:
    """What a submitted modal turns into: the outcome, with only a Close button."""
    message = render_reply(reply, links=links, plain=False)
    view = View(type="modal", title=title[:24], close="Close", blocks=Block.parse_all(message.blocks))
    return view.to_dict()
