"""``riposte replay``: prove a playbook change against recorded alerts, in dry-run, for CI."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from riposte.plan_cli import ALERT_FORMS, alerts_argument
from riposte.terminal import fail, say
from riposte.time_options import moment
from riposte.user_errors import load_settings, user_errors

if TYPE_CHECKING:
    from core.settings import Settings
    from engine.alerts import NormalizedAlert
    from engine.playbooks import LoadedPlaybook
    from engine.replay.differences import Verdict

ALERT_SUFFIXES = (".json", ".json.gz")
STORED_ALERTS_LIMIT = 10_000


def replay(
    alert_files: Annotated[
        list[Path] | None,
        typer.Argument(help=f"Alert files or directories of them (*.json, *.json.gz): "
                            f"{ALERT_FORMS}.", show_default=False),
    ] = None,
    playbooks: Annotated[
        list[Path] | None,
        typer.Option("--playbooks", help="Playbook files or directories [default: "
                                         "RIPOSTE_PLAYBOOK_DIR].", show_default=False),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--playbook", help="Replay only this playbook (repeatable).",
                     show_default=False),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(help="Also replay the playbooks as they are at this git revision (e.g. "
                          "origin/main) and report how the working tree differs.",
                     show_default=False),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Replay the alerts stored in this Riposte database (with --since / "
                          "--until).", show_default=False),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(callback=moment, show_default=False,
                     help="Stored alerts whose event time is at or after: 7d, or an ISO time."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(callback=moment, show_default=False,
                     help="Stored alerts whose event time is before: 1d, or an ISO time."),
    ] = None,
    cassettes: Annotated[
        Path | None,
        typer.Option(help="Replay the AWS lookups from the cassettes in this directory (one "
                          "per alert): no AWS access needed.", show_default=False),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(help="Make the AWS lookups for real (read-only) and record them as "
                          "cassettes in this directory.", show_default=False),
    ] = None,
    expect: Annotated[
        Path | None,
        typer.Option(help="YAML file of the differences the change is meant to make; those "
                          "do not fail the replay.", show_default=False),
    ] = None,
    accept_changes: Annotated[
        list[str] | None,
        typer.Option("--accept-changes", help="Accept every difference of this playbook "
                                              "(repeatable).", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay recorded alerts through the playbooks in dry-run and report what each would do.

    Exits 1 when a difference from --base is not expected, or a lookup is missing from a
    cassette.
    """
    from engine.playbooks import PlaybookInvalid
    from engine.replay import replay as replay_alerts
    from engine.replay.cassettes import CassetteInvalid
    from engine.replay.differences import ExpectationsInvalid, compare, judge, load_expectations
    from engine.replay.revisions import RevisionUnreadable

    if cassettes is not None and record is not None:
        fail("--cassettes replays recorded lookups and --record records them: give one")
    settings = load_settings()
    alerts = _alerts(alert_files or [], database_url, since, until)
    if not alerts:
        fail("no alert to replay: give alert files or directories, or --database-url")
    directories = playbooks or [settings.playbook_dir]
    try:
        expectations = load_expectations(expect) if expect is not None else None
        head = _selected(_working_tree(directories), only)
        base_books = _selected(_at_revision(base, directories), only) if base else None
        tape, recording = record or cassettes, record is not None
        report = replay_alerts(head, alerts, settings=settings, cassettes=tape,
                               record=recording)
        base_report = None if base_books is None else replay_alerts(
            base_books, alerts, settings=settings, cassettes=tape, record=recording
        )
    except (ExpectationsInvalid, CassetteInvalid, RevisionUnreadable) as exc:
        fail(str(exc))
    except PlaybookInvalid as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        fail("the playbooks have problems (`riposte validate`)")
    differences = compare(base_report, report) if base_report is not None else []
    verdict = judge(differences, expectations, accepted_playbooks=accept_changes or ())
    if as_json:
        typer.echo(json.dumps(_json(report, base, verdict), indent=2, default=str))
    else:
        _print_report(report, base, verdict, settings)
    if verdict.unexpected or report["missing_lookups"] or (
        base_report is not None and base_report["missing_lookups"]
    ):
        raise typer.Exit(1)


def _alerts(
    paths: list[Path], database_url: str | None, since: str | None, until: str | None
) -> list[NormalizedAlert]:
    from engine.normalize.files import in_time_order

    if (since or until) and database_url is None:
        fail("--since and --until choose stored alerts: give --database-url too")
    files = [f for path in paths for f in _alert_files(path)]
    alerts = alerts_argument(files) if files else []
    if database_url is not None:
        alerts += _stored_alerts(database_url, since, until)
    return in_time_order(alerts)


def _alert_files(path: Path) -> list[Path]:
    if str(path) == "-" or not path.is_dir():
        return [path]  # a missing file is said so by the reader
    found = sorted(p for p in path.rglob("*") if p.name.endswith(ALERT_SUFFIXES))
    if not found:
        fail(f"{path}: no alert file (*.json, *.json.gz) in it")
    return found


def _stored_alerts(url: str, since: str | None, until: str | None) -> list[NormalizedAlert]:
    from engine.store.alert_reads import alerts_between, as_normalized
    from engine.store.db import make_engine, make_sessionmaker

    with user_errors():
        engine = make_engine(url)
        try:
            with make_sessionmaker(engine)() as session:
                rows = alerts_between(
                    session, since=datetime.fromisoformat(since) if since else None,
                    until=datetime.fromisoformat(until) if until else None,
                    limit=STORED_ALERTS_LIMIT + 1,
                )
                if len(rows) > STORED_ALERTS_LIMIT:
                    fail(f"more than {STORED_ALERTS_LIMIT} stored alerts in that span: narrow "
                         "it with --since / --until")
                return [as_normalized(row) for row in rows]
        finally:
            engine.dispose()


def _working_tree(directories: list[Path]) -> dict[str, LoadedPlaybook]:
    from engine.playbooks import PlaybookInvalid, load_all, playbook_files

    if not playbook_files(directories):
        fail(f"no *.yml or *.yaml playbook in {', '.join(str(p) for p in directories)}")
    loaded, problems = load_all(directories)
    if problems:
        raise PlaybookInvalid(problems)
    return loaded


def _at_revision(revision: str, paths: list[Path]) -> dict[str, LoadedPlaybook]:
    """The playbooks at ``revision`` of the directories given (of a file given: that file)."""
    from engine.replay.revisions import playbooks_at

    loaded: dict[str, LoadedPlaybook] = {}
    for path in paths:
        found = playbooks_at(revision, path if path.is_dir() else path.parent)
        loaded.update(found if path.is_dir() else {
            name: book for name, book in found.items() if Path(book.file).name == path.name
        })
    return loaded


def _selected(loaded: dict[str, LoadedPlaybook], only: list[str] | None) -> dict[str, Any]:
    if not only:
        return dict(loaded)
    unknown = [name for name in only if name not in loaded]
    if unknown:
        fail(f"no playbook named {', '.join(map(repr, unknown))} (playbooks: "
             f"{', '.join(sorted(loaded))})")
    return {name: loaded[name] for name in only}


def _json(report: dict[str, Any], base: str | None, verdict: Verdict) -> dict[str, Any]:
    document: dict[str, Any] = {**report}
    if base is not None:
        document["base"] = base
        document["differences"] = {
            "unexpected": [d.as_json() for d in verdict.unexpected],
            "accepted": [d.as_json() for d in verdict.accepted],
            "expected_but_not_seen": [e.model_dump(exclude_none=True) for e in verdict.unused],
        }
    return document


def _print_report(
    report: dict[str, Any], base: str | None, verdict: Verdict, settings: Settings
) -> None:
    from engine.replay.differences import call_text

    for entry in report["alerts"]:
        when = f" at {entry['event_time']}" if entry["event_time"] else ""
        say(f"alert {entry['key']}: {entry['source']}/{entry['kind']} {entry['type'] or '-'}"
            f"{when}: {entry['title']!r}")
        if entry["repeat_of"]:
            say(f"  a repeat of {entry['repeat_of']}: counted on it, starts nothing")
            continue
        if entry["ignored"]:
            say(f"  ignored: {entry['ignored']}")
            continue
        for name, shown in entry["playbooks"].items():
            outcome = shown["outcome"]
            if outcome == "not-triggered":
                say(f"  {name}: not triggered ({'; '.join(shown['reasons'])})")
            elif outcome == "manual":
                say(f"  {name}: no trigger (started by hand only)")
            elif outcome == "joined":
                say(f"  {name}: joins the run started by {shown['started_by']}")
            elif outcome in ("counted", "not-counted"):
                say(f"  {name}: {'; '.join(shown['reasons'])}")
            else:
                run = shown["run"]
                say(f"  {name}: triggered, a run of {run['alerts']} alert(s) that would end "
                    f"{run['result']}")
                for step in run["steps"]:
                    error = f": {step['error']}" if step["error"] else ""
                    say(f"    {step['id']} [{step['action']}]: {step['status']}{error}")
                    for call in step["calls"]:
                        say(f"      {call_text(call)}")
    for missing in report["missing_lookups"]:
        say(f"missing from the cassettes: {missing}")
    if report["missing_lookups"]:
        say("record them with `riposte replay --record DIR` against AWS (read-only) or the "
            f"local endpoint (RIPOSTE_AWS_ENDPOINT_URL, region {settings.aws_region})")
    if base is None:
        return
    if not verdict.accepted and not verdict.unexpected:
        say(f"no difference from {base}")
    for difference in verdict.accepted:
        say(f"expected difference from {base}: {difference}")
    for difference in verdict.unexpected:
        say(f"DIFFERENCE from {base}: {difference}")
    for expectation in verdict.unused:
        say(f"note: expected but not seen: {expectation.playbook}"
            f"{' ' + expectation.kind if expectation.kind else ''} ({expectation.reason})")
    if verdict.unexpected:
        say(f"{len(verdict.unexpected)} unexpected difference(s): declare them in --expect "
            "FILE (or --accept-changes PLAYBOOK) if the change means them")
