"""Process settings: the core's own, and each platform's read by its adapter from its own variables."""

from __future__ import annotations

import pytest

from adapters.slack.env import SlackEnv
from adapters.teams.env import TeamsEnv
from bot.settings import Settings


def test_each_platform_reads_its_own_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    monkeypatch.setenv("MICROSOFT_APP_ID", "app-id")
    monkeypatch.setenv("MICROSOFT_APP_TENANT_ID", "tenant")
    monkeypatch.setenv("ESCALATOR_ALLOW_UNAUTHENTICATED_TEAMS", "1")
    settings = Settings()
    slack, teams = settings.platform(SlackEnv), settings.platform(TeamsEnv)
    assert slack.enabled and slack.bot_token is not None and slack.bot_token.get_secret_value() == "xoxb-from-env"
    assert slack.api_url == "https://slack.com/api/"
    assert (teams.id, teams.tenant_id, teams.app_type, teams.allow_unauthenticated) == \
        ("app-id", "tenant", "SingleTenant", True)


def test_values_given_by_their_environment_names_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_API_URL", "https://from-env.example/api/")
    monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)
    settings = Settings(slack_api_url="http://127.0.0.1:9/api/", microsoft_app_id="given",
                        escalator_allow_unauthenticated_teams=True, redis_url="redis://h:1/0")
    assert settings.platform(SlackEnv).api_url == "http://127.0.0.1:9/api/"
    assert not settings.platform(SlackEnv).enabled  # no token anywhere
    teams = settings.platform(TeamsEnv)
    assert teams.id == "given" and teams.allow_unauthenticated and teams.app_type == "MultiTenant"
    assert settings.redis_url == "redis://h:1/0"
