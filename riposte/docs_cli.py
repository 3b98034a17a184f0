"""``riposte docs actions``: reference documentation written from the code."""

from __future__ import annotations

import sys

import typer

docs_app = typer.Typer(help="Reference documentation generated from the code.",
                       no_args_is_help=True)


@docs_app.command("actions")
def actions_reference() -> None:
    """Print the action reference as Markdown (it is docs/actions.md)."""
    from actions.reference import render_action_reference

    sys.stdout.write(render_action_reference())
