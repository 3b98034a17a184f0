"""Runs that wait for a burst to settle, and are judged again when it grows.

- ``runs.not_before``: a queued run is claimed no sooner (a burst settling);
- ``runs.acted_at``: when its first step that changes AWS began; until then, alerts that join
  start the run over in a new round, afterwards they start a follow-up run;
- ``step_records.round``: which round a journal row belongs to; a step succeeds once per round
  (the unique index on succeeded rows gains the round). Existing rows are round 1.

Revision ID: 0006
Revises: 0005
Create Date: 2025-01-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The column type of engine/store/types.py, spelled out so this revision never changes with it.
UTC_DATETIME = sa.DateTime(timezone=True)
SUCCEEDED_ONLY = sa.text("status = 'succeeded'")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("not_before", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("acted_at", UTC_DATETIME, nullable=True))
    with op.batch_alter_table("step_records") as batch:
        batch.add_column(sa.Column("round", sa.Integer(), nullable=False, server_default="1"))
    _succeeded_once(["run_id", "step_id", "round"])


def downgrade() -> None:
    # Only the newest round of each run survives the return to one success per step.
    op.execute(
        "DELETE FROM step_records WHERE round < (SELECT max(r.round) FROM step_records r "
        "WHERE r.run_id = step_records.run_id)"
    )
    _succeeded_once(["run_id", "step_id"])
    with op.batch_alter_table("step_records") as batch:
        batch.drop_column("round")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("acted_at")
        batch.drop_column("not_before")


def _succeeded_once(columns: list[str]) -> None:
    op.drop_index("uq_step_records_succeeded_once", table_name="step_records")
    op.create_index(
        "uq_step_records_succeeded_once",
        "step_records",
        columns,
        unique=True,
        postgresql_where=SUCCEEDED_ONLY,
        sqlite_where=SUCCEEDED_ONLY,
    )
