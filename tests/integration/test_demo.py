"""``riposte demo``: the seed's case played on a local AWS and told as it happens.

Each test runs the demo as a subprocess (its own moto server as a child process, its own API
and worker) and reads what it prints.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from engine.audit import verify
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Run

ROOT = Path(__file__).resolve().parents[2]
DEMO_SECONDS = 240


def demo_env(**env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RIPOSTE_", "AWS_"))}
    return {**clean, "RIPOSTE_PLAYBOOK_DIR": str(ROOT / "playbooks"), **env}


def test_the_demo_tells_the_attack_investigation_approval_containment_and_audit(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with socket.socket() as busy:  # the requested port is taken: the demo picks another
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "riposte", "demo", "--auto-approve", "--no-keep-serving",
             "--port", str(taken)],
            capture_output=True, text=True, cwd=tmp_path, timeout=DEMO_SECONDS, check=False,
            env=demo_env(RIPOSTE_DATABASE_URL=url),
        )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in out + result.stderr
    assert f"port {taken} is busy; using " in out
    port = int(re.search(r"API: http://127\.0\.0\.1:(\d+)", out)[1])  # type: ignore[index]
    # The console, and the approver's token to paste into its sign-in form (never in a URL).
    approver = re.search(  # type: ignore[index]
        rf"console: http://127\.0\.0\.1:{port}/ui/ \(sign in at http://127\.0\.0\.1:{port}"
        r"/ui/sign-in with the demo approver's token: (rip_\S+)\)", out)[1]
    assert not re.search(r"/ui/\S*rip_", out)
    assert re.search(r"local AWS: moto at http://127\.0\.0\.1:\d+ ", out)

    # The account, then the attack as it happens.
    assert "user Roboman1 (arn:aws:iam::123456789012:user/Development/Roboman1)" in out
    assert "22 production instances (Environment=production) and 2 staging" in out
    assert "(United States)" in out and "180.163.251.231 (China)" in out
    assert "9 failed console sign-ins as Roboman1 from 180.163.251.231" in out
    assert "MFA not used" in out
    run_id = re.search(r"\(20 production\); Riposte started run (\S+)", out)[1]  # type: ignore[index]

    # The investigation, as `riposte runs show` prints it.
    assert f"run {run_id}: waiting_approval (playbook mass-instance-termination, live)" in out
    assert re.search(r"verdict: unusual, severity (HIGH|CRITICAL), principal user Roboman1", out)
    assert "[principal.sign_in_failures]" in out and "[source_ip.location]" in out
    narrative = out.split("narrative:")[1].split("recommendation:")[0]
    assert "China" in narrative and "Roboman1" in narrative

    # The pending approval and the exact command that decides it.
    request_id = re.search(r"pending approval (\S+) of step disable-user", out)[1]  # type: ignore[index]
    plan_hash = re.search(r"plan_hash: ([0-9a-f]{64})", out)[1]  # type: ignore[index]
    # The plan by step and operation, with counts, each operation's targets below it.
    assert re.search(r"\n  step disable-user \(aws\.iam\.disable_user\): \d+ calls\n"
                     r"(    .+\n)*?    iam:AttachUserPolicy × 1\n      user/Roboman1\n", out)
    assert re.search(
        rf"RIPOSTE_API_URL=http://127\.0\.0\.1:{port} RIPOSTE_TOKEN=rip_\S+ riposte approvals "
        rf"approve {request_id} --plan-hash {plan_hash} --reason ",
        out,
    )
    assert "--auto-approve: approving as demo-approver-" in out
    assert f"RIPOSTE_TOKEN={approver} riposte approvals approve {request_id}" in out
    assert (f"in the console, signed in with the approver's token: http://127.0.0.1:{port}"
            f"/ui/approvals/{request_id}") in out

    # The containment, the relaunched fleet (old id -> new id) and the audit chain.
    outcome = out.split("== Outcome")[1]
    assert f"run {run_id}: succeeded" in outcome
    assert "disable-user approved by demo-approver-" in outcome
    assert re.search(r"disable-user\s+succeeded\s+disabled user Roboman1", outcome)
    assert re.search(r"relaunch\s+succeeded\s+22 replacement\(s\) launched", outcome)
    relaunched = re.findall(r"(i-\w+) \((\S+)\) -> (i-\w+) running, from (AMI|snapshots)",
                            outcome)
    assert len(relaunched) == 22
    assert sum(1 for *_, source in relaunched if source == "snapshots") == 2
    assert re.search(r"audit chain verified: \d+ rows, none altered", out)

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            run = session.get(Run, run_id)
            assert run is not None and run.status == "succeeded"
            assert verify(session).ok
    finally:
        engine.dispose()
    assert not (tmp_path / "demo").exists(), "with RIPOSTE_DATABASE_URL the demo uses that database"


def playbooks_settling_in(tmp_path: Path, quiet: str) -> Path:
    """The shipped playbooks, the burst's settle shortened to ``quiet`` (the rest unchanged)."""
    books = shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")
    burst = books / "mass-instance-termination.yml"
    shipped = "settle: {quiet: 1m, at_most: 5m}"
    assert shipped in burst.read_text()
    burst.write_text(burst.read_text().replace(shipped, f"settle: {{quiet: {quiet}, at_most: 1m}}"))
    return books


def test_the_demo_serves_until_ctrl_c_on_a_fresh_database_of_its_own(tmp_path: Path) -> None:
    """The routine variant, its burst settling in 3 s: the shipped minute is waited for above."""
    leftover = tmp_path / "demo" / "riposte-demo.db"
    leftover.parent.mkdir()
    leftover.write_text("not a database: a previous demo's file is replaced")
    demo = subprocess.Popen(
        [sys.executable, "-m", "riposte", "demo", "--routine", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=demo_env(RIPOSTE_PLAYBOOK_DIR=str(playbooks_settling_in(tmp_path, "3s"))),
    )
    assert demo.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + DEMO_SECONDS
    try:
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("Serving on http://127.0.0.1:") or time.monotonic() > deadline:
                break
        out = "".join(lines)
        assert "Serving on" in out, out + (demo.stderr.read() if demo.poll() is not None else "")
        demo.send_signal(signal.SIGINT)
        rest, errors = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, out + rest + errors
    assert "stopping" in rest
    assert re.search(r"console: http://127\.0\.0\.1:\d+/ui/ \(sign in at ", out)
    assert re.search(r"Serving on (http://127\.0\.0\.1:\d+) until Ctrl-C .*the console is "
                     r"at \1/ui/\)", out)
    assert "database: sqlite:///demo/riposte-demo.db" in out
    # The planned decommission: investigated, noted, nothing asked and nothing contained.
    assert re.search(r"verdict: not unusual, severity (INFORMATIONAL|LOW)", out)
    assert "== Approval" not in out
    assert re.search(r"usual-activity\s+succeeded\s+.*severity lowered to", out)
    assert "audit chain verified" in out

    engine = make_engine(f"sqlite:///{leftover}")
    try:
        with make_sessionmaker(engine)() as session:
            assert [r.status for r in session.execute(select(Run)).scalars()] == ["succeeded"]
    finally:
        engine.dispose()
