"""Prometheus metrics of this process and the database gauges."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import MetricsCaller, RuntimeDep
from api.problems import AUTHENTICATED, problems
from api.query import STRICT_QUERY

router = APIRouter(tags=["metrics"], dependencies=STRICT_QUERY)


@router.get("/metrics", response_class=Response, operation_id="getMetrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "The Prometheus text format."},
                       **problems(*AUTHENTICATED, 422)})
def metrics(caller: MetricsCaller, runtime: RuntimeDep) -> Response:
    """Answer the metrics in the Prometheus text format."""
    return Response(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)
