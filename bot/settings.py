"""Process settings from the environment (secrets stay here, never in the config file or logs)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    microsoft_app_id: str = ""
    microsoft_app_password: SecretStr = SecretStr("")
    microsoft_app_tenant_id: str = ""
    microsoft_app_type: str = Field("", description="SingleTenant or MultiTenant; derived if empty")
    redis_url: str | None = None
    escalator_data_dir: Path = Path(".escalator")
    escalator_config: Path = Path("escalator.yaml")
    escalator_prefix: str = "escalator"
    escalator_allow_unauthenticated_teams: bool = False

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and bool(self.slack_bot_token.get_secret_value())

    @property
    def teams_app_type(self) -> str:
        if self.microsoft_app_type:
            return self.microsoft_app_type
        return "SingleTenant" if self.microsoft_app_tenant_id else "MultiTenant"
