"""Approvals that escalate, may approve on timeout, and are superseded when their plan changes.

- ``approval_requests``: on_timeout, escalate_at, escalated_at, escalate_to;
- a step may have several requests over time (a superseded one, then its replacement), but at
  most one pending: the unique (run_id, step_id) becomes a unique index on pending requests.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The column types of engine/store/types.py, spelled out so this revision never changes with them.
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)
PENDING_ONLY = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(
            sa.Column("on_timeout", sa.String(length=16), nullable=False, server_default="reject")
        )
        batch.add_column(sa.Column("escalate_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("escalated_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("escalate_to", JSON, nullable=True))
        batch.drop_constraint("uq_approval_requests_run_id_step_id", type_="unique")
    op.create_index(
        "uq_approval_requests_pending_step",
        "approval_requests",
        ["run_id", "step_id"],
        unique=True,
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
    )
    op.create_index("ix_approval_requests_run_id", "approval_requests", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_approval_requests_run_id", "approval_requests")
    op.drop_index("uq_approval_requests_pending_step", "approval_requests")
    # Only the newest request of each step survives the return to one request per step.
    op.execute(
        "DELETE FROM approval_decisions WHERE request_id IN (SELECT id FROM approval_requests "
        "WHERE status = 'superseded')"
    )
    op.execute("DELETE FROM approval_requests WHERE status = 'superseded'")
    with op.batch_alter_table("approval_requests") as batch:
        batch.create_unique_constraint("uq_approval_requests_run_id_step_id", ["run_id", "step_id"])
        batch.drop_column("escalate_to")
        batch.drop_column("escalated_at")
        batch.drop_column("escalate_at")
        batch.drop_column("on_timeout")
