"""docker-compose.yml is valid and runs PostgreSQL, migrations, the API and scalable workers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def compose_config() -> dict[str, Any]:
    """Return docker-compose's own resolved view of docker-compose.yml."""
    exe = shutil.which("docker-compose")
    assert exe is not None, (
        "docker-compose is not installed, so docker-compose.yml cannot be validated: "
        "apt-get install -y docker-compose (Debian) or pip install docker-compose"
    )
    result = subprocess.run(
        [exe, "-f", str(REPO_ROOT / "docker-compose.yml"), "config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def test_compose_file_runs_postgres_migrations_api_and_scalable_workers() -> None:
    services = compose_config()["services"]

    assert {"postgres", "migrate", "api", "worker"} <= set(services)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    # Health that tells the truth: the API's readiness (database and in-process worker), and
    # each worker's own probe on its metrics port (503 once it stops recording its heartbeat).
    assert "/readyz" in str(services["api"]["healthcheck"]["test"])
    worker_port = services["worker"]["environment"]["RIPOSTE_WORKER_METRICS_PORT"]
    assert f"127.0.0.1:{worker_port}/healthz" in str(services["worker"]["healthcheck"]["test"])
    assert services["api"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert services["worker"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    # `docker compose up --scale worker=3` needs workers without a fixed name or host port.
    assert "container_name" not in services["worker"]
    assert "ports" not in services["worker"]
    for name in ("migrate", "api", "worker"):
        assert services[name]["environment"]["RIPOSTE_DATABASE_URL"].startswith(
            "postgresql+psycopg://"
        ), name
    # The local AWS endpoint only starts for rehearsals.
    assert services["aws"]["profiles"] == ["rehearsal"]
