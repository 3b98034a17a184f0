"""Prometheus metrics of this process and the database gauges."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ResponderCaller, RuntimeDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def metrics(caller: ResponderCaller, runtime: RuntimeDep) -> Response:
    """Answer the metrics in the Prometheus text format."""
    return Response(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)
