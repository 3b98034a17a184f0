"""What an operator sees of a worker: JSON log lines with ids, and its Prometheus metrics."""

from __future__ import annotations

import io
import json

from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.engine_helpers import drain, make_alert, queue, run_row, worker

PLAYBOOK = """
name: observed
steps:
  - {id: hello, action: core.log, with: {message: "hello {{ alert.title }}"}}
  - {id: wait, action: core.sleep, with: {seconds: 0.6}}
"""




def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_log_lines_are_json_carrying_alert_run_and_step_ids(
    sessionmaker: sessionmaker[Session], json_log: io.StringIO
) -> None:
    run_id = queue(sessionmaker, PLAYBOOK, alert=make_alert(title="x"))
    drain(worker(sessionmaker))
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    said = [line for line in lines if line["message"] == "hello x"]
    assert len(said) == 1
    alert_id = run_row(sessionmaker, run_id).alert_id
    assert said[0] | {"time": None} == {
        "time": None, "level": "info", "logger": "riposte.action", "message": "hello x",
        "run_id": run_id, "alert_id": alert_id, "step_id": "hello",
    }


def test_step_durations_and_lease_renewals_are_counted(
    sessionmaker: sessionmaker[Session],
) -> None:
    steps_before = sample("riposte_step_duration_seconds_count",
                          {"action": "core.sleep", "status": "succeeded"})
    renewals_before = sample("riposte_lease_renewals_total")
    run_id = queue(sessionmaker, PLAYBOOK)
    # A 0.6 s step under a 0.3 s lease survives only because the lease is renewed meanwhile.
    drain(worker(sessionmaker, lease_seconds=0.3))
    assert run_row(sessionmaker, run_id).status == "succeeded"
    assert sample("riposte_step_duration_seconds_count",
                  {"action": "core.sleep", "status": "succeeded"}) == steps_before + 1
    assert sample("riposte_lease_renewals_total") >= renewals_before + 2
