"""``riposte alerts`` as an on-call person runs it: a subprocess talking HTTP to a real server.

The server is the one of tests/integration/test_runs_cli.py: the real app on a migrated SQLite
database, running the investigation playbook on every CloudTrail alert.
"""

from __future__ import annotations

import json
import re

import httpx

from tests.e2e.test_runs_investigation import ALERT
from tests.integration import test_runs_cli
from tests.integration.test_runs_cli import Live

live = test_runs_cli.live  # the server and its tokens, as a fixture of this module too


def _alert(live: Live, **changes: object) -> str:
    answer = httpx.post(f"{live.url}/v1/alerts", json={**ALERT, **changes}, timeout=10,
                        headers={"Authorization": f"Bearer {live.tokens['sensor']}"})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["alert_id"])


def test_list_prints_the_alerts_newest_first_as_a_table(live: Live) -> None:
    older = _alert(live, title="Console sign-in without MFA", severity="HIGH", resources=[],
                   principal={"type": "Root", "arn": "arn:aws:iam::123456789012:root"})
    newer = _alert(live)

    listed = live.cli("alerts", "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "SEVERITY", "SOURCE", "TITLE", "PRINCIPAL", "LAST", "SEEN",
                              "(UTC)", "SEEN"]
    assert [row.split()[0] for row in rows] == [newer, older]
    assert re.fullmatch(rf"{newer}\s+INFORMATIONAL 0\s+cloudtrail/generic\s+"
                        r"TerminateInstances by Roboman1\s+Roboman1\s+\S+ \S+\s+1", rows[0]), rows
    assert re.fullmatch(rf"{older}\s+HIGH 70\s+cloudtrail/generic\s+Console sign-in without "
                        r"MFA\s+arn:aws:iam::123456789012:root\s+\S+ \S+\s+1", rows[1]), rows

    one = live.cli("alerts", "list", "--limit", "1")
    assert [row.split()[0] for row in one.stdout.splitlines()[1:]] == [newer]
    assert one.stderr == "1 alert shown, more exist: --limit 2\n"

    as_json = json.loads(live.cli("alerts", "list", "--json").stdout)
    assert set(as_json) == {"alerts", "next"}
    assert [(a["id"], a["title"]) for a in as_json["alerts"]] == [
        (newer, "TerminateInstances by Roboman1"), (older, "Console sign-in without MFA")]


def test_show_tells_what_who_where_when_and_the_runs_that_see_it(live: Live) -> None:
    run_id = live.finished_run()
    alert_id = httpx.get(f"{live.url}/v1/runs/{run_id}", timeout=10, headers={
        "Authorization": f"Bearer {live.tokens['alice']}"}).json()["alert_id"]

    shown = live.cli("alerts", "show", alert_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:11] == [
        f"alert {alert_id}: TerminateInstances by Roboman1",
        "  severity INFORMATIONAL (0), cloudtrail/generic",
        "  account 123456789012, region us-east-2",
        "  principal Roboman1 (IAMUser), MFA not used",
        "  event TerminateInstances at 2020-11-06 03:21:39 UTC",
        "  from 180.163.251.231, user agent console.ec2.amazonaws.com",
        lines[6],
        "resources (2):",
        "  AwsEc2Instance i-2oc7w12",
        "  AwsEc2Instance i-eob7w13",
        "runs (1):",
    ]
    assert re.fullmatch(r"  seen 1 time: first \S+ \S+ UTC, last \S+ \S+ UTC", lines[6])
    assert lines[12].split()[:3] == [run_id, "succeeded", "investigate"]

    as_json = json.loads(live.cli("alerts", "show", alert_id, "--json").stdout)
    assert (as_json["id"], as_json["run_ids"]) == (alert_id, [run_id])


def test_alert_text_cannot_drive_the_terminal(live: Live) -> None:
    alert_id = _alert(live, title="evil\x1b[2J\u202etitle\x07",
                      principal={"name": "mal\x1b]0;pwned\x07lory"})
    for args in (("list",), ("show", alert_id)):
        shown = live.cli("alerts", *args)
        assert shown.returncode == 0, shown.stderr
        assert not {"\x1b", "\u202e", "\x07"} & set(shown.stdout), shown.stdout
        assert "evil\\x1b[2J\\u202etitle\\x07" in shown.stdout


def test_an_unknown_alert_is_one_line_and_exit_1(live: Live) -> None:
    shown = live.cli("alerts", "show", "no-such-alert")
    assert shown.returncode == 1
    assert shown.stdout == ""
    assert re.fullmatch(r"error: 404 no alert 'no-such-alert'.*\n", shown.stderr), shown.stderr
