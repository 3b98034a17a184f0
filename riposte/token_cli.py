"""``riposte token``: create, revoke and list API tokens (straight in the database)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from riposte.database import session_factory
from riposte.terminal import fail
from riposte.user_errors import load_settings, user_errors

token_app = typer.Typer(help="API tokens.", no_args_is_help=True)

MAX_TOKEN_DAYS = 36_500  # a hundred years: any longer is "never", which is said by omission


@token_app.command("create")
def token_create(
    name: Annotated[
        str,
        typer.Option(help="Unique name; it appears in the audit log and in approvals as "
                     "token:<name>. Not a role's name nor one Riposte uses (system, …)."),
    ],
    role: Annotated[str, typer.Option(help="ingest, responder, admin or metrics (reads "
                                            "/metrics only: for a Prometheus scraper).")],
    expires_in_days: Annotated[
        float | None,
        typer.Option(help="Days until the token stops working (more than 0, at most "
                     f"{MAX_TOKEN_DAYS}); leave it out for a token that never expires."),
    ] = None,
) -> None:
    """Create an API token and print it (only the token on stdout; it is shown once)."""
    from engine.identities import ROLES, token_name_problem
    from engine.store.tokens import create_token
    from engine.store.types import utcnow

    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    if (problem := token_name_problem(name)) is not None:
        fail(f"--name: {problem}")
    # 0 once meant "never expires": now it is refused, and only leaving the option out does.
    if expires_in_days is not None and not 0 < expires_in_days <= MAX_TOKEN_DAYS:
        fail(f"--expires-in-days must be more than 0 and at most {MAX_TOKEN_DAYS}, not "
             f"{expires_in_days:g}; leave it out for a token that never expires")
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    settings = load_settings()
    with user_errors():
        with session_factory(settings).begin() as session:
            token = create_token(session=session, name=name, role=role, expires_at=expires_at)
    typer.echo(token)
    until = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    typer.echo(f"created {role} token {name!r}{until}; it is not shown again", err=True)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Option(help="Name of the token to revoke.")],
) -> None:
    """Revoke a token: every request with it is refused (401) from now on."""
    from engine.store.tokens import revoke_token

    settings = load_settings()
    with user_errors():
        with session_factory(settings).begin() as session:
            row = revoke_token(session=session, name=name)
            revoked_at = row.revoked_at
    typer.echo(f"token {name!r} revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@token_app.command("list")
def token_list() -> None:
    """List tokens: name, role, created, expiry and whether revoked (never the secret)."""
    from engine.store.tokens import list_tokens
    from engine.store.types import utcnow

    settings = load_settings()
    with user_errors():
        with session_factory(settings)() as session:
            rows = list_tokens(session)
            now = utcnow()
            for row in rows:
                if row.revoked_at is not None:
                    state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}"
                elif row.expires_at is not None and row.expires_at <= now:
                    state = f"expired {row.expires_at:%Y-%m-%d %H:%M}"
                elif row.expires_at is not None:
                    state = f"expires {row.expires_at:%Y-%m-%d %H:%M}"
                else:
                    state = "no expiry"
                typer.echo(f"{row.name}\t{row.role}\tcreated {row.created_at:%Y-%m-%d %H:%M}"
                           f"\t{state}")
