"""``riposte demo``: the sample alert runs to an approval, is approved over HTTP, and succeeds."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from engine.audit import verify
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import AuditEvent, Run

ROOT = Path(__file__).resolve().parents[2]


def demo(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
    return subprocess.run(
        [sys.executable, "-m", "riposte", "demo", "--no-keep-serving", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, "RIPOSTE_PLAYBOOK_DIR": str(ROOT / "playbooks"), **env},
        timeout=180,
        check=False,
    )


def test_the_demo_run_waits_for_approval_then_succeeds_once_approved(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with socket.socket() as busy:  # the requested port is taken: the demo picks another
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = demo(tmp_path, "--port", str(taken), RIPOSTE_DATABASE_URL=url)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert f"port {taken} is busy; using " in out
    port = int(re.search(r"API: http://127\.0\.0\.1:(\d+)", out)[1])  # type: ignore[index]
    assert port != taken

    run_id = re.search(r"it started run (\S+)", out)[1]  # type: ignore[index]
    pending = re.search(r"pending approval (\S+) of step contain-principal", out)
    assert pending
    request_id = pending[1]
    plan_hash = re.search(r"plan_hash: ([0-9a-f]{64})", out)[1]  # type: ignore[index]
    assert "status waiting_approval" in out
    assert (
        f"curl -sS -X POST http://127.0.0.1:{port}/v1/approvals/{request_id}/decision" in out
    )
    assert re.search(r"-H 'Authorization: Bearer rip_[\w-]+'", out)
    approve = '"decision": "approve", "reason": "contain the principal", "plan_hash": "{}"'
    assert approve.format(plan_hash) in out
    assert '"decision": "reject"' in out
    final = out.split("--no-keep-serving: approving it now")[1]
    assert f"run {run_id}: playbook example-triage" in final
    assert "status succeeded" in final
    assert "would disable Roboman1" in final

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            run = session.get(Run, run_id)
            assert run is not None and run.status == "succeeded"
            verbs = session.execute(select(AuditEvent.verb)).scalars().all()
            assert "approval.requested" in verbs
            assert verify(session).ok
    finally:
        engine.dispose()
    assert not (tmp_path / "demo").exists(), "with RIPOSTE_DATABASE_URL the demo uses that database"


def test_the_demo_uses_its_own_fresh_database_by_default(tmp_path: Path) -> None:
    for _ in range(2):
        result = demo(tmp_path, "--port", "0")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "database: sqlite:///demo/riposte-demo.db" in result.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'demo' / 'riposte-demo.db'}")
    try:
        with make_sessionmaker(engine)() as session:
            # Recreated by the second demo: one run, not two.
            assert len(session.execute(select(Run.id)).scalars().all()) == 1
    finally:
        engine.dispose()
