"""Settings of runs: workers and their leases, modes, approvals and who is told."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from core.setting_variables import VariableSettings, variable


class RunSettings(VariableSettings):
    """How workers claim and run runs, how approvals wait, and who is told."""

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

    # --- Notifications (notify.webhook) ------------------------------------------------------
    notify_webhook_url: SecretStr | None = Field(
        default=None,
        description="Slack-compatible incoming-webhook URL notify.webhook posts to when a step "
        "gives none; a secret: only its host is ever shown.",
    )

    @model_validator(mode="after")
    def _silence_outlasts_a_heartbeat(self) -> RunSettings:
        # Otherwise every worker would be counted silent between two of its heartbeats.
        if self.worker_silent_after <= self.worker_heartbeat_seconds:
            raise ValueError(
                f"{variable('worker_silent_after')} ({self.worker_silent_after:g}) must be longer "
                f"than {variable('worker_heartbeat_seconds')} ({self.worker_heartbeat_seconds:g}): "
                "a few heartbeats, say three"
            )
        return self
