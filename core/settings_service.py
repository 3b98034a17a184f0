"""Settings of the service: its database, its HTTP API and what it accepts, its audit log."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from core.setting_variables import VariableSettings, variable


class ServiceSettings(VariableSettings):
    """Where Riposte keeps its state, how its API listens and what it accepts."""

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


    # --- CLI client ----------------------------------------------------------------------------
    api_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where `riposte approvals` reaches the HTTP API (with the token in "
        "RIPOSTE_TOKEN).",
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

    @model_validator(mode="after")
    def _password_into_the_url(self) -> ServiceSettings:
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
