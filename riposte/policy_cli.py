"""``riposte policy``: the least-privilege IAM policy of the actions the playbooks use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from riposte.terminal import valid_playbooks
from riposte.user_errors import load_settings


def policy(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Playbook files or directories [default: RIPOSTE_PLAYBOOK_DIR]."),
    ] = None,
    account: Annotated[
        str,
        typer.Option(help="Account id written into the ARNs; '*': any account Riposte acts in."),
    ] = "*",
    partition: Annotated[
        str, typer.Option(help="AWS partition written into the ARNs (aws, aws-cn, aws-us-gov).")
    ] = "aws",
    pass_role: Annotated[
        list[str] | None,
        typer.Option(
            "--pass-role",
            help="A role (name, with its path) whose instance profile relaunched or un-isolated "
            "instances may get back; repeatable [default: any role of the account, to EC2 only].",
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Print each statement with its scope, the actions needing it and why, "
            "instead of the JSON.",
        ),
    ] = False,
) -> None:
    """Print the least-privilege IAM policy for the actions these playbooks use."""
    from actions.policy import explanation, policy_document, policy_statements

    settings = load_settings()
    loaded = valid_playbooks(paths or [settings.playbook_dir])
    used = {step.action for book in loaded for step in book.spec.steps}
    statements = policy_statements(
        used, responder_role=settings.responder_role, partition=partition, account=account,
        passed_roles=pass_role or (), trail_bucket=settings.cloudtrail_bucket,
    )
    if explain:
        typer.echo(explanation(statements))
    else:
        typer.echo(json.dumps(policy_document(statements), indent=2))
