"""The chat grammar: the same words on Slack, Teams and the console, parsed into commands.

`parse` returns a Command, or a Reply for the caller alone (usage help, or a request to open
the escalation form). Adapters only find the verb and the text; everything else is here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.commands import (
    AcknowledgeCase,
    AddWatcher,
    ClaimCase,
    Command,
    DeescalateCase,
    EscalateCase,
    HandOffCase,
    OpenCase,
    RecordCsat,
    ReopenCase,
    ResolveCase,
    SetWaiting,
    ShowCase,
    ShowDigest,
    ShowHelp,
    ShowOnCall,
)
from bot.config import Config
from bot.messages import ActionName, Reply
from bot.model import Actor, Origin, Severity

CASE_ID = re.compile(r"^ESC-\d+$", re.IGNORECASE)
VERBS = ("escalate", "case", "oncall", "help", "digest")

USAGE = {
    "escalate": (
        "Usage: /escalate [L1|L2|L3|vendor] [sev1..sev4] [customer:ID] [category:NAME] summary...\n"
        "       /escalate ESC-1042 [tier] reason...   (move an existing case up)\n"
        "With no text, /escalate opens a form."
    ),
    "case": (
        "Usage: /case ESC-1042                      show the case and its timeline\n"
        "       /case ESC-1042 ack | claim | watch [person] | handoff PERSON [note]\n"
        "       /case ESC-1042 resolve RESOLUTION | reopen [reason]\n"
        "       /case ESC-1042 escalate [tier] REASON | deescalate [tier] REASON\n"
        "       /case ESC-1042 wait customer|vendor | resume\n"
        "       /case ESC-1042 csat 1..5 [comment]   the customer's satisfaction score"
    ),
    "oncall": "Usage: /oncall [tier]   who is on call now and next",
    "digest": "Usage: /digest [NAME] [since:7d | since:2026-11-01]   how support performs (managers)",
}


def help_text() -> str:
    return "Escalator commands:\n" + "\n".join(USAGE.values()) + "\n/help   this text"


def usage(verb: str, problem: str = "") -> Reply:
    text = USAGE.get(verb, help_text())
    return Reply(text=f"{problem}\n{text}" if problem else text, ok=False)


def parse(text: str, *, verb: str, actor: Actor, config: Config, key: str | None = None,
          origin: Origin | None = None) -> Command | Reply:
    """Parse what follows `/verb` (or `@Escalator verb`) into a command for `actor`."""
    verb = verb.lower().lstrip("/")
    words = text.split()
    try:
        if verb == "escalate":
            return _escalate(words, actor, config, key, origin)
        if verb == "case":
            return _case(words, actor, config, key)
        if verb == "oncall":
            tier = _tier(words[0], config) if words else None
            if words and tier is None:
                return usage("oncall", f"Unknown tier '{words[0]}' (known: {', '.join(config.tier_ids)}).")
            return ShowOnCall(actor=actor, key=key, tier=tier)
        if verb == "help":
            return ShowHelp(actor=actor, key=key)
        if verb == "digest":
            return _digest(words, actor, key)
    except _Usage as exc:
        return usage(verb, str(exc))
    return Reply(text=f"Unknown command '{verb}'.\n{help_text()}", ok=False)


def parse_message(text: str, *, actor: Actor, config: Config, key: str | None = None,
                  origin: Origin | None = None) -> Command | Reply:
    """A whole message to the bot (`escalate L2 ...`, `case ESC-1`), as Teams and the console send."""
    stripped = text.strip()
    if stripped.startswith("/"):
        stripped = stripped[1:]
    verb, _, rest = stripped.partition(" ")
    if verb.lower() not in VERBS:
        return Reply(text=help_text(), ok=not verb)
    return parse(rest, verb=verb, actor=actor, config=config, key=key, origin=origin)


ROUTING_DECIDES = "auto"  # the form's tier choice that leaves the tier to the routing rules
TITLE_LIMIT = 300


def form_command(fields: Mapping[str, str | None], *, actor: Actor, config: Config, key: str | None = None,
                 origin: Origin | None = None) -> OpenCase | dict[str, str]:
    """The escalation form (Slack modal, Teams card) as OpenCase, or `{field: problem}` to show.

    Fields: tier, severity, customer, category, summary; the same checks as `/escalate` text.
    """
    def value(name: str) -> str:
        return " ".join((fields.get(name) or "").split())

    problems: dict[str, str] = {}
    tier_word = value("tier")
    tier = None if tier_word.lower() in ("", ROUTING_DECIDES) else _tier(tier_word, config)
    if tier_word.lower() not in ("", ROUTING_DECIDES) and tier is None:
        problems["tier"] = f"Unknown tier '{tier_word}' (known: {', '.join(config.tier_ids)})."
    severity = _severity(value("severity")) if value("severity") else None
    if value("severity") and severity is None:
        problems["severity"] = f"Unknown severity '{value('severity')}' (use sev1 to sev4)."
    customer = value("customer").lower() or None
    if customer and customer not in config.customers:
        problems["customer"] = f"Unknown customer '{customer}' (known: {', '.join(config.customers) or 'none'})."
    category = value("category").lower().replace(" ", "-") or None
    summary = value("summary")
    if not summary:
        problems["summary"] = "Add a short summary of the problem."
    if problems:
        return problems
    return OpenCase(actor=actor, key=key, title=summary[:TITLE_LIMIT], tier=tier, severity=severity,
                    customer=customer, category=category, origin=origin)


def action_command(action: ActionName, case_id: str, *, actor: Actor, key: str | None = None,
                   text: str | None = None, target_tier: str | None = None) -> Command | Reply:
    """A card button (plus any text it asked for) as a command."""
    text = (text or "").strip()
    if action == "acknowledge":
        return AcknowledgeCase(actor=actor, key=key, case_id=case_id)
    if action == "claim":
        return ClaimCase(actor=actor, key=key, case_id=case_id)
    if action == "escalate":
        if not text:
            return Reply(text="Please give a reason for escalating.", ok=False)
        return EscalateCase(actor=actor, key=key, case_id=case_id, to_tier=target_tier, reason=text)
    if action == "deescalate":
        if not text:
            return Reply(text="Please give a reason for de-escalating.", ok=False)
        return DeescalateCase(actor=actor, key=key, case_id=case_id, to_tier=target_tier, reason=text)
    if action == "resolve":
        if not text:
            return Reply(text="Please describe the resolution.", ok=False)
        return ResolveCase(actor=actor, key=key, case_id=case_id, resolution=text)
    return ReopenCase(actor=actor, key=key, case_id=case_id, reason=text)


class _Usage(Exception):
    pass


def _tier(word: str, config: Config) -> str | None:
    tier = config.find_tier(word)
    return tier.id if tier else None


def _severity(word: str) -> Severity | None:
    try:
        return Severity(word.lower())
    except ValueError:
        return None


def _escalate(words: list[str], actor: Actor, config: Config, key: str | None,
              origin: Origin | None) -> Command | Reply:
    if not words:
        return Reply(text="Opening the escalation form.", form="escalate")
    if CASE_ID.match(words[0]):
        case_id = words[0].upper()
        rest = words[1:]
        tier = _tier(rest[0], config) if rest else None
        if tier:
            rest = rest[1:]
        vendor = ticket = None
        reason_words = []
        for w in rest:
            if w.lower().startswith("vendor:"):
                vendor = w.split(":", 1)[1]
            elif w.lower().startswith("ticket:"):
                ticket = w.split(":", 1)[1]
            else:
                reason_words.append(w)
        if not reason_words:
            raise _Usage(f"Say why {case_id} needs to go up, e.g. /escalate {case_id} L3 database errors.")
        return EscalateCase(actor=actor, key=key, case_id=case_id, to_tier=tier, reason=" ".join(reason_words),
                            vendor=vendor, vendor_ticket=ticket)
    tier = severity = customer = category = None
    summary: list[str] = []
    for i, w in enumerate(words):
        low = w.lower()
        if not summary and tier is None and (t := _tier(w, config)):
            tier = t
        elif not summary and severity is None and (s := _severity(w)):
            severity = s
        elif low.startswith("customer:"):
            customer = w.split(":", 1)[1].lower()
            if customer not in config.customers:
                known = ", ".join(config.customers) or "none configured"
                raise _Usage(f"Unknown customer '{customer}' (known: {known}).")
        elif low.startswith("category:"):
            category = w.split(":", 1)[1].lower()
            if not category:
                raise _Usage("category: needs a name, e.g. category:billing.")
        elif not summary and re.fullmatch(r"(l\d|sev\d)", low):
            raise _Usage(f"'{w}' is not a known tier or severity (tiers: {', '.join(config.tier_ids)}).")
        else:
            summary.append(w)
        del i
    if not summary:
        raise _Usage("Add a short summary of the problem.")
    return OpenCase(actor=actor, key=key, title=" ".join(summary), tier=tier, severity=severity,
                    customer=customer, category=category, origin=origin)


def _case(words: list[str], actor: Actor, config: Config, key: str | None) -> Command | Reply:
    if not words or not CASE_ID.match(words[0]):
        raise _Usage("Name the case, e.g. /case ESC-1042.")
    case_id = words[0].upper()
    if len(words) == 1:
        return ShowCase(actor=actor, key=key, case_id=case_id)
    sub, rest = words[1].lower(), words[2:]
    text = " ".join(rest)
    if sub in ("ack", "acknowledge"):
        return AcknowledgeCase(actor=actor, key=key, case_id=case_id)
    if sub == "claim":
        return ClaimCase(actor=actor, key=key, case_id=case_id)
    if sub == "resolve":
        if not text:
            raise _Usage("Describe the resolution, e.g. /case ESC-1042 resolve refunded the double charge.")
        return ResolveCase(actor=actor, key=key, case_id=case_id, resolution=text)
    if sub == "reopen":
        return ReopenCase(actor=actor, key=key, case_id=case_id, reason=text)
    if sub in ("escalate", "deescalate"):
        tier = _tier(rest[0], config) if rest else None
        reason = " ".join(rest[1:] if tier else rest)
        if not reason:
            raise _Usage(f"Say why, e.g. /case {case_id} {sub} L3 needs a database fix.")
        if sub == "escalate":
            return EscalateCase(actor=actor, key=key, case_id=case_id, to_tier=tier, reason=reason)
        return DeescalateCase(actor=actor, key=key, case_id=case_id, to_tier=tier, reason=reason)
    if sub == "watch":
        person = rest[0].lower() if rest else actor.person
        if not person:
            raise _Usage("Name who should watch, e.g. /case ESC-1042 watch hana.")
        return AddWatcher(actor=actor, key=key, case_id=case_id, person=person)
    if sub == "handoff":
        if not rest:
            raise _Usage("Name who takes over, e.g. /case ESC-1042 handoff cleo checked logs already.")
        return HandOffCase(actor=actor, key=key, case_id=case_id, to_person=rest[0].lower(),
                           note=" ".join(rest[1:]))
    if sub == "wait":
        if not rest or rest[0].lower() not in ("customer", "vendor"):
            raise _Usage("Wait on whom? /case ESC-1042 wait customer  or  wait vendor.")
        return SetWaiting(actor=actor, key=key, case_id=case_id, on=rest[0].lower())
    if sub == "resume":
        return SetWaiting(actor=actor, key=key, case_id=case_id, on="none")
    if sub == "csat":
        return _csat(case_id, rest, actor, key)
    raise _Usage(f"'{sub}' is not something I can do with a case.")


def _csat(case_id: str, rest: list[str], actor: Actor, key: str | None) -> Command:
    if not rest or rest[0] not in ("1", "2", "3", "4", "5"):
        raise _Usage(f"Give the customer's score from 1 to 5, e.g. /case {case_id} csat 4 quick and friendly.")
    return RecordCsat(actor=actor, key=key, case_id=case_id, score=int(rest[0]), comment=" ".join(rest[1:]))


def _digest(words: list[str], actor: Actor, key: str | None) -> Command:
    name = since = None
    for w in words:
        if w.lower().startswith("since:"):
            if since is not None:
                raise _Usage("Give since: once, e.g. /digest since:7d.")
            since = w
        elif name is None:
            name = w
        else:
            raise _Usage(f"'{w}' is not a digest option; name one digest and at most one since:.")
    return ShowDigest(actor=actor, key=key, name=name, since=since)
