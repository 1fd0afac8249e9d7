"""Scrubbing personal data: what must go, what must stay, and a property for card numbers."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import Config
from bot.model import Actor
from bot.privacy import iban_ok, luhn_ok, scrub
from workflows.grammar import parse_message


@pytest.mark.parametrize(("text", "kinds", "left"), [
    ("mail bob@globex.com now", ["e-mail address"], "mail [e-mail removed] now"),
    ("card 4111 1111 1111 1111 declined", ["card number"], "card [card number removed] declined"),
    ("card 4111-1111-1111-1111", ["card number"], "card [card number removed]"),
    ("IBAN DE89 3704 0044 0532 0130 00 please", ["IBAN"], "IBAN [IBAN removed] please"),
    ("call +49 170 1234567", ["phone number"], "call [phone removed]"),
    ("order 4111 1111 1111 1112 failed", [], None),  # fails Luhn: an order number, not a card
    ("ticket ESC-1042 on 2026-11-23", [], None),
    ("since 2026-11-23 09:00, order 1234567", [], None),
    ("call 030 1234 5678 or 0049 30 1234567", ["phone number"], "call [phone removed] or [phone removed]"),
    ("DE89 3704 0044 0532 0130 01", [], None),  # fails mod-97
])
def test_scrubbing_removes_personal_data_and_keeps_the_rest(text: str, kinds: list[str], left: str | None) -> None:
    out, found = scrub(text)
    assert found == kinds
    assert out == (left if left is not None else text)


def luhn_complete(prefix: list[int]) -> str:
    for check in range(10):
        candidate = "".join(map(str, prefix)) + str(check)
        if luhn_ok(candidate):
            return candidate
    raise AssertionError


@given(digits=st.lists(st.integers(0, 9), min_size=12, max_size=18),
       sep=st.sampled_from(["", " ", "-"]),
       before=st.text(alphabet="abc ,.:", max_size=10), after=st.text(alphabet="xyz ,.:", max_size=10))
def test_no_card_number_that_passes_luhn_survives(digits: list[int], sep: str, before: str, after: str) -> None:
    number = luhn_complete(digits)
    grouped = sep.join(number[i:i + 4] for i in range(0, len(number), 4))
    out, _ = scrub(f"{before} {grouped} {after}")
    assert number not in re.sub(r"[ -]", "", out)


def test_iban_check_accepts_real_ibans_only() -> None:
    assert iban_ok("GB82 WEST 1234 5698 7654 32")
    assert not iban_ok("GB82 WEST 1234 5698 7654 33")


# ---- links and ids are never scrubbed ---------------------------------------------------------

digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
slack_ids = st.builds(lambda head, tail: head + tail, st.sampled_from("CGDUW"),
                    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8, max_size=10))
teams_tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
                       min_size=8, max_size=60)
teams_message_ids = st.integers(1_000_000_000_000, 9_999_999_999_999).map(str)
tenants = st.uuids().map(str)


@st.composite
def teams_deep_links(draw: st.DrawFn) -> str:
    """`/l/message/` links as Teams and our inbound adapter build them, encoded or not."""
    thread = f"19:{draw(teams_tokens)}@{draw(st.sampled_from(['thread.tacv2', 'thread.skype', 'unq.gbl.spaces']))}"
    message, root = draw(teams_message_ids), draw(teams_message_ids)
    channel = thread.replace(":", "%3A").replace("@", "%40") if draw(st.booleans()) else thread
    query = f"tenantId={draw(tenants)}&parentMessageId={root}"
    if draw(st.booleans()):
        query += f"&groupId={draw(tenants)}&teamName=Support%20L2&channelName=General&createdTime={message}"
    return f"https://teams.microsoft.com/l/message/{channel}/{message}?{query}"


@st.composite
def slack_permalinks(draw: st.DrawFn) -> str:
    ts = draw(st.integers(1_500_000_000, 1_900_000_000))
    micros = draw(st.integers(0, 999_999))
    url = f"https://{draw(st.sampled_from(['acme', 'globex-support']))}.slack.com/archives/{draw(slack_ids)}/" \
          f"p{ts}{micros:06d}"
    if draw(st.booleans()):
        url += f"?thread_ts={ts}.{draw(st.integers(0, 999_999)):06d}&cid={draw(slack_ids)}"
    return url


# Teams user, bot and chat ids always hold letters (`29:1Xz...`, `28:<guid>`); all digits would be a number.
lettered = teams_tokens.filter(lambda t: any(c.isalpha() for c in t))
guids = tenants.filter(lambda u: any(c.isalpha() for c in u))
teams_ids = st.one_of(
    st.builds(lambda t, suffix: f"19:{t}@{suffix}", teams_tokens,
              st.sampled_from(["thread.tacv2", "thread.skype", "unq.gbl.spaces"])),
    st.builds(lambda t, m: f"19:{t}@thread.tacv2;messageid={m}", teams_tokens, teams_message_ids),
    st.builds(lambda t: f"29:1{t}", lettered),
    st.builds(lambda t: f"a:1{t}", lettered),
    st.builds(lambda u: f"28:{u}", guids),
    st.builds(lambda u: f"8:orgid:{u}", tenants),
)
personal = st.sampled_from(["bob@globex.com", "+49 170 1234567", "4111 1111 1111 1111",
                            "DE89 3704 0044 0532 0130 00", "call 030 1234 5678"])


@given(link=st.one_of(teams_deep_links(), slack_permalinks()), before=personal, after=personal,
       wrap=st.sampled_from(["{}", "<{}>", "<{}|the message>", "({})", "{}."]))
def test_links_survive_byte_for_byte_while_the_text_around_them_is_scrubbed(
        link: str, before: str, after: str, wrap: str) -> None:
    out, kinds = scrub(f"Original message: {wrap.format(link)} from {before}\nsee also {after}")
    assert link in out
    assert before not in out and after not in out
    assert kinds


@given(ident=st.one_of(teams_ids, slack_ids), around=personal)
def test_teams_and_slack_ids_survive_unchanged(ident: str, around: str) -> None:
    out, _ = scrub(f"conversation {ident} said {around}")
    assert f"conversation {ident} said " in out
    assert around not in out


def test_the_links_the_issue_saw_broken_come_out_unchanged() -> None:
    teams = ("https://teams.microsoft.com/l/message/19%3Aabc123def456%40thread.tacv2/1732360000123"
             "?tenantId=00000000-0000-0000-0000-000000000001&parentMessageId=1732360000123")
    raw_teams = "https://teams.microsoft.com/l/message/19:abc@thread.tacv2/1732360000123?tenantId=x"
    slack = "https://acme.slack.com/archives/C0L2/p1700000000123456"  # 1700000000123456 passes Luhn
    assert luhn_ok("1700000000123456")
    for link in (teams, raw_teams, slack):
        assert scrub(f"Original message: {link}") == (f"Original message: {link}", [])


@given(digits=st.lists(st.integers(0, 9), min_size=12, max_size=18),
       sep=st.sampled_from(["", " ", "-"]), link=st.one_of(teams_deep_links(), slack_permalinks()),
       before=st.text(alphabet="abc ,.:()@\n", max_size=10), after=st.text(alphabet="xyz ,.:()@\n", max_size=10))
def test_no_card_number_in_plain_text_survives_next_to_links(
        digits: list[int], sep: str, link: str, before: str, after: str) -> None:
    number = luhn_complete(digits)
    grouped = sep.join(number[i:i + 4] for i in range(0, len(number), 4))
    out, kinds = scrub(f"{link} {before} {grouped} {after} {link}")
    assert number not in re.sub(r"[ -]", "", out.replace(link, ""))
    assert "card number" in kinds


def test_a_teams_prefix_followed_by_digits_does_not_hide_a_card_number() -> None:
    out, kinds = scrub("29:4111111111111111 and a:4111-1111-1111-1111")
    assert "4111" not in out and kinds == ["card number"]


# ---- hostile lengths ----------------------------------------------------------------------------

WORST = {
    "letters then an id": "A" * 40_000 + " C0X1",
    "digits": "1" * 40_000,
    "digits and @": "1@" * 20_000,
    "letters": "a" * 40_000,
    "a@": "a@" * 20_000,
    "a.a@": "a.a@" * 10_000,
    "digit dash": "1-" * 20_000,
    "digit space": "1 " * 20_000,
    "digit paren": "1) " * 13_333,
    "teams prefixes": "19:" * 13_333,
    "teams ids": "19:x@thread.tacv2;messageid=1" * 1_380,
    "iban-like": "DE89 3704 " * 4_000,
    "mixed": "a1@.-_ +(" * 4_444,
}


@pytest.mark.parametrize("name", list(WORST))
def test_scrubbing_and_parsing_the_worst_40_kb_inputs_take_under_50_ms(name: str, example_config: Config) -> None:
    """The one timing check the issue asks for: a quadratic pattern took 2-4 s here, on the event loop."""
    text = WORST[name]
    actor = Actor(person="alice", platform="slack", user_id="U0ALICE", name="Alice Adams")
    fastest = float("inf")
    for attempt in range(3):  # the best of three: a busy CI machine can pause any single run
        variant = f"{text}{attempt}"  # a new text each time: scrub() caches what it has seen
        started = time.perf_counter()
        scrub(variant)
        parse_message(f"escalate L2 sev2 {variant}", actor=actor, config=example_config, key=f"k{attempt}")
        fastest = min(fastest, time.perf_counter() - started)
    assert fastest < 0.050, f"{name}: {fastest * 1000:.0f} ms"
