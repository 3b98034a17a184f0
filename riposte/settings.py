"""The one settings object: every knob is a ``RIPOSTE_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Riposte's configuration, read from ``RIPOSTE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="RIPOSTE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///riposte.db",
        description="SQLAlchemy URL: sqlite:///path.db (embedded) or postgresql+psycopg://…",
    )
    playbook_dir: Path = Field(
        default=Path("playbooks"), description="Directory of the YAML playbooks to load."
    )
    max_body_bytes: int = Field(
        default=1_048_576, description="Largest request body accepted; bigger answers 413."
    )
    lease_seconds: float = Field(
        default=30.0, description="How long a worker's claim on a run lasts without renewal."
    )
    worker_poll_seconds: float = Field(
        default=5.0,
        description="Longest a worker sleeps between looks for work when no wake-up arrives.",
    )
    worker_id: str | None = Field(
        default=None, description="Name of this worker in leases and the audit log (host:pid)."
    )
    worker_metrics_port: int | None = Field(
        default=None, description="Port where a standalone worker serves /metrics (off if unset)."
    )
    approval_expires_in: float = Field(
        default=3600.0, description="Default seconds before a pending approval expires."
    )
    log_level: str = Field(default="INFO", description="Log level of the JSON log lines.")
    host: str = Field(default="127.0.0.1", description="Address `riposte serve` listens on.")
    port: int = Field(default=8000, description="Port `riposte serve` listens on.")
    sns_topics: list[str] = Field(
        default=[],
        description="TopicArn globs whose SNS subscriptions are confirmed (JSON list); "
        "empty confirms none.",
    )
    sns_cert_dir: Path | None = Field(
        default=None,
        description="Directory of pinned SNS signing certificates; unset fetches them from the "
        "SNS host.",
    )
    sns_basic_auth: SecretStr | None = Field(
        default=None,
        description="'user:password' the SNS subscription URL carries; when set the SNS "
        "endpoint requires it.",
    )
    eventbridge_api_key_header: str = Field(
        default="x-riposte-api-key",
        description="Header an EventBridge connection's API_KEY auth sends the token in.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
