"""The chat grammar reads input as people really type it: severities, mentions, typos, pasted junk."""

from __future__ import annotations

import time

import pytest

from adapters.slack import inbound
from bot.commands import AddWatcher, EscalateCase, HandOffCase, OpenCase, ResolveCase
from bot.config import Config, load_config
from bot.messages import Reply
from bot.model import Actor, Severity
from tests.conftest import PROJECT_CONFIG
from workflows import grammar
from workflows.grammar import action_command, form_command, parse, parse_message
from workflows.policy import is_sensitive, sensitive_match

CONFIG: Config = load_config(PROJECT_CONFIG)
ALICE = Actor(person="alice", platform="slack", user_id="U0ALICE", name="Alice Adams")


def escalate(text: str) -> OpenCase | Reply:
    result = parse(text, verb="escalate", actor=ALICE, config=CONFIG)
    assert isinstance(result, OpenCase | Reply)
    return result


# ---- severity -------------------------------------------------------------------------------

SEVERITIES = [
    ("sev 2 checkout broken", Severity.SEV2), ("sev-2 checkout broken", Severity.SEV2),
    ("SEV2 checkout broken", Severity.SEV2), ("s2 checkout broken", Severity.SEV2),
    ("P1 checkout broken", Severity.SEV1), ("p4 checkout broken", Severity.SEV4),
    ("critical checkout broken", Severity.SEV1), ("high checkout broken", Severity.SEV2),
    ("Medium checkout broken", Severity.SEV3), ("low checkout broken", Severity.SEV4),
    ("L2 sev 1 checkout broken", Severity.SEV1), ("checkout broken sev 2", Severity.SEV2),
    ("customer:globex checkout broken SEV-3", Severity.SEV3),
]


@pytest.mark.parametrize(("text", "severity"), SEVERITIES, ids=[s[0] for s in SEVERITIES])
def test_severity_is_understood_the_way_people_write_it_and_never_left_in_the_title(
        text: str, severity: Severity) -> None:
    result = escalate(text)
    assert isinstance(result, OpenCase), result
    assert result.severity == severity
    assert result.title == "checkout broken"


@pytest.mark.parametrize("text", ["sev5 broken", "p9 broken", "sev 0 broken", "s7 broken", "broken sev 12"])
def test_something_that_looks_like_a_severity_but_is_not_is_refused_with_usage(text: str) -> None:
    result = escalate(text)
    assert isinstance(result, Reply) and not result.ok
    assert "is not a severity" in result.text and "Usage: /escalate" in result.text
    assert "P1..P4 = sev1..sev4" in result.text and "critical = sev1" in result.text


def test_severity_words_inside_the_summary_stay_words() -> None:
    result = escalate("checkout p95 latency high on s3 uploads")
    assert isinstance(result, OpenCase)
    assert result.severity is None and result.title == "checkout p95 latency high on s3 uploads"


def test_two_different_severities_are_refused() -> None:
    result = escalate("sev1 checkout broken sev 3")
    assert isinstance(result, Reply) and "Two severities" in result.text


def test_the_help_says_which_severity_word_means_which() -> None:
    assert "P1..P4 = sev1..sev4; critical = sev1, high = sev2, medium = sev3, low = sev4" in grammar.help_text()


@pytest.mark.parametrize(("word", "severity"), [("P2", Severity.SEV2), ("sev 1", Severity.SEV1),
                                                ("low", Severity.SEV4), ("S3", Severity.SEV3)])
def test_the_form_reads_severity_the_same_way(word: str, severity: Severity) -> None:
    result = form_command({"severity": word, "summary": "checkout broken"}, actor=ALICE, config=CONFIG)
    assert isinstance(result, OpenCase) and result.severity == severity


def test_the_form_refuses_an_impossible_severity() -> None:
    result = form_command({"severity": "p9", "summary": "checkout broken"}, actor=ALICE, config=CONFIG)
    assert isinstance(result, dict) and result["severity"] == "Unknown severity 'p9' (use sev1 to sev4)."


# ---- people -----------------------------------------------------------------------------------


def case(text: str) -> object:
    return parse(text, verb="case", actor=ALICE, config=CONFIG)


@pytest.mark.parametrize("who", ["ben", "@ben", "@Ben", "BEN"])
def test_a_person_can_be_named_by_key_or_mention(who: str) -> None:
    handoff = case(f"ESC-1 handoff {who} logs attached")
    assert isinstance(handoff, HandOffCase) and handoff.to_person == "ben"
    watch = case(f"ESC-1 watch {who}")
    assert isinstance(watch, AddWatcher) and watch.person == "ben"


def slack_command(text: str, command: str = "/case") -> object:
    body = {"command": command, "text": text, "user_id": "U0ALICE", "trigger_id": "t1", "channel_id": "C0L1"}
    return inbound.slash_command(body, CONFIG)


@pytest.mark.parametrize("mention", ["<@U0BEN|ben>", "<@U0BEN>", "<@U0BEN|benb>"])
def test_a_slack_escaped_mention_resolves_by_user_id(mention: str) -> None:
    handoff = slack_command(f"ESC-1 handoff {mention} over to you")
    assert isinstance(handoff, HandOffCase) and handoff.to_person == "ben"
    watch = slack_command(f"ESC-1 watch {mention}")
    assert isinstance(watch, AddWatcher) and watch.person == "ben"


def test_an_unknown_slack_user_becomes_their_label_or_someone_never_an_id() -> None:
    assert inbound.plain_text("<@U0NOBODY|zed> and <@U0NOBODY>", CONFIG) == "@zed and @someone"
    handoff = slack_command("ESC-1 handoff <@U0NOBODY>")
    assert isinstance(handoff, HandOffCase) and handoff.to_person == "someone"  # "Unknown person" later


def test_a_mention_in_a_title_shows_the_persons_name_not_an_id() -> None:
    opened = slack_command("<@U0BEN> test", command="/escalate")
    assert isinstance(opened, OpenCase) and opened.title == "@Ben Brooks test"
    mentioned = inbound.mention_command({"user": "U0ALICE", "channel": "C0L1", "ts": "1.2",
                                         "text": "<@U0BOT> escalate L3 api down, ask <@U0ERIN|erin>"}, "Ev1", CONFIG)
    assert isinstance(mentioned, OpenCase) and mentioned.title == "api down, ask @Erin Ortiz"


def test_reasons_resolutions_and_notes_show_names_too() -> None:
    resolved = slack_command("ESC-1 resolve fixed with <@U0CLEO>")
    assert isinstance(resolved, ResolveCase) and resolved.resolution == "fixed with @Cleo Chen"
    moved = parse("ESC-1 L3 @dev knows the job", verb="escalate", actor=ALICE, config=CONFIG)
    assert isinstance(moved, EscalateCase) and moved.reason == "@Dev Patel knows the job"
    handed = case("ESC-1 handoff ben ask @hana about jane@ben.example, then @gus.")
    assert isinstance(handed, HandOffCase)
    assert handed.note == "ask @Hana Ito about jane@ben.example, then @Gus Grant."


# ---- categories -------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "meant"), [("biling", "billing"), ("payments", "payment"),
                                              ("acount", "account"), ("Fruad", "fraud"), ("billing", "billing"),
                                              ("identities", "identity"), ("accounts", "account")])
def test_a_near_miss_of_a_sensitive_category_is_sensitive(typed: str, meant: str) -> None:
    assert sensitive_match(typed, CONFIG) == meant and is_sensitive(typed, CONFIG)


@pytest.mark.parametrize("typed", ["network", "printer", "outage", None, ""])
def test_other_categories_are_not_sensitive(typed: str | None) -> None:
    assert sensitive_match(typed, CONFIG) is None and not is_sensitive(typed, CONFIG)


def test_the_caller_is_told_a_near_miss_was_treated_as_sensitive() -> None:
    opened = escalate("category:biling Charged twice")
    assert isinstance(opened, OpenCase)
    reply = grammar.with_notes(Reply(text="Opened ESC-1001."), opened, CONFIG)
    assert reply.text.endswith("category 'biling' treated as sensitive (did you mean billing?)")


def test_an_unknown_category_close_to_a_known_one_gets_a_suggestion() -> None:
    assert grammar.category_note("complience", CONFIG) == \
        "category 'complience' treated as sensitive (did you mean compliance?)"
    assert grammar.category_note("billing", CONFIG) is None
    assert grammar.category_note("printers", CONFIG) is None
    config = CONFIG.model_copy(update={"routing": [*CONFIG.routing, CONFIG.routing[0].model_copy(
        update={"if_": CONFIG.routing[0].if_.model_copy(update={"category": ["network"]})})]})
    assert grammar.category_note("netwrk", config) == "category 'netwrk' is not one I know (did you mean network?)"


# ---- pasted junk and huge input ---------------------------------------------------------------

JUNK = "\x00\x01\x07\x1b\x7f\x85\x9b\u202e\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\r"


def strings(value: object) -> list[str]:
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def no_control(value: object) -> bool:
    return not any(ch in text for text in strings(value) for ch in JUNK)


def test_control_characters_and_bidi_overrides_never_reach_a_command() -> None:
    opened = escalate(f"L2 sev2 Charged{JUNK} twice\tfor \u202egnp.exe")
    assert isinstance(opened, OpenCase) and no_control(opened)
    assert opened.title == "Charged twice for gnp.exe"
    message = parse_message(f"\u202eescalate L1 printer{JUNK}", actor=ALICE, config=CONFIG)
    assert isinstance(message, OpenCase) and no_control(message) and message.title == "printer"
    form = form_command({"summary": f"help{JUNK}me", "category": "bil\x00ling"}, actor=ALICE, config=CONFIG)
    assert isinstance(form, OpenCase) and no_control(form) and form.category == "billing"
    button = action_command("resolve", "ESC-1", actor=ALICE, text="done\x00\u202e line\nnext")
    assert isinstance(button, ResolveCase) and no_control(button) and button.resolution == "done line\nnext"


@pytest.mark.parametrize("entry", ["parse", "parse_message", "form", "button"])
def test_a_40_kb_input_is_refused_at_once_with_the_limit(entry: str) -> None:
    huge = "A" * 40_000 + " sev 2 " + "@ben " * 2000
    started = time.perf_counter()
    if entry == "parse":
        result: object = parse(huge, verb="escalate", actor=ALICE, config=CONFIG)
    elif entry == "parse_message":
        result = parse_message("escalate " + huge, actor=ALICE, config=CONFIG)
    elif entry == "form":
        result = form_command({"summary": huge}, actor=ALICE, config=CONFIG)
    else:
        result = action_command("resolve", "ESC-1", actor=ALICE, text=huge)
    elapsed = time.perf_counter() - started
    print(f"{entry}: refused a 40 KB input in {elapsed * 1000:.2f} ms")
    if isinstance(result, dict):
        assert "40,000" in result["summary"]
    else:
        assert isinstance(result, Reply) and not result.ok and "at most 40,000" in result.text


def test_a_title_is_cut_at_300_characters_and_the_caller_is_told() -> None:
    opened = escalate("word " * 500)
    assert isinstance(opened, OpenCase) and len(opened.title) <= grammar.TITLE_LIMIT
    assert opened.title.endswith("word…")
    reply = grammar.with_notes(Reply(text="Opened ESC-1001."), opened, CONFIG)
    assert "Note: the summary was cut to 300 characters for the title" in reply.text
    short = escalate("word " * 5)
    assert isinstance(short, OpenCase) and grammar.with_notes(Reply(text="x"), short, CONFIG).text == "x"


# ---- typos --------------------------------------------------------------------------------------


def test_a_mistyped_verb_is_named_with_the_command_it_looks_like() -> None:
    for result in (parse_message("/esclate L2 checkout broken", actor=ALICE, config=CONFIG),
                   parse_message("esclate L2 checkout broken", actor=ALICE, config=CONFIG),
                   parse("L2 checkout broken", verb="/esclate", actor=ALICE, config=CONFIG)):
        assert isinstance(result, Reply) and not result.ok
        assert result.text.startswith("Unknown command 'esclate' — did you mean escalate?")
        assert "Escalator commands:" in result.text


def test_a_word_nothing_like_a_command_is_unknown_without_a_guess() -> None:
    result = parse_message("frobnicate", actor=ALICE, config=CONFIG)
    assert isinstance(result, Reply) and result.text.startswith("Unknown command 'frobnicate'.\n")
