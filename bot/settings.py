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
    # Commands run at once per process; past it a request waits up to 2 s, then is answered "busy".
    escalator_max_in_flight: int = Field(64, ge=1)

    # Redis connectivity: answer within Slack's 3 s even when Redis stalls, wait (not fail) when busy.
    redis_cluster: bool = Field(False, description="force the cluster client (else detected from the server)")
    redis_sentinels: str = Field("", description="host:port,host:port of Sentinels; uses Sentinel when set")
    redis_sentinel_master: str = Field("mymaster", description="the master name the Sentinels watch")
    redis_connect_timeout_s: float = 2.0
    redis_socket_timeout_s: float = 2.0
    redis_max_connections: int = 50
    redis_pool_timeout_s: float = 2.0
    redis_health_check_interval_s: int = 30

    # Readiness (/readyz): the thresholds past which this process asks not to get traffic.
    escalator_ready_max_backlog: int = 1000
    escalator_ready_max_age_s: float = 600.0

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and bool(self.slack_bot_token.get_secret_value())

    @property
    def teams_app_type(self) -> str:
        if self.microsoft_app_type:
            return self.microsoft_app_type
        return "SingleTenant" if self.microsoft_app_tenant_id else "MultiTenant"
