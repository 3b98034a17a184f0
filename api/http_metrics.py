"""HTTP request metrics: count and latency by route template, method and status.

prometheus-fastapi-instrumentator measures every request into the app's own registry:
``riposte_http_requests_total{handler, method, status}`` and
``riposte_http_request_duration_seconds{handler, method, status}`` (a histogram). ``handler``
is the route's template (``/v1/runs/{run_id}``, never an id), ``none`` for a path no route
matches, so the label values stay few whatever is requested; ``status`` is the exact code.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator, metrics

NAMESPACE = "riposte"
SUBSYSTEM = "http"
# From a cached token check (a millisecond) to a delivery of a thousand events (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def instrument(app: FastAPI, registry: CollectorRegistry) -> None:
    """Measure every request of ``app`` into ``registry``."""
    instrumentator = Instrumentator(
        should_group_status_codes=False,  # 401 and 403 are not the same news
        should_ignore_untemplated=False,
        should_group_untemplated=True,
        registry=registry,
    )
    instrumentator.add(metrics.requests(
        metric_namespace=NAMESPACE, metric_subsystem=SUBSYSTEM, metric_name="requests_total",
        should_include_handler=True, should_include_method=True, should_include_status=True,
        registry=registry,
    ))
    instrumentator.add(metrics.latency(
        metric_namespace=NAMESPACE, metric_subsystem=SUBSYSTEM,
        metric_name="request_duration_seconds", should_include_handler=True,
        should_include_method=True, should_include_status=True, buckets=LATENCY_BUCKETS,
        registry=registry,
    ))
    instrumentator.instrument(app)
