"""Prometheus metrics shared by the API and the worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

ALERTS_RECEIVED = Counter(
    "riposte_alerts_received", "Alert deliveries received", ["source", "outcome"]
)
STEP_DURATION = Histogram(
    "riposte_step_duration_seconds",
    "Time to execute a step, retries included",
    ["action", "status"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
)
LEASE_RENEWALS = Counter("riposte_lease_renewals", "Run leases renewed by this process")
LEASE_EXPIRIES = Counter(
    "riposte_lease_expiries", "Runs taken over by this process after another's lease expired"
)
# Every error a worker survives, by where it happened: claim (looking for and claiming a run,
# handing over leases), drive (driving a claimed run), housekeeping (approval expiry and
# escalation, pruning, audit checkpoints), notify (approval notices), heartbeat, lease
# (renewing a lease).
WORKER_ERRORS = Counter(
    "riposte_worker_errors", "Errors a worker logged and went on after, by kind", ["kind"]
)
UNATTENDED_RUNS = Counter(
    "riposte_runs_unattended",
    "Runs found runnable longer than RIPOSTE_RUN_UNATTENDED_AFTER while no worker was live",
)


class DatabaseGauges(Collector):
    """Gauges read from the database at scrape time: runs by status, pending approvals."""

    def __init__(self, read: Callable[[], tuple[dict[str, int], int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        runs_by_status, pending = self._read()
        runs = GaugeMetricFamily("riposte_runs", "Runs by status", labels=["status"])
        for status, count in sorted(runs_by_status.items()):
            runs.add_metric([status], count)
        yield runs
        yield GaugeMetricFamily(
            "riposte_approvals_pending", "Approval requests waiting for a decision", value=pending
        )
