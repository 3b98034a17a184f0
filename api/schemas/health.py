"""Wire models: health, and the workers as their heartbeats show them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.common import Page
from engine.store.workers import WorkerState


class Status(BaseModel):
    status: str


class WorkerOut(BaseModel):
    """A worker as its last heartbeat showed it."""

    id: str = Field(description="Its id in leases and the audit log.")
    host: str
    pid: int
    state: WorkerState = Field(
        description="live: heard from lately; silent: not heard from for longer than "
        "RIPOSTE_WORKER_SILENT_AFTER (dead, stuck or cut from the database); stopped: it "
        "stopped as asked."
    )
    started_at: datetime
    last_seen_at: datetime
    seconds_since_seen: float
    stopped_at: datetime | None
    runs_claimed: int = Field(description="Runs it claimed since it started.")
    errors: int = Field(description="Errors it logged and went on after since it started.")
    run_id: str | None = Field(description="The run it was driving at its last heartbeat.")


class WorkerList(Page):
    workers: list[WorkerOut]
    live: int = Field(description="How many of them are live.")
    silent_after: float = Field(description="RIPOSTE_WORKER_SILENT_AFTER, in seconds.")
