"""The replay corpus CI replays the shipped playbooks against (``riposte replay``).

- ``seed/``: the seed scenario's attack as EventBridge delivers it (9 failed console sign-ins,
  the sign-in, two TerminateInstances calls), written by ``record.py``;
- ``cassettes/``: every AWS lookup the shipped playbooks make for the samples in
  ``tests/samples/`` and the seed's events, recorded against the moto server the demo seeds;
- ``expected-report.json``: what ``riposte replay --json`` says of them.

Re-record all three after a change to a shipped playbook or to what an action looks up
(``make replay-record``, i.e. ``python -m tests.replay.record``), and review the report's diff
before committing it.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SEED = HERE / "seed"
CASSETTES = HERE / "cassettes"
EXPECTED_REPORT = HERE / "expected-report.json"
SAMPLES = ROOT / "tests" / "samples"
PLAYBOOKS = ROOT / "playbooks"
ALERTS = [SAMPLES, SEED]

# The settings the corpus is recorded and replayed with: the seed account's (the demo's), with
# the trail's bucket as the only CloudTrail source (a replay has no database to read
# ``ingested`` from).
REPLAY_ENV = {
    "RIPOSTE_AWS_REGION": "us-east-1",
    "RIPOSTE_CLOUDTRAIL_SOURCES": "s3",
    "RIPOSTE_CLOUDTRAIL_BUCKET": "acme-cloudtrail-logs",
    "RIPOSTE_ACCOUNTS": '{"123456789012": {"name": "acme-production", "environment": '
                        '"production", "owner": "platform-team@acme.example"}}',
    "RIPOSTE_PLAYBOOK_DIR": str(PLAYBOOKS),
}
