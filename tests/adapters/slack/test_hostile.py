"""Hostile and odd requests to /slack/events: a short 4xx before any parsing, never a 500 or a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from adapters import logs
from adapters.slack import render
from bot.outbox import DeliveryWorker
from bot.runtime import Runtime
from tests.adapters.slack.conftest import SlackCaller
from tests.adapters.slack.helpers import text_of
from tests.adapters.text import UNSAFE, strings
from tests.fakes.slack_api import FakeSlackApi

FORM = "application/x-www-form-urlencoded"
MALFORMED = {
    "payload that is not JSON": ("payload={not json", FORM),
    "payload null": ("payload=null", FORM),
    "payload a list": ("payload=[]", FORM),
    "payload a string": ('payload="hi"', FORM),
    "JSON null": ("null", "application/json"),
    "JSON list": ("[]", "application/json"),
    "JSON that is cut short": ('{"type": "event_callback", "event": {', "application/json"),
}


async def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    with_traces = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]
    assert with_traces == []


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_an_unsigned_malformed_body_gets_401_without_a_traceback(
        case: str, slack: SlackCaller, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body, content_type = MALFORMED[case]

    status, _ = await slack.post(body, content_type, sign=False)

    assert status == 401
    await assert_no_tracebacks(caplog)


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_a_signed_body_bolt_cannot_read_gets_400_without_a_traceback(
        case: str, slack: SlackCaller, slack_runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body, content_type = MALFORMED[case]

    status, answer = await slack.post(body, content_type)

    assert status == 400
    assert "Traceback" not in json.dumps(answer)
    await assert_no_tracebacks(caplog)


ODD_SHAPES: dict[str, dict[str, Any]] = {
    "an event that is a string": {"type": "event_callback", "event": "x"},
    "an event that is null": {"type": "event_callback", "event": None},
    "no event": {"type": "event_callback"},
    "a mention whose text is a number": {"type": "event_callback",
                                         "event": {"type": "app_mention", "text": 5, "user": ["U0BEN"]}},
    "actions that are a string": {"type": "block_actions", "actions": "x"},
    "actions that are numbers": {"type": "block_actions", "actions": [5]},
    "a view that is a number": {"type": "view_submission", "view": 5},
    "a view whose state is a number": {"type": "view_submission", "view": {"callback_id": "x", "state": 5}},
    "a shortcut whose message is a string": {"type": "message_action", "callback_id": "escalate_message",
                                             "message": "x"},
    "a type that is a number": {"type": 5},
    "a user that is a number": {"type": "block_actions", "user": 5, "team": "x"},
}


@pytest.mark.parametrize("case", list(ODD_SHAPES))
async def test_a_signed_body_of_an_unexpected_shape_gets_400_without_a_traceback(
        case: str, slack: SlackCaller, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = ODD_SHAPES[case]
    if body.get("type") == "event_callback" or not isinstance(body.get("type"), str):
        status, _ = await slack.post(json.dumps(body), "application/json")
    else:
        status, _ = await slack.interact(body)

    assert status == 400
    await assert_no_tracebacks(caplog)


@pytest.mark.parametrize("timestamp", ["soon", "", "1e9", "-1", "99999999999999999999999"])
async def test_a_timestamp_that_is_not_a_number_gets_401(
        timestamp: str, slack: SlackCaller, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = slack.command_body("/escalate", "L2 sev2 checkout fails")
    response = await slack.client.post("/slack/events", data=body.encode(), headers={
        "Content-Type": FORM, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=00"})

    assert response.status == 401
    await assert_no_tracebacks(caplog)


async def test_a_body_over_a_megabyte_gets_413_before_it_is_read(
        slack: SlackCaller, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = slack.command_body("/escalate", "L2 sev2 " + "x" * 1_020_000)

    status, _ = await slack.post(body, FORM)  # signed: the size alone refuses it

    assert status == 413
    await assert_no_tracebacks(caplog)


async def test_a_chunked_body_over_a_megabyte_gets_413(slack: SlackCaller) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 50_000

    response = await slack.client.post("/slack/events", data=chunks(), headers={
        "Content-Type": FORM, "X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=00"})

    assert response.status == 413


def rate_limited_count() -> float:
    return REGISTRY.get_sample_value("escalator_slack_app_rate_limited_total") or 0.0


async def test_slacks_app_rate_limited_notice_gets_200_is_logged_and_counted(
        slack: SlackCaller) -> None:
    before = rate_limited_count()
    body = json.dumps({"token": "legacy", "type": "app_rate_limited", "team_id": "T0ACME",
                       "minute_rate_limited": 1518467820, "api_app_id": "A0ESC"})

    with capture_logs() as logged:
        status, _ = await slack.post(body, "application/json")
    metrics = await slack.client.get("/metrics")

    assert status == 200
    assert [e["minute_rate_limited"] for e in logged if "rate limited" in e["event"]] == [1518467820]
    assert rate_limited_count() == before + 1
    assert "escalator_slack_app_rate_limited_total" in await metrics.text()


async def test_an_unsigned_app_rate_limited_notice_is_not_counted(slack: SlackCaller) -> None:
    before = rate_limited_count()
    body = json.dumps({"token": "legacy", "type": "app_rate_limited", "team_id": "T0ACME",
                       "minute_rate_limited": 1518467820, "api_app_id": "A0ESC"})

    status, _ = await slack.post(body, "application/json", sign=False)

    assert status == 401
    assert rate_limited_count() == before


async def test_a_well_formed_command_still_works_after_the_checks(slack: SlackCaller, api: FakeSlackApi) -> None:
    status, body = await slack.command("/oncall", "L2")

    assert status == 200
    assert "Cleo Chen" in body["text"]


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Logging configured as `escalator serve` does (JSON on stderr); put back afterwards."""
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    logs.configure(json=True)

    def lines() -> list[dict[str, Any]]:
        out = []
        for line in capsys.readouterr().err.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"not json": line})
        return out

    yield lines
    root.handlers[:], root.level = saved_handlers, saved_level
    structlog.configure(**saved_structlog)


async def test_bolts_own_warnings_come_out_as_the_same_json_lines_as_ours(
        slack: SlackCaller, json_logs: Callable[[], list[dict[str, Any]]]) -> None:
    status, _ = await slack.event({"type": "reaction_added", "user": "U0BEN", "reaction": "eyes",
                                   "item": {"type": "message", "channel": "C0L2", "ts": "1700000000.000001"}})
    lines = json_logs()

    assert status == 404  # Bolt: no listener for it (Slack does not retry a 404 for this)
    unhandled = [line for line in lines if "Unhandled request" in str(line.get("event"))]
    assert unhandled, "\n".join(map(str, lines))
    assert unhandled[0]["level"] == "warning"
    assert unhandled[0]["logger"] == "escalator.slack.bolt"
    assert "timestamp" in unhandled[0]
    assert [line for line in lines if "not json" in line] == []


async def test_control_characters_and_bidi_overrides_in_a_title_are_never_posted(
        slack: SlackCaller, api: FakeSlackApi, worker: DeliveryWorker, slack_runtime: Runtime) -> None:
    status, answer = await slack.command(
        "/escalate", "L2 sev2 customer:globex Printer\u202e erif no\x00 \x1b[31mnow\x07 \u2066isolated\u2069 \x85x")
    await worker.drain()
    await slack.command("/case", "ESC-1001", user="U0CLEO")

    posted = [(c.method, path, text) for c in api.calls for path, text in strings(c.args)]
    posted += [("ack", path, text) for path, text in strings(answer)]
    assert status == 200 and "ESC-1001" in answer["text"]
    assert any("Printer" in text and "blocks" in path for _, path, text in posted)
    assert [(method, path) for method, path, text in posted if any(ch in text for ch in UNSAFE)] == []
    assert "Printer erif no" in text_of(api.calls_to("chat.postMessage")[0].args)


def test_escaping_keeps_newlines_and_tabs_and_drops_the_rest() -> None:
    assert render.escape("a\tb\nc\x00d\u202ee\r\n<!here>") == "a\tb\ncde\n&lt;!here&gt;"
