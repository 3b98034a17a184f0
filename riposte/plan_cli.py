"""``riposte plan``: dry-run one playbook against alert files as AWS sends them, no database."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from riposte.terminal import fail, say
from riposte.user_errors import load_settings

if TYPE_CHECKING:
    from core.settings import Settings
    from engine.alerts import NormalizedAlert
    from engine.playbooks import LoadedPlaybook
    from engine.rehearsal import RehearsedStep
    from engine.replay import BurstPlan

# An investigation step's output runs to tens of kilobytes: one terminal line of it is noise
# unless asked for.
FOLD_CHARS = 300

ALERT_FORMS = (
    "an EventBridge event (or an array of them), an SNS HTTP body, a CloudTrail record or log "
    "file (gzipped too), a Security Hub or GuardDuty finding (or GetFindings output), a "
    "POST /v1/alerts body or a normalized alert"
)


def plan(
    playbook: Annotated[str, typer.Argument(help="Playbook file, or a playbook's name.")],
    alert_files: Annotated[
        list[Path],
        typer.Argument(
            help=f"Alert files: {ALERT_FORMS}; - = stdin. Several files are one burst: their "
            "alerts reach the playbook in event-time order, as a correlation or threshold "
            "trigger would group them.",
            show_default=False,
        ),
    ],
    full: Annotated[
        bool,
        typer.Option("--full", help="Print every step's parameters and output whole (by default "
                     f"a value longer than {FOLD_CHARS} characters is cut; planned AWS calls are "
                     "always whole)."),
    ] = False,
) -> None:
    """Dry-run a playbook against alert files, without a database; exit 1 if it would fail."""
    from engine.replay import plan_runs, why_not_triggered

    settings = load_settings()  # before any step reads them, so a bad value is one clear line
    for warning in settings.warnings():
        typer.echo(f"warning: {warning}", err=True)
    loaded = playbook_argument(playbook)
    alerts = alerts_argument(alert_files)
    spec = loaded.spec
    first = alerts[0]
    against = (f"alert {first.title!r}" if len(alerts) == 1
               else f"{len(alerts)} alerts (first {first.title!r})")
    say(f"dry run of playbook {spec.name!r} ({loaded.file}) against {against}")
    for alert in alerts:
        say(f"  {alert.source}/{alert.kind} {alert.type or '-'}, severity {alert.severity} "
            f"({alert.severity_label})" + (f", {alert.event_time:%Y-%m-%d %H:%M:%S}"
                                           if len(alerts) > 1 and alert.event_time else ""))
    triggers = spec.triggers
    burst = plan_runs(triggers, alerts, is_production=settings.is_production)
    if not triggers:
        say("  note: the playbook has no trigger; only a responder can start it")
    elif len(alerts) == 1 and burst.handling[0].outcome == "not-triggered":
        say("  note: the trigger does not match this alert; it would not start this run:")
        for reason in why_not_triggered(triggers, first, settings.is_production):
            say(f"    {reason}")
    elif len(alerts) > 1:
        _say_burst(alerts, burst)
    runs = [(alerts[run.starter], [alerts[i] for i in run.alerts]) for run in burst.runs]
    # Rehearsed anyway when no run would start: what the playbook would do is still the point.
    status = 0
    for number, (starter, members) in enumerate(runs or [(first, alerts)], 1):
        if len(runs) > 1:
            say(f"run {number} of {len(runs)}: started by {starter.title!r}, "
                f"{len(members)} alert(s)")
        status = max(status, _rehearse_and_print(loaded, starter, members, settings, full))
    if status:
        raise typer.Exit(status)


def _say_burst(alerts: list[NormalizedAlert], burst: BurstPlan) -> None:
    for alert, handling in zip(alerts, burst.handling, strict=True):
        what = {
            "started": "starts a run", "joined": "joins a run", "counted": "is counted",
            "not-counted": "is not counted", "not-triggered": "does not match the trigger",
            "manual": "starts nothing (no trigger)",
        }.get(handling.outcome, handling.outcome)
        say(f"  note: {alert.title!r} {what}" + (
            f": {'; '.join(handling.reasons)}" if handling.reasons else ""))


def _rehearse_and_print(
    loaded: LoadedPlaybook, alert: NormalizedAlert, alerts: list[NormalizedAlert],
    settings: Settings, full: bool,
) -> int:
    """Rehearse one run, print it step by step, and return its exit status."""
    from engine.rehearsal import rehearse
    from engine.replay import quiet_actions

    with quiet_actions():  # each step's output is printed below; their log would repeat it
        steps = rehearse(loaded, alert, alerts=alerts, settings=settings)
    for number, step in enumerate(steps, 1):
        _print_rehearsed(number, step, full)
    reached = {s.id for s in steps}
    skipped_over = [s.id for s in loaded.spec.steps if s.id not in reached]
    if skipped_over:
        say(f"not reached: {', '.join(skipped_over)}")
    final = steps[-1].run_status if steps else "succeeded"
    ending = (steps[-1].run_outcome if steps else None) or final
    left_undone = sum(len(s.left_undone) for s in steps)
    say(f"result: the run would end {ending}"
        + (f" (succeeded, {left_undone} left undone)" if ending == "partial" else ""))
    return 0 if final == "succeeded" else 1


def playbook_argument(argument: str) -> LoadedPlaybook:
    """Return the playbook a file path or a name in RIPOSTE_PLAYBOOK_DIR gives, or fail."""
    from engine.playbooks import PlaybookInvalid, load_all, load_file

    path = Path(argument)
    if path.exists():
        try:
            return load_file(path)
        except PlaybookInvalid as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            fail(f"{argument} is not a valid playbook (`riposte validate {argument}`)")
    directory = load_settings().playbook_dir
    loaded, _problems = load_all([directory]) if directory.is_dir() else ({}, [])
    if argument in loaded:
        return loaded[argument]
    known = f" (playbooks in {directory}: {', '.join(sorted(loaded))})" if loaded else ""
    fail(f"no playbook file or playbook named {argument!r}{known}")


def generic_alert(body: dict[str, Any]) -> NormalizedAlert:
    """Read a generic alert as POST /v1/alerts does (the API's model of it)."""
    from api.schemas import AlertIn

    return AlertIn.model_validate(body).normalized()


def alerts_argument(paths: list[Path]) -> list[NormalizedAlert]:
    """Return the alerts of the files (``-``: stdin) in event-time order, or fail saying why."""
    from engine.normalize.files import AlertFileInvalid, in_time_order, read_alert_file

    alerts: list[NormalizedAlert] = []
    for path in paths:
        try:
            text = sys.stdin.buffer.read() if str(path) == "-" else None
            alerts += read_alert_file(path, generic=generic_alert, text=text)
        except AlertFileInvalid as exc:
            fail(str(exc))
    return in_time_order(alerts)


def _print_rehearsed(number: int, step: RehearsedStep, full: bool) -> None:
    from engine.replay import planned_calls

    verdict = {"succeeded": "would run", "skipped": "skipped (when is false)"}.get(
        step.status, "would fail"
    )
    say(f"{number}. {step.id} [{step.action}]: {verdict}")
    if step.approval:
        say(f"   {step.approval}")
    if step.params is not None:
        say(f"   params: {_folded(step.params, full)}")
    planned = planned_calls(step.output, volatile=True)
    if planned is not None:
        say("   planned calls:" if planned else "   planned calls: none")
        for call in planned:
            target = f" on {call['target']}" if call.get("target") else ""
            say(f"     {call['service']}.{call['operation']}({_compact(call['params'])})"
                f"{target}")
    elif step.output is not None:
        say(f"   output: {_folded(step.output, full)}")
    for source, why in _unread_sources(step.output).items():
        say(f"   not read: {source} ({why}); answers drawn from this step may be incomplete")
    if step.error:
        say(f"   error: {step.error['code']}: {step.error['message']}")
    for item in step.left_undone:
        say(f"   would leave undone: {item['target']}: {item['reason']}")


def _unread_sources(output: Any) -> dict[str, str]:
    """The sources a step could not read though it went on with the others (the CloudTrail
    actions' ``sources``: ``{"read": false, "error": …}``)."""
    sources = output.get("sources") if isinstance(output, dict) else None
    if not isinstance(sources, dict):
        return {}
    return {
        str(name): f"{report['error'].get('code')}: {report['error'].get('message')}"
        for name, report in sources.items()
        if isinstance(report, dict) and report.get("read") is False
        and isinstance(report.get("error"), dict)
    }


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _folded(value: Any, full: bool) -> str:
    text = _compact(value)
    if full or len(text) <= FOLD_CHARS:
        return text
    return f"{text[:FOLD_CHARS]}… ({len(text)} characters; --full prints it whole)"
