"""``riposte replay``: the shipped playbooks replayed against recorded alerts, as CI runs it.

The corpus is ``tests/replay`` (the samples of ``tests/samples`` and the seed scenario's events,
with cassettes recorded against moto by ``python -m tests.replay.record``); a replay from
cassettes is run with no AWS endpoint and no credentials at all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from core.settings import get_settings
from engine.normalize.files import read_alert_file
from engine.playbooks import load_all
from engine.store.alerts import ingest_alert
from engine.store.db import make_engine, make_sessionmaker
from riposte import demo_scenario as scenario
from riposte.cli import app
from riposte.plan_cli import generic_alert
from tests.aws_sandbox import AwsSandbox
from tests.replay import ALERTS, CASSETTES, EXPECTED_REPORT, PLAYBOOKS, REPLAY_ENV, SEED
from tests.replay.record import guardduty_finding
from tests.samples import SAMPLES

TERMINATIONS = sorted(SEED.glob("*-terminateinstances.json"))
FINDING = next(SEED.glob("*-guardduty.json"))


def replay(*args: str, **env: str) -> Result:
    """Run ``riposte replay ARGS`` in-process with the corpus's settings (read anew)."""
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["replay", *args], env={**REPLAY_ENV, **env})
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception
    )
    return result


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS endpoint, no credentials anywhere: what a CI job without AWS access has."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "RIPOSTE_AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def playbook_of(report: dict[str, Any], alert_file: Path, playbook: str) -> dict[str, Any]:
    """What the report says ``playbook`` does with the (one) alert of ``alert_file``."""
    [alert] = read_alert_file(alert_file, generic=generic_alert)
    entry = next(e for e in report["alerts"] if e["key"] == alert.dedup_key)
    shown: dict[str, Any] = entry["playbooks"][playbook]
    return shown


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in run["steps"] if s["id"] == step_id)
    return found


# ---------------------------------------------------------------------------------------------
# The project's own corpus


@pytest.mark.usefixtures("offline")
def test_the_shipped_playbooks_replay_the_corpus_offline_as_the_committed_report_says() -> None:
    result = replay(*map(str, ALERTS), "--cassettes", str(CASSETTES), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == json.loads(EXPECTED_REPORT.read_text(encoding="utf-8")), (
        "the replay differs from tests/replay/expected-report.json: if a playbook change means "
        "it, re-record with `python -m tests.replay.record` and review the report's diff"
    )
    # What the report holds, read as a responder would.
    first, last = TERMINATIONS
    burst = playbook_of(report, last, "mass-instance-termination")
    assert burst["outcome"] == "started" and burst["run"]["result"] == "succeeded"
    assert playbook_of(report, first, "mass-instance-termination")["outcome"] == "joined"
    assert [c["operation"] for c in step(burst["run"], "revoke-keys")["calls"]] == [
        "UpdateAccessKey", "UpdateAccessKey"
    ]
    assert step(burst["run"], "relaunch")["calls"]  # the fleet is rebuilt from its backups
    keys = playbook_of(report, FINDING, "compromised-credentials")
    assert keys["outcome"] == "started" and keys["run"]["result"] == "succeeded"
    signin = playbook_of(report, SAMPLES / "cloudtrail_signin_root_no_mfa.json",
                         "mass-instance-termination")
    assert signin["outcome"] == "not-triggered"
    assert any("the alert's event name is 'ConsoleLogin'" in r for r in signin["reasons"])
    assert report["missing_lookups"] == []


@pytest.mark.usefixtures("offline")
def test_the_human_report_says_per_alert_which_playbooks_trigger_and_what_they_would_call(
) -> None:
    result = replay(*map(str, TERMINATIONS), "--cassettes", str(CASSETTES))

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "  mass-instance-termination: joins the run started by cloudtrail:" in out
    assert ("  mass-instance-termination: triggered, a run of 2 alert(s) that would end "
            "succeeded") in out
    assert "    revoke-keys [aws.iam.revoke_access_keys]: ran" in out
    assert '      iam.UpdateAccessKey({"AccessKeyId": "' in out
    assert "  example-triage: not triggered (trigger.severity_at_least: wants MEDIUM (40) or " \
           "more, the alert's severity is 0 (INFORMATIONAL))" in out


# ---------------------------------------------------------------------------------------------
# A playbook change, proved against the corpus


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args],
                   cwd=repo, check=True, capture_output=True)


def edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def only_assumed_roles(data: dict[str, Any]) -> None:
    triggers = data["trigger"] if isinstance(data["trigger"], list) else [data["trigger"]]
    for trigger in triggers:
        trigger["principal_type"] = ["AssumedRole"]


def keep_the_keys(data: dict[str, Any]) -> None:
    for playbook_step in data["steps"]:
        if playbook_step["id"] == "revoke-keys":
            playbook_step["when"] = "false"


@pytest.fixture
def changed(tmp_path: Path) -> Path:
    """A repository of the shipped playbooks, committed, then changed in the working tree:
    mass-instance-termination narrowed to assumed roles, compromised-credentials keeping keys."""
    repo = tmp_path / "repo"
    shutil.copytree(PLAYBOOKS, repo / "playbooks")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "shipped")
    edit(repo / "playbooks" / "mass-instance-termination.yml", only_assumed_roles)
    edit(repo / "playbooks" / "compromised-credentials.yml", keep_the_keys)
    return repo


@pytest.mark.usefixtures("offline")
def test_a_playbook_change_is_named_and_fails_the_replay_until_it_is_declared(
    changed: Path,
) -> None:
    books = str(changed / "playbooks")
    args = [str(SEED), "--playbooks", books, "--base", "HEAD", "--cassettes", str(CASSETTES)]

    refused = replay(*args)

    assert refused.exit_code == 1, refused.output
    out = refused.stdout
    narrowed = next(line for line in out.splitlines()
                    if line.startswith("DIFFERENCE from HEAD: mass-instance-termination: "))
    assert "no-longer-triggered: trigger" in narrowed
    assert "principal_type: wants [AssumedRole], the alert's principal type is 'IAMUser'" in (
        narrowed
    )
    different = "DIFFERENCE from HEAD: compromised-credentials: "
    assert f"{different}step-no-longer-runs: revoke-keys" in out
    assert f"{different}call-removed: iam.UpdateAccessKey(" in out

    # Declared in a file the team keeps next to the playbooks, the change passes.
    expected = changed / "replay-expected.yml"
    expected.write_text(
        "expected:\n"
        "  - playbook: mass-instance-termination\n"
        "    kind: no-longer-triggered\n"
        "    reason: IAM users are handled by the identity team's own runbook now\n"
        "  - playbook: compromised-credentials\n"
        "    alert: 'guardduty:*'\n"
        "    reason: keys stay active until the owner confirms\n",
        encoding="utf-8",
    )
    accepted = replay(*args, "--expect", str(expected))

    assert accepted.exit_code == 0, accepted.output
    assert "DIFFERENCE" not in accepted.stdout
    assert ("expected difference from HEAD: compromised-credentials: step-no-longer-runs: "
            "revoke-keys") in accepted.stdout

    # Accepting one playbook's changes wholesale leaves the other's failing.
    partly = replay(*args, "--accept-changes", "compromised-credentials", "--json")

    assert partly.exit_code == 1
    differences = json.loads(partly.stdout)["differences"]
    assert {d["playbook"] for d in differences["unexpected"]} == {"mass-instance-termination"}
    assert {d["kind"] for d in differences["accepted"]} >= {"step-no-longer-runs",
                                                             "call-removed"}


@pytest.mark.usefixtures("offline")
def test_the_same_playbooks_at_a_revision_make_no_difference(changed: Path) -> None:
    git(changed, "add", ".")
    git(changed, "commit", "-q", "-m", "narrowed")

    result = replay(str(SEED), "--playbooks", str(changed / "playbooks"), "--base", "HEAD",
                    "--cassettes", str(CASSETTES))

    assert result.exit_code == 0, result.output
    assert "no difference from HEAD" in result.stdout


# ---------------------------------------------------------------------------------------------
# Cassettes: recorded once against AWS, replayed with none


def test_lookups_recorded_against_aws_replay_offline_to_the_same_report(
    aws: AwsSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = scenario.seed_account(aws.url, fleet=False)
    finding = tmp_path / "finding.json"
    finding.write_text(json.dumps(guardduty_finding(account.access_keys[0],
                                                    datetime.now(UTC))), encoding="utf-8")
    cassettes = tmp_path / "cassettes"
    args = [str(finding), "--playbook", "compromised-credentials", "--json"]

    recorded = replay(*args, "--record", str(cassettes), RIPOSTE_AWS_ENDPOINT_URL=aws.url)

    assert recorded.exit_code == 0, recorded.output
    [cassette] = cassettes.glob("guardduty-*.json")
    services = {e["service"] for e in json.loads(cassette.read_text())["entries"]}
    assert {"sts", "iam"} <= services
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "RIPOSTE_AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))

    replayed = replay(*args, "--cassettes", str(cassettes))

    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout) == json.loads(recorded.stdout)
    run = playbook_of(json.loads(replayed.stdout), finding, "compromised-credentials")["run"]
    calls = step(run, "revoke-keys")["calls"]
    assert sorted(c["params"]["AccessKeyId"] for c in calls) == sorted(account.access_keys)
    assert {c["params"]["Status"] for c in calls} == {"Inactive"}


@pytest.mark.usefixtures("offline")
def test_a_lookup_missing_from_the_cassettes_is_named_not_a_traceback(tmp_path: Path) -> None:
    result = replay(str(FINDING), "--cassettes", str(tmp_path / "empty"))

    assert result.exit_code == 1
    assert "missing from the cassettes: sts.GetCallerIdentity({}) in us-east-1 (account " in (
        result.stdout
    )
    assert "NotInCassette: sts.GetCallerIdentity({}) is not in the cassette guardduty-" in (
        result.stdout
    )
    assert "record them with `riposte replay --record DIR`" in result.stdout


# ---------------------------------------------------------------------------------------------
# Alerts already stored


def store(url: str, *paths: Path) -> None:
    playbooks, _problems = load_all([PLAYBOOKS])
    engine = make_engine(url)
    try:
        sessions = make_sessionmaker(engine)
        for path in paths:
            for alert in read_alert_file(path, generic=generic_alert):
                with sessions.begin() as session:
                    ingest_alert(session=session, alert=alert, playbooks=playbooks,
                                 endpoint="/v1/webhooks/eventbridge", body_sha256="0" * 64,
                                 body_bytes=1, actor="test")
    finally:
        engine.dispose()


@pytest.mark.usefixtures("offline")
def test_alerts_stored_between_two_dates_are_replayed(db_url: str) -> None:
    store(db_url, *TERMINATIONS, SAMPLES / "cloudtrail_signin_root_no_mfa.json")
    [alert] = read_alert_file(TERMINATIONS[0], generic=generic_alert)
    assert alert.event_time is not None
    day = alert.event_time.date().isoformat()

    result = replay("--database-url", db_url, "--since", day, "--cassettes",
                    str(CASSETTES), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [e["type"] for e in report["alerts"]] == ["TerminateInstances", "TerminateInstances"]
    assert report["alerts"][1]["playbooks"]["mass-instance-termination"]["outcome"] == "started"

    older = replay("--database-url", db_url, "--until", day, "--json")

    assert older.exit_code == 0, older.output
    assert [e["type"] for e in json.loads(older.stdout)["alerts"]] == ["ConsoleLogin"]


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cassettes", "a", "--record", "b", str(FINDING)], "give one"),
        (["--since", "7d", str(FINDING)], "--since and --until choose stored alerts"),
        ([], "no alert to replay"),
        ([str(FINDING), "--playbook", "nope"], "no playbook named 'nope'"),
        ([str(FINDING), "--base", "no-such-revision"], "no commit 'no-such-revision'"),
    ],
)
def test_bad_options_are_one_clear_line(args: list[str], message: str) -> None:
    result = replay(*args)

    assert result.exit_code != 0
    assert message in result.stderr


def test_an_expectations_file_with_a_mistake_names_the_entry(tmp_path: Path) -> None:
    expected = tmp_path / "expected.yml"
    expected.write_text("expected:\n  - playbook: x\n    kind: gone\n", encoding="utf-8")

    result = replay(str(FINDING), "--expect", str(expected), "--cassettes", str(CASSETTES))

    assert result.exit_code == 1
    assert f"error: {expected}: expected.0.kind: Input should be " in result.stderr
    assert "expected.0.reason: Field required" in result.stderr
