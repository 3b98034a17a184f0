"""Record the replay corpus against a local moto server: ``python -m tests.replay.record``.

Seeds the demo's account (``riposte.demo_scenario.seed_account``), plays the seed's attack on it
(the fleet terminated for real, the CloudTrail records made from EC2's answers) and its sequel
(a GuardDuty finding on Roboman1's key), writes them to ``seed/`` as EventBridge events, then
runs ``riposte replay --record cassettes/`` over ``tests/samples/`` and ``seed/`` and writes
``expected-report.json``. Old seed events and cassettes are removed first, so nothing stale
stays committed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from typer.testing import CliRunner

from riposte.cli import app
from riposte.demo_aws import LocalAws
from riposte.demo_scenario import (
    ACCOUNT,
    ATTACKER_IP,
    FAILED_SIGN_INS,
    FIRST_CALL,
    REGION,
    USER,
    seed_account,
)
from riposte.demo_trail import console_sign_in, eventbridge_event, terminate_instances
from tests.replay import ALERTS, CASSETTES, EXPECTED_REPORT, REPLAY_ENV, SEED


def main() -> int:
    """Record everything; return the replay's exit status."""
    local = LocalAws(REGION)
    endpoint = local.start()  # points this process's boto3 (and credentials) at moto
    try:
        write_seed_events(endpoint)
        shutil.rmtree(CASSETTES, ignore_errors=True)
        env = {**REPLAY_ENV, "RIPOSTE_AWS_ENDPOINT_URL": endpoint}
        os.environ.update(env)
        result = CliRunner().invoke(
            app, ["replay", *map(str, ALERTS), "--record", str(CASSETTES), "--json"], env=env,
        )
    finally:
        local.stop()
    sys.stderr.write(result.stderr if result.stderr_bytes else "")
    report = json.loads(result.stdout)
    EXPECTED_REPORT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n",
                               encoding="utf-8")
    print(f"recorded {len(list(CASSETTES.glob('*.json')))} cassettes; report in "
          f"{EXPECTED_REPORT} (exit status {result.exit_code})")
    return result.exit_code


def write_seed_events(endpoint: str) -> None:
    """Seed the account and write the attack's events, as ``demo_scenario.play`` delivers them."""
    account = seed_account(endpoint)
    # After the seeding: the backups are taken before the incident, as in the demo's story.
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    caller, fleet, ec2 = account.caller, account.fleet, account.client("ec2")
    shutil.rmtree(SEED, ignore_errors=True)
    SEED.mkdir(parents=True)
    records = [console_sign_in(caller, now + timedelta(seconds=1), succeeded=False)
               for _ in range(FAILED_SIGN_INS)]
    records.append(console_sign_in(caller, now + timedelta(seconds=2), succeeded=True))
    for number, batch in enumerate((fleet.all[:FIRST_CALL], fleet.all[FIRST_CALL:]), 3):
        answer = ec2.terminate_instances(InstanceIds=batch)
        records.append(terminate_instances(caller, now + timedelta(seconds=number), answer,
                                           region=account.region, console=True))
    events = [(record["eventName"], eventbridge_event(record)) for record in records]
    events.append(("guardduty", guardduty_finding(account.access_keys[0],
                                                   now + timedelta(minutes=10))))
    for number, (what, event) in enumerate(events, 1):
        (SEED / f"{number:02d}-{what.lower()}.json").write_text(
            json.dumps(event, indent=1) + "\n", encoding="utf-8"
        )


def guardduty_finding(access_key_id: str, moment: datetime) -> dict[str, Any]:
    """The "GuardDuty Finding" event of the seed's sequel: Roboman1's key calling S3 from the
    attacker's address (as ``tests/e2e/test_seed_scenario.py`` delivers it)."""
    at = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    finding_id = "5eed0000000000000000000000000001"
    return {
        "version": "0", "id": "5eed0000-0000-4000-8000-000000000001",
        "detail-type": "GuardDuty Finding", "source": "aws.guardduty", "account": ACCOUNT,
        "time": at, "region": REGION, "resources": [],
        "detail": {
            "schemaVersion": "2.0", "accountId": ACCOUNT, "region": REGION, "id": finding_id,
            "arn": f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/d1/finding/{finding_id}",
            "type": "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom", "severity": 8,
            "createdAt": at, "updatedAt": at,
            "title": "API ListBuckets was invoked from an IP address on a custom threat list.",
            "resource": {
                "resourceType": "AccessKey",
                "accessKeyDetails": {"accessKeyId": access_key_id, "userName": USER,
                                     "userType": "IAMUser"},
            },
            "service": {
                "action": {
                    "actionType": "AWS_API_CALL",
                    "awsApiCallAction": {
                        "api": "ListBuckets", "serviceName": "s3.amazonaws.com",
                        "callerType": "Remote IP",
                        "remoteIpDetails": {"ipAddressV4": ATTACKER_IP},
                    },
                },
                "eventFirstSeen": at, "eventLastSeen": at, "count": 3,
            },
        },
    }


if __name__ == "__main__":
    raise SystemExit(main())
