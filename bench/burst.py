"""How long the seed's burst, delivered at AWS's pace, takes to reach an approval request.

```
python -m bench.burst [--gap 10] [--pause-after 20 --pause 90] [--calls 24]
```

The demo's account on a local moto server (``riposte/demo_scenario.py``: 22 production and 2
staging instances, their backups, a week of trail), Riposte served over HTTP on a fresh SQLite
file with one in-process worker and the shipped playbooks; then, in real time, the attacker's
sign-ins and one ``TerminateInstances`` call per instance, each delivered alone to
``/v1/webhooks/eventbridge`` ``--gap`` seconds apart (optionally one longer ``--pause`` after the
``--pause-after``-th call). It waits until a run asks approval for the whole burst and prints,
from the audit log and the journal:

- threshold crossing → approval request, and last call → approval request: what an on-call
  engineer waits for, the trade-off the playbook's ``settle`` makes;
- the investigation alone (the last round's first step → its request): the ceiling, what the
  same judgement costs when nothing waits;
- rounds and follow-up runs (judgements made on part of the burst and thrown away), and the
  production instances the request covers.

Exit status 1 when no run asked approval for every production instance (a benchmark reports;
this is the one thing it judges, since the figures mean nothing without it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from core.settings import Settings
from engine.store import migrate
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import AuditEvent, StepRecord
from riposte.demo import DemoServer, create_demo_tokens, demo_overrides, with_local_aws
from riposte.demo_aws import LocalAws
from riposte.demo_scenario import FAILED_SIGN_INS, REGION, seed_account
from riposte.demo_trail import console_sign_in, eventbridge_event, terminate_instances

PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"
PLAYBOOK = "mass-instance-termination"
DEADLINE = 900.0  # seconds after the last call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gap", type=float, default=10.0, help="seconds between two calls")
    parser.add_argument("--calls", type=int, default=24, help="calls (instances), at most 24")
    parser.add_argument("--pause-after", type=int, default=0, help="a longer pause after call N")
    parser.add_argument("--pause", type=float, default=90.0, help="its length, in seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riposte-burst-") as scratch:
        return _bench(args, Path(scratch))


def _bench(args: argparse.Namespace, scratch: Path) -> int:
    local = LocalAws(REGION)
    aws_url = local.start()
    server = None
    try:
        settings = with_local_aws(
            Settings(database_url=f"sqlite:///{scratch / 'bench.db'}", playbook_dir=PLAYBOOKS),
            {**demo_overrides(aws_url), "approval_notify": []},
        )
        migrate.upgrade(settings.database_url)
        tokens = create_demo_tokens(settings)
        account = seed_account(aws_url)
        server = DemoServer(settings, 0)
        server.start()
        order = [*account.fleet.production[:1], *account.fleet.staging[:1],
                 *account.fleet.production[1:], *account.fleet.staging[1:]][: args.calls]
        with httpx.Client(base_url=server.url, timeout=30,
                          headers={"Authorization": f"Bearer {tokens.ingest}"}) as http:
            _sign_in(http, account)
            last_call = _terminate(http, account, order, args)
            run = _wait_for_request(http, tokens.analyst, len(order), last_call)
        return _report(settings, args, order, account.fleet.production, run, last_call)
    finally:
        if server is not None:
            server.stop()
        local.stop()


def _post(http: httpx.Client, record: dict[str, Any]) -> None:
    answer = http.post("/v1/webhooks/eventbridge", json=eventbridge_event(record))
    answer.raise_for_status()


def _sign_in(http: httpx.Client, account: Any) -> None:
    moment = datetime.now(UTC).replace(microsecond=0)
    for index in range(FAILED_SIGN_INS + 1):
        _post(http, console_sign_in(account.caller, moment, succeeded=index == FAILED_SIGN_INS))


def _terminate(http: httpx.Client, account: Any, order: list[str],
               args: argparse.Namespace) -> datetime:
    """One call per instance, delivered as it is made; return when the last one was."""
    ec2 = account.client("ec2")
    time.sleep(1.0)  # after the sign-ins (and the backups) by a whole second
    for index, instance_id in enumerate(order, start=1):
        answer = ec2.terminate_instances(InstanceIds=[instance_id])
        moment = datetime.now(UTC)
        _post(http, terminate_instances(account.caller, moment.replace(microsecond=0), answer,
                                        region=account.region, console=True))
        print(f"{moment:%H:%M:%S}  call {index}/{len(order)}: {instance_id}", file=sys.stderr)
        if index < len(order):
            time.sleep(args.pause if index == args.pause_after else args.gap)
    return moment


def _wait_for_request(http: httpx.Client, token: str, calls: int,
                      last_call: datetime) -> dict[str, Any]:
    """The run that asks approval with every call of the burst among its alerts."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        listed = http.get("/v1/runs?status=waiting_approval", headers=headers).json()["runs"]
        for summary in listed:
            run: dict[str, Any] = http.get(f"/v1/runs/{summary['id']}", headers=headers).json()
            if run["playbook"] == PLAYBOOK and len(run["alert_ids"]) >= calls:
                return run
        time.sleep(0.5)
    raise SystemExit(f"no run asked approval for the whole burst {DEADLINE:g}s after it ended")


def _report(settings: Settings, args: argparse.Namespace, order: list[str],
            production: list[str], run: dict[str, Any], last_call: datetime) -> int:
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        events = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        crossed = next(e.at for e in events if e.verb == "threshold.reached")
        asked = [e for e in events if e.verb == "approval.requested" and e.run_id == run["id"]]
        requested = asked[-1].at
        first_step = session.execute(
            select(StepRecord.started_at).where(StepRecord.run_id == run["id"],
                                                StepRecord.round == run["round"])
            .order_by(StepRecord.started_at).limit(1)
        ).scalar_one()
        rounds = sum(1 for e in events if e.verb == "run.rejudged")
        follow_ups = sum(1 for e in events if e.verb == "run.followed_up")
    engine.dispose()
    covered = set(run["vars"].get("terminated_production") or [])
    burst = (last_call - crossed).total_seconds()
    rows = [
        ("burst", f"{len(order)} calls", f"gaps {args.gap:g} s"
         + (f", {args.pause:g} s after call {args.pause_after}" if args.pause_after else "")),
        ("threshold crossing -> approval request", _s(requested - crossed),
         f"the burst went on {burst:.0f} s after it; settle: quiet 60 s, at most 300 s"),
        ("last call -> approval request", _s(requested - last_call), "quiet 60 s + the ceiling"),
        ("investigation alone (first step -> request)", _s(requested - first_step),
         "the ceiling: the same judgement with no waiting"),
        ("rounds started over / follow-up runs", f"{rounds} / {follow_ups}",
         "judgements of part of the burst, thrown away"),
        ("production instances in the request", f"{len(covered & set(production))} of "
         f"{len(set(order) & set(production))}", "must be all"),
    ]
    print(f"{'figure':<46}{'measured':>14}  ceiling / note")
    for figure, measured, note in rows:
        print(f"{figure:<46}{measured:>14}  {note}")
    return 0 if covered >= set(order) & set(production) else 1


def _s(delta: timedelta) -> str:
    return f"{delta.total_seconds():.1f} s"


if __name__ == "__main__":
    sys.exit(main())
