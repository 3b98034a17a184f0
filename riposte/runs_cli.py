"""``riposte runs show``: a run's investigation as the HTTP API gives it, for a terminal.

It prints the verdict, every finding (question → answer, confidence, evidence in brief), the
open questions with why they are open, the narrative and the recommendation, then the steps.
Alert data reaches the terminal only as printable text (no control or bidi characters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from engine.conductor import TERMINAL, TRANSITIONS
from engine.modes import rehearsal_mark
from engine.render import count, run_rows, undo_lines
from engine.render_run import describe_run
from riposte.api_client import AsJson, TokenOption, api_client, quoted
from riposte.terminal import fail, one_line, print_json, print_table, say, shown
from riposte.time_options import Since, Until

runs_app = typer.Typer(
    help="Runs and their investigation, through the HTTP API at RIPOSTE_API_URL with "
    "RIPOSTE_TOKEN.",
    no_args_is_help=True,
)

RunId = Annotated[str, typer.Argument(help="The run's id.")]


@runs_app.command("show")
def show(run_id: RunId, as_json: AsJson = False, token: TokenOption = None) -> None:
    """Show a run: its verdict, findings, open questions, narrative, recommendation and steps."""
    with api_client(token) as api:
        run = api.get(f"/v1/runs/{quoted(run_id)}")
    if as_json:
        print_json(run)
        return
    for line in describe_run(run):
        say(line)


def _known_status(status: str | None) -> str | None:
    if status is not None and status not in TRANSITIONS:
        raise typer.BadParameter(f"{status!r} is not one of {', '.join(TRANSITIONS)}")
    return status


@runs_app.command("list")
def list_runs(
    status: Annotated[
        str | None,
        typer.Option(callback=_known_status, show_default=False,
                     help=f"Only runs of this status: {', '.join(TRANSITIONS)}."),
    ] = None,
    playbook: Annotated[str | None, typer.Option(help="Only runs of this playbook.")] = None,
    alert: Annotated[
        str | None, typer.Option(help="Only runs that see this alert (its id).")
    ] = None,
    principal: Annotated[
        str | None,
        typer.Option(help="Only runs of alerts whose principal's name or ARN holds this text."),
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 20,
    as_json: AsJson = False,
    token: TokenOption = None,
) -> None:
    """List runs, newest first: id, outcome (partial: succeeded, work left undone), playbook,
    mode, when created and how long it took."""
    filters = {"status": status, "playbook": playbook, "alert_id": alert,
               "principal": principal, "since": since, "until": until}
    query = {name: value for name, value in filters.items() if value}
    with api_client(token) as api:
        runs, more = api.listing("/v1/runs", "runs", limit=limit, params=query)
    if as_json:
        print_json({"runs": runs, "next": more})
        return
    if not runs:
        typer.echo("no run" + (" matches" if query else " yet"))
        return
    print_table(run_rows(runs))
    if more:
        typer.echo(f"{count(len(runs), 'run')} shown, more exist: --limit {len(runs) * 2}, "
                   f"or --until {runs[-1]['created_at']}", err=True)


@runs_app.command("rehearse")
def rehearse(run_id: RunId, token: TokenOption = None) -> None:
    """Rehearse a run: a dry-run copy on every alert it sees; nothing will change in AWS."""
    with api_client(token) as api:
        rehearsal = api.post(f"/v1/runs/{quoted(run_id)}/rehearse", {})
    typer.echo(one_line(
        f"{rehearsal_mark(rehearsal['mode'])}run {rehearsal['id']} rehearses run {run_id} on "
        f"{len(rehearsal['alert_ids'])} alert(s) with playbook {rehearsal['playbook']}: "
        f"{rehearsal['status']}"
    ))
    typer.echo(f"Follow it: riposte runs show {rehearsal['id']}")


@runs_app.command("rollback")
def rollback(
    run_id: RunId,
    yes: Annotated[bool, typer.Option("--yes", help="Ask without confirming first.")] = False,
    as_json: AsJson = False,
    token: TokenOption = None,
) -> None:
    """Ask to undo what an ended run changed, newest change first.

    It shows what would be undone (and what cannot be) and asks to confirm. The rollback is a
    run of its own: it changes nothing until another responder or admin approves its plan,
    the exact undo calls (`riposte approvals show`).
    """
    from engine.rollback import changes_to_undo

    # With --json, stdout is the JSON alone: the preview and the question go to stderr.
    def tell(line: str) -> None:
        typer.echo(shown(line), err=as_json)

    with api_client(token) as api:
        run = api.get(f"/v1/runs/{quoted(run_id)}")
        if run["status"] not in TERMINAL:
            fail(f"run {run['id']} is {run['status']}; cancel it (or let it end) before rolling "
                 "it back; nothing was asked")
        entries = changes_to_undo([JournalStep.of(step) for step in run["steps"]])
        undoable = sum(1 for entry in entries if "undo" in entry)
        if entries:
            tell(f"{rehearsal_mark(run['mode'])}run {run['id']} ({run['playbook']}, "
                 f"{run['status']}) made {count(len(entries), 'change')}; a rollback would, "
                 "newest first:")
        else:
            tell(f"run {run['id']} changed nothing")
        for line in undo_lines(entries):
            tell(line)
        if not undoable:
            fail(f"run {run['id']} has nothing that can be undone; nothing was asked")
        if not yes and not typer.confirm(
            f"Ask for the rollback of run {run['id']} ({count(undoable, 'change')} to undo)?",
            err=as_json,
        ):
            fail("nothing was asked")
        asked = api.post(f"/v1/runs/{quoted(run['id'])}/rollback", {})
    if as_json:
        print_json(asked)
        return
    typer.echo(f"rollback run {asked['id']} asked: it undoes run {run['id']} once another "
               f"responder or admin approves its plan; it is {asked['status']}")
    typer.echo(f"Follow it: riposte runs show {asked['id']} (its approval request is then in "
               "riposte approvals list)")


@dataclass(frozen=True)
class JournalStep:
    """A step execution as ``GET /v1/runs/{id}`` lists it (``engine.rollback.StepDone``)."""

    step_id: str
    action: str
    status: str
    output: Any

    @classmethod
    def of(cls, step: dict[str, Any]) -> JournalStep:
        return cls(step_id=step["step_id"], action=step["action"], status=step["status"],
                   output=step.get("output"))
