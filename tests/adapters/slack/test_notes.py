"""What the grammar noticed about someone's words reaches them on Slack too (not only in the console)."""

from __future__ import annotations

from bot.runtime import Runtime
from tests.adapters.slack.conftest import SlackCaller


async def test_a_mistyped_sensitive_category_is_kept_private_and_the_caller_is_told(
        slack: SlackCaller, slack_runtime: Runtime) -> None:
    status, body = await slack.command("/escalate", "sev3 category:biling Charged twice")
    assert status == 200
    assert "treated as sensitive" in body["text"] and "billing" in body["text"]
    case = await slack_runtime.store.get_case("ESC-1001")
    assert case is not None and case.private
