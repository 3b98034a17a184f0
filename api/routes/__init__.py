"""One router per resource; each is thin: parse, authorise, call the store, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import (
    alerts,
    approvals,
    audit,
    deliveries,
    health,
    metrics,
    playbooks,
    runs,
    slack,
    tokens,
    webhooks,
    workers,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    alerts.router,
    webhooks.router,
    slack.router,
    deliveries.router,
    runs.router,
    approvals.router,
    playbooks.router,
    audit.router,
    metrics.router,
    workers.router,
    tokens.router,
)
