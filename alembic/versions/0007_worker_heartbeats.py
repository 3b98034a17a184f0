"""Worker heartbeats: each worker says, every few seconds, that it is alive.

- ``worker_heartbeats``: one row per worker id (host, pid, when it started, when it was last
  seen, runs claimed, errors counted, the run it drives now, when it stopped as asked). Readiness
  probes, ``GET /v1/workers`` and the watch for runs no worker takes read it.

Revision ID: 0007
Revises: 0006
Create Date: 2025-01-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The column type of engine/store/types.py, spelled out so this revision never changes with it.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("stopped_at", UTC_DATETIME, nullable=True),
        sa.Column("runs_claimed", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_worker_heartbeats"),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
