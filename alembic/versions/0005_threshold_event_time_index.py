"""An index on the event time of counted threshold events, so pruning them stays cheap.

- ``threshold_events``: ``ix_threshold_events_event_time``. The workers' housekeeping deletes
  the events no window can need any more (engine.store.triggers.prune_threshold_events), the
  oldest of every group at once: the (playbook, group_key, event_time) index cannot find them.

Building the index blocks writes to ``threshold_events`` (counting, not storing alerts) while it
runs. On a large PostgreSQL table, build it first without blocking:
``CREATE INDEX CONCURRENTLY ix_threshold_events_event_time ON threshold_events (event_time)``
(a build that fails leaves an invalid index: drop it and build again); this revision then finds
it and builds nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_threshold_events_event_time"), "threshold_events", ["event_time"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_threshold_events_event_time"), table_name="threshold_events")
