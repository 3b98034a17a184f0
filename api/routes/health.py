"""Liveness and readiness probes (no token: load balancers and orchestrators call them)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError

from api.deps import RuntimeDep
from api.errors import unavailable
from api.problems import problems
from api.schemas import Status
from engine.liveness import InProcessWorker

log = logging.getLogger("riposte.api")
router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="checkHealth")
def healthz() -> Status:
    """Answer while the process is up."""
    return Status(status="ok")


@router.get(
    "/readyz",
    operation_id="checkReadiness",
    responses=problems(503, described={503: "The database is unreachable, or an in-process "
                                            "worker is dead or silent (the detail says which)."}),
)
def readyz(request: Request, runtime: RuntimeDep) -> Status:
    """Answer 200 when the database answers and every in-process worker works, 503 otherwise."""
    try:
        with runtime.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        log.warning("readiness check failed: %s", type(exc).__name__)
        raise unavailable("the database is unreachable") from None
    in_process: list[InProcessWorker] = getattr(request.app.state, "workers", [])
    for worker in in_process:
        problem = worker.problem()
        if problem is not None:
            log.warning("readiness check failed: %s", problem)
            raise unavailable(problem)
    return Status(status="ok")
