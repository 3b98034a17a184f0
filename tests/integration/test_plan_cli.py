"""``riposte plan``: a playbook dry-run against alert files in every form AWS sends them."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from core.settings import get_settings
from engine.normalize import normalize_cloudtrail_record
from engine.playbooks import load_file
from riposte import demo_scenario as scenario
from riposte.cli import app
from riposte.demo_scenario import Account
from tests.aws_sandbox import AwsSandbox
from tests.integration.engine_helpers import make_alert
from tests.integration.test_cli import EXAMPLE, PLAYBOOKS, SAMPLE_ALERT
from tests.samples import SAMPLES, load

# A playbook that says what it was given: the alert's source, kind and type, and how many.
ECHO = """\
name: echo
trigger: {source: [%s], kind: [%s]}
steps:
  - id: say
    action: core.log
    with: {message: "{{ alert.source }}/{{ alert.kind }} {{ alert.type }} x{{ alerts | length }}"}
"""


def riposte(*args: str, **env: str) -> Result:
    """Run ``riposte ARGS`` in-process with these RIPOSTE_* variables (settings read anew)."""
    get_settings.cache_clear()
    result = CliRunner().invoke(app, list(args),
                                env={"RIPOSTE_PLAYBOOK_DIR": str(PLAYBOOKS), **env})
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception
    )
    return result


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def alert_file(tmp_path: Path) -> Path:
    return write(tmp_path / "alert.json", json.dumps(SAMPLE_ALERT))


def echo(tmp_path: Path, source: str, kind: str) -> Path:
    return write(tmp_path / f"echo-{source}.yml", ECHO % (source, kind))


# ---------------------------------------------------------------------------------------------
# Every form Riposte ingests, through the webhooks' normalizers


FORMS = {
    # sample (tests/samples) → what the playbook is shown: source/kind type
    "guardduty_ec2_ssh_brute_force": "guardduty/finding UnauthorizedAccess:EC2/SSHBruteForce",
    "guardduty_get_findings_cli_output": "guardduty/finding Recon:IAMUser/UserPermissions",
    "securityhub_finding_afsbp_iam_8": "securityhub/finding Software and Configuration Checks/",
    "sns_cloudwatch_alarm_redshift": "cloudwatch/alarm martin-test",
    "cloudwatch_alarm_single_metric": "cloudwatch/alarm ServerCpuTooHigh",
    "cloudtrail_signin_root_no_mfa": "cloudtrail/console-signin ConsoleLogin",
    "seed_terminate_instances": "cloudtrail/api-call TerminateInstances",
    "securityhub_event_insight_results": "securityhub/insight Name of the insight",
}


@pytest.mark.parametrize("sample", sorted(FORMS))
def test_plan_reads_each_form_aws_sends_through_the_webhooks_normalizers(
    tmp_path: Path, sample: str
) -> None:
    source, kind = FORMS[sample].split(" ", 1)[0].split("/")
    result = riposte("plan", str(echo(tmp_path, source, kind)), str(SAMPLES / f"{sample}.json"))

    assert result.exit_code == 0, result.output
    assert f'"message": "{FORMS[sample]}' in result.stdout
    assert "note:" not in result.stdout  # the trigger matches what the normalizer made


def test_plan_reads_a_gzipped_cloudtrail_log_file_and_a_bare_guardduty_finding(
    tmp_path: Path,
) -> None:
    log = tmp_path / "trail.json.gz"
    log.write_bytes(gzip.compress(json.dumps(load("seed_terminate_instances")).encode()))
    finding = write(tmp_path / "finding.json",
                    json.dumps(load("guardduty_ec2_ssh_brute_force")["detail"]))

    trail = riposte("plan", str(echo(tmp_path, "cloudtrail", "api-call")), str(log))
    guardduty = riposte("plan", str(echo(tmp_path, "guardduty", "finding")), str(finding))

    assert trail.exit_code == 0, trail.output
    assert '"message": "cloudtrail/api-call TerminateInstances x1"' in trail.stdout
    assert guardduty.exit_code == 0, guardduty.output
    assert "guardduty/finding UnauthorizedAccess:EC2/SSHBruteForce x1" in guardduty.stdout


def test_plan_says_which_trigger_condition_fails_and_with_what_value(tmp_path: Path) -> None:
    book = write(tmp_path / "narrow.yml", """\
name: narrow
trigger:
  source: [guardduty]
  type: "UnauthorizedAccess:IAMUser/*"
  severity_at_least: HIGH
  resources: {type: [AwsIamAccessKey]}
steps:
  - {id: say, action: core.log, with: {message: hello}}
""")
    result = riposte("plan", str(book), str(SAMPLES / "securityhub_finding_afsbp_iam_8.json"))

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index("  note: the trigger does not match this alert; it would not start "
                        "this run:")
    assert lines[start + 1:start + 5] == [
        "    trigger.source: wants [guardduty], the alert's source is 'securityhub'",
        "    trigger.type: wants a type matching 'UnauthorizedAccess:IAMUser/*', the alert's "
        "type is 'Software and Configuration Checks/Industry and Regulatory Standards/"
        "AWS-Foundational-Security-Best-Practices'",
        "    trigger.severity_at_least: wants HIGH (70) or more, the alert's severity is 40 "
        "(MEDIUM)",
        "    trigger.resources: wants a resource of type [AwsIamAccessKey], the alert names "
        "AwsIamUser arn:aws:iam::111111111111:user/sharrtest, none of which counts",
    ]
    assert "1. say [core.log]: would run" in result.stdout  # rehearsed all the same


def _terminations(tmp_path: Path, count: int, *, apart: timedelta) -> list[Path]:
    """``count`` CloudTrail records of the seed's TerminateInstances, ``apart`` from each other,
    written newest first (plan sorts them by event time)."""
    first = datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)
    template = load("seed_terminate_instances")["Records"][0]
    paths = []
    for number in reversed(range(count)):
        record = copy.deepcopy(template)
        record.update(eventID=f"evt-{number}",
                      eventTime=(first + apart * number).strftime("%Y-%m-%dT%H:%M:%SZ"))
        paths.append(write(tmp_path / f"call-{number}.json", json.dumps(record)))
    return paths


BURST = """\
name: burst
trigger:
  source: [cloudtrail]
  threshold: {count: 3, within: 5m, group_by: [principal.arn]}
steps:
  - id: count
    action: core.log
    with: {message: "{{ alerts | length }} alert(s), started by {{ alert.details.raw.eventID }}"}
"""


def test_plan_feeds_a_threshold_burst_in_event_time_order(tmp_path: Path) -> None:
    book = write(tmp_path / "burst.yml", BURST)

    fired = riposte("plan", str(book), *map(str, _terminations(tmp_path, 3,
                                                                  apart=timedelta(minutes=1))))

    assert fired.exit_code == 0, fired.output
    out = fired.stdout
    assert "against 3 alerts" in out
    # The files were given newest first: the alerts are listed (and fed) oldest first.
    assert out.index("03:21:39") < out.index("03:22:39") < out.index("03:23:39")
    assert '"message": "3 alert(s), started by evt-2"' in out  # the third reaches the count
    assert "starts a run" in out and out.count("joins a run") == 2


def test_plan_says_a_burst_is_still_short_of_its_threshold(tmp_path: Path) -> None:
    book = write(tmp_path / "burst.yml", BURST)

    short = riposte("plan", str(book), *map(str, _terminations(tmp_path, 3,
                                                                  apart=timedelta(minutes=4))))

    assert short.exit_code == 0, short.output
    assert "is counted: counted: 2 of 3 within 5m so far" in short.stdout
    assert "starts a run" not in short.stdout


# ---------------------------------------------------------------------------------------------
# Rehearsal (moved from test_cli.py)


def test_plan_cuts_a_long_value_unless_asked_for_it_whole(tmp_path: Path, alert_file: Path) -> None:
    message = "the whole story " * 40  # 640 characters
    book = write(tmp_path / "long.yml", "name: long\nsteps:\n  - id: tell\n    action: core.log\n"
                 f"    with: {{message: {message.strip()!r}}}\n")

    cut = riposte("plan", str(book), str(alert_file))
    whole = riposte("plan", str(book), str(alert_file), "--full")

    [params] = [line for line in cut.stdout.splitlines() if line.startswith("   params: ")]
    assert params.endswith("characters; --full prints it whole)") and len(params) < 400, params
    [params] = [line for line in whole.stdout.splitlines() if line.startswith("   params: ")]
    assert json.loads(params.removeprefix("   params: "))["message"] == message.strip()


def test_plan_rehearses_every_step_and_shows_the_approval_it_would_ask(alert_file: Path) -> None:
    result = riposte("plan", str(EXAMPLE), str(alert_file))
    assert result.exit_code == 0, result.output
    out = result.stdout
    for number, step in enumerate(load_file(EXAMPLE).spec.steps, 1):
        assert f"{number}. {step.id} [{step.action}]: would run" in out
    assert (
        "would ask approval of any responder or admin (contain the principal) for: "
        '{"level": "warning", "message": "would disable Roboman1"}'
    ) in out
    assert '"instance_ids": ["i-2oc7w12", "i-eob7w13"]' in out
    assert '"source_ip": "180.163.251.231"' in out
    assert "result: the run would end succeeded" in out
    assert "note:" not in out  # the trigger matches the sample alert


def test_plan_finds_a_playbook_by_name_and_reads_a_normalized_alert(tmp_path: Path) -> None:
    alert = make_alert(source="cloudtrail", kind="api-call", type="TerminateInstances",
                       principal={"type": "IAMUser", "name": "mallory"})
    path = write(tmp_path / "normalized.json", alert.model_dump_json())
    result = riposte("plan", "example-triage", str(path))
    assert result.exit_code == 0, result.output
    assert "would disable mallory" in result.stdout


def test_plan_says_when_steps_are_skipped_and_the_trigger_does_not_match(tmp_path: Path) -> None:
    path = write(tmp_path / "low.json", json.dumps({"title": "quiet", "severity": "LOW"}))
    result = riposte("plan", str(EXAMPLE), str(path))
    assert result.exit_code == 0, result.output
    assert "note: the trigger does not match this alert" in result.stdout
    assert "    trigger.source: wants [cloudtrail], the alert's source is 'generic'" in (
        result.stdout
    )
    assert "contain-principal [core.log]: skipped (when is false)" in result.stdout
    assert "would ask approval" not in result.stdout


def test_plan_gives_templates_the_one_alert_as_alerts(tmp_path: Path, alert_file: Path) -> None:
    book = write(
        tmp_path / "burst.yml",
        "name: burst\ntrigger: {threshold: {count: 20, within: 5m, group_by: principal.arn}}\n"
        "steps:\n  - {id: count, action: core.log, with: {message: "
        "\"{{ alerts | length }} alert(s), first {{ alerts[0].title }}\"}}\n",
    )
    result = riposte("plan", str(book), str(alert_file))
    assert result.exit_code == 0, result.output
    assert "1 alert(s), first " in result.stdout


def test_plan_exits_1_when_the_run_would_fail(tmp_path: Path, alert_file: Path) -> None:
    book = write(
        tmp_path / "failing.yml",
        "name: failing\nsteps:\n"
        "  - {id: flaky, action: core.fail, with: {code: Throttling}, retry: {attempts: 2}}\n"
        "  - {id: after, action: core.log, with: {message: never}}\n",
    )
    result = riposte("plan", str(book), str(alert_file))
    assert result.exit_code == 1
    assert "1. flaky [core.fail]: would fail" in result.stdout
    assert "error: Throttling: failure injected by core.fail" in result.stdout
    assert "not reached: after" in result.stdout
    assert "result: the run would end failed" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON Riposte reads"),
        ('{"title": "x", "severity": "SEVERE"}', "severity"),
        ('{"severity": 50}', "title: Field required"),
        ("[1, 2]", "an alert file holds a JSON object or an array of them"),
        ('{"Findings": [{"Id": 1}]}', "Findings[0] is neither a Security Hub (ASFF) finding"),
        ('{"Type": "SubscriptionConfirmation", "TopicArn": "arn:aws:sns:us-east-1:1:t"}',
         "holds no event to rehearse"),
    ],
)
def test_plan_explains_a_bad_alert_file(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path / "alert.json", content)
    result = riposte("plan", str(EXAMPLE), str(path))
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.startswith(f"error: {path}: ")


def test_plan_explains_a_missing_or_invalid_playbook(tmp_path: Path, alert_file: Path) -> None:
    missing = riposte("plan", "no-such-playbook", str(alert_file))
    assert missing.exit_code == 1
    assert "no playbook file or playbook named 'no-such-playbook'" in missing.stderr
    assert "example-triage" in missing.stderr
    bad = write(tmp_path / "bad.yml", "name: bad\nsteps:\n  - {id: a, action: core.logg}\n")
    invalid = riposte("plan", str(bad), str(alert_file))
    assert invalid.exit_code == 1
    assert "did you mean 'core.log'" in invalid.stderr


def _seed_alert_on(account: Account, tmp_path: Path) -> Path:
    """The seed's sample record (tests/samples), as the account's fleet terminated just now."""
    ec2 = account.client("ec2")
    answer = ec2.terminate_instances(InstanceIds=account.fleet.all)["TerminatingInstances"]
    record = copy.deepcopy(load("seed_terminate_instances")["Records"][0])
    record.update(eventID="evt-plan", awsRegion=account.region,
                  eventTime=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    record["userIdentity"].update(arn=account.user_arn, accountId=scenario.ACCOUNT,
                                  accessKeyId=account.access_keys[0])
    record["requestParameters"] = {
        "instancesSet": {"items": [{"instanceId": i["InstanceId"]} for i in answer]}
    }
    record["responseElements"] = {"instancesSet": {"items": [
        {"instanceId": i["InstanceId"], "currentState": {"code": 32, "name": "shutting-down"},
         "previousState": {"code": 16, "name": "running"}} for i in answer
    ]}}
    return write(tmp_path / "alert.json",
                 normalize_cloudtrail_record(record).model_dump_json())


def _rehearsed_output(stdout: str, step: str) -> dict[str, Any]:
    """The output ``riposte plan`` printed for ``step``."""
    lines = stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if f". {step} [" in line)
    shown = next(line for line in lines[start + 1:] if line.startswith("   output: "))
    output: dict[str, Any] = json.loads(shown.removeprefix("   output: "))
    return output


def test_plan_reads_the_history_from_the_sources_it_can_and_says_which_it_could_not(
    aws: AwsSandbox, tmp_path: Path
) -> None:
    # The demo's settings (s3 and ingested); a rehearsal has no database to read ingested from.
    account = scenario.seed_account(aws.url)
    alert = _seed_alert_on(account, tmp_path)
    settings = {
        "RIPOSTE_AWS_ENDPOINT_URL": aws.url,
        "RIPOSTE_AWS_REGION": account.region,
        "RIPOSTE_CLOUDTRAIL_BUCKET": scenario.TRAIL_BUCKET,
    }
    book = str(PLAYBOOKS / "mass-instance-termination.yml")

    result = riposte("plan", book, str(alert), "--full",
                     RIPOSTE_CLOUDTRAIL_SOURCES='["s3", "ingested"]', **settings)

    out = result.stdout
    assert "8. history [aws.cloudtrail.principal_history]: would run" in out, out[-3000:]
    history = _rehearsed_output(out, "history")
    assert history["read"] == ["s3"] and history["sources"]["s3"]["read"] is True
    assert history["principal_events"] > 0 and history["working_hours"] is not None
    unread = history["failed"]["ingested"]
    assert unread.startswith("SourceUnavailable: ") and "riposte plan" in unread
    assert f"   not read: ingested ({unread}); answers drawn from this step may be " in out
    findings = {f["id"]: f for f in _rehearsed_output(out, "assess")["findings"]}
    for finding_id in ("principal.sign_in_failures", "principal.mfa", "event_time.off_hours"):
        assert findings[finding_id]["evidence"]["unread_sources"] == {"ingested": unread}
    assert "the CloudTrail source ingested could not be read" in (
        _rehearsed_output(out, "narrate")["narrative"]
    )
    assert "disable-user [aws.iam.disable_user]: would run" in out  # still judged unusual

    # With ingested the only source, nothing can be read: the step fails and says why.
    only_history = write(tmp_path / "history.yml", "name: history\nsteps:\n"
                         "  - {id: history, action: aws.cloudtrail.principal_history}\n")
    alone = riposte("plan", str(only_history), str(alert),
                    RIPOSTE_CLOUDTRAIL_SOURCES='["ingested"]', **settings)

    assert alone.exit_code == 1
    assert "1. history [aws.cloudtrail.principal_history]: would fail" in alone.stdout
    assert (
        "   error: SourcesUnreadable: no CloudTrail source could be read: ingested: "
        f"{unread}"
    ) in alone.stdout
