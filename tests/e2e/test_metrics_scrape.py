"""Prometheus scrapes with a metrics token that can do nothing else; the Grafana dashboard
queries only metrics the API and the worker really export."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.live_server import free_port

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from core.settings import Settings
    from tests.e2e.conftest import Tokens

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "riposte.json"
# The metrics a standalone worker exports on RIPOSTE_WORKER_METRICS_PORT (the API exports them
# too, for its in-process workers); the README's table says the same.
WORKER_METRICS = {
    "riposte_worker_errors_total", "riposte_lease_renewals_total",
    "riposte_lease_expiries_total", "riposte_step_duration_seconds_count",
    "riposte_containment_stage_seconds_bucket", "riposte_time_to_contain_seconds_bucket",
}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count",
                                                               "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created"), "info": ("_info",),
            "unknown": ("",)}


def series_names(exposition: str) -> set[str]:
    """Every series name a scrape of ``exposition`` can hold, sampled yet or not."""
    return {family.name + suffix for family in text_string_to_metric_families(exposition)
            for suffix in SUFFIXES[family.type]}


def sample(exposition: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def queried_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"]
             for target in panel.get("targets", [])]
    assert len(exprs) >= 15
    # A selector is a name followed by {labels}, [range] or the end of an argument.
    selectors = {name for expr in exprs
                 for name in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[)])", expr)}
    metrics = {name for name in selectors if name.startswith("riposte_")}
    label_names = {"source", "outcome", "reason", "status", "action", "playbook", "stage",
                   "kind", "handler", "le"}
    assert selectors - metrics <= label_names, selectors - metrics  # no other metric at all
    return metrics


def metrics_token(client: TestClient, tokens: Tokens) -> dict[str, str]:
    made = client.post("/v1/tokens", headers=tokens.as_admin,
                       json={"name": "prometheus", "role": "metrics"})
    assert made.status_code == 201, made.text
    assert made.json()["role"] == "metrics"
    return tokens.bearer(made.json()["token"])


def test_a_metrics_token_scrapes_and_can_do_nothing_else(
    client: TestClient, tokens: Tokens
) -> None:
    scraper = metrics_token(client, tokens)
    scraped = client.get("/metrics", headers=scraper)
    assert scraped.status_code == 200
    assert "riposte_runs" in series_names(scraped.text)
    for method, path in [("GET", "/v1/runs"), ("GET", "/v1/alerts"), ("GET", "/v1/audit"),
                         ("GET", "/v1/playbooks"), ("GET", "/v1/approvals"),
                         ("GET", "/v1/tokens"), ("POST", "/v1/alerts"),
                         ("POST", "/v1/webhooks/eventbridge")]:
        answer = client.request(method, path, headers=scraper, json={"title": "x"})
        assert answer.status_code == 403, (method, path, answer.text)
        assert "role 'metrics' may not do this" in answer.text
    assert client.post("/metrics", headers=scraper).status_code == 405


def test_the_cli_makes_metrics_tokens(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
    made = subprocess.run(
        [sys.executable, "-m", "riposte", "token", "create", "--name", "scraper", "--role",
         "metrics"], capture_output=True, text=True, timeout=120, check=False,
        env={**env, "RIPOSTE_DATABASE_URL": settings.database_url}, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().startswith("rip_")
    assert "created metrics token 'scraper'" in made.stderr


def test_http_requests_are_measured_by_route_template_and_status(
    client: TestClient, tokens: Tokens
) -> None:
    assert client.get("/v1/runs/no-such-run", headers=tokens.as_responder).status_code == 404
    scraped = client.get("/metrics", headers=tokens.as_responder).text
    route = {"handler": "/v1/runs/{run_id}", "method": "GET", "status": "404"}
    assert sample(scraped, "riposte_http_requests_total", **route) == 1.0
    assert sample(scraped, "riposte_http_request_duration_seconds_count", **route) == 1.0


def test_invalid_playbooks_are_counted(
    client: TestClient, tokens: Tokens, write_playbook: Callable[[str, str], Path]
) -> None:
    write_playbook("good.yml", "name: good\nsteps:\n  - {id: a, action: core.log, "
                               "with: {message: hi}}\n")
    write_playbook("bad.yml", "name: bad\nsteps:\n  - {id: a, action: core.logg}\n")
    scraped = client.get("/metrics", headers=tokens.as_responder).text
    assert sample(scraped, "riposte_playbooks_loaded") == 1.0
    assert sample(scraped, "riposte_playbooks_invalid") == 1.0


def test_the_dashboard_queries_only_metrics_the_api_and_the_worker_export(
    client: TestClient, tokens: Tokens, settings: Settings, tmp_path: Path
) -> None:
    queried = queried_metrics()
    api = series_names(client.get("/metrics", headers=tokens.as_responder).text)
    assert queried - api == set()
    assert WORKER_METRICS <= queried

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
    env |= {"RIPOSTE_DATABASE_URL": settings.database_url,
            "RIPOSTE_PLAYBOOK_DIR": str(settings.playbook_dir),
            "RIPOSTE_WORKER_METRICS_PORT": str(port)}
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "riposte", "worker", "--id", "scraped"],
                              env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        exposition = _scrape(f"http://127.0.0.1:{port}/metrics", worker)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
    assert WORKER_METRICS - series_names(exposition) == set()


def _scrape(url: str, worker: subprocess.Popen[bytes]) -> str:
    """Return the worker's metrics once it answers (it may take seconds to start)."""
    for _ in range(600):
        assert worker.poll() is None, "the worker exited"
        try:
            answer = httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert answer.status_code == 200
        return answer.text
    raise AssertionError("the worker's metrics port never answered")
