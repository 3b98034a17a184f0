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

    # --- AWS: where actions act, as whom, and what they never touch -------------------------
    aws_endpoint_url: str | None = Field(
        default=None,
        description="Send every AWS call to this endpoint (a local emulator); unset: AWS itself.",
    )
    aws_region: str = Field(
        default="us-east-1", description="Region of AWS calls when the alert names none."
    )
    responder_role: str | None = Field(
        default=None,
        description="Role name (with its path, if any) assumed in an alert's account when it is "
        "not Riposte's own; unset: act only in Riposte's own account.",
    )
    responder_external_id: SecretStr | None = Field(
        default=None, description="ExternalId sent when assuming the responder role."
    )
    aws_retry_seconds: float = Field(
        default=60.0,
        description="Longest time one AWS call is retried on codes botocore does not retry "
        "(IAM ConcurrentModification, SNS Throttled, EC2 NotFound just after a create).",
    )
    break_glass: list[str] = Field(
        default=[],
        description="Principals containment never touches: user or role names or ARN globs "
        "(JSON list).",
    )
    production_tags: list[str] = Field(
        default=["Environment=production"],
        description="Tags that mark an instance as production: 'Key=Value', or 'Key' for any "
        "value (JSON list).",
    )
    production_instances: list[str] = Field(
        default=[], description="Instance ids that are production whatever their tags (JSON list)."
    )

    def is_production(self, instance_id: str, tags: dict[str, str]) -> bool:
        """Whether an instance is production: listed by id, or carrying a production tag."""
        if instance_id in self.production_instances:
            return True
        for wanted in self.production_tags:
            key, sep, value = wanted.partition("=")
            if key in tags and (not sep or tags[key] == value):
                return True
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
