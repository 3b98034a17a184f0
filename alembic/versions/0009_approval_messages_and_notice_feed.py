"""Chat messages about approvals, and the notices the audit log's events call for.

- ``approval_messages``: each Slack message posted about an approval request (its channel and
  ``ts``, the target it was posted for, what it shows), so that every one of them is edited
  when the request is decided, expires, is escalated or superseded, and the run's outcome is
  posted in its thread.
- ``notice_feed``: one row, the id of the last audit event the workers have told people about
  (engine.notice_feed) and the lease of the worker doing it. It starts at the end of the log:
  events written before this revision call for no notice.

Revision ID: 0009
Revises: 0008
Create Date: 2025-01-09 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The column type of engine/store/types.py, spelled out so this revision never changes with it.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "approval_messages",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("shows", sa.String(16), nullable=False),
        sa.Column("posted_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["approval_requests.id"],
                                name="fk_approval_messages_request_id_approval_requests"),
        sa.PrimaryKeyConstraint("id", name="pk_approval_messages"),
        sa.UniqueConstraint("channel", "ts", name="uq_approval_messages_channel_ts"),
    )
    op.create_index("ix_approval_messages_request_id", "approval_messages", ["request_id"])
    op.create_table(
        "notice_feed",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notice_feed"),
    )
    op.execute("INSERT INTO notice_feed (id, last_event_id) "
               "SELECT 1, COALESCE(MAX(id), 0) FROM audit_events")


def downgrade() -> None:
    op.drop_table("notice_feed")
    op.drop_index("ix_approval_messages_request_id", table_name="approval_messages")
    op.drop_table("approval_messages")
