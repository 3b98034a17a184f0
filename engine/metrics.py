"""Prometheus metrics shared by the API and the worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

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


# Time to contain, by playbook (engine.containment says what is observed, and when). Buckets from
# a second (a run that needs no human) to a day (an approval over a weekend night).
CONTAINMENT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200,
                       86400)
CONTAINMENT_STAGE = Histogram(
    "riposte_containment_stage_seconds",
    "Time between two milestones of a live run started by an alert, by playbook and the "
    "milestone reached: queued (from the alert received), started (first step, from queued), "
    "approval_requested (from the first step), approval_decided (from the request), "
    "contained (last step that changes AWS, from the last decision or else the first step)",
    ["playbook", "stage"],
    buckets=CONTAINMENT_BUCKETS,
)
TIME_TO_CONTAIN = Histogram(
    "riposte_time_to_contain_seconds",
    "Time from the alert received to the run's last step that changes AWS, for live runs "
    "started by an alert that contained it (engine.containment), by playbook",
    ["playbook"],
    buckets=CONTAINMENT_BUCKETS,
)


@dataclass(frozen=True)
class DatabaseCounts:
    """What the database gauges show: runs by status, approvals waiting and the oldest's age,
    workers live."""

    runs_by_status: dict[str, int]
    approvals_pending: int
    oldest_pending_seconds: float  # 0 when none waits
    workers_live: int


class DatabaseGauges(Collector):
    """Gauges read from the database at scrape time: runs by status, pending approvals."""

    def __init__(self, read: Callable[[], DatabaseCounts]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._read()
        runs = GaugeMetricFamily("riposte_runs", "Runs by status", labels=["status"])
        for status, count in sorted(counts.runs_by_status.items()):
            runs.add_metric([status], count)
        yield runs
        yield GaugeMetricFamily(
            "riposte_approvals_pending", "Approval requests waiting for a decision",
            value=counts.approvals_pending,
        )
        yield GaugeMetricFamily(
            "riposte_approvals_pending_oldest_seconds",
            "How long the oldest approval request still waiting has waited (0: none waits)",
            value=counts.oldest_pending_seconds,
        )
        yield GaugeMetricFamily(
            "riposte_workers_live",
            "Workers whose heartbeat is recent (within RIPOSTE_WORKER_SILENT_AFTER)",
            value=counts.workers_live,
        )


class PlaybookGauges(Collector):
    """Gauges read from the live playbook directory at scrape time: loaded and invalid."""

    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loaded, invalid = self._read()
        yield GaugeMetricFamily("riposte_playbooks_loaded",
                                "Playbooks of RIPOSTE_PLAYBOOK_DIR that loaded", value=loaded)
        yield GaugeMetricFamily(
            "riposte_playbooks_invalid",
            "Playbook files of RIPOSTE_PLAYBOOK_DIR left out because they do not load (the "
            "API's log names each problem; GET /v1/playbooks lists them)", value=invalid)
