"""Teams' process settings, from MICROSOFT_APP_* environment variables (the Azure Bot's credentials)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TeamsEnv(BaseSettings):
    """MICROSOFT_APP_ID, _PASSWORD, _TENANT_ID, _TYPE; ESCALATOR_ALLOW_UNAUTHENTICATED_TEAMS for a local
    Bot Framework Emulator on another machine (local mode only serves loopback callers otherwise)."""

    model_config = SettingsConfigDict(env_prefix="microsoft_app_", extra="ignore", case_sensitive=False,
                                      populate_by_name=True)

    id: str = ""
    password: SecretStr = SecretStr("")
    tenant_id: str = ""
    type: str = Field("", description="SingleTenant or MultiTenant; derived if empty")
    allow_unauthenticated: bool = Field(False, validation_alias=AliasChoices(
        "escalator_allow_unauthenticated_teams", "allow_unauthenticated"))

    @property
    def app_type(self) -> str:
        if self.type:
            return self.type
        return "SingleTenant" if self.tenant_id else "MultiTenant"
