"""The ``riposte`` command: serve, work, validate and rehearse playbooks, administer the store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from riposte.alerts_cli import alerts_app
from riposte.approvals_cli import approvals_app
from riposte.audit_cli import audit_app
from riposte.aws_cli import aws_app
from riposte.db_cli import db_app
from riposte.demo_cli import demo
from riposte.docs_cli import docs_app
from riposte.plan_cli import plan
from riposte.policy_cli import policy
from riposte.replay_cli import replay
from riposte.runs_cli import runs_app
from riposte.serve_cli import serve, worker
from riposte.terminal import fail
from riposte.token_cli import token_app
from riposte.user_errors import load_settings

app = typer.Typer(
    name="riposte",
    help="Automated incident response for AWS: alerts in, playbooks run, everything audited.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(serve)
app.command()(worker)
app.command()(policy)
app.command()(demo)
app.command()(plan)
app.command()(replay)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(approvals_app, name="approvals")
app.add_typer(runs_app, name="runs")
app.add_typer(alerts_app, name="alerts")
app.add_typer(aws_app, name="aws")
app.add_typer(docs_app, name="docs")


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Playbook files or directories [default: RIPOSTE_PLAYBOOK_DIR]."),
    ] = None,
) -> None:
    """Check playbooks; print every problem as file:line: step 'id': message.

    Besides the structure: every step's parameters against its action, every template and
    ``when``/``for_each`` against the names its step can read (alert fields, earlier steps,
    vars, item, the sandbox's filters and tests), and trigger values against what the
    normalizers produce; each file's problems in line order.
    """
    from engine.playbooks import load_all, playbook_files

    targets = paths or [load_settings().playbook_dir]
    if not playbook_files(targets):
        fail(f"no *.yml or *.yaml playbook in {', '.join(str(p) for p in targets)}")
    loaded, problems = load_all(targets)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        files = len({p.file for p in problems})
        typer.echo(f"{len(problems)} problem(s) in {files} file(s)")
        raise typer.Exit(1)
    typer.echo(f"ok: {len(loaded)} playbooks")


@app.command()
def schema() -> None:
    """Print the playbook JSON Schema (make schema writes it to playbooks/schema.json)."""
    from engine.schema import render_schema

    sys.stdout.write(render_schema())


if __name__ == "__main__":
    app()
