"""What ``riposte demo`` prints, read from the HTTP API as an analyst sees it.

The investigation is shown exactly as ``riposte runs show`` shows it; alert data reaches the
terminal only as printable text.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from typing import Any

import httpx

from engine.modes import rehearsal_mark
from engine.render import plan_lines
from engine.render_run import describe_run
from riposte.demo_scenario import ATTACKER_IP, HOME_IP, TRAIL_BUCKET, USER, Account
from riposte.terminal import one_line, shown

Say = Callable[[str], None]
CONTAINMENT_STEPS = ("disable-user", "revoke-role-sessions", "revoke-keys", "relaunch")
# Targets printed per operation of the approval's plan; the rest are counted.
TARGETS_SHOWN = 4


class StoryFailed(Exception):
    """The API answered what the story cannot go on from."""


class Story:
    """Print the demo's story; every fact comes from the API (or the scenario's own account)."""

    def __init__(self, http: httpx.Client, url: str, analyst_token: str, say: Say) -> None:
        self.http = http
        self.url = url
        self.token = analyst_token
        self.say = say

    def line(self, text: str) -> None:
        self.say(text)

    def heading(self, title: str) -> None:
        self.say("")
        self.say(f"== {title}")

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        response = self.http.request(
            method, path, headers={"Authorization": f"Bearer {token or self.token}"}, **kwargs
        )
        if response.status_code >= 300:
            raise StoryFailed(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json()

    def wait(self, run_id: str, statuses: set[str], seconds: float | None) -> Any:
        """Poll the run until it reaches one of ``statuses`` (no deadline when None)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            run = self.call("GET", f"/v1/runs/{run_id}")
            if run["status"] in statuses:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise StoryFailed(f"run {run_id} is still {run['status']} after {seconds:g}s")
            time.sleep(0.2)

    def account(self, account: Account) -> None:
        first, hours = account.usual_hours
        fleet = account.fleet
        mfa = "an MFA device" if account.routine else "no MFA device"
        self.say(f"user {USER} ({account.user_arn}): {len(account.access_keys)} access keys, "
                 f"a console password, {mfa}")
        self.say(f"{len(fleet.production)} production instances (Environment=production) and "
                 f"{len(fleet.staging)} staging; a nightly AMI of each production one, "
                 f"{len(fleet.snapshots)} of them since deregistered (their snapshots remain)")
        self.say(f"trail bucket {TRAIL_BUCKET}: {account.trail_events} events in "
                 f"{account.trail_files} log files over 7 days; {USER} works "
                 f"{first:02d}:00-{(first + hours) % 24:02d}:00 UTC from {HOME_IP} "
                 f"({_country(HOME_IP)})")
        if not account.routine:
            self.say(f"the attacker's address: {ATTACKER_IP} ({_country(ATTACKER_IP)})")

    def alert(self, run: dict[str, Any]) -> None:
        alert = self.call("GET", f"/v1/alerts/{run['alert_id']}")
        self.heading("Alert")
        self.say(one_line(f"{alert['title']} at {alert['event_time']} from "
                           f"{alert.get('source_ip')}: {len(alert['resources'])} instances"))
        self.say(f"threshold reached: run {run['id']} of {run['playbook']} sees "
                 f"{len(run['alert_ids'])} TerminateInstances calls")

    def investigation(self, run: dict[str, Any]) -> None:
        self.heading("Investigation")
        for line in describe_run(run):
            if line.startswith("steps:"):
                break  # the steps are told below, as they matter
            self.say(shown(line))

    def approval(self, run: dict[str, Any], *, approver_token: str) -> dict[str, Any]:
        pending = next(a for a in run["approvals"] if a["status"] == "pending")
        request: dict[str, Any] = self.call("GET", f"/v1/approvals/{pending['id']}")
        self.heading("Approval")
        self.say(f"{rehearsal_mark(request['mode'])}"
                 f"pending approval {request['id']} of step {request['step_id']} "
                 f"({request['required']} of {', '.join(request['approvers']) or 'anyone'}; "
                 f"expires {request['expires_at']})")
        self.say(f"plan_hash: {request['plan_hash']}")
        first, *rest = plan_lines(request["plan"], targets_shown=TARGETS_SHOWN)
        self.say(f"plan: {first} (riposte approvals show {request['id']} lists every call)")
        for line in rest:
            self.say(shown(line))
        self.say("Approve it from another terminal (as the demo's approver, not the run's "
                 "starter):")
        self.say(f"  RIPOSTE_API_URL={self.url} RIPOSTE_TOKEN={approver_token} "
                 f"riposte approvals approve {request['id']} --plan-hash {request['plan_hash']} "
                 f"--reason {shlex.quote('contain ' + USER + ' and relaunch the fleet')}")
        self.say("or reject it:")
        self.say(f"  RIPOSTE_API_URL={self.url} RIPOSTE_TOKEN={approver_token} "
                 f"riposte approvals reject {request['id']} --reason 'authorised change'")
        self.say(f"or in the console, signed in with the approver's token: "
                 f"{self.url}/ui/approvals/{request['id']}")
        self.say(f"Read the run: RIPOSTE_API_URL={self.url} RIPOSTE_TOKEN={self.token} "
                 f"riposte runs show {run['id']}")
        self.say(f"  or in the console: {self.url}/ui/runs/{run['id']}")
        return request

    def outcome(self, run: dict[str, Any], account: Account) -> None:
        self.heading("Outcome")
        self.say(f"{rehearsal_mark(run['mode'])}run {run['id']}: {run['status']}"
                 + (f" ({one_line(run['error'])})" if run.get("error") else ""))
        for approval in run["approvals"]:
            request = self.call("GET", f"/v1/approvals/{approval['id']}")
            for decision in request["decisions"]:
                verb = {"approve": "approved", "reject": "rejected"}.get(
                    decision["decision"], decision["decision"])
                self.say("  " + one_line(f"{approval['step_id']} {verb} by "
                                          f"{decision['actor']}: {decision['reason']}"))
        # The run has ended: its finished journal records tell what each step did.
        steps = {step["step_id"]: step for step in run["steps"] if step["status"] != "running"}
        for step_id in ("below-threshold", "usual-activity", "cannot-contain",
                        *CONTAINMENT_STEPS):
            step = steps.get(step_id)
            if step is None or step["status"] == "skipped":
                continue
            self.say(f"  {step_id:<16} {step['status']:<10} {_step_said(step)}")
        relaunch = (steps.get("relaunch") or {}).get("output") or {}
        for item in relaunch.get("relaunched") or []:
            source = item.get("from") or {}
            built = source.get("registered_image") or {}
            snapshots = ", ".join(s["snapshot_id"] for s in source.get("snapshots") or [])
            origin = (f"snapshots {snapshots} (registered as {built.get('image_id')})" if built
                      else f"AMI {source.get('image_id')}")
            name = account.fleet.names.get(item["old"], "")
            self.say(f"    {item['old']} ({name}) -> {item['new']} {item['state']}, from {origin}")
        for item in relaunch.get("unrecoverable") or []:
            self.say(one_line(f"    {item['instance_id']}: not relaunched: {item['message']}"))

    def audit(self, run_id: str) -> bool:
        self.heading("Audit")
        page = self.call("GET", f"/v1/audit?run_id={run_id}&limit=500")
        events = page["events"]
        while page.get("next"):  # the API's pages, as long as it gives a link to the next
            page = self.call("GET", page["next"])
            events += page["events"]
        verbs: dict[str, int] = {}
        for event in events:
            verbs[event["verb"]] = verbs.get(event["verb"], 0) + 1
        shown = ", ".join(f"{verb} ×{count}" if count > 1 else verb
                          for verb, count in verbs.items())
        self.say(one_line(f"{len(events)} audit events for run {run_id}: {shown}"))
        verified = self.call("GET", "/v1/audit/verify")
        if verified["ok"]:
            self.say(f"audit chain verified: {verified['checked']} rows, none altered")
        else:
            self.say(f"audit chain BROKEN at row {verified['first_broken_id']}: "
                     f"{verified['reason']}")
        return bool(verified["ok"])


def _step_said(step: dict[str, Any]) -> str:
    """One line on what a step did: its error, a relaunch's count, or the action's summary."""
    output = step["output"] if isinstance(step["output"], dict) else {}
    if step["error"]:
        return one_line(f"{step['error']['code']}: {step['error']['message']}")
    if "planned" in output:
        return f"dry run: {len(output['planned'])} call(s) planned, none made"
    if "relaunched" in output:
        launched = [i for i in output["relaunched"] if not i.get("already")]
        return (f"{len(launched)} replacement(s) launched, "
                f"{len(output.get('unrecoverable') or [])} instance(s) without a backup")
    return one_line(str(output.get("summary") or output.get("message") or ""))


def _country(ip: str) -> str:
    """Where the offline geolocation places ``ip``, as ``geo.lookup_ip`` answers."""
    from actions.base import ActionContext
    from actions.geo.lookup import LookupIp, LookupIpInput

    answer = LookupIp().run(ActionContext(run_id="demo", step_id="geo", mode="live"),
                            LookupIpInput(ip=ip))
    country = answer.get("country") or {}
    return str(country.get("name") or "unknown country")
