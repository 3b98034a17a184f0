"""Typed SQLAlchemy models: the schema the migrations must reproduce exactly."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine.store.types import BigId, JSONType, UTCDateTime, new_id, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Alert(Base):
    """One normalized alert, whatever the source; repeats count on it instead of a new row."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    source: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(256), default="")
    title: Mapped[str] = mapped_column(String(1024))
    severity: Mapped[int] = mapped_column(Integer)
    severity_label: Mapped[str] = mapped_column(String(16))
    account: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(32))
    principal: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    resources: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # When it happened, as the source says (first_seen is when Riposte received it).
    event_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_name: Mapped[str | None] = mapped_column(String(256))
    source_ip: Mapped[str | None] = mapped_column(String(256))
    user_agent: Mapped[str | None] = mapped_column(Text)
    mfa_used: Mapped[bool | None] = mapped_column(Boolean)
    details: Mapped[Any] = mapped_column(JSONType, nullable=True)
    dedup_key: Mapped[str | None] = mapped_column(String(512), unique=True)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    """Every HTTP delivery received, accepted, duplicate or rejected, with its reason."""

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    endpoint: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(1024), default="")
    alert_id: Mapped[str | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    body_bytes: Mapped[int] = mapped_column(Integer)


class Run(Base):
    """A playbook run: a durable state machine any worker can continue."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_claimable", "status", "queued_at"),
        Index("ix_runs_trigger", "playbook", "trigger_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    playbook: Mapped[str] = mapped_column(String(128))
    playbook_hash: Mapped[str] = mapped_column(String(64))
    playbook_text: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    state: Mapped[dict[str, Any]] = mapped_column(JSONType)
    started_by: Mapped[str] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A run started by a correlating or threshold trigger: its group (engine.triggers) and the
    # span of event time whose alerts of that group belong to it.
    trigger_key: Mapped[str | None] = mapped_column(String(64))
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Queued, it is claimed no sooner (a burst settling: engine.spec.Settle).
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When its first step that changes AWS began (planned, in a dry run): from then on, alerts
    # that join its group start a follow-up run instead of starting this one over.
    acted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RunAlert(Base):
    """An alert a run sees: the one that started it, and those that joined it later."""

    __tablename__ = "run_alerts"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), primary_key=True, index=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ThresholdEvent(Base):
    """One unit (an event, or a resource it names) counted towards a threshold trigger.

    ``run_id`` is set once a firing has counted it; until then it waits for its window to fill.
    """

    __tablename__ = "threshold_events"
    __table_args__ = (Index("ix_threshold_events_group", "playbook", "group_key", "event_time"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    playbook: Mapped[str] = mapped_column(String(128))
    group_key: Mapped[str] = mapped_column(String(64))
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    unit: Mapped[str] = mapped_column(Text)
    # Indexed alone for pruning, which looks for the oldest rows of every group at once.
    event_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))


class StepRecord(Base):
    """The step journal: one row per execution of a step, kept even when interrupted."""

    __tablename__ = "step_records"
    __table_args__ = (
        # A step can succeed once per round of a run, whatever the workers do (a run is started
        # over, in a new round, only before any step of it changed AWS).
        Index(
            "uq_step_records_succeeded_once",
            "run_id",
            "step_id",
            "round",
            unique=True,
            postgresql_where=text("status = 'succeeded'"),
            sqlite_where=text("status = 'succeeded'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    step_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))
    worker: Mapped[str] = mapped_column(String(128))
    # Which judgement of the run's alerts it belongs to (engine.conductor.rejudged).
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    params: Mapped[Any] = mapped_column(JSONType, nullable=True)
    output: Mapped[Any] = mapped_column(JSONType, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApprovalRequest(Base):
    """A human go/no-go on one step, showing exactly what the step will do."""

    __tablename__ = "approval_requests"
    # A step may see several requests (one superseded by a changed plan, then its successor),
    # but only one is ever pending.
    __table_args__ = (
        Index(
            "uq_approval_requests_pending_step",
            "run_id",
            "step_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    step_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), index=True)
    plan: Mapped[dict[str, Any]] = mapped_column(JSONType)
    plan_hash: Mapped[str] = mapped_column(String(64))
    required: Mapped[int] = mapped_column(Integer, default=1)
    approvers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_timeout: Mapped[str] = mapped_column(String(16), default="reject", server_default="reject")
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalate_to: Mapped[list[str] | None] = mapped_column(JSONType)


class ApprovalDecision(Base):
    """One approver's answer to an approval request."""

    __tablename__ = "approval_decisions"
    __table_args__ = (UniqueConstraint("request_id", "actor"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"))
    decision: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    plan_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApprovalMessage(Base):
    """A chat message posted about an approval request, kept so that it can be updated.

    Every message about a request (the interactive one each slack: target got, the escalation)
    is edited to show the outcome, and the run's outcome is posted in its thread.
    """

    __tablename__ = "approval_messages"
    __table_args__ = (UniqueConstraint("channel", "ts"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    target: Mapped[str] = mapped_column(String(128))  # as the playbook or settings name it
    channel: Mapped[str] = mapped_column(String(64))  # the channel id the chat answered
    ts: Mapped[str] = mapped_column(String(32))  # Slack's id of the message in its channel
    kind: Mapped[str] = mapped_column(String(16))  # request, or escalation
    shows: Mapped[str] = mapped_column(String(16))  # the request's status as the message shows it
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NoticeFeed(Base):
    """How far the workers have followed the audit log for the notices its events call for.

    One row (id 1). A worker holds it under a lease while it tells people (engine.notice_feed).
    """

    __tablename__ = "notice_feed"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token: only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One row of the append-only, hash-chained audit log."""

    __tablename__ = "audit_events"
    # SQLite: never reuse the id of a deleted newest row.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    verb: Mapped[str] = mapped_column(String(64))
    alert_id: Mapped[str | None] = mapped_column(String(36), index=True)
    run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    step_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditChain(Base):
    """The hash of the newest audit event, in one row (id 1) that serialises appends.

    ``engine.audit.record`` updates it with every event it appends, in the same transaction:
    the row lock orders concurrent writers, and the row tells each one its predecessor's hash
    without reading ``audit_events``. ``prev_hash`` is the hash before the last append (what
    that event chained to); ``event_count`` how many events the chain holds, so that verify
    sees rows deleted at its end. On PostgreSQL triggers let the row only move forward, one
    event at a time, and never be deleted (migrations 0004 and 0008).
    """

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    event_count: Mapped[int] = mapped_column(BigInteger)


class WorkerHeartbeat(Base):
    """A worker process or thread as it last said it was alive (engine.liveness writes it)."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # the worker id of leases
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when it stopped as asked (SIGTERM, shutdown); a worker that died just goes silent.
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    runs_claimed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    # The run it drives at its last heartbeat, if any.
    run_id: Mapped[str | None] = mapped_column(String(36))
