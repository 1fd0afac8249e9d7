"""Process settings from the environment (secrets stay here, never in the config file or logs)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class Settings(BaseSettings):
    """The core's settings. Each platform's adapter reads its own (`platform(SlackEnv)`), so the core
    names no platform; settings passed here by their environment name (`Settings(slack_bot_token=...)`,
    as tests and benchmarks do) reach that platform's model too."""

    model_config = SettingsConfigDict(env_prefix="", extra="allow", case_sensitive=False)

    redis_url: str | None = None
    escalator_data_dir: Path = Path(".escalator")
    escalator_config: Path = Path("escalator.yaml")
    escalator_prefix: str = "escalator"
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

    def platform(self, model: type[S]) -> S:
        """A platform's settings: its model reads its environment variables; values given to this
        object under their environment names (`<env_prefix><field>`, or a field's alias) win."""
        prefix = str(model.model_config.get("env_prefix") or "").lower()
        given = {}
        for name, value in (self.model_extra or {}).items():
            name = name.lower()
            given[name[len(prefix):] if prefix and name.startswith(prefix) else name] = value
        return model(**given)
