"""Replay recorded alerts through playbooks in dry-run, and report what each alert would do.

The report is plain JSON (``riposte replay --json``)::

    {"alerts": [{"key", "title", "source", "kind", "type", "event_time", "cassette",
                 "repeat_of": key | null, "ignored": why | null,
                 "playbooks": {name: {"outcome", "reasons", "started_by", "run"}}}],
     "missing_lookups": ["sts.GetCallerIdentity({}) in us-east-1 (account own)", …]}

``outcome`` is ``started`` (the alert starts a run: ``run`` holds its steps, each ``ran``,
``skipped``, ``failed`` or ``not reached`` with the AWS calls it would make, and how the run
would end), ``joined`` (it is part of the run ``started_by`` another alert starts),
``counted`` / ``not-counted`` (a threshold counts it, not yet firing), ``not-triggered``
(``reasons`` says which condition failed and with what value) or ``manual`` (no trigger).

Alerts are taken in event-time order; a repeat of an earlier alert (same dedup key) starts
nothing, as the store counts it on the first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.settings import Settings
from engine.alerts import NormalizedAlert, updated_by_riposte
from engine.playbooks import LoadedPlaybook
from engine.rehearsal import RehearsedStep, rehearse
from engine.replay.bursts import plan_runs
from engine.replay.cassettes import Cassette, Deck, alert_digest, cassette_name

STEP_STATUS = {"succeeded": "ran", "skipped": "skipped", "failed": "failed"}


def alert_key(alert: NormalizedAlert) -> str:
    """Name an alert in a report: its dedup key, else its source, type and a digest."""
    if alert.dedup_key:
        return alert.dedup_key
    return f"{alert.source}:{alert.type or alert.kind}:{alert_digest(alert)[:12]}"


def replay(
    playbooks: Mapping[str, LoadedPlaybook],
    alerts: Sequence[NormalizedAlert],
    *,
    settings: Settings,
    cassettes: Path | None = None,
    record: bool = False,
) -> dict[str, Any]:
    """Rehearse every run the alerts would start, and report per alert (module docstring).

    ``cassettes``: the directory of the alerts' cassettes — recorded into when ``record``,
    else replayed from (no AWS needed); none: lookups go to AWS, read-only (dry-run's guard).
    """
    is_production = settings.is_production
    entries, unique = _entries(alerts)
    decks: dict[int, Cassette] = {}
    missing: list[str] = []
    for name in sorted(playbooks):
        playbook = playbooks[name]
        plan = plan_runs(playbook.spec.triggers, [alerts[i] for i in unique],
                         is_production=is_production)
        for position, handling in enumerate(plan.handling):
            index = unique[position]
            shown: dict[str, Any] = {"outcome": handling.outcome, "reasons": handling.reasons}
            if handling.run is not None:
                run = plan.runs[handling.run]
                starter = unique[run.starter]
                if handling.outcome == "joined":
                    shown["started_by"] = entries[starter]["key"]
                else:
                    members = [alerts[unique[m]] for m in run.alerts]
                    cassette = _cassette(decks, starter, alerts[starter], cassettes)
                    deck = Deck(cassette, recording=record) if cassette is not None else None
                    steps = _rehearsed(playbook, alerts[starter], members, settings, deck)
                    shown["run"] = _run_report(playbook, steps, len(members))
                    missing += deck.misses if deck is not None else []
            entries[index]["playbooks"][name] = shown
    if record:
        for cassette in decks.values():
            cassette.save()
    return {"alerts": entries, "missing_lookups": list(dict.fromkeys(missing))}


def _entries(alerts: Sequence[NormalizedAlert]) -> tuple[list[dict[str, Any]], list[int]]:
    """The report's entry of each alert, and the indexes of those that reach the playbooks."""
    entries: list[dict[str, Any]] = []
    unique: list[int] = []
    first: dict[str, str] = {}
    for index, alert in enumerate(alerts):
        key = alert_key(alert)
        repeat_of = first.get(alert.dedup_key) if alert.dedup_key else None
        ignored = "its last update was Riposte's own" if updated_by_riposte(alert) else None
        entries.append({
            "key": key if repeat_of is None else f"{key}#{index}",
            "title": alert.title,
            "source": alert.source,
            "kind": alert.kind,
            "type": alert.type,
            "event_time": alert.event_time.isoformat() if alert.event_time else None,
            "cassette": cassette_name(alert),
            "repeat_of": repeat_of,
            "ignored": ignored,
            "playbooks": {},
        })
        if alert.dedup_key and repeat_of is None:
            first[alert.dedup_key] = key
        if repeat_of is None and ignored is None:
            unique.append(index)
    return entries, unique


def _cassette(
    decks: dict[int, Cassette], index: int, alert: NormalizedAlert, directory: Path | None
) -> Cassette | None:
    if directory is None:
        return None
    if index not in decks:
        decks[index] = Cassette.load(directory / cassette_name(alert))
    return decks[index]


def _rehearsed(
    playbook: LoadedPlaybook,
    alert: NormalizedAlert,
    members: Sequence[NormalizedAlert],
    settings: Settings,
    deck: Deck | None,
) -> list[RehearsedStep]:
    with quiet_actions():
        return rehearse(playbook, alert, alerts=members, settings=settings,
                        aws_hook=deck.hook if deck is not None else None)


@contextmanager
def quiet_actions() -> Iterator[None]:
    """Silence the actions' own log lines while rehearsing: the report says what they did."""
    actions_log = logging.getLogger("riposte.action")
    if not actions_log.handlers:  # nor Python's last resort, on stderr
        actions_log.addHandler(logging.NullHandler())
    propagate, actions_log.propagate = actions_log.propagate, False
    try:
        yield
    finally:  # as it was: in a process that goes on (a test's), the actions log again
        actions_log.propagate = propagate


def _run_report(
    playbook: LoadedPlaybook, steps: Sequence[RehearsedStep], alerts: int
) -> dict[str, Any]:
    reached = {step.id for step in steps}
    shown = [
        {
            "id": step.id,
            "action": step.action,
            "status": STEP_STATUS.get(step.status, step.status),
            "calls": planned_calls(step.output) or [],
            "error": f"{step.error['code']}: {step.error['message']}" if step.error else None,
        }
        for step in steps
    ]
    shown += [
        {"id": step.id, "action": step.action, "status": "not reached", "calls": [],
         "error": None}
        for step in playbook.spec.steps if step.id not in reached
    ]
    ending = (steps[-1].run_outcome or steps[-1].run_status) if steps else "succeeded"
    return {"alerts": alerts, "steps": shown, "result": ending}


def planned_calls(output: Any, *, volatile: bool = False) -> list[dict[str, Any]] | None:
    """Return the AWS calls a dry-run step's output plans (None: it plans none, it looks up),
    each without its volatile parameters (known only when made: they differ on every replay)
    unless ``volatile``."""
    outputs = output if isinstance(output, list) else [output]
    if not outputs or not all(isinstance(o, dict) and "planned" in o for o in outputs):
        return None
    calls = [call for o in outputs for call in o["planned"]]
    return [
        {
            "service": call.get("service"),
            "operation": call.get("operation"),
            "target": call.get("target") or "",
            "params": {k: v for k, v in (call.get("params") or {}).items()
                       if volatile or k not in set(call.get("volatile") or ())},
        }
        for call in calls
    ]
