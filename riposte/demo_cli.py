"""``riposte demo``: the seed's mass-termination case told end to end on a local AWS."""

from __future__ import annotations

from typing import Annotated

import typer

from riposte.user_errors import UserError, load_settings, user_errors


def demo(
    port: Annotated[int, typer.Option(help="Port to serve on; a free one if it is busy.")] = 8000,
    keep_serving: Annotated[
        bool,
        typer.Option(
            help="Keep serving until Ctrl-C once the story is told; --no-keep-serving exits "
            "then (status 1 if the run did not succeed)."
        ),
    ] = True,
    auto_approve: Annotated[
        bool,
        typer.Option(
            help="Approve the containment as the demo's approver token; without it the demo "
            "prints the `riposte approvals approve` command and waits for you."
        ),
    ] = False,
    routine: Annotated[
        bool,
        typer.Option(
            help="Play a planned decommission instead of the attack: same terminations, by a "
            "principal acting as its week shows (office, working hours, MFA)."
        ),
    ] = False,
) -> None:
    """Play the seed's mass-termination case on a local AWS: detect, investigate, contain."""
    from riposte.demo import DemoFailed, run_demo

    settings = load_settings()
    # Only these: the demo sets the settings its story needs, whatever the others say.
    for warning in settings.unknown_variables():
        typer.echo(f"warning: {warning}", err=True)
    with user_errors():
        try:
            status = run_demo(settings=settings, port=port, keep_serving=keep_serving,
                              auto_approve=auto_approve, routine=routine)
        except DemoFailed as exc:
            raise UserError(f"demo: {exc}") from exc
    raise typer.Exit(status)
