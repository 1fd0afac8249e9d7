"""The chat grammar: the same words on Slack, Teams and the console, parsed into commands.

`parse` returns a Command, or a Reply for the caller alone (usage help, or a request to open
the escalation form). Adapters only find the verb and the text; everything else is here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from bot import commands as cmds
from bot.commands import (
    AcknowledgeCase,
    AddSwarmMember,
    AddWatcher,
    ClaimCase,
    Command,
    DeclineSwarm,
    DeescalateCase,
    EditKb,
    EndSwarm,
    EscalateCase,
    HandOffCase,
    InviteSkill,
    JoinSwarm,
    LeaveSwarm,
    ListSwarms,
    OpenCase,
    PublishKb,
    RecordCsat,
    RejectKb,
    ReopenCase,
    ResolveCase,
    SearchKb,
    SetSwarmLead,
    SetWaiting,
    ShowCase,
    ShowDigest,
    ShowHelp,
    ShowKb,
    ShowOnCall,
    StartSwarm,
)
from bot.config import Config
from bot.messages import ActionName, Reply
from bot.model import Actor, Origin, Severity
from workflows.policy import known_categories, sensitive_match

CASE_ID = re.compile(r"^ESC-\d+$", re.IGNORECASE)
VERBS = ("escalate", "case", "oncall", "help", "swarm", "kb", "crisis", "digest")
KB_ID = re.compile(r"^KB-\d+$", re.IGNORECASE)
COMMAND_LIMIT = 40_000  # characters of one command: Slack's own limit for a message
TITLE_LIMIT = 300
CUT = "…"

SEVERITY_HELP = ("Severity: sev1 (most urgent) to sev4, also written sev 2, sev-2, SEV2 or s2;\n"
                 "          P1..P4 = sev1..sev4; critical = sev1, high = sev2, medium = sev3, low = sev4.")
SEVERITY_WORDS = {"critical": Severity.SEV1, "high": Severity.SEV2, "medium": Severity.SEV3,
                  "low": Severity.SEV4}
_SEV_EXPLICIT = re.compile(r"(?:sev|severity)[ -]?(\d{1,3})")  # sev2, sev-2: a severity wherever it stands
_SEV_SHORT = re.compile(r"[ps](\d{1,3})")  # p2, s2: only before the summary (think "p95 latency", "s3")
_MENTION = re.compile(r"(?<![\w@])@(\w(?:[\w.-]{0,62}\w)?)")  # @ben, @ben.b, not the "." after @ben.

# What people paste from other apps: NUL and other control characters, and the bidi overrides and
# isolates that make text read differently from what it says (U+202A-U+202E, U+2066-U+2069).
_UNTYPABLE: dict[int, str | None] = {
    **{c: None for c in range(0x20) if c not in (0x09, 0x0A)},
    0x09: " ", 0x7F: None,
    **{c: None for c in range(0x80, 0xA0)},
    **{c: None for c in range(0x202A, 0x202F)},
    **{c: None for c in range(0x2066, 0x206A)},
}

USAGE = {
    "escalate": (
        "Usage: /escalate [L1|L2|L3|vendor] [sev1..sev4] [customer:ID] [category:NAME] summary...\n"
        "       /escalate ESC-1042 [tier] reason...   (move an existing case up)\n"
        "With no text, /escalate opens a form.\n"
        f"{SEVERITY_HELP}"
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
    "swarm": (
        "Usage: /swarm                              active swarms you can see\n"
        "       /swarm ESC-1042 [skills:api,database] [experts:N] [note...]   start one\n"
        "       /swarm ESC-1042 join | leave | decline | add PERSON | lead PERSON | invite skill:NAME\n"
        "       /swarm ESC-1042 end RESOLUTION [cause: ...] [environment: ...]"
    ),
    "kb": (
        "Usage: /kb KB-7                            show an article\n"
        "       /kb search words...\n"
        "       /kb KB-7 publish | reject [reason] | edit [issue: ...] [resolution: ...] [cause: ...] "
        "[environment: ...]"
    ),
    "crisis": (
        "Usage: /crisis                                   list active incidents\n"
        "       /crisis declare [sev1|sev2|sev3] [component:NAME] [customers:a,b] [keywords:\"x,y\"] TITLE\n"
        "       /crisis INC-3 role ROLE PERSON|me|none | roles\n"
        "       /crisis INC-3 link ESC-1042 ESC-1043 | unlink ESC-1043 | cases\n"
        "       /crisis INC-3 update investigating|identified|monitoring TEXT | note TEXT\n"
        "       /crisis INC-3 resolve TEXT [--resolve-cases] | report"
    ),
    "digest": "Usage: /digest [NAME] [since:7d | since:2026-11-01]   how support performs (managers)",
}


def help_text() -> str:
    return "Escalator commands:\n" + "\n".join(USAGE.values()) + "\n/help   this text"


def usage(verb: str, problem: str = "") -> Reply:
    text = USAGE.get(verb, help_text())
    return Reply(text=f"{problem}\n{text}" if problem else text, ok=False)


def clean(text: str) -> str:
    """What a person typed, without control characters or bidi overrides (newlines are kept)."""
    return text.translate(_UNTYPABLE)


def too_long(text: str) -> Reply | None:
    """A short refusal for a command longer than anyone types; checked before any parsing."""
    if len(text) <= COMMAND_LIMIT:
        return None
    return Reply(text=f"That is {len(text):,} characters; a command can be at most {COMMAND_LIMIT:,}. "
                      "Put the summary in the command and the details in the case thread.",
                 ok=False)


def unknown_verb(verb: str) -> Reply:
    """Unknown command, with the closest known one when it looks like a typo."""
    word = clean(verb)[:40]
    close = difflib.get_close_matches(word.lower(), VERBS, n=1, cutoff=0.6)
    hint = f" — did you mean {close[0]}?" if close else "."
    return Reply(text=f"Unknown command '{word}'{hint}\n{help_text()}", ok=False)


def parse(text: str, *, verb: str, actor: Actor, config: Config, key: str | None = None,
          origin: Origin | None = None) -> Command | Reply:
    """Parse what follows `/verb` (or `@Escalator verb`) into a command for `actor`."""
    if (refusal := too_long(text)) is not None:
        return refusal
    verb = clean(verb).lower().lstrip("/")
    words = _join_severity(clean(text).split())
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
        if verb == "swarm":
            return _swarm(words, actor, key)
        if verb == "kb":
            return _kb(words, actor, key)
        if verb == "crisis":
            return _crisis(text, actor, config, key)
        if verb == "digest":
            return _digest(words, actor, key)
    except _Usage as exc:
        return usage(verb, str(exc))
    return unknown_verb(verb)


def parse_message(text: str, *, actor: Actor, config: Config, key: str | None = None,
                  origin: Origin | None = None) -> Command | Reply:
    """A whole message to the bot (`escalate L2 ...`, `case ESC-1`), as Teams and the console send."""
    if (refusal := too_long(text)) is not None:
        return refusal
    stripped = clean(text).strip()
    if stripped.startswith("/"):
        stripped = stripped[1:]
    parts = stripped.split(None, 1)
    if not parts:
        return Reply(text=help_text())
    verb, rest = parts[0], parts[1] if len(parts) > 1 else ""
    if verb.lower() not in VERBS:
        return unknown_verb(verb)
    return parse(rest, verb=verb, actor=actor, config=config, key=key, origin=origin)


ROUTING_DECIDES = "auto"  # the form's tier choice that leaves the tier to the routing rules


def form_command(fields: Mapping[str, str | None], *, actor: Actor, config: Config, key: str | None = None,
                 origin: Origin | None = None) -> OpenCase | dict[str, str]:
    """The escalation form (Slack modal, Teams card) as OpenCase, or `{field: problem}` to show.

    Fields: tier, severity, customer, category, summary; the same checks as `/escalate` text.
    """
    def value(name: str) -> str:
        return " ".join(clean((fields.get(name) or "")[:COMMAND_LIMIT]).split())

    problems: dict[str, str] = {}
    if len(fields.get("summary") or "") > COMMAND_LIMIT:
        problems["summary"] = f"The summary can be at most {COMMAND_LIMIT:,} characters; put details in the thread."
    tier_word = value("tier")
    tier = None if tier_word.lower() in ("", ROUTING_DECIDES) else _tier(tier_word, config)
    if tier_word.lower() not in ("", ROUTING_DECIDES) and tier is None:
        problems["tier"] = f"Unknown tier '{tier_word}' (known: {', '.join(config.tier_ids)})."
    severity_word = value("severity").lower()
    severity = severity_of(severity_word) if severity_word else None
    if severity_word and not isinstance(severity, Severity):
        problems["severity"] = f"Unknown severity '{value('severity')}' (use sev1 to sev4)."
    customer = value("customer").lower() or None
    if customer and customer not in config.customers:
        problems["customer"] = f"Unknown customer '{customer}' (known: {', '.join(config.customers) or 'none'})."
    category = value("category").lower().replace(" ", "-") or None
    summary = _title(value("summary").split(), config)
    if not summary and "summary" not in problems:
        problems["summary"] = "Add a short summary of the problem."
    if problems:
        return problems
    return OpenCase(actor=actor, key=key, title=summary, tier=tier,
                    severity=severity if isinstance(severity, Severity) else None,
                    customer=customer, category=category, origin=origin)


def action_command(action: ActionName, case_id: str, *, actor: Actor, key: str | None = None,
                   text: str | None = None, target_tier: str | None = None,
                   status: str | None = None) -> Command | Reply:
    """A card button (plus any text it asked for, and the update form's status) as a command."""
    if (refusal := too_long(text or "")) is not None:
        return refusal
    text = clean(text or "").strip()
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
    if action in ("swarm_join", "swarm_decline", "swarm_leave", "swarm_end"):
        return _swarm_action(action, case_id, actor, key, text)
    if action in INCIDENT_ACTIONS:
        return incident_action(action, case_id, actor=actor, key=key, text=text, status=status)
    return ReopenCase(actor=actor, key=key, case_id=case_id, reason=text)


class _Usage(Exception):
    pass


def _tier(word: str, config: Config) -> str | None:
    tier = config.find_tier(word)
    return tier.id if tier else None


def severity_of(word: str, *, leading: bool = True) -> Severity | str | None:
    """The severity a word names; a problem to show if it looks like one but is not; else None.

    `leading`: the word comes before the summary, where `s2` and `high` mean a severity too.
    """
    low = word.lower()
    match = _SEV_EXPLICIT.fullmatch(low) or (_SEV_SHORT.fullmatch(low) if leading else None)
    if match:
        number = int(match.group(1))
        if 1 <= number <= 4:
            return Severity(f"sev{number}")
        return f"'{word}' is not a severity (use sev1 to sev4, P1 to P4, or critical/high/medium/low)."
    if leading and low in SEVERITY_WORDS:
        return SEVERITY_WORDS[low]
    return None


def _join_severity(words: list[str]) -> list[str]:
    """`sev 2` and `sev -2` as one word, so the number never stays behind in the title."""
    out: list[str] = []
    for w in words:
        if out and out[-1].lower() in ("sev", "sev-", "severity") and re.fullmatch(r"-?\d{1,3}", w):
            out[-1] = "sev" + w.lstrip("-")
        else:
            out.append(w)
    return out


def person_arg(word: str) -> str:
    """A person as typed: `ben`, `@ben`, or `@ben` as the adapters write a mention."""
    return word.lstrip("@").lower()


def with_names(text: str, config: Config) -> str:
    """`@ben` of a configured person as `@Ben Brooks`: free text shows names, never ids or keys."""
    def name(match: re.Match[str]) -> str:
        person = config.people.get(match.group(1).lower())
        return f"@{person.name}" if person else match.group(0)
    return _MENTION.sub(name, text)


def _title(words: list[str], config: Config) -> str:
    """The summary as a case title: names for mentions, at most TITLE_LIMIT characters."""
    title = with_names(" ".join(words), config)
    return title if len(title) <= TITLE_LIMIT else title[:TITLE_LIMIT - 1].rstrip() + CUT


def was_cut(title: str) -> bool:
    return title.endswith(CUT) and len(title) >= TITLE_LIMIT - 20


def category_note(category: str | None, config: Config) -> str | None:
    """What to tell the caller about a category nobody configured: a near-miss of a sensitive one is
    treated as sensitive (the case stays private); another unknown one gets the closest known name."""
    if not category:
        return None
    low = category.lower()
    known = known_categories(config)
    if low in known:
        return None
    sensitive = sensitive_match(low, config)
    if sensitive:
        return f"category '{category}' treated as sensitive (did you mean {sensitive}?)"
    close = difflib.get_close_matches(low, sorted(known), n=1, cutoff=0.75)
    if close:
        return f"category '{category}' is not one I know (did you mean {close[0]}?)"
    return None


def notes(command: Command | Reply, config: Config) -> list[str]:
    """Things the caller should know about how their words were read (shown with the reply)."""
    if not isinstance(command, OpenCase):
        return []
    found = [note] if (note := category_note(command.category, config)) else []
    if was_cut(command.title):
        found.append(f"the summary was cut to {TITLE_LIMIT} characters for the title; "
                     "put the details in the case thread")
    return found


def with_notes(reply: Reply, command: Command | Reply, config: Config) -> Reply:
    """The reply to `command` with the notes about its words added at the end."""
    extra = notes(command, config)
    if not extra:
        return reply
    return reply.model_copy(update={"text": "\n".join([reply.text, *(f"Note: {n}" for n in extra)])})


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
        return EscalateCase(actor=actor, key=key, case_id=case_id, to_tier=tier,
                            reason=with_names(" ".join(reason_words), config), vendor=vendor, vendor_ticket=ticket)
    tier = None
    severity: Severity | None = None
    customer = category = None
    summary: list[str] = []
    for w in words:
        low = w.lower()
        sev = severity_of(w, leading=not summary)
        if not summary and tier is None and (t := _tier(w, config)):
            tier = t
        elif isinstance(sev, Severity):
            if severity is not None and sev != severity:
                raise _Usage(f"Two severities given ({severity.value} and {sev.value}); give one.")
            severity = sev
        elif sev is not None:
            raise _Usage(sev)
        elif low.startswith("customer:"):
            customer = w.split(":", 1)[1].lower()
            if customer not in config.customers:
                known = ", ".join(config.customers) or "none configured"
                raise _Usage(f"Unknown customer '{customer}' (known: {known}).")
        elif low.startswith("category:"):
            category = w.split(":", 1)[1].lower()
            if not category:
                raise _Usage("category: needs a name, e.g. category:billing.")
        elif not summary and re.fullmatch(r"l\d", low):
            raise _Usage(f"'{w}' is not a known tier or severity (tiers: {', '.join(config.tier_ids)}).")
        else:
            summary.append(w)
    if not summary:
        raise _Usage("Add a short summary of the problem.")
    return OpenCase(actor=actor, key=key, title=_title(summary, config), tier=tier, severity=severity,
                    customer=customer, category=category, origin=origin)


def _case(words: list[str], actor: Actor, config: Config, key: str | None) -> Command | Reply:
    if not words or not CASE_ID.match(words[0]):
        raise _Usage("Name the case, e.g. /case ESC-1042.")
    case_id = words[0].upper()
    if len(words) == 1:
        return ShowCase(actor=actor, key=key, case_id=case_id)
    sub, rest = words[1].lower(), words[2:]
    text = with_names(" ".join(rest), config)
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
        reason = with_names(" ".join(rest[1:] if tier else rest), config)
        if not reason:
            raise _Usage(f"Say why, e.g. /case {case_id} {sub} L3 needs a database fix.")
        if sub == "escalate":
            return EscalateCase(actor=actor, key=key, case_id=case_id, to_tier=tier, reason=reason)
        return DeescalateCase(actor=actor, key=key, case_id=case_id, to_tier=tier, reason=reason)
    if sub == "watch":
        person = person_arg(rest[0]) if rest else actor.person
        if not person:
            raise _Usage("Name who should watch, e.g. /case ESC-1042 watch hana.")
        return AddWatcher(actor=actor, key=key, case_id=case_id, person=person)
    if sub == "handoff":
        if not rest:
            raise _Usage("Name who takes over, e.g. /case ESC-1042 handoff cleo checked logs already.")
        return HandOffCase(actor=actor, key=key, case_id=case_id, to_person=person_arg(rest[0]),
                           note=with_names(" ".join(rest[1:]), config))
    if sub == "wait":
        if not rest or rest[0].lower() not in ("customer", "vendor"):
            raise _Usage("Wait on whom? /case ESC-1042 wait customer  or  wait vendor.")
        return SetWaiting(actor=actor, key=key, case_id=case_id, on=rest[0].lower())
    if sub == "resume":
        return SetWaiting(actor=actor, key=key, case_id=case_id, on="none")
    if sub == "csat":
        return _csat(case_id, rest, actor, key)
    raise _Usage(f"'{sub}' is not something I can do with a case.")


# ---- swarming and the knowledge base ------------------------------------------------------------

LABELS = ("issue", "environment", "resolution", "cause")
_LABEL = re.compile(r"(?<!\w)(issue|environment|resolution|cause):", re.IGNORECASE)


def labelled(text: str, first: str) -> dict[str, str]:
    """Split "restarted the pool cause: leaked connections environment: EU" into its parts.

    The text before the first label belongs to `first`; a label may appear anywhere.
    """
    parts: dict[str, list[str]] = {}
    current = first
    last = 0
    for found in _LABEL.finditer(text):
        parts.setdefault(current, []).append(text[last:found.start()])
        current, last = found.group(1).lower(), found.end()
    parts.setdefault(current, []).append(text[last:])
    return {name: " ".join(" ".join(chunks).split()) for name, chunks in parts.items()}


def _end(case_id: str, actor: Actor, key: str | None, text: str) -> EndSwarm | Reply:
    parts = labelled(text, "resolution")
    if not parts.get("resolution"):
        return Reply(text=f"Describe the resolution, e.g. /swarm {case_id} end restarted the pool "
                          f"cause: leaked connections.", ok=False)
    return EndSwarm(actor=actor, key=key, case_id=case_id, resolution=parts["resolution"],
                    cause=parts.get("cause", ""), environment=parts.get("environment", ""))


def _swarm_action(action: str, case_id: str, actor: Actor, key: str | None, text: str) -> Command | Reply:
    if action == "swarm_join":
        return JoinSwarm(actor=actor, key=key, case_id=case_id)
    if action == "swarm_decline":
        return DeclineSwarm(actor=actor, key=key, case_id=case_id)
    if action == "swarm_leave":
        return LeaveSwarm(actor=actor, key=key, case_id=case_id)
    return _end(case_id, actor, key, text)


def _swarm(words: list[str], actor: Actor, key: str | None) -> Command | Reply:
    if not words:
        return ListSwarms(actor=actor, key=key)
    if not CASE_ID.match(words[0]):
        raise _Usage("Name the case, e.g. /swarm ESC-1042.")
    case_id = words[0].upper()
    sub, rest = (words[1].lower() if len(words) > 1 else ""), words[2:]
    if sub in ("join", "leave", "decline"):
        return _swarm_action(f"swarm_{sub}", case_id, actor, key, "")
    if sub in ("add", "lead"):
        if not rest:
            raise _Usage(f"Name the person, e.g. /swarm {case_id} {sub} dev.")
        person = rest[0].lstrip("@").lower()
        if sub == "add":
            return AddSwarmMember(actor=actor, key=key, case_id=case_id, person=person)
        return SetSwarmLead(actor=actor, key=key, case_id=case_id, person=person)
    if sub == "invite":
        skill = rest[0].split(":", 1)[1] if rest and rest[0].lower().startswith("skill:") else (rest[0] if rest else "")
        if not skill:
            raise _Usage(f"Name the skill, e.g. /swarm {case_id} invite skill:network.")
        return InviteSkill(actor=actor, key=key, case_id=case_id, skill=skill)
    if sub == "end":
        return _end(case_id, actor, key, " ".join(rest))
    skills: list[str] = []
    experts = None
    note = []
    for w in words[1:]:
        low = w.lower()
        if low.startswith("skills:") or low.startswith("skill:"):
            skills += [s for s in w.split(":", 1)[1].split(",") if s]
        elif low.startswith("experts:"):
            value = w.split(":", 1)[1]
            if not value.isdigit() or not 1 <= int(value) <= 20:
                raise _Usage(f"experts: takes a number from 1 to 20, not '{value}'.")
            experts = int(value)
        else:
            note.append(w)
    return StartSwarm(actor=actor, key=key, case_id=case_id, skills=skills, experts=experts, note=" ".join(note))


def _kb(words: list[str], actor: Actor, key: str | None) -> Command | Reply:
    if not words:
        raise _Usage("Name an article or search, e.g. /kb KB-7 or /kb search vpn drops.")
    if words[0].lower() == "search":
        if len(words) < 2:
            raise _Usage("Say what to look for, e.g. /kb search vpn drops after sleep.")
        return SearchKb(actor=actor, key=key, query=" ".join(words[1:]))
    if not KB_ID.match(words[0]):
        raise _Usage(f"'{words[0]}' is not an article id (they look like KB-7).")
    article_id = words[0].upper()
    if len(words) == 1:
        return ShowKb(actor=actor, key=key, article_id=article_id)
    sub, text = words[1].lower(), " ".join(words[2:])
    if sub == "publish":
        return PublishKb(actor=actor, key=key, article_id=article_id)
    if sub == "reject":
        return RejectKb(actor=actor, key=key, article_id=article_id, reason=text)
    if sub == "edit":
        parts = labelled(text, "")
        fields = {name: parts.get(name, "") for name in LABELS}
        if not any(fields.values()):
            raise _Usage(f"Say what to change, e.g. /kb {article_id} edit resolution: restarted the pool.")
        return EditKb(actor=actor, key=key, article_id=article_id, **fields)
    raise _Usage(f"'{sub}' is not something I can do with an article.")
# ---- crisis mode ---------------------------------------------------------------------------------

INCIDENT_ID = re.compile(r"^INC-\d+$", re.IGNORECASE)
INCIDENT_STATUSES = ("investigating", "identified", "monitoring")
INCIDENT_ACTIONS = ("incident_update", "incident_link", "incident_role", "incident_resolve")


def _crisis(text: str, actor: Actor, config: Config, key: str | None) -> Command | Reply:
    words = text.split()
    if not words:
        return cmds.ListIncidents(actor=actor, key=key)
    if words[0].lower() == "declare":
        return _declare(text.strip()[len(words[0]):], actor, key)
    if not INCIDENT_ID.match(words[0]):
        raise _Usage("Name the incident, e.g. /crisis INC-3 roles, or declare one: /crisis declare sev1 TITLE.")
    inc, sub, rest = words[0].upper(), (words[1].lower() if len(words) > 1 else ""), words[2:]
    body = " ".join(rest)
    if sub == "role":
        if len(rest) < 2:
            raise _Usage(f"Name the role and the person, e.g. /crisis {inc} role communications hana.")
        who = rest[1].lower().lstrip("@")
        person = actor.person if who == "me" else None if who == "none" else who
        if who == "me" and not actor.person:
            raise _Usage("I don't know who you are in the config; name the person instead of 'me'.")
        return cmds.AssignRole(actor=actor, key=key, incident_id=inc, role=rest[0].lower(), person=person)
    if sub == "roles":
        return cmds.ShowRoles(actor=actor, key=key, incident_id=inc)
    if sub == "link":
        if not rest or not all(CASE_ID.match(w) for w in rest):
            raise _Usage(f"Name the cases, e.g. /crisis {inc} link ESC-1042 ESC-1043.")
        return cmds.LinkCases(actor=actor, key=key, incident_id=inc, case_ids=[w.upper() for w in rest])
    if sub == "unlink":
        if len(rest) != 1 or not CASE_ID.match(rest[0]):
            raise _Usage(f"Name one case, e.g. /crisis {inc} unlink ESC-1043.")
        return cmds.UnlinkCase(actor=actor, key=key, incident_id=inc, case_id=rest[0].upper())
    if sub == "cases":
        return cmds.ShowIncidentCases(actor=actor, key=key, incident_id=inc)
    if sub == "update":
        if not rest or rest[0].lower() not in INCIDENT_STATUSES:
            got = f"Unknown status '{rest[0]}'. " if rest else ""
            raise _Usage(f"{got}Start with the status, e.g. /crisis {inc} update identified A failover is running.")
        if len(rest) < 2:
            raise _Usage(f"Add the text customers will read, e.g. /crisis {inc} update {rest[0].lower()} ...")
        return cmds.PostUpdate(actor=actor, key=key, incident_id=inc, status=rest[0].lower(), text=" ".join(rest[1:]))
    if sub == "note":
        if not body:
            raise _Usage(f"A note needs text, e.g. /crisis {inc} note failover started on db-2.")
        return cmds.AddNote(actor=actor, key=key, incident_id=inc, text=body)
    if sub == "resolve":
        flag = any(w.lower() == "--resolve-cases" for w in rest)
        final = " ".join(w for w in rest if w.lower() != "--resolve-cases")
        if not final:
            raise _Usage(f"Say how it was resolved, e.g. /crisis {inc} resolve Checkout works again.")
        return cmds.ResolveIncident(actor=actor, key=key, incident_id=inc, text=final, resolve_cases=flag)
    if sub == "report":
        return cmds.ShowReport(actor=actor, key=key, incident_id=inc)
    raise _Usage(f"'{sub}' is not something I can do with an incident." if sub else f"What should I do with {inc}?")


def _declare(text: str, actor: Actor, key: str | None) -> Command:
    severity: Severity | None = None
    component: str | None = None
    customers: list[str] = []
    keywords: list[str] = []
    # keywords:"a,b c" may hold spaces inside quotes
    quoted = re.compile(r'keywords:"([^"]*)"', re.IGNORECASE)
    for found in quoted.findall(text):
        keywords += [k.strip().lower() for k in found.split(",") if k.strip()]
    text = quoted.sub(" ", text)
    title: list[str] = []
    for w in text.split():
        low = w.lower()
        if not title and severity is None and low in ("sev1", "sev2", "sev3"):
            severity = Severity(low)
        elif low.startswith("component:"):
            component = w.split(":", 1)[1].lower() or None
        elif low.startswith("customers:") or low.startswith("customer:"):
            customers += [c.strip().lower() for c in w.split(":", 1)[1].split(",") if c.strip()]
        elif low.startswith("keywords:"):
            keywords += [k.strip().strip('"').lower() for k in w.split(":", 1)[1].split(",") if k.strip('" ')]
        else:
            title.append(w)
    if not title:
        raise _Usage("Give the incident a title, e.g. /crisis declare sev1 component:checkout Checkout is down.")
    return cmds.DeclareIncident(actor=actor, key=key, title=" ".join(title), severity=severity, component=component,
                           customers=customers, keywords=keywords)


def incident_action(action: str, incident_id: str, *, actor: Actor, key: str | None = None,
                    text: str = "", status: str | None = None) -> Command | Reply:
    """An incident card button plus the text it asked for (an update's first word may be its status).

    Post update without text asks the core for the update form; the form comes back with a status.
    """
    words = text.split()
    if action == "incident_update":
        if status is not None:
            if status.lower() not in INCIDENT_STATUSES:
                return Reply(text=f"Unknown status '{status}' (use investigating, identified or monitoring).",
                             ok=False)
            status, body = status.lower(), " ".join(words)
        elif not words:
            return cmds.UpdateForm(actor=actor, key=key, incident_id=incident_id)
        else:
            status = words[0].lower() if words[0].lower() in INCIDENT_STATUSES else None
            body = " ".join(words[1:] if status else words)
        if not body:
            return Reply(text="Please write the update customers will read (you may start with its status: "
                              "investigating, identified or monitoring).", ok=False)
        return cmds.PostUpdate(actor=actor, key=key, incident_id=incident_id, status=status, text=body)
    if action == "incident_link":
        ids = [w.upper() for w in re.split(r"[\s,]+", text) if w]
        if not ids or not all(CASE_ID.match(i) for i in ids):
            return Reply(text="Please list the case ids to link, e.g. ESC-1042 ESC-1043.", ok=False)
        return cmds.LinkCases(actor=actor, key=key, incident_id=incident_id, case_ids=ids)
    if action == "incident_role":
        if not words or not actor.person:
            return Reply(text="Please name the role you take, e.g. communications.", ok=False)
        return cmds.AssignRole(actor=actor, key=key, incident_id=incident_id, role=words[0].lower(),
                               person=actor.person)
    if not words:
        return Reply(text="Please describe the resolution customers will read.", ok=False)
    flag = "--resolve-cases" in (w.lower() for w in words)
    return cmds.ResolveIncident(actor=actor, key=key, incident_id=incident_id,
                           text=" ".join(w for w in words if w.lower() != "--resolve-cases"), resolve_cases=flag)
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
