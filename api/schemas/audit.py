"""Wire models: audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.schemas.common import (
    Page,
    ResponseModel,
)


class AuditEventOut(ResponseModel):
    id: int
    at: datetime
    actor: str
    verb: str
    alert_id: str | None
    run_id: str | None
    step_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(Page):
    events: list[AuditEventOut]


class ChainReportOut(ResponseModel):
    ok: bool
    checked: int
    first_broken_id: int | None
    reason: str | None
